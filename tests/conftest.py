"""Shared fixtures: where the shared data lives, and small corpora made on the fly."""
import os
import tempfile
from pathlib import Path

import pytest

# Tests never touch the network; the datasets cache stays out of the user's home.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="seqzoo-hf-datasets-"))

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    d = Path(os.environ.get("SEQZOO_DATA") or REPO.parent / "shared" / "data")
    return d if (d / "ptb" / "ptb.train.txt").exists() else None


def registered(family: str) -> list[str]:
    """Every registered model name of a family (``ctc``, ``tagger`` ...): tests that cover a family's variants
    take their list from the registry, so a new variant is tested the day it is registered."""
    from seqzoo.registry import _family
    return sorted(name for name, f in _family.items() if f == family)


@pytest.fixture
def data_dir() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("shared data not found (set SEQZOO_DATA or put shared/data beside the checkout)")
    return d


TINY = ["the cat sat on the mat", "the dog sat on the log", "a cat saw a dog",
        "the dog saw the cat on the mat", "a dog sat on a log"]


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    """A folder with train/valid/test.txt of a tiny repetitive language."""
    d = tmp_path / "tiny"
    d.mkdir()
    (d / "train.txt").write_text("\n".join(TINY * 8) + "\n")
    (d / "valid.txt").write_text("\n".join(TINY[::-1]) + "\n")
    (d / "test.txt").write_text("\n".join(TINY[1:] + TINY[:1]) + "\n")
    return d
