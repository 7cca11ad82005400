"""Small helpers shared by every model's inference methods (tag, classify, transcribe, translate, generate,
perplexity): run a network in eval mode and give the caller's mode back, cut a list into batches, check that a
network carries the vocabularies that reading or writing text needs."""
from __future__ import annotations

from contextlib import contextmanager

from torch import nn

__all__ = ["require", "evaluating", "batched"]


def require(net: nn.Module, *names: str) -> None:
    """``net`` has the vocabularies ``names`` (``vocab``, ``tags`` ...) that reading or writing text needs."""
    missing = [n for n in names if getattr(net, n, None) is None]
    if missing:
        raise ValueError(f"this {type(net).__name__} has no {' or '.join(missing)}: load it with "
                         f"seqzoo.from_pretrained (which reads its vocabulary files) or set .{missing[0]}")


@contextmanager
def evaluating(net: nn.Module):
    """``net`` in eval mode inside the block (its mode is restored after, also on an error); yields the device
    of its weights."""
    was_training = net.training
    net.eval()
    try:
        yield next(net.parameters()).device
    finally:
        net.train(was_training)


def batched(items: list, batch_size: int):
    """``items`` in chunks of ``batch_size`` (>= 1)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for i in range(0, len(items), batch_size):
        yield items[i:i + batch_size]
