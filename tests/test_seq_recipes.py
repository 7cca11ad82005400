"""Every sequence-task recipe config (tagging, classification, CTC) runs through LightningCLI with
the argument links its datamodule / model pair needs: one training and one validation batch."""
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for d in ("ud_ewt", "sst2", "cmudict_g2p") for p in (REPO / "recipes" / d).glob("*.yaml")
                 if p.name != "recipe.yaml")


def _cli(args: list[str]):
    from seqzoo.cli import _lightning_cli  # the task table picks datamodule + links from model.class_path
    return _lightning_cli(args, run=False)


def test_every_recipe_config_is_in_its_recipe_table():
    assert len(CONFIGS) >= 4
    for config in CONFIGS:
        recipe = yaml.safe_load((config.parent / "recipe.yaml").read_text())
        assert config.name in [r["config"] for r in recipe["runs"]]


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recipe_config_fast_dev_run(config, data_dir, tmp_path):
    recipe = yaml.safe_load((config.parent / "recipe.yaml").read_text())
    cli = _cli(["--config", str(config), "--data.data_dir", str(data_dir),
                        "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path),
                        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                        "--trainer.logger", "false"])
    dm, model = cli.datamodule, cli.model
    hp = model.hparams
    assert hp.vocab_size == dm.vocab_size  # the links really fed the model
    for size in ("num_tags", "num_chars", "num_classes", "num_labels", "max_word_length"):
        if hasattr(dm, size):
            assert hp[size] == getattr(dm, size)
    if getattr(dm.hparams, "embeddings_path", None):  # GloVe rows really in the embedding
        assert (model.net.embed.weight.data[dm.vocab["the"]] == dm.embeddings[dm.vocab["the"]]).all()
    cli.trainer.fit(model, datamodule=dm)
    metrics = cli.trainer.callback_metrics
    assert recipe["metrics"][0] in metrics and metrics["train_loss"].isfinite()
