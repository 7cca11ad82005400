"""Attention heat maps of a seq2seq model: which source subwords each output subword looked at.

    python -m seqzoo.heatmaps CHECKPOINT OUT_DIR [--beam 5] < src.txt

``CHECKPOINT`` is anything ``seqzoo.from_pretrained`` loads (a registered name, Hub repo or folder). Each
input line is translated (beam search), the translation is fed back through the decoder to read the attention
weights at every step, and ``OUT_DIR/attention_<n>.png`` plus ``attention.json`` (tokens and weights) are
written. Models without attention have no weights to show and are refused.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from seqzoo.data.translation import BOS_ID, EOS_ID, detokenize, encode_source

__all__ = ["attention_map", "plot_attention", "write_heatmaps"]


@torch.no_grad()
def attention_map(net, source: str, beam_size: int = 5, alpha: float = 0.0) -> dict:
    """Translate ``source`` with ``net`` (a ``Seq2SeqNet`` with ``.src_tokenizer`` / ``.tgt_tokenizer``).

    Returns ``{"source", "translation", "src_tokens", "tgt_tokens", "weights"}``: ``weights[t][s]`` is the
    attention of output token ``t`` (the hypothesis, then ``<eos>``) on source token ``s`` (``<eos>`` last);
    every row sums to 1.
    """
    if net.config.attention == "none":
        raise ValueError("this model has no attention (attention='none'): there are no weights to plot")
    src_tok, tgt_tok = net.src_tokenizer, net.tgt_tokenizer
    ids = encode_source(src_tok, [source])[0]
    src = torch.tensor([ids])
    lengths = torch.tensor([len(ids)])
    hyp = [t for t in net.generate(src, lengths, beam_size, None, alpha)[0][0].tokens if t != EOS_ID]
    _, attn = net(src, lengths, torch.tensor([[BOS_ID] + hyp]), return_attention=True)  # (1, T, S)
    return {"source": source, "translation": detokenize(tgt_tok, hyp),
            "src_tokens": [src_tok.id_to_token(i) for i in ids],
            "tgt_tokens": [tgt_tok.id_to_token(i) for i in hyp] + [tgt_tok.id_to_token(EOS_ID)],
            "weights": attn[0].tolist()}


def plot_attention(m: dict, path: str | Path) -> None:
    """One :func:`attention_map` as a PNG: source tokens across, output tokens down."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    S, T = len(m["src_tokens"]), len(m["tgt_tokens"])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * S + 2), max(3.0, 0.4 * T + 1.5)))
    im = ax.imshow(m["weights"], cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(S), m["src_tokens"], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(T), m["tgt_tokens"], fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    ax.set_title(m["translation"][:80], fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_heatmaps(net, sources: list[str], out_dir: str | Path, beam_size: int = 5, alpha: float = 0.0) -> Path:
    """``attention_<n>.png`` per non-empty source line and ``attention.json`` with all of them, in ``out_dir``."""
    sources = [s.strip() for s in sources if s.strip()]
    if not sources:
        raise ValueError("no source sentences: give one per line")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    maps = [attention_map(net, s, beam_size, alpha) for s in sources]
    for n, m in enumerate(maps, 1):
        plot_attention(m, out / f"attention_{n}.png")
    (out / "attention.json").write_text(json.dumps(maps, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m seqzoo.heatmaps", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", help="registered name, Hub repo or seqzoo folder of a seq2seq model")
    p.add_argument("out_dir")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--length-penalty", type=float, default=0.0)
    p.add_argument("--trust-pickle", action="store_true", help="allow a pickled checkpoint (runs its code)")
    a = p.parse_args(argv)
    from seqzoo.data.corpora import read_stdin_lines
    from seqzoo.decoding import check_length_penalty
    from seqzoo.hub import from_pretrained
    from seqzoo.models.seq2seq import Seq2SeqNet
    try:  # bad input: one line
        if a.beam < 1:
            raise ValueError(f"--beam must be >= 1, got {a.beam}")
        check_length_penalty(a.length_penalty)
        net = from_pretrained(a.checkpoint, trust_pickle=a.trust_pickle)
        if not isinstance(net, Seq2SeqNet):
            raise ValueError(f"{a.checkpoint} is a {type(net).__name__}, not a translation model")
        out = write_heatmaps(net.eval(), read_stdin_lines(), a.out_dir, a.beam, a.length_penalty)
    except (ValueError, OSError) as e:  # FileNotFoundError included
        sys.exit(f"error: {e}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
