"""seqzoo: a PyTorch Lightning model zoo of classic sequence models."""
__version__ = "0.1.0"

from seqzoo.registry import create_model, list_models  # noqa: E402
from seqzoo import models  # noqa: E402,F401  (fills the registry)

__all__ = ["create_model", "list_models", "from_pretrained", "save_pretrained", "push_to_hub", "__version__"]

_HUB_FUNCTIONS = ("from_pretrained", "save_pretrained", "push_to_hub")


def __getattr__(name):  # the hub functions load seqzoo.hub (and huggingface_hub) on first use
    if name in _HUB_FUNCTIONS:
        from seqzoo import hub
        return getattr(hub, name)
    raise AttributeError(f"module 'seqzoo' has no attribute {name!r}")
