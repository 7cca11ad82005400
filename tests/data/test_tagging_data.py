import pytest
import torch

from seqzoo.data.tagging import TaggingDataModule, collate_tagging, read_conllu

# Sentence 1 has a multiword token (2-3 "don't") and an empty node (4.1): neither is a word.
TINY_CONLLU = """# sent_id = 1
# text = I don't know
1\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t_\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\t_
4.1\tknow\t_\tVERB\tVB\t_\t_\t_\t4:conj\t_

# sent_id = 2
1\tCats\tcat\tNOUN\tNNS\t_\t2\tnsubj\t_\t_
2\tsleep\tsleep\tVERB\tVBP\t_\t0\troot\t_\t_
3\t.\t.\tPUNCT\t.\t_\t2\tpunct\t_\t_

"""


def write_treebank(folder, train=TINY_CONLLU, dev=TINY_CONLLU, test=TINY_CONLLU):
    folder.mkdir(exist_ok=True)
    for split, text in (("train", train), ("dev", dev), ("test", test)):
        (folder / f"xx_tiny-ud-{split}.conllu").write_text(text)
    return folder


def test_read_conllu_skips_multiword_tokens_and_empty_nodes(tmp_path):
    p = write_treebank(tmp_path / "tb") / "xx_tiny-ud-train.conllu"
    sents = read_conllu(p)
    assert sents == [(["I", "do", "n't", "know"], ["PRON", "AUX", "PART", "VERB"]),
                     (["Cats", "sleep", "."], ["NOUN", "VERB", "PUNCT"])]
    assert read_conllu(p, "xpos")[0][1] == ["PRP", "VBP", "RB", "VB"]


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="CoNLL-U file not found: .*nope.conllu"):
        read_conllu(tmp_path / "nope.conllu")
    with pytest.raises(ValueError, match="unknown tag_column 'pos'; valid: upos, xpos"):
        read_conllu(tmp_path / "nope.conllu", "pos")
    (tmp_path / "empty.conllu").write_text("\n")
    with pytest.raises(ValueError, match="has no sentences"):
        read_conllu(tmp_path / "empty.conllu")
    (tmp_path / "notag.conllu").write_text("1\tx\tx\t_\t_\t_\t0\troot\t_\t_\n\n")
    with pytest.raises(ValueError, match="has no upos"):
        read_conllu(tmp_path / "notag.conllu")
    (tmp_path / "latin1.conllu").write_bytes(b"1\tok\tok\tNOUN\t_\t_\t0\troot\t_\t_\n\n2\tcaf\xe9\t_\tNOUN\n")
    with pytest.raises(ValueError, match=r"not UTF-8: .*latin1.conllu \(line 3, byte 5\)"):
        read_conllu(tmp_path / "latin1.conllu")
    with pytest.raises(ValueError, match="unknown dataset 'ud-klingon'"):
        TaggingDataModule("ud-klingon")
    dev_only_tag = TINY_CONLLU.replace("PUNCT", "SYM", 1)
    dm = TaggingDataModule(str(write_treebank(tmp_path / "tb2", dev=dev_only_tag)))
    with pytest.raises(ValueError, match="valid has tag 'SYM', unseen in train"):
        dm.encode("valid")


def test_datamodule_vocab_and_padded_batch(tmp_path):
    dm = TaggingDataModule(str(write_treebank(tmp_path / "tb")), batch_size=2, lowercase=True, max_word_length=3)
    assert dm.tags == ["AUX", "NOUN", "PART", "PRON", "PUNCT", "VERB"] and dm.num_tags == 6
    assert "cats" in dm.vocab and "Cats" not in dm.vocab and "C" in dm.char_vocab  # chars keep case
    b = next(iter(dm.val_dataloader()))
    assert b["input_ids"].shape == (2, 4) and b["lengths"].tolist() == [4, 3]
    assert b["input_ids"][1, 3] == dm.vocab.pad_id and b["tags"][1, 3] == -100
    assert b["tags"][0].tolist() == [3, 0, 2, 5]
    assert b["chars"].shape == (2, 4, 3) and b["char_lengths"].tolist() == [[1, 2, 3, 3], [3, 3, 1, 0]]
    assert "".join(dm.char_vocab.itos[i] for i in b["chars"][0, 2].tolist()) == "n't"


def test_collate_pads_chars_with_pad_id():
    b = collate_tagging([{"ids": [5], "tags": [1], "chars": [[7, 8]]},
                         {"ids": [5, 6], "tags": [1, 0], "chars": [[7], [9, 9]]}], max_word_length=10)
    assert b["chars"].tolist() == [[[7, 8], [2, 2]], [[7, 2], [9, 9]]]
    assert torch.equal(b["char_lengths"], torch.tensor([[2, 0], [1, 2]]))


@pytest.mark.slow
def test_ud_english_ewt_counts(data_dir):
    dm = TaggingDataModule("ud-english-ewt", data_dir=str(data_dir))
    assert {s: len(v) for s, v in dm.sents.items()} == {"train": 12544, "valid": 2001, "test": 2077}
    assert dm.word_counts() == {"train": 204577, "valid": 25147, "test": 25094}  # the README's syntactic words
    assert dm.num_tags == 17  # the universal POS tags
    assert dm.sents["valid"][0][0] == ["From", "the", "AP", "comes", "this", "story", ":"]
