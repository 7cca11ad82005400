"""A PTB language model fine-tuned on a slice of WikiText-2: vocabulary kept vs extended.

    python recipes/finetune/run.py BASE [--data-dir ../shared/data] [--train-lines 4000] [--epochs 2]

BASE is a PTB LM checkpoint folder or name (e.g. the export of `seqzoo reproduce recipes/ptb --only lstm_small`,
or `lstm_lm_2x200.ptb_zaremba`). The first ``--train-lines`` lines of WikiText-2's train split are the new
corpus; WikiText-2's own valid and test splits score it. Two runs of `seqzoo finetune`: the PTB vocabulary kept,
and extended with the slice's words seen at least twice. Writes results.json and results.md beside this file;
each run's checkpoint goes to runs/finetune/<name>.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("--data-dir", default=os.environ.get("SEQZOO_DATA", "../shared/data"))
    ap.add_argument("--train-lines", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=2)
    a = ap.parse_args()
    import torch

    from seqzoo.finetune import finetune_lm
    wt2 = Path(a.data_dir) / "wikitext-2"
    data = Path("runs/finetune/data")
    data.mkdir(parents=True, exist_ok=True)
    lines = (wt2 / "train.txt").read_text(encoding="utf-8").splitlines()[:a.train_lines]
    (data / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    device = f"cpu: {platform.machine()}, {torch.get_num_threads()} threads" if not torch.cuda.is_available() \
        else f"cuda: {torch.cuda.get_device_name(0)}"
    runs = []
    for name, extend in (("vocab_kept", False), ("vocab_extended", True)):
        r = finetune_lm(a.base, data / "train.txt", wt2 / "valid.txt", wt2 / "test.txt", out=f"runs/finetune/{name}",
                        extend=extend, epochs=a.epochs)
        command = (f"seqzoo finetune {a.base} --train runs/finetune/data/train.txt --valid {wt2}/valid.txt "
                   f"--test {wt2}/test.txt" + (" --extend-vocab" if extend else "") + f" --epochs {a.epochs}")
        runs.append({"name": name, "config": command, "dataset": f"wikitext-2 (train: first {a.train_lines} lines)",
                     "metrics": {"valid_perplexity_before": r["before"]["valid_perplexity"],
                                 "test_perplexity_before": r["before"]["test_perplexity"],
                                 "valid_perplexity": r["after"]["valid_perplexity"],
                                 "test_perplexity": r["after"]["test_perplexity"],
                                 "train_oov_rate": r["oov"]["train_after"], "valid_oov_rate": r["oov"]["valid_after"],
                                 "valid_oov_rate_before": r["oov"]["valid_before"]},
                     "new_words": r["new_words"], "vocab_size": r["vocab_size"], "base": a.base,
                     "epochs": r["epochs"], "wall_seconds": r["seconds"], "device": device})
        print(json.dumps(runs[-1], indent=1), flush=True)
    (HERE / "results.json").write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    rows = ["| run | vocab | new words | valid OOV | valid ppl before | after | test ppl before | after | epochs | "
            "wall (s) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in runs:
        m = r["metrics"]
        rows.append(f"| {r['name']} | {r['vocab_size']} | {r['new_words']} | {100 * m['valid_oov_rate_before']:.1f}% "
                    f"-> {100 * m['valid_oov_rate']:.1f}% | {m['valid_perplexity_before']:.1f} | "
                    f"{m['valid_perplexity']:.1f} | {m['test_perplexity_before']:.1f} | {m['test_perplexity']:.1f} | "
                    f"{r['epochs']} | {r['wall_seconds']} |")
    (HERE / "results.md").write_text(
        f"# {a.base} fine-tuned on WikiText-2 (first {a.train_lines} train lines)\n\n"
        "Measured by `python recipes/finetune/run.py " + a.base + "`; every figure comes from results.json.\n\n"
        + "\n".join(rows) + "\n\n"
        "Perplexities within a row share one vocabulary, so before and after compare directly. Across rows they do "
        "not: the extended vocabulary predicts many words that the kept one folds into `<unk>`.\n", encoding="utf-8")


if __name__ == "__main__":
    main()
