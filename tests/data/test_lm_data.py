"""Truncated-BPTT batching is exact: every token predicted once, columns contiguous, ranks disjoint."""
import numpy as np
import pytest
import torch

from seqzoo.data.corpora import load_corpus
from seqzoo.data.lm import IGNORE_INDEX, LanguageModelDataModule, StreamBatches

START, PAD = 1, 2


def _columns(batches):
    """Concatenate a loader's batches along time: (C, L) inputs and targets."""
    xs, ys = zip(*[(b["input_ids"], b["targets"]) for b in batches])
    return torch.cat(xs, 1), torch.cat(ys, 1)


@pytest.mark.parametrize("n,cols,bptt", [(103, 4, 5), (100, 4, 5), (7, 3, 10), (50, 1, 7)])
def test_stream_batches_exact(n, cols, bptt):
    stream = np.arange(10, 10 + n)
    batches = list(StreamBatches(stream, cols, bptt, START, PAD))
    assert len(batches) == len(StreamBatches(stream, cols, bptt, START, PAD))
    assert all(b["input_ids"].shape == b["targets"].shape for b in batches)
    assert all(b["input_ids"].shape[1] <= bptt for b in batches)
    x, y = _columns(batches)
    # reading the columns one after another gives the stream back: nothing lost, nothing repeated
    t = y.reshape(-1)
    assert t[t != IGNORE_INDEX].tolist() == stream.tolist()
    assert (t[len(stream):] == IGNORE_INDEX).all()  # padding only at the very end
    # targets = inputs shifted by one, also across batch boundaries inside a column
    flat_x = x.reshape(-1)
    assert flat_x[0] == START
    assert flat_x[1:n].tolist() == stream[:-1].tolist()
    for c in range(cols):
        valid = y[c] != IGNORE_INDEX
        assert (x[c, 1:][valid[1:]] == y[c, :-1][valid[1:]]).all()


def test_ddp_ranks_disjoint_and_equal_to_one_process():
    stream = np.arange(1000, 1000 + 997)
    single = _columns(StreamBatches(stream, 6, 7, START, PAD))
    ranks = [_columns(StreamBatches(stream, 3, 7, START, PAD, rank=r, world_size=2)) for r in range(2)]
    assert len({len(StreamBatches(stream, 3, 7, START, PAD, rank=r, world_size=2)) for r in range(2)}) == 1
    y0, y1 = ranks[0][1], ranks[1][1]
    seen0, seen1 = set(y0[y0 >= 0].tolist()), set(y1[y1 >= 0].tolist())
    assert not seen0 & seen1
    assert seen0 | seen1 == set(stream.tolist())
    assert torch.equal(torch.cat([ranks[0][0], ranks[1][0]]), single[0])
    assert torch.equal(torch.cat([ranks[0][1], ranks[1][1]]), single[1])


def test_loader_workers_keep_the_stream_order_and_a_resume_skips_once():
    """With loader workers, every batch comes once and in order (each worker reads every k-th batch); a mid-epoch
    resume skips the batches already trained on in that epoch only, however many workers read."""
    from torch.utils.data import DataLoader

    from seqzoo.data.lm import ResumableLoader
    stream = np.arange(10, 10 + 307)
    ds = StreamBatches(stream, 4, 5, START, PAD)
    ref = [b["targets"] for b in DataLoader(ds, batch_size=None)]
    assert len(ref) == len(ds) == 16
    for workers in (1, 2, 3):
        got = [b["targets"] for b in DataLoader(ds, batch_size=None, num_workers=workers)]
        assert len(got) == len(ref) and all(torch.equal(a, b) for a, b in zip(got, ref)), workers
        loader = ResumableLoader(StreamBatches(stream, 4, 5, START, PAD), lambda: 0, num_workers=workers)
        loader.load_state_dict({"batches_done": 6})
        resumed, next_epoch = list(loader), list(loader)
        assert len(resumed) == 10 and len(next_epoch) == 16, workers
        assert all(torch.equal(a["targets"], b) for a, b in zip(resumed + next_epoch, ref[6:] + ref))


def test_datamodule_counts_every_token(tiny_corpus):
    dm = LanguageModelDataModule(str(tiny_corpus), batch_size=3, eval_batch_size=2, bptt=4)
    dm.setup()
    lines = (tiny_corpus / "valid.txt").read_text().splitlines()
    expected = sum(len(line.split()) + 1 for line in lines)
    assert dm.num_tokens("valid") == expected
    _, y = _columns(dm.val_dataloader())
    assert int((y != IGNORE_INDEX).sum()) == expected
    # the stream decodes back to the text, one <eos> per line
    vocab = dm.vocab
    t = y.reshape(-1)
    assert vocab.decode(t[t != IGNORE_INDEX].tolist(), skip_specials=False).split(" <eos>")[0] == lines[0]


def test_sentence_mode(tiny_corpus):
    dm = LanguageModelDataModule(str(tiny_corpus), mode="sentence", batch_size=4, eval_batch_size=4)
    b = next(iter(dm.val_dataloader()))
    assert set(b) == {"input_ids", "targets", "lengths", "mask"}
    assert (b["input_ids"][:, 0] == dm.vocab.eos_id).all()
    for i, n in enumerate(b["lengths"].tolist()):
        assert b["targets"][i, n - 1] == dm.vocab.eos_id
        assert (b["targets"][i, n:] == IGNORE_INDEX).all()
        assert torch.equal(b["input_ids"][i, 1:n], b["targets"][i, : n - 1])


def test_vocab_from_train_only(tiny_corpus):
    (tiny_corpus / "test.txt").write_text("zebra the cat\n")
    dm = LanguageModelDataModule(str(tiny_corpus))
    assert "zebra" not in dm.vocab and "cat" in dm.vocab


def test_ptb_token_counts(data_dir):
    dm = LanguageModelDataModule("ptb", data_dir=str(data_dir))
    assert dm.vocab_size == 10000 + 2  # 10k PTB types incl. <unk>/<eos>, plus <pad>, <bos>
    assert [dm.num_tokens(s) for s in ("train", "valid", "test")] == [929589, 73760, 82430]


# -- bad input: one clear line ---------------------------------------------------------------------
def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'nope'; known: .*ptb"):
        load_corpus("nope")
    with pytest.raises(FileNotFoundError, match="corpus file not found: mine/nofile.txt"):
        load_corpus("mine/nofile.txt")  # a mistyped path, not an unknown corpus name


def test_empty_corpus(tmp_path):
    (tmp_path / "train.txt").write_text("")
    with pytest.raises(ValueError, match="corpus file is empty: .*train.txt"):
        load_corpus(str(tmp_path), splits=("train",))


def test_blank_only_corpus(tmp_path):
    (tmp_path / "train.txt").write_text("\n  \n")
    with pytest.raises(ValueError, match="has no tokens"):
        LanguageModelDataModule(str(tmp_path))


def test_datamodule_missing_split_named_when_asked(tmp_path):
    (tmp_path / "train.txt").write_text("a b c\n")
    (tmp_path / "valid.txt").write_text("a b\n")
    dm = LanguageModelDataModule(str(tmp_path))  # fit needs no test split
    assert len(list(dm.val_dataloader())) == 1
    with pytest.raises(ValueError, match="has no split 'test'; available: train, valid"):
        dm.test_dataloader()


def test_single_file_too_short_to_split(tmp_path):
    """A one-file corpus is split 90/5/5 by line: fewer than 20 lines would leave valid or test empty."""
    (tmp_path / "short.txt").write_text("a b c\n" * 19)
    assert [len(load_corpus(str(tmp_path / "short.txt"))[s]) for s in ("train", "valid", "test")] == [17, 1, 1]
    (tmp_path / "short.txt").write_text("a b c\n" * 9)
    with pytest.raises(ValueError, match=r"short.txt has 9 lines: too few to split 90/5/5 by line"):
        load_corpus(str(tmp_path / "short.txt"))


def test_non_utf8(tmp_path):
    (tmp_path / "train.txt").write_bytes("caf\xe9 ok\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"not UTF-8: .*train.txt \(line 1"):
        load_corpus(str(tmp_path), splits=("train",))


def test_missing_split(tmp_path):
    (tmp_path / "train.txt").write_text("a b c\n")
    with pytest.raises(ValueError, match="has no split 'valid'; available: train"):
        load_corpus(str(tmp_path))


def test_named_corpus_offline_without_local_copy(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SEQZOO_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="'wikitext-103' has no local copy .* Hub is offline"):
        load_corpus("wikitext-103", data_dir=tmp_path)


def test_named_corpus_unreachable_hub_without_local_copy(monkeypatch, tmp_path):
    """Online but no network: the Hub's ConnectionError becomes one line saying where a local copy was looked for
    (LM corpora and the translation corpus alike)."""
    import datasets

    from seqzoo.data.translation import load_parallel

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'x' on the Hub (LocalEntryNotFoundError)")
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "SEQZOO_DATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(FileNotFoundError, match=r"'wikitext-103' has no local copy \(.*wikitext-103\) and the Hub "
                                                r"cannot be reached \(Couldn't reach"):
        load_corpus("wikitext-103", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="'multi30k' has no local copy .* Hub cannot be reached"):
        load_parallel("multi30k", "de", "en")


def test_tinyshakespeare_from_the_hub_is_split_as_the_local_copy(data_dir, monkeypatch, tmp_path):
    """karpathy/tiny_shakespeare on the Hub is three one-row splits, cut by characters (90/5/5): seqzoo joins them
    and splits by line, so a run without the local copy reads the same lines as one with it."""
    import datasets

    from seqzoo.data import corpora
    text = (data_dir / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    a, b = int(0.9 * len(text)), int(0.95 * len(text))
    hub = datasets.DatasetDict({k: datasets.Dataset.from_dict({"text": [t]}) for k, t in
                                (("train", text[:a]), ("validation", text[a:b]), ("test", text[b:]))})
    monkeypatch.setattr(corpora, "_offline", lambda: False)
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: hub)
    from_hub = load_corpus("tinyshakespeare", data_dir=tmp_path)  # no local copy there
    monkeypatch.undo()
    local = load_corpus("tinyshakespeare", data_dir=data_dir)
    for split in ("train", "valid", "test"):
        assert from_hub[split]["text"] == local[split]["text"], split
    assert len(from_hub["train"]) == 36000


def test_bundled_default_corpus():
    ds = load_corpus("lee")
    assert [len(ds[s]) for s in ("train", "valid", "test")] == [270, 15, 15]
    assert ds["train"][0]["text"].startswith("hundreds of people have been forced")
