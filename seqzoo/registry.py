"""One registry of model names, timm style.

A name is ``arch`` or ``arch.tag``: the architecture (sizes spelled in it) before the
first dot, the pretrained checkpoint (recipe + data) after it. ``@register_model`` puts a
variant function in the table at import; ``seqzoo/models/__init__.py`` imports every
family, so nothing else lists models.
"""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["register_model", "list_models", "create_model", "get_pretrained_cfg", "split_name",
           "PretrainedCfg", "is_model"]


@dataclass
class PretrainedCfg:
    """Where a named checkpoint lives and what it reached."""
    hf_hub_id: str | None = None  # e.g. "seqzoo/lstm_lm_2x200.ptb_zaremba"
    file: str | None = None  # a checkpoint folder shipped in the package (seqzoo/pretrained/<file>), read first
    dataset: str | None = None
    recipe: str | None = None  # e.g. "recipes/ptb/lstm_small.yaml" (an n-gram row: "recipes/ptb/recipe.yaml")
    run: str | None = None  # its run in the recipe's results.json (default: the recipe file's stem)
    metrics: dict = field(default_factory=dict)


_entrypoints: dict[str, Callable] = {}
_family: dict[str, str] = {}
_pretrained: dict[str, dict[str, PretrainedCfg]] = {}


def register_model(fn: Callable | None = None, *, pretrained: dict[str, PretrainedCfg] | None = None):
    """Decorator: ``@register_model`` or ``@register_model(pretrained={"ptb": PretrainedCfg(...)})``."""
    def wrap(f: Callable) -> Callable:
        name = f.__name__
        if name in _entrypoints:
            raise ValueError(f"model {name!r} is registered twice")
        _entrypoints[name] = f
        _family[name] = f.__module__.rsplit(".", 1)[-1]
        _pretrained[name] = dict(pretrained or {})
        return f
    return wrap(fn) if fn is not None else wrap


def split_name(name: str) -> tuple[str, str | None]:
    arch, _, tag = name.partition(".")
    return arch, (tag or None)


def list_models(pattern: str | None = None, pretrained: bool = False) -> list[str]:
    """Registered names, sorted; ``pattern`` takes shell wildcards (``"lstm*"``).

    With ``pretrained=True`` every ``arch.tag`` with a checkpoint is listed instead of
    the bare architectures.
    """
    if pretrained:
        names = [f"{a}.{t}" for a, tags in _pretrained.items() for t in tags]
    else:
        names = list(_entrypoints)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return sorted(names)


def is_model(name: str) -> bool:
    return split_name(name)[0] in _entrypoints


def get_pretrained_cfg(name: str) -> PretrainedCfg:
    arch, tag = split_name(name)
    _check(arch)
    tags = _pretrained[arch]
    if tag is None:
        if not tags:
            raise ValueError(f"model {arch!r} has no pretrained checkpoint")
        tag = next(iter(tags))
    if tag not in tags:
        raise ValueError(f"model {arch!r} has no checkpoint {tag!r}; known: {sorted(tags) or 'none'}")
    return tags[tag]


def _check(arch: str) -> None:
    if arch not in _entrypoints:
        close = difflib.get_close_matches(arch, _entrypoints, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see seqzoo.list_models()"
        raise ValueError(f"unknown model {arch!r}{hint}")


def create_model(name: str, pretrained: bool = False, **kwargs):
    """Build a registered model; ``None`` kwargs are dropped so defaults stand.

    ``pretrained=True`` (or a name with a tag) loads the checkpoint via
    :func:`seqzoo.hub.from_pretrained`; kwargs then must not change shapes.
    """
    arch, tag = split_name(name)
    _check(arch)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if pretrained or tag:
        from seqzoo.hub import from_pretrained
        return from_pretrained(name, **kwargs)
    return _entrypoints[arch](**kwargs)
