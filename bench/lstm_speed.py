"""Tokens/s of the Lightning LSTM LM vs a plain PyTorch loop of the same model, in one run.

    python bench/lstm_speed.py [--data-dir ../shared/data] [--steps 300] [--repeats 3]

Both train the Zaremba "small" model (2 x 200 LSTM, batch 20, bptt 20, SGD, clip) on the same
PTB batches (the bundled Lee corpus when PTB is absent); they alternate, ``--repeats`` times
each. The headline compares the best run of each (as timeit does: the fastest run is the code's
cost with the least interference from the rest of the machine); medians are reported beside it.
Writes bench/results/lstm_speed.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from itertools import islice
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F

from seqzoo.data.lm import IGNORE_INDEX, LanguageModelDataModule
from seqzoo.lm import detach_state
from seqzoo.models.rnn_lm import RNNLanguageModel

WARMUP = 20


def plain_loop(dm, steps: int) -> float:
    """pytorch/examples word_language_model's train(): the baseline."""
    L.seed_everything(0)
    model = RNNLanguageModel(vocab_size=dm.vocab_size).net
    opt = torch.optim.SGD(model.parameters(), lr=20.0)
    state, tokens, t0 = None, 0, None
    for i, b in enumerate(islice(dm.train_dataloader(), WARMUP + steps)):
        if i == WARMUP:
            t0, tokens = time.perf_counter(), 0
        logits, state = model(b["input_ids"], state)
        state = detach_state(state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b["targets"].reshape(-1),
                               ignore_index=IGNORE_INDEX)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
        tokens += int((b["targets"] != IGNORE_INDEX).sum())
    return tokens / (time.perf_counter() - t0)


class _Timer(L.Callback):
    def __init__(self):
        self.t0 = self.t1 = None
        self.tokens = 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx == WARMUP:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if batch_idx >= WARMUP:
            self.tokens += int((batch["targets"] != IGNORE_INDEX).sum())
            self.t1 = time.perf_counter()


def lightning_loop(dm, steps: int) -> float:
    L.seed_everything(0)
    model = RNNLanguageModel(vocab_size=dm.vocab_size)
    timer = _Timer()
    trainer = L.Trainer(max_steps=WARMUP + steps, limit_val_batches=0, gradient_clip_val=0.25, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[timer], accelerator="cpu")
    trainer.fit(model, datamodule=dm)
    return timer.tokens / (timer.t1 - timer.t0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.environ.get("SEQZOO_DATA", "../shared/data"))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    dataset = "ptb" if (Path(a.data_dir) / "ptb").exists() else "lee"
    dm = LanguageModelDataModule(dataset, data_dir=a.data_dir, batch_size=20, bptt=20)
    dm.setup()
    runs = {"plain": [], "lightning": []}
    for _ in range(a.repeats):
        runs["plain"].append(plain_loop(dm, a.steps))
        runs["lightning"].append(lightning_loop(dm, a.steps))
    med = {k: statistics.median(v) for k, v in runs.items()}
    best = {k: max(v) for k, v in runs.items()}
    ratio, ratio_median = best["lightning"] / best["plain"], med["lightning"] / med["plain"]
    print(f"| loop | tokens/s, best of {a.repeats} | median |\n| --- | ---: | ---: |")
    for k in runs:
        print(f"| {k} | {best[k]:,.0f} | {med[k]:,.0f} |")
    print(f"ratio lightning / plain = {ratio:.3f} best, {ratio_median:.3f} median (goal >= 0.95)")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "lstm_speed.json").write_text(json.dumps({
        "dataset": dataset, "steps": a.steps, "warmup": WARMUP, "tokens_per_s": runs, "best": best, "median": med,
        "ratio": ratio, "ratio_median": ratio_median, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores"}, indent=2) + "\n")


if __name__ == "__main__":
    main()
