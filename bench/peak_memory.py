"""Peak memory (resident set) of each bench row, seqzoo and its baseline, each side in a fresh process.

    OMP_NUM_THREADS=1 python bench/peak_memory.py [--data-dir ../shared/data]

Each side runs the same work as its speed bench (bench/ngram_speed.py, lstm_speed.py, beam_search.py) once, in a
new Python process; its peak RSS is the kernel's ``ru_maxrss`` for that process (``os.wait4``). The first row is a
process that only imports torch, Lightning and seqzoo: the floor every other row stands on. Writes
bench/results/peak_memory.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = """
import sys, torch, lightning, seqzoo
sys.path.insert(0, {bench!r})
data_dir = {data!r}
"""

SIDES = {
    "imports only": ("floor", "pass"),
    "KN-5 PTB: fit + valid + test perplexity + ARPA write and read": ("seqzoo", """
from pathlib import Path
from ngram_speed import read, time_kn
d = Path(data_dir); time_kn(5, read(d, "train"), read(d, "valid"), read(d, "test"), repeats=1)
"""),
    "KN-3 on the NLTK slice (5,000 train sentences, 25 test)": ("seqzoo", """
from pathlib import Path
from ngram_speed import read
from seqzoo.models.ngram import NGramLM
d = Path(data_dir); NGramLM(3).fit(read(d, "train")[:5000]).score_sentences(read(d, "test")[:25])
"""),
    "NLTK KneserNeyInterpolated(3) on that slice": ("baseline", """
from pathlib import Path
from ngram_speed import read
from nltk.lm import KneserNeyInterpolated
from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline
d = Path(data_dir)
data, vocab = padded_everygram_pipeline(3, read(d, "train")[:5000])
lm = KneserNeyInterpolated(3); lm.fit(data, vocab)
for sent in read(d, "test")[:25]:
    p = list(pad_both_ends(sent, n=3))
    [lm.logscore(p[i], p[i - 2:i]) for i in range(2, len(sent) + 3)]
"""),
    "LSTM LM, Lightning, 320 steps (Zaremba small)": ("seqzoo", """
from lstm_speed import LanguageModelDataModule, lightning_loop
dm = LanguageModelDataModule("ptb", data_dir=data_dir, batch_size=20, bptt=20); dm.setup(); lightning_loop(dm, 300)
"""),
    "LSTM LM, plain PyTorch loop, 320 steps": ("baseline", """
from lstm_speed import LanguageModelDataModule, plain_loop
dm = LanguageModelDataModule("ptb", data_dir=data_dir, batch_size=20, bptt=20); dm.setup(); plain_loop(dm, 300)
"""),
    "beam search, batched (64 sentences x beam 5)": ("seqzoo", """
import beam_search as b
b.main(["--vocab", "1000", "--hidden", "128", "--repeats", "1", "--out", "/dev/null", "--only", "batched"])
"""),
    "beam search, per sentence": ("baseline", """
import beam_search as b
b.main(["--vocab", "1000", "--hidden", "128", "--repeats", "1", "--out", "/dev/null", "--only", "per_sentence"])
"""),
}


def peak_rss(code: str) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of ``python -c code`` in a new process."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    err = p.stderr.read().decode(errors="replace")
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise SystemExit(f"a bench side failed ({p.returncode}):\n{err[-3000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - t0  # Linux: ru_maxrss is in KiB


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("SEQZOO_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "peak_memory.json")
    a = ap.parse_args()
    prelude = PRELUDE.format(bench=str(ROOT / "bench"), data=str(Path(a.data_dir).resolve()))
    rows = []
    for name, (side, code) in SIDES.items():
        mib, wall = peak_rss(prelude + code)
        rows.append({"row": name, "side": side, "peak_rss_mib": round(mib, 1), "wall_s": round(wall, 1)})
        print(f"{name:<60} {side:<9} {mib:8.1f} MiB  ({wall:.1f} s)", flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"rows": rows, "threads": os.environ.get("OMP_NUM_THREADS", "default"),
                                 "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                                 "python": platform.python_version()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
