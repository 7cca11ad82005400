"""Word embeddings: load word2vec / GloVe / FastText vectors, train your own, evaluate them,
and initialise a model's ``nn.Embedding`` with them. gensim does the work underneath.

References:
- Mikolov et al. 2013, "Efficient Estimation of Word Representations in Vector Space"
  (word2vec: skip-gram and CBOW; the Google analogy set) and "Distributed Representations of
  Words and Phrases and their Compositionality" (negative sampling).
- Pennington, Socher & Manning 2014, "GloVe: Global Vectors for Word Representation".
- Bojanowski et al. 2017, "Enriching Word Vectors with Subword Information" (FastText).
- Finkelstein et al. 2002 (WordSim-353); Hill, Reichart & Korhonen 2015 (SimLex-999).

Formats :func:`load_embeddings` reads (``format="auto"`` sniffs the bytes, not the suffix):

==================  ==========================================================================
``word2vec``        text, header ``count dim``, then ``word v1 ... vd`` (also FastText ``.vec``)
``word2vec-binary`` the C tool's binary format (header line, then ``word<space><d float32>``)
``glove``           text without a header line (Stanford's ``glove.*.txt``), ``.gz`` too
``fasttext``        Facebook's ``.bin``: keeps the subword n-grams, so unseen words get vectors
``kv``              gensim's native ``KeyedVectors.save`` file: a pickle, which can run code when read, so it
                    is refused unless ``trust_pickle=True`` (``--trust-pickle``)
==================  ==========================================================================

Named vectors (``glove-6b-50d`` ...) are looked for in ``data_dir`` / ``$SEQZOO_DATA``
(``<dir>/glove/glove.6B.50d.txt.gz``), then on the Hugging Face Hub (``fse/*`` repos, gensim
native files, read as seqzoo's own list vouches for them), unless ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` is set.

Training covers word2vec and FastText (:func:`train_embeddings`). GloVe training is not
implemented: gensim has no GloVe trainer; use Stanford's C tool and load its output here.
"""
from __future__ import annotations

import codecs
import gzip
import itertools
import json
import os
import struct
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seqzoo.data.corpora import CORPORA, _offline, check_text_file, resolve_data_dir
from seqzoo.data.vocab import PAD, SPECIALS, Vocab
from seqzoo.utils import check_folder, write_folder

__all__ = ["load_embeddings", "embedding_matrix", "init_embedding", "Coverage", "train_embeddings",
           "TrainConfig", "evaluate", "nearest", "embeddings_main", "run_recipe_entry", "reproduce", "write_report",
           "default_eval_files",
           "NAMED_EMBEDDINGS", "FORMATS", "OOV_POLICIES", "EmbeddingSource"]

FORMATS = ("auto", "word2vec", "word2vec-binary", "glove", "fasttext", "kv")
OOV_POLICIES = ("random", "zeros", "subword")
METHODS = ("word2vec", "fasttext")
_FASTTEXT_MAGIC = struct.pack("<i", 793712314)


@dataclass(frozen=True)
class EmbeddingSource:
    """A named set of pretrained vectors: its file in the local mirror and its Hub repo."""
    local: str | None  # path inside data_dir
    format: str
    hub_id: str | None
    description: str = ""


NAMED_EMBEDDINGS: dict[str, EmbeddingSource] = {
    f"glove-6b-{d}d": EmbeddingSource(f"glove/glove.6B.{d}d.txt.gz", "glove", f"fse/glove-wiki-gigaword-{d}",
                                      f"GloVe 6B (Wikipedia 2014 + Gigaword 5), uncased, 400k words, {d}d")
    for d in (50, 100, 200, 300)
}
NAMED_EMBEDDINGS["word2vec-google-news-300"] = EmbeddingSource(
    None, "kv", "fse/word2vec-google-news-300", "word2vec skip-gram on Google News (100B tokens), 3M words, 300d")


# -- loading ---------------------------------------------------------------------------------------
def _open(path: Path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _header(line: bytes) -> tuple[int, int] | None:
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _looks_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=False)  # a cut multi-byte char is fine
        return True
    except UnicodeDecodeError:
        return False


def _sniff(path: Path) -> str:
    """The format of ``path`` from its first bytes."""
    try:
        with _open(path) as f:
            head = f.read(1 << 16)
    except (EOFError, OSError) as e:  # a gzip stream cut short: say where
        return _truncated_gzip(path, e)
    if not head.strip():
        raise ValueError(f"embedding file is empty: {path}")
    if head[:4] == _FASTTEXT_MAGIC:
        return "fasttext"
    if head[:1] == b"\x80":  # a pickle: gensim's native save
        return "kv"
    first, _, rest = head.partition(b"\n")
    if _header(first):
        return "word2vec" if _looks_text(rest) else "word2vec-binary"
    if not _looks_text(head[:4096]):  # FastText's format before the magic number (2016) has none
        return "fasttext"
    return "glove"


def _truncated_gzip(path: Path, err) -> str:
    line_no = 0
    try:
        with gzip.open(path, "rb") as f:
            for line_no, _ in enumerate(f, 1):
                pass
    except (EOFError, OSError):
        pass
    raise ValueError(f"{path}: truncated compressed file: it ends inside line {line_no + 1} ({err})")


def _diagnose_text(path: Path, has_header: bool) -> str | None:
    """Find the first bad line of a word2vec / GloVe text file; the message, or None if it looks fine."""
    dim, count, n_vec, line_no = None, None, 0, 0
    try:
        with _open(path) as f:
            for line_no, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    return (f"{path}: line {line_no} is not UTF-8 text: a binary file read as text? "
                            f"(try format='word2vec-binary' or 'fasttext')")
                if has_header and line_no == 1:
                    h = _header(raw)
                    if h is None:
                        return f"{path}: line 1 should be the header 'count dim', got {line.strip()[:60]!r}"
                    count, dim = h
                    continue
                parts = line.rstrip().split(" ")
                values = len(parts) - 1
                dim = values if dim is None else dim
                if values != dim:
                    cut = " and the file ends there: truncated file?" if not raw.endswith(b"\n") else ""
                    return f"{path}: line {line_no} has {values} values, expected {dim}{cut}"
                for v in parts[1:]:
                    try:
                        float(v)
                    except ValueError:
                        return f"{path}: line {line_no}: {v[:30]!r} is not a number"
                n_vec += 1
                if count is not None and n_vec == count:
                    return None
    except (EOFError, OSError) as e:  # a gzip stream cut short
        return f"{path}: truncated compressed file: it ends inside line {line_no + 1} ({e})"
    if line_no == 0 or n_vec == 0:
        return f"embedding file is empty: {path} (no vectors)"
    if count is not None and n_vec < count:
        return (f"{path}: truncated file: the header promises {count} vectors but it ends at line {line_no} "
                f"after {n_vec}")
    return None


def _diagnose_binary(path: Path) -> str | None:
    with _open(path) as f:
        h = _header(f.readline())
        if h is None:
            return f"{path}: line 1 should be the header 'count dim'"
        count, dim = h
        for i in range(count):
            word = bytearray()
            while (c := f.read(1)) not in (b" ", b""):
                word += c
            if len(f.read(4 * dim)) < 4 * dim:
                return (f"{path}: truncated file: the header promises {count} vectors but vector {i + 1} "
                        f"({bytes(word).decode('utf-8', 'replace').strip()!r}) is cut short")
    return None


def _widths_ok(path: Path, has_header: bool, dim: int, limit: int | None) -> bool:
    """Whether every line gensim read holds ``dim`` values (it spreads a lone value over the whole vector)."""
    with _open(path) as f:
        lines = itertools.islice(f, _header(f.readline())[0] if has_header else None)
        return all(line.decode("utf-8").rstrip().count(" ") == dim for line in itertools.islice(lines, limit))


def _not_text(path: Path) -> str | None:
    """For a file that failed to load as binary vectors (:func:`_sniff` takes anything not UTF-8 text for
    binary): where its text breaks, as it may be a text file instead; None for a fastText ``.bin``."""
    with _open(path) as f:
        head = f.read(4096)
    nul = head.find(b"\x00")
    text = head[:nul] if nul >= 0 else head
    try:
        codecs.getincrementaldecoder("utf-8")().decode(text, final=False)
        pos, what = nul, "a NUL byte"
    except UnicodeDecodeError as e:
        pos, what = e.start, f"byte {text[e.start]:#04x} is not UTF-8"
    if head[:4] == _FASTTEXT_MAGIC or pos < 0:
        return None
    line = head.count(b"\n", 0, pos) + 1
    return (f"{path}: neither a UTF-8 text vector file (line {line}, byte offset {pos}: {what}) "
            f"nor a binary fastText / word2vec file")


def _load_file(path: Path, fmt: str, limit: int | None, trust_pickle: bool = False):
    from gensim.models import KeyedVectors
    from gensim.models.fasttext import load_facebook_vectors

    if path.is_dir():  # a train_embeddings output folder: vectors.bin (before 2026-12-04: vectors.kv, a pickle)
        found = next((path / f for f in ("vectors.bin", "vectors.kv") if (path / f).is_file()), None)
        if found is None:
            raise FileNotFoundError(f"folder {path} has no vectors.bin")
        path, fmt = found, ("kv" if found.suffix == ".kv" else "auto")
    if path.stat().st_size == 0:
        raise ValueError(f"embedding file is empty: {path}")
    if fmt == "auto":
        fmt = _sniff(path)
    if fmt == "kv" and not trust_pickle:
        raise ValueError(f"{path} is a gensim native file, a pickle that can run code when read: pass "
                         f"trust_pickle=True (--trust-pickle) if you trust its source, or give word2vec / GloVe text, "
                         f"word2vec binary or FastText .bin vectors")
    try:
        if fmt == "fasttext":
            kv = load_facebook_vectors(str(path))
        elif fmt == "kv":
            kv = KeyedVectors.load(str(path))
        else:
            kv = KeyedVectors.load_word2vec_format(str(path), binary=fmt == "word2vec-binary",
                                                   no_header=fmt == "glove", limit=limit)
            if fmt != "word2vec-binary" and not _widths_ok(path, fmt == "word2vec", kv.vector_size, limit):
                raise ValueError("a line of the wrong width")  # found again below, with its number
    except Exception as e:  # gensim's errors name neither file nor line: find them
        if fmt in ("word2vec", "glove"):
            msg = _diagnose_text(path, has_header=fmt == "word2vec")
        elif fmt == "word2vec-binary":
            msg = _diagnose_binary(path) or _not_text(path)
        else:
            msg = _not_text(path) if fmt == "fasttext" else None
        raise ValueError(msg or f"{path}: cannot read as {fmt} vectors ({type(e).__name__}: {e})") from None
    if fmt in ("fasttext", "kv") and limit:
        kv = _head(kv, limit)
    if len(kv) == 0:
        raise ValueError(f"embedding file is empty: {path} (no vectors)")
    if kv.vector_size == 0:  # "word" lines with no numbers, or tab-separated ones, read as 0-d vectors
        raise ValueError(f"{path}: its vectors have no numbers (a line is a word, then its numbers, separated by "
                         f"spaces)")
    return kv


def _head(kv, n: int):
    from gensim.models import KeyedVectors
    if n >= len(kv) or type(kv) is not KeyedVectors:  # FastText keeps its n-grams whole
        return kv
    out = KeyedVectors(kv.vector_size, n, dtype=kv.vectors.dtype)
    out.add_vectors(kv.index_to_key[:n], kv.vectors[:n])
    return out


def _from_hub(name: str, src: EmbeddingSource, where: str):
    if _offline() or not src.hub_id:
        why = "the Hub is offline" if src.hub_id else "it has no Hub copy"
        raise FileNotFoundError(f"embeddings {name!r} have no local copy ({where}) and {why}")
    try:
        from huggingface_hub import snapshot_download
        folder = Path(snapshot_download(src.hub_id, allow_patterns=["*.model", "*.npy", "*.kv"]))
    except Exception as e:
        raise FileNotFoundError(f"embeddings {name!r}: no local copy ({where}) and the download of "
                                f"{src.hub_id} failed ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    files = sorted(folder.glob("*.model")) + sorted(folder.glob("*.kv"))
    if not files:
        raise FileNotFoundError(f"embeddings {name!r}: Hub repo {src.hub_id} holds no gensim .model file")
    return files[0]


def load_embeddings(path_or_name: str | os.PathLike, format: str = "auto", limit: int | None = None,
                    data_dir: str | os.PathLike | None = None, trust_pickle: bool = False):
    """gensim ``KeyedVectors`` (``FastTextKeyedVectors`` for a FastText ``.bin``).

    Args:
        path_or_name: a file, a :func:`train_embeddings` output folder, or a name in
            ``NAMED_EMBEDDINGS`` (``glove-6b-50d`` ...).
        format: one of ``FORMATS``; ``auto`` sniffs the file.
        limit: read only the first ``limit`` vectors (the most frequent ones in the usual files).
        data_dir: local mirror holding ``glove/glove.6B.50d.txt.gz`` (default ``$SEQZOO_DATA``).
        trust_pickle: read a gensim native (``kv``) file, a pickle; refused otherwise (named vectors excepted).

    Bad input (empty, truncated, a line of the wrong width, binary read as text) raises a
    one-line ``ValueError`` naming the file and the line.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown embedding format {format!r}; valid: {', '.join(FORMATS)}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    p = Path(path_or_name).expanduser()
    if p.exists():
        return _load_file(p, format, limit, trust_pickle)
    name = str(path_or_name)
    if name not in NAMED_EMBEDDINGS:
        raise FileNotFoundError(f"embedding file not found: {name}; or a name: {', '.join(NAMED_EMBEDDINGS)}")
    src = NAMED_EMBEDDINGS[name]
    d = resolve_data_dir(data_dir)
    local = d / src.local if d and src.local else None
    if local is not None and local.is_file():
        return _load_file(local, src.format if format == "auto" else format, limit)
    where = str(local) if local else ("no --data-dir / SEQZOO_DATA given" if src.local else "none exists")
    return _load_file(_from_hub(name, src, where), "kv", limit, trust_pickle=True)  # a repo seqzoo names


def _vectors(v, data_dir=None):
    return load_embeddings(v, data_dir=data_dir) if isinstance(v, (str, os.PathLike)) else v


# -- into a model --------------------------------------------------------------------------------
@dataclass
class Coverage:
    """How many vocab words (specials not counted) found a vector, and how."""
    total: int
    exact: int = 0
    lower: int = 0
    subword: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def found(self) -> int:
        return self.exact + self.lower + self.subword

    @property
    def rate(self) -> float:
        return self.found / self.total if self.total else 0.0

    def summary(self) -> str:
        return (f"embedding coverage {self.found}/{self.total} ({100 * self.rate:.1f}%): {self.exact} exact, "
                f"{self.lower} lower-case, {self.subword} subword, {len(self.missing)} missing")


def embedding_matrix(vocab: Vocab, vectors, oov: str = "random", seed: int = 0, data_dir=None):
    """``(weights (len(vocab), dim) float32, Coverage)``.

    Each word takes its exact vector, else its lower-cased one, else (``oov="subword"``, FastText
    vectors) one built from its character n-grams, else a random row (``oov="random"``: normal
    with the vectors' own standard deviation, seeded) or zeros (``"zeros"``). ``<pad>`` is zeros;
    the other specials take a vector only by exact match and are not counted in the coverage.
    """
    if oov not in OOV_POLICIES:
        raise ValueError(f"unknown oov policy {oov!r}; valid: {', '.join(OOV_POLICIES)}")
    kv = _vectors(vectors, data_dir)
    has_ngrams = getattr(kv, "bucket", 0) > 0
    if oov == "subword" and not has_ngrams:
        raise ValueError(f"oov='subword' needs FastText vectors with n-grams (a .bin), got {type(kv).__name__}")
    gen = torch.Generator().manual_seed(seed)
    std = float(kv.vectors.std()) if len(kv) else 1.0
    out = torch.randn(len(vocab), kv.vector_size, generator=gen) * std
    if oov != "random":
        out.zero_()
    cov = Coverage(total=sum(t not in SPECIALS for t in vocab.itos))
    index = kv.key_to_index
    for i, w in enumerate(vocab.itos):
        if w == PAD:
            out[i] = 0
            continue
        special = w in SPECIALS
        if w in index:
            out[i] = torch.from_numpy(np.asarray(kv.vectors[index[w]], dtype=np.float32))
            cov.exact += not special
        elif special:
            continue
        elif w.lower() in index:
            out[i] = torch.from_numpy(np.asarray(kv.vectors[index[w.lower()]], dtype=np.float32))
            cov.lower += 1
        elif oov == "subword" and np.any(v := kv.get_vector(w)):
            out[i] = torch.from_numpy(np.asarray(v, dtype=np.float32))
            cov.subword += 1
        else:
            cov.missing.append(w)
    return out, cov


def init_embedding(module: nn.Embedding, vocab: Vocab, vectors, freeze: bool = False, oov: str = "random",
                   seed: int = 0, data_dir=None) -> Coverage:
    """Copy pretrained vectors (a ``KeyedVectors``, a path or a name) into ``module`` in place.

    ``freeze=True`` stops gradients to it (with tied weights, the softmax is frozen too).
    """
    kv = _vectors(vectors, data_dir)
    if module.num_embeddings != len(vocab) or module.embedding_dim != kv.vector_size:
        raise ValueError(f"embedding layer is {module.num_embeddings} x {module.embedding_dim} but the vocab has "
                         f"{len(vocab)} words and the vectors {kv.vector_size} dimensions "
                         f"(set embedding_size: {kv.vector_size})")
    weights, cov = embedding_matrix(vocab, kv, oov=oov, seed=seed)
    with torch.no_grad():
        module.weight.copy_(weights)
    module.weight.requires_grad_(not freeze)
    return cov


# -- training --------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """word2vec / FastText hyperparameters (gensim's names in brackets where they differ)."""
    method: str = "word2vec"
    sg: int = 1            # 1 skip-gram, 0 CBOW
    negative: int = 5      # negative samples per positive (0: hierarchical softmax instead)
    dim: int = 100         # [vector_size]
    window: int = 5
    epochs: int = 5
    min_count: int = 5
    workers: int = 2
    seed: int = 1
    min_n: int = 3         # FastText character n-gram lengths
    max_n: int = 6

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; valid: {', '.join(METHODS)}")
        if self.sg not in (0, 1):
            raise ValueError(f"sg must be 1 (skip-gram) or 0 (CBOW), got {self.sg}")
        for k in ("dim", "window", "epochs", "min_count", "workers"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be >= 1, got {getattr(self, k)}")
        if self.negative < 0:
            raise ValueError(f"negative must be >= 0, got {self.negative}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be between 0 and 2**32 - 1, got {self.seed}")


def _progress_callback(epochs: int, show: bool, has_loss: bool):
    from gensim.models.callbacks import CallbackAny2Vec
    from tqdm.auto import tqdm

    class Progress(CallbackAny2Vec):
        """One tqdm step per epoch, with word2vec's loss of that epoch (gensim sums it over a call;
        FastText reports none)."""

        def __init__(self):
            self.bar = tqdm(total=epochs, unit="epoch", disable=not show)
            self.losses: list[float] = []
            self._last = 0.0

        def on_epoch_end(self, model):
            total = model.get_latest_training_loss()
            self.losses.append(total - self._last)
            self._last = total
            if has_loss:
                self.bar.set_postfix(loss=f"{self.losses[-1]:.4g}")
            self.bar.update(1)

        def on_train_end(self, model):
            self.bar.close()

    return Progress()


def _corpus_path(corpus: str | os.PathLike, data_dir=None) -> Path:
    p = Path(corpus).expanduser()
    if not p.exists() and str(corpus) in CORPORA and CORPORA[str(corpus)].folder:
        c, d = CORPORA[str(corpus)], resolve_data_dir(data_dir)
        if d is None:
            raise FileNotFoundError(f"corpus {corpus!r}: give --data-dir / SEQZOO_DATA or a path to a .txt file")
        p = d / c.folder / c.files.get("train", next(iter(c.files.values())))
    check_text_file(p)
    return p


def train_embeddings(method: str = "word2vec", corpus: str | os.PathLike = "", out: str | os.PathLike = "",
                     sg: int = 1, negative: int = 5, dim: int = 100, window: int = 5, epochs: int = 5,
                     min_count: int = 5, workers: int = 2, seed: int = 1, progress: bool = True,
                     data_dir=None):
    """Train word2vec or FastText on a text file (one sentence / paragraph a line, tokens split on
    white space) and write ``out/vectors.bin`` (word2vec binary; FastText: Facebook's ``.bin``, which keeps the
    n-grams; neither is a pickle), ``out/vectors.txt`` (word2vec text) and ``out/config.json``. Returns the
    ``KeyedVectors``.
    ``out`` is replaced as a whole, once training is done; it must be new, empty or an earlier output folder.

    ``corpus`` is a path, or a corpus name (``wikitext-2``: its train split in ``data_dir``).
    """
    from gensim.models import FastText, Word2Vec
    from gensim.models.word2vec import LineSentence

    cfg = TrainConfig(method, sg, negative, dim, window, epochs, min_count, workers, seed)
    out = check_folder(out, lambda d: (d / "config.json").is_file() and any((d / f).is_file() for f in
                       ("vectors.bin", "vectors.kv")), "an embeddings output folder (no vectors.bin)")
    path = _corpus_path(corpus, data_dir)
    cls = Word2Vec if method == "word2vec" else FastText
    extra = dict(min_n=cfg.min_n, max_n=cfg.max_n) if method == "fasttext" else {}
    model = cls(vector_size=dim, window=window, min_count=min_count, workers=workers, sg=sg, negative=negative,
                hs=int(negative == 0), seed=seed, **extra)
    start = time.perf_counter()
    sentences = LineSentence(str(path))
    model.build_vocab(corpus_iterable=sentences)
    if len(model.wv) == 0:
        raise ValueError(f"corpus {path}: no word occurs min_count={min_count} times")
    cb = _progress_callback(epochs, progress, has_loss=method == "word2vec")
    model.train(corpus_iterable=sentences, total_examples=model.corpus_count, epochs=epochs,
                compute_loss=method == "word2vec", callbacks=[cb])
    wall = time.perf_counter() - start
    info = {**asdict(cfg), "corpus": str(path), "vocab_size": len(model.wv), "corpus_words": model.corpus_total_words,
            "epoch_losses": cb.losses if method == "word2vec" else None, "wall_seconds": round(wall, 1),
            "gensim_names": {"dim": "vector_size"}}

    def write(folder: Path):
        if method == "fasttext":
            from gensim.models.fasttext import save_facebook_model
            save_facebook_model(model, str(folder / "vectors.bin"))
        else:
            model.wv.save_word2vec_format(str(folder / "vectors.bin"), binary=True)
        model.wv.save_word2vec_format(str(folder / "vectors.txt"))
        (folder / "config.json").write_text(json.dumps(info, indent=2) + "\n")
    write_folder(out, write)  # temp folder, then renamed: a failure keeps the old one whole
    return model.wv


# -- evaluation ------------------------------------------------------------------------------------
def _eval_file(name: str, data_dir=None) -> str:
    """The shared copy in ``<data_dir>/word-similarity/``, else gensim's bundled one (same files)."""
    d = resolve_data_dir(data_dir)
    if d is not None and (d / "word-similarity" / name).is_file():
        return str(d / "word-similarity" / name)
    from gensim.test.utils import datapath
    return datapath(name)


def default_eval_files(data_dir=None) -> tuple[str, dict[str, str]]:
    return (_eval_file("questions-words.txt", data_dir),
            {"wordsim353": _eval_file("wordsim353.tsv", data_dir), "simlex999": _eval_file("simlex999.txt", data_dir)})


def _pairs_file(path: str, tmp: str) -> str:
    """gensim reads ``w1<TAB>w2<TAB>score``; the original SimLex-999 file (header row, 10 columns,
    score in column ``SimLex999``) is cut down to that in a temp file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"similarity file not found: {p}")
    lines = p.read_text(encoding="utf-8").splitlines()
    rows = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    if not rows:
        raise ValueError(f"similarity file has no pairs: {p}")
    if all(len(r.split("\t")) == 3 for r in rows[1:]):
        return str(p)
    head = rows[0].split("\t")
    if "SimLex999" not in head:
        bad = next(i for i, ln in enumerate(lines, 1) if ln in rows[1:] and len(ln.split("\t")) != 3)
        raise ValueError(f"{p}: line {bad} is not 'word1<TAB>word2<TAB>score'")
    col = head.index("SimLex999")
    out = Path(tmp) / p.name
    out.write_text("\n".join("\t".join((c := r.split("\t"))[:2] + [c[col]]) for r in rows[1:]) + "\n")
    return str(out)


def _count_questions(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for ln in f if ln.strip() and not ln.startswith(":"))


def evaluate(vectors, analogies: str | None = "default", similarity: dict[str, str] | str | None = "default",
             restrict_vocab: int = 300000, data_dir=None) -> dict:
    """Intrinsic scores with gensim's own evaluators (questions with a word outside the first
    ``restrict_vocab`` words are skipped, case-insensitively, as gensim does).

    Returns ``analogy_accuracy`` (and ``_semantic`` / ``_syntactic``), ``<set>_spearman`` per
    similarity set, the share of questions / pairs skipped for unknown words per set
    (``*_oov``) and over all of them (``oov_rate``), and ``vocab_size``.
    """
    import logging
    if restrict_vocab < 1:
        raise ValueError(f"restrict_vocab must be >= 1, got {restrict_vocab}")
    kv = _vectors(vectors, data_dir)
    default_an, default_sim = default_eval_files(data_dir)
    analogies = default_an if analogies == "default" else analogies
    similarity = default_sim if similarity == "default" else (similarity or {})
    if isinstance(similarity, (str, os.PathLike)):  # one file: named by its stem
        similarity = {Path(similarity).stem: str(similarity)}
    res: dict = {"vocab_size": len(kv), "dim": kv.vector_size, "restrict_vocab": restrict_vocab}
    asked = skipped = 0
    quiet = logging.getLogger("gensim.models.keyedvectors")  # it logs every skipped question
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        if analogies:
            if not Path(analogies).is_file():
                raise FileNotFoundError(f"analogy file not found: {analogies}")
            score, sections = kv.evaluate_word_analogies(analogies, restrict_vocab=restrict_vocab)
            n = _count_questions(analogies)
            answered = {s["section"]: len(s["correct"]) + len(s["incorrect"]) for s in sections}
            res["analogy_accuracy"] = float(score) if answered["Total accuracy"] else None
            for part, syntactic in (("semantic", False), ("syntactic", True)):  # the gram* sections are syntactic
                secs = [s for s in sections
                        if s["section"] != "Total accuracy" and s["section"].startswith("gram") == syntactic]
                c, t = sum(len(s["correct"]) for s in secs), sum(len(s["correct"]) + len(s["incorrect"]) for s in secs)
                res[f"analogy_accuracy_{part}"] = c / t if t else None
            res["analogy_oov"] = 1 - answered["Total accuracy"] / n
            asked, skipped = asked + n, skipped + n - answered["Total accuracy"]
        with tempfile.TemporaryDirectory() as tmp:
            for name, path in similarity.items():
                pairs = _pairs_file(path, tmp)
                with open(pairs, encoding="utf-8") as f:
                    n = sum(1 for ln in f if not ln.startswith("#") and len(ln.split("\t")) == 3)
                try:
                    _, spearman, oov_pct = kv.evaluate_word_pairs(pairs, restrict_vocab=restrict_vocab)
                except ValueError:  # gensim: every pair has an unknown word
                    spearman, oov_pct = None, 100.0
                res[f"{name}_spearman"] = None if spearman is None else float(spearman.statistic)
                res[f"{name}_oov"] = oov_pct / 100
                asked, skipped = asked + n, skipped + round(n * oov_pct / 100)
    finally:
        quiet.setLevel(level)
    res["oov_rate"] = skipped / asked if asked else None
    return res


def nearest(vectors, word: str, k: int = 10, data_dir=None) -> list[tuple[str, float]]:
    """The ``k`` words of highest cosine similarity to ``word`` (FastText: unseen words too)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    kv = _vectors(vectors, data_dir)
    if word not in kv.key_to_index and getattr(kv, "bucket", 0) == 0:
        if word.lower() not in kv.key_to_index:
            raise ValueError(f"word {word!r} is not among the {len(kv)} words of these vectors "
                             f"(FastText .bin vectors can build one from its n-grams)")
        word = word.lower()
    return [(w, float(s)) for w, s in kv.most_similar(word, topn=k)]


# -- recipes and CLI -------------------------------------------------------------------------------
def run_recipe_entry(config: str | os.PathLike, data_dir=None, out_root: str = "runs/embeddings") -> dict:
    """One results.json run (without name) from an intrinsic-evaluation config: ``vectors:`` (a
    name or path) to evaluate as is, or ``train:`` (train_embeddings arguments) to train first."""
    import yaml

    from seqzoo.recipes import device_name
    spec = yaml.safe_load(Path(config).read_text())
    ev = spec.get("evaluate", {})
    start = time.perf_counter()
    if "train" in spec:
        t = dict(spec["train"])
        out = Path(t.pop("out", f"{out_root}/{Path(config).stem}"))
        kv = train_embeddings(out=out, data_dir=data_dir, **t)
        dataset, epochs = str(t["corpus"]), t.get("epochs", 5)
    else:
        kv = load_embeddings(spec["vectors"], data_dir=data_dir, limit=spec.get("limit"))
        dataset, epochs = spec.get("dataset", str(spec["vectors"])), None
    m = evaluate(kv, restrict_vocab=ev.get("restrict_vocab", 300000), data_dir=data_dir)
    metrics = {"test_analogy_accuracy": m.get("analogy_accuracy"),
               "test_wordsim353_spearman": m.get("wordsim353_spearman"),
               "test_simlex999_spearman": m.get("simlex999_spearman"), "oov_rate": m["oov_rate"],
               **{k: v for k, v in m.items() if k.endswith("_oov") or k.startswith("analogy_accuracy_")},
               "vocab_size": m["vocab_size"], "dim": m["dim"]}
    return {"config": str(config), "dataset": dataset, "metrics": metrics, "epochs": epochs,
            "wall_seconds": round(time.perf_counter() - start, 1), "device": device_name()}


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def _rho(x) -> str:
    return "" if x is None else f"{x:.3f}"


def write_report(folder: Path, recipe: dict) -> None:
    """``results.md``: the intrinsic runs, then the language models; every figure from ``results.json``."""
    path = folder / "results.json"
    runs = {r["name"]: r for r in (json.loads(path.read_text())["runs"] if path.exists() else [])}
    lines = [f"# {recipe.get('title', folder.name)}", "",
             f"Measured by `seqzoo embeddings reproduce {folder}`; every figure comes from `results.json`.", "",
             "| run | vectors | analogy acc. % | WordSim-353 rho | SimLex-999 rho | OOV % | vocab | epochs | wall (s) "
             "| device |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for spec in recipe["runs"]:
        if spec.get("kind") != "embeddings":
            continue
        r = runs.get(spec["name"])
        m = r["metrics"] if r else {}
        lines.append(f"| {spec['name']} | {spec.get('model', '')} | {_pct(m.get('test_analogy_accuracy'))} | "
                     f"{_rho(m.get('test_wordsim353_spearman'))} | {_rho(m.get('test_simlex999_spearman'))} | "
                     f"{_pct(m.get('oov_rate'))} | "
                     f"{m.get('vocab_size', '')} | {(r['epochs'] or '-') if r else 'not run'} | "
                     f"{r['wall_seconds'] if r else ''} | {r['device'] if r else ''} |")
    lm = [spec for spec in recipe["runs"] if spec.get("kind") != "embeddings"]
    if lm:  # part (b): language models with pretrained embeddings, trained by `seqzoo reproduce`
        lines += ["", "| run | model | valid ppl | test ppl | epochs | wall (s) | device |",
                  "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
        for spec in lm:
            r = runs.get(spec["name"])
            m = r["metrics"] if r else {}
            ppl = lambda k: "" if m.get(k) is None else f"{m[k]:.1f}"  # noqa: E731
            lines.append(f"| {spec['name']} | {spec.get('model', '')} | {ppl('valid_perplexity')} | "
                         f"{ppl('test_perplexity')} | {r['epochs'] if r else 'not run'} | "
                         f"{r['wall_seconds'] if r else ''} | {r['device'] if r else ''} |")
    if recipe.get("notes"):
        lines += ["", recipe["notes"].strip()]
    (folder / "results.md").write_text("\n".join(lines) + "\n")


def reproduce(recipe_dir: str | os.PathLike, only: list[str] | None = None, data_dir=None) -> dict:
    """Run a recipe folder's ``kind: embeddings`` runs with the one runner, :func:`seqzoo.recipes.reproduce`."""
    import yaml

    from seqzoo.recipes import reproduce as run_recipe
    spec = Path(recipe_dir) / "recipe.yaml"
    if not spec.is_file():
        raise FileNotFoundError(f"no recipe.yaml in {recipe_dir}")
    names = [r["name"] for r in yaml.safe_load(spec.read_text())["runs"] if r.get("kind") == "embeddings"]
    for n in only or []:
        if n not in names:
            raise ValueError(f"recipe {recipe_dir} has no embeddings run {n!r}; runs: {', '.join(names)}")
    return run_recipe(recipe_dir, only=only or names, data_dir=data_dir)


def embeddings_main(argv: list[str]) -> None:
    """``seqzoo embeddings {train,eval,nearest,reproduce} ...``; bad input raises ValueError / FileNotFoundError."""
    import argparse
    p = argparse.ArgumentParser(prog="seqzoo embeddings", description="Train, evaluate and query word vectors.")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="word2vec / FastText on a text file", description=train_embeddings.__doc__)
    t.add_argument("--method", default="word2vec", choices=METHODS)
    t.add_argument("--corpus", required=True, help="a .txt file, or a corpus name (its train split)")
    t.add_argument("--out", required=True, help="output folder (vectors.bin, vectors.txt, config.json)")
    t.add_argument("--dim", type=int, default=100, help="vector size (default: 100)")
    t.add_argument("--window", type=int, default=5, help="context window (default: 5)")
    t.add_argument("--epochs", type=int, default=5, help="passes over the corpus (default: 5)")
    arch = t.add_mutually_exclusive_group()
    arch.add_argument("--sg", dest="sg", action="store_const", const=1, default=1, help="skip-gram (default)")
    arch.add_argument("--cbow", dest="sg", action="store_const", const=0, help="continuous bag of words")
    t.add_argument("--negative", type=int, default=5, help="negative samples; 0: hierarchical softmax (default: 5)")
    t.add_argument("--min-count", type=int, default=5, help="drop rarer words (default: 5)")
    t.add_argument("--workers", type=int, default=2, help="threads (default: 2; 1 is reproducible)")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--data-dir", default=None, help="local mirror of the corpora (default: $SEQZOO_DATA)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    e = sub.add_parser("eval", help="analogy accuracy, WordSim-353 / SimLex-999 Spearman rho")
    e.add_argument("vectors", help="file, train output folder, or name (glove-6b-50d ...)")
    e.add_argument("--format", default="auto", choices=FORMATS)
    e.add_argument("--limit", type=int, default=None, help="read only the first N vectors")
    e.add_argument("--restrict-vocab", type=int, default=300000, help="evaluate over the first N words")
    e.add_argument("--data-dir", default=None, help="local mirror (glove/, word-similarity/)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--trust-pickle", action="store_true", help="read a gensim native file (a pickle)")
    n = sub.add_parser("nearest", help="most similar words")
    n.add_argument("vectors")
    n.add_argument("word")
    n.add_argument("-k", type=int, default=10)
    n.add_argument("--data-dir", default=None)
    n.add_argument("--trust-pickle", action="store_true", help="read a gensim native file (a pickle)")
    r = sub.add_parser("reproduce", help="run a recipe folder's intrinsic-evaluation runs")
    r.add_argument("recipe")
    r.add_argument("--only", nargs="*", default=None)
    r.add_argument("--data-dir", default=None)
    a = p.parse_args(argv)
    if a.cmd == "train":
        kv = train_embeddings(a.method, a.corpus, a.out, a.sg, a.negative, a.dim, a.window, a.epochs, a.min_count,
                              a.workers, a.seed, not a.no_progress, a.data_dir)
        print(f"{a.method}: {len(kv)} words x {kv.vector_size} written to {a.out}")
    elif a.cmd == "eval":
        m = evaluate(load_embeddings(a.vectors, a.format, a.limit, a.data_dir, a.trust_pickle),
                     restrict_vocab=a.restrict_vocab,
                     data_dir=a.data_dir)
        if a.json:
            print(json.dumps(m))
        else:
            print(f"{a.vectors}: {m['vocab_size']} words x {m['dim']}\n"
                  f"  analogy accuracy {_pct(m.get('analogy_accuracy'))}% (OOV {_pct(m.get('analogy_oov'))}%)\n"
                  f"  WordSim-353 rho {_rho(m['wordsim353_spearman'])} (OOV {_pct(m['wordsim353_oov'])}%)\n"
                  f"  SimLex-999 rho {_rho(m['simlex999_spearman'])} (OOV {_pct(m['simlex999_oov'])}%)")
    elif a.cmd == "nearest":
        for w, s in nearest(load_embeddings(a.vectors, data_dir=a.data_dir, trust_pickle=a.trust_pickle), a.word, a.k):
            print(f"{s:.4f}  {w}")
    else:
        reproduce(a.recipe, a.only, a.data_dir)
