"""Word embeddings: every format against gensim's own loader, clear errors on bad files, the
coverage report, training, intrinsic scores against gensim's evaluators, and the CLI verb."""
import gzip
import json

import numpy as np
import pytest
import torch
from gensim.models import FastText, KeyedVectors
from gensim.models.fasttext import load_facebook_vectors
from gensim.test.utils import datapath

from seqzoo.data.vocab import SPECIALS, Vocab
from seqzoo.embeddings import (Coverage, embedding_matrix, embeddings_main, evaluate, init_embedding,
                               load_embeddings, nearest, train_embeddings)


def same(a, b):
    assert type(a) is type(b)
    assert a.index_to_key == b.index_to_key
    np.testing.assert_array_equal(a.vectors, b.vectors)


# -- every format loads like gensim's own loader ---------------------------------------------------
W2V_TEXT = ["high_precision.kv.txt", "crime-and-punishment.vec", "lee_fasttext.vec"]
W2V_BIN = ["high_precision.kv.bin", "euclidean_vectors.bin"]
FT_BIN = ["lee_fasttext.bin", "lee_fasttext_new.bin", "crime-and-punishment.bin", "toy-model.bin"]


@pytest.mark.parametrize("name", W2V_TEXT)
def test_word2vec_text(name):
    same(load_embeddings(datapath(name)), KeyedVectors.load_word2vec_format(datapath(name)))
    same(load_embeddings(datapath(name), format="word2vec"), KeyedVectors.load_word2vec_format(datapath(name)))


@pytest.mark.parametrize("name", W2V_BIN)
def test_word2vec_binary(name):
    ref = KeyedVectors.load_word2vec_format(datapath(name), binary=True)
    same(load_embeddings(datapath(name)), ref)
    same(load_embeddings(datapath(name), format="word2vec-binary"), ref)


def test_glove_text_plain_and_gzipped(tmp_path):
    ref = KeyedVectors.load_word2vec_format(datapath("test_glove.txt"), no_header=True)
    assert len(ref) > 10 and ref.vector_size == 50
    same(load_embeddings(datapath("test_glove.txt")), ref)
    gz = tmp_path / "glove.txt.gz"
    gz.write_bytes(gzip.compress(open(datapath("test_glove.txt"), "rb").read()))
    same(load_embeddings(gz, format="glove"), ref)
    same(load_embeddings(gz), ref)
    same(load_embeddings(gz, limit=7), KeyedVectors.load_word2vec_format(datapath("test_glove.txt"), no_header=True,
                                                                      limit=7))


@pytest.mark.parametrize("name", FT_BIN)
def test_fasttext_bin_and_oov_vectors(name):
    ours, ref = load_embeddings(datapath(name)), load_facebook_vectors(datapath(name))
    same(ours, ref)
    np.testing.assert_array_equal(ours.vectors_ngrams, ref.vectors_ngrams)
    for oov in ("steamtrain", "qwertyuiop", "word2vecish"):
        assert oov not in ours.key_to_index
        np.testing.assert_array_equal(ours.get_vector(oov), ref.get_vector(oov))
        assert np.any(ours.get_vector(oov))


def test_keyedvectors_native_only_when_trusted(tmp_path):
    old = datapath("old_keyedvectors_320.dat")
    same(load_embeddings(old, trust_pickle=True), KeyedVectors.load(old))
    kv = KeyedVectors.load_word2vec_format(datapath("euclidean_vectors.bin"), binary=True)
    kv.save(str(tmp_path / "v.kv"))
    same(load_embeddings(tmp_path / "v.kv", trust_pickle=True), kv)
    same(load_embeddings(tmp_path / "v.kv", format="kv", trust_pickle=True), kv)
    ft = load_facebook_vectors(datapath("crime-and-punishment.bin"))  # native save keeps the n-grams
    ft.save(str(tmp_path / "ft.kv"))
    back = load_embeddings(tmp_path / "ft.kv", trust_pickle=True)
    np.testing.assert_array_equal(back.get_vector("steamtrain"), ft.get_vector("steamtrain"))
    for path, fmt in ((old, "auto"), (tmp_path / "v.kv", "kv")):
        with pytest.raises(ValueError, match="is a gensim native file, a pickle .* trust_pickle=True"):
            load_embeddings(path, format=fmt)


def test_a_pickle_named_like_vectors_runs_nothing_without_trust(tmp_path, capsys):
    """Any file whose bytes are a pickle is refused before it is read, whatever its name; the CLI says so in one
    line (finetune --vectors, embeddings eval / nearest)."""
    import pickle

    from seqzoo.cli import main

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))
    (tmp_path / "cc.en.300.bin").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ValueError, match="a pickle that can run code"):
        load_embeddings(tmp_path / "cc.en.300.bin")
    for argv in (["embeddings", "eval", str(tmp_path / "cc.en.300.bin")],
                 ["embeddings", "nearest", str(tmp_path / "cc.en.300.bin"), "king"]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--trust-pickle" in err[0], err
    assert not (tmp_path / "pwned").exists()


# -- bad input: one line naming the file and the line ----------------------------------------------
@pytest.fixture
def glove_lines():
    return open(datapath("test_glove.txt")).read().splitlines()


def test_wrong_dimension_line(tmp_path, glove_lines):
    p = tmp_path / "bad.txt"
    p.write_text("\n".join(glove_lines[:5] + [" ".join(glove_lines[5].split()[:-3])] + glove_lines[6:]) + "\n")
    with pytest.raises(ValueError, match=rf"^{p}: line 6 has 47 values, expected 50$"):
        load_embeddings(p)
    p2 = tmp_path / "bad.vec"  # word2vec text: line 1 is the header, so the data line is one further
    p2.write_text(f"{len(glove_lines)} 50\n" + "\n".join(glove_lines[:2] + [glove_lines[2] + " 0.5"]) + "\n")
    with pytest.raises(ValueError, match=rf"^{p2}: line 4 has 51 values, expected 50$"):
        load_embeddings(p2)
    p3 = tmp_path / "nan.txt"
    p3.write_text(glove_lines[0] + "\n" + glove_lines[1].replace(" ", " x", 1) + "\n")
    with pytest.raises(ValueError, match=rf"^{p3}: line 2: 'x.*' is not a number$"):
        load_embeddings(p3)


def test_line_of_one_value(tmp_path):
    """gensim spreads a lone value over the whole vector (dog = [0.3, 0.3]) instead of failing."""
    p = tmp_path / "one.txt"
    p.write_text("cat 0.1 0.2\ndog 0.3\n")
    with pytest.raises(ValueError, match=rf"^{p}: line 2 has 1 values, expected 2$"):
        load_embeddings(p)
    with pytest.raises(ValueError, match=rf"^{p}: line 2 has 1 values, expected 2$"):
        embeddings_main(["nearest", str(p), "cat"])
    assert load_embeddings(p, limit=1).index_to_key == ["cat"]  # the bad line is not read
    p = tmp_path / "one.vec"
    p.write_text("3 2\ncat 0.1 0.2\ndog 0.3\nrat 0.5 0.6\n")
    for fmt in ("auto", "word2vec"):
        with pytest.raises(ValueError, match=rf"^{p}: line 3 has 1 values, expected 2$"):
            load_embeddings(p, format=fmt)
    p.write_text("1 2\ncat 0.1 0.2\ndog 0.3\n")  # past the header's count: not read, as by gensim
    assert load_embeddings(p).index_to_key == ["cat"]


def test_non_utf8_text_is_neither_text_nor_binary(tmp_path):
    p = tmp_path / "bad3.txt"
    p.write_bytes(b"ok\n\xff bad\n")
    with pytest.raises(ValueError, match=rf"^{p}: neither a UTF-8 text vector file \(line 2, byte offset 3: byte "
                                         r"0xff is not UTF-8\) nor a binary fastText / word2vec file$"):
        embeddings_main(["nearest", str(p), "cat"])
    p.write_bytes(b"2 2\ncat 0.1 0.2\n\xff 0.3 0.4\n")  # with a header line
    with pytest.raises(ValueError, match=rf"^{p}: neither a UTF-8 text vector file \(line 3, byte offset 16"):
        load_embeddings(p)


def test_truncated_files(tmp_path, glove_lines):
    p = tmp_path / "cut.txt"
    p.write_text("\n".join(glove_lines[:10]) + "\n" + glove_lines[10][:40])
    with pytest.raises(ValueError, match=rf"^{p}: line 11 has \d+ values, expected 50 and the file ends there"):
        load_embeddings(p)
    p = tmp_path / "cut.vec"
    p.write_text("20 50\n" + "\n".join(glove_lines[:3]) + "\n")
    with pytest.raises(ValueError, match=rf"^{p}: truncated file: the header promises 20 vectors but it ends at "
                                         r"line 4 after 3$"):
        load_embeddings(p)
    raw = open(datapath("euclidean_vectors.bin"), "rb").read()
    p = tmp_path / "cut.bin"
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=rf"^{p}: truncated file: the header promises 2747 vectors but vector "
                                         r"\d+ \('.*'\) is cut short$"):
        load_embeddings(p)
    p = datapath("pretrained.vec")  # gensim's own truncated test file (header says 3, holds 1)
    with pytest.raises(ValueError, match=rf"^{p}: truncated file: the header promises 3 vectors but it ends at "
                                         r"line 2 after 1$"):
        load_embeddings(p)
    gz = gzip.compress(open(datapath("test_glove.txt"), "rb").read())
    p = tmp_path / "cut.txt.gz"
    p.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(ValueError, match=rf"^{p}: truncated compressed file: it ends inside line \d+"):
        load_embeddings(p)


def test_empty_and_missing_files(tmp_path):
    for content in ("", "\n\n"):
        p = tmp_path / "empty.txt"
        p.write_text(content)
        with pytest.raises(ValueError, match=rf"^embedding file is empty: {p}"):
            load_embeddings(p)
    with pytest.raises(FileNotFoundError, match="embedding file not found: nope.txt; or a name: glove-6b-50d"):
        load_embeddings("nope.txt")
    with pytest.raises(ValueError, match="unknown embedding format 'w2v'; valid: auto, word2vec"):
        load_embeddings(datapath("test_glove.txt"), format="w2v")
    for content in ("the\nof\n", "a\t1\t2\t3\nb\t4\t5\t6\n"):  # words only; tab-separated numbers
        p = tmp_path / "no_numbers.txt"
        p.write_text(content)
        with pytest.raises(ValueError, match=rf"^{p}: its vectors have no numbers"):
            load_embeddings(p)


@pytest.mark.parametrize("fmt", ["glove", "word2vec"])
def test_binary_file_read_as_text(fmt):
    p = datapath("euclidean_vectors.bin")
    with pytest.raises(ValueError, match=rf"^{p}: line 2 is not UTF-8 text: a binary file read as text\?"):
        load_embeddings(p, format=fmt)


def test_named_vectors_offline_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SEQZOO_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=rf"'glove-6b-50d' have no local copy \({tmp_path}/glove/glove.6B.50d"
                                                r".txt.gz\) and the Hub is offline"):
        load_embeddings("glove-6b-50d", data_dir=tmp_path)


# -- coverage report and embedding matrices --------------------------------------------------------
@pytest.fixture
def small_vectors(tmp_path):
    p = tmp_path / "small.vec"
    p.write_text("4 3\nthe 1 0 0\nParis 0 1 0\ncat 0 0 1\n<unk> 2 2 2\n")
    return load_embeddings(p)


def test_coverage_exact_lower_missing(small_vectors):
    vocab = Vocab(list(SPECIALS) + ["the", "The", "Paris", "paris", "cat", "dog", "CAT"])
    w, cov = embedding_matrix(vocab, small_vectors, oov="zeros")
    # the, Paris, cat exact; The, CAT lower-case; paris ("paris" is not in the vectors) and dog missing
    assert (cov.total, cov.exact, cov.lower, cov.subword) == (7, 3, 2, 0)
    assert cov.missing == ["paris", "dog"] and cov.rate == pytest.approx(5 / 7)
    assert w.shape == (11, 3) and w.dtype == torch.float32
    assert w[vocab["<pad>"]].eq(0).all() and w[vocab["<unk>"]].tolist() == [2, 2, 2]
    assert w[vocab["The"]].tolist() == [1, 0, 0] and w[vocab["CAT"]].tolist() == [0, 0, 1]
    assert w[vocab["dog"]].eq(0).all() and w[vocab["<eos>"]].eq(0).all()
    r1, _ = embedding_matrix(vocab, small_vectors, oov="random", seed=3)
    r2, _ = embedding_matrix(vocab, small_vectors, oov="random", seed=3)
    assert torch.equal(r1, r2) and r1[vocab["dog"]].abs().sum() > 0 and r1[vocab["<pad>"]].eq(0).all()
    assert torch.equal(r1[vocab["Paris"]], w[vocab["Paris"]])
    with pytest.raises(ValueError, match="oov='subword' needs FastText vectors"):
        embedding_matrix(vocab, small_vectors, oov="subword")
    with pytest.raises(ValueError, match="unknown oov policy 'skip'; valid: random, zeros, subword"):
        embedding_matrix(vocab, small_vectors, oov="skip")


def test_coverage_subword_equals_gensim_oov_vectors():
    ft = FastText(sentences=[["the", "cat", "sat", "on", "the", "mat"]] * 5, vector_size=8, min_count=1, epochs=2,
                  bucket=2000, seed=1, workers=1).wv
    vocab = Vocab(list(SPECIALS) + ["cat", "Mat", "cats", "sitting"])
    w, cov = embedding_matrix(vocab, ft, oov="subword")
    assert (cov.exact, cov.lower, cov.subword, cov.missing) == (1, 1, 2, [])
    assert torch.equal(w[vocab["cats"]], torch.tensor(ft.get_vector("cats")))
    assert torch.equal(w[vocab["Mat"]], torch.tensor(ft.get_vector("mat")))
    assert "4/4 (100.0%): 1 exact, 1 lower-case, 2 subword, 0 missing" in cov.summary()


def test_init_embedding_shapes_and_freeze(small_vectors):
    vocab = Vocab(list(SPECIALS) + ["the", "cat", "dog"])
    emb = torch.nn.Embedding(len(vocab), 3)
    cov = init_embedding(emb, vocab, small_vectors, freeze=True, oov="zeros")
    assert isinstance(cov, Coverage) and cov.found == 2 and not emb.weight.requires_grad
    assert emb.weight[vocab["cat"]].tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="embedding layer is 7 x 5 but the vocab has 7 words and the vectors 3 "
                                         r"dimensions \(set embedding_size: 3\)"):
        init_embedding(torch.nn.Embedding(7, 5), vocab, small_vectors)


def test_lm_with_pretrained_embeddings_trains(tiny_corpus, tmp_path):
    """RNNLanguageModel(embeddings=..., freeze_embeddings=...): the vectors are loaded at fit, and stay fixed
    only when frozen."""
    import lightning as L

    from seqzoo.data.lm import LanguageModelDataModule
    from seqzoo.models.rnn_lm import RNNLanguageModel

    train_embeddings("word2vec", tiny_corpus / "train.txt", tmp_path / "w2v", dim=8, min_count=1, epochs=1,
                     workers=1, progress=False)
    start = {}
    for freeze in (True, False):
        dm = LanguageModelDataModule(str(tiny_corpus), batch_size=4, eval_batch_size=4, bptt=5)
        m = RNNLanguageModel(embeddings=str(tmp_path / "w2v"), freeze_embeddings=freeze, vocab_size=dm.vocab_size,
                             embedding_size=8, hidden_size=8, lr=1.0)
        trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False)
        trainer.fit(m, datamodule=dm)
        start[freeze] = embedding_matrix(dm.vocab, str(tmp_path / "w2v"))[0]
        changed = not torch.equal(m.net.embed.weight.detach(), start[freeze])
        assert changed != freeze
        assert trainer.callback_metrics["valid_perplexity"] < len(dm.vocab)  # it learnt something


# -- training and evaluation ------------------------------------------------------------------------
@pytest.fixture
def lee_half(tmp_path):
    """The first 150 of the 300 texts of gensim's Lee corpus: enough words, half the time."""
    p = tmp_path / "lee150.txt"
    p.write_text("".join(open(datapath("lee_background.cor")).readlines()[:150]))
    return p


@pytest.mark.parametrize("method", ["word2vec", "fasttext"])
def test_train_writes_loadable_vectors(method, tmp_path, lee_half):
    out = tmp_path / method
    kv = train_embeddings(method, lee_half, out, dim=16, epochs=2 if method == "word2vec" else 1, min_count=3,
                          workers=1, progress=False)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["method"] == method and cfg["dim"] == 16 and cfg["vocab_size"] == len(kv) > 500
    native, text = load_embeddings(out), load_embeddings(out / "vectors.txt")
    assert native.index_to_key == text.index_to_key == kv.index_to_key
    np.testing.assert_allclose(text.vectors, kv.vectors, atol=1e-5)
    np.testing.assert_array_equal(native.vectors, kv.vectors)
    if method == "word2vec":  # negative-sampling loss falls from epoch 1 to 2
        assert cfg["epoch_losses"][1] < cfg["epoch_losses"][0]
    else:
        np.testing.assert_array_equal(native.get_vector("unseenword"), kv.get_vector("unseenword"))


def test_train_rejects_bad_corpus_and_config(tmp_path):
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(ValueError, match=f"corpus file is empty: {tmp_path / 'e.txt'}"):
        train_embeddings(corpus=tmp_path / "e.txt", out=tmp_path / "o")
    (tmp_path / "l1.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(ValueError, match="corpus file is not UTF-8: .*l1.txt \\(line 1, byte 3\\)"):
        train_embeddings(corpus=tmp_path / "l1.txt", out=tmp_path / "o")
    with pytest.raises(ValueError, match="unknown method 'glove'; valid: word2vec, fasttext"):
        train_embeddings("glove", datapath("lee_background.cor"), tmp_path / "o")


@pytest.fixture
def toy_corpus(tmp_path):
    p = tmp_path / "toy.txt"
    p.write_text("the cat sat on the mat\nthe dog ate the cat food\n" * 10)
    return p


def test_train_replaces_its_folder_whole(tmp_path, toy_corpus, monkeypatch):
    out = tmp_path / "out"
    toy = dict(corpus=toy_corpus, out=out, min_count=1, epochs=1, workers=1, progress=False)
    train_embeddings(dim=8, **toy)
    (out / "vectors.txt").unlink()
    (out / "vectors.txt").mkdir()  # made writing vectors.txt fail after vectors.bin was replaced
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}

    def boom(*args, **kwargs):
        raise OSError("disk full")
    with monkeypatch.context() as m:
        m.setattr(KeyedVectors, "save_word2vec_format", boom)
        with pytest.raises(OSError, match="disk full"):
            train_embeddings(dim=4, **toy)
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before and (out / "vectors.txt").is_dir()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["out", "toy.txt"]  # no temporary folder left
    train_embeddings(dim=4, **toy)
    assert json.loads((out / "config.json").read_text())["dim"] == 4 and load_embeddings(out).vector_size == 4
    assert load_embeddings(out / "vectors.txt").vector_size == 4
    assert sorted(f.name for f in tmp_path.iterdir()) == ["out", "toy.txt"]


def test_train_checks_everything_before_writing(tmp_path, toy_corpus):
    toy = dict(corpus=toy_corpus, epochs=1, workers=1, progress=False)
    with pytest.raises(ValueError, match=f"corpus {toy_corpus}: no word occurs min_count=99 times"):
        train_embeddings(out=tmp_path / "o", min_count=99, **toy)
    with pytest.raises(ValueError, match=r"seed must be between 0 and 2\*\*32 - 1, got -1"):
        train_embeddings(out=tmp_path / "o", seed=-1, **toy)
    assert not (tmp_path / "o").exists()
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("mine")
    for out in (tmp_path / "keep", toy_corpus):
        with pytest.raises(ValueError, match=f"^{out} exists and is not an embeddings output folder "
                                             r"\(no vectors.bin\): refusing to replace it$"):
            embeddings_main(["train", "--corpus", str(toy_corpus), "--out", str(out), "--no-progress"])
    with pytest.raises(ValueError, match=f"^cannot write {toy_corpus}/o: {toy_corpus} is a file, not a folder$"):
        train_embeddings(out=toy_corpus / "o", **toy)
    assert (tmp_path / "keep" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("args, msg", [(["nearest", "V", "cat", "-k", "0"], "k must be >= 1, got 0"),
                                       (["nearest", "V", "cat", "-k", "-3"], "k must be >= 1, got -3"),
                                       (["eval", "V", "--restrict-vocab", "0"], "restrict_vocab must be >= 1, got 0")])
def test_counts_must_be_positive(args, msg):
    with pytest.raises(ValueError, match=f"^{msg}$"):
        embeddings_main([datapath("test_glove.txt") if a == "V" else a for a in args])


def test_glove50_scores_equal_gensims(data_dir):
    path, sim = data_dir / "glove" / "glove.6B.50d.txt.gz", data_dir / "word-similarity"
    n = 20000  # the 20k most frequent words (loading and scoring all 400k takes minutes): same limit both sides
    ours = load_embeddings("glove-6b-50d", data_dir=data_dir, limit=n)
    ref = KeyedVectors.load_word2vec_format(str(path), no_header=True, limit=n)
    same(ours, ref)
    m = evaluate(ours, data_dir=data_dir)
    acc, sections = ref.evaluate_word_analogies(str(sim / "questions-words.txt"))
    assert m["analogy_accuracy"] == acc and 0.3 < acc < 0.8
    for name, f in (("wordsim353", "wordsim353.tsv"), ("simlex999", "simlex999.txt")):
        _, rho, oov = ref.evaluate_word_pairs(str(sim / f))
        assert m[f"{name}_spearman"] == rho.statistic and m[f"{name}_oov"] == oov / 100
    assert 0.4 < m["wordsim353_spearman"] < 0.7 and 0.1 < m["simlex999_spearman"] < 0.4
    total = sections[-1]
    assert m["analogy_oov"] == pytest.approx(1 - (len(total["correct"]) + len(total["incorrect"])) / 19544)
    assert [w for w, _ in nearest(ours, "France", 3)] == [w for w, _ in ref.most_similar("france", topn=3)]


def test_no_known_word_gives_none_not_a_crash():
    m = evaluate(datapath("test_glove.txt"))  # 75 words: no WordSim / SimLex pair is fully known
    assert m["wordsim353_spearman"] is None and m["wordsim353_oov"] == 1.0 and m["oov_rate"] > 0.99


def test_simlex_original_layout_is_cut_to_three_columns(tmp_path):
    kv = load_embeddings(datapath("test_glove.txt"))
    words = kv.index_to_key
    p = tmp_path / "SimLex-999.txt"  # the original file: header row, score in column "SimLex999"
    rows = ["word1\tword2\tPOS\tSimLex999\tconc(w1)"] + [f"{words[i]}\t{words[i + 1]}\tN\t{i % 7 + 0.5}\t3.2"
                                                         for i in range(20)]
    p.write_text("\n".join(rows) + "\n")
    three = tmp_path / "three.txt"
    three.write_text("\n".join(f"{words[i]}\t{words[i + 1]}\t{i % 7 + 0.5}" for i in range(20)) + "\n")
    m = evaluate(kv, analogies=None, similarity={"orig": str(p), "three": str(three)})
    assert m["orig_spearman"] == m["three_spearman"] == kv.evaluate_word_pairs(str(three))[1].statistic
    assert evaluate(kv, analogies=None, similarity=three)["three_spearman"] == m["three_spearman"]  # one file


# -- the CLI verb -----------------------------------------------------------------------------------
def test_cli_train_eval_nearest(tmp_path, capsys, lee_half):
    out = tmp_path / "w2v"
    embeddings_main(["train", "--method", "word2vec", "--corpus", str(lee_half), "--out", str(out),
                     "--dim", "16", "--epochs", "1", "--min-count", "3", "--workers", "1", "--cbow", "--no-progress"])
    assert "words x 16 written to" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["sg"] == 0
    embeddings_main(["eval", str(out), "--json"])
    m = json.loads(capsys.readouterr().out)
    assert m["dim"] == 16 and 0 < m["oov_rate"] < 1 and -1 <= m["wordsim353_spearman"] <= 1
    embeddings_main(["nearest", str(out / "vectors.txt"), "government", "-k", "3"])
    assert len(capsys.readouterr().out.splitlines()) == 3
    with pytest.raises(ValueError, match="word 'zzzqqq' is not among the"):
        embeddings_main(["nearest", str(out), "zzzqqq"])


def test_recipe_runs_write_results(tmp_path):
    import yaml
    (tmp_path / "g.yaml").write_text(f"vectors: {datapath('lee_fasttext.vec')}\ndataset: lee\n")
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump({"title": "t", "runs": [
        {"name": "g", "kind": "embeddings", "config": "g.yaml", "model": "tiny glove"},
        {"name": "lm", "config": "lm.yaml", "model": "an LSTM"}]}))
    embeddings_main(["reproduce", str(tmp_path)])
    run = json.loads((tmp_path / "results.json").read_text())["runs"][0]
    assert run["name"] == "g" and set(run) >= {"config", "dataset", "metrics", "epochs", "wall_seconds", "device"}
    m = evaluate(datapath("lee_fasttext.vec"))
    assert run["metrics"]["test_wordsim353_spearman"] == m["wordsim353_spearman"] != None  # noqa: E711
    assert run["metrics"]["oov_rate"] == m["oov_rate"] > 0.5  # 1,762 words miss most questions
    md = (tmp_path / "results.md").read_text()
    assert "| g | tiny glove |" in md and "| lm | an LSTM |  |  | not run |" in md
