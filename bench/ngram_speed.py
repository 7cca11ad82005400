"""Wall time of the numpy n-gram LMs on PTB: fit + valid + test perplexity, KN-3 and KN-5.

    python bench/ngram_speed.py [--data-dir ../shared/data] [--repeats 3] [--no-nltk]

Each model is fitted and scored ``--repeats`` times; the table shows the median and the
minimum (the machine may be shared, so the load average is recorded too). KN-5 also times an
ARPA write and read. If ``nltk`` imports, ``nltk.lm.KneserNeyInterpolated`` (order 3) runs as
a baseline on a slice -- the first ``--nltk-train`` training sentences, scoring the first
``--nltk-test`` test sentences -- because its per-token scoring is far too slow for all of
PTB; ``NGramLM(3)`` is timed on the very same slice. The two are different estimators (NLTK:
plain interpolated KN, one discount 0.1, p = 0 for words unseen in its slice), so only the
times compare. Writes bench/results/ngram_speed.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from seqzoo.models.ngram import NGramLM

ROOT = Path(__file__).resolve().parents[1]


def read(data_dir: Path, split: str) -> list[list[str]]:
    with open(data_dir / "ptb" / f"ptb.{split}.txt") as f:
        return [line.split() for line in f]


def time_kn(order: int, train, valid, test, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        model = NGramLM(order, "modified-kn").fit(train)
        t1 = time.perf_counter()
        ppl_valid = model.perplexity(valid)
        ppl_test = model.perplexity(test)
        t2, c2 = time.perf_counter(), time.process_time()
        runs.append(dict(fit_s=t1 - t0, score_s=t2 - t1, total_s=t2 - t0, total_cpu_s=c2 - c0))
    out = dict(order=order, ppl_valid=ppl_valid, ppl_test=ppl_test,
               test_tokens=model.score_sentences(test)[1], ngrams=[len(lv.keys) for lv in model._levels],
               discounts=model.discounts, runs=runs)
    for key in ("fit_s", "score_s", "total_s", "total_cpu_s"):
        out[key + "_median"] = statistics.median(r[key] for r in runs)
        out[key + "_min"] = min(r[key] for r in runs)
    if order == 5:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            model.to_arpa(Path(tmp) / "kn5.arpa")
            t1 = time.perf_counter()
            loaded = NGramLM.from_arpa(Path(tmp) / "kn5.arpa")
            t2 = time.perf_counter()
            out.update(arpa_write_s=t1 - t0, arpa_read_s=t2 - t1, ppl_test_reloaded=loaded.perplexity(test),
                       arpa_mb=os.path.getsize(Path(tmp) / "kn5.arpa") / 2**20)
    return out


def nltk_baseline(train, test, n_train: int, n_test: int) -> dict:
    try:
        from nltk.lm import KneserNeyInterpolated
        from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline
    except ImportError as e:
        reason = f"nltk not importable ({e}); `pip install nltk` to run the baseline"
        print(f"skipping the NLTK baseline: {reason}")
        return dict(skipped=reason)
    import nltk
    train, test = train[:n_train], test[:n_test]
    t0 = time.perf_counter()
    data, vocab = padded_everygram_pipeline(3, train)
    lm = KneserNeyInterpolated(3)
    lm.fit(data, vocab)
    t1 = time.perf_counter()
    total, n, zeros = 0.0, 0, 0
    for sent in test:  # score w1 .. wn </s>, each from the two tokens before it, like NGramLM
        padded = list(pad_both_ends(sent, n=3))
        for i in range(2, len(sent) + 3):
            lp = lm.logscore(padded[i], padded[i - 2:i])  # log2
            zeros += lp == -math.inf
            total += lp
            n += 1
    t2 = time.perf_counter()
    ours0 = time.perf_counter()
    ours = NGramLM(3).fit(train)
    ours1 = time.perf_counter()
    ours_total, ours_n = ours.score_sentences(test)
    ours2 = time.perf_counter()
    return dict(nltk_version=nltk.__version__, train_sentences=len(train), test_sentences=len(test),
                test_tokens=n, nltk_fit_s=t1 - t0, nltk_score_s=t2 - t1, nltk_total_s=t2 - t0,
                nltk_ppl=2 ** (-total / n), nltk_zero_prob_tokens=int(zeros),
                ours_fit_s=ours1 - ours0, ours_score_s=ours2 - ours1, ours_total_s=ours2 - ours0,
                ours_ppl=math.exp(-ours_total / ours_n), ours_test_tokens=ours_n,
                speedup_total=(t2 - t0) / (ours2 - ours0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("SEQZOO_DATA", ROOT.parent / "shared" / "data"))
    ap.add_argument("--data-dir", type=Path, default=default, help="folder holding ptb/ (default %(default)s)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-nltk", action="store_true")
    ap.add_argument("--nltk-train", type=int, default=5000)
    ap.add_argument("--nltk-test", type=int, default=25)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ngram_speed.json")
    args = ap.parse_args()

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    train, valid, test = (read(args.data_dir, s) for s in ("train", "valid", "test"))
    read_s = time.perf_counter() - t0
    results = {order: time_kn(order, train, valid, test, args.repeats) for order in (3, 5)}
    baseline = (dict(skipped="--no-nltk") if args.no_nltk
                else nltk_baseline(train, test, args.nltk_train, args.nltk_test))
    load_after = os.getloadavg()

    print(f"PTB read + split: {read_s:.2f} s; load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    print(f"{'model':<6} {'fit s':>12} {'valid+test s':>14} {'total s':>12} {'total CPU s':>12} "
          f"{'ppl valid':>10} {'ppl test':>9}")
    for order, r in results.items():
        print(f"kn{order:<4} {r['fit_s_median']:>6.2f} ({r['fit_s_min']:.2f}) {r['score_s_median']:>8.2f} "
              f"({r['score_s_min']:.2f}) {r['total_s_median']:>6.2f} ({r['total_s_min']:.2f}) "
              f"{r['total_cpu_s_median']:>6.2f} ({r['total_cpu_s_min']:.2f}) "
              f"{r['ppl_valid']:>10.2f} {r['ppl_test']:>9.2f}")
    print("(wall seconds, median over repeats, minimum in brackets; CPU = this process's CPU time)")
    r5 = results[5]
    print(f"kn5 ARPA: write {r5['arpa_write_s']:.2f} s, read {r5['arpa_read_s']:.2f} s, {r5['arpa_mb']:.0f} MiB, "
          f"reloaded test ppl {r5['ppl_test_reloaded']:.3f}")
    if "skipped" not in baseline:
        b = baseline
        print(f"NLTK KneserNeyInterpolated(3) {b['nltk_version']} on {b['train_sentences']} train / "
              f"{b['test_sentences']} test sentences ({b['test_tokens']} tokens): fit {b['nltk_fit_s']:.2f} s, "
              f"score {b['nltk_score_s']:.2f} s, ppl {b['nltk_ppl']:.1f} "
              f"({b['nltk_zero_prob_tokens']} tokens with p = 0)")
        print(f"NGramLM(3) on the same slice: fit {b['ours_fit_s']:.3f} s, score {b['ours_score_s']:.3f} s, "
              f"ppl {b['ours_ppl']:.1f}; {b['speedup_total']:.0f}x faster end to end")

    report = dict(results={f"kn{o}": r for o, r in results.items()}, nltk_baseline=baseline, read_s=read_s,
                  machine=dict(platform=platform.platform(), processor=platform.processor(),
                               python=platform.python_version(), cpu_count=os.cpu_count(),
                               loadavg_before=load_before, loadavg_after=load_after),
                  repeats=args.repeats, time=time.strftime("%Y-%m-%d %H:%M:%S"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
