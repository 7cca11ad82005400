import gzip

import pytest
import torch

from seqzoo.data.classification import (ClassificationDataModule, load_embedding_matrix, read_glue_tsv,
                                        resolve_embeddings_path)
from seqzoo.data.vocab import Vocab


def _folder(tmp_path, train="sentence\tlabel\nit 's \"good\" \t1\nbad , bad \t0\n", dev="sentence\tlabel\nGood \t1\n"):
    (tmp_path / "train.tsv").write_text(train)
    (tmp_path / "dev.tsv").write_text(dev)
    return tmp_path


def test_read_glue_tsv_keeps_quotes_and_rejects_bad_rows(tmp_path):
    _folder(tmp_path)
    assert read_glue_tsv(tmp_path / "train.tsv") == [("it 's \"good\" ", 1), ("bad , bad ", 0)]
    (tmp_path / "bad.tsv").write_text("sentence\tlabel\nno label here\n")
    with pytest.raises(ValueError, match=r"bad.tsv line 2: expected 'sentence<TAB>integer label'"):
        read_glue_tsv(tmp_path / "bad.tsv")
    (tmp_path / "test.tsv").write_text("index\tsentence\n0\tx\n")
    with pytest.raises(ValueError, match="expected the header 'sentence<TAB>label'"):
        read_glue_tsv(tmp_path / "test.tsv")
    with pytest.raises(FileNotFoundError, match="TSV file not found"):
        read_glue_tsv(tmp_path / "nope.tsv")


def test_datamodule_batches_and_dev_as_test(tmp_path):
    dm = ClassificationDataModule(str(_folder(tmp_path)), batch_size=2)
    assert dm.num_classes == 2 and dm.vocab.itos[4] == "bad"  # most frequent first
    b = next(iter(dm.val_dataloader()))
    assert b["input_ids"].tolist() == [[dm.vocab["good"]]] and b["labels"].tolist() == [1]  # lower-cased
    assert next(iter(dm.test_dataloader()))["input_ids"].tolist() == b["input_ids"].tolist()
    tb = dm.encode("train")
    assert tb[0] == ([dm.vocab["it"], dm.vocab["'s"], dm.vocab['"good"']], 1)
    with pytest.raises(ValueError, match="unknown dataset 'imdb'"):
        ClassificationDataModule("imdb")


def test_embedding_matrix_exact_lowercase_fallback_and_oov(tmp_path):
    vocab = Vocab.build([["the", "The", "Paris", "zzqx", "cat"]])
    path = tmp_path / "vecs.txt.gz"
    with gzip.open(path, "wt") as f:
        f.write("the 1 2 3\nparis 4 5 6\nThe 7 8 9\ncat -1 0 1\nunused 9 9 9\n")
    m = load_embedding_matrix(path, vocab)
    assert m.shape == (len(vocab), 3)
    assert m[vocab["the"]].tolist() == [1, 2, 3] and m[vocab["The"]].tolist() == [7, 8, 9]  # exact beats lower
    assert m[vocab["Paris"]].tolist() == [4, 5, 6]  # lower-cased fallback
    assert m[vocab.pad_id].abs().sum() == 0 and m[vocab["zzqx"]].abs().sum() > 0  # OOV: random, not zero
    assert torch.equal(m, load_embedding_matrix(path, vocab))  # deterministic
    (tmp_path / "ragged.txt").write_text("the 1 2 3\ncat 1 2\n")
    with pytest.raises(ValueError, match="ragged.txt line 2: 2 numbers, earlier lines had 3"):
        load_embedding_matrix(tmp_path / "ragged.txt", vocab)
    (tmp_path / "none.txt").write_text("dog 1 2\n")
    with pytest.raises(ValueError, match="no vocab word has a vector"):
        load_embedding_matrix(tmp_path / "none.txt", vocab)
    with pytest.raises(FileNotFoundError, match="embeddings file not found: glove/nope.txt"):
        resolve_embeddings_path("glove/nope.txt", tmp_path)


@pytest.mark.slow
def test_sst2_counts_and_glove(data_dir):
    dm = ClassificationDataModule("sst2", data_dir=str(data_dir), embeddings_path="glove/glove.6B.50d.txt.gz")
    assert len(dm.rows["train"]) == 67349 and len(dm.rows["valid"]) == 872
    assert sum(y for _, y in dm.rows["train"]) == 37569 and sum(y for _, y in dm.rows["valid"]) == 444
    emb = dm.embeddings
    assert emb.shape == (dm.vocab_size, 50)
    the = emb[dm.vocab["the"]]
    assert the[:3].tolist() == pytest.approx([0.418, 0.24968, -0.41242])  # glove.6B.50d's first line
