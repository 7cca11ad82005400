"""The ``seqzoo`` command: a table of verbs.

``fit`` / ``validate`` / ``test`` are LightningCLI (every flag of the Trainer, the model and
the datamodule, and ``--config x.yaml``); the other verbs are small functions.

Examples::

    seqzoo fit --config recipes/ptb/lstm_small.yaml --data.data_dir ../shared/data
    seqzoo ngram --dataset ptb --order 5 --smoothing modified-kn --data-dir ../shared/data --json
    seqzoo reproduce recipes/quickstart
    seqzoo list 'lstm*'
"""
from __future__ import annotations

import argparse
import json
import sys
import time

__all__ = ["main", "SeqzooCLI", "run_ngram"]

LIGHTNING_VERBS = ("fit", "validate", "test")


def _lightning_cli(args=None, run=True):
    from lightning.pytorch.cli import LightningCLI

    from seqzoo.data.lm import LanguageModelDataModule
    from seqzoo.lm import LanguageModelTask

    class SeqzooCLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.link_arguments("data.vocab_size", "model.init_args.vocab_size", apply_on="instantiate")

    return SeqzooCLI(LanguageModelTask, LanguageModelDataModule, subclass_mode_model=True, args=args, run=run,
                     save_config_kwargs={"overwrite": True})


def run_ngram(dataset: str = "ptb", order: int = 3, smoothing: str = "modified-kn", data_dir: str | None = None,
              k: float = 1.0) -> dict:
    """Fit an n-gram LM on ``dataset``'s train split; perplexity on valid and test."""
    from seqzoo.data.corpora import load_corpus
    from seqzoo.models.ngram import NGramLM

    start = time.perf_counter()
    ds = load_corpus(dataset, data_dir)
    sents = {s: [line.split() for line in ds[s]["text"]] for s in ds}
    lm = NGramLM(order=order, smoothing=smoothing, k=k).fit(sents["train"])
    ppl = {s: lm.perplexity(sents[s]) for s in ("valid", "test")}
    return {"dataset": dataset, "order": order, "smoothing": smoothing, "perplexity": ppl,
            "tokens": {s: lm.score_sentences(sents[s])[1] for s in ("valid", "test")},
            "seconds": round(time.perf_counter() - start, 3)}


def _ngram(argv):
    p = argparse.ArgumentParser(prog="seqzoo ngram", description=run_ngram.__doc__)
    p.add_argument("--dataset", default="ptb", help="corpus name or path (default: ptb)")
    p.add_argument("--order", type=int, default=3, help="n-gram order (default: 3)")
    p.add_argument("--smoothing", default="modified-kn",
                   help="mle, add-k, katz, stupid or modified-kn (default: modified-kn)")
    p.add_argument("--k", type=float, default=1.0, help="add-k's k (default: 1)")
    p.add_argument("--data-dir", default=None, help="local mirror of the corpora (default: $SEQZOO_DATA)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    r = run_ngram(a.dataset, a.order, a.smoothing, a.data_dir, a.k)
    if a.json:
        print(json.dumps(r))
    else:
        print(f"{a.smoothing} {a.order}-gram on {a.dataset}: valid perplexity {r['perplexity']['valid']:.2f}, "
              f"test perplexity {r['perplexity']['test']:.2f} ({r['seconds']:.1f} s)")


def _list(argv):
    p = argparse.ArgumentParser(prog="seqzoo list", description="List registered models.")
    p.add_argument("pattern", nargs="?", default=None, help="shell wildcard, e.g. 'lstm*'")
    p.add_argument("--pretrained", action="store_true", help="list names with a checkpoint (arch.tag)")
    a = p.parse_args(argv)
    from seqzoo import list_models
    print("\n".join(list_models(a.pattern, pretrained=a.pretrained)))


def _reproduce(argv):
    p = argparse.ArgumentParser(prog="seqzoo reproduce",
                                description="Run a recipe folder's runs and write results.json, results.md, plot. "
                                            "Flags after -- go to LightningCLI for every neural run.")
    p.add_argument("recipe", help="recipe folder, e.g. recipes/ptb")
    p.add_argument("--only", nargs="*", default=None, help="run names to run (default: all that fit the machine)")
    p.add_argument("--all", action="store_true", help="also the runs marked too large for a CPU")
    p.add_argument("--data-dir", default=None, help="local mirror of the corpora (default: $SEQZOO_DATA)")
    p.add_argument("--report-only", action="store_true", help="only rebuild results.md and the plot")
    # everything after "--" goes to LightningCLI for every neural run, e.g. -- --trainer.max_epochs 1
    overrides = argv[argv.index("--") + 1:] if "--" in argv else []
    a = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    from seqzoo.recipes import reproduce
    reproduce(a.recipe, only=a.only, include_large=a.all, data_dir=a.data_dir, report_only=a.report_only,
              overrides=overrides)


VERBS = {
    "fit": "train a model (LightningCLI; --config recipes/.../x.yaml)",
    "validate": "evaluate on the validation split (LightningCLI)",
    "test": "evaluate on the test split (LightningCLI)",
    "ngram": "fit an n-gram LM and print its perplexity",
    "reproduce": "run a recipe folder and write its results table",
    "list": "list registered models",
}
_FNS = {"ngram": _ngram, "list": _list, "reproduce": _reproduce}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: seqzoo VERB [ARGS]\n\nverbs:")
        for v, h in VERBS.items():
            print(f"  {v:<10} {h}")
        print("\n`seqzoo VERB --help` for each verb's flags.")
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"seqzoo: unknown verb {verb!r}; valid: {', '.join(VERBS)}", file=sys.stderr)
        return 2
    try:
        if verb in LIGHTNING_VERBS:
            _lightning_cli([verb, *rest])
        else:
            _FNS[verb](rest)
    except (ValueError, FileNotFoundError, FloatingPointError) as e:  # bad input: one clear line
        print(f"seqzoo {verb}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
