"""Every model family; importing this fills the registry."""
from seqzoo.models import rnn_lm  # noqa: F401

try:  # the n-gram family is optional until its module lands
    from seqzoo.models import ngram  # noqa: F401
except ImportError:  # pragma: no cover
    pass
