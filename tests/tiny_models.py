"""Every registered model at toy size, with the vocabularies its family carries, and what it computes.

Shared by test_hub.py (save / load on disk) and test_hub_http.py (push / pull through huggingface_hub,
in a worker process that imports this file).
"""
import math

import torch

import seqzoo
from seqzoo.data.vocab import Vocab
from seqzoo.registry import _family as FAMILY_OF

SENTS = [s.split() for s in ["the cat sat on the mat", "the dog sat on the log", "a cat saw a dog",
                             "the dog saw the cat on the mat", "a dog sat on a log"]]
PROBES = [("sat", ["the", "cat"]), ("mat", ["on", "the"]), ("</s>", ["the", "log"]), ("zebra", ["a"]),
          ("dog", ["<s>"]), ("cat", [])]
SMALL = dict(embedding_size=16, hidden_size=16)


def word_vocab(n: int) -> Vocab:
    """A word vocab of exactly ``n`` tokens (4 specials + w0 ...)."""
    return Vocab.build([[f"w{i}" for i in range(n - 4)]])


def char_vocab(n: int) -> Vocab:
    return Vocab.build([[chr(ord("a") + i) for i in range(n - 4)]], level="char")


def word_tokenizer():
    from seqzoo.data.translation import train_tokenizer
    return train_tokenizer([" ".join(s) for s in SENTS], kind="word", min_frequency=1)


def tiny_model(name: str, seed: int = 0):
    """``name`` at toy size with its vocabularies attached as attributes (``.vocab``, ``.tags`` ...), in eval
    mode; an n-gram LM fitted on SENTS."""
    torch.manual_seed(seed)
    family = FAMILY_OF[name]
    if family == "ngram":
        return seqzoo.create_model(name).fit(SENTS)
    if family in ("rnn_lm", "window_lm"):
        m, vocabs = seqzoo.create_model(name, vocab_size=50, **SMALL), {"vocab": word_vocab(50)}
    elif family == "seq2seq":
        tok = word_tokenizer()
        n = tok.get_vocab_size()
        m, vocabs = seqzoo.create_model(name, src_vocab_size=n, tgt_vocab_size=n, **SMALL), \
            {"src_tokenizer": tok, "tgt_tokenizer": tok}
    elif family == "tagger":
        m = seqzoo.create_model(name, vocab_size=40, num_tags=5, num_chars=20, char_embedding_size=8,
                                char_hidden_size=8, **SMALL)
        vocabs = {"vocab": word_vocab(40), "tags": ["ADJ", "DET", "NOUN", "PUNCT", "VERB"]}
        if m.config.char_encoder != "none":
            vocabs["char_vocab"] = char_vocab(20)
    elif family == "classifier":
        m = seqzoo.create_model(name, vocab_size=40, num_classes=3, attention_size=8, **SMALL)
        vocabs = {"vocab": word_vocab(40), "labels": ["negative", "neutral", "positive"]}
    elif family == "ctc":
        m = seqzoo.create_model(name, vocab_size=20, num_labels=9, num_layers=2, **SMALL)
        vocabs = {"vocab": char_vocab(20), "labels": ["<blank>"] + [f"P{i}" for i in range(8)]}
    else:
        raise AssertionError(f"{name}: family {family!r} has no tiny model in tests/tiny_models.py")
    for k, v in vocabs.items():
        setattr(m, k, v)
    return m.eval()


def vocabularies(model) -> dict:
    """The vocabularies a model carries, comparable with ==; tokenizers as their vocab dicts."""
    from seqzoo.hub import VOCABULARIES
    out = {}
    for k in VOCABULARIES:
        v = getattr(model, k, None)
        if v is not None:
            out[k] = v.get_vocab() if hasattr(v, "get_vocab") else (v.itos if isinstance(v, Vocab) else list(v))
    return out


def outputs(model) -> list[torch.Tensor]:
    """What a model computes on fixed random inputs, to compare before and after a round trip."""
    family = FAMILY_OF.get(getattr(model, "architecture", None) or "", None)
    name = type(model).__name__
    if name == "NGramLM":
        return [torch.tensor([model.logprob(w, c) for w, c in PROBES], dtype=torch.float64)]
    c = model.config
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([7, 4, 5])
    with torch.no_grad():
        if name in ("RNNLM", "WindowLM"):
            logits, state = model(torch.randint(0, c.vocab_size, (3, 9), generator=g))
            return [logits, *(state if isinstance(state, tuple) else (state,))]
        if name == "Seq2SeqNet":
            src = torch.randint(4, c.src_vocab_size, (3, 7), generator=g)
            src[1, 4:] = src[2, 5:] = 2  # padding
            tgt = torch.randint(4, c.tgt_vocab_size, (3, 6), generator=g)
            hyps = model.generate(src, lengths, beam_size=2, max_len=8)
            return [model(src, lengths, tgt), torch.tensor([h.tokens for hs in hyps for h in hs][0])]
        ids = torch.randint(4, c.vocab_size, (3, 7), generator=g)
        if name == "RNNTagger":
            chars = torch.randint(4, max(c.num_chars, 5), (3, 7, 4), generator=g)
            return [model(ids, lengths, chars, torch.full((3, 7), 4))]
        if name == "CTCModel":
            return list(model(ids, lengths))
        return [model(ids, lengths)]
    raise AssertionError(f"no outputs for {name} ({family})")


ARPA_ZERO = -99.0 * math.log(10)  # ARPA has no log(0): p = 0 is written as log10 p = -99


def same(a, b) -> bool:
    """Bit-identical tensors. n-gram log-probs (float64) go through ARPA text: 8 significant digits, and
    p = 0 comes back as ARPA's floor (see test_ngram_zero_probability_survives_arpa)."""
    def close(x, y):
        if x.dtype != torch.float64:
            return torch.equal(x, y)
        zero = torch.isneginf(x)
        return bool((y[zero] <= ARPA_ZERO + 1e-6).all()) and torch.allclose(x[~zero], y[~zero], rtol=1e-6, atol=1e-7)
    return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
