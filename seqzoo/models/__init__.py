"""Every model family; importing this fills the registry."""
from seqzoo.models import (  # noqa: F401
    classifier,
    ctc,
    ngram,
    rnn_lm,
    seq2seq,
    tagger,
    window_lm,
)
