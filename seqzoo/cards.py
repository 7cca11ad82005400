"""Model cards: the README.md of a checkpoint, with Hub metadata (YAML front matter + ``model-index``).

``make_card`` writes one card; ``write_cards`` writes one per run of a recipe's ``results.json`` that has a
registered pretrained name (``PretrainedCfg.recipe`` is the run's config). Every number in a card comes from
a ``results.json`` run: a card without one says so instead of showing figures.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

__all__ = ["make_card", "write_cards", "card_metadata"]

_CELL_TAGS = {"lstm": "lstm", "gru": "gru", "rnn_tanh": "rnn", "rnn_relu": "rnn"}
_CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "tanh RNN", "rnn_relu": "ReLU RNN"}


def _dataset_info(dataset: str | None) -> tuple[str | None, str | None]:
    """(Hub dataset id or None, display name) for a corpus name or path."""
    if not dataset:
        return None, None
    from seqzoo.data.corpora import CORPORA
    c = CORPORA.get(dataset)
    if c is not None:
        return c.hub_id, c.description.split(",")[0] or dataset
    looks_like_repo = dataset.count("/") == 1 and not os.path.exists(dataset)
    return (dataset if looks_like_repo else None), dataset


def _describe(config: dict) -> tuple[str, list[str]]:
    """One-paragraph description and the tags of a model config (RNN LM fields or n-gram fields)."""
    if "cell" in config:
        c = config
        cell = _CELL_NAMES.get(c["cell"], c["cell"])
        tied = ", input and output embeddings tied" if c.get("tie_weights") else ""
        text = (f"A {c.get('num_layers', '?')}-layer {cell} language model: {c.get('embedding_size', '?')}-wide "
                f"embeddings, {c.get('hidden_size', '?')}-wide hidden state, dropout {c.get('dropout', 0.0)}{tied}"
                + (f", vocabulary of {c['vocab_size']} tokens" if c.get("vocab_size") else "")
                + ". It reads a token stream left to right and predicts the next token (truncated BPTT training, "
                  "hidden state carried across batches; Zaremba et al. 2014).")
        return text, ["language-modeling", "seqzoo", "pytorch", "lightning", _CELL_TAGS.get(c["cell"], c["cell"])]
    if "order" in config:
        c = config
        text = (f"A word {c['order']}-gram language model with {c.get('smoothing', '?')} smoothing, stored as an "
                f"ARPA backoff file" + (f" over {c['vocab_size']} words" if c.get("vocab_size") else "") + ".")
        return text, ["language-modeling", "seqzoo", "n-gram", str(c.get("smoothing", "n-gram"))]
    return "A seqzoo language model.", ["language-modeling", "seqzoo"]


def _metric_values(results_run: dict | None) -> dict[str, float]:
    m = (results_run or {}).get("metrics") or {}
    return {k: float(m[k]) for k in ("valid_perplexity", "test_perplexity") if m.get(k) is not None}


def card_metadata(model_name: str, config: dict, results_run: dict | None, dataset: str | None,
                  license: str = "apache-2.0", base_model: str | None = None) -> dict:
    """The YAML front matter of :func:`make_card` as a dict."""
    _, tags = _describe(config)
    hub_id, display = _dataset_info(dataset)
    meta: dict = {"library_name": "seqzoo", "license": license, "tags": tags}
    if "cell" in config:
        meta["pipeline_tag"] = "text-generation"
    if hub_id:
        meta["datasets"] = [hub_id]
    if base_model:
        meta["base_model"] = base_model
    values = _metric_values(results_run)
    if values:
        results = []
        for key, split, label in (("test_perplexity", "test", "test perplexity"),
                                  ("valid_perplexity", "validation", "validation perplexity")):
            if key in values:
                results.append({"task": {"type": "text-generation", "name": "Language modeling"},
                                "dataset": {"type": hub_id or dataset, "name": display, "split": split},
                                "metrics": [{"type": "perplexity", "value": round(values[key], 2), "name": label}]})
        meta["model-index"] = [{"name": model_name, "results": results}]
    return meta


def make_card(model_name: str, config: dict, results_run: dict | None, dataset: str | None,
              recipe_command: str | None, license: str = "apache-2.0", base_model: str | None = None) -> str:
    """Markdown model card with Hub front matter (library, license, datasets, tags, model-index).

    Args:
        model_name: how to load it: a Hub repo id or a registered ``arch.tag`` name.
        config: the model's arguments (``RNNLMConfig`` fields, or the n-gram's order / smoothing).
        results_run: one run of a recipe's ``results.json`` (``metrics``, ``epochs``, ``wall_seconds``,
            ``device``); ``None``: the card states that no result was measured.
        dataset: corpus name (``ptb``) or path it was trained on.
        recipe_command: the exact command that trains it.
    """
    meta = card_metadata(model_name, config, results_run, dataset, license, base_model)
    description, _ = _describe(config)
    _, display = _dataset_info(dataset)
    values = _metric_values(results_run)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    lines = ["---", front.rstrip(), "---", "", f"# {model_name}", "",
             description + (f" Trained on {display}." if display else ""), "",
             "## Intended use", "",
             "Research and teaching: a reproducible baseline for language modelling perplexity, for comparing "
             "architectures and smoothing methods, and for scoring or sampling text in the domain it was trained on.",
             "", "## How to load", "", "```python", "import seqzoo", "",
             f'model = seqzoo.from_pretrained("{model_name}")  # ' + ("RNNLM with .vocab, eval mode" if "cell" in config
                                                                     else "NGramLM"),
             "```", "", "Or from a local copy of this repository: `seqzoo.from_pretrained(\"path/to/folder\")`; "
             "evaluate with `seqzoo evaluate " + model_name + " --dataset " + (dataset or "DATASET") + " --json`.", ""]
    lines += ["## Training", ""]
    if recipe_command:
        lines += ["```bash", recipe_command, "```", ""]
    else:
        lines += ["Not recorded for this checkpoint.", ""]
    lines += ["## Results", ""]
    if values:
        r = results_run
        lines += ["| split | perplexity |", "| --- | ---: |"]
        lines += [f"| {split} | {values[k]:.2f} |" for k, split in (("valid_perplexity", "validation"),
                                                                      ("test_perplexity", "test")) if k in values]
        extra = [f"{r['epochs']} epochs" if r.get("epochs") is not None else "",
                 f"{r['wall_seconds']} s wall time" if r.get("wall_seconds") is not None else "",
                 f"on {r['device']}" if r.get("device") else ""]
        extra = ", ".join(e for e in extra if e)
        lines += ["", f"Measured by the command above{': ' + extra if extra else ''}. Perplexity is token-weighted "
                  "over the whole split, every `<eos>` included.", ""]
    else:
        lines += ["No evaluation results were recorded for this checkpoint.", ""]
    lines += ["## Limitations", "",
              "- A word-level model knows only its training vocabulary; every other word is `<unk>`, so its "
              "perplexity is comparable only across models with the same vocabulary and tokenisation.",
              "- Trained on one corpus: it models that domain only, is no general-purpose text generator, and its "
              "samples can reproduce the biases of the training text.",
              "- Numbers above hold for the split and preprocessing named here only.", ""]
    return "\n".join(lines)


# -- one card per recipe run --------------------------------------------------------------------------
def _pretrained_names_by_recipe() -> dict[tuple[str, ...], str]:
    from seqzoo.registry import get_pretrained_cfg, list_models
    out = {}
    for name in list_models(pretrained=True):
        cfg = get_pretrained_cfg(name)
        if cfg.recipe:
            out[Path(cfg.recipe).parts[-2:]] = name
    return out


def _model_args_from_recipe(config_path: Path) -> dict:
    """``model.init_args`` of a LightningCLI YAML, only the architecture's fields."""
    if not config_path.is_file():
        return {}
    from dataclasses import fields

    from seqzoo.models.rnn_lm import RNNLMConfig
    init = ((yaml.safe_load(config_path.read_text()) or {}).get("model") or {}).get("init_args") or {}
    return {f.name: init[f.name] for f in fields(RNNLMConfig) if f.name in init}


def write_cards(recipe_dir: str | os.PathLike, out_dir: str | os.PathLike = "model_cards") -> list[Path]:
    """One ``<out_dir>/<arch.tag>.md`` per run of ``<recipe_dir>/results.json`` with a registered pretrained name."""
    recipe_dir, out_dir = Path(recipe_dir), Path(out_dir)
    results_path = recipe_dir / "results.json"
    if not results_path.is_file():
        raise FileNotFoundError(f"no results.json in {recipe_dir}: run `seqzoo reproduce {recipe_dir}` first")
    runs = json.loads(results_path.read_text()).get("runs", [])
    by_recipe = _pretrained_names_by_recipe()
    written = []
    for run in runs:
        config = str(run.get("config", ""))
        name = by_recipe.get(Path(config).parts[-2:]) if config.endswith((".yaml", ".yml")) else None
        if name is None:
            continue
        from seqzoo.registry import get_pretrained_cfg
        cfg = get_pretrained_cfg(name)
        repo_root = Path(__file__).resolve().parents[1]  # recipe paths in the registry are repo-relative
        candidates = [Path(config), recipe_dir / Path(config).name, repo_root / cfg.recipe]
        config_path = next((p for p in candidates if p.is_file()), candidates[0])
        command = (f"seqzoo fit --config {cfg.recipe} --data.data_dir DATA_DIR\n"
                   f"# or, with the test run and results.json: seqzoo reproduce {Path(cfg.recipe).parent} "
                   f"--only {run['name']} --data-dir DATA_DIR")
        text = make_card(name, _model_args_from_recipe(config_path), run, run.get("dataset") or cfg.dataset, command)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{name}.md"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
