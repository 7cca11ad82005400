"""What the datamodules share: their three loaders, from one ``_loader(split, batch_size)``."""
from __future__ import annotations

__all__ = ["SplitLoaders"]


class SplitLoaders:
    """Mixin for a ``LightningDataModule`` (listed before it) with ``_loader(split, batch_size)`` and
    ``hparams.batch_size`` / ``hparams.eval_batch_size``: train, valid and test loaders."""

    def train_dataloader(self):
        return self._loader("train", self.hparams.batch_size)

    def val_dataloader(self):
        return self._loader("valid", self.hparams.eval_batch_size)

    def test_dataloader(self):
        return self._loader("test", self.hparams.eval_batch_size)
