"""Fixed-window (feed-forward) neural language model.

References:
- Bengio, Ducharme, Vincent & Jauvin 2003, "A Neural Probabilistic Language Model" (JMLR 3):
  the n-1 previous words' embeddings C(w) are concatenated into x, and
      y = b + W x + U tanh(d + H x),   P(w_t | context) = softmax(y)
  with W the optional "direct connections" from the embeddings to the output.
- Mikolov et al. 2011, "Empirical Evaluation and Combination of Advanced Language Modeling
  Techniques": a feed-forward NNLM on Penn Treebank (test perplexity 140.2).

The net reads the same token stream as the recurrent LMs: ``forward(ids (B, T), state)`` where the
state is the last ``context_size - 1`` tokens of the previous batch, so every window crosses batch
boundaries exactly as the stream does; before the first batch the context is ``<eos>`` (the
stream's own start symbol).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from seqzoo.data.vocab import EOS, SPECIALS
from seqzoo.hub import HubMixin
from seqzoo.lm import LanguageModelTask
from seqzoo.registry import PretrainedCfg, register_model

__all__ = ["WindowLMConfig", "WindowLM", "WindowLanguageModel", "START_ID"]

START_ID = SPECIALS.index(EOS)  # 1: what the context holds before the stream starts


@dataclass
class WindowLMConfig:
    vocab_size: int = 10000
    context_size: int = 4  # n - 1 previous words: a 5-gram model
    embedding_size: int = 60  # m in the paper
    hidden_size: int = 50  # h in the paper
    direct: bool = True  # direct connections W from the embeddings to the output
    dropout: float = 0.0  # on the concatenated embeddings and on the hidden layer
    init_range: float = 0.0  # uniform(-r, r) for every weight; 0 keeps PyTorch's init (N(0, 1) embeddings)

    def __post_init__(self):
        for name in ("vocab_size", "context_size", "embedding_size", "hidden_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.init_range < float("inf"):
            raise ValueError(f"init_range must be a finite number >= 0, got {self.init_range}")


class WindowLM(HubMixin, nn.Module):
    """Concatenated context embeddings -> tanh hidden layer -> softmax (+ direct connections).

    ``forward(ids (B, T) int64, state) -> logits (B, T, vocab_size), state``. The state is the last
    ``context_size - 1`` tokens read, time-major (context_size - 1, B) int64 like an RNN's
    (layers, B, H), so :class:`~seqzoo.lm.LanguageModelTask` carries it from batch to batch;
    ``None`` means ``<eos>`` everywhere.
    """

    def __init__(self, config: WindowLMConfig | None = None, **kwargs):
        super().__init__()
        self.config = c = config or WindowLMConfig(**kwargs)
        self.embed = nn.Embedding(c.vocab_size, c.embedding_size)  # C
        self.drop = nn.Dropout(c.dropout)
        self.hidden = nn.Linear(c.context_size * c.embedding_size, c.hidden_size)  # H, d
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size)  # U, b
        self.direct = nn.Linear(c.context_size * c.embedding_size, c.vocab_size, bias=False) if c.direct else None
        if c.init_range > 0:
            for p in self.parameters():
                nn.init.uniform_(p, -c.init_range, c.init_range)

    def init_state(self, batch_size: int, device=None):
        return torch.full((self.config.context_size - 1, batch_size), START_ID, dtype=torch.long, device=device)

    def forward(self, input_ids: torch.Tensor, state=None):
        B, T = input_ids.shape
        n1 = self.config.context_size
        if state is None:
            state = self.init_state(B, input_ids.device)
        if state.shape != (n1 - 1, B):
            raise ValueError(f"state must be ({n1 - 1}, {B}) previous tokens, got {tuple(state.shape)}")
        ctx = torch.cat([state.t(), input_ids], 1)              # (B, n1 - 1 + T)
        windows = ctx.unfold(1, n1, 1)                          # (B, T, n1), oldest word first
        x = self.drop(self.embed(windows).flatten(2))           # (B, T, n1 * E)
        logits = self.decoder(self.drop(torch.tanh(self.hidden(x))))  # (B, T, V)
        if self.direct is not None:
            logits = logits + self.direct(x)
        return logits, ctx[:, ctx.shape[1] - (n1 - 1):].t().contiguous()  # (n1 - 1, B)


class WindowLanguageModel(LanguageModelTask):
    """LightningModule for :class:`WindowLM` (all ``WindowLMConfig`` fields, plus the optimiser's).

    Args:
        vocab_size: linked from the datamodule by the CLI.
        context_size: n - 1, the number of previous words the model sees.
        embedding_size: word feature vector width (m).
        hidden_size: tanh hidden units (h).
        direct: direct connections from the embeddings to the output.
        dropout: on the concatenated embeddings and the hidden layer.
        init_range: uniform(-r, r) init of every weight; 0 keeps PyTorch's.
    """

    def __init__(self, vocab_size: int = 10000, context_size: int = 4, embedding_size: int = 60,
                 hidden_size: int = 50, direct: bool = True, dropout: float = 0.0, init_range: float = 0.0,
                 optimizer: str = "adam",
                 lr: float = 1e-3, momentum: float = 0.0, weight_decay: float = 0.0, lr_decay: float = 1.0,
                 decay_start: int = 0, lr_schedule: str = "epoch"):
        super().__init__(optimizer, lr, momentum, weight_decay, lr_decay, decay_start, lr_schedule)
        self.save_hyperparameters()
        self.net = WindowLM(WindowLMConfig(vocab_size, context_size, embedding_size, hidden_size, direct, dropout,
                                              init_range))

    @property
    def model_config(self) -> dict:
        return asdict(self.net.config)


def _create(arch_defaults: dict, **kwargs) -> WindowLM:
    return WindowLM(WindowLMConfig(**{**arch_defaults, **kwargs}))


@register_model
def window_lm_5gram(pretrained=False, **kwargs):
    """Bengio et al. 2003's Brown-corpus "MLP1": n = 5, m = 60 features, h = 50 tanh units, direct connections."""
    return _create(dict(context_size=4, embedding_size=60, hidden_size=50, direct=True), **kwargs)


@register_model
def window_lm_6gram(pretrained=False, **kwargs):
    """Bengio et al. 2003's AP News model: n = 6, m = 100 features, h = 60 tanh units, direct connections."""
    return _create(dict(context_size=5, embedding_size=100, hidden_size=60, direct=True), **kwargs)


@register_model(pretrained={"ptb": PretrainedCfg(hf_hub_id="seqzoo/window_lm_5gram_h200.ptb", dataset="ptb",
                                                 recipe="recipes/ptb/window_lm.yaml")})
def window_lm_5gram_h200(pretrained=False, **kwargs):
    """n = 5 on Penn Treebank: 4 x 100 features, 200 tanh units, direct connections, dropout 0.4, init 0.1."""
    return _create(dict(context_size=4, embedding_size=100, hidden_size=200, direct=True, dropout=0.4,
                        init_range=0.1), **kwargs)


@register_model(pretrained={"ptb": PretrainedCfg(hf_hub_id="seqzoo/window_lm_5gram_h500.ptb", dataset="ptb",
                                                 recipe="recipes/ptb/window_lm_nodirect.yaml")})
def window_lm_5gram_h500(pretrained=False, **kwargs):
    """n = 5 on Penn Treebank: 4 x 100 features, 500 tanh units, no direct connections, dropout 0.5, init 0.1."""
    return _create(dict(context_size=4, embedding_size=100, hidden_size=500, direct=False, dropout=0.5,
                        init_range=0.1), **kwargs)
