"""seqzoo.finetune: vocabulary extension that keeps the model's predictions, and fine-tuning that helps."""
import json

import pytest
import torch

import seqzoo
from seqzoo.cli import main
from seqzoo.data.vocab import Vocab
from seqzoo.finetune import extend_vocab, finetune_lm, grow_vocab, oov_rate

OLD = ["the cat sat on the mat", "a dog sat on a log", "the dog saw the cat"]
NEW = ["the fox ran to the den", "a fox saw the hen", "the hen ran to a den", "the cat saw a fox"]


def test_extend_vocab_keeps_ids_and_adds_frequent_words_first():
    vocab = Vocab.build([s.split() for s in OLD])
    grown, new = extend_vocab(vocab, NEW, min_freq=2)
    assert grown.itos[:len(vocab)] == vocab.itos
    assert new == ["fox", "den", "hen", "ran", "to"]  # fox 3x; the others 2x, alphabetical; none of once-seen
    assert grown.itos[len(vocab):] == new
    assert extend_vocab(vocab, NEW, min_freq=2, max_new=2)[1] == ["fox", "den"]
    tokens = sum(len(s.split()) for s in NEW)
    assert oov_rate(vocab, NEW) == pytest.approx(sum(w not in vocab for s in NEW for w in s.split()) / tokens)
    assert oov_rate(grown, NEW) == 0.0 and oov_rate(vocab, NEW) > 0.4


@pytest.mark.parametrize("tied", [False, True])
def test_grown_model_predicts_what_the_old_one_did(tied):
    torch.manual_seed(0)
    net = seqzoo.create_model("lstm_lm_2x200", vocab_size=20, embedding_size=12, hidden_size=12,
                              tie_weights=tied).eval()
    grown = grow_vocab(net, 25).eval()
    x = torch.randint(0, 20, (2, 9))
    with torch.no_grad():
        p_old = net(x)[0].softmax(-1)
        p_new = grown(x)[0].softmax(-1)
    assert torch.allclose(p_new[..., 1:20], p_old[..., 1:20], atol=1e-6)  # every known word but <unk>
    # <unk>'s mass is shared between <unk> and the 5 new words, equally
    assert torch.allclose(p_new[..., [0, *range(20, 25)]].sum(-1), p_old[..., 0], atol=1e-6)
    assert torch.allclose(p_new[..., 20], p_new[..., 0], atol=1e-7)
    assert tied == (grown.decoder.weight is grown.embed.weight)
    with pytest.raises(ValueError, match="smaller than the vocab_size"):
        grow_vocab(net, 10)
    if tied:  # a new word's own vector would also be its softmax row: what the model predicts would change
        with pytest.raises(ValueError, match="cannot start the new words of a model with tied weights"):
            grow_vocab(net, 25, vectors=object(), vocab=None)


def _pretrained(tmp_path):
    """A small LSTM LM trained a little on OLD, saved as a seqzoo folder."""
    corpus = tmp_path / "old"
    corpus.mkdir()
    for split in ("train", "valid", "test"):
        (corpus / f"{split}.txt").write_text("\n".join(OLD * 30) + "\n")
    assert main(["fit", "--config", "recipes/ptb/lstm_small.yaml", "--data.dataset", str(corpus),
                 "--data.batch_size", "4", "--data.bptt", "8", "--model.init_args.hidden_size", "16",
                 "--model.init_args.embedding_size", "16", "--trainer.max_epochs", "2",
                 "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.logger", "false",
                 "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]) == 0
    ckpt = next((tmp_path / "run").rglob("*.ckpt"))
    from seqzoo.hub import convert_checkpoint
    return convert_checkpoint(ckpt, tmp_path / "pretrained")


def test_finetune_lowers_perplexity_on_the_new_corpus_and_saves_a_checkpoint(tmp_path, monkeypatch):
    from pathlib import Path
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    base = _pretrained(tmp_path)
    (tmp_path / "new_train.txt").write_text("\n".join(NEW * 40) + "\n")
    (tmp_path / "new_valid.txt").write_text("\n".join(NEW[::-1] * 3) + "\n")
    r = finetune_lm(str(base), tmp_path / "new_train.txt", tmp_path / "new_valid.txt", out=tmp_path / "tuned",
                    extend=True, epochs=3, lr=5.0, batch_size=4, bptt=8)
    assert r["new_words"] == 5 and r["oov"]["valid_before"] > 0.4 and r["oov"]["valid_after"] == 0.0
    assert r["after"]["valid_perplexity"] < r["before"]["valid_perplexity"] / 2, r
    tuned = seqzoo.from_pretrained(r["out"])
    assert len(tuned.vocab) == tuned.config.vocab_size == r["vocab_size"] and tuned.vocab.itos[-5:][0] == "fox"
    from huggingface_hub.repocard import metadata_load
    meta = metadata_load(Path(r["out"]) / "README.md")
    assert meta["base_model"] == str(base)
    values = {x["metrics"][0]["name"]: x["metrics"][0]["value"] for x in meta["model-index"][0]["results"]}
    assert values["validation perplexity"] == pytest.approx(r["after"]["valid_perplexity"], abs=0.005)
    assert json.loads((Path(r["out"]) / "finetune.json").read_text())["before"] == r["before"]
    # --valid without --test: the valid text is not reported again as a test score, here or on the card
    assert "test_perplexity" not in r["before"] and "test_perplexity" not in r["after"]
    assert not any("test" in name for name in values), values
    # with --test: scored before and after, and named in the card's command
    (tmp_path / "new_test.txt").write_text("\n".join(NEW * 2) + "\n")
    r = finetune_lm(str(base), tmp_path / "new_train.txt", tmp_path / "new_valid.txt", tmp_path / "new_test.txt",
                    out=tmp_path / "tuned2", extend=True, epochs=1, lr=5.0, batch_size=4, bptt=8, max_steps=3)
    assert r["after"]["test_perplexity"] < r["before"]["test_perplexity"], r
    card = (Path(r["out"]) / "README.md").read_text()
    assert f"--test {tmp_path / 'new_test.txt'}" in card
    # --max-steps stopped inside the epoch: the card and finetune.json say how much of it ran
    assert 0 < r["epochs"] < 1 and f"{r['epochs']} epochs" in card, r["epochs"]


def test_finetune_output_folder_default_and_home(tmp_path, monkeypatch):
    """--out ~/x is the home folder's x (finetune.json too); without --out the default runs/finetune/<base> is
    checked before training, so fine-tuning runs/finetune/<base> again cannot replace its own base; a .ckpt
    base's default folder drops the pickle suffix."""
    from pathlib import Path
    from seqzoo.finetune import _check_run
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    base = Path("runs/finetune/lm")
    seqzoo.save_pretrained(seqzoo.create_model("lstm_lm_2x200", vocab_size=20, embedding_size=8, hidden_size=8),
                           base, vocab=Vocab.build([[f"w{i}" for i in range(16)]]))
    (tmp_path / "train.txt").write_text("\n".join(f"w{i} w{i + 1} w{i + 2}" for i in range(10)) * 4 + "\n")
    with pytest.raises(ValueError, match="is the model being fine-tuned"):
        finetune_lm(str(base), tmp_path / "train.txt", epochs=1, max_steps=1)
    with pytest.raises(ValueError, match="is the model being fine-tuned"):
        finetune_lm(f"{tmp_path}/runs/../runs/finetune/lm/", tmp_path / "train.txt", out=base, epochs=1)
    r = finetune_lm(str(base), tmp_path / "train.txt", out="~/tuned", epochs=1, max_steps=1, batch_size=2, bptt=4)
    home = tmp_path / "home" / "tuned"
    assert Path(r["out"]).resolve() == home and json.loads((home / "finetune.json").read_text())["out"] == r["out"]
    assert seqzoo.from_pretrained(home).config.vocab_size == 20
    assert _check_run("runs/x/last.ckpt", None, 1, -1, None, 0.5, 1) == tmp_path / "runs/finetune/last"


def test_finetune_cli_errors_are_one_line(tmp_path, capsys, tiny_corpus):
    kn, lm = tmp_path / "kn", tmp_path / "lm"
    assert main(["ngram", "--dataset", str(tiny_corpus), "--save", str(kn)]) == 0
    seqzoo.save_pretrained(seqzoo.create_model("lstm_lm_2x200", vocab_size=20, embedding_size=8, hidden_size=8), lm,
                           vocab=Vocab.build([[f"w{i}" for i in range(16)]]))
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    (tmp_path / "one.txt").write_text("w1 w2 w3\n")
    capsys.readouterr()
    for args, message in [([str(kn), "--train", str(tiny_corpus / "train.txt")], "fine-tunes language models"),
                          ([str(lm), "--train", str(tmp_path / "empty.txt")], "corpus file is empty"),
                          ([str(lm), "--train", str(tmp_path / "latin1.txt")], "not UTF-8"),
                          ([str(lm), "--train", str(tmp_path / "missing.txt")], "corpus file not found"),
                          ([str(lm), "--train", str(tmp_path / "one.txt"), "--out", str(tmp_path / "out")],
                           "one.txt (no --valid given) has 1 line: too few to split")]:
        assert main(["finetune", *args]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_finetune_refuses_flags_that_cannot_work_before_training(tmp_path, capsys):
    """Flags that would hang (--epochs -1 is Lightning's "no limit"), change nothing or write NaN weights, a
    corpus the vocabulary does not cover and an --out that is the model itself or a user's folder: one line each,
    nothing written; the output folder is checked before the (missing) corpus is read, so before any training."""
    lm, user = tmp_path / "lm", tmp_path / "user"
    seqzoo.save_pretrained(seqzoo.create_model("lstm_lm_2x200", vocab_size=20, embedding_size=8, hidden_size=8), lm,
                           vocab=Vocab.build([[f"w{i}" for i in range(16)]]))
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    (tmp_path / "known.txt").write_text("\n".join(f"w{i} w{i + 1} w{i + 2}" for i in range(10)) * 4 + "\n")
    (tmp_path / "foreign.txt").write_text("\n".join(f"x{i} y{i} w1" for i in range(40)) + "\n")
    train, out = ["--train", str(tmp_path / "known.txt")], ["--out", str(tmp_path / "out")]
    missing = ["--train", str(tmp_path / "missing.txt")]
    capsys.readouterr()
    for args, message in [([*train, *out, "--epochs", "-1"], "--epochs must be >= 1, got -1"),
                          ([*train, *out, "--epochs", "0"], "--epochs must be >= 1, got 0"),
                          ([*train, *out, "--max-steps", "0"], "--max-steps must be >= 1 (or -1: no limit), got 0"),
                          ([*train, *out, "--lr", "nan"], "--lr must be a finite number > 0, got nan"),
                          ([*train, *out, "--lr-decay", "-1"], "--lr-decay must be a finite number > 0"),
                          ([*train, *out, "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
                          ([*train, *out, "--test", str(tmp_path / "known.txt")], "--test needs --valid"),
                          ([*missing, "--out", str(lm)], "is the model being fine-tuned"),
                          ([*missing, "--out", str(user)], "is not a seqzoo checkpoint folder"),
                          (["--train", str(tmp_path / "foreign.txt"), *out], "66.7% of the words of")]:
        assert main(["finetune", str(lm), *args]) == 1, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (args, err)
    assert main(["finetune", str(lm), *train, *out, "--lr", "1e38", "--epochs", "1"]) == 1  # trains, then refuses
    err = capsys.readouterr().err
    assert "fine-tuning diverged" in err.strip().splitlines()[-1] and "Traceback" not in err, err[-500:]
    assert not (tmp_path / "out").exists() and (user / "notes.txt").read_text() == "mine"
    assert seqzoo.from_pretrained(lm).config.vocab_size == 20


def test_finetune_translation_keeps_tokenizers_and_improves_bleu(tmp_path, capsys):
    """A copy model fine-tuned to reverse: same tokenizers, clearly higher BLEU on the new task."""
    import sys
    from pathlib import Path
    import lightning as L
    sys.path.insert(0, str(Path(__file__).parent / "models"))
    from test_seq2seq import _model, _synthetic, _trainer
    from seqzoo.data.translation import TranslationDataModule
    L.seed_everything(0)
    copy = _synthetic(tmp_path / "copy", "copy", n_train=800)
    dm = TranslationDataModule(str(copy), "src", "tgt", tokenization="word", vocab_size=50, min_frequency=1,
                               batch_size=32)
    model = _model(dm)
    trainer = _trainer(2, gradient_clip_val=1.0, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    base = seqzoo.save_pretrained(model, tmp_path / "copy_model")
    trainer.save_checkpoint(tmp_path / "copy.ckpt")
    rev = _synthetic(tmp_path / "reverse", "reverse", n_train=800, seed=1)
    out = tmp_path / "reverse_model"
    assert main(["finetune", str(base), "--src", str(rev / "train.src"), "--tgt", str(rev / "train.tgt"),
                 "--valid-src", str(rev / "valid.src"), "--valid-tgt", str(rev / "valid.tgt"), "--epochs", "3",
                 "--lr", "3e-3", "--batch-size", "32", "--out", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["after"]["valid_bleu"] > r["before"]["valid_bleu"] + 20, r
    assert r["unk"] == {"src": 0.0, "tgt": 0.0} and r["train_pairs"] == 800
    tuned = seqzoo.from_pretrained(out)
    assert tuned.src_tokenizer.get_vocab() == model.tokenizer("src").get_vocab()
    from huggingface_hub.repocard import metadata_load
    assert metadata_load(out / "README.md")["base_model"] == str(base)
    assert main(["finetune", str(base), "--src", str(rev / "train.src")]) == 1
    assert "needs both --src and --tgt" in capsys.readouterr().err
    # a Lightning .ckpt (a pickle) only with --trust-pickle; its tokenizers come from its hyperparameters
    pairs = ["--src", str(rev / "train.src"), "--tgt", str(rev / "train.tgt"), "--max-steps", "1"]
    assert main(["finetune", str(tmp_path / "copy.ckpt"), *pairs, "--out", str(tmp_path / "o")]) == 1
    assert "--trust-pickle" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert main(["finetune", str(tmp_path / "copy.ckpt"), *pairs, "--trust-pickle", "--out", str(tmp_path / "o")]) == 0
    assert seqzoo.from_pretrained(tmp_path / "o").tgt_tokenizer.get_vocab() == model.tokenizer("tgt").get_vocab()
    assert "--max-steps 1" in (tmp_path / "o" / "README.md").read_text()  # the card's command is the one run
