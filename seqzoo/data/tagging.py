"""``TaggingDataModule``: Universal Dependencies CoNLL-U files -> (word, tag) sentences -> padded batches.

The files are read with the ``conllu`` package. Only syntactic words are tagged: multiword-token
lines (``3-4  don't``; id ``(3, '-', 4)``) and enhanced-dependency empty nodes (``8.1``; id
``(8, '.', 1)``) have tuple ids and are skipped, so ``don't`` is tagged as its two words ``do``
``n't``, as in the UD evaluation. UD English EWT 2.16 gives 12,544 / 2,001 / 2,077 sentences and
204,577 / 25,147 / 25,094 words (train / dev / test).

A batch::

    input_ids     (B, T)    int64  word ids (<pad> = 2 after each sentence's end)
    lengths       (B,)      int64  words per sentence
    tags          (B, T)    int64  tag ids, -100 at padding (ignored by the loss and accuracy)
    chars         (B, T, W) int64  character ids of each word (<pad> = 2), W <= max_word_length
    char_lengths  (B, T)    int64  characters per word, 0 at padding
"""
from __future__ import annotations

import os
from collections import Counter
from functools import partial
from pathlib import Path

import lightning as L
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

from seqzoo.data.classification import PretrainedEmbeddings
from seqzoo.data.base import SplitLoaders
from seqzoo.data.corpora import resolve_data_dir
from seqzoo.data.lm import IGNORE_INDEX
from seqzoo.data.vocab import PAD, Vocab

__all__ = ["TaggingDataModule", "read_conllu", "collate_tagging", "TREEBANKS", "TAG_COLUMNS"]

TREEBANKS = {"ud-english-ewt": ("ud-english-ewt", "en_ewt-ud-{}.conllu")}
TAG_COLUMNS = ("upos", "xpos")
_SPLIT_FILES = {"train": "train", "valid": "dev", "test": "test"}


def read_conllu(path: str | os.PathLike, tag_column: str = "upos") -> list[tuple[list[str], list[str]]]:
    """(words, tags) per sentence of a CoNLL-U file; multiword tokens and empty nodes skipped."""
    import conllu
    if tag_column not in TAG_COLUMNS:
        raise ValueError(f"unknown tag_column {tag_column!r}; valid: {', '.join(TAG_COLUMNS)}")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"CoNLL-U file not found: {p}")
    sents = []
    with open(p, encoding="utf-8") as f:
        try:
            parsed = list(conllu.parse_incr(f))
        except UnicodeDecodeError:
            from seqzoo.data.corpora import check_text_file
            check_text_file(p)  # the error naming the file and the line
            raise
        for sent in parsed:
            words = [t for t in sent if isinstance(t["id"], int)]  # tuple ids: ranges and empty nodes
            for t in words:
                if t[tag_column] in (None, "", "_"):
                    raise ValueError(f"{p}: sentence {sent.metadata.get('sent_id', len(sents) + 1)} word "
                                     f"{t['id']} ({t['form']!r}) has no {tag_column}")
            if words:
                sents.append(([t["form"] for t in words], [t[tag_column] for t in words]))
    if not sents:
        raise ValueError(f"CoNLL-U file has no sentences: {p}")
    return sents


def collate_tagging(rows: list[dict], max_word_length: int) -> dict:
    """Rows of ``ids`` / ``tags`` / ``chars`` (list of lists) -> one padded batch (see the module doc)."""
    ids = pad_sequence([torch.tensor(r["ids"]) for r in rows], batch_first=True, padding_value=2)
    tags = pad_sequence([torch.tensor(r["tags"]) for r in rows], batch_first=True, padding_value=IGNORE_INDEX)
    B, T = ids.shape
    W = min(max_word_length, max(len(w) for r in rows for w in r["chars"]))
    chars = torch.full((B, T, W), 2, dtype=torch.long)
    char_lengths = torch.zeros(B, T, dtype=torch.long)
    for i, r in enumerate(rows):
        for j, w in enumerate(r["chars"]):
            w = w[:W]
            chars[i, j, :len(w)] = torch.tensor(w)
            char_lengths[i, j] = len(w)
    return {"input_ids": ids, "lengths": torch.tensor([len(r["ids"]) for r in rows]), "tags": tags,
            "chars": chars, "char_lengths": char_lengths}


class TaggingDataModule(PretrainedEmbeddings, SplitLoaders, L.LightningDataModule):
    """POS-tagging batches over a UD treebank (train / valid = dev / test).

    Args:
        dataset: ``ud-english-ewt`` (looked for in ``data_dir``/``$SEQZOO_DATA`` as
            ``ud-english-ewt/en_ewt-ud-{train,dev,test}.conllu``) or a folder holding
            ``*-ud-train.conllu``, ``*-ud-dev.conllu``, ``*-ud-test.conllu``.
        data_dir: folder of local mirrors (layout of ``shared/data``); default ``$SEQZOO_DATA``.
        tag_column: ``upos`` (17 universal tags) or ``xpos`` (the treebank's own, PTB for EWT).
        batch_size: sentences per training batch.
        eval_batch_size: sentences per validation / test batch.
        min_freq: training words seen fewer times become ``<unk>`` (characters still see them).
        max_vocab_size: keep the most frequent words only (specials not counted).
        lowercase: lower-case words for the word vocab (characters keep their case); needed to
            match uncased vectors such as GloVe.
        max_word_length: cut each word's characters to this many.
        embeddings_path: GloVe-format text vectors (``.txt`` or ``.txt.gz``), as a path or relative
            to ``data_dir`` (``glove/glove.6B.50d.txt.gz``): ``embeddings`` is then a (vocab_size,
            dim) matrix for the model's word embedding.
    """

    def __init__(self, dataset: str = "ud-english-ewt", data_dir: str | None = None, tag_column: str = "upos",
                 batch_size: int = 32, eval_batch_size: int = 128, min_freq: int = 1,
                 max_vocab_size: int | None = None, lowercase: bool = False, max_word_length: int = 30,
                 embeddings_path: str | None = None, num_workers: int = 0):
        super().__init__()
        if tag_column not in TAG_COLUMNS:
            raise ValueError(f"unknown tag_column {tag_column!r}; valid: {', '.join(TAG_COLUMNS)}")
        if min(batch_size, eval_batch_size, max_word_length) < 1:
            raise ValueError("batch_size, eval_batch_size and max_word_length must be >= 1")
        self.save_hyperparameters()
        self.max_word_length = max_word_length  # linked to the model, which records it for tagging later
        self.sents = {s: read_conllu(p, tag_column) for s, p in self.files().items()}
        train = self.sents["train"]
        norm = str.lower if lowercase else str
        self.vocab = Vocab.build((map(norm, w) for w, _ in train), min_freq, max_vocab_size)
        self.char_vocab = Vocab.build((c for w, _ in train for c in w), level="char")
        self.tags = sorted({t for _, ts in train for t in ts})

    def files(self) -> dict[str, Path]:
        name = self.hparams.dataset
        if name in TREEBANKS:
            root = resolve_data_dir(self.hparams.data_dir)
            if root is None:
                raise FileNotFoundError(f"dataset {name!r} needs data_dir (or $SEQZOO_DATA) holding "
                                        f"{TREEBANKS[name][0]}/")
            folder, pattern = TREEBANKS[name]
            return {s: root / folder / pattern.format(f) for s, f in _SPLIT_FILES.items()}
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise ValueError(f"unknown dataset {name!r}; known: {', '.join(TREEBANKS)}, or a folder with "
                             f"*-ud-train.conllu / *-ud-dev.conllu / *-ud-test.conllu")
        files = {}
        for s, f in _SPLIT_FILES.items():
            found = sorted(folder.glob(f"*-ud-{f}.conllu"))
            if len(found) != 1:
                raise FileNotFoundError(f"folder {folder} needs exactly one *-ud-{f}.conllu, found {len(found)}")
            files[s] = found[0]
        return files

    # -- sizes the model is built with (linked by the CLI) ----------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def num_chars(self) -> int:
        return len(self.char_vocab)

    @property
    def num_tags(self) -> int:
        return len(self.tags)


    # -- encoding and loaders ---------------------------------------------------------------------
    def encode(self, split: str) -> list[dict]:
        if split not in self.sents:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(self.sents)}")
        tag_id = {t: i for i, t in enumerate(self.tags)}
        norm = str.lower if self.hparams.lowercase else str
        rows = []
        for words, tags in self.sents[split]:
            unknown = [t for t in tags if t not in tag_id]
            if unknown:
                raise ValueError(f"{split} has tag {unknown[0]!r}, unseen in train; train tags: {', '.join(self.tags)}")
            rows.append({"ids": [self.vocab[norm(w)] for w in words], "tags": [tag_id[t] for t in tags],
                         "chars": [[self.char_vocab[c] for c in w] or [self.char_vocab[PAD]] for w in words]})
        return rows

    def _loader(self, split: str, batch_size: int) -> DataLoader:
        return DataLoader(self.encode(split), batch_size=batch_size, shuffle=split == "train",
                          num_workers=self.hparams.num_workers,
                          collate_fn=partial(collate_tagging, max_word_length=self.hparams.max_word_length))

    def word_counts(self) -> dict[str, int]:
        """Tagged words per split."""
        return {s: sum(len(w) for w, _ in v) for s, v in self.sents.items()}

    def tag_counts(self, split: str = "train") -> Counter:
        return Counter(t for _, ts in self.sents[split] for t in ts)
