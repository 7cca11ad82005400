"""The ``seqzoo`` command: a table of verbs.

``fit`` / ``validate`` / ``test`` are LightningCLI (every flag of the Trainer, the model and
the datamodule, and ``--config x.yaml``); the other verbs are small functions.

Examples::

    seqzoo fit --config recipes/ptb/lstm_small.yaml --data.data_dir ../shared/data
    seqzoo ngram --dataset ptb --order 5 --smoothing modified-kn --data-dir ../shared/data --json
    seqzoo reproduce recipes/quickstart
    seqzoo list 'lstm*'
    seqzoo evaluate lstm_lm_2x200.ptb_zaremba --dataset ptb --split test --data-dir ../shared/data --json
    seqzoo push runs/ptb/lstm_small/lightning_logs/version_0/seqzoo --repo-id seqzoo/lstm_lm_2x200.ptb_zaremba
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

__all__ = ["main", "TASKS", "task_for", "run_ngram", "run_evaluate", "run_push"]

LIGHTNING_VERBS = ("fit", "validate", "test")


# Each task's LightningModule base -> its datamodule and the sizes the model takes from it
# (LightningCLI links data.X -> model.init_args.Y at instantiation). The config's
# model.class_path picks the row; every seqzoo LightningModule subclasses one of these.
TASKS = {
    "seqzoo.lm.LanguageModelTask": ("seqzoo.data.lm.LanguageModelDataModule", {"vocab_size": "vocab_size"}),
    "seqzoo.models.seq2seq.Seq2Seq": ("seqzoo.data.translation.TranslationDataModule", {
        "src_vocab_size": "src_vocab_size", "tgt_vocab_size": "tgt_vocab_size",
        "src_tokenizer_json": "src_tokenizer", "tgt_tokenizer_json": "tgt_tokenizer"}),
    "seqzoo.models.tagger.TaggerTask": ("seqzoo.data.tagging.TaggingDataModule", {
        "vocab_size": "vocab_size", "num_tags": "num_tags", "num_chars": "num_chars", "embeddings": "embeddings",
        "max_word_length": "max_word_length"}),
    "seqzoo.models.classifier.ClassifierTask": ("seqzoo.data.classification.ClassificationDataModule", {
        "vocab_size": "vocab_size", "num_classes": "num_classes", "embeddings": "embeddings"}),
    "seqzoo.models.ctc.CTCTask": ("seqzoo.data.g2p.G2PDataModule", {"vocab_size": "vocab_size",
                                                                   "num_labels": "num_labels"}),
}
DEFAULT_MODEL = "seqzoo.models.rnn_lm.RNNLanguageModel"


def _import(dotted: str):
    import importlib
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise ValueError(f"cannot import {dotted!r}") from None


def _model_class_path(args: list[str]) -> str:
    """The model class a command line names: its --config files, then --model / --model.class_path."""
    import yaml
    path = DEFAULT_MODEL
    for i, a in enumerate(args):
        flag, eq, val = a.partition("=")
        val = val if eq else (args[i + 1] if i + 1 < len(args) else "")
        if flag == "--config" and val and not val.startswith("-"):
            try:
                with open(val, encoding="utf-8") as f:
                    cfg = yaml.safe_load(f) or {}
            except OSError:
                continue  # LightningCLI reports the missing file
            model = cfg.get("model")
            if isinstance(model, dict) and model.get("class_path"):
                path = model["class_path"]
        elif flag in ("--model", "--model.class_path") and val:
            path = val
    return path


def task_for(model_class_path: str) -> tuple[type, type, dict]:
    """(LightningModule base, datamodule class, links) for a model class path."""
    cls = _import(model_class_path if "." in model_class_path else f"seqzoo.models.{model_class_path}")
    for base_path, (dm_path, links) in TASKS.items():
        base = _import(base_path)
        if isinstance(cls, type) and issubclass(cls, base):
            return base, _import(dm_path), links
    raise ValueError(f"{model_class_path} is not a seqzoo task; valid bases: {', '.join(TASKS)}")


def _lightning_cli(args=None, run=True, model_class_path: str | None = None):
    from lightning.pytorch.cli import LightningCLI

    args = list(args or [])
    base, datamodule_class, links = task_for(model_class_path or _model_class_path(args))

    class SeqzooCLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            for src, dst in links.items():
                parser.link_arguments(f"data.{src}", f"model.init_args.{dst}", apply_on="instantiate")

    import warnings
    with warnings.catch_warnings():  # seqzoo passes the command line as args on purpose: no advice against it
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        return SeqzooCLI(base, datamodule_class, subclass_mode_model=True, args=args, run=run,
                         save_config_kwargs={"overwrite": True})


def _run_lightning(args: list[str]) -> None:
    """``seqzoo fit / validate / test``; a ``--ckpt_path`` that is no Lightning checkpoint, or one of another
    model, is a one-line error (Lightning raises a multi-line RuntimeError / UnpicklingError)."""
    import pickle
    try:
        _lightning_cli(args)
    except pickle.UnpicklingError as e:
        raise ValueError(f"--ckpt_path cannot be read as a Lightning checkpoint: {str(e).splitlines()[0]}") from None
    except ValueError as e:  # jsonargparse lists each Union subtype's error, and the whole Namespace: keep ours
        reasons = [s.strip()[2:] for s in str(e).splitlines() if s.strip().startswith("- ") and "NoneType" not in s]
        if "Union subtypes" not in str(e) or not reasons:
            raise
        raise ValueError(f"bad model argument: {reasons[0]}") from None
    except RuntimeError as e:
        text = str(e)
        if not text.startswith("Error(s) in loading state_dict"):
            raise
        first = next((s.strip() for s in text.splitlines()[1:] if s.strip()), "")
        raise ValueError(f"--ckpt_path holds the weights of another model than this config's: {first} "
                         f"(the config's sizes must be the ones it was trained with)") from None


def run_ngram(dataset: str = "ptb", order: int = 3, smoothing: str = "modified-kn", data_dir: str | None = None,
              k: float = 1.0, export_dir=None) -> dict:
    """Fit an n-gram LM on ``dataset``'s train split; perplexity on valid and test; with ``export_dir``, the
    model saved there as a seqzoo checkpoint folder (ARPA + config.json + card)."""
    from seqzoo.data.corpora import load_corpus
    from seqzoo.models.ngram import NGramLM

    if export_dir is not None:
        from seqzoo.hub import check_target
        check_target(export_dir)  # before the fit, not after it
    start = time.perf_counter()
    ds = load_corpus(dataset, data_dir)

    def words(split):  # streamed from the Arrow table, 10k lines at a time: memory does not grow with the corpus
        for batch in ds[split].iter(batch_size=10_000):
            yield from (line.split() for line in batch["text"])

    lm = NGramLM(order=order, smoothing=smoothing, k=k).fit(words("train"))
    ppl = {s: lm.perplexity(words(s)) for s in ("valid", "test")}
    seconds = round(time.perf_counter() - start, 3)  # fit + score, not the export
    if export_dir is not None:
        from seqzoo.hub import save_pretrained
        from seqzoo.registry import _family, create_model
        same = [n for n, f in _family.items() if f == "ngram" and (lambda m: (m.order, m.smoothing, m.k))(
            create_model(n)) == (lm.order, lm.smoothing, lm.k)]  # the registered variant, e.g. kn5
        save_pretrained(lm, export_dir, architecture=same[0] if same else None)
    return {"dataset": dataset, "order": order, "smoothing": smoothing, "perplexity": ppl,
            "tokens": {s: sum(len(w) + 1 for w in words(s)) for s in ("valid", "test")},  # + </s> each
            "seconds": seconds}


def _ngram(argv):
    p = argparse.ArgumentParser(prog="seqzoo ngram", description=run_ngram.__doc__)
    p.add_argument("--dataset", default="ptb", help="corpus name or path (default: ptb)")
    p.add_argument("--order", type=int, default=3, help="n-gram order (default: 3)")
    p.add_argument("--smoothing", default="modified-kn",
                   help="mle, add-k, katz, stupid or modified-kn (default: modified-kn)")
    p.add_argument("--k", type=float, default=1.0, help="add-k's k (default: 1)")
    p.add_argument("--data-dir", default=None, help="local mirror of the corpora (default: $SEQZOO_DATA)")
    p.add_argument("--save", default=None, metavar="DIR", help="save the model as a seqzoo checkpoint folder")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    r = run_ngram(a.dataset, a.order, a.smoothing, a.data_dir, a.k, export_dir=a.save)
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
    names = list_models(a.pattern, pretrained=a.pretrained)
    if not names:
        tagged = [] if a.pretrained else list_models(a.pattern, pretrained=True)
        if tagged:  # e.g. '*multi30k*' names a checkpoint tag, not an architecture
            raise ValueError(f"no architecture matches {a.pattern!r}, but {len(tagged)} names with a checkpoint do: "
                             f"seqzoo list --pretrained {a.pattern!r}")
        raise ValueError(f"no registered model{' with a checkpoint' if a.pretrained else ''} matches {a.pattern!r}; "
                         f"`seqzoo list{' --pretrained' if a.pretrained else ''}` shows them all")
    print("\n".join(names))


def _reproduce(argv):
    p = argparse.ArgumentParser(prog="seqzoo reproduce",
                                description="Run a recipe folder's runs and write results.json, results.md, plot. "
                                            "Flags after -- go to LightningCLI for every neural run.")
    p.add_argument("recipe", help="recipe folder, e.g. recipes/ptb")
    p.add_argument("--only", nargs="*", default=None, help="run names to run (default: all that fit the machine)")
    p.add_argument("--all", action="store_true", help="also the runs marked too large for a CPU")
    p.add_argument("--data-dir", default=None, help="local mirror of the corpora (default: $SEQZOO_DATA)")
    p.add_argument("--report-only", action="store_true", help="only rebuild results.md and the plot")
    p.add_argument("--resume", action="store_true",
                   help="go on from the --only runs' newest Lightning checkpoints (of their rows in results.json)")
    # everything after "--" goes to LightningCLI for every neural run, e.g. -- --trainer.max_epochs 1
    overrides = argv[argv.index("--") + 1:] if "--" in argv else []
    a = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    from seqzoo.recipes import reproduce
    reproduce(a.recipe, only=a.only, include_large=a.all, data_dir=a.data_dir, report_only=a.report_only,
              overrides=overrides, resume=a.resume)


# The corpus `seqzoo evaluate` reads when no --dataset is given, per model family.
EVAL_DATASETS = {"rnn_lm": "ptb", "window_lm": "ptb", "ngram": "ptb", "seq2seq": "multi30k",
                 "tagger": "ud-english-ewt", "classifier": "sst2", "ctc": "cmudict"}


def run_evaluate(name_or_path: str, dataset: str | None = None, split: str = "test", data_dir: str | None = None,
                 trust_pickle: bool = False, revision: str | None = None, batch_size: int | None = None,
                 bptt: int | None = None, src_lang: str | None = None, tgt_lang: str | None = None,
                 beam_size: int | None = None, length_penalty: float | None = None, allow_oov: bool = False,
                 tag_column: str | None = None) -> dict:
    """A checkpoint on one split of a corpus (default: its family's, EVAL_DATASETS). Language models:
    perplexity, token-weighted over the whole split, ``<eos>`` included, and the share of the split's words the
    model reads as ``<unk>`` (``oov_rate``; over half is an error, a wrong model or corpus, unless ``allow_oov``).
    Translation models (``src_lang`` and ``tgt_lang`` needed): BLEU and chrF with beam search. Taggers: token
    accuracy (``tag_column``). Classifiers: accuracy. CTC (G2P) models: phoneme and word error rates, beam search
    when ``beam_size`` > 1. A setting given for a family that does not use it is an error; unset, each takes its
    default (LM streams: ``batch_size`` 10 columns x ``bptt`` 35; translation: beam 5, ``length_penalty`` 0.6;
    taggers: ``upos``; CTC: beam 1)."""
    from seqzoo.data.corpora import SPLITS, load_corpus
    from seqzoo.hub import load_model, model_family

    split = {"validation": "valid", "dev": "valid"}.get(split, split)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    start = time.perf_counter()
    model = load_model(name_or_path, trust_pickle, data_dir, revision)  # a .ckpt: its vocab rebuilt from the corpus
    family = model_family(model)
    dataset = dataset or EVAL_DATASETS[family]
    out = {"model": str(name_or_path), "dataset": dataset, "split": split}
    unused = [flag for flag, given, families in (("--beam", beam_size is not None, ("seq2seq", "ctc")),
                                                 ("--src-lang / --tgt-lang", src_lang or tgt_lang, ("seq2seq",)),
                                                 ("--length-penalty", length_penalty is not None, ("seq2seq",)),
                                                 ("--batch-size / --bptt", batch_size is not None or bptt is not None,
                                                  ("rnn_lm", "window_lm")),
                                                 ("--tag-column", tag_column is not None, ("tagger",)))
              if given and family not in families]
    if unused:  # a flag that would be ignored: the user meant another model or another verb
        raise ValueError(f"{unused[0]} does not apply to {name_or_path} ({type(model).__name__}, family {family})")
    if family == "seq2seq":
        if not (src_lang and tgt_lang):
            raise ValueError(f"{name_or_path} is a translation model: pass --src-lang and --tgt-lang (e.g. de en)")
        from seqzoo.models.seq2seq import evaluate_translation
        out.update(src_lang=src_lang, tgt_lang=tgt_lang, **evaluate_translation(
            model, dataset, split, src_lang, tgt_lang, data_dir, beam_size or 5,
            0.6 if length_penalty is None else length_penalty, allow_oov=allow_oov))
    elif family == "tagger":
        from seqzoo.models.tagger import evaluate_tagging
        tag_column = tag_column or "upos"
        out.update(tag_column=tag_column, **evaluate_tagging(model, dataset, split, data_dir, tag_column))
    elif family == "classifier":
        from seqzoo.models.classifier import evaluate_classification
        out.update(evaluate_classification(model, dataset, split, data_dir))
    elif family == "ctc":
        from seqzoo.models.ctc import evaluate_g2p
        out.update(beam_size=beam_size or 1, **evaluate_g2p(model, dataset, split, beam_size or 1))
    elif family == "ngram":
        sents = [line.split() for line in load_corpus(dataset, data_dir, splits=(split,))[split]["text"]]
        known = set(model.vocab) - {"<unk>"}
        words = [w for s in sents for w in s]
        out["oov_rate"] = _check_oov(sum(w not in known for w in words) / max(1, len(words)), out, allow_oov)
        out.update(perplexity=model.perplexity(sents), tokens=sum(len(s) + 1 for s in sents))  # + </s> each
    else:
        import numpy as np

        from seqzoo.data.lm import StreamBatches
        from seqzoo.lm import stream_perplexity
        vocab = getattr(model, "vocab", None)
        if vocab is None:
            raise ValueError(f"{name_or_path} has no vocab.json: cannot map {dataset} to token ids")
        batch_size, bptt = (10 if batch_size is None else batch_size), (35 if bptt is None else bptt)
        if batch_size < 1 or bptt < 1:
            raise ValueError("batch_size and bptt must be >= 1")
        lines = load_corpus(dataset, data_dir, splits=(split,))[split]["text"]  # this split alone is read
        # the stream as LanguageModelDataModule encodes it: a word the vocab lacks (or a written <unk>) is unk_id
        ids = np.fromiter((i for line in lines for i in vocab.encode(line)), dtype=np.int64)
        words = ids[ids != vocab.eos_id]
        out["oov_rate"] = _check_oov(float((words == vocab.unk_id).mean()) if len(words) else 0.0, out, allow_oov)
        r = stream_perplexity(model, StreamBatches(ids, batch_size, bptt, vocab.eos_id, vocab.pad_id))
        out.update(perplexity=r["perplexity"], tokens=r["tokens"])
        if vocab.level == "char":  # as a char LM's recipe reports it
            out["nats_per_char"] = math.log(r["perplexity"])
    out["seconds"] = round(time.perf_counter() - start, 3)
    return out


def _check_oov(rate: float, out: dict, allow: bool) -> float:
    """:func:`seqzoo.utils.check_oov` on the split ``out`` names, unless ``allow``."""
    from seqzoo.utils import check_oov
    return rate if allow else check_oov(rate, f"{out['dataset']} {out['split']}", out["model"],
                                        " (--allow-oov scores it anyway)")


def _evaluate(argv):
    p = argparse.ArgumentParser(prog="seqzoo evaluate", description=run_evaluate.__doc__)
    p.add_argument("model", help="registered name with tag, hf-hub:org/name, org/name, a checkpoint folder or a .ckpt")
    p.add_argument("--dataset", default=None, help="corpus name or path; taggers and classifiers also take one "
                   ".conllu / .tsv file, scored whole (default: the model family's: "
                   + ", ".join(f"{d} for {f}" for f, d in EVAL_DATASETS.items() if f != "window_lm") + ")")
    p.add_argument("--split", default="test", help="train, valid or test (default: test)")
    p.add_argument("--data-dir", default=None, help="local mirror of the corpora (default: $SEQZOO_DATA)")
    p.add_argument("--revision", default=None, help="Hub branch, tag or commit sha (default: main)")
    p.add_argument("--batch-size", type=int, default=None, help="neural LMs: columns of the token stream (default: 10)")
    p.add_argument("--bptt", type=int, default=None, help="neural LMs: time steps per batch (default: 35)")
    p.add_argument("--src-lang", default=None, help="translation models: source language, e.g. de")
    p.add_argument("--tgt-lang", default=None, help="translation models: target language, e.g. en")
    p.add_argument("--beam", type=int, default=None,
                   help="translation and CTC models: beam size, 1 = greedy (default: 5 for translation, 1 for CTC)")
    p.add_argument("--length-penalty", type=float, default=None, help="translation models: GNMT alpha (default: 0.6)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a Lightning .ckpt (a pickle; read with torch.load(weights_only=True))")
    p.add_argument("--allow-oov", action="store_true",
                   help="language models: score even if over half the words are not in the model's vocabulary")
    p.add_argument("--tag-column", default=None, help="taggers: upos or xpos (default: upos)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    if a.beam is not None and a.beam < 1:
        raise ValueError(f"--beam must be >= 1, got {a.beam}")
    r = run_evaluate(a.model, a.dataset, a.split, a.data_dir, a.trust_pickle, a.revision, a.batch_size, a.bptt,
                     a.src_lang, a.tgt_lang, a.beam, a.length_penalty, a.allow_oov, a.tag_column)
    where = f"{a.model} on {r['dataset']} {r['split']}"
    if a.json:
        print(json.dumps(r))
    elif "bleu" in r:
        print(f"{where} ({a.src_lang}->{a.tgt_lang}, beam {r['beam_size']}): BLEU "
              f"{r['bleu']:.2f}, chrF {r['chrf']:.2f} over {r['sentences']} sentences ({r['seconds']:.1f} s)")
    elif "per" in r:
        print(f"{where} (beam {r['beam_size']}): phoneme error rate {r['per']:.2%}, word error rate {r['wer']:.2%} "
              f"over {r['words']} words ({r['seconds']:.1f} s)")
    elif "accuracy" in r:
        unit = f"{r['tokens']} tokens" if "tokens" in r else f"{r['sentences']} sentences"
        print(f"{where}: accuracy {r['accuracy']:.2%} over {unit} ({r['seconds']:.1f} s)")
    else:
        nats = f" ({r['nats_per_char']:.3f} nats/char)" if "nats_per_char" in r else ""
        print(f"{where}: perplexity {r['perplexity']:.2f}{nats} over {r['tokens']} tokens, "
              f"{r['oov_rate']:.2%} read as <unk> ({r['seconds']:.1f} s)")


def run_push(checkpoint: str, repo_id: str, private: bool = False, revision: str | None = None,
             message: str | None = None, trust_pickle: bool = False, data_dir: str | None = None):
    """Upload a checkpoint folder (its README.md kept as the card) or a Lightning .ckpt (converted) in one commit."""
    from pathlib import Path

    from seqzoo.hub import CARD_NAME, from_pretrained, load_lightning_checkpoint, push_to_hub

    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    card = None
    if path.is_dir():
        model = from_pretrained(path, trust_pickle=trust_pickle)  # validates the folder before anything leaves
        if (path / CARD_NAME).is_file():
            card = (path / CARD_NAME).read_text(encoding="utf-8")
    else:
        model = load_lightning_checkpoint(path, trust_pickle, data_dir=data_dir, require_vocab=True)
    return push_to_hub(model, repo_id, private=private, revision=revision, commit_message=message, card=card)


def _push(argv):
    p = argparse.ArgumentParser(prog="seqzoo push", description=run_push.__doc__)
    p.add_argument("checkpoint", help="a seqzoo checkpoint folder or a Lightning .ckpt")
    p.add_argument("--repo-id", required=True, help="Hub repo, org/name (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", default=None, help="branch to commit to (created from main if new)")
    p.add_argument("--message", default=None, help="commit message")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a Lightning .ckpt (a pickle; read with torch.load(weights_only=True))")
    p.add_argument("--data-dir", default=None, help=".ckpt only: corpus mirror to rebuild the vocab from")
    a = p.parse_args(argv)
    info = run_push(a.checkpoint, a.repo_id, a.private, a.revision, a.message, a.trust_pickle, a.data_dir)
    print(f"pushed {a.checkpoint} to {a.repo_id}: {getattr(info, 'commit_url', info)}")


def _finetune(argv):
    from seqzoo.finetune import finetune_labelled, finetune_lm, finetune_seq2seq
    p = argparse.ArgumentParser(prog="seqzoo finetune", description="Fine-tune a pretrained language model (--train), "
                                "translation model (--src/--tgt) or tagger, classifier or CTC model (--data) on your "
                                "own data. Keeps the pretrained vocabulary (an LM's optionally extended); saves a new "
                                "seqzoo checkpoint whose card names its base.")
    p.add_argument("model", help="registered name with tag, hf-hub:org/name, org/name, a checkpoint folder or a .ckpt")
    p.add_argument("--train", default=None, help="LM: UTF-8 text, one sentence or paragraph per line")
    p.add_argument("--src", default=None, help="translation: source side, one sentence per line")
    p.add_argument("--tgt", default=None, help="translation: target side, line-aligned with --src")
    p.add_argument("--valid-src", default=None, help="translation: validation source (default: last 5%% of --src)")
    p.add_argument("--valid-tgt", default=None, help="translation: validation target")
    p.add_argument("--data", default=None, help="tagger: a folder of *-ud-{train,dev,test}.conllu; classifier: a "
                   "folder with train.tsv and dev.tsv (GLUE format); CTC: a CMUdict-format dictionary")
    p.add_argument("--tag-column", default=None, help="--data, taggers: upos or xpos (default: upos)")
    p.add_argument("--valid", default=None, help="validation text (default: train split 90/5/5 by line)")
    p.add_argument("--test", default=None,
                   help="test text, scored before and after; needs --valid (--valid without --test: no test score)")
    p.add_argument("--out", default=None, help="new checkpoint folder (default: runs/finetune/NAME)")
    p.add_argument("--extend-vocab", action="store_true", help="append the new corpus's frequent unknown words")
    p.add_argument("--min-freq", type=int, default=2, help="--extend-vocab: times a word must occur (default: 2)")
    p.add_argument("--max-new-words", type=int, default=None, help="--extend-vocab: at most this many words")
    p.add_argument("--vectors", default=None, help="--extend-vocab: word vectors (e.g. FastText .bin) for new rows")
    p.add_argument("--epochs", type=int, default=3, help="(default: 3)")
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many batches (default: no limit)")
    p.add_argument("--optimizer", default=None, help="sgd, adam or adamw (default: sgd for an LM, else adam)")
    p.add_argument("--lr", type=float, default=None, help="default: LM 1.0 for sgd (1/20 of from-scratch), 3e-4 for "
                                                          "adam; others 3e-4 for adam, 0.1 for sgd")
    p.add_argument("--lr-decay", type=float, default=0.5, help="LR factor after every epoch (default: 0.5)")
    p.add_argument("--batch-size", type=int, default=None, help="LM: stream columns (default: 20); translation: "
                                                                 "pairs per batch (default: 64); --data: examples "
                                                                 "per batch (default: 32)")
    p.add_argument("--bptt", type=int, default=35, help="(default: 35)")
    p.add_argument("--trust-pickle", action="store_true", help="allow a Lightning .ckpt or gensim native --vectors "
                   "(pickles)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    if sum(x is not None for x in (a.train, a.src or a.tgt, a.data)) != 1:
        raise ValueError("give one of --train FILE (a language model), --src FILE --tgt FILE (a translation model) "
                         "or --data PATH (a tagger, classifier or CTC model)")
    size = lambda default: default if a.batch_size is None else a.batch_size  # noqa: E731 (0 stays an error)
    if a.data is not None:
        r = finetune_labelled(a.model, a.data, a.out, a.epochs, a.optimizer or "adam", a.lr, a.lr_decay, size(32),
                              a.tag_column, max_steps=a.max_steps, trust_pickle=a.trust_pickle)
        b, f = r["before"], r["after"]
        print(json.dumps(r) if a.json else f"{a.model} -> {r['out']}: " + ", ".join(
            f"{k.replace('_', ' ')} {b[k]:.4f} -> {f[k]:.4f}" for k in f) + f"; {100 * r['oov_rate']:.2f}% of the "
            f"training words are not in the vocabulary")
        return
    if a.train is None:
        if a.src is None or a.tgt is None:
            raise ValueError("a translation model needs both --src and --tgt")
        r = finetune_seq2seq(a.model, a.src, a.tgt, a.valid_src, a.valid_tgt, a.out, a.epochs, a.optimizer or "adam",
                             a.lr, a.lr_decay, size(64), a.max_steps,
                             trust_pickle=a.trust_pickle)
        print(json.dumps(r) if a.json else f"{a.model} -> {r['out']}: valid BLEU (greedy) "
              f"{r['before']['valid_bleu']:.2f} -> {r['after']['valid_bleu']:.2f}; <unk> subwords: source "
              f"{100 * r['unk']['src']:.2f}%, target {100 * r['unk']['tgt']:.2f}%")
        return
    r = finetune_lm(a.model, a.train, a.valid, a.test, a.out, a.extend_vocab, a.min_freq, a.max_new_words, a.vectors,
                    a.epochs, a.optimizer or "sgd", a.lr, a.lr_decay, size(20), a.bptt, max_steps=a.max_steps,
                    trust_pickle=a.trust_pickle)
    if a.json:
        print(json.dumps(r))
    else:
        b, f, o = r["before"], r["after"], r["oov"]
        chars = "valid_nats_per_char" in f  # a char LM: nats per character, as its recipe reports it
        metric, fmt, unit = ("nats_per_char", ".3f", "characters") if chars else ("perplexity", ".2f", "words")
        test = (f", test {b['test_' + metric]:{fmt}} -> {f['test_' + metric]:{fmt}}" if f"test_{metric}" in f
                else " (no --test given)")
        print(f"{a.model} -> {r['out']}: valid {metric.replace('_', ' ')} {b['valid_' + metric]:{fmt}} -> "
              f"{f['valid_' + metric]:{fmt}}{test}; OOV rate (valid) "
              f"{100 * o['valid_before']:.2f}% -> {100 * o['valid_after']:.2f}% ({r['new_words']} new {unit})")


VERBS = {
    "fit": "train a model (LightningCLI; --config recipes/.../x.yaml)",
    "validate": "evaluate on the validation split (LightningCLI)",
    "test": "evaluate on the test split (LightningCLI)",
    "ngram": "fit an n-gram LM and print its perplexity",
    "reproduce": "run a recipe folder and write its results table",
    "list": "list registered models",
    "evaluate": "score a checkpoint (name, Hub repo, folder or .ckpt) on a split: perplexity, BLEU, accuracy, PER",
    "push": "upload a checkpoint folder or .ckpt to the Hugging Face Hub in one commit",
    "finetune": "fine-tune a pretrained model on your own data (LM, translation, tagger, classifier, CTC)",
    "translate": "translate stdin line by line with a seq2seq checkpoint (greedy or beam)",
    "generate": "continue a prompt with a language model (greedy, top-k, top-p, temperature)",
    "predict": "stdin line by line: tag, classify, transcribe (G2P), or score with a language model",
    "embeddings": "train (word2vec / fasttext), evaluate or query word vectors",
    "gradient-flow": "measure |d loss_T / d h_(T-k)| for RNN / LSTM / GRU (recipes/gradient_flow)",
}


def _lazy(dotted: str):
    """A verb whose module is imported only when the verb runs."""
    return lambda argv: _import(dotted)(argv)

_FNS = {"ngram": _ngram, "list": _list, "reproduce": _reproduce, "evaluate": _evaluate, "push": _push,
        "finetune": _finetune,
        "translate": _lazy("seqzoo.decoding.translate_main"), "generate": _lazy("seqzoo.decoding.generate_main"),
        "predict": _lazy("seqzoo.predict.predict_main"),
        "embeddings": _lazy("seqzoo.embeddings.embeddings_main"),
        "gradient-flow": _lazy("seqzoo.diagnostics.main")}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: seqzoo VERB [ARGS]\n\nverbs:")
        for v, h in VERBS.items():
            print(f"  {v:<14} {h}")
        print("\n`seqzoo VERB --help` for each verb's flags; `seqzoo --version` for the version.")
        return 0
    if argv[0] in ("-V", "--version"):
        from seqzoo import __version__
        print(f"seqzoo {__version__}")
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"seqzoo: unknown verb {verb!r}; valid: {', '.join(VERBS)}", file=sys.stderr)
        return 2
    try:
        if verb in LIGHTNING_VERBS:
            _run_lightning([verb, *rest])
            return 0
        return _FNS[verb](rest) or 0
    except (ValueError, FileNotFoundError, FloatingPointError, ConnectionError, PermissionError) as e:  # one line
        print(f"seqzoo {verb}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
