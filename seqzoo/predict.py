"""``seqzoo predict CHECKPOINT < in.txt > out.txt``: one output line per input line, with a tagger,
a classifier, a CTC (G2P) model or a language model.

- language model (RNN, window or n-gram): ``logprob<TAB>tokens<TAB>oov<TAB>perplexity``, the line scored
  on its own (:func:`seqzoo.lm.score_lines`: natural log, the closing ``<eos>`` counted in ``tokens``);
- tagger: the line's words, each as ``word/TAG`` (``--conll``: ``word<TAB>TAG`` per line, a blank line
  after each sentence);
- classifier: ``label<TAB>probability``;
- CTC: the labels of each word of the line (phonemes such as ``Z UW`` for ``zoo``), words separated
  by ``' | '``.

An empty input line gives an empty output line (counted on standard error for a classifier, which
has nothing to classify there). For a CTC model, words with characters outside its vocabulary (read as
``<unk>``) are counted on standard error.
"""
from __future__ import annotations

import argparse
import math
import sys

import torch

from seqzoo.utils import parse_device

__all__ = ["predict_lines", "predict_main"]

PREDICT_FAMILIES = ("tagger", "classifier", "ctc", "rnn_lm", "window_lm", "ngram")


def predict_lines(model, lines: list[str], beam_size: int = 1, batch_size: int = 64, conll: bool = False) -> list[str]:
    """The output line for each input line (see the module doc), by the model's family."""
    from seqzoo.hub import model_family
    family = model_family(model)
    if family == "tagger":
        sents = [line.split() for line in lines]
        tagged = model.tag(sents, batch_size=batch_size)
        if conll:
            return ["".join(f"{w}\t{t}\n" for w, t in zip(s, ts)) for s, ts in zip(sents, tagged)]
        return [" ".join(f"{w}/{t}" for w, t in zip(s, ts)) for s, ts in zip(sents, tagged)]
    if family == "classifier":
        full = [i for i, line in enumerate(lines) if line.split()]
        out = [""] * len(lines)
        if full:
            probs = model.probabilities([lines[i] for i in full], batch_size)
            names = getattr(model, "labels", None) or [str(c) for c in range(probs.shape[1])]
            for i, (p, c) in zip(full, zip(*probs.max(-1))):
                out[i] = f"{names[int(c)]}\t{float(p):.4f}"
        return out
    if family == "ctc":
        words = [line.split() for line in lines]
        flat = model.transcribe([w for ws in words for w in ws], beam_size=beam_size, batch_size=batch_size)
        out, k = [], 0
        for ws in words:
            out.append(" | ".join(" ".join(labels) for labels in flat[k:k + len(ws)]))
            k += len(ws)
        return out
    if family in ("rnn_lm", "window_lm", "ngram"):
        from seqzoo.lm import score_lines
        return [f"{r['logprob']:.4f}\t{r['tokens']}\t{r['oov']}\t{math.exp(-r['logprob'] / r['tokens']):.2f}"
                for r in score_lines(model, lines, batch_size)]
    raise ValueError(_not_predictable(model, family))


def _not_predictable(model, family: str) -> str:
    return (f"{type(model).__name__} is a {family} model: seqzoo predict runs taggers, classifiers, CTC and "
            f"language models; translate with seqzoo translate")


def predict_main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="seqzoo predict", description=__doc__.replace("``", "").replace(":func:", ""),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a registered name with a tag, hf-hub:org/name, org/name, a checkpoint folder "
                   "or a Lightning .ckpt")
    p.add_argument("--beam", type=int, default=1, help="CTC models: prefix beam width, 1 = best path (default: 1)")
    p.add_argument("--batch-size", type=int, default=64, help="lines (CTC: words) per batch (default: 64)")
    p.add_argument("--conll", action="store_true", help="taggers: word<TAB>tag lines, a blank line between sentences")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--revision", default=None, help="Hub branch, tag or commit sha (default: main)")
    p.add_argument("--data-dir", default=None, help=".ckpt only: corpus mirror to rebuild the vocabularies from")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a Lightning .ckpt (a pickle; read with torch.load(weights_only=True))")
    a = p.parse_args(argv)
    for flag, value in (("--beam", a.beam), ("--batch-size", a.batch_size)):
        if value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    device = parse_device(a.device)
    from seqzoo.data.corpora import read_stdin_lines
    from seqzoo.hub import load_model, model_family
    model = load_model(a.checkpoint, a.trust_pickle, a.data_dir, a.revision)
    family = model_family(model)
    if family not in PREDICT_FAMILIES:  # before reading stdin: a wrong model fails at once
        raise ValueError(_not_predictable(model, family))
    for flag, given, fam in (("--beam", a.beam != 1, "ctc"), ("--conll", a.conll, "tagger")):
        if given and family != fam:  # it would be ignored: the user meant another model
            raise ValueError(f"{flag} applies to {fam} models; {a.checkpoint} is a {type(model).__name__} ({family})")
    lines = read_stdin_lines()
    if isinstance(model, torch.nn.Module):  # an n-gram LM is numpy arrays: it runs on the CPU
        model = model.to(device)
    out = predict_lines(model, lines, a.beam, a.batch_size, a.conll)
    sys.stdout.write("".join(o + "\n" for o in out))
    empty = sum(not line.split() for line in lines)
    if empty and family == "classifier":
        print(f"seqzoo predict: {empty} empty line(s) left empty in the output", file=sys.stderr)
    if family == "ctc":  # characters are the input symbols: one the model never saw is worth saying
        norm = str.lower if model.vocab.uncased else str
        odd = [w for line in lines for w in line.split() if any(c not in model.vocab for c in norm(w))]
        if odd:
            print(f"seqzoo predict: {len(odd)} word(s) have characters the model does not know, read as <unk> "
                  f"(first: {odd[0]!r})", file=sys.stderr)
    return 0
