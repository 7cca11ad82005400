"""Small helpers shared across seqzoo: run a network in eval mode and give the caller's mode back, cut a list into
batches, check that a network carries the vocabularies that reading or writing text needs (every inference
method: tag, classify, transcribe, translate, generate, perplexity), write an output folder or a text file
atomically (checkpoints, trained word vectors, results), and read a --device flag."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

__all__ = ["require", "evaluating", "batched", "check_oov", "check_folder", "write_folder", "write_text_atomic",
           "parse_device"]


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


def check_oov(rate: float, text, model, hint: str = "") -> float:
    """``rate``, the share of ``text``'s words that ``model`` reads as ``<unk>``; over half is an error (a wrong
    model or corpus), for ``seqzoo evaluate`` and ``seqzoo finetune`` alike; ``hint`` ends the message."""
    if rate > 0.5:
        raise ValueError(f"{rate:.1%} of the words of {text} are not in the vocabulary of {model}: a wrong model or "
                         f"corpus?{hint}")
    return rate


def check_folder(directory: str | os.PathLike, is_ours, kind: str) -> Path:
    """The absolute path of a folder that :func:`write_folder` may replace: new, empty, or one of ours
    (``is_ours(folder)`` is true; ``kind`` names such a folder in the error), below no file. Callers that train
    first check it before they start."""
    target = Path(directory).expanduser().absolute()
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not is_ours(target))):
        raise ValueError(f"{target} exists and is not {kind}: refusing to replace it")
    above = next((p for p in target.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ValueError(f"cannot write {target}: {above} is a file, not a folder")
    return target


def write_folder(out: Path, write) -> None:
    """``write(folder)`` into a temporary folder beside ``out``, then renamed into place, replacing ``out`` as a
    whole: after a failure anywhere (a crash mid-write included) the old ``out`` is still whole."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        write(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        if out.exists():  # a folder cannot be renamed over a non-empty one: move the old one aside
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old / out.name, out)  # put the old one back, then drop the emptied folder
                old.rmdir()
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """``path`` holds the old text or the new, never part of it: written to a temporary file beside it (a name of
    its own, so writers never share one), then renamed over it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_device(name: str) -> torch.device:
    """``--device``'s torch.device; a ValueError if it is not cpu or cuda[:N], or not on this machine."""
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name}: unknown device; use cpu or cuda (cuda:N for GPU N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device
