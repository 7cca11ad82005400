from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from seqzoo.data.classification import ClassificationDataModule
from seqzoo.models.classifier import (POOLINGS, AttentionPooling, ClassifierConfig, ClassifierTask, RNNClassifier,
                                      masked_max, masked_mean)
from tests.conftest import registered

REPO = Path(__file__).resolve().parents[2]


def _quiet_trainer(**kw):
    return L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, **kw)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("bidirectional", [True, False])
def test_pooling_ignores_padding(pooling, bidirectional):
    torch.manual_seed(0)
    m = RNNClassifier(vocab_size=30, num_classes=3, embedding_size=8, hidden_size=8, num_layers=2,
                      bidirectional=bidirectional, pooling=pooling).eval()
    ids = torch.tensor([[4, 5, 6, 7, 8], [9, 10, 11, 2, 2]])
    lengths = torch.tensor([5, 3])
    logits = m(ids, lengths)
    assert logits.shape == (2, 3)
    assert torch.allclose(logits[1], m(ids[1:, :3], lengths[1:])[0], atol=1e-5)
    # what sits in the padded positions does not matter either
    noisy = ids.clone()
    noisy[1, 3:] = torch.tensor([20, 21])
    assert torch.allclose(m(noisy, lengths), logits, atol=1e-5)


def test_last_pooling_is_last_real_state_of_each_direction():
    torch.manual_seed(0)
    m = RNNClassifier(vocab_size=30, embedding_size=8, hidden_size=4, num_layers=2, pooling="last").eval()
    ids, lengths = torch.tensor([[4, 5, 6, 7], [9, 10, 2, 2]]), torch.tensor([4, 2])
    out, _ = m.encoder(m.embed(ids), lengths)
    pooled = m.pool(ids, lengths)
    assert torch.allclose(pooled[1], torch.cat([out[1, 1, :4], out[1, 0, 4:]]))  # forward at len-1, backward at 0
    assert torch.allclose(pooled[0], torch.cat([out[0, 3, :4], out[0, 0, 4:]]))


def test_masked_poolings_by_hand():
    h = torch.tensor([[[1.0, -5.0], [3.0, -1.0], [100.0, 100.0]]])  # the last position is padding
    mask = torch.tensor([[True, True, False]])
    assert masked_max(h, mask).tolist() == [[3.0, -1.0]]
    assert masked_mean(h, mask).tolist() == [[2.0, -3.0]]
    att = AttentionPooling(2, 4)
    pooled, w = att(h, mask)
    assert w[0, 2] == 0 and w.sum().item() == pytest.approx(1.0)
    assert torch.allclose(pooled, w[0, 0] * h[:, 0] + w[0, 1] * h[:, 1])


def test_bad_config_values():
    with pytest.raises(ValueError, match="unknown pooling 'sum'; valid: last, max, mean, attention"):
        ClassifierConfig(pooling="sum")
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        ClassifierConfig(num_classes=1)
    with pytest.raises(ValueError, match="pretrained embeddings have shape"):
        ClassifierTask(vocab_size=10, embedding_size=4, embeddings=torch.zeros(10, 5))


class _Echo(nn.Module):
    """Predicts class ``input_ids[:, 0]`` (so predictions are known)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, ids, lengths=None):
        return torch.nn.functional.one_hot(ids[:, 0], 2).float() + self.w


def test_accuracy_over_the_split_by_hand():
    task = ClassifierTask(vocab_size=10, embedding_size=4, hidden_size=4)
    task.net = _Echo()
    b1 = {"input_ids": torch.tensor([[0, 5], [1, 5], [1, 2]]), "lengths": torch.tensor([2, 2, 1]),
          "labels": torch.tensor([0, 1, 0])}  # 2 of 3 right
    b2 = {"input_ids": torch.tensor([[0]]), "lengths": torch.tensor([1]), "labels": torch.tensor([1])}  # wrong
    out = _quiet_trainer().validate(task, dataloaders=DataLoader([b1, b2], batch_size=None), verbose=False)[0]
    assert out["valid_accuracy"] == pytest.approx(2 / 4)


POS = ["good movie", "a great film", "great fun", "truly good", "fun and good", "a good film"]
NEG = ["bad movie", "an awful film", "awful fun", "truly bad", "dull and bad", "a bad film"]


@pytest.mark.parametrize("pooling", ["last", "attention"])
def test_tiny_classifier_overfits(tmp_path, pooling):
    L.seed_everything(0)
    rows = "sentence\tlabel\n" + "".join(f"{s} \t1\n" for s in POS) + "".join(f"{s} \t0\n" for s in NEG)
    (tmp_path / "train.tsv").write_text(rows)
    (tmp_path / "dev.tsv").write_text(rows)
    dm = ClassificationDataModule(str(tmp_path), batch_size=4)
    model = ClassifierTask(vocab_size=dm.vocab_size, num_classes=dm.num_classes, embedding_size=16, hidden_size=16,
                           pooling=pooling, lr=0.02)
    before = _quiet_trainer().validate(model, datamodule=dm, verbose=False)[0]
    trainer = _quiet_trainer(max_epochs=30, check_val_every_n_epoch=30)
    trainer.fit(model, datamodule=dm)
    after = trainer.callback_metrics
    assert after["valid_loss"] < before["valid_loss"] / 5, (before, after)
    assert after["valid_accuracy"] == 1.0


@pytest.mark.parametrize("name", registered("classifier"))
def test_registered_variants_forward_backward(name):
    from seqzoo.registry import create_model
    m = create_model(name, vocab_size=40, embedding_size=8, hidden_size=8)
    logits = m(torch.randint(4, 40, (3, 6)), torch.tensor([6, 2, 4]))
    assert logits.shape == (3, 2)
    logits.sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_reproduce_records_dev_accuracy_once(tmp_path):
    """SST-2's test loader serves dev (GLUE's test labels are private): a recipe run records the dev score as
    valid_* only, with no test_* copy of it, and its model card reports it once, as validation."""
    import json

    import yaml

    from seqzoo.cards import card_for_run
    from seqzoo.cli import main
    rows = "sentence\tlabel\n" + "".join(f"{s} \t1\n" for s in POS) + "".join(f"{s} \t0\n" for s in NEG)
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.tsv").write_text(rows)
    (data / "dev.tsv").write_text(rows)
    folder = tmp_path / "recipe"
    folder.mkdir()
    config = yaml.safe_load((REPO / "recipes" / "sst2" / "bilstm_max_glove.yaml").read_text())
    config["trainer"] = {"max_epochs": 2, "enable_progress_bar": False, "default_root_dir": str(tmp_path / "runs")}
    config["model"]["init_args"].update(embedding_size=8, hidden_size=8)
    config["data"] = {"dataset": str(data), "batch_size": 4}
    (folder / "bilstm_max_glove.yaml").write_text(yaml.safe_dump(config))
    (folder / "recipe.yaml").write_text(yaml.safe_dump({"title": "t", "metrics": ["valid_accuracy"], "runs": [
        {"name": "bilstm_max_glove", "config": "bilstm_max_glove.yaml"}]}))
    assert main(["reproduce", str(folder)]) == 0
    run = json.loads((folder / "results.json").read_text())["runs"][0]
    assert set(run["metrics"]) == {"valid_loss", "valid_accuracy"} and run["epochs"] == 2
    assert run["metrics"]["valid_accuracy"] == run["history"][-1]["valid_accuracy"]
    text = card_for_run(REPO / "recipes" / "sst2", {**run, "name": "bilstm_max_glove"})[1]
    assert "| validation | 0.5" in text and "| test |" not in text
