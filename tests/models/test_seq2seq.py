"""Seq2seq translation models: attention masks, padding invariance, learning to copy and to reverse,
checkpoints that load with weights_only=True, the translate verb and the recipe configs."""
import io
import random
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

import seqzoo
from seqzoo.data.translation import PAD_ID, TranslationDataModule
from seqzoo.decoding import translate_main
from seqzoo.models.seq2seq import ATTENTIONS, Attention, Seq2Seq, Seq2SeqConfig, Seq2SeqNet, translation_cli

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", ["bahdanau", "luong_dot", "luong_general"])
def test_attention_sums_to_one_and_ignores_padding(kind):
    torch.manual_seed(0)
    att = Attention(kind, 6)
    memory = torch.randn(3, 5, 6) * 3
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    ctx, w = att(torch.randn(3, 6), att.keys(memory), memory, mask)
    assert torch.allclose(w.sum(-1), torch.ones(3)) and (w[~mask] == 0).all() and (w[mask] > 0).all()
    assert torch.allclose(ctx, (w.unsqueeze(-1) * memory).sum(1), atol=1e-6)
    # what sits in the padding cannot change the context
    noisy, q = memory.clone(), torch.randn(3, 6)
    noisy[~mask] = 1e3
    assert torch.allclose(att(q, att.keys(noisy), noisy, mask)[0], att(q, att.keys(memory), memory, mask)[0],
                          atol=1e-5)


def _padded(lengths, vocab=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.full((len(lengths), max(lengths)), PAD_ID, dtype=torch.long)
    for i, n in enumerate(lengths):
        src[i, :n] = torch.randint(4, vocab, (n,), generator=g)
    return src, torch.tensor(lengths)


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padding_invariance_and_attention_over_source(attention, cell):
    torch.manual_seed(0)
    net = Seq2SeqNet(src_vocab_size=20, tgt_vocab_size=15, cell=cell, attention=attention, embedding_size=8,
                     hidden_size=10, num_layers=2, bidirectional=True).eval()
    src, lengths = _padded([6, 3, 4])
    tgt = torch.randint(4, 15, (3, 5))
    logits, attn = net(src, lengths, tgt, return_attention=True)
    assert logits.shape == (3, 5, 15)
    for i, n in enumerate(lengths.tolist()):  # a sentence alone == the same sentence padded in a batch
        alone = net(src[i:i + 1, :n], lengths[i:i + 1], tgt[i:i + 1])
        assert torch.allclose(alone, logits[i:i + 1], atol=1e-5)
    if attention == "none":
        assert attn is None
    else:
        assert attn.shape == (3, 5, 6) and torch.allclose(attn.sum(-1), torch.ones(3, 5), atol=1e-6)
        assert (attn[1, :, 3:] == 0).all() and (attn[2, :, 4:] == 0).all()


def test_bad_config_values():
    with pytest.raises(ValueError, match="unknown attention 'luong'; valid: none, bahdanau, luong_dot, luong_general"):
        Seq2SeqConfig(attention="luong")
    with pytest.raises(ValueError, match="unknown cell 'rnn'; valid: lstm, gru"):
        Seq2SeqConfig(cell="rnn")
    with pytest.raises(ValueError, match="even hidden_size"):
        Seq2SeqConfig(hidden_size=7)
    with pytest.raises(ValueError, match="teacher_forcing must be in"):
        Seq2Seq(teacher_forcing=1.5)


@pytest.mark.parametrize("name", seqzoo.list_models("seq2seq_*"))
def test_registered_variants_forward_backward(name):
    m = seqzoo.create_model(name, vocab_size=30, embedding_size=8, hidden_size=8)
    src, lengths = _padded([4, 2], vocab=30)
    logits = m(src, lengths, torch.randint(4, 30, (2, 3)), teacher_forcing=0.5)
    assert logits.shape == (2, 3, 30)
    logits.logsumexp(-1).mean().backward()
    assert all(p.grad is not None for p in m.parameters())


# -- learning -------------------------------------------------------------------------------------
def _synthetic(folder: Path, task: str, n_train=2000, seed=0) -> Path:
    rng, syms = random.Random(seed), "a b c d e f g h".split()
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("valid", 64), ("test", 200)):
        src = [" ".join(rng.choice(syms) for _ in range(rng.randint(3, 7))) for _ in range(n)]
        tgt = [s if task == "copy" else " ".join(s.split()[::-1]) for s in src]
        (folder / f"{split}.src").write_text("\n".join(src) + "\n")
        (folder / f"{split}.tgt").write_text("\n".join(tgt) + "\n")
    return folder


def _trainer(epochs, **kw):
    return L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, **kw)


def _model(dm, **kw):
    args = dict(cell="gru", attention="bahdanau", embedding_size=32, hidden_size=64, dropout=0.0,
                label_smoothing=0.0, lr=3e-3)
    return Seq2Seq(dm.src_vocab_size, dm.tgt_vocab_size, src_tokenizer=dm.src_tokenizer_json,
                   tgt_tokenizer=dm.tgt_tokenizer_json, **{**args, **kw})


@pytest.mark.parametrize("task", ["copy", "reverse"])
def test_tiny_model_learns_to_copy_and_reverse(tmp_path, task):
    L.seed_everything(0)
    d = _synthetic(tmp_path / task, task)
    dm = TranslationDataModule(str(d), "src", "tgt", tokenization="word", vocab_size=50, min_frequency=1,
                               batch_size=32)
    model = _model(dm)
    before = _trainer(1).validate(model, datamodule=dm, verbose=False)[0]
    trainer = _trainer(3, gradient_clip_val=1.0, limit_val_batches=1)
    trainer.fit(model, datamodule=dm)
    test = trainer.test(model, datamodule=dm, verbose=False)[0]
    src = (d / "test.src").read_text().splitlines()
    ref = (d / "test.tgt").read_text().splitlines()
    hyp = [h[0] for h in model.translate(src, beam_size=3)]
    acc = sum(h == r for h, r in zip(hyp, ref)) / len(ref)
    assert acc > 0.9, (acc, hyp[:5], ref[:5])
    assert before["valid_bleu"] < 20 and test["test_bleu"] > 90 and test["test_chrf"] > 90, (before, test)
    assert test["test_loss"] < before["valid_loss"] / 5


@pytest.mark.parametrize("attention,cell", [("luong_general", "lstm"), ("luong_dot", "gru")])
def test_luong_attention_learns_to_reverse_where_no_attention_cannot(tmp_path, attention, cell):
    """Reversal needs the source position by position: Luong attention (input feeding, output from
    tanh(W [h; c])) learns it in 3 epochs; the same decoder without attention stays far behind."""
    d = _synthetic(tmp_path / "reverse", "reverse")
    scores = {}
    for kind in (attention, "none"):
        L.seed_everything(0)
        dm = TranslationDataModule(str(d), "src", "tgt", tokenization="word", vocab_size=50, min_frequency=1,
                                   batch_size=32)
        model = _model(dm, attention=kind, cell=cell)
        trainer = _trainer(3, gradient_clip_val=1.0, limit_val_batches=1)
        trainer.fit(model, datamodule=dm)
        scores[kind] = trainer.test(model, datamodule=dm, verbose=False)[0]["test_bleu"]
    assert scores[attention] > 90 and scores["none"] < scores[attention] - 20, scores


def test_checkpoint_loads_weights_only_and_translate_verb(tmp_path, monkeypatch, capsys):
    L.seed_everything(0)
    d = _synthetic(tmp_path / "data", "copy", n_train=64)
    dm = TranslationDataModule(str(d), "src", "tgt", tokenization="bpe", vocab_size=40, min_frequency=1,
                               batch_size=16)
    model = Seq2Seq(dm.src_vocab_size, dm.tgt_vocab_size, cell="lstm", attention="luong_general", embedding_size=8,
                    hidden_size=8, num_layers=2)  # tokenizers not passed: taken from the datamodule at fit time
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm)
    ckpt = tmp_path / "m.ckpt"
    trainer.save_checkpoint(ckpt)
    raw = torch.load(ckpt, weights_only=True)  # no pickled objects: plain containers, tensors, str
    assert isinstance(raw["hyper_parameters"]["tgt_tokenizer"], str)
    loaded = Seq2Seq.from_checkpoint(ckpt)
    lines = ["a b c", "", "h g f e d c b"]
    assert loaded.translate(lines, beam_size=2) == model.translate(lines, beam_size=2)
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    with pytest.raises(ValueError, match="pass --trust-pickle"):
        translate_main([str(ckpt), "--beam", "2"])
    assert translate_main([str(ckpt), "--beam", "2", "--trust-pickle"]) == 0
    assert capsys.readouterr().out.split("\n")[:3] == [h[0] for h in model.translate(lines, beam_size=2)]
    # the .ckpt converted to a seqzoo folder (safetensors + both tokenizers): no pickle, same translations
    from seqzoo.hub import convert_checkpoint
    folder = convert_checkpoint(ckpt, tmp_path / "folder")
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "src_tokenizer.json",
                                                  "tgt_tokenizer.json", "README.md"}
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    assert translate_main([str(folder), "--beam", "2"]) == 0
    assert capsys.readouterr().out.split("\n")[:3] == [h[0] for h in model.translate(lines, beam_size=2)]
    torch.save({"state_dict": {}, "hyper_parameters": {"cell": "lstm"}}, tmp_path / "lm.ckpt")
    with pytest.raises(ValueError, match="is not a Seq2Seq checkpoint"):
        Seq2Seq.from_checkpoint(tmp_path / "lm.ckpt")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        Seq2Seq.from_checkpoint(tmp_path / "missing.ckpt")


@pytest.mark.parametrize("config", sorted(p.name for p in (REPO / "recipes" / "multi30k").glob("*.yaml")
                                          if p.name != "recipe.yaml"))
def test_recipe_configs_instantiate(tmp_path, config):
    d = _synthetic(tmp_path / "data", "copy", n_train=40)
    cli = translation_cli(["--config", str(REPO / "recipes" / "multi30k" / config), "--data.dataset", str(d),
                           "--data.src_lang", "src", "--data.tgt_lang", "tgt", "--data.vocab_size", "60",
                           "--data.min_frequency", "1", "--trainer.default_root_dir", str(tmp_path)], run=False)
    assert isinstance(cli.model, Seq2Seq) and isinstance(cli.datamodule, TranslationDataModule)
    assert cli.model.hparams.tgt_vocab_size == cli.datamodule.tgt_vocab_size
    assert cli.model.hparams.tgt_tokenizer == cli.datamodule.tgt_tokenizer_json


def test_reproduce_retest_decodes_the_trained_model_greedily(tmp_path, capsys):
    """A ``kind: retest`` recipe row tests the exported model of another row with other test-time settings
    (greedy instead of beam 3): same weights and tokenizers, so the same test loss; its BLEU is greedy BLEU."""
    import json

    import yaml
    from torchmetrics.text import SacreBLEUScore

    from seqzoo.cli import main
    d = _synthetic(tmp_path / "data", "reverse", n_train=600)
    folder = tmp_path / "recipe"
    folder.mkdir()
    (folder / "s2s.yaml").write_text(yaml.safe_dump({
        "seed_everything": 0,
        "trainer": {"max_epochs": 2, "enable_progress_bar": False, "enable_model_summary": False,
                    "default_root_dir": str(tmp_path / "runs")},
        "model": {"class_path": "seqzoo.models.seq2seq.Seq2Seq",
                  "init_args": {"embedding_size": 16, "hidden_size": 32, "lr": 0.01, "beam_size": 3}},
        "data": {"dataset": str(d), "src_lang": "src", "tgt_lang": "tgt", "tokenization": "word",
                 "vocab_size": 50, "min_frequency": 1, "batch_size": 32}}))
    runs = [{"name": "s2s", "config": "s2s.yaml"},
            {"name": "s2s_greedy", "kind": "retest", "of": "s2s", "overrides": {"model.init_args.beam_size": 1}}]
    (folder / "recipe.yaml").write_text(yaml.safe_dump({"title": "t", "metrics": ["test_bleu"], "runs": runs}))
    assert main(["reproduce", str(folder), "--only", "s2s_greedy"]) != 0
    assert "error: run 's2s' has no trained model here (not run): train it first" in capsys.readouterr().err
    assert main(["reproduce", str(folder)]) == 0
    by_name = {r["name"]: r for r in json.loads((folder / "results.json").read_text())["runs"]}
    beam, greedy = by_name["s2s"], by_name["s2s_greedy"]
    assert greedy["retest_of"] == "s2s" and greedy["epochs"] == beam["epochs"] == 2
    assert greedy["metrics"]["test_loss"] == pytest.approx(beam["metrics"]["test_loss"], rel=1e-6)
    model = Seq2Seq.from_net(seqzoo.from_pretrained(beam["export_dir"]))
    src, ref = (d / "test.src").read_text().splitlines(), (d / "test.tgt").read_text().splitlines()
    bleu = float(SacreBLEUScore()([h[0] for h in model.translate(src, beam_size=1)], [[r] for r in ref])) * 100
    assert greedy["metrics"]["test_bleu"] == pytest.approx(bleu, abs=1e-3)
    assert 0 < greedy["metrics"]["test_bleu"] < 100
    assert "| s2s_greedy |" in (folder / "results.md").read_text()


def test_history_records_each_epochs_own_bleu(tmp_path):
    """The recipe runner's per-epoch history holds the BLEU of that epoch (logged in the module's
    on_validation_epoch_end), not the previous epoch's."""
    from seqzoo.recipes import History
    L.seed_everything(0)
    d = _synthetic(tmp_path / "data", "copy", n_train=200)
    dm = TranslationDataModule(str(d), "src", "tgt", tokenization="word", vocab_size=50, min_frequency=1,
                               batch_size=32)
    history, seen = History(), []

    class Spy(L.Callback):
        def on_validation_end(self, trainer, pl_module):
            seen.append(float(trainer.callback_metrics["valid_bleu"]))

    _trainer(2, callbacks=[history, Spy()], num_sanity_val_steps=0).fit(_model(dm), datamodule=dm)
    assert [h["epoch"] for h in history.epochs] == [1, 2]
    assert [h["valid_bleu"] for h in history.epochs] == pytest.approx(seen)


@pytest.mark.parametrize("src,tgt", [("de", "en"), ("en", "de")])
def test_registered_pretrained_translation_model_matches_its_recipe(src, tgt):
    """``seq2seq_gru_bahdanau_256.multi30k_<src>_<tgt>`` names the config that trains it, with the same sizes and
    languages, and its card says how to score it in that direction."""
    import json

    import yaml
    from dataclasses import asdict

    from seqzoo.cards import card_for_run
    from seqzoo.registry import get_pretrained_cfg
    name = f"seq2seq_gru_bahdanau_256.multi30k_{src}_{tgt}"
    cfg = get_pretrained_cfg(name)
    recipe = yaml.safe_load((REPO / cfg.recipe).read_text())
    init = recipe["model"]["init_args"]
    config = asdict(seqzoo.create_model("seq2seq_gru_bahdanau_256").config)
    assert {k: init[k] for k in config if k in init} == {k: config[k] for k in config if k in init}
    assert (recipe["data"]["src_lang"], recipe["data"]["tgt_lang"]) == (src, tgt)
    assert cfg.dataset == "multi30k" and cfg.hf_hub_id == f"seqzoo/{name}"
    results = json.loads((REPO / "recipes" / "multi30k" / "results.json").read_text())
    run = next(r for r in results["runs"] if r["name"] == Path(cfg.recipe).stem)
    card_name, text = card_for_run(REPO / "recipes" / "multi30k", run)
    assert card_name == name
    assert f"`seqzoo evaluate {name} --dataset multi30k --src-lang {src} --tgt-lang {tgt} --beam 5 --json`" in text
    assert f"value: {run['metrics']['test_bleu']:.2f}" in text


def test_evaluate_verb_scores_a_saved_translation_model(tmp_path, capsys):
    """``seqzoo evaluate FOLDER --src-lang --tgt-lang`` gives the BLEU / chrF of translating the split and
    scoring it with sacreBLEU directly; a translation model without languages or with a missing split fails."""
    import json

    from torchmetrics.text import CHRFScore, SacreBLEUScore

    from seqzoo.cli import main, run_evaluate
    L.seed_everything(0)
    d = _synthetic(tmp_path / "data", "reverse", n_train=300)
    dm = TranslationDataModule(str(d), "src", "tgt", tokenization="word", vocab_size=50, min_frequency=1,
                               batch_size=32)
    model = _model(dm)
    _trainer(2, limit_val_batches=1).fit(model, datamodule=dm)
    folder = seqzoo.save_pretrained(model, tmp_path / "model")
    src, ref = (d / "test.src").read_text().splitlines(), (d / "test.tgt").read_text().splitlines()
    hyp = [h[0] for h in model.translate(src, beam_size=3)]
    bleu = float(SacreBLEUScore()(hyp, [[r] for r in ref])) * 100
    chrf = float(CHRFScore()(hyp, [[r] for r in ref])) * 100
    r = run_evaluate(str(folder), str(d), "test", src_lang="src", tgt_lang="tgt", beam_size=3)
    assert r["bleu"] == pytest.approx(bleu, abs=1e-3) and r["chrf"] == pytest.approx(chrf, abs=1e-3)
    assert 0 < r["bleu"] < 100 and r["sentences"] == len(ref) == 200
    assert main(["evaluate", str(folder), "--dataset", str(d), "--src-lang", "src", "--tgt-lang", "tgt",
                 "--beam", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bleu"] == pytest.approx(bleu, abs=1e-3)
    assert main(["evaluate", str(folder), "--dataset", str(d)]) != 0
    assert "is a translation model: pass --src-lang and --tgt-lang" in capsys.readouterr().err
    (d / "valid.src").unlink()
    (d / "valid.tgt").unlink()
    with pytest.raises(ValueError, match="has no split 'valid'; available: train, test"):
        run_evaluate(str(folder), str(d), "valid", src_lang="src", tgt_lang="tgt")
    assert r["oov_rate"] == 0.0
    (d / "test.src").write_text("\n".join(" ".join(s.translate(str.maketrans("abcdefgh", "stuvwxyz")).split()[:-1] + s.split()[-1:]) for s in src) + "\n")
    with pytest.raises(ValueError, match=r"% of the source subwords of .* test \(src\) are <unk>"):
        run_evaluate(str(folder), str(d), "test", src_lang="src", tgt_lang="tgt")  # an unknown "script"
    r = run_evaluate(str(folder), str(d), "test", src_lang="src", tgt_lang="tgt", allow_oov=True)
    assert 0.5 < r["oov_rate"] < 1.0


def test_translate_gives_the_training_mode_back_after_an_error(tmp_path, monkeypatch):
    d = _synthetic(tmp_path / "data", "copy", n_train=32)
    dm = TranslationDataModule(str(d), "src", "tgt", tokenization="word", vocab_size=50, min_frequency=1)
    model = _model(dm, embedding_size=8, hidden_size=8).train()
    assert model.translate(["a b"]) and model.training  # eval inside, the mode given back
    with pytest.raises(ValueError, match="length penalty alpha must be a finite number >= 0, got nan"):
        model.translate(["a b"], beam_size=1, length_penalty=float("nan"))  # checked for greedy decoding too
    with pytest.raises(ValueError, match="length penalty alpha"):
        Seq2Seq(10, 10, length_penalty=-0.5)

    def fail(*args, **kwargs):
        assert not model.training
        raise RuntimeError("decoding failed")

    monkeypatch.setattr(model.net, "generate", fail)
    with pytest.raises(RuntimeError, match="decoding failed"):
        model.translate(["a b"])
    assert model.training
