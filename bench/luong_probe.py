"""Why the Luong LSTM row of recipes/multi30k learns slowly: a learning-speed probe, not a speed benchmark.

Trains each decoder variant for the same first ``--steps`` batches of Multi30k de->en (the recipe's data
settings, batch 64, same seed, so every variant sees the same batches) and records the mean training loss
per quarter of the run. The variants separate the two ways the Luong decoder differs from the Bahdanau one:
the attention (after the RNN, through a tanh layer) and the output layer (``luong_*`` reads only that layer,
``bahdanau`` reads ``[h; c; y]``, the previous target embedding ``y`` included). ``+y`` is a probe-only
decoder whose Luong output layer also reads ``y``; it is not a seqzoo model.

    OMP_NUM_THREADS=1 python bench/luong_probe.py --data-dir ../shared/data   # -> bench/results/luong_probe.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightning as L
import torch
from torch import nn

from seqzoo.data.translation import TranslationDataModule
from seqzoo.models import seq2seq as s2s
from seqzoo.recipes import device_name

VARIANTS = [  # name, cell, attention, layers, output layer also reads y
    ("gru bahdanau 1 layer", "gru", "bahdanau", 1, False),
    ("gru luong_general 1 layer", "gru", "luong_general", 1, False),
    ("gru luong_general 1 layer +y", "gru", "luong_general", 1, True),
    ("lstm bahdanau 2 layers", "lstm", "bahdanau", 2, False),
    ("lstm luong_general 2 layers (the recipe's row)", "lstm", "luong_general", 2, False),
    ("lstm luong_general 2 layers +y", "lstm", "luong_general", 2, True),
]


class LuongWithY(s2s.Decoder):
    """The Luong decoder with ``y`` beside the attentional state at the output layer (probe only)."""

    def __init__(self, c):
        super().__init__(c)
        self.out = nn.Linear(c.hidden_size + c.embedding_size, c.tgt_vocab_size)

    def forward(self, tokens, state):
        y = self.drop(self.embed(tokens))
        hidden = s2s._map(state["hidden"], lambda h: h.transpose(0, 1).contiguous())
        out, hidden = self.rnn(torch.cat([y, state["feed"]], -1).unsqueeze(1), hidden)
        h = out[:, 0]
        ctx, weights = self.attention(h, state["keys"], state["memory"], state["mask"])
        new = {**state, "feed": torch.tanh(self.combine(torch.cat([h, ctx], -1)))}
        new["hidden"] = s2s._map(hidden, lambda t: t.transpose(0, 1))
        return self.out(self.drop(torch.cat([new["feed"], y], -1))), new, weights


class Losses(L.Callback):
    def __init__(self):
        self.values = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.values.append(float(outputs["loss"]))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--out", default="bench/results/luong_probe.json")
    a = p.parse_args(argv)
    dm = TranslationDataModule(dataset="multi30k", data_dir=a.data_dir, src_lang="de", tgt_lang="en", tokenization="bpe",
                               vocab_size=8000, joint_vocab=True, lowercase=True, max_length=100, batch_size=64)
    runs = []
    for name, cell, attention, layers, with_y in VARIANTS:
        L.seed_everything(1234)
        model = s2s.Seq2Seq(dm.src_vocab_size, dm.tgt_vocab_size, cell=cell, attention=attention, embedding_size=256,
                            hidden_size=256, num_layers=layers, dropout=0.3, label_smoothing=0.1, lr=1e-3)
        if with_y:
            model.net.decoder = LuongWithY(model.net.config)
        losses, t0 = Losses(), time.time()
        trainer = L.Trainer(max_steps=a.steps, limit_val_batches=0, gradient_clip_val=1.0, callbacks=[losses],
                            logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False)
        trainer.fit(model, datamodule=dm)
        q = len(losses.values) // 4
        quarters = [round(sum(losses.values[i * q:(i + 1) * q]) / q, 3) for i in range(4)]
        runs.append({"name": name, "train_loss_by_quarter": quarters, "seconds": round(time.time() - t0, 1)})
        print(name, quarters, flush=True)
    result = {"steps": a.steps, "batch_size": 64, "settings": "Multi30k de->en, joint 8k BPE, 256 units, dropout 0.3, "
              "label smoothing 0.1, Adam 1e-3, clip 1.0, seed 1234", "device": device_name(), "runs": runs}
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
