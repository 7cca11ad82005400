from collections import Counter

import pytest

from seqzoo.data.vocab import SPECIALS, Vocab, tokenize


def test_specials_first_and_stable_ids():
    v = Vocab.build([["b", "a", "b", "c"], ["a", "b"]])
    assert v.itos[:4] == list(SPECIALS)
    assert v.itos[4:] == ["b", "a", "c"]  # by count, ties by token
    assert Vocab.build([["a", "b"], ["b", "a", "c", "b"]]) == v  # same counts, same ids


def test_min_freq_max_size_and_unk():
    counts = Counter({"x": 5, "y": 3, "z": 1})
    assert Vocab.build(counts, min_freq=2).itos[4:] == ["x", "y"]
    assert Vocab.build(counts, max_size=1).itos[4:] == ["x"]
    v = Vocab.build(counts, min_freq=2)
    assert v["z"] == v.unk_id and "z" not in v and "x" in v


def test_encode_decode_and_eos():
    v = Vocab.build([["hello", "world"]])
    ids = v.encode("hello there world")
    assert ids == [v["hello"], v.unk_id, v["world"], v.eos_id]
    assert v.decode(ids) == "hello <unk> world"


def test_char_level():
    v = Vocab.build([tokenize("abba c", "char")], level="char")
    assert v.decode(v.encode("ab c", add_eos=False)) == "ab c"
    with pytest.raises(ValueError, match="tokenisation level"):
        tokenize("x", "bpe")


def test_save_load_roundtrip(tmp_path):
    v = Vocab.build([["ü", "ß", "ü"]], level="word")
    v.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json") == v
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_vocab_rejected():
    with pytest.raises(ValueError, match="specials"):
        Vocab(["a", "b"])
    with pytest.raises(ValueError, match="repeat"):
        Vocab(list(SPECIALS) + ["a", "a"])


def test_uncased_says_whether_the_vocab_was_built_from_lower_cased_text():
    assert Vocab.build([["the", "cat", "état"]]).uncased
    assert not Vocab.build([["the", "Cat"]]).uncased
    assert not Vocab.build([list("Romeo")], level="char").uncased
    assert Vocab.build([list("romeo, 3!")], level="char").uncased  # no letters with a case: nothing to lower
