"""Every registered model is a tested model: build tiny, forward, backward."""
from pathlib import Path

import pytest
import torch

import seqzoo
from seqzoo.registry import _family, get_pretrained_cfg

# the language-model families share forward(ids, state) -> (logits, state); the other families
# (seq2seq, tagger, classifier, ctc) test their registered variants in their own test files
NEURAL = [n for n in seqzoo.list_models() if _family[n] in ("rnn_lm", "window_lm")]


def test_every_registered_model_is_tested_somewhere():
    """Each family's variant tests take their names from the registry (NEURAL here, seq2seq_* in test_seq2seq,
    tests.conftest.registered in the ctc / tagger / classifier tests, every name in tests/test_hub.py): a new
    family must be added to them, and this list, by hand."""
    families = set(_family.values())
    assert families == {"rnn_lm", "window_lm", "ngram", "seq2seq", "tagger", "classifier", "ctc"}


def test_list_models_wildcards_and_pretrained():
    names = seqzoo.list_models()
    assert names == sorted(names) and "lstm_lm_2x200" in names
    assert seqzoo.list_models("gru*") == ["gru_lm_2x200"]
    pre = seqzoo.list_models(pretrained=True)
    assert "lstm_lm_2x200.ptb_zaremba" in pre and all("." in n for n in pre)
    assert get_pretrained_cfg("lstm_lm_2x200.ptb_zaremba").hf_hub_id == "seqzoo/lstm_lm_2x200.ptb_zaremba"


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'lstm_lm_9x9'; did you mean .*lstm_lm_2x200"):
        seqzoo.create_model("lstm_lm_9x9")
    with pytest.raises(ValueError, match="has no checkpoint 'wiki'"):
        get_pretrained_cfg("lstm_lm_2x200.wiki")


@pytest.mark.parametrize("name", NEURAL)
def test_registered_neural_model_forward_backward(name):
    m = seqzoo.create_model(name, vocab_size=40, embedding_size=8, hidden_size=8)
    ids = torch.randint(0, 40, (2, 6))
    logits, _ = m(ids)
    assert logits.shape == (2, 6, 40)
    logits.logsumexp(-1).mean().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_create_model_drops_none_kwargs():
    m = seqzoo.create_model("lstm_lm_2x650", vocab_size=30, embedding_size=8, hidden_size=8, dropout=None)
    assert m.config.dropout == 0.5  # the variant's default stands


def test_every_pretrained_checkpoint_has_its_recipe_and_card():
    """A registered ``arch.tag`` names the recipe config that trained it and has a model card in model_cards/."""
    root = Path(__file__).resolve().parents[1]
    for name in seqzoo.list_models(pretrained=True):
        cfg = get_pretrained_cfg(name)
        assert (root / cfg.recipe).is_file(), f"{name}: recipe {cfg.recipe} not found"
        assert (root / "model_cards" / f"{name}.md").is_file(), f"{name}: no model_cards/{name}.md"


def test_every_pretrained_architecture_is_built_as_its_recipe_config_trains_it():
    """``create_model(arch)`` gives the sizes and settings of the recipe config its checkpoint was trained with,
    so a fresh model and ``from_pretrained`` agree; sizes the datamodule links (vocabularies, tag sets) aside."""
    from dataclasses import fields

    import yaml
    root = Path(__file__).resolve().parents[1]
    checked, wrong = 0, []
    for name in seqzoo.list_models(pretrained=True):
        cfg = get_pretrained_cfg(name)
        if Path(cfg.recipe).name == "recipe.yaml":  # an n-gram row: no model config
            continue
        args = (yaml.safe_load((root / cfg.recipe).read_text())["model"] or {}).get("init_args") or {}
        config = seqzoo.create_model(name.split(".")[0]).config
        for f in fields(config):
            if f.name in args and not f.name.endswith(("vocab_size", "num_tags", "num_classes", "num_labels")):
                if getattr(config, f.name) != args[f.name]:
                    wrong.append(f"{name}: {f.name} {getattr(config, f.name)!r}, {cfg.recipe}: {args[f.name]!r}")
        checked += 1
    assert not wrong, "\n".join(wrong)
    assert checked >= 10
