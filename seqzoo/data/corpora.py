"""Named corpora: a name resolves to a local mirror folder or to its Hugging Face hub dataset.

Both paths go through :func:`datasets.load_dataset` (local files: the ``text`` builder), so
caching and ``map`` are the HF ones. Every corpus comes back as a ``DatasetDict`` with a
``text`` column and the splits ``train`` / ``valid`` / ``test``.

Where a name is looked for, in order: ``data_dir`` (``--data-dir``), then ``$SEQZOO_DATA``,
both in the layout of ``shared/data`` (``<dir>/ptb/ptb.train.txt`` ...), then the Hub
(unless ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` is set). A path to a folder holding
``train.txt`` / ``valid.txt`` / ``test.txt`` (or a single ``.txt`` file, split 90/5/5 by
line) works as a name too.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CORPORA", "Corpus", "load_corpus", "resolve_data_dir", "check_text_file", "read_stdin_lines",
           "split_points", "SPLITS"]

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Corpus:
    """A named corpus: its local file names and its hub id."""
    folder: str
    files: dict[str, str]  # split -> file name inside folder; one file for all = split by line
    hub_id: str | None = None
    hub_config: str | None = None
    hub_column: str = "text"
    hub_splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "valid": "validation",
                                                                "test": "test"})
    description: str = ""


CORPORA: dict[str, Corpus] = {
    "ptb": Corpus("ptb", {s: f"ptb.{s}.txt" for s in SPLITS}, "ptb_text_only", "penn_treebank",
                  hub_column="sentence", description="Penn Treebank, Mikolov's LM version (10k vocab)"),
    "wikitext-2": Corpus("wikitext-2", {s: f"{s}.txt" for s in SPLITS}, "wikitext", "wikitext-2-v1",
                         description="WikiText-2, tokenised (33k vocab)"),
    "wikitext-103": Corpus("wikitext-103", {s: f"{s}.txt" for s in SPLITS}, "wikitext", "wikitext-103-v1",
                           description="WikiText-103, tokenised (267k vocab)"),
    "tinyshakespeare": Corpus("tinyshakespeare", {"full": "input.txt"}, "karpathy/tiny_shakespeare",
                              description="Tiny Shakespeare, char-rnn input.txt (split 90/5/5 by line)"),
    "lee": Corpus("", {"full": "lee_background.cor"}, None,
                  description="gensim's bundled Lee background corpus (300 news texts, words seen once -> <unk>; "
                              "the offline default)"),
}


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    d = data_dir or os.environ.get("SEQZOO_DATA")
    return Path(d).expanduser() if d else None


def check_text_file(path: str | os.PathLike) -> None:
    """Fail with one clear line if ``path`` is missing, empty or not UTF-8."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"corpus file not found: {p}")
    if p.stat().st_size == 0:
        raise ValueError(f"corpus file is empty: {p}")
    with open(p, "rb") as f:
        line_no = 0
        for line_no, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"corpus file is not UTF-8: {p} (line {line_no}, byte {e.start})") from None


def read_stdin_lines(stream=None) -> list[str]:
    """The lines of ``stream`` (default: standard input), line ends dropped. Bytes that are not UTF-8 are one
    clear error naming the line, not surrogates (what Python's stdin makes of them under a C locale) that
    would fail later, far from their cause."""
    if stream is None:  # the bytes under sys.stdin where there are any, so each line is decoded on its own
        stream = getattr(sys.stdin, "buffer", sys.stdin)
    out: list[str] = []
    try:
        for line in stream:
            line = line.decode("utf-8") if isinstance(line, bytes) else line
            line.encode("utf-8")  # surrogates from undecodable bytes raise here
            out.append(line.rstrip("\r\n"))
    except (UnicodeDecodeError, UnicodeEncodeError) as e:
        raise ValueError(f"standard input is not UTF-8 text (line {len(out) + 1}, position {e.start})") from None
    return out


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def load_hub_dataset(name: str, where: str, *args, **kwargs):
    """``datasets.load_dataset(*args, **kwargs)`` for the named corpus ``name``, which has no local copy at
    ``where``; an offline or unreachable Hub is one clear line that says where a local copy was looked for."""
    import datasets
    if _offline():
        raise FileNotFoundError(f"dataset {name!r} has no local copy ({where}) and the Hub is offline")
    try:
        return datasets.load_dataset(*args, **kwargs)
    except ConnectionError as e:
        raise FileNotFoundError(f"dataset {name!r} has no local copy ({where}) and the Hub cannot be reached "
                                f"({e})") from None


def _local_files(name: str, data_dir: Path | None) -> dict[str, Path] | None:
    """Split -> file for a name, or None when no local copy exists."""
    if name == "lee":
        from gensim.test.utils import datapath
        return {"full": Path(datapath("lee_background.cor"))}
    if name in CORPORA:
        if data_dir is None:
            return None
        c = CORPORA[name]
        files = {s: data_dir / c.folder / f for s, f in c.files.items()}
        return files if all(p.exists() for p in files.values()) else None
    p = Path(name).expanduser()
    if p.is_file():
        return {"full": p}
    if p.is_dir():
        files = {s: p / f"{s}.txt" for s in SPLITS if (p / f"{s}.txt").exists()}
        if "valid" not in files and (p / "validation.txt").exists():
            files["valid"] = p / "validation.txt"
        if not files:
            raise FileNotFoundError(f"folder {p} has none of train.txt, valid.txt, test.txt")
        return files
    return None


def split_points(n: int, source: str = "the corpus", fractions=(0.9, 0.05, 0.05)) -> tuple[int, int]:
    """Where a one-file corpus of ``n`` lines is cut into train / valid / test (90/5/5 by line): ``(a, b)`` for
    ``lines[:a]``, ``lines[a:b]``, ``lines[b:]``; an error naming ``source`` if one of them would be empty."""
    a, b = int(n * fractions[0]), int(n * (fractions[0] + fractions[1]))
    if not 0 < a < b < n:
        raise ValueError(f"{source} has {n} line{'s' * (n != 1)}: too few to split 90/5/5 by line into train / "
                         f"valid / test (one would be empty); give at least 20 lines, or separate validation text")
    return a, b


def _split_lines(ds, source: str = "the corpus"):
    """One ``Dataset`` -> train/valid/test by contiguous line ranges (no shuffling: text order matters)."""
    import datasets
    n = len(ds)
    a, b = split_points(n, source)
    return datasets.DatasetDict(train=ds.select(range(a)), valid=ds.select(range(a, b)),
                                test=ds.select(range(b, n)))


_WORD_RE = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]")


def _lee_tokenise(batch):
    return {"text": [" ".join(_WORD_RE.findall(t.lower())) for t in batch["text"]]}


def _prepare_lee(ds):
    """Lower-case, split off punctuation, and (as Mikolov did for PTB) write words seen once in
    train as ``<unk>`` in every split, so every model shares one closed vocabulary."""
    from collections import Counter
    ds = ds.map(_lee_tokenise, batched=True)
    counts = Counter(w for line in ds["train"]["text"] for w in line.split())
    keep = {w for w, n in counts.items() if n > 1}
    return ds.map(lambda b: {"text": [" ".join(w if w in keep else "<unk>" for w in t.split())
                                      for t in b["text"]]}, batched=True)


def load_corpus(name: str, data_dir: str | os.PathLike | None = None, splits=SPLITS, cache_dir=None):
    """``DatasetDict`` with a ``text`` column for the requested ``splits`` (``None``: all there are).

    >>> ds = load_corpus("ptb", data_dir="../shared/data")   # doctest: +SKIP
    >>> ds["train"][1]["text"]                                  # doctest: +SKIP
    ' pierre <unk> N years old will join the board as a nonexecutive director nov. N '
    """
    import datasets
    data_dir = resolve_data_dir(data_dir)
    files = _local_files(name, data_dir)
    if files is not None and splits is not None and "full" not in files:  # read only the splits asked for
        missing = [s for s in splits if s not in files]
        if missing:
            raise ValueError(f"dataset {name!r} has no split {missing[0]!r}; available: {', '.join(files)}")
        files = {s: p for s, p in files.items() if s in splits}
    if files is not None:
        for p in files.values():
            check_text_file(p)
        ds = datasets.load_dataset("text", data_files={s: str(p) for s, p in files.items()},
                                   cache_dir=cache_dir)
        if "full" in ds:
            ds = _split_lines(ds["full"], source=str(files["full"]))
        if name == "lee":
            ds = _prepare_lee(ds)
    elif name in CORPORA and CORPORA[name].hub_id:
        c = CORPORA[name]
        where = f"{data_dir / c.folder}" if data_dir else "no --data-dir / SEQZOO_DATA given"
        raw = load_hub_dataset(name, where, c.hub_id, c.hub_config, cache_dir=cache_dir)
        ds = datasets.DatasetDict({s: raw[h] for s, h in c.hub_splits.items() if h in raw})
        if all(len(d) == 1 for d in ds.values()):  # text blobs (tiny_shakespeare: one row a split, cut by
            # characters): joined back into the file, then split by line as the local copy is
            text = "".join(ds[s][0][c.hub_column] for s in SPLITS if s in ds)
            ds = _split_lines(datasets.Dataset.from_dict({"text": text.splitlines()}), source=c.hub_id)
        elif c.hub_column != "text":
            ds = ds.rename_column(c.hub_column, "text")
    else:
        if str(name).endswith(".txt"):
            raise FileNotFoundError(f"corpus file not found: {name}")
        known = ", ".join(sorted(CORPORA))
        raise ValueError(f"unknown dataset {name!r}; known: {known}; or a path to a .txt file or to a "
                         f"folder with train.txt / valid.txt / test.txt")
    splits = list(ds) if splits is None else splits
    missing = [s for s in splits if s not in ds]
    if missing:
        raise ValueError(f"dataset {name!r} has no split {missing[0]!r}; available: {', '.join(ds)}")
    return datasets.DatasetDict({s: ds[s] for s in splits})
