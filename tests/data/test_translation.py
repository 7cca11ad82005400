"""TranslationDataModule: tokenisers, bucketing, filtering, file formats and the Multi30k mirror."""
import gzip
import json
from collections import Counter

import pytest

from seqzoo.data.translation import (BOS_ID, EOS_ID, PAD_ID, UNK_ID, BucketBatchSampler, TranslationDataModule,
                                     load_parallel, read_parallel, train_tokenizer)
from seqzoo.data.lm import IGNORE_INDEX

DE = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee!", "Eine Frau liest ein Buch, draußen.",
      "Kinder spielen Fußball auf der Wiese.", "Ein Hund läuft."]
EN = ["A man rides a bike.", "Two dogs play in the snow!", "A woman reads a book, outside.",
      "Children play soccer on the meadow.", "A dog runs."]


def _write(folder, split, src, tgt, langs=("de", "en")):
    (folder / f"{split}.{langs[0]}").write_text("\n".join(src) + "\n", encoding="utf-8")
    (folder / f"{split}.{langs[1]}").write_text("\n".join(tgt) + "\n", encoding="utf-8")


@pytest.fixture
def parallel(tmp_path):
    d = tmp_path / "par"
    d.mkdir()
    _write(d, "train", DE * 6, EN * 6)
    _write(d, "valid", DE[:3], EN[:3])
    _write(d, "test", DE[2:], EN[2:])
    return d


def test_bpe_round_trip_and_determinism():
    texts = DE * 4 + EN * 4
    tok = train_tokenizer(texts, "bpe", vocab_size=120, min_frequency=1)
    assert tok.token_to_id("<unk>") == UNK_ID and tok.token_to_id("<eos>") == EOS_ID
    assert tok.token_to_id("<pad>") == PAD_ID and tok.token_to_id("<bos>") == BOS_ID
    for t in texts + ["Ein Hund fährt, draußen!"]:
        assert tok.decode(tok.encode(t).ids) == t
    assert tok.get_vocab_size() <= 120
    assert train_tokenizer(texts, "bpe", vocab_size=120, min_frequency=1).to_str() == tok.to_str()


def test_word_level_round_trip_keeps_punctuation_where_it_was():
    """A word-level tokenizer decodes to the text it read (detokenised), as BPE does: BLEU against the
    reference as written is 100 for a perfect hypothesis (it was 97 on Multi30k: "woman ' s")."""
    texts = EN * 3 + ["A woman's dirt-bikes, outside!"]
    word = train_tokenizer(texts, "word", vocab_size=200, min_frequency=1)
    for t in texts:
        assert word.decode(word.encode(t).ids) == t


def test_unknown_characters_map_to_unk():
    tok = train_tokenizer(EN * 3, "bpe", vocab_size=80, min_frequency=1)
    ids = tok.encode("A dog ☃ runs ß.").ids
    assert UNK_ID in ids
    assert "☃" not in tok.decode(ids) and "dog" in tok.decode(ids)
    word = train_tokenizer(EN * 3, "word", vocab_size=80, min_frequency=1)
    assert word.encode("A zebra runs").ids[1] == UNK_ID


def test_datamodule_batches_and_specials(parallel):
    dm = TranslationDataModule(str(parallel), "de", "en", vocab_size=150, min_frequency=1, batch_size=4,
                               joint_vocab=False)
    src_words, tgt_words = dm.src_tokenizer.get_vocab(), dm.tgt_tokenizer.get_vocab()   # separate vocabularies
    def has(words, ch):
        return any(ch in w for w in words)
    assert has(src_words, "ß") and not has(tgt_words, "ß") and has(tgt_words, "y") and not has(src_words, "y")
    b = next(iter(dm.val_dataloader()))
    assert b["src"].shape[0] == 3 and b["tgt_in"].shape == b["tgt_out"].shape
    for i in range(3):
        n = int(b["src_lengths"][i])
        assert b["src"][i, n - 1] == EOS_ID and (b["src"][i, n:] == PAD_ID).all() and b["src_mask"][i].sum() == n
        out = b["tgt_out"][i][b["tgt_out"][i] != IGNORE_INDEX]
        assert b["tgt_in"][i, 0] == BOS_ID and out[-1] == EOS_ID
        assert b["tgt_in"][i, 1:len(out)].tolist() == out[:-1].tolist()  # shifted by one
        assert dm.decode(out.tolist()) == b["tgt_text"][i]
    assert dm.decode(dm.tgt_tokenizer.encode("A dog runs.").ids + [EOS_ID, 7, 8]) == "A dog runs."


def test_direction_swap(parallel):
    dm = TranslationDataModule(str(parallel), "en", "de", vocab_size=150, min_frequency=1)
    dm.setup()
    assert {p[3] for p in dm.pairs["valid"]} == set(DE[:3])


def test_bucketing_keeps_every_pair_once_and_groups_lengths():
    lengths = [(i * 37) % 50 + 1 for i in range(1000)]
    s = BucketBatchSampler(lengths, batch_size=16, chunk_batches=8, seed=0)
    epochs = [list(s), list(s)]
    for batches in epochs:
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(1000)) and len(batches) == len(s)
        spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
        assert spread < 10, spread
    unsorted = list(BucketBatchSampler(lengths, batch_size=16, chunk_batches=1, seed=0))  # chunk = one batch
    assert sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in unsorted) / len(unsorted) > 30
    assert epochs[0] != epochs[1]  # a new order every epoch
    assert list(BucketBatchSampler(lengths, 16, chunk_batches=8, seed=0)) == epochs[0]  # seeded
    ev = list(BucketBatchSampler(lengths, 16, shuffle=False))
    assert sorted(i for b in ev for i in b) == list(range(1000))


def test_mismatched_line_counts(tmp_path):
    (tmp_path / "train.de").write_text("a\nb\nc\n")
    (tmp_path / "train.en").write_text("a\nb\n")
    with pytest.raises(ValueError, match=r"line counts differ: .*train.de has 3 lines but .*train.en has 2"):
        read_parallel(tmp_path / "train.de", tmp_path / "train.en")
    with pytest.raises(ValueError, match="line counts differ"):
        TranslationDataModule(str(tmp_path), "de", "en")
    with pytest.raises(FileNotFoundError, match="train.fr"):
        TranslationDataModule(str(tmp_path), "fr", "en")


def test_empty_and_overlong_pairs_skipped_with_counts(tmp_path, caplog):
    src = DE * 4 + ["", "Ein Satz.", " ".join(["lang"] * 60)]
    tgt = EN * 4 + ["Nothing.", "", " ".join(["long"] * 60)]
    _write(tmp_path, "train", src, tgt)
    _write(tmp_path, "test", ["", DE[0], " ".join(["lang"] * 60)], [EN[1], EN[0], " ".join(["long"] * 60)])
    dm = TranslationDataModule(str(tmp_path), "de", "en", tokenization="word", vocab_size=100, min_frequency=1,
                               max_length=20)
    with caplog.at_level("INFO"):
        dm.setup()
    assert dm.filtered["train"] == {"empty": 2, "overlong": 1}
    assert len(dm.pairs["train"]) == len(src) - 3
    assert dm.filtered["test"] == {"empty": 1, "overlong": 0}  # test sources are cut, never dropped
    assert max(len(p[1]) for p in dm.pairs["test"]) == 20
    assert "skipped 2 empty and 1 overlong" in caplog.text


def test_tsv_and_jsonl(tmp_path):
    (tmp_path / "train.tsv").write_text("en\tde\n" + "".join(f"{e}\t{d}\n" for d, e in zip(DE, EN)))
    (tmp_path / "test.jsonl").write_text("".join(json.dumps({"de": d, "en": e}) + "\n" for d, e in zip(DE, EN)))
    ds = load_parallel(str(tmp_path), "de", "en")
    assert ds["train"]["src"] == DE and ds["train"]["tgt"] == EN  # the header picked the columns
    assert ds["test"]["src"] == DE and "valid" not in ds
    (tmp_path / "train.tsv").write_text("only one field\n")
    with pytest.raises(ValueError, match="train.tsv line 1 has 1 tab-separated field"):
        load_parallel(str(tmp_path), "de", "en")


def test_gzip_files_and_bad_names(tmp_path):
    for lang, lines in (("de", DE), ("en", EN)):
        with gzip.open(tmp_path / f"train.{lang}.gz", "wt", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    assert load_parallel(str(tmp_path), "de", "en")["train"]["tgt"] == EN
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        load_parallel("nope", "de", "en")
    with pytest.raises(ValueError, match="unknown tokenization 'char'; valid: bpe, word"):
        TranslationDataModule(str(tmp_path), tokenization="char")
    with pytest.raises(ValueError, match="multi30k has no language 'fr'"):
        load_parallel("multi30k", "fr", "en")


def test_multi30k_mirror_counts(data_dir):
    if not (data_dir / "multi30k" / "raw" / "train.de.gz").exists():
        pytest.skip("no multi30k mirror")
    ds = load_parallel("multi30k", "de", "en", data_dir)
    assert {s: len(ds[s]) for s in ds} == {"train": 29000, "valid": 1014, "test": 1000}
    assert ds["train"][0] == {"src": "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.",
                              "tgt": "Two young, White males are outside near many bushes."}
    rev = load_parallel("multi30k", "en", "de", data_dir)
    assert rev["test"]["src"] == ds["test"]["tgt"]
    assert sum(len(t.split()) for t in ds["train"]["tgt"]) == 345020  # the README's whitespace-token count
    assert not Counter(len(s.strip()) == 0 for s in ds["train"]["src"])[True]
