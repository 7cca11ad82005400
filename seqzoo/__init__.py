"""seqzoo: a PyTorch Lightning model zoo of classic sequence models."""
__version__ = "0.1.0"

from seqzoo.registry import create_model, list_models  # noqa: E402
from seqzoo import models  # noqa: E402,F401  (fills the registry)

__all__ = ["create_model", "list_models", "__version__"]
