"""``ClassificationDataModule``: GLUE-format sentence classification (SST-2) -> padded batches,
and ``load_embedding_matrix``: pretrained word vectors (GloVe text format) in vocab order.

SST-2 (Socher et al. 2013; GLUE, Wang et al. 2018) has ``train.tsv`` (67,349 rows: sentences
*and* their labelled phrases) and ``dev.tsv`` (872 sentences), both ``sentence<TAB>label`` under
a header. GLUE's test labels are private, so the dev set is the reported split: it is served as
``valid`` **and** by ``test_dataloader`` (a "test" run over SST-2 measures dev accuracy;
recipes report it as ``valid_accuracy``).

A batch::

    input_ids  (B, T)  int64  word ids (<pad> = 2 after each sentence's end)
    lengths    (B,)    int64  words per sentence
    labels     (B,)    int64  class ids
"""
from __future__ import annotations

import csv
import gzip
import os
from functools import partial
from pathlib import Path

import lightning as L
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

from seqzoo.data.base import SplitLoaders
from seqzoo.data.corpora import resolve_data_dir
from seqzoo.data.vocab import Vocab

__all__ = ["ClassificationDataModule", "read_glue_tsv", "collate_classification", "load_embedding_matrix",
           "resolve_embeddings_path", "DATASETS"]

DATASETS = {"sst2": "sst"}  # name -> folder under data_dir
_SPLIT_FILES = {"train": "train.tsv", "valid": "dev.tsv"}


def read_glue_tsv(path: str | os.PathLike) -> list[tuple[str, int]]:
    """(sentence, label) rows of a GLUE single-sentence TSV with the header ``sentence<TAB>label``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"TSV file not found: {p}")
    with open(p, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)  # sentences hold bare quotes
        header = next(reader, None)
        if header != ["sentence", "label"]:
            raise ValueError(f"{p}: expected the header 'sentence<TAB>label', got {header!r}")
        rows = []
        for n, row in enumerate(reader, 2):
            if len(row) != 2 or not row[1].strip().isdigit():
                raise ValueError(f"{p} line {n}: expected 'sentence<TAB>integer label', got {row!r}")
            rows.append((row[0], int(row[1])))
    if not rows:
        raise ValueError(f"TSV file has no rows: {p}")
    return rows


def load_embedding_matrix(path: str | os.PathLike, vocab: Vocab, seed: int = 0) -> torch.Tensor:
    """(len(vocab), dim) float32: the vector of each vocab word from a GloVe-format text file
    (``word v1 ... vd`` per line, optionally gzipped), trying the word, then its lower-case form.

    Words without a vector get N(0, s^2), s the std of the vectors found; ``<pad>`` gets zeros.
    Only the vocab's words are kept while streaming, so a 400k-word file costs little memory.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"embeddings file not found: {p}")
    wanted: dict[str, list[int]] = {}
    for i, w in enumerate(vocab.itos):
        wanted.setdefault(w, []).append(i)
        if w.lower() != w:
            wanted.setdefault(w.lower(), []).append(i)
    found: dict[int, list[float]] = {}
    exact: set[int] = set()
    dim = None
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            word, _, rest = line.rstrip("\n").partition(" ")
            if word not in wanted:
                continue
            vec = [float(x) for x in rest.split()]
            if dim is None:
                dim = len(vec)
            elif len(vec) != dim:
                raise ValueError(f"{p} line {n}: {len(vec)} numbers, earlier lines had {dim}")
            for i in wanted[word]:
                if word == vocab.itos[i]:
                    found[i] = vec
                    exact.add(i)
                elif i not in exact:  # the lower-cased fallback never overrides an exact match
                    found[i] = vec
    if not found:
        raise ValueError(f"{p}: no vocab word has a vector (is it a 'word v1 ... vd' text file?)")
    idx = torch.tensor(sorted(found))
    vecs = torch.tensor([found[i] for i in idx.tolist()], dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    out = torch.randn(len(vocab), dim, generator=gen) * vecs.std()
    out[idx] = vecs
    out[vocab.pad_id] = 0.0
    return out


def resolve_embeddings_path(path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Path:
    """``path`` as given if it exists, else under ``data_dir`` / ``$SEQZOO_DATA`` (``glove/glove.6B.50d.txt.gz``)."""
    p = Path(path).expanduser()
    root = resolve_data_dir(data_dir)
    if not p.exists() and root is not None and (root / p).exists():
        return root / p
    if not p.exists():
        where = f" (nor under {root})" if root is not None else ""
        raise FileNotFoundError(f"embeddings file not found: {p}{where}")
    return p


def collate_classification(rows: list[tuple[list[int], int]], pad_id: int = 2) -> dict:
    ids = pad_sequence([torch.tensor(r[0]) for r in rows], batch_first=True, padding_value=pad_id)
    return {"input_ids": ids, "lengths": torch.tensor([len(r[0]) for r in rows]),
            "labels": torch.tensor([r[1] for r in rows])}


class PretrainedEmbeddings:
    """Mixin for datamodules with ``hparams.embeddings_path`` and ``vocab``: ``embeddings`` is the
    (vocab_size, dim) matrix of those vectors, read once when first asked for (the CLI links it to the model)."""

    _embeddings: torch.Tensor | None = None

    @property
    def embeddings(self) -> torch.Tensor | None:
        if self.hparams.embeddings_path and self._embeddings is None:
            path = resolve_embeddings_path(self.hparams.embeddings_path, self.hparams.data_dir)
            self._embeddings = load_embedding_matrix(path, self.vocab)
        return self._embeddings


class ClassificationDataModule(PretrainedEmbeddings, SplitLoaders, L.LightningDataModule):
    """Sentence classification batches (train / valid = dev; ``test`` serves dev too, see above).

    Args:
        dataset: ``sst2`` (``sst/{train,dev}.tsv`` under ``data_dir``/``$SEQZOO_DATA``) or a folder
            holding ``train.tsv`` and ``dev.tsv`` in the same GLUE format.
        data_dir: folder of local mirrors (layout of ``shared/data``); default ``$SEQZOO_DATA``.
        batch_size: sentences per training batch.
        eval_batch_size: sentences per validation batch.
        min_freq: training words seen fewer times become ``<unk>``.
        max_vocab_size: keep the most frequent words only (specials not counted).
        lowercase: lower-case the text (SST-2 already is).
        embeddings_path: GloVe-format text vectors (``.txt`` / ``.txt.gz``), as a path or relative to
            ``data_dir`` (``glove/glove.6B.50d.txt.gz``): ``embeddings`` is then a (vocab_size, dim)
            matrix for the model's embedding.
    """

    test_is_valid = True  # test_dataloader serves dev: recipes record its score once, as valid_*

    def __init__(self, dataset: str = "sst2", data_dir: str | None = None, batch_size: int = 32,
                 eval_batch_size: int = 128, min_freq: int = 1, max_vocab_size: int | None = None,
                 lowercase: bool = True, embeddings_path: str | None = None, num_workers: int = 0):
        super().__init__()
        if min(batch_size, eval_batch_size) < 1:
            raise ValueError("batch_size and eval_batch_size must be >= 1")
        self.save_hyperparameters()
        self.rows = {s: read_glue_tsv(p) for s, p in self.files().items()}
        self.vocab = Vocab.build((self._tokens(t) for t, _ in self.rows["train"]), min_freq, max_vocab_size)
        labels = sorted({y for rows in self.rows.values() for _, y in rows})
        if labels != list(range(len(labels))) or len(labels) < 2:
            raise ValueError(f"labels must be 0 .. K-1 with K >= 2, got {labels}")
        self.num_classes = len(labels)
        # label names, saved with a trained model (labels.json): SST-2's 0 / 1 are negative / positive
        self.labels = ["negative", "positive"] if dataset == "sst2" else [str(y) for y in labels]

    def files(self) -> dict[str, Path]:
        name = self.hparams.dataset
        if name in DATASETS:
            root = resolve_data_dir(self.hparams.data_dir)
            if root is None:
                raise FileNotFoundError(f"dataset {name!r} needs data_dir (or $SEQZOO_DATA) holding {DATASETS[name]}/")
            folder = root / DATASETS[name]
        else:
            folder = Path(name).expanduser()
            if not folder.is_dir():
                raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}, or a folder with "
                                 f"train.tsv and dev.tsv")
        return {s: folder / f for s, f in _SPLIT_FILES.items()}

    def _tokens(self, text: str) -> list[str]:
        return (text.lower() if self.hparams.lowercase else text).split()

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, split: str) -> list[tuple[list[int], int]]:
        split = {"dev": "valid", "test": "valid"}.get(split, split)
        if split not in self.rows:
            raise ValueError(f"unknown split {split!r}; valid: train, valid (dev)")
        out = []
        for n, (text, y) in enumerate(self.rows[split], 2):
            ids = [self.vocab[t] for t in self._tokens(text)]
            if not ids:
                raise ValueError(f"{self.files()[split]} line {n}: empty sentence")
            out.append((ids, y))
        return out

    def _loader(self, split: str, batch_size: int) -> DataLoader:
        return DataLoader(self.encode(split), batch_size=batch_size, shuffle=split == "train",
                          num_workers=self.hparams.num_workers, collate_fn=partial(collate_classification, pad_id=2))

    def test_dataloader(self):
        """The dev set (GLUE's SST-2 test labels are not public)."""
        return self._loader("valid", self.hparams.eval_batch_size)
