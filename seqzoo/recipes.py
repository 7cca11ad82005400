"""Run a recipe folder and write its result table.

A recipe folder holds ``recipe.yaml`` (the runs, with the paper's figures) and one YAML config
per neural run. ``reproduce`` runs them, merges each run into ``results.json`` by name (so
runs can be done one at a time, on different machines), then writes ``results.md`` (ours
beside the paper's) and ``valid_perplexity.png`` (validation perplexity per epoch for the
neural runs, the n-gram runs as flat lines). A run of ``kind: retest`` tests another run's trained model again
with other test-time settings (greedy instead of beam search) instead of training it twice.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path

import yaml

from seqzoo.utils import write_text_atomic

__all__ = ["reproduce", "run_fit", "run_retest", "device_name", "software_versions", "History", "write_results"]


def device_name(device=None, processes: int = 1) -> str:
    """``cuda: <GPU>``, or ``cpu: <model> (<the vector ISA torch's kernels use>), <N> threads``: float results of
    the same code can differ between CPUs whose kernels differ, and a long training run carries that on.
    ``device`` (a ``torch.device``, e.g. a trainer's ``strategy.root_device``) is the one that ran; by default the
    GPU if there is one, else the CPU; any other kind is named as torch names it. ``processes`` > 1 (a DDP run's
    world size) prefixes ``<N> x``."""
    if processes > 1:
        return f"{processes} x {device_name(device)}"
    import torch
    kind = device.type if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if kind != "cpu":
        return str(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    get_isa = getattr(torch.backends.cpu, "get_cpu_capability", None)
    isa = f" ({get_isa()})" if get_isa else ""
    return f"cpu: {model}{isa}, {torch.get_num_threads()} threads"


SOFTWARE = ("torch", "lightning", "torchmetrics", "datasets", "tokenizers", "gensim", "numpy")


def software_versions(repo: str | os.PathLike | None = None) -> dict:
    """What a row was computed with: Python, the packages that shape training and data, seqzoo's version and, in a
    git checkout, its commit (``+dirty`` when the package's code, pyproject.toml or a recipe config differs from
    it; results files do not count). Two rows that disagree can then be told apart by their code or their
    environment."""
    from importlib.metadata import PackageNotFoundError, version
    import subprocess
    import seqzoo
    out = {"python": platform.python_version(), "seqzoo": seqzoo.__version__}
    for name in SOFTWARE:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    repo = Path(repo) if repo is not None else Path(seqzoo.__file__).resolve().parents[1]
    if (repo / ".git").exists():
        try:
            git = ["git", "-C", str(repo)]
            sha = subprocess.run(git + ["rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                                 check=True, timeout=10).stdout.strip()
            dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no", "--", "seqzoo",
                                          "pyproject.toml", ":(glob)recipes/**/*.yaml"],
                                   capture_output=True, text=True, check=True, timeout=10).stdout.strip()
            out["git"] = sha + ("+dirty" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            pass
    return out


def _history_callback():
    from lightning.pytorch.callbacks import Callback

    class History(Callback):
        """Per-epoch values of the logged metrics: ``{"epoch", "valid_*", "train_*"}``, each under the epoch it
        measures. A module logs its epoch's train metrics in ``on_train_epoch_end``, after validation and after
        the callbacks' hook, so they are read when the next epoch starts or training ends."""

        def __init__(self):
            self.epochs: list[dict] = []
            self._ended = None  # the epoch (1-based) whose train metrics are logged but not read yet

        def _entry(self, epoch: int) -> dict:
            if not self.epochs or self.epochs[-1]["epoch"] != epoch:
                self.epochs.append({"epoch": epoch})
            return self.epochs[-1]

        def _metrics(self, trainer, prefix: str) -> dict:
            return {k: float(v) for k, v in trainer.callback_metrics.items()
                    if k.startswith(prefix) and k != "train_loss" and v.numel() == 1}

        def on_validation_end(self, trainer, pl_module):
            # after the module's on_validation_epoch_end has logged its epoch metrics (BLEU): this epoch's values
            if not trainer.sanity_checking:
                self._entry(trainer.current_epoch + 1).update(self._metrics(trainer, "valid_"))

        def on_train_epoch_end(self, trainer, pl_module):
            self._ended = trainer.current_epoch + 1

        def _read_train(self, trainer):
            if self._ended is not None:
                self._entry(self._ended).update(self._metrics(trainer, "train_"))
                self._ended = None

        def on_train_epoch_start(self, trainer, pl_module):
            self._read_train(trainer)

        def on_train_end(self, trainer, pl_module):
            self._read_train(trainer)

    return History()


History = _history_callback


def run_fit(config: str | os.PathLike, data_dir: str | None = None, overrides: list[str] | None = None,
            ckpt_path: str | None = None) -> dict:
    """Train with a LightningCLI config (from a Lightning checkpoint where ``ckpt_path``), test the final model
    (unless the datamodule's ``test_is_valid``), save it as a seqzoo checkpoint folder (``<log_dir>/seqzoo``);
    one results.json run (without name)."""
    from seqzoo.cli import _lightning_cli

    args = ["--config", str(config)] + (["--data.data_dir", data_dir] if data_dir else []) + list(overrides or [])
    history = _history_callback()
    start = time.perf_counter()
    cli = _lightning_cli(args, run=False)
    cli.trainer.callbacks.append(history)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path)
    epochs = _epochs_trained(cli.trainer)
    if history.epochs and epochs != int(epochs):  # stopped inside an epoch (max_time): its entry says how much ran
        history.epochs[-1]["epoch"] = epochs
        if not any(k.startswith("valid_") for k in history.epochs[-1]):  # max_steps stops without validating
            cli.trainer.callbacks.remove(history)
            valid = cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)[0]
            history.epochs[-1].update({k: float(v) for k, v in valid.items() if k.startswith("valid_")})
    # a datamodule whose test loader serves the validation split (SST-2: GLUE's test labels are private) is
    # not tested again: its score is the last epoch's valid_*, and no test_* copy of it is recorded
    test_is_valid = getattr(cli.datamodule, "test_is_valid", False)
    test = {} if test_is_valid else cli.trainer.test(cli.model, datamodule=cli.datamodule)[0]
    wall = time.perf_counter() - start
    export, log_dir = None, cli.trainer.log_dir  # log_dir is a collective under DDP: every rank asks
    if cli.trainer.is_global_zero:  # the trained model as a seqzoo checkpoint folder (safetensors + vocabularies)
        from seqzoo.hub import save_pretrained
        export = _cwd_relative(save_pretrained(cli.model, Path(log_dir or cli.trainer.default_root_dir) / "seqzoo"))
    last = history.epochs[-1] if history.epochs else {}
    metrics = {**{k: v for k, v in last.items() if k.startswith("valid_")}, **{k: float(v) for k, v in test.items()}}
    if getattr(cli.datamodule.hparams, "level", None) == "char":  # a char LM's loss is nats per character
        for split in ("valid", "test"):
            if f"{split}_perplexity" in metrics:
                metrics[f"{split}_nats_per_char"] = math.log(metrics[f"{split}_perplexity"])
    run = {"config": str(config), "dataset": _dataset_name(cli.datamodule), "metrics": metrics,
           "epochs": epochs, "wall_seconds": round(wall, 1), "device": _device_of(cli.trainer),
           "history": history.epochs, "checkpoint_dir": log_dir, "export_dir": export}
    if overrides:  # flags given after `--`: the row was trained with them, not with the config alone
        run["overrides"] = list(overrides)
    return run


def _cwd_relative(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory (the repo root, as ``checkpoint_dir`` is) when it lies below
    it, so that results.json holds no machine's absolute paths; otherwise unchanged."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _dataset_name(datamodule) -> str:
    return getattr(datamodule.hparams, "dataset", None) or type(datamodule).__name__


def run_retest(folder: Path, recipe: dict, spec: dict, data_dir: str | None = None,
               overrides: list[str] | None = None) -> dict:
    """Test a trained run's exported model again with other test-time settings (``spec["overrides"]``, e.g.
    ``{"model.init_args.beam_size": 1}`` for greedy decoding): the same weights and tokenizers, no training.
    For translation runs: the datamodule reads the export's tokenizers (``--data.tokenizers``)."""
    from seqzoo.cli import _lightning_cli
    from seqzoo.hub import from_pretrained

    source = next((r for r in recipe["runs"] if r["name"] == spec["of"]), None)
    if source is None:
        raise ValueError(f"run {spec['name']!r} retests {spec['of']!r}, which is not a run of {folder}")
    done = {r["name"]: r for r in _load_results(folder / "results.json")["runs"]}.get(spec["of"], {})
    export = done.get("export_dir")
    if not export or not Path(export).is_dir():
        raise FileNotFoundError(f"run {spec['of']!r} has no trained model here ({export or 'not run'}): "
                                f"train it first with seqzoo reproduce {folder} --only {spec['of']}")
    settings = [a for k, v in spec.get("overrides", {}).items() for a in (f"--{k}", str(v))]
    args = (["--config", str(folder / source["config"]), "--data.tokenizers", export, "--trainer.logger", "false"]
            + (["--data.data_dir", data_dir] if data_dir else []) + list(overrides or []) + settings)
    start = time.perf_counter()
    cli = _lightning_cli(args, run=False)
    cli.model.net.load_state_dict(from_pretrained(export).state_dict())
    test = cli.trainer.test(cli.model, datamodule=cli.datamodule)[0]
    return {"config": f"{folder / source['config']} + " + " ".join(settings) + f" (the model of {spec['of']})",
            "dataset": _dataset_name(cli.datamodule), "metrics": {k: float(v) for k, v in test.items()},
            "epochs": done["epochs"], "wall_seconds": round(time.perf_counter() - start, 1),
            "device": _device_of(cli.trainer), "retest_of": spec["of"]}


def _device_of(trainer) -> str:
    return device_name(trainer.strategy.root_device, trainer.world_size)


def _rank_zero() -> bool:
    """Under DDP every rank runs the whole recipe (Lightning's launcher starts the same command again), training
    together; only global rank 0 writes what the runs give."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only
    return rank_zero_only.rank == 0


def _barrier() -> None:
    """Under DDP: wait until rank 0 has written (a retest reads the row of the run before it)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _load_results(path: Path) -> dict:
    if not path.exists():
        return {"runs": []}
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}): fix or remove it; runs are merged into it") from None
    if not (isinstance(results, dict) and isinstance(results.get("runs"), list)):
        raise ValueError(f'{path} must hold {{"runs": [...]}}: fix or remove it; runs are merged into it')
    bad = next((i for i, r in enumerate(results["runs"]) if not (isinstance(r, dict) and isinstance(r.get("name"), str))),
               None)
    if bad is not None:
        raise ValueError(f"{path}: run {bad + 1} has no name: fix or remove it; runs are merged into it by name")
    return results


def read_spec(path: Path, what: str = "recipe") -> dict:
    """A YAML file that must be a mapping (a recipe, a gradient-flow config): else a ValueError naming it."""
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a valid YAML {what}: {' '.join(str(e).split())}") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path} is not a YAML {what}: it must be a mapping of keys, got {type(spec).__name__}")
    return spec


def write_results(folder: Path, run: dict) -> dict:
    """Merge one run into ``folder/results.json`` (replacing a run of the same name)."""
    path = folder / "results.json"
    results = _load_results(path)
    results["runs"] = [r for r in results["runs"] if r["name"] != run["name"]] + [run]
    write_text_atomic(path, json.dumps(results, indent=2) + "\n")
    return results


def _fmt(x) -> str:
    return "" if x is None else (f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}")


def write_report(folder: Path, recipe: dict) -> None:
    """``results.md``: one row per run, ours beside the paper's; and the validation plot.

    The columns are ``recipe["metrics"]`` (default: valid and test perplexity), each followed
    by the paper's figure where a run gives one under ``paper:``; ``recipe["reference"]`` names
    that column where its figures come from elsewhere than a paper (default ``paper``).
    """
    if any(spec.get("kind") == "embeddings" for spec in recipe["runs"]):
        from seqzoo.embeddings import write_report as write_embeddings_report
        write_embeddings_report(folder, recipe)
        _plot(folder, _load_results(folder / "results.json"), {"metrics": ["valid_perplexity"]})  # part (b)'s LMs
        return
    results = _load_results(folder / "results.json")
    by_name = {r["name"]: r for r in results["runs"]}
    cols = recipe.get("metrics", ["valid_perplexity", "test_perplexity"])
    label = recipe.get("reference", "paper")
    head = " | ".join(f"{c} | {label}" for c in cols)
    lines = [f"# {recipe.get('title', folder.name)}", "",
             "Measured by `seqzoo reproduce " + str(folder) + "`; every figure comes from `results.json`.", "",
             f"| run | model | {head} | epochs | wall (s) | device |",
             "| --- | --- | " + " | ".join("---: | ---:" for _ in cols) + " | ---: | ---: | --- |"]
    for spec in recipe["runs"]:
        r, paper = by_name.get(spec["name"]), spec.get("paper", {})
        m = r["metrics"] if r else {}
        vals = " | ".join(f"{_fmt(m.get(c))} | {_fmt(paper.get(c))}" for c in cols)
        lines.append(f"| {spec['name']} | {spec.get('model', '')} | {vals} | {r['epochs'] if r else 'not run'} | "
                     f"{r['wall_seconds'] if r else ''} | {r['device'] if r else ''} |")
    if recipe.get("notes"):
        lines += ["", recipe["notes"].strip()]
    write_text_atomic(folder / "results.md", "\n".join(lines) + "\n")
    _plot(folder, results, recipe)


def _plot(folder: Path, results: dict, recipe: dict) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib is a dev extra
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    key = next((c for c in recipe.get("metrics", ["valid_perplexity"]) if c.startswith("valid_")), "valid_perplexity")
    neural = [r for r in results["runs"] if any(key in h for h in r.get("history") or [])]
    if not neural:
        plt.close(fig)
        return
    for r in neural:  # epochs whose value was not recorded are left out
        points = [(h["epoch"], h[key]) for h in r["history"] if key in h]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", ms=3, label=r["name"])
    flat = [r for r in results["runs"] if not r.get("history") and r["metrics"].get(key)]  # n-gram rows
    for r in flat:
        ax.axhline(r["metrics"][key], ls="--", lw=1, color="gray")
        ax.annotate(r["name"], (1, r["metrics"][key]), fontsize=8, va="bottom")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(key.replace("_", " "))
    if key.endswith("perplexity"):
        ax.set_yscale("log")
    ax.set_title(f"{folder.name}: {key.replace('_', ' ')} per epoch" + (" (dashed: n-gram)" if flat else ""))
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / f"{key}.png", dpi=110)
    plt.close(fig)


def _write_card(folder: Path, run: dict) -> None:
    """A run with a registered pretrained name: its card into the exported folder and into model_cards/."""
    from seqzoo.cards import card_for_run
    card = card_for_run(folder, run)
    if card is None:
        return
    name, text = card
    if run.get("export_dir") and Path(run["export_dir"]).is_dir():
        write_text_atomic(Path(run["export_dir"]) / "README.md", text)
    cards = folder.resolve().parents[1] / "model_cards"
    if cards.is_dir():
        write_text_atomic(cards / f"{name}.md", text)
        print(f"model card: {cards / f'{name}.md'}")


def _last_checkpoint(folder: Path, name: str, kind: str | None) -> tuple[dict, Path]:
    """The earlier row of run ``name`` in results.json and the newest Lightning checkpoint in its
    ``checkpoint_dir``: what ``--resume`` goes on from."""
    if kind is not None:
        raise ValueError(f"run {name!r} is of kind {kind!r}: only trained (neural) runs can be resumed")
    prev = next((r for r in _load_results(folder / "results.json")["runs"] if r["name"] == name), None)
    if prev is None or not prev.get("checkpoint_dir"):
        raise ValueError(f"cannot resume {name!r}: {folder / 'results.json'} has no earlier run of it with a "
                         f"checkpoint_dir")
    ckpts = sorted(Path(prev["checkpoint_dir"]).glob("checkpoints/*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not ckpts:
        raise ValueError(f"cannot resume {name!r}: no Lightning checkpoint in {prev['checkpoint_dir']}/checkpoints")
    return prev, ckpts[-1]


def _epochs_trained(trainer) -> int | float:
    """Epochs trained, a fraction (2 decimals) where a run stopped inside one: Lightning's ``current_epoch`` counts
    an epoch cut short by ``max_time`` as a whole one."""
    per_epoch = trainer.num_training_batches
    if not per_epoch or math.isinf(per_epoch):
        return trainer.current_epoch
    done = trainer.fit_loop.epoch_loop.batch_progress.total.completed / per_epoch
    return int(done) if done == int(done) else round(done, 2)


def _merge_resumed(prev: dict, ckpt: Path, run: dict) -> dict:
    """One row for a run trained in two parts: the epochs of both, their summed wall time, and what the first
    part was (its checkpoint, epochs, time, device, flags) under ``resumed_from``."""
    # the first part's whole epochs before the second part's first entry: a fractional last entry (a run stopped
    # inside an epoch) is superseded by the second part, which finished or went on with that epoch
    first = run["history"][0]["epoch"] if run.get("history") else math.inf
    run["history"] = [h for h in prev.get("history", []) if h["epoch"] == int(h["epoch"]) and h["epoch"] < first] \
        + run.get("history", [])
    run["resumed_from"] = {"checkpoint": str(ckpt), "epochs": prev["epochs"], "wall_seconds": prev["wall_seconds"],
                           "device": prev["device"], "overrides": prev.get("overrides", []),
                           **({"software": prev["software"]} if prev.get("software") else {})}
    run["wall_seconds"] = round(prev["wall_seconds"] + run["wall_seconds"], 1)
    return run


def reproduce(recipe_dir: str | os.PathLike, only: list[str] | None = None, include_large: bool = False,
              data_dir: str | None = None, report_only: bool = False, overrides: list[str] | None = None,
              resume: bool = False) -> dict:
    """Run a recipe folder's runs (``only`` these; the ``large`` ones only with ``include_large``), merge each into
    results.json and write the report. ``resume`` goes on from each run's newest Lightning checkpoint (of the row
    already in results.json) up to its config's ``max_epochs``; the row then covers both parts."""
    folder = Path(recipe_dir)
    spec_path = folder / "recipe.yaml"
    if not spec_path.exists():
        raise FileNotFoundError(f"no recipe.yaml in {folder}")
    recipe = read_spec(spec_path)
    runs = recipe.get("runs")
    if not (isinstance(runs, list) and runs and all(isinstance(r, dict) and r.get("name") for r in runs)):
        raise ValueError(f"{spec_path} needs 'runs': a list of runs, each a mapping with a 'name'")
    names = [r["name"] for r in runs]
    _load_results(folder / "results.json")  # a broken results.json fails now, not after the runs
    for n in only or []:
        if n not in names:
            raise ValueError(f"recipe {folder} has no run {n!r}; runs: {', '.join(names)}")
    dataset = recipe.get("dataset")
    if resume and not only:
        raise ValueError("--resume needs --only NAME: the runs to go on with")
    starts = {n: _last_checkpoint(folder, n, next(r.get("kind") for r in runs if r["name"] == n))
              for n in (only if resume else [])}  # every run to resume is checked before any is trained
    software = None if report_only else software_versions()  # the code as it was when the runs started
    for spec in ([] if report_only else recipe["runs"]):
        if only is not None and spec["name"] not in only:
            continue
        if only is None and spec.get("large") and not include_large:
            print(f"skipping {spec['name']}: too large for a CPU (pass --all, or --only {spec['name']})")
            continue
        print(f"== {spec['name']}")
        if spec.get("kind") == "ngram":
            from seqzoo.cli import run_ngram
            export = Path("runs") / folder.name / spec["name"] / "seqzoo"
            r = run_ngram(dataset, spec["order"], spec.get("smoothing", "modified-kn"), data_dir, export_dir=export)
            run = {"config": f"seqzoo ngram --dataset {dataset} --order {spec['order']} --smoothing "
                             f"{spec.get('smoothing', 'modified-kn')}", "dataset": dataset,
                   "metrics": {"valid_perplexity": r["perplexity"]["valid"],
                               "test_perplexity": r["perplexity"]["test"]},
                   "epochs": 1, "wall_seconds": r["seconds"], "device": device_name(), "export_dir": str(export)}
        elif spec.get("kind") == "retest":
            run = run_retest(folder, recipe, spec, data_dir, overrides)
        elif spec.get("kind") == "embeddings":
            from seqzoo.embeddings import run_recipe_entry
            run = run_recipe_entry(folder / spec["config"], data_dir)
        elif spec["name"] in starts:
            prev, ckpt = starts[spec["name"]]
            print(f"resuming from {ckpt}")
            run = _merge_resumed(prev, ckpt, run_fit(folder / spec["config"], data_dir, overrides, str(ckpt)))
        else:
            run = run_fit(folder / spec["config"], data_dir, overrides)
        run = {"name": spec["name"], **run, "software": software}
        if _rank_zero():
            write_results(folder, run)
            _write_card(folder, run)
        _barrier()
    if _rank_zero():
        write_report(folder, recipe)
    return _load_results(folder / "results.json")
