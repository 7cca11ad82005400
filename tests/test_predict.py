"""Using a trained tagger, classifier or CTC model: ``tag`` / ``classify`` / ``transcribe``, ``seqzoo predict``
and ``seqzoo evaluate``. Each family is trained briefly (so that it is right on some inputs and wrong on
others), saved to a checkpoint folder and loaded back; its predictions must equal the Lightning task's on the
datamodule's batches, token by token, and ``seqzoo evaluate`` must give the score ``trainer.test`` logs."""
import io
import random

import lightning as L
import pytest
import torch

import seqzoo
from seqzoo.cli import main, run_evaluate
from seqzoo.data.classification import ClassificationDataModule
from seqzoo.data.g2p import G2PDataModule
from seqzoo.data.tagging import TaggingDataModule
from seqzoo.models.classifier import ClassifierTask
from seqzoo.models.ctc import CTCTask
from seqzoo.models.tagger import TaggerTask


def _trainer(**kw):
    return L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     **kw)


def _stdin(monkeypatch, text: str):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8")), encoding="utf-8"))


# -- tagger ------------------------------------------------------------------------------------------------
LEXICON = {"DET": "the a this", "NOUN": "cat dog run mat log", "VERB": "sat ran saw run", "ADV": "fast down"}
TEMPLATES = ["DET NOUN VERB", "DET NOUN VERB ADV", "NOUN VERB", "DET NOUN VERB DET NOUN"]


def _treebank(folder, rng, n, capitalise):
    rows = []
    for _ in range(n):
        tags = rng.choice(TEMPLATES).split()
        words = [rng.choice(LEXICON[t].split()) for t in tags]
        if capitalise:
            words[0] = words[0].capitalize()
        rows += [f"{i}\t{w}\t{w}\t{t}\t_\t_\t0\tdep\t_\t_" for i, (w, t) in enumerate(zip(words, tags), 1)] + [""]
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    """A char-LSTM tagger trained on lower-case text with ``lowercase=True``; its test split starts each
    sentence with a capital, so the words match the vocabulary only when lower-cased first."""
    L.seed_everything(0)
    rng = random.Random(0)
    tb = tmp_path_factory.mktemp("treebank")
    for split, n, cap in (("train", 60, False), ("dev", 20, True), ("test", 30, True)):
        (tb / f"xx_tiny-ud-{split}.conllu").write_text(_treebank(tb, rng, n, cap))
    dm = TaggingDataModule(str(tb), batch_size=8, eval_batch_size=7, lowercase=True, max_word_length=3)
    task = TaggerTask(vocab_size=dm.vocab_size, num_tags=dm.num_tags, num_chars=dm.num_chars, embedding_size=8,
                      hidden_size=8, num_layers=1, char_encoder="lstm", char_hidden_size=4, lr=0.01,
                      max_word_length=3)  # "this" is read as "thi", in training and by tag()
    trainer = _trainer(max_epochs=2)
    trainer.fit(task, datamodule=dm)
    acc = trainer.test(task, datamodule=dm, verbose=False)[0]["test_accuracy"]
    expected = []
    with torch.no_grad():
        for b in dm.test_dataloader():
            for row, n in zip(task.eval()(b).argmax(-1).tolist(), b["lengths"].tolist()):
                expected.append([dm.tags[t] for t in row[:n]])
    folder = seqzoo.save_pretrained(task, tmp_path_factory.mktemp("tagger") / "model")
    trainer.save_checkpoint(folder.parent / "last.ckpt")
    return {"dm": dm, "folder": folder, "accuracy": acc, "expected": expected, "treebank": tb,
            "ckpt": folder.parent / "last.ckpt"}


def test_tagger_tags_as_the_task_did_and_evaluate_gives_its_test_accuracy(tagger):
    dm, expected = tagger["dm"], tagger["expected"]
    assert 0.3 < tagger["accuracy"] < 1.0, tagger["accuracy"]  # partly trained: the comparison can fail
    net = seqzoo.from_pretrained(tagger["folder"])
    words = [w for w, _ in dm.sents["test"]]
    assert net.vocab.uncased and all(w[0][0].isupper() for w in words) and net.config.max_word_length == 3
    assert net.tag(words, batch_size=5) == expected
    assert net.tag([" ".join(w) for w in words[:3]]) == expected[:3]  # a string is split on white space
    assert net.tag([[], words[0]]) == [[], expected[0]]
    assert net.train().tag(words[:2]) == expected[:2] and net.training  # eval inside, the mode given back
    net.eval()
    net.vocab._uncased = False  # words looked up as written: the capitals become <unk> and some tags change
    assert net.tag(words) != expected
    r = run_evaluate(str(tagger["folder"]), str(tagger["treebank"]), "test")
    assert r["accuracy"] == pytest.approx(tagger["accuracy"], abs=1e-6)
    assert r["tokens"] == sum(map(len, words)) and r["sentences"] == len(words)
    one = run_evaluate(str(tagger["folder"]), str(tagger["treebank"] / "xx_tiny-ud-test.conllu"))  # one file
    assert one["accuracy"] == r["accuracy"] and one["tokens"] == r["tokens"]
    with pytest.raises(ValueError, match="pickle"):  # a Lightning .ckpt only with trust_pickle
        run_evaluate(str(tagger["ckpt"]), str(tagger["treebank"]), "test")
    r = run_evaluate(str(tagger["ckpt"]), str(tagger["treebank"]), "test", trust_pickle=True)  # vocab rebuilt
    assert r["accuracy"] == pytest.approx(tagger["accuracy"], abs=1e-6)


def test_seqzoo_predict_tags_stdin(tagger, monkeypatch, capsys):
    dm, expected = tagger["dm"], tagger["expected"]
    lines = [" ".join(w) for w, _ in dm.sents["test"][:4]]
    _stdin(monkeypatch, "\n".join([lines[0], "", *lines[1:]]) + "\n")
    assert main(["predict", str(tagger["folder"])]) == 0
    out = capsys.readouterr().out.splitlines()
    want = [" ".join(f"{w}/{t}" for w, t in zip(line.split(), tags)) for line, tags in zip(lines, expected)]
    assert out == [want[0], "", *want[1:]]
    _stdin(monkeypatch, lines[0] + "\n")
    assert main(["predict", str(tagger["folder"]), "--conll"]) == 0
    assert capsys.readouterr().out == "".join(f"{w}\t{t}\n" for w, t in zip(lines[0].split(), expected[0])) + "\n"


def test_evaluate_tagger_on_a_wrong_tag_set_is_one_line(tagger, tmp_path, capsys):
    tb = tmp_path / "xpos"
    tb.mkdir()
    for split in ("train", "dev", "test"):  # the same words with other tags (as with --tag-column xpos)
        text = (tagger["treebank"] / f"xx_tiny-ud-{split}.conllu").read_text().replace("\tNOUN\t", "\tNN\t")
        (tb / f"xx_tiny-ud-{split}.conllu").write_text(text)
    assert main(["evaluate", str(tagger["folder"]), "--dataset", str(tb)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tag 'NN', which the model does not know" in err[0], err


# -- classifier --------------------------------------------------------------------------------------------
GOOD, BAD, OTHER = "good great fine lovely".split(), "bad awful dull poor".split(), "a film movie plot the".split()


def _sst(rng, n, upper):
    rows = ["sentence\tlabel"]
    for _ in range(n):
        y = rng.randrange(2)
        words = rng.sample(OTHER, 3) + [rng.choice(GOOD if y else BAD)]
        rng.shuffle(words)
        text = " ".join(words)
        rows.append(f"{text.upper() if upper else text}\t{y}")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """Trained on lower-case text (``lowercase=True``); dev is upper-case."""
    L.seed_everything(0)
    rng = random.Random(1)
    d = tmp_path_factory.mktemp("sst")
    (d / "train.tsv").write_text(_sst(rng, 80, False))
    (d / "dev.tsv").write_text(_sst(rng, 40, True))
    dm = ClassificationDataModule(str(d), batch_size=8, eval_batch_size=7)
    task = ClassifierTask(vocab_size=dm.vocab_size, num_classes=dm.num_classes, embedding_size=8, hidden_size=8,
                          lr=0.01)
    trainer = _trainer(max_epochs=3)
    trainer.fit(task, datamodule=dm)
    acc = trainer.validate(task, datamodule=dm, verbose=False)[0]["valid_accuracy"]
    with torch.no_grad():
        probs = torch.cat([task.eval()(b).softmax(-1) for b in dm.val_dataloader()])
    folder = seqzoo.save_pretrained(task, tmp_path_factory.mktemp("classifier") / "model")
    return {"dm": dm, "folder": folder, "accuracy": acc, "probs": probs, "data": d}


def test_classifier_classifies_as_the_task_did_and_evaluate_gives_its_accuracy(classifier):
    dm, probs = classifier["dm"], classifier["probs"]
    assert 0.5 < classifier["accuracy"] < 1.0, classifier["accuracy"]
    net = seqzoo.from_pretrained(classifier["folder"])
    texts = [t for t, _ in dm.rows["valid"]]
    assert torch.allclose(net.probabilities(texts, batch_size=3), probs, atol=1e-6)
    assert net.classify(texts) == [["0", "1"][i] for i in probs.argmax(-1).tolist()]  # labels.json: "0", "1"
    with pytest.raises(ValueError, match="text 1 is empty"):
        net.probabilities(["good film", "  "])
    r = run_evaluate(str(classifier["folder"]), str(classifier["data"]), "valid")
    assert r["accuracy"] == pytest.approx(classifier["accuracy"], abs=1e-6) and r["sentences"] == len(texts)
    with pytest.raises(ValueError, match="no labelled 'test' split"):
        run_evaluate(str(classifier["folder"]), str(classifier["data"]), "test")
    one = run_evaluate(str(classifier["folder"]), str(classifier["data"] / "dev.tsv"))  # one file, scored whole
    assert one["accuracy"] == r["accuracy"] and one["split"] == "test"


def test_seqzoo_predict_classifies_stdin(classifier, monkeypatch, capsys):
    texts = [t for t, _ in classifier["dm"].rows["valid"][:3]]
    _stdin(monkeypatch, f"{texts[0]}\n\n{texts[1]}\n{texts[2]}\n")
    assert main(["predict", str(classifier["folder"])]) == 0
    cap = capsys.readouterr()
    out = cap.out.splitlines()
    p = classifier["probs"][:3]
    assert out == [f"{i}\t{float(v):.4f}" for v, i in zip(*p.max(-1))][:1] + [""] + \
        [f"{i}\t{float(v):.4f}" for v, i in zip(*p.max(-1))][1:]
    assert "1 empty line(s)" in cap.err


# -- CTC (G2P) ---------------------------------------------------------------------------------------------
PHONES = {"a": "AA1", "b": "B", "c": "K", "d": "D", "e": "EH0", "o": "OW2", "s": "S", "x": "K S"}


@pytest.fixture(scope="module")
def g2p(tmp_path_factory):
    """Trained with stress digits kept; words are upper-case in the file (CMUdict's format)."""
    L.seed_everything(0)
    rng = random.Random(2)
    words = sorted({"".join(rng.choice("abcdeosx") for _ in range(rng.randint(2, 5))) for _ in range(400)})
    path = tmp_path_factory.mktemp("dict") / "tiny.dict"
    path.write_text("".join(f"{w.upper()}  {' '.join(PHONES[c] for c in w)}\n" for w in words))
    dm = G2PDataModule(str(path), stress=True, batch_size=16, eval_batch_size=7)
    assert len(dm.pairs["test"]) >= 10
    task = CTCTask(vocab_size=dm.vocab_size, num_labels=dm.num_labels, embedding_size=8, hidden_size=12,
                   num_layers=1, lr=0.02)
    trainer = _trainer(max_epochs=3)
    trainer.fit(task, datamodule=dm)
    per = trainer.test(task, datamodule=dm, verbose=False)[0]["test_per"]
    expected = []
    with torch.no_grad():
        for b in dm.test_dataloader():
            expected += [dm.decode_labels(h) for h in task.eval().decode(*task(b))]
    folder = seqzoo.save_pretrained(task, tmp_path_factory.mktemp("ctc") / "model")
    return {"dm": dm, "folder": folder, "per": per, "expected": expected, "path": path}


def test_ctc_transcribes_as_the_task_did_and_evaluate_gives_its_per(g2p):
    dm, expected = g2p["dm"], g2p["expected"]
    assert 0.0 < g2p["per"] < 0.8, g2p["per"]
    net = seqzoo.from_pretrained(g2p["folder"])
    words = [w for w, _ in dm.pairs["test"]]
    assert net.transcribe(words, batch_size=4) == expected
    assert net.transcribe([w.upper() for w in words]) == expected  # lower-cased: the vocab is
    assert net.transcribe([""]) == [[]]
    beam = net.transcribe(words, beam_size=4)
    assert len(beam) == len(words) and all(set(b) <= set(net.labels[1:]) for b in beam)
    r = run_evaluate(str(g2p["folder"]), str(g2p["path"]), "test")
    assert r["per"] == pytest.approx(g2p["per"], abs=1e-6) and r["words"] == len(words) and r["beam_size"] == 1
    refs = [ps for _, ps in dm.pairs["test"]]
    assert r["wer"] == pytest.approx(sum(h != ref for h, ref in zip(expected, refs)) / len(refs))


def test_seqzoo_predict_transcribes_each_word(g2p, monkeypatch, capsys):
    words = [w for w, _ in g2p["dm"].pairs["test"][:3]]
    _stdin(monkeypatch, f"{words[0]}\n{words[1]} {words[2].upper()}\n\n")
    assert main(["predict", str(g2p["folder"])]) == 0
    e = [" ".join(x) for x in g2p["expected"][:3]]
    cap = capsys.readouterr()
    assert cap.out.splitlines() == [e[0], f"{e[1]} | {e[2]}", ""] and cap.err == ""
    _stdin(monkeypatch, f"{words[0]} z9\n")  # z and 9 are not among the training letters
    assert main(["predict", str(g2p["folder"])]) == 0
    assert "1 word(s) have characters the model does not know, read as <unk> (first: 'z9')" in capsys.readouterr().err


# -- language models: each line scored on its own ----------------------------------------------------------
def _stepwise_logprob(lm, line):
    """Token by token, the state carried: an independent path to the line's log-probability."""
    ids = [lm.vocab.eos_id] + lm.vocab.encode(line)
    total, state = 0.0, None
    with torch.no_grad():
        for a, b in zip(ids, ids[1:]):
            logits, state = lm(torch.tensor([[a]]), state)
            total += float(logits[0, -1].log_softmax(-1)[b])
    return total


@pytest.mark.parametrize("name", ["lstm_lm_2x200", "window_lm_5gram_h200"])
def test_score_lines_of_a_neural_lm_match_a_stepwise_pass_and_ignore_padding(name):
    from tiny_models import tiny_model

    from seqzoo.lm import score_lines
    lm = tiny_model(name)
    lines = ["w1 w2 w3 w4 w5 w6", "w7", "w2 nope w9", ""]
    one = score_lines(lm, lines, batch_size=1)
    batched = score_lines(lm, lines, batch_size=4)  # the padding after short lines is never seen
    assert [r["logprob"] for r in batched] == pytest.approx([r["logprob"] for r in one], abs=1e-5)
    assert [r["tokens"] for r in one] == [7, 2, 4, 1] and [r["oov"] for r in one] == [0, 0, 1, 0]
    for line, r in zip(lines, one):
        assert r["logprob"] == pytest.approx(_stepwise_logprob(lm, line), abs=1e-4)


def test_score_lines_of_an_ngram_lm_is_its_chain_of_logprobs():
    from tiny_models import tiny_model

    from seqzoo.lm import score_lines
    lm = tiny_model("kn3")
    lines = ["the cat sat on the mat", "a zebra saw the dog"]
    for line, r in zip(lines, score_lines(lm, lines)):
        words = line.split() + ["</s>"]
        chain = sum(lm.logprob(w, ["<s>", *words[:i]]) for i, w in enumerate(words))
        assert r["logprob"] == pytest.approx(chain) and r["tokens"] == len(words)
    assert [r["oov"] for r in score_lines(lm, lines)] == [0, 1]
    lm.smoothing = "stupid"
    with pytest.raises(ValueError, match="not probabilities"):
        score_lines(lm, lines)


def test_seqzoo_predict_scores_each_line_with_a_language_model(tmp_path, monkeypatch, capsys):
    import math

    from tiny_models import tiny_model

    from seqzoo.lm import score_lines
    lm = tiny_model("lstm_lm_2x200")
    folder = seqzoo.save_pretrained(lm, tmp_path / "lm", vocab=lm.vocab)
    _stdin(monkeypatch, "w1 w2 w3\nw4\n")
    assert main(["predict", str(folder)]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    want = score_lines(lm, ["w1 w2 w3", "w4"])
    assert [(float(lp), int(n), int(o)) for lp, n, o, _ in rows] == \
        [(pytest.approx(w["logprob"], abs=1e-4), w["tokens"], w["oov"]) for w in want]
    assert float(rows[0][3]) == pytest.approx(math.exp(-want[0]["logprob"] / 4), abs=0.01)


def test_seqzoo_predict_scores_each_line_with_an_ngram_lm(tmp_path, monkeypatch, capsys):
    import math

    from tiny_models import tiny_model

    from seqzoo.lm import score_lines
    lm = tiny_model("kn3")
    folder = seqzoo.save_pretrained(lm, tmp_path / "kn3")
    lines = ["the cat sat on the mat", "The zebra sat .", ""]
    _stdin(monkeypatch, "\n".join(lines) + "\n")
    assert main(["predict", str(folder)]) == 0  # an NGramLM has no .to(device): it runs as it is
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    want = score_lines(lm, lines)
    assert [(float(lp), int(n), int(o)) for lp, n, o, _ in rows] == \
        [(pytest.approx(w["logprob"], abs=1e-4), w["tokens"], w["oov"]) for w in want] == [
        (pytest.approx(lm.score_sentences([line.split()])[0], abs=1e-4), len(line.split()) + 1, o)
        for line, o in zip(lines, (0, 3, 0))]
    assert [float(r[3]) for r in rows] == [pytest.approx(math.exp(-w["logprob"] / w["tokens"]), abs=0.01)
                                           for w in want]


# -- wrong input -------------------------------------------------------------------------------------------
def test_predict_on_a_translation_model_or_bad_flags_is_one_line(tmp_path, monkeypatch, capsys):
    from tiny_models import tiny_model
    mt = tiny_model("seq2seq_gru_bahdanau").save_pretrained(tmp_path / "mt")
    clf = tiny_model("bilstm_max_classifier_1x200").save_pretrained(tmp_path / "clf")
    gpu, no_gpu = ("cuda:99", "this machine has") if torch.cuda.is_available() else ("cuda", "CUDA is not available")
    for argv, msg in (([str(mt)], "translate with seqzoo translate"), ([str(mt), "--beam", "0"], "--beam must be >= 1"),
                      ([str(clf), "--beam", "3"], "--beam applies to ctc models"),
                      ([str(clf), "--conll"], "--conll applies to tagger models"),
                      ([str(mt), "--device", "tpu"], "--device tpu: unknown device"),
                      ([str(mt), "--device", gpu], f"--device {gpu}: {no_gpu}")):
        _stdin(monkeypatch, "a b\n")
        assert main(["predict", *argv]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err


def test_tag_without_vocabularies_names_what_is_missing():
    net = seqzoo.create_model("bilstm_tagger_2x200", vocab_size=10, num_tags=3)
    with pytest.raises(ValueError, match="has no vocab or tags: load it with seqzoo.from_pretrained"):
        net.tag([["a"]])


# -- model cards ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family,recipe,run_name,split", [("tagger", "ud_ewt", "bilstm_char", "test"),
                                                          ("classifier", "sst2", "bilstm_max_glove", "valid"),
                                                          ("g2p", "cmudict_g2p", "bilstm_ctc_2x256", "test")])
def test_the_cards_evaluate_command_gives_back_its_figure(family, recipe, run_name, split, request, capsys):
    """The `seqzoo evaluate` command a card prints (its flags: --split valid for SST-2, --data-dir), run on the
    card's model and corpus (here: the tiny trained model and its data), gives the figure in the card's table."""
    import json
    import re
    import shlex
    from pathlib import Path

    from seqzoo.cards import card_for_run
    f = request.getfixturevalue(family)
    data = {"tagger": "treebank", "classifier": "data", "g2p": "path"}[family]
    metric = {"tagger": "accuracy", "classifier": "accuracy", "g2p": "per"}[family]
    value = float(f[metric])
    run = {"name": run_name, "epochs": 1, "wall_seconds": 1.0, "device": "cpu", "export_dir": str(f["folder"]),
           "metrics": {f"{split}_{metric}": value}}
    name, card = card_for_run(Path("recipes") / recipe, run)
    command = re.search(r"`(seqzoo evaluate [^`]+)`", card).group(1)
    label = {"test": "test", "valid": "validation"}[split]
    shown = re.search(rf"\| {label} \| ([0-9.]+) \|", card).group(1)
    argv = shlex.split(command)[1:]
    argv[argv.index(name)] = str(f["folder"])
    argv[argv.index("--dataset") + 1] = str(f[data])
    if "DATA_DIR" in argv:
        argv[argv.index("DATA_DIR")] = str(f[data])
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["split"] == split and f"{r[metric]:.4f}" == shown, (command, r, shown)


# -- fine-tuning ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family,data,metric", [("tagger", "treebank", "accuracy"), ("classifier", "data", "accuracy"),
                                               ("g2p", "path", "per")])
def test_finetune_improves_a_partly_trained_model_and_keeps_its_vocabularies(family, data, metric, request,
                                                                              tmp_path, capsys):
    """seqzoo finetune --data: the partly trained model gets better on its validation split, its ids keep their
    meaning (the saved vocabularies are the base's), and the new checkpoint predicts and evaluates like any other."""
    import json
    f = request.getfixturevalue(family)
    base = seqzoo.from_pretrained(f["folder"])
    out = tmp_path / "tuned"
    assert main(["finetune", str(f["folder"]), "--data", str(f[data]), "--out", str(out), "--epochs", "4",
                 "--lr", "0.01", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    before, after = r["before"][f"valid_{metric}"], r["after"][f"valid_{metric}"]
    assert (after > before) if metric == "accuracy" else (after < before), r
    tuned = seqzoo.from_pretrained(out)
    for name in ("vocab", "char_vocab", "tags", "labels"):
        assert getattr(tuned, name, None) == getattr(base, name, None), name
    assert not torch.equal(tuned.embed.weight, base.embed.weight)  # trained, not a copy
    from huggingface_hub.repocard import metadata_load
    meta, card = metadata_load(out / "README.md"), (out / "README.md").read_text()
    assert meta["base_model"] == str(f["folder"]) and (out / "finetune.json").is_file()
    assert {r["dataset"]["name"] for r in meta["model-index"][0]["results"]} == {str(f[data])}  # no null dataset
    assert f"--data {f[data]}" in card and "--epochs 4" in card and "--max-steps" not in card
    split = "valid" if family == "classifier" else "test"
    ev = run_evaluate(str(out), str(f[data]), split)
    assert ev[metric] == pytest.approx(r["after"][f"{split}_{metric}"], abs=1e-6)


def test_finetune_data_with_an_unknown_tag_or_a_language_model_is_one_line(tagger, tmp_path, capsys):
    tb = tmp_path / "tb"
    tb.mkdir()
    for split in ("train", "dev", "test"):
        text = (tagger["treebank"] / f"xx_tiny-ud-{split}.conllu").read_text().replace("\tADV\t", "\tADVB\t")
        (tb / f"xx_tiny-ud-{split}.conllu").write_text(text)
    assert main(["finetune", str(tagger["folder"]), "--data", str(tb), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "upos tag 'ADVB', which the model does not know" in err[0], err
    assert not (tmp_path / "o").exists()
    assert main(["finetune", str(tagger["folder"]), "--data", str(tb), "--train", "x.txt"]) == 1
    assert "give one of --train" in capsys.readouterr().err


def test_evaluate_without_dataset_reads_the_familys_corpus(tagger, classifier, monkeypatch, capsys):
    monkeypatch.delenv("SEQZOO_DATA", raising=False)
    for f, corpus in ((tagger, "ud-english-ewt"), (classifier, "sst2")):
        assert main(["evaluate", str(f["folder"])]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"dataset '{corpus}' needs data_dir (or $SEQZOO_DATA)" in err[0], err
