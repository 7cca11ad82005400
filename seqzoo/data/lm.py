"""``LanguageModelDataModule``: a corpus -> ``Vocab`` -> truncated-BPTT (or sentence) batches.

Stream mode (the PTB / WikiText convention of Zaremba et al. and pytorch/examples): every
line gets ``<eos>``, the split becomes one token stream, and the stream is cut into
``C`` contiguous columns that the model reads ``bptt`` steps at a time, carrying its hidden
state from one batch to the next::

    stream  a b c d e f g h i j k          C = 2 columns of L = ceil(11 / 2) = 6
    column0 a b c d e f  | batch 0: steps 0..2   batch 1: steps 3..5
    column1 g h i j k .  |           (. = padding, target -100: never scored)

Targets are the stream itself and inputs the stream shifted right by one behind a leading
``<eos>``, so every token of the split is predicted exactly once (the n-gram models count
the same tokens). Under DDP there are ``batch_size * world_size`` columns and rank ``r``
reads columns ``r*B .. r*B+B-1``: ranks are disjoint and together equal one process with
``batch_size * world_size`` columns.

Sentence mode: one padded row per line (``<eos>`` first as the start symbol), for models
that need sentence boundaries (fixed-window LMs, taggers).
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from seqzoo.data.base import SplitLoaders
from seqzoo.data.corpora import load_corpus
from seqzoo.data.vocab import Vocab, tokenize

__all__ = ["LanguageModelDataModule", "batchify", "StreamBatches", "ResumableLoader", "IGNORE_INDEX"]

IGNORE_INDEX = -100


def batchify(stream: np.ndarray, num_columns: int, start_id: int, pad_id: int):
    """(N,) ids -> inputs, targets of shape (num_columns, ceil(N / num_columns)), int64."""
    n = len(stream)
    length = math.ceil(n / num_columns)
    targets = np.full(num_columns * length, IGNORE_INDEX, dtype=np.int64)
    targets[:n] = stream
    inputs = np.full(num_columns * length, pad_id, dtype=np.int64)
    inputs[0] = start_id
    inputs[1:n] = stream[:-1]
    return torch.from_numpy(inputs.reshape(num_columns, length)), torch.from_numpy(targets.reshape(num_columns, length))


class StreamBatches(IterableDataset):
    """Consecutive (B, bptt) slices of the columns, in order: batch i+1 continues batch i.

    An ``IterableDataset`` so that Lightning does not wrap it in a ``DistributedSampler``:
    the sharding is done here, by column.
    """

    def __init__(self, stream: np.ndarray, batch_size: int, bptt: int, start_id: int, pad_id: int,
                 rank: int = 0, world_size: int = 1):
        inputs, targets = batchify(stream, batch_size * world_size, start_id, pad_id)
        cols = slice(rank * batch_size, (rank + 1) * batch_size)
        self.inputs, self.targets, self.bptt = inputs[cols], targets[cols], bptt
        self.start = 0  # batches to skip on the next pass only (resuming mid-epoch)

    def __len__(self) -> int:
        return math.ceil(self.inputs.shape[1] / self.bptt)

    def __iter__(self) -> Iterator[dict]:
        start, self.start = (self.start if self.start < len(self) else 0), 0   # read now, not at the first next()
        steps = range(start, len(self))
        w = get_worker_info()  # loader workers take every num_workers-th batch; the loader interleaves them in order
        return (self._batch(i) for i in (steps[w.id::w.num_workers] if w is not None else steps))

    def _batch(self, i: int) -> dict:
        t = slice(i * self.bptt, (i + 1) * self.bptt)
        return {"input_ids": self.inputs[:, t], "targets": self.targets[:, t]}


class ResumableLoader(DataLoader):
    """A stream loader Lightning can resume mid-epoch (its ``_Stateful`` protocol).

    The position saved is the trainer's count of processed batches, not a count of batches
    drawn: Lightning prefetches one batch, so the loader itself is always one ahead.
    """

    def __init__(self, dataset: StreamBatches, progress, **kwargs):
        super().__init__(dataset, batch_size=None, **kwargs)
        self._progress = progress

    def state_dict(self) -> dict:
        return {"batches_done": int(self._progress())}

    def load_state_dict(self, state: dict) -> None:
        self.dataset.start = state["batches_done"]

    def __iter__(self):
        it = super().__iter__()  # the dataset (or, with workers, each worker's copy of it) has read its start
        self.dataset.start = 0   # so the skip applies to this pass only, whatever num_workers is
        return it


def _collate_sentences(rows: list[np.ndarray], start_id: int, pad_id: int) -> dict:
    lengths = torch.tensor([len(r) for r in rows])
    inputs = torch.full((len(rows), int(lengths.max())), pad_id, dtype=torch.long)
    targets = torch.full_like(inputs, IGNORE_INDEX)
    for i, r in enumerate(rows):
        t = torch.as_tensor(r, dtype=torch.long)
        targets[i, :len(t)] = t
        inputs[i, 0] = start_id
        inputs[i, 1:len(t)] = t[:-1]
    return {"input_ids": inputs, "targets": targets, "lengths": lengths, "mask": targets != IGNORE_INDEX}


class LanguageModelDataModule(SplitLoaders, L.LightningDataModule):
    """Batches for language models over a named corpus or local text files.

    Args:
        dataset: a corpus name (``ptb``, ``wikitext-2``, ``wikitext-103``, ``tinyshakespeare``,
            ``lee``) or a path to a folder with train/valid/test ``.txt`` files or to one ``.txt``.
        data_dir: folder of local mirrors (layout of ``shared/data``); default ``$SEQZOO_DATA``.
        level: ``word`` or ``char`` tokenisation.
        batch_size: columns per process for training (the global batch is ``batch_size * devices``).
        eval_batch_size: columns per process for validation and test.
        bptt: truncated-BPTT length (time steps per batch) in stream mode.
        mode: ``stream`` (TBPTT over a token stream) or ``sentence`` (one padded row per line).
        min_freq: drop training words seen fewer times (they become ``<unk>``).
        max_vocab_size: keep the most frequent words only (specials not counted).
        vocab_path: use this saved vocab (JSON) instead of building one from train (fine-tuning).
        max_length: sentence mode: cut lines to this many tokens (``<eos>`` included).
    """

    def __init__(self, dataset: str = "ptb", data_dir: str | None = None, level: str = "word",
                 batch_size: int = 20, eval_batch_size: int = 10, bptt: int = 35, mode: str = "stream",
                 min_freq: int = 1, max_vocab_size: int | None = None, vocab_path: str | None = None,
                 max_length: int = 256, num_workers: int = 0):
        super().__init__()
        if mode not in ("stream", "sentence"):
            raise ValueError(f"unknown mode {mode!r}; valid: stream, sentence")
        if batch_size < 1 or eval_batch_size < 1 or bptt < 1:
            raise ValueError("batch_size, eval_batch_size and bptt must be >= 1")
        self.save_hyperparameters()
        self.vocab: Vocab | None = Vocab.load(vocab_path) if vocab_path else None
        self.ids: dict[str, list[np.ndarray]] = {}
        self._ds = None
        if self.vocab is None:  # the model's vocab_size is linked to ours: build it now
            self.prepare_vocab()

    # -- vocab and ids ---------------------------------------------------------------------------
    def _corpus(self):
        if self._ds is None:
            self._ds = load_corpus(self.hparams.dataset, self.hparams.data_dir, splits=None)
            if "train" not in self._ds:
                raise ValueError(f"dataset {self.hparams.dataset!r} has no split 'train'; "
                                 f"available: {', '.join(self._ds)}")
        return self._ds

    def prepare_vocab(self) -> Vocab:
        if self.vocab is None:
            train = self._corpus()["train"]
            counts = Counter()
            for line in train["text"]:
                counts.update(tokenize(line, self.hparams.level))
            if not counts:
                raise ValueError(f"training split of {self.hparams.dataset!r} has no tokens")
            self.vocab = Vocab.build(counts, self.hparams.min_freq, self.hparams.max_vocab_size,
                                     level=self.hparams.level)
        return self.vocab

    @property
    def vocab_size(self) -> int:
        return len(self.prepare_vocab())

    def setup(self, stage: str | None = None) -> None:
        if self.ids:
            return
        vocab, ds = self.prepare_vocab(), self._corpus()
        encode = lambda batch: {"ids": [vocab.encode(t) for t in batch["text"]]}  # noqa: E731
        for split in ds:
            enc = ds[split].map(encode, batched=True, remove_columns=["text"], desc=f"encoding {split}")
            col = enc.data.column("ids")
            self.ids[split] = [np.asarray(a, dtype=np.int64) for a in col.to_pylist()] \
                if self.hparams.mode == "sentence" else col.combine_chunks().flatten().to_numpy().astype(np.int64)

    def num_tokens(self, split: str) -> int:
        """Tokens the model predicts on ``split`` (``<eos>`` included)."""
        self.setup()
        ids = self.ids[split]
        return int(sum(len(a) for a in ids)) if isinstance(ids, list) else len(ids)

    # -- loaders ---------------------------------------------------------------------------------
    def _batches_done(self) -> int:
        t = getattr(self, "trainer", None)
        return t.fit_loop.epoch_loop.batch_progress.current.processed if t is not None else 0

    def _rank(self) -> tuple[int, int]:
        t = getattr(self, "trainer", None)
        return (t.global_rank, t.world_size) if t is not None else (0, 1)

    def _loader(self, split: str, batch_size: int) -> DataLoader:
        self.setup()
        if split not in self.ids:
            raise ValueError(f"dataset {self.hparams.dataset!r} has no split {split!r}; "
                             f"available: {', '.join(self.ids)}")
        v, (rank, world) = self.vocab, self._rank()
        if self.hparams.mode == "stream":
            ds = StreamBatches(self.ids[split], batch_size, self.hparams.bptt, v.eos_id, v.pad_id, rank, world)
            if split == "train":
                return ResumableLoader(ds, self._batches_done, num_workers=self.hparams.num_workers)
            return DataLoader(ds, batch_size=None, num_workers=self.hparams.num_workers)
        rows = [r[: self.hparams.max_length] for r in self.ids[split] if len(r)]
        return DataLoader(rows, batch_size=batch_size, shuffle=(split == "train"),
                          num_workers=self.hparams.num_workers,
                          collate_fn=lambda b: _collate_sentences(b, v.eos_id, v.pad_id))
