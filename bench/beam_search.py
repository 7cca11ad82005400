"""Batched beam search (64 sentences x 5 beams in one batch) vs the same search run sentence by sentence.

    OMP_NUM_THREADS=1 python bench/beam_search.py [--batch 64] [--beam 5] [--max-len 40] [--repeats 3]
    OMP_NUM_THREADS=1 python bench/beam_search.py --model FOLDER --src test.de   # a trained model, real text

Both run :func:`seqzoo.decoding.beam_search` on the same model and the same 64 source sentences: by default a
random-init Bahdanau GRU (``seq2seq_gru_bahdanau``, 256 units, vocab 8000) on random sentences of 5-25 tokens,
which never emits ``<eos>``, so every hypothesis runs to ``--max-len``; with ``--model`` a trained seqzoo
translation folder on the first lines of ``--src``, whose hypotheses end at their own lengths. The
per-sentence baseline calls it once per sentence on the unpadded sentence (batched over the beams only).
On a CPU the times are CPU seconds of this process (run it with one thread: ``OMP_NUM_THREADS=1``), on a
GPU wall seconds. They alternate ``--repeats`` times and the medians are compared; the hypotheses must be
identical. The same run times the output layer alone, 64 products of 5 rows against one of 320, 40 times
each: the speed-up batching can give on the largest product of a step (``output_layer.ceiling_speedup``).
Writes ``--out`` (default: bench/results/beam_search.json).
"""
from __future__ import annotations

import argparse
import copy
import gzip
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from seqzoo.data.translation import BOS_ID, EOS_ID, PAD_ID, encode_source
from seqzoo.decoding import beam_search
from seqzoo.hub import from_pretrained
from seqzoo.registry import create_model


def batched(net, src, lengths, beam, max_len, alpha):
    start = torch.full((src.shape[0],), BOS_ID, device=src.device)
    return beam_search(net.decode_step, net.encode(src, lengths), start, EOS_ID, beam, max_len, alpha)


def per_sentence(net, src, lengths, beam, max_len, alpha):
    out = []
    for i, n in enumerate(lengths.tolist()):
        one = src[i:i + 1, :n]
        start = torch.full((1,), BOS_ID, device=src.device)
        out += beam_search(net.decode_step, net.encode(one, lengths[i:i + 1]), start, EOS_ID, beam, max_len, alpha)
    return out


def timed(fn, *args):
    """Wall seconds on a GPU; on a CPU, this process's CPU seconds (a shared machine's load does not count)."""
    cuda = args[1].is_cuda
    clock = time.perf_counter if cuda else time.process_time
    if cuda:
        torch.cuda.synchronize()
    t0 = clock()
    out = fn(*args)
    if cuda:
        torch.cuda.synchronize()
    return clock() - t0, out


def output_layer_ceiling(net, batch, beam, device, calls=40):
    """The speed-up that batching can give on the output layer alone, the largest product of a decoding step:
    ``batch`` products of ``beam`` rows (per sentence) against one of ``batch * beam`` rows, timed alike."""
    layer = net.decoder.out
    small, big = (torch.randn(r, layer.in_features, device=device) for r in (beam, batch * beam))
    seconds = {}
    with torch.inference_mode():
        for name, x, n in (("per_sentence", small, calls * batch), ("batched", big, calls)):
            layer(x)  # warm-up
            seconds[name] = timed(lambda _net, x: [layer(x) for _ in range(n)], net, x)[0]
    return {"rows": {"per_sentence": beam, "batched": batch * beam}, "products": calls, "seconds": seconds,
            "ceiling_speedup": seconds["per_sentence"] / seconds["batched"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64, help="sentences (default: 64)")
    p.add_argument("--beam", type=int, default=5, help="beam size (default: 5)")
    p.add_argument("--max-len", type=int, default=40, help="output tokens at most (default: 40)")
    p.add_argument("--alpha", type=float, default=0.6, help="length penalty (default: 0.6)")
    p.add_argument("--vocab", type=int, default=8000, help="source and target vocab (default: 8000)")
    p.add_argument("--hidden", type=int, default=256, help="hidden size (default: 256)")
    p.add_argument("--repeats", type=int, default=3, help="alternating runs of each (default: 3)")
    p.add_argument("--model", default=None, help="a trained seqzoo translation folder (default: random init)")
    p.add_argument("--src", default=None, help="with --model: source text, one sentence per line (.gz too)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "beam_search.json"))
    p.add_argument("--only", choices=["batched", "per_sentence"], default=None,
                   help="run one side once and stop (bench/peak_memory.py measures each side alone)")
    a = p.parse_args(argv)

    torch.manual_seed(0)
    if a.model:
        if not a.src:
            p.error("--model needs --src")
        net = from_pretrained(a.model).to(a.device).eval()
        with (gzip.open if a.src.endswith(".gz") else open)(a.src, "rt", encoding="utf-8") as f:
            lines = [t for t in f.read().splitlines() if t.strip()][:a.batch]
        ids = encode_source(net.src_tokenizer, lines)
        a.vocab, a.hidden = net.config.tgt_vocab_size, net.config.hidden_size
    else:
        net = create_model("seq2seq_gru_bahdanau", vocab_size=a.vocab, embedding_size=a.hidden // 2,
                           hidden_size=a.hidden, dropout=0.0).to(a.device).eval()
        ids = [torch.randint(4, a.vocab, (n,)).tolist() for n in torch.randint(5, 26, (a.batch,)).tolist()]
    lengths = torch.tensor([len(x) for x in ids])
    src = torch.full((len(ids), int(lengths.max())), PAD_ID, dtype=torch.long)
    for i, x in enumerate(ids):
        src[i, :len(x)] = torch.tensor(x)
    src, lengths = src.to(a.device), lengths.to(a.device)
    args = (net, src, lengths, a.beam, a.max_len, a.alpha)
    if a.only:
        with torch.inference_mode():
            (batched if a.only == "batched" else per_sentence)(*args)
        return
    batched(*args)  # warm-up
    times = {"batched": [], "per_sentence": []}
    with torch.inference_mode():
        for _ in range(a.repeats):
            tb, out_b = timed(batched, *args)
            ts, out_s = timed(per_sentence, *args)
            times["batched"].append(tb)
            times["per_sentence"].append(ts)
    agree = [b[0].tokens == s[0].tokens for b, s in zip(out_b, out_s)]
    same, same64 = all(agree), None
    if not same:  # float32 products of 320 rows and of 5 can round differently (GPU kernels); float64 settles it
        with torch.inference_mode():
            args64 = (copy.deepcopy(net).double(), *args[1:])
            same64 = [h[0].tokens for h in batched(*args64)] == [h[0].tokens for h in per_sentence(*args64)]
    ceiling = output_layer_ceiling(net, len(ids), a.beam, a.device)
    med = {k: statistics.median(v) for k, v in times.items()}
    steps = max(len(h[0].tokens) for h in out_b)
    result = {"batch": len(ids), "beam": a.beam, "max_len": a.max_len, "vocab": a.vocab, "hidden": a.hidden,
              "model": f"{a.model} on {a.src}" if a.model else "seq2seq_gru_bahdanau (random init)",
              "clock": "wall" if a.device.startswith("cuda") else "cpu process time",
              "seconds": med, "all_seconds": times,
              "speedup": med["per_sentence"] / med["batched"], "sentences_per_second":
              {k: len(ids) / v for k, v in med.items()}, "longest_hypothesis": steps, "identical_hypotheses": same,
              "identical_sentences": sum(agree), "identical_in_float64": same64, "output_layer": ceiling,
              "device": torch.cuda.get_device_name(0) if a.device.startswith("cuda") else
              f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
              "torch": torch.__version__}
    print(f"batched beam search: {med['batched']:.3f} s for {len(ids)} sentences; per sentence: "
          f"{med['per_sentence']:.3f} s; speed-up {result['speedup']:.1f}x; identical hypotheses: "
          f"{sum(agree)} of {len(agree)}" + ("" if same else f" (float64: {'all' if same64 else 'not all'})")
          + f"; the output layer alone allows {ceiling['ceiling_speedup']:.1f}x")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    if not same and not same64:
        raise SystemExit("batched and per-sentence beam search disagree, in float64 too")


if __name__ == "__main__":
    main()
