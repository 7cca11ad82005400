"""seqzoo.hub and seqzoo.cards on local files: save / load, strictness, pickles, atomic saves, cards, CLI evaluate.

The same round trips over HTTP, against a fake Hub, are in test_hub_http.py.
"""
import json
import math
import os
from pathlib import Path

import pytest
import torch

import seqzoo
from seqzoo import hub
from seqzoo.models.rnn_lm import RNNLM, RNNLMConfig
from tiny_models import outputs, same, tiny_model, vocabularies, word_vocab

TINY_RNN = dict(vocab_size=50, embedding_size=16, hidden_size=16)


def rewrite_weights(folder: Path, tensors: dict) -> None:
    """Replace model.safetensors and keep config.json's checksum valid, so only the content is judged."""
    from safetensors.torch import save_file
    save_file(tensors, str(folder / "model.safetensors"))
    cfg = json.loads((folder / "config.json").read_text())
    cfg["weights_sha256"] = hub._sha256(folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.fixture
def saved(tmp_path):
    model = seqzoo.create_model("lstm_lm_2x200", **TINY_RNN).eval()
    return model, hub.save_pretrained(model, tmp_path / "ckpt", vocab=word_vocab(50))


# -- round trips -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", hub.hub_models())
def test_round_trip_every_registered_model(name, tmp_path):
    model = tiny_model(name)
    folder = seqzoo.save_pretrained(model, tmp_path / name)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["format_version"] == hub.FORMAT_VERSION and cfg["seqzoo_version"] == seqzoo.__version__
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}  # the weights as readable as the rest
    assert set(modes.values()) == {modes["config.json"]}, modes
    loaded = seqzoo.from_pretrained(folder)
    assert type(loaded) is type(model)
    assert same(outputs(model), outputs(loaded))
    if hasattr(model, "config"):  # a network: its family, config and every vocabulary come back
        assert cfg["family"] == seqzoo.registry._family[name] and cfg["model_args"] == loaded.config.__dict__
        assert loaded.config == model.config and not loaded.training
        assert vocabularies(loaded) == vocabularies(model) and len(vocabularies(model)) >= 1
        assert set(cfg["vocabularies"]) == set(vocabularies(model))
        assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "README.md"} | {
            e["file"] for e in cfg["vocabularies"].values()}
    else:
        assert cfg["family"] == "ngram" and cfg["architecture"] == name == loaded.architecture
        assert (folder / "model.arpa").is_file() and loaded.order == model.order
    assert (folder / "README.md").read_text().startswith("---\nlibrary_name: seqzoo\n")


def test_ngram_zero_probability_survives_arpa(tmp_path):
    model = tiny_model("ngram_mle3")
    assert model.logprob("zebra", ["a"]) == -math.inf
    loaded = hub.from_pretrained(hub.save_pretrained(model, tmp_path / "mle"))
    assert loaded.logprob("zebra", ["a"]) == -math.inf


def test_architecture_is_the_registered_variant_with_those_sizes(tmp_path):
    full = seqzoo.create_model("gru_lm_2x200", vocab_size=60)
    assert hub._architecture(full, "rnn_lm") == "gru_lm_2x200"
    assert hub._architecture(RNNLM(RNNLMConfig(**TINY_RNN)), "rnn_lm") == "rnn_lm"
    loaded = hub.from_pretrained(hub.save_pretrained(full, tmp_path / "gru"))
    assert loaded.architecture == "gru_lm_2x200"


def test_lightning_module_is_unwrapped(tmp_path):
    from seqzoo.models.rnn_lm import RNNLanguageModel
    task = RNNLanguageModel(**TINY_RNN).eval()
    loaded = hub.from_pretrained(hub.save_pretrained(task, tmp_path / "task"))
    assert same(outputs(task.net), outputs(loaded))


def test_tied_weights_survive(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_model
    model = seqzoo.create_model("lstm_lm_2x200", tie_weights=True, **TINY_RNN).eval()
    folder = hub.save_pretrained(model, tmp_path / "tied")
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "decoder.weight" in keys and "embed.weight" not in keys  # one copy, under safetensors' choice of name
    loaded = hub.from_pretrained(folder)
    assert loaded.decoder.weight is loaded.embed.weight
    assert same(outputs(model), outputs(loaded))
    with torch.no_grad():
        loaded.embed.weight.add_(1.0)
    assert torch.equal(loaded.decoder.weight, loaded.embed.weight)
    other = seqzoo.create_model("lstm_lm_2x200", tie_weights=True, **TINY_RNN)
    load_model(other, str(folder / "model.safetensors"))  # safetensors' own loader reads our files too
    assert same(outputs(model), outputs(other.eval()))


def test_vocab_round_trip_and_size_checks(saved, tmp_path):
    model, folder = saved
    loaded = hub.from_pretrained(folder)
    assert loaded.vocab == word_vocab(50)
    with pytest.raises(ValueError, match="vocab has 40 tokens but the model's vocab_size is 50"):
        hub.save_pretrained(model, tmp_path / "bad", vocab=word_vocab(40))
    word_vocab(51).save(folder / "vocab.json")
    with pytest.raises(ValueError, match="vocab has 51 tokens but the model's vocab_size is 50"):
        hub.from_pretrained(folder)


# -- atomic saves ------------------------------------------------------------------------------------
def test_crash_mid_save_keeps_the_old_checkpoint(saved, monkeypatch):
    model, folder = saved
    before = sorted(os.listdir(folder.parent))

    def broken_writer(net, path):
        path.write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(hub, "_write_weights", broken_writer)
    other = seqzoo.create_model("lstm_lm_2x200", **TINY_RNN)
    with pytest.raises(OSError, match="disk full"):
        hub.save_pretrained(other, folder, vocab=word_vocab(50))
    assert sorted(os.listdir(folder.parent)) == before  # no temporary folder left behind
    assert same(outputs(model), outputs(hub.from_pretrained(folder)))
    monkeypatch.undo()
    hub.save_pretrained(other, folder, vocab=word_vocab(50))  # a good save replaces it
    assert same(outputs(other.eval()), outputs(hub.from_pretrained(folder)))
    assert sorted(os.listdir(folder.parent)) == before


def test_save_refuses_to_replace_a_folder_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a seqzoo checkpoint folder"):
        hub.save_pretrained(RNNLM(RNNLMConfig(**TINY_RNN)), tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    # a transformers model folder has a config.json too: not ours either
    (tmp_path / "mine" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ValueError, match="not a seqzoo checkpoint folder"):
        hub.save_pretrained(RNNLM(RNNLMConfig(**TINY_RNN)), tmp_path / "mine")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["config.json", "notes.txt"]


# -- strict loading ----------------------------------------------------------------------------------
def test_missing_key_is_named(saved):
    _, folder = saved
    from safetensors.torch import load_file
    tensors = load_file(str(folder / "model.safetensors"))
    del tensors["rnn.weight_hh_l1"]
    rewrite_weights(folder, tensors)
    with pytest.raises(ValueError, match=r"missing keys: rnn\.weight_hh_l1$"):
        hub.from_pretrained(folder)


def test_unexpected_key_is_named(saved):
    _, folder = saved
    from safetensors.torch import load_file
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["head.extra"] = torch.zeros(3)
    rewrite_weights(folder, tensors)
    with pytest.raises(ValueError, match=r"unexpected keys: head\.extra$"):
        hub.from_pretrained(folder)


def test_shape_mismatch_names_keys_and_shapes(saved):
    _, folder = saved
    with pytest.raises(ValueError) as e:
        hub.from_pretrained(folder, vocab_size=60)
    msg = str(e.value)
    assert "shape mismatch" in msg and "missing" not in msg
    assert "embed.weight (50, 16) in the file, (60, 16) in the model" in msg
    assert "decoder.bias (50,) in the file, (60,) in the model" in msg
    loaded = hub.from_pretrained(folder, dropout=0.3)  # overrides that keep the shapes are fine
    assert loaded.config.dropout == 0.3


def test_corrupted_safetensors_is_a_clear_error(saved):
    _, folder = saved
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # same size, one byte flipped
    with pytest.raises(ValueError, match=r"model\.safetensors is corrupted or truncated: its sha256"):
        hub.from_pretrained(folder)
    weights.write_bytes(data[: len(data) // 2])  # truncated, and no checksum to compare with
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["weights_sha256"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"model\.safetensors is not a readable safetensors file"):
        hub.from_pretrained(folder)


def test_a_vocabularies_entry_without_a_file_is_named(saved):
    _, folder = saved
    cfg = json.loads((folder / "config.json").read_text())
    cfg["vocabularies"]["vocab"] = {"kind": "vocab"}
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="bad vocabularies entry 'vocab'"):
        hub.from_pretrained(folder)


def test_newer_format_version_is_refused(saved):
    _, folder = saved
    cfg = json.loads((folder / "config.json").read_text())
    cfg["format_version"] = hub.FORMAT_VERSION + 1
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=f"format_version {hub.FORMAT_VERSION + 1}.*upgrade seqzoo"):
        hub.from_pretrained(folder)


@pytest.mark.parametrize("file, text, message", [
    ("config.json", "[1, 2]", "config.json holds a JSON list, not an object"),
    ("config.json", '{"format_version": 1, "family": "rnn_lm"}', "config.json has no model_args object"),
    ("vocab.json", "[1, 2,", "vocab.json is not a seqzoo vocabulary: not valid UTF-8 JSON"),
    ("vocab.json", '{"level": "char", "tokens": 5}', "vocab.json is not a seqzoo vocabulary: it must hold"),
    ("vocab.json", '{"tokens": ["a", "b"]}', "vocab.json is not a seqzoo vocabulary: a vocab must start with")])
def test_a_corrupted_config_or_vocab_is_an_error_naming_the_file(saved, file, text, message):
    _, folder = saved
    (folder / file).write_text(text)
    with pytest.raises(ValueError, match=message):
        hub.from_pretrained(folder)


def test_unknown_names_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a local folder or file"):
        hub.from_pretrained("no such thing")
    with pytest.raises(ValueError, match="has no pretrained checkpoint"):
        hub.from_pretrained("lstm_lm_2x650")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        hub.from_pretrained(tmp_path / "empty")


# -- pickles -----------------------------------------------------------------------------------------
class _Payload:
    """Unpickling this creates a file: stands for any code a malicious checkpoint would run."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_runs_code_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"net.embed.weight": _Payload(str(marker))},
                "hyper_parameters": {"cell": "lstm", **TINY_RNN}}, ckpt)
    with pytest.raises(ValueError, match="refusing to load .*evil.ckpt.*trust_pickle=True"):
        hub.from_pretrained(ckpt)
    assert not marker.exists()
    with pytest.raises(ValueError, match=r"weights_only=True.*it needs \S*open, which is not a tensor"):
        hub.from_pretrained(ckpt, trust_pickle=True)
    assert not marker.exists()
    for suffix in (".bin", ".pt", ".pkl"):  # the other pickle suffixes, alone in a folder
        folder = tmp_path / f"f{suffix[1:]}"
        folder.mkdir()
        os.link(ckpt, folder / f"pytorch_model{suffix}")
        with pytest.raises(ValueError, match="refusing to load"):
            hub.from_pretrained(folder)
    assert not marker.exists()
    torch.load(ckpt, weights_only=False)  # the payload is live: a plain unpickle runs it
    assert marker.exists()


def _lightning_checkpoint(tmp_path, corpus):
    """A real Lightning checkpoint of an RNNLanguageModel trained one step on ``corpus`` (datamodule hparams in)."""
    import lightning as L

    from seqzoo.data.lm import LanguageModelDataModule
    from seqzoo.models.rnn_lm import RNNLanguageModel
    dm = LanguageModelDataModule(str(corpus), batch_size=2, bptt=5)
    task = RNNLanguageModel(vocab_size=dm.vocab_size, embedding_size=8, hidden_size=8, lr=1.0)
    trainer = L.Trainer(max_steps=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(task, datamodule=dm)
    path = tmp_path / "last.ckpt"
    trainer.save_checkpoint(path)
    return path, task, dm


def test_lightning_checkpoint_loads_with_trust_and_converts(tmp_path, tiny_corpus, capsys):
    path, task, dm = _lightning_checkpoint(tmp_path, tiny_corpus)
    assert "datamodule_hyper_parameters" in torch.load(path, weights_only=True)
    with pytest.raises(ValueError, match="trust_pickle"):
        hub.from_pretrained(path)
    loaded = hub.from_pretrained(path, trust_pickle=True)
    assert same(outputs(task.net.eval()), outputs(loaded))
    assert loaded.vocab == dm.vocab
    folder = hub.convert_checkpoint(path, tmp_path / "converted")
    again = hub.from_pretrained(folder)
    assert same(outputs(loaded), outputs(again)) and again.vocab == dm.vocab
    assert sorted(os.listdir(folder)) == ["README.md", "config.json", "model.safetensors", "vocab.json"]
    with pytest.raises(ValueError, match="pass vocab="):  # no stored vocab, no datamodule hparams: no folder
        ck = torch.load(path, weights_only=True)
        del ck["datamodule_hyper_parameters"], ck["seqzoo_vocabularies"]
        torch.save(ck, tmp_path / "bare.ckpt")
        hub.convert_checkpoint(tmp_path / "bare.ckpt", tmp_path / "bare")
    assert not (tmp_path / "bare").exists()


def test_lightning_checkpoint_carries_its_vocabulary_and_loads_without_its_corpus(tmp_path, tiny_corpus):
    """A .ckpt whose vocabulary was rebuilt from the corpus in its hyperparameters read another corpus of the
    same size without a word (a wrong vocabulary); it stores the vocabulary itself now, as plain data."""
    import shutil
    path, task, dm = _lightning_checkpoint(tmp_path, tiny_corpus)
    stored = torch.load(path, weights_only=True)["seqzoo_vocabularies"]
    assert stored == {"vocab": dm.vocab.to_dict()}
    shutil.rmtree(tiny_corpus)  # nothing to rebuild from
    loaded = hub.load_model(path, trust_pickle=True)
    assert loaded.vocab == dm.vocab and same(outputs(task.net.eval()), outputs(loaded))
    ck = torch.load(path, weights_only=True)
    ck["seqzoo_vocabularies"] = {"vocab": {"tokens": ["a"]}}
    torch.save(ck, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match="bad.ckpt: its stored vocabulary 'vocab' cannot be read"):
        hub.load_model(tmp_path / "bad.ckpt", trust_pickle=True)


def test_an_old_checkpoint_without_a_stored_vocabulary_rebuilds_it_and_says_how_it_was_checked(tmp_path,
                                                                                                tiny_corpus):
    path, task, dm = _lightning_checkpoint(tmp_path, tiny_corpus)
    ck = torch.load(path, weights_only=True)
    del ck["seqzoo_vocabularies"]  # as written before seqzoo 0.1.0
    torch.save(ck, tmp_path / "old.ckpt")
    with pytest.warns(UserWarning, match="old.ckpt stores no vocabulary .* rebuilt it from the corpus .* by size only"):
        loaded = hub.load_model(tmp_path / "old.ckpt", trust_pickle=True)
    assert loaded.vocab == dm.vocab and same(outputs(task.net.eval()), outputs(loaded))


# -- CLI evaluate ------------------------------------------------------------------------------------
def test_cli_evaluate_rnn_matches_the_lightning_metric_loop(tmp_path, tiny_corpus, capsys):
    from seqzoo.cli import main
    from seqzoo.data.lm import LanguageModelDataModule
    from seqzoo.models.rnn_lm import RNNLanguageModel
    dm = LanguageModelDataModule(str(tiny_corpus))
    model = seqzoo.create_model("gru_lm_2x200", vocab_size=dm.vocab_size, embedding_size=8, hidden_size=8).eval()
    folder = hub.save_pretrained(model, tmp_path / "gru", vocab=dm.vocab)
    assert main(["evaluate", str(folder), "--dataset", str(tiny_corpus), "--split", "test", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    ref_dm = LanguageModelDataModule(str(tiny_corpus), vocab_path=str(folder / "vocab.json"), eval_batch_size=10,
                                     bptt=35)
    task = RNNLanguageModel(**model.config.__dict__)
    task.net = model
    ref = task.evaluate_stream(ref_dm.test_dataloader())
    test_lines = (tiny_corpus / "test.txt").read_text().splitlines()
    assert r["tokens"] == ref["tokens"] == sum(len(line.split()) + 1 for line in test_lines)
    assert r["perplexity"] == pytest.approx(ref["perplexity"], rel=1e-6)
    assert 1.0 < r["perplexity"] < 10 * dm.vocab_size
    (tiny_corpus / "train.txt").write_text("")  # evaluate reads the split it scores, nothing else
    assert main(["evaluate", str(folder), "--dataset", str(tiny_corpus), "--split", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["perplexity"] == r["perplexity"]
    assert main(["evaluate", str(folder), "--dataset", str(tiny_corpus), "--split", "train"]) == 1
    assert "corpus file is empty" in capsys.readouterr().err


def test_cli_evaluate_ngram_and_errors(tmp_path, tiny_corpus, capsys):
    pytest.importorskip("seqzoo.models.ngram")
    from seqzoo.cli import main
    lines = lambda s: [line.split() for line in (tiny_corpus / f"{s}.txt").read_text().splitlines()]  # noqa: E731
    lm = seqzoo.create_model("kn3").fit(lines("train"))
    folder = hub.save_pretrained(lm, tmp_path / "kn3")
    assert main(["evaluate", str(folder), "--dataset", str(tiny_corpus), "--split", "valid", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["perplexity"] == pytest.approx(lm.perplexity(lines("valid")))
    assert r["tokens"] == sum(len(s) + 1 for s in lines("valid"))
    assert main(["evaluate", str(tmp_path / "nothing"), "--dataset", str(tiny_corpus)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("seqzoo evaluate: error:") and "\n" not in err
    for flags, what in ((["--beam", "7"], "--beam"), (["--src-lang", "de"], "--src-lang / --tgt-lang"),
                        (["--length-penalty", "0.6"], "--length-penalty"), (["--bptt", "20"], "--batch-size / --bptt"),
                        (["--batch-size", "4"], "--batch-size / --bptt"), (["--tag-column", "xpos"], "--tag-column")):
        assert main(["evaluate", str(folder), "--dataset", str(tiny_corpus), *flags]) == 1  # would be ignored
        err = capsys.readouterr().err.strip()
        assert err == f"seqzoo evaluate: error: {what} does not apply to {folder} (NGramLM, family ngram)", err


# -- cards -------------------------------------------------------------------------------------------
RUN = {"name": "lstm_small", "config": "recipes/ptb/lstm_small.yaml", "dataset": "ptb",
       "metrics": {"valid_perplexity": 120.71, "test_perplexity": 114.53}, "epochs": 13, "wall_seconds": 3600.5,
       "device": "cpu: x86_64, 2 threads"}


def test_card_parses_with_huggingface_hub(tmp_path):
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard import metadata_load
    from huggingface_hub.repocard_data import model_index_to_eval_results
    from seqzoo.cards import make_card
    config = dict(RNNLMConfig(vocab_size=10002).__dict__)
    text = make_card("lstm_lm_2x200.ptb_zaremba", config, RUN, "ptb", "seqzoo fit --config recipes/ptb/lstm_small.yaml")
    data = ModelCard(text).data.to_dict()
    assert data["library_name"] == "seqzoo" and data["license"] == "apache-2.0"
    assert data["datasets"] == ["ptb_text_only"] and {"language-modeling", "seqzoo", "lstm"} <= set(data["tags"])
    (tmp_path / "README.md").write_text(text)
    meta = metadata_load(tmp_path / "README.md")
    name, results = model_index_to_eval_results(meta["model-index"])
    assert name == "lstm_lm_2x200.ptb_zaremba"
    by_split = {r.dataset_split: r for r in results}
    assert by_split["test"].metric_value == 114.53 and by_split["test"].metric_name == "test perplexity"
    assert by_split["validation"].metric_value == 120.71
    assert {r.metric_type for r in results} == {"perplexity"} and {r.task_type for r in results} == {"text-generation"}
    assert by_split["test"].dataset_type == "ptb_text_only" and by_split["test"].dataset_name == "Penn Treebank"
    for section in ("## Intended use", "## How to load", 'seqzoo.from_pretrained("lstm_lm_2x200.ptb_zaremba")',
                    "seqzoo fit --config recipes/ptb/lstm_small.yaml", "| test | 114.53 |", "## Limitations"):
        assert section in text
    bare = make_card("x", config, None, None, None)
    assert "model-index" not in ModelCard(bare).data.to_dict() and "No evaluation results" in bare


def test_write_cards_only_for_real_runs_with_a_registered_name(tmp_path):
    from huggingface_hub.repocard import metadata_load
    from huggingface_hub.repocard_data import model_index_to_eval_results
    from seqzoo.cards import write_cards
    recipe = tmp_path / "ptb"
    recipe.mkdir()
    runs = [RUN, {**RUN, "name": "kn5", "config": "seqzoo ngram --dataset ptb --order 5"},
            {**RUN, "name": "mine", "config": "recipes/ptb/unregistered.yaml"}]
    (recipe / "results.json").write_text(json.dumps({"runs": runs}))
    written = write_cards(recipe, tmp_path / "cards")
    assert [p.name for p in written] == ["lstm_lm_2x200.ptb_zaremba.md", "kn5.ptb.md"]
    for path in written:
        _, results = model_index_to_eval_results(metadata_load(path)["model-index"])
        assert {r.dataset_split: r.metric_value for r in results} == {"test": 114.53, "validation": 120.71}
    text = written[0].read_text()
    assert "seqzoo fit --config recipes/ptb/lstm_small.yaml" in text and "embedding" in text
    kn = written[1].read_text()
    assert "A word 5-gram language model with interpolated modified Kneser-Ney smoothing" in kn and "n-gram" in kn
    assert "seqzoo ngram --dataset ptb --order 5" in kn and "seqzoo reproduce recipes/ptb --only kn5" in kn
    with pytest.raises(FileNotFoundError, match="no results.json"):
        write_cards(tmp_path / "nowhere", tmp_path / "cards")


def test_lightning_checkpoint_of_a_tagger_converts_with_every_vocabulary(tmp_path):
    """`seqzoo fit` (LightningCLI) on a tiny treebank; its .ckpt -> a folder with the word, char and tag vocabularies,
    rebuilt by the tagging datamodule from the checkpoint's hyperparameters."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent / "data"))
    from test_tagging_data import write_treebank
    from seqzoo.cli import main
    from seqzoo.data.tagging import TaggingDataModule
    from seqzoo.models.tagger import RNNTagger
    tb = write_treebank(tmp_path / "tb")
    assert main(["fit", "--model", "seqzoo.models.tagger.TaggerTask", "--model.embedding_size", "8",
                 "--model.hidden_size", "8", "--model.char_encoder", "lstm", "--model.char_hidden_size", "4",
                 "--data.dataset", str(tb), "--data.batch_size", "2", "--trainer.max_epochs", "1",
                 "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.logger", "false",
                 "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]) == 0
    ckpt = next((tmp_path / "run").rglob("*.ckpt"))
    assert torch.load(ckpt, weights_only=True)["hyper_parameters"]["_class_path"] == "seqzoo.models.tagger.TaggerTask"
    net = hub.load_lightning_checkpoint(ckpt, trust_pickle=True)
    assert isinstance(net, RNNTagger) and net.architecture == "tagger"
    folder = hub.convert_checkpoint(ckpt, tmp_path / "tagger")
    assert sorted(os.listdir(folder)) == ["README.md", "char_vocab.json", "config.json", "model.safetensors",
                                          "tags.json", "vocab.json"]
    back = hub.from_pretrained(folder)
    dm = TaggingDataModule(str(tb))
    assert back.tags == dm.tags and back.vocab == dm.vocab and back.char_vocab == dm.char_vocab
    assert same(outputs(net), outputs(back))
    card = (folder / "README.md").read_text()
    assert "token-classification" in card and "language model" not in card.lower()


@pytest.mark.parametrize("name,metrics,pipeline", [
    ("seq2seq_gru_bahdanau", {"test_bleu": 35.2, "test_chrf": 60.1}, "translation"),
    ("bilstm_charlstm_tagger_2x200", {"valid_accuracy": 0.951, "test_accuracy": 0.948}, "token-classification"),
    ("bilstm_max_classifier_1x200", {"test_accuracy": 0.84}, "text-classification"),
    ("bilstm_ctc_3x256", {"test_per": 0.091}, "text2text-generation"),
    ("window_lm_5gram", {"test_perplexity": 160.4}, "text-generation")])
def test_every_family_gets_its_own_card(name, metrics, pipeline, tmp_path):
    from huggingface_hub.repocard import metadata_load
    from huggingface_hub.repocard_data import model_index_to_eval_results
    from seqzoo.cards import make_card
    from dataclasses import asdict
    text = make_card(name, asdict(tiny_model(name).config), {**RUN, "metrics": metrics}, None, "seqzoo fit ...")
    (tmp_path / "README.md").write_text(text)
    from huggingface_hub import ModelCard
    assert ModelCard.load(tmp_path / "README.md").data.library_name == "seqzoo"
    meta = metadata_load(tmp_path / "README.md")
    assert meta["pipeline_tag"] == pipeline and "seqzoo" in meta["tags"]
    _, results = model_index_to_eval_results(meta["model-index"])
    assert {(r.dataset_split.replace("validation", "valid") + "_" + r.metric_type): r.metric_value
            for r in results} == metrics
    assert (pipeline == "text-generation") == ("language model" in text)
    # a folder saved from the model gets the same kind of card
    folder = seqzoo.save_pretrained(tiny_model(name), tmp_path / "ckpt")
    assert metadata_load(folder / "README.md")["pipeline_tag"] == pipeline


@pytest.mark.parametrize("name", ["lstm_lm_2x200", "window_lm_5gram", "seq2seq_lstm_luong", "bigru_tagger_2x200",
                                  "bilstm_attn_classifier_1x200", "bigru_ctc_3x256", "kn3"])
def test_every_model_class_has_the_hub_methods(name, tmp_path):
    model = tiny_model(name)
    folder = model.save_pretrained(tmp_path / "m")
    back = type(model).from_pretrained(folder)
    assert type(back) is type(model) and same(outputs(model), outputs(back))
    other = RNNLM if type(model) is not RNNLM else type(tiny_model("kn3"))
    with pytest.raises(ValueError, match=f"not a {other.__name__}"):
        other.from_pretrained(folder)


def test_a_task_class_wraps_a_pretrained_network(tmp_path):
    from seqzoo.models.rnn_lm import RNNLanguageModel
    from seqzoo.models.seq2seq import Seq2Seq
    from seqzoo.models.tagger import TaggerTask
    lm = tiny_model("gru_lm_2x200")
    task = RNNLanguageModel.from_pretrained(lm.save_pretrained(tmp_path / "lm"), )
    assert isinstance(task, RNNLanguageModel) and same(outputs(lm), outputs(task.net.eval()))
    assert task.net.vocab == lm.vocab and task.hparams.hidden_size == 16
    assert task.save_pretrained(tmp_path / "again").joinpath("vocab.json").is_file()  # a task saves its .net
    s2s = tiny_model("seq2seq_gru_bahdanau")
    t = Seq2Seq.from_pretrained(s2s.save_pretrained(tmp_path / "s2s"))
    assert t.translate(["the cat sat"], beam_size=2)[0][0] == \
        Seq2Seq.from_net(s2s).translate(["the cat sat"], beam_size=2)[0][0]
    tagger = tiny_model("bilstm_charlstm_tagger_2x200")
    tt = TaggerTask.from_pretrained(tagger.save_pretrained(tmp_path / "tagger"))
    assert same(outputs(tagger), outputs(tt.net.eval())) and tt.net.tags == tagger.tags
    with pytest.raises(ValueError, match="does not fit TaggerTask|holds a RNNLM"):
        TaggerTask.from_pretrained(tmp_path / "lm")


def test_card_without_an_export_takes_the_family_from_the_recipe_class_path():
    """No exported folder: the recipe YAML names ClassifierTask, so the card is a classifier's (not an LM's); a
    run with valid metrics only (SST-2) gets a validation row only."""
    from seqzoo.cards import card_for_run
    m = {"valid_accuracy": 0.8, "valid_loss": 0.4}
    run = {"name": "bilstm_max_glove", "dataset": "sst2", "epochs": 1, "wall_seconds": 1.0, "device": "cpu",
           "metrics": m}
    name, text = card_for_run(Path("recipes/sst2"), run)
    assert name == "bilstm_max_classifier_1x200.sst2_glove"
    assert "pipeline_tag: text-classification" in text and "language model" not in text
    assert "sentence classifier" in text and "max pooling over time." in text
    assert "| validation | 0.8000 |" in text and "| test |" not in text and "split: test" not in text
    run["metrics"] = {**m, "test_accuracy": 0.7}  # a real test split: both rows
    assert "| test | 0.7000 |" in card_for_run(Path("recipes/sst2"), run)[1]
    assert "--trainer.max_epochs" not in text
    run["overrides"] = ["--trainer.max_epochs", "2"]  # trained with flags beside its config: the card says so
    text = card_for_run(Path("recipes/sst2"), run)[1]
    assert "seqzoo fit --config recipes/sst2/bilstm_max_glove.yaml --data.data_dir DATA_DIR --trainer.max_epochs 2\n" \
           in text and "--only bilstm_max_glove --data-dir DATA_DIR -- --trainer.max_epochs 2\n" in text
    assert "two parts" not in text
    run["resumed_from"] = {"checkpoint": "c.ckpt", "epochs": 1, "wall_seconds": 0.5, "device": "cpu", "overrides": []}
    assert "(in two parts: 1 epoch on cpu, then resumed" in card_for_run(Path("recipes/sst2"), run)[1]


def test_card_of_an_exported_run_reads_the_trained_config(tmp_path):
    """The recipe YAML has no num_tags (a datamodule link): the card takes the family from the exported folder."""
    from seqzoo.cards import card_for_run
    export = tmp_path / "export"
    tiny_model("bilstm_charlstm_tagger_2x200").save_pretrained(export)
    run = {"name": "bilstm_char", "dataset": "ud-english-ewt", "epochs": 1, "wall_seconds": 1.0, "device": "cpu",
           "metrics": {"valid_accuracy": 0.5, "test_accuracy": 0.25}, "export_dir": str(export)}
    name, text = card_for_run(Path("recipes/ud_ewt"), run)
    assert name == "bilstm_charlstm_tagger_2x200.ud_ewt_glove"
    assert "pipeline_tag: token-classification" in text and "| test | 0.2500 |" in text


def test_card_family_is_taken_from_the_recipe_not_guessed():
    """A recipe config without its datamodule-linked sizes (num_tags, num_classes ...) still gets its family's card."""
    from seqzoo.cards import _model_args_from_recipe, make_card
    root = Path(__file__).resolve().parents[1]
    for config, family, task in (("recipes/ud_ewt/bilstm_char.yaml", "tagger", "token-classification"),
                                 ("recipes/ptb/window_lm.yaml", "window_lm", "text-generation")):
        fam, args = _model_args_from_recipe(root / config)
        assert fam == family and "num_tags" not in args
        card = make_card("x", args, None, None, None, family=fam)
        assert f"pipeline_tag: {task}" in card and "None" not in card.split("---")[2], card


def test_missing_paths_and_wrong_files_say_what_is_missing(tmp_path, capsys, monkeypatch):
    from seqzoo.cli import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    with pytest.raises(FileNotFoundError, match="out/nope: no such local folder or file; as a Hub repo id: "):
        hub.from_pretrained("out/nope", local_files_only=True)  # shaped like org/name, below a local folder
    with pytest.raises(FileNotFoundError, match="checkpoint not found: .*x.ckpt"):
        hub.load_model(tmp_path / "x.ckpt")  # not "refusing to load a pickle"
    (tmp_path / "empty.txt").write_text("")
    assert main(["push", str(tmp_path / "empty.txt"), "--repo-id", "org/x"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty.txt is not a Lightning checkpoint (.ckpt" in err[0], err
