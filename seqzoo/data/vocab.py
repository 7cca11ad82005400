"""Word- and character-level tokenisation and a ``Vocab`` with stable ids.

Specials come first, in a fixed order, so their ids never move: ``<unk>`` 0, ``<eos>`` 1,
``<pad>`` 2, ``<bos>`` 3. The rest is sorted by descending count, ties broken by the
token itself, so the same corpus always gives the same ids.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from typing import Iterable, Sequence

from seqzoo.utils import write_text_atomic

__all__ = ["Vocab", "SPECIALS", "UNK", "EOS", "PAD", "BOS", "tokenize", "LEVELS"]

UNK, EOS, PAD, BOS = "<unk>", "<eos>", "<pad>", "<bos>"
SPECIALS = (UNK, EOS, PAD, BOS)
LEVELS = ("word", "char")


def tokenize(line: str, level: str = "word") -> list[str]:
    """``"word"``: split on white space; ``"char"``: every character, spaces included."""
    if level == "word":
        return line.split()
    if level == "char":
        return list(line)
    raise ValueError(f"unknown tokenisation level {level!r}; valid: {', '.join(LEVELS)}")


class Vocab:
    """Token <-> id map. ``vocab[token]`` falls back to ``<unk>``; ``vocab.itos[i]`` is the token."""

    def __init__(self, tokens: Sequence[str], level: str = "word"):
        if level not in LEVELS:
            raise ValueError(f"unknown tokenisation level {level!r}; valid: {', '.join(LEVELS)}")
        if list(tokens[: len(SPECIALS)]) != list(SPECIALS):
            raise ValueError(f"a vocab must start with the specials {SPECIALS}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("a vocab must not repeat a token")
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.level = level
        self._uncased: bool | None = None

    @classmethod
    def build(cls, counts: Counter | Iterable[Iterable[str]], min_freq: int = 1,
              max_size: int | None = None, level: str = "word") -> "Vocab":
        """From a Counter or an iterable of token lists; ``max_size`` excludes specials."""
        if not isinstance(counts, Counter):
            c: Counter = Counter()
            for toks in counts:
                c.update(toks)
            counts = c
        words = [w for w, n in counts.items() if n >= min_freq and w not in SPECIALS]
        words.sort(key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[:max_size]
        return cls(list(SPECIALS) + words, level=level)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, 0)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos and self.level == other.level

    @property
    def uncased(self) -> bool:
        """No token has an upper-case letter: the vocab was built from lower-cased text (``lowercase=True``
        in the datamodules), so text a model reads through it should be lower-cased too."""
        if getattr(self, "_uncased", None) is None:  # (a Vocab unpickled from before this attribute lacks it)
            self._uncased = not any(t != t.lower() for t in self.itos[len(SPECIALS):])
        return self._uncased

    @property
    def unk_id(self) -> int:
        return 0

    @property
    def eos_id(self) -> int:
        return 1

    @property
    def pad_id(self) -> int:
        return 2

    @property
    def bos_id(self) -> int:
        return 3

    def encode(self, line: str, add_eos: bool = True) -> list[int]:
        ids = [self.stoi.get(t, 0) for t in tokenize(line, self.level)]
        return ids + [1] if add_eos else ids

    def decode(self, ids: Iterable[int], skip_specials: bool = True) -> str:
        toks = [self.itos[i] for i in ids]
        if skip_specials:
            toks = [t for t in toks if t not in (EOS, PAD, BOS)]
        return ("" if self.level == "char" else " ").join(toks)

    def to_dict(self) -> dict:
        return {"level": self.level, "tokens": self.itos}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocab":
        return cls(d["tokens"], level=d.get("level", "word"))

    def save(self, path: str | os.PathLike) -> None:
        """Write JSON atomically (temp file, then rename)."""
        write_text_atomic(path, json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        """Read a ``save``d vocabulary; anything else is a ValueError naming ``path``."""
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} is not a seqzoo vocabulary: not valid UTF-8 JSON ({e})") from None
        ok = (isinstance(d, dict) and isinstance(d.get("tokens"), list)
              and all(isinstance(t, str) for t in d["tokens"]) and isinstance(d.get("level", "word"), str))
        if not ok:
            raise ValueError(f"{path} is not a seqzoo vocabulary: it must hold {{\"tokens\": [strings], "
                             f"\"level\": \"word\" | \"char\"}}")
        try:
            return cls.from_dict(d)
        except ValueError as e:
            raise ValueError(f"{path} is not a seqzoo vocabulary: {e}") from None

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, level={self.level!r})"
