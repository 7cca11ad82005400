"""Count-based n-gram language models: MLE, add-k, Katz, stupid backoff, modified Kneser-Ney.

The baselines every neural LM paper compares against. Modified Kneser-Ney is built the way
KenLM's ``lmplz`` builds it, so ``kn5`` on PTB lands on the usual KN-5 number (~141).

Papers:
- S. F. Chen, J. Goodman. "An empirical study of smoothing techniques for language
  modeling". Harvard TR-10-98, 1998 (modified Kneser-Ney, eq. 26 discounts).
- S. M. Katz. "Estimation of probabilities from sparse data for the language model
  component of a speech recognizer". IEEE TASSP 35(3), 1987 (Good-Turing backoff).
- T. Brants, A. C. Popat, P. Xu, F. J. Och, J. Dean. "Large language models in machine
  translation". EMNLP 2007 (stupid backoff).
- K. Heafield. "Efficient Language Modeling Algorithms with Applications to Statistical
  Machine Translation". PhD thesis, CMU 2013; and Heafield et al., "Scalable modified
  Kneser-Ney language model estimation", ACL 2013 (KenLM ``lmplz``).

Conventions shared with the neural LMs: a sentence is scored as ``<s> w1 .. wn </s>``,
``</s>`` is a predicted token, ``<s>`` never is; a word unseen in training is ``<unk>``.

Every smoothing is stored in backoff (ARPA) form -- per order, the n-grams' log p and the
contexts' log backoff -- so scoring, ARPA export and ARPA import share one code path:
``log p(w | c) = log p(c w)`` if ``c w`` is stored, else ``log bo(c) + log p(w | c[1:])``.
N-grams get hierarchical ids (id of the prefix * |V| + last word, one sorted int64 array per
order), so counting and lookups are ``np.unique`` / ``np.searchsorted`` over arrays. ``fit`` and scoring read
the corpus ``_FIT_CHUNK`` tokens at a time; each chunk's n-grams are merged into running counts (as rows of word
ids), so memory holds one chunk and the distinct n-grams, never the corpus.
"""
from __future__ import annotations

import gzip
import itertools
import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

from seqzoo.hub import HubMixin
from seqzoo.registry import PretrainedCfg, register_model

__all__ = ["NGramLM", "BOS", "EOS", "UNK", "SMOOTHINGS"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
_BOS, _EOS, _UNK = 0, 1, 2  # ids: the specials always come first in ``vocab``
SMOOTHINGS = ("mle", "add-k", "katz", "stupid", "modified-kn")
_ALIASES = {"laplace": "add-k", "kn": "modified-kn", "addk": "add-k", "mkn": "modified-kn"}
_LN10 = math.log(10.0)
_ARPA_ZERO = -99.0  # log10 written for p = 0 (and for <s>), as SRILM and KenLM do
_KN_FALLBACK = (0.5, 1.0, 1.5)  # lmplz --discount_fallback defaults
_KATZ_MAX = 5  # Good-Turing discounts only counts <= 5 (Katz 1987)
_FIT_CHUNK = 1_000_000  # tokens counted (or scored) at a time


@dataclass
class _Level:
    """One order's n-grams, sorted by key = id(prefix) * |V| + last word."""
    keys: np.ndarray  # int64
    logp: np.ndarray  # ln p(last | prefix); NaN = "blank": stored only as a context
    logbo: np.ndarray  # ln backoff when the n-gram is the context; 0 = none


class NGramLM(HubMixin):
    """Word n-gram LM; ``fit`` it on tokenised sentences or load one with ``from_arpa``.

    smoothing:
      modified-kn (kn)  interpolated modified Kneser-Ney, as KenLM ``lmplz`` (no pruning)
      katz              Katz backoff, Good-Turing discounts for counts <= 5
      add-k (laplace)   (c + k) / (c(ctx) + k|V|) on the full history; laplace is k = 1
      mle               relative frequency given the longest history seen in training
      stupid            stupid backoff, ``stupid_alpha`` per step down; scores, not probabilities
    |V| holds every word a model can predict: the training words, ``</s>`` and ``<unk>``.
    """

    def __init__(self, order: int = 3, smoothing: str = "modified-kn", k: float = 1.0,
                 stupid_alpha: float = 0.4):
        if not isinstance(order, (int, np.integer)) or order < 1:
            raise ValueError(f"order must be an integer >= 1, got {order!r}")
        name = str(smoothing).lower()
        if name == "laplace":
            k = 1.0
        name = _ALIASES.get(name, name)
        if name not in SMOOTHINGS:
            raise ValueError(f"unknown smoothing {smoothing!r}; valid: {', '.join(SMOOTHINGS)} "
                             f"(aliases: {', '.join(_ALIASES)})")
        if name == "add-k" and not k > 0:
            raise ValueError(f"add-k needs k > 0, got {k}")
        if name == "stupid" and not 0 < stupid_alpha <= 1:
            raise ValueError(f"stupid_alpha must be in (0, 1], got {stupid_alpha}")
        self.order, self.smoothing, self.k, self.stupid_alpha = int(order), name, float(k), float(stupid_alpha)
        self.architecture = "ngram"
        self.vocab: list[str] = []
        self.discounts: list[tuple[float, float, float]] = []  # modified-kn D1, D2, D3+ per order
        self._stoi: dict[str, int] = {}
        self._levels: list[_Level] = []

    def __repr__(self) -> str:
        sizes = ", ".join(str(len(lv.keys)) for lv in self._levels) or "unfitted"
        return f"NGramLM(order={self.order}, smoothing={self.smoothing!r}, n-grams=[{sizes}])"

    # ------------------------------------------------------------------ fitting
    def fit(self, sentences: Iterable[Sequence[str]], chunk_tokens: int = _FIT_CHUNK) -> "NGramLM":
        """Count ``sentences`` (lists of words, no markers; any iterable, read once) and build the smoothed
        model. The corpus is read ``chunk_tokens`` tokens at a time (whole sentences): memory holds one chunk
        and the distinct n-grams, not the corpus."""
        if self.smoothing not in SMOOTHINGS:
            raise ValueError(f"cannot fit a model loaded with smoothing {self.smoothing!r}; "
                             f"make a new NGramLM with one of {', '.join(SMOOTHINGS)}")
        stoi = {BOS: _BOS, EOS: _EOS, UNK: _UNK}
        counts = _count_chunks(_chunks(sentences, chunk_tokens), stoi, self.order)
        if counts is None:
            raise ValueError("cannot fit an n-gram LM on an empty corpus (no sentences)")
        bad = next((w for w in stoi if w.split() != [w]), None)  # ARPA lines are words split on white space
        if bad is not None:
            raise ValueError(f"a word must be non-empty and hold no white space (an ARPA file could not be read "
                             f"back), got {bad!r}")
        top = sum(len(lv["keys"]) > 0 for lv in counts)
        if top < self.order:  # the empty orders store nothing and back off (weight 1; stupid: alpha)
            warnings.warn(f"order {self.order}: the longest sentence has {top - 2} words (+ {BOS}, {EOS}), so no "
                          f"n-gram is longer than {top}; the orders above back off")
        with np.errstate(divide="ignore"):  # log 0 = -inf is meant: p = 0 or backoff 0
            levels = self._smooth(counts, n_vocab=len(stoi) - 1)  # all but <s> can be predicted
        levels[0].logp[_BOS] = _ARPA_ZERO * _LN10  # <s> is a context, never a prediction
        self._stoi, self.vocab, self._levels = stoi, list(stoi), levels
        return self

    def _smooth(self, counts: list[dict], n_vocab: int) -> list[_Level]:
        if self.smoothing == "modified-kn":
            adjusted = _kn_adjusted_counts(counts)
            self.discounts = [_kn_discounts(a, i + 1) if len(a) else _KN_FALLBACK for i, a in enumerate(adjusted)]
            return _kneser_ney(counts, adjusted, self.discounts, n_vocab)
        if self.smoothing == "katz":
            return _katz(counts, n_vocab)
        if self.smoothing == "add-k":
            return _add_k(counts, self.k, n_vocab)
        # MLE: a seen context gives unseen words 0 (backoff -inf); stupid: a fixed alpha
        return _relative_frequency(counts, -np.inf if self.smoothing == "mle" else np.log(self.stupid_alpha))

    # ------------------------------------------------------------------ scoring
    def logprob(self, word: str, context: Sequence[str]) -> float:
        """Natural-log p(word | context); context = preceding words, may start at ``<s>``."""
        self._check_fitted()
        context = list(context)
        if BOS in context:  # nothing before a sentence start conditions the next word
            context = context[len(context) - 1 - context[::-1].index(BOS):]
        context = context[max(0, len(context) - self.order + 1):] if self.order > 1 else []
        ids = [self._stoi.get(w, _UNK) for w in context]
        row = [-1] * (self.order - 1 - len(ids)) + ids + [self._stoi.get(word, _UNK)]
        return float(self._score(np.asarray([row], dtype=np.int64))[0])

    def score_sentences(self, sentences: Iterable[Sequence[str]]) -> tuple[float, int]:
        """(total natural-log probability, number of predicted tokens incl. one ``</s>`` each)."""
        self._check_fitted()
        total, count = 0.0, 0
        for chunk in _chunks(sentences, _FIT_CHUNK):  # bounded memory on any corpus size
            tok, start, _ = _flatten(chunk, self._stoi, grow=False)
            q = np.flatnonzero(tok != _BOS)  # every token but <s> is predicted
            windows = np.full((len(q), self.order), -1, dtype=np.int64)
            for j in range(self.order):  # column order-1-j holds the word j steps back
                src = q - j
                ok = src >= start[q]
                windows[ok, self.order - 1 - j] = tok[src[ok]]
            total, count = total + float(self._score(windows).sum()), count + len(q)
        return total, count

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """exp(-mean log p) over predicted tokens; inf if some token has p = 0."""
        if self.smoothing == "stupid":
            raise ValueError("stupid backoff scores are not probabilities (they do not sum to 1); "
                             "perplexity is undefined -- use score_sentences for a score")
        total, n = self.score_sentences(sentences)
        if n == 0:
            raise ValueError("cannot compute perplexity of an empty set of sentences")
        return math.exp(-total / n)

    def _score(self, windows: np.ndarray) -> np.ndarray:
        """Backoff log p for each row of ``windows`` (M, order): word ids, -1 = before ``<s>``,
        last column predicted."""
        n, V = windows.shape[1], len(self.vocab)
        ends = {}  # (start column, end column) -> ids of the n-gram windows[:, s:e]
        for s in range(n):
            cur = windows[:, s]
            for e in range(s + 2, n + 1):
                cur = _lookup(self._levels[e - s - 1].keys, cur, windows[:, e - 1], V)
                if e >= n - 1:
                    ends[s, e] = cur
            ends.setdefault((s, s + 1), windows[:, s])
        out = np.full(len(windows), np.nan)
        backoff = np.zeros(len(windows))
        for k in range(n, 0, -1):  # longest stored n-gram wins; add the backoffs passed on the way
            g = ends[n - k, n]
            lp = _take(self._levels[k - 1].logp, g, np.nan)
            hit = np.isnan(out) & ~np.isnan(lp)
            out[hit] = backoff[hit] + lp[hit]
            if k > 1 and self.smoothing == "stupid":  # alpha per step down, seen context or not
                backoff += np.where((windows[:, n - k:n - 1] >= 0).all(1), math.log(self.stupid_alpha), 0.0)
            elif k > 1:
                c = ends[n - k, n - 1]
                backoff += _take(self._levels[k - 2].logbo, c, 0.0)
        return out

    # ------------------------------------------------------------------ decoding
    def encode(self, text: str) -> list[int]:
        """Whitespace-split words -> ids (``<unk>`` for words the model does not know)."""
        return [self._stoi.get(w, _UNK) for w in text.split()]

    def decode_state(self, ids: torch.Tensor) -> torch.Tensor:
        """The history after reading ``ids`` (N, P) int64, as :meth:`decode_step` carries it: the last
        ``order - 1`` ids (N, order - 1), -1 = before ``<s>``. Reading starts at a sentence start."""
        self._check_fitted()
        state = torch.full((ids.shape[0], self.order - 1), -1, dtype=torch.long)
        if self.order > 1:
            state[:, -1] = _BOS
        for t in range(ids.shape[1]):
            state = self._advance(state, ids[:, t].cpu())
        return state

    def decode_step(self, tokens: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The :mod:`seqzoo.decoding` step function: ``tokens`` (N, 1) int64 and the history from
        :meth:`decode_state` -> ln p(next word) (N, |V|) float32, new history. After ``</s>`` the history
        is a new sentence's ``<s>``. Stupid backoff's scores are renormalised over the vocabulary."""
        state = self._advance(state, tokens[:, -1].cpu())
        n, V = state.shape[0], len(self.vocab)
        windows = np.empty((n * V, self.order), dtype=np.int64)
        windows[:, :-1] = np.repeat(state.numpy(), V, axis=0)
        windows[:, -1] = np.tile(np.arange(V), n)
        logp = torch.from_numpy(self._score(windows).reshape(n, V)).float()
        return logp.log_softmax(-1).to(tokens.device), state

    def _advance(self, state: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        if self.order == 1:
            return state
        new = torch.cat([state[:, 1:], token.view(-1, 1)], 1)
        new[token == _EOS] = torch.tensor([-1] * (self.order - 2) + [_BOS])
        return new

    def _check_fitted(self):
        if not self._levels:
            raise RuntimeError("this NGramLM has no model yet: call fit() or load one with from_arpa()")

    # ------------------------------------------------------------------ ARPA I/O
    def to_arpa(self, path: str | os.PathLike) -> None:
        """Write the model in ARPA backoff format (log10 probabilities and backoffs), ``_CHUNK`` lines at a time,
        so memory stays that of the model's arrays however many n-grams it holds."""
        self._check_fitted()
        vocab = np.array(self.vocab, dtype=object)
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n\\data\\\n" + "".join(f"ngram {i + 1}={len(lv.keys)}\n" for i, lv in enumerate(self._levels)))
            for i, lv in enumerate(self._levels):
                logp = lv.logp.copy()
                blank = np.isnan(logp)
                if blank.any():  # a blank's probability is what backoff gives, so write that
                    words = self._words(i, np.flatnonzero(blank))
                    logp[blank] = self._score(np.hstack([np.full((len(words), self.order - i - 1), -1), words]))
                p10 = _to_log10(logp)
                has_bo = (lv.logbo != 0) if i + 1 < self.order else np.zeros(len(lv.keys), bool)
                bo10 = _to_log10(lv.logbo)
                f.write(f"\n\\{i + 1}-grams:\n")
                for lo in range(0, len(lv.keys), _CHUNK):
                    at = np.arange(lo, min(lo + _CHUNK, len(lv.keys)))
                    names = [" ".join(row) for row in vocab[self._words(i, at)].tolist()]
                    f.write("".join(f"{p:.8g}\t{w}\t{b:.8g}\n" if h else f"{p:.8g}\t{w}\n" for p, w, b, h in
                                    zip(p10[at].tolist(), names, bo10[at].tolist(), has_bo[at].tolist())))
            f.write("\n\\end\\\n")

    def _words(self, i: int, idx: np.ndarray) -> np.ndarray:
        """Word ids (len(idx), i + 1) of the order-(i + 1) n-grams ``idx``."""
        cols = []
        for lv in self._levels[i:0:-1]:
            key = lv.keys[idx]
            cols.append(key % len(self.vocab))
            idx = key // len(self.vocab)
        return np.stack([idx] + cols[::-1], axis=1)

    @classmethod
    def from_arpa(cls, path: str | os.PathLike) -> "NGramLM":
        """Load any ARPA file (KenLM, SRILM, ``to_arpa``); ``smoothing`` becomes ``"arpa"``."""
        vocab, mats = _read_arpa(path)
        model = cls(order=len(mats))
        model.smoothing = "arpa"
        model.vocab, model._stoi = vocab, {w: i for i, w in enumerate(vocab)}
        model._levels = _levels_from_grams(mats, len(vocab))
        return model

    def _write_folder(self, directory: str | os.PathLike) -> None:
        """``directory/model.arpa`` + ``directory/config.json`` (``save_pretrained`` adds the card, atomically)."""
        os.makedirs(directory, exist_ok=True)
        self.to_arpa(os.path.join(directory, "model.arpa"))
        config = {"architecture": self.architecture, "model_class": "NGramLM", "order": self.order,
                  "smoothing": self.smoothing, "k": self.k, "stupid_alpha": self.stupid_alpha,
                  "vocab_size": len(self.vocab), "discounts": self.discounts, "weights": "model.arpa"}
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump(config, f, indent=2)

    @classmethod
    def _read_folder(cls, directory: str | os.PathLike) -> "NGramLM":
        with open(os.path.join(directory, "config.json")) as f:
            config = json.load(f)
        model = cls.from_arpa(os.path.join(directory, config.get("weights", "model.arpa")))
        model.smoothing = config.get("smoothing", "arpa")  # keeps "stupid" refusing perplexity
        model.k, model.stupid_alpha = config.get("k", 1.0), config.get("stupid_alpha", 0.4)
        model.architecture = config.get("architecture", "ngram")
        model.discounts = [tuple(d) for d in config.get("discounts", [])]
        return model


# ---------------------------------------------------------------------- counting
def _chunks(sentences, size: int):
    """Lists of whole sentences of about ``size`` tokens (``<s>`` and ``</s>`` counted) each."""
    if size < 1:
        raise ValueError(f"chunk_tokens must be >= 1, got {size}")
    chunk, n = [], 0
    for s in sentences:
        if isinstance(s, str):
            raise TypeError("each sentence must be a sequence of words, not a string; split lines first")
        chunk.append(s)
        n += len(s) + 2
        if n >= size:
            yield chunk
            chunk, n = [], 0
    if chunk:
        yield chunk


def _flatten(sents: list, stoi: dict, grow: bool):
    """Token ids of ``<s> w1 .. wn </s>`` for every sentence, back to back, plus each
    position's sentence start and end index."""
    lens = np.fromiter((len(s) for s in sents), dtype=np.int64, count=len(sents))
    words = itertools.chain.from_iterable(sents)
    if grow:
        ids = np.fromiter((stoi.setdefault(w, len(stoi)) for w in words), dtype=np.int64, count=int(lens.sum()))
    else:
        get = stoi.get
        ids = np.fromiter((get(w, _UNK) for w in words), dtype=np.int64, count=int(lens.sum()))
    if (ids <= _EOS).any():
        raise ValueError(f"sentences must not contain the markers {BOS} / {EOS}: they are added for you")
    size = lens + 2
    first = np.cumsum(size) - size
    last = first + size - 1
    tok = np.empty(int(size.sum()), dtype=np.int64)
    is_word = np.ones(len(tok), dtype=bool)
    is_word[first] = is_word[last] = False
    tok[first], tok[last], tok[is_word] = _BOS, _EOS, ids
    return tok, np.repeat(first, size), np.repeat(last, size)


def _count(tok: np.ndarray, end: np.ndarray, order: int, V: int) -> list[dict]:
    """Distinct n-grams of each order inside sentences, with their counts, prefix / suffix
    ids (into the order below) and first word. Order 1 is the whole vocabulary."""
    levels = [dict(keys=np.arange(V), count=np.bincount(tok, minlength=V), prefix=np.zeros(V, np.int64),
                   suffix=None, first=np.arange(V))]
    uid = tok  # id of the n-gram starting at each position (-1: runs past the sentence)
    at = np.arange(len(tok))
    for n in range(2, order + 1):
        if len(levels[-1]["keys"]) * V >= 2 ** 63:
            raise ValueError("too many n-grams to key in int64")
        pos = at[at + n - 1 <= end]
        uniq, inv, cnt = np.unique(uid[pos] * V + tok[pos + n - 1], return_inverse=True, return_counts=True)
        one = np.empty(len(uniq), np.int64)
        one[inv] = pos  # any one occurrence of each n-gram
        levels.append(dict(keys=uniq, count=cnt, prefix=uniq // V, suffix=uid[one + 1], first=tok[one]))
        uid = np.full(len(tok), -1, np.int64)
        uid[pos] = inv
    return levels


def _count_chunks(chunks, stoi: dict, order: int) -> list[dict] | None:
    """``_count`` of a corpus given as chunks of sentences, without holding it: each chunk is counted on its
    own, its n-grams turned into rows of word ids and added to running totals; the levels are keyed at the
    end, with the final vocabulary. ``None`` for no sentences."""
    unigram, rows, counts = None, [None] * order, [None] * order
    for chunk in chunks:
        tok, _, end = _flatten(chunk, stoi, grow=True)
        V = len(stoi)
        if V >= 2 ** 31:
            raise ValueError(f"vocabulary of {V} words: n-gram rows hold int32 word ids")
        local = _count(tok, end, order, V)
        c = local[0]["count"]
        unigram = c if unigram is None else c + np.pad(unigram, (0, V - len(unigram)))
        r = np.arange(V, dtype=np.int32)[:, None]  # this chunk's n-grams of the order below, as word-id rows
        for n in range(1, order):
            lv = local[n]
            r = np.column_stack([r[lv["prefix"]], (lv["keys"] % V).astype(np.int32)])
            rows[n], counts[n] = _merge_rows(rows[n], counts[n], r, lv["count"])
    if unigram is None:
        return None
    V = len(stoi)
    levels = [dict(keys=np.arange(V), count=unigram, prefix=np.zeros(V, np.int64), suffix=None,
                   first=np.arange(V))]
    for n in range(1, order):
        if len(levels[-1]["keys"]) * V >= 2 ** 63:
            raise ValueError("too many n-grams to key in int64")
        key = _row_keys(levels, rows[n], V)
        at = np.argsort(key, kind="stable")
        r, key = rows[n][at], key[at]
        suffix = np.searchsorted(levels[n - 1]["keys"], _row_keys(levels, r[:, 1:], V))
        levels.append(dict(keys=key, count=counts[n][at], prefix=key // V, suffix=suffix,
                           first=r[:, 0].astype(np.int64)))
    return levels


def _merge_rows(rows, counts, new_rows, new_counts):
    """Distinct rows of both (n-grams as word-id rows) with their counts summed."""
    if rows is None:
        return new_rows, new_counts
    both = np.concatenate([rows, new_rows])
    void = np.ascontiguousarray(both).view(np.dtype((np.void, both.itemsize * both.shape[1]))).ravel()
    _, first, inv = np.unique(void, return_index=True, return_inverse=True)
    weights = np.concatenate([counts, new_counts]).astype(np.float64)  # exact below 2**53
    return both[first], np.bincount(inv.ravel(), weights, len(first)).astype(np.int64)


def _row_keys(levels: list[dict], rows: np.ndarray, V: int) -> np.ndarray:
    """Hierarchical keys (id of the prefix * V + last word) of word-id rows, whose prefixes are in ``levels``."""
    key = rows[:, 0].astype(np.int64)
    for j in range(1, rows.shape[1]):
        key = np.searchsorted(levels[j - 1]["keys"], key) * V + rows[:, j]
    return key


def _lookup(keys: np.ndarray, prefix: np.ndarray, word: np.ndarray, V: int) -> np.ndarray:
    """Ids of the n-grams (prefix id, word) in one order's sorted keys; -1 where absent."""
    key = prefix * V + word
    idx = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
    found = (prefix >= 0) & (word >= 0) & (keys[idx] == key) if len(keys) else np.zeros(len(key), bool)
    return np.where(found, idx, -1)


def _take(values: np.ndarray, ids: np.ndarray, fill: float) -> np.ndarray:
    """``values[ids]``, ``fill`` where an id is -1 (absent); ``values`` may be an empty order's."""
    return np.where(ids >= 0, values[np.maximum(ids, 0)], fill) if len(values) else np.full(len(ids), fill)


def _context_totals(prefix: np.ndarray, values: np.ndarray, n_contexts: int) -> np.ndarray:
    return np.bincount(prefix, weights=values, minlength=n_contexts)


def _raw(counts: list[dict], i: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Order i+1's raw counts (``<s>`` zeroed: never predicted), context ids, context count."""
    c = counts[i]["count"].astype(float)
    if i == 0:
        c[_BOS] = 0
    return c, counts[i]["prefix"], 1 if i == 0 else len(counts[i - 1]["keys"])


# ---------------------------------------------------------------------- smoothing
def _kn_adjusted_counts(counts: list[dict]) -> list[np.ndarray]:
    """lmplz's adjusted counts: raw counts at the top order and for n-grams starting with
    ``<s>`` (they have no left context to diversify); elsewhere the number of distinct words
    seen to the left (continuation counts). ``<s>`` itself is never predicted: 0."""
    adjusted = []
    for i, lv in enumerate(counts):
        if i + 1 == len(counts):
            a = lv["count"].copy()
        else:
            a = np.bincount(counts[i + 1]["suffix"], minlength=len(lv["keys"]))
            at_bos = lv["first"] == _BOS
            a[at_bos] = lv["count"][at_bos]
        if i == 0:
            a[_BOS] = 0
        adjusted.append(a)
    return adjusted


def _kn_discounts(adjusted: np.ndarray, n: int) -> tuple[float, float, float]:
    """Chen & Goodman eq. 26 from the count-of-counts n1..n4 of adjusted counts."""
    c = np.bincount(np.minimum(adjusted, 5), minlength=6)
    if (c[1:5] > 0).all():
        y = c[1] / (c[1] + 2.0 * c[2])
        d = tuple(float(j - (j + 1) * y * c[j + 1] / c[j]) for j in (1, 2, 3))
        if all(0 <= dj <= j for j, dj in zip((1, 2, 3), d)):
            return d
    warnings.warn(f"{n}-gram count-of-counts n1..n4 = {c[1:5].tolist()} do not give valid Kneser-Ney "
                  f"discounts (small data?); using lmplz's fallback D1, D2, D3+ = {_KN_FALLBACK}")
    return _KN_FALLBACK


def _kneser_ney(counts, adjusted, discounts, n_vocab) -> list[_Level]:
    """Interpolated modified KN, then folded into backoff form: the interpolation weight
    gamma(context) is the context's backoff (lmplz's initial_probabilities + interpolate)."""
    levels, p_below = [], None
    for i, (lv, a) in enumerate(zip(counts, adjusted)):
        _, ctx, n_ctx = _raw(counts, i)
        d = np.array((0.0,) + tuple(discounts[i]))[np.minimum(a, 3)]
        denom = _context_totals(ctx, a, n_ctx)
        gamma = np.divide(_context_totals(ctx, d, n_ctx), denom, out=np.zeros(n_ctx), where=denom > 0)
        p = (a - d) / denom[ctx]
        if i == 0:
            p += gamma[0] / n_vocab  # unigrams interpolate with the uniform distribution
        else:
            p += gamma[ctx] * p_below[lv["suffix"]]
            levels[-1].logbo = np.where(denom > 0, np.log(gamma), 0.0)
        levels.append(_Level(lv["keys"], np.log(p), np.zeros(len(p))))
        p_below = p
    return levels


def _good_turing(c: np.ndarray) -> np.ndarray:
    """Katz's discount ratio d_r for r = 0 .. _KATZ_MAX (1 where the statistics don't allow one)."""
    n = np.bincount(c, minlength=_KATZ_MAX + 2).astype(float)
    d = np.ones(_KATZ_MAX + 1)
    if n[1] == 0:
        return d
    common = (_KATZ_MAX + 1) * n[_KATZ_MAX + 1] / n[1]
    for r in range(1, _KATZ_MAX + 1):
        if n[r] > 0 and common < 1:
            dr = ((r + 1) * n[r + 1] / (r * n[r]) - common) / (1 - common)
            d[r] = dr if 0 < dr <= 1 else 1.0
    return d


def _katz(counts, n_vocab) -> list[_Level]:
    """Katz backoff on raw counts; unigrams spread their Good-Turing leftover uniformly.
    Where discounting leaves a context no mass (every count > 5), its denominator gets one
    more count -- Doug Paul's fix, as in SRILM and the CMU toolkit -- so nothing gets p = 0."""
    levels, p_below = [], None
    for i, lv in enumerate(counts):
        c, ctx, n_ctx = _raw(counts, i)
        c = c.astype(np.int64)
        dc = np.where(c <= _KATZ_MAX, _good_turing(c)[np.minimum(c, _KATZ_MAX)], 1.0) * c
        denom = _context_totals(ctx, c, n_ctx)
        denom += (denom > 0) & (_context_totals(ctx, dc, n_ctx) > denom * (1 - 3e-6))
        p = dc / denom[ctx]
        left = 1.0 - _context_totals(ctx, p, n_ctx)
        if i == 0:
            p += left[0] / n_vocab
        else:  # alpha(ctx) moves the discounted mass onto the words ctx was never followed by
            below = 1.0 - _context_totals(ctx, p_below[lv["suffix"]], n_ctx)
            full = below <= 1e-12  # ctx saw every word the lower order gives mass: rescale
            p /= np.where(full, 1.0 - left, 1.0)[ctx]
            alpha = np.divide(left, below, out=np.zeros(n_ctx), where=(denom > 0) & ~full)
            levels[-1].logbo = np.where(denom > 0, np.log(alpha), 0.0)
        levels.append(_Level(lv["keys"], np.log(p), np.zeros(len(p))))
        p_below = p
    return levels


def _add_k(counts, k: float, n_vocab: int) -> list[_Level]:
    """(c + k) / (c(ctx) + k|V|) for full histories (top order, or starting at ``<s>``).
    Shorter n-grams and the unigrams get 1 / |V|, so a seen context's backoff
    k|V| / (c(ctx) + k|V|) yields k / (c(ctx) + k|V|) and an unseen context 1 / |V|."""
    order, levels = len(counts), []
    for i, lv in enumerate(counts):
        c, ctx, n_ctx = _raw(counts, i)
        if i == 0:
            p = (c + k) / (c.sum() + k * n_vocab) if order == 1 else np.full(len(c), 1.0 / n_vocab)
            levels.append(_Level(lv["keys"], np.log(p), np.zeros(len(c))))
            continue
        full = np.full(len(c), i + 1 == order) | (lv["first"] == _BOS)
        denom = _context_totals(ctx, c, n_ctx) + k * n_vocab
        logp = np.where(full, np.log((c + k) / denom[ctx]), -math.log(n_vocab))
        is_ctx = np.zeros(n_ctx, bool)
        is_ctx[ctx[full]] = True
        levels[-1].logbo = np.where(is_ctx, np.log(k * n_vocab / denom), 0.0)
        levels.append(_Level(lv["keys"], logp, np.zeros(len(c))))
    return levels


def _relative_frequency(counts, context_logbo: float) -> list[_Level]:
    """c(ctx w) / c(ctx) at every order; each seen context backs off with ``context_logbo``."""
    levels = []
    for i, lv in enumerate(counts):
        c, ctx, n_ctx = _raw(counts, i)
        denom = _context_totals(ctx, c, n_ctx)
        if i:
            levels[-1].logbo = np.where(denom > 0, context_logbo, 0.0)
        levels.append(_Level(lv["keys"], np.log(c / denom[ctx]), np.zeros(len(c))))
    return levels


# ---------------------------------------------------------------------- ARPA parsing
_CHUNK = 200_000  # ARPA lines read / written at a time
_SPACE = np.zeros(256, bool)
_SPACE[list(b" \t\r\n\x0b\x0c")] = True  # what bytes.split() splits on


def _to_log10(ln: np.ndarray) -> np.ndarray:
    return np.where(np.isneginf(ln), _ARPA_ZERO, ln / _LN10)


def _from_log10(log10: np.ndarray) -> np.ndarray:
    return np.where(log10 <= _ARPA_ZERO, -np.inf, log10 * _LN10)  # -99 is ARPA's log 0


def _read_arpa(path) -> tuple[list[str], list[list[np.ndarray]]]:
    """The vocabulary (specials first) and, per order, [word ids (count, n), ln p, ln backoff (0 if absent)].

    The file is read line by line and each section parsed ``_CHUNK`` lines at a time, words turned into ids at
    once: memory is that of the id arrays, not of the file's text. A gzipped file (``.arpa.gz``, as KenLM and
    SRILM write) is read as it is."""
    try:
        with _open_text(path) as f:
            return _parse_arpa(path, f)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text at byte {e.start} of a line: not an ARPA file?") from None


def _open_text(path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if gz else open(path, encoding="utf-8")


def _parse_arpa(path, f) -> tuple[list[str], list[list[np.ndarray]]]:
    """:func:`_read_arpa` on the open text file ``f``."""
    lines = iter(f)
    for line in lines:
        if line.strip() == "\\data\\":
            break
    else:
        raise ValueError(f"{path}: not an ARPA file (no \\data\\ header)")
    expected, line = {}, ""
    for line in lines:
        m = re.match(r"\s*ngram\s+(\d+)\s*=\s*(\d+)", line)
        if m:
            expected[int(m.group(1))] = int(m.group(2))
        elif line.strip():
            break
    if not expected or sorted(expected) != list(range(1, len(expected) + 1)):
        raise ValueError(f"{path}: bad \\data\\ header {sorted(expected.items())}")
    stoi: dict[str, int] | None = None  # known once the 1-grams are read
    vocab: list[str] = []
    mats = []
    for n in range(1, len(expected) + 1):
        while line and not line.strip():
            line = next(lines, "")
        if line.strip() != f"\\{n}-grams:":
            raise ValueError(f"{path}: no \\{n}-grams: section (found {line.strip()[:40]!r})")

        def parse(block: list[str]):  # 1-grams keep their words: the vocabulary is built from them
            words, lp, bo = _parse_section("".join(block), n, path)
            return (words if stoi is None else _ids(words, stoi, n, path)), lp, bo

        parts, block, line = [], [], ""
        for line in lines:  # up to the next line starting with a backslash
            if line.startswith("\\"):
                break
            block.append(line)
            if len(block) == _CHUNK:
                parts.append(parse(block))
                block = []
        else:
            line = ""
        parts.append(parse(block))
        ids, lp, bo = (np.concatenate([p[k] for p in parts]) for k in range(3))
        if len(lp) != expected[n]:
            raise ValueError(f"{path}: {len(lp)} {n}-grams where the header says {expected[n]}")
        if stoi is None:
            words = ids[:, 0].tolist()
            vocab = [BOS, EOS, UNK] + [w for w in words if w not in (BOS, EOS, UNK)]
            stoi = {w: i for i, w in enumerate(vocab)}
            ids = np.array([stoi[w] for w in words], dtype=np.int64).reshape(-1, 1)
        mats.append([ids, _from_log10(lp), _from_log10(bo)])
    return vocab, mats


def _ids(words: np.ndarray, stoi: dict, n: int, path) -> np.ndarray:
    try:
        return np.array([stoi[w] for w in words.ravel().tolist()], dtype=np.int64).reshape(-1, n)
    except KeyError as e:
        raise ValueError(f"{path}: ARPA {n}-gram uses the word {e.args[0]!r}, which is not a unigram") from None


def _parse_section(body: str, n: int, path="ARPA file") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a block of lines at once; lines hold n + 1 or n + 2 fields (backoff optional)."""
    raw = body.encode("utf-8")
    if not raw.strip():
        return np.empty((0, n), dtype=object), np.empty(0), np.empty(0)
    space = _SPACE[np.frombuffer(raw, np.uint8)]
    starts = np.flatnonzero(~space & np.concatenate([[True], space[:-1]]))  # first byte of every field
    per_line = np.bincount(np.searchsorted(np.flatnonzero(np.frombuffer(raw, np.uint8) == 10), starts))
    per_line = per_line[per_line > 0]
    # fields are split on ASCII white space only, as KenLM does: a word may hold (or end in) a no-break space
    tokens = body.split() if body.isascii() else [t.decode("utf-8") for t in raw.split()]
    if ((per_line != n + 1) & (per_line != n + 2)).any():
        raise ValueError(f"{path}: malformed line in the ARPA {n}-gram section")
    tokens = np.array(tokens, dtype=object)
    first = np.cumsum(per_line) - per_line
    bo = np.zeros(len(first))
    has_bo = per_line == n + 2
    try:
        bo[has_bo] = tokens[first[has_bo] + n + 1].astype(float)
        lp = tokens[first].astype(float)
    except ValueError:
        raise ValueError(f"{path}: a log10 probability or backoff in the ARPA {n}-gram section is not a "
                         f"number") from None
    return tokens[first[:, None] + np.arange(1, n + 1)].reshape(-1, n), lp, bo


def _levels_from_grams(mats, V: int) -> list[_Level]:
    """Backoff tables from parsed ARPA sections (word ids). N-grams whose prefix is missing get the prefix
    as a blank (context-only, backoff 1) so hierarchical ids stay defined; a missing ``<unk>``
    gets log10 p = -100 like KenLM."""
    levels = _index(mats, V)
    if levels is None:  # rare (pruned files): add the missing prefixes, top order down
        for n in range(len(mats), 2, -1):
            ids, lp, bo = mats[n - 2]
            union, first = np.unique(np.vstack([ids, mats[n - 1][0][:, :-1]]), axis=0, return_index=True)
            new = union[first >= len(ids)]
            mats[n - 2] = [np.vstack([ids, new]), np.concatenate([lp, np.full(len(new), np.nan)]),
                           np.concatenate([bo, np.zeros(len(new))])]
        levels = _index(mats, V)
    return levels


def _index(mats, V: int) -> list[_Level] | None:
    """Sorted hierarchical keys per order; None if some n-gram's prefix is not stored."""
    uni_lp, uni_bo = np.full(V, -100 * _LN10), np.zeros(V)
    uni_lp[mats[0][0][:, 0]], uni_bo[mats[0][0][:, 0]] = mats[0][1], mats[0][2]
    levels = [_Level(np.arange(V), uni_lp, uni_bo)]
    for n, (ids, lp, bo) in enumerate(mats[1:], start=2):
        prefix = ids[:, 0]
        for j in range(1, n - 1):
            prefix = _lookup(levels[j].keys, prefix, ids[:, j], V)
        if (prefix < 0).any():
            return None
        keys = prefix * V + ids[:, -1]
        order = np.argsort(keys, kind="stable")
        if (np.diff(keys[order]) == 0).any():
            raise ValueError(f"ARPA file repeats a {n}-gram")
        levels.append(_Level(keys[order], lp[order], bo[order]))
    return levels


# ---------------------------------------------------------------------- variants
def _rows(name: str) -> dict:
    """Row ``name`` of the PTB and WikiText-2 recipe tables (recipes/{ptb,wikitext2}/recipe.yaml), published as
    ``seqzoo/<name>.ptb`` and ``seqzoo/<name>.wikitext2``."""
    return {tag: PretrainedCfg(hf_hub_id=f"seqzoo/{name}.{tag}", dataset=dataset, recipe=f"recipes/{tag}/recipe.yaml",
                               run=name) for tag, dataset in (("ptb", "ptb"), ("wikitext2", "wikitext-2"))}


def _create(pretrained: bool, defaults: dict, kwargs: dict, name: str) -> NGramLM:
    if pretrained:
        raise ValueError(f"{name}(pretrained=True): load a checkpoint with seqzoo.create_model('{name}.TAG') or "
                         f"seqzoo.from_pretrained(...), or fit() this model on your corpus")
    model = NGramLM(**dict(defaults, **kwargs))
    model.architecture = name
    return model


@register_model(pretrained=_rows("kn3"))
def kn3(pretrained=False, **kwargs):
    """Trigram, interpolated modified Kneser-Ney (KenLM lmplz -o 3); test ppl ~148 on PTB, ~226 on WikiText-2."""
    return _create(pretrained, dict(order=3, smoothing="modified-kn"), kwargs, "kn3")


@register_model(pretrained=_rows("kn5"))
def kn5(pretrained=False, **kwargs):
    """5-gram, interpolated modified Kneser-Ney (KenLM lmplz -o 5); test ppl ~141 on PTB, ~220 on WikiText-2."""
    return _create(pretrained, dict(order=5, smoothing="modified-kn"), kwargs, "kn5")


@register_model
def ngram_katz3(pretrained=False, **kwargs):
    """Trigram, Katz backoff with Good-Turing discounts for counts <= 5."""
    return _create(pretrained, dict(order=3, smoothing="katz"), kwargs, "ngram_katz3")


@register_model
def ngram_addk3(pretrained=False, **kwargs):
    """Trigram, add-k (Laplace for k=1) smoothing of the full-history counts."""
    return _create(pretrained, dict(order=3, smoothing="add-k"), kwargs, "ngram_addk3")


@register_model
def ngram_mle3(pretrained=False, **kwargs):
    """Trigram, unsmoothed relative frequencies (zero probabilities happen)."""
    return _create(pretrained, dict(order=3, smoothing="mle"), kwargs, "ngram_mle3")


@register_model
def ngram_stupid5(pretrained=False, **kwargs):
    """5-gram stupid backoff (Brants et al. 2007), alpha 0.4: scores, not probabilities."""
    return _create(pretrained, dict(order=5, smoothing="stupid"), kwargs, "ngram_stupid5")
