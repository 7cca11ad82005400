"""Recurrent language models: vanilla RNN (tanh / ReLU), LSTM and GRU, stacked.

References:
- Mikolov et al. 2010, "Recurrent neural network based language model".
- Zaremba, Sutskever & Vinyals 2014, "Recurrent Neural Network Regularization"
  (dropout on non-recurrent connections only; the small / medium / large PTB LSTMs).
- Press & Wolf 2017, Inan et al. 2017: tying input and output embeddings.
- pytorch/examples word_language_model, whose ``RNNModel`` this follows.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from seqzoo.hub import HubMixin
from seqzoo.lm import LanguageModelTask
from seqzoo.registry import PretrainedCfg, register_model

__all__ = ["RNNLMConfig", "RNNLM", "RNNLanguageModel", "CELLS"]

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")


@dataclass
class RNNLMConfig:
    vocab_size: int = 10000
    cell: str = "lstm"
    embedding_size: int = 200
    hidden_size: int = 200
    num_layers: int = 2
    dropout: float = 0.0
    tie_weights: bool = False
    init_range: float = 0.1  # uniform(-r, r) for every weight (Zaremba); 0 keeps PyTorch's init

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; valid: {', '.join(CELLS)}")
        if min(self.vocab_size, self.embedding_size, self.hidden_size, self.num_layers) < 1:
            raise ValueError("vocab_size, embedding_size, hidden_size and num_layers must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.tie_weights and self.embedding_size != self.hidden_size:
            raise ValueError(f"tie_weights needs embedding_size == hidden_size "
                             f"(got {self.embedding_size} and {self.hidden_size})")


class RNNLM(HubMixin, nn.Module):
    """Embedding -> dropout -> stacked RNN (dropout between layers) -> dropout -> linear.

    ``forward(ids (B, T) int64, state) -> logits (B, T, vocab_size), state``; the state is
    ``h`` (layers, B, H) for RNN/GRU and ``(h, c)`` for LSTM; ``None`` means zeros.
    """

    def __init__(self, config: RNNLMConfig | None = None, **kwargs):
        super().__init__()
        self.config = c = config or RNNLMConfig(**kwargs)
        self.embed = nn.Embedding(c.vocab_size, c.embedding_size)
        self.drop = nn.Dropout(c.dropout)
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}.get(c.cell, nn.RNN)
        extra = {"nonlinearity": c.cell[4:]} if c.cell.startswith("rnn_") else {}
        self.rnn = rnn_cls(c.embedding_size, c.hidden_size, c.num_layers, batch_first=True,
                           dropout=c.dropout if c.num_layers > 1 else 0.0, **extra)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size)
        if c.tie_weights:  # one matrix for input and output embeddings
            self.decoder.weight = self.embed.weight
        if c.init_range > 0:
            for p in self.parameters():
                nn.init.uniform_(p, -c.init_range, c.init_range)

    def init_state(self, batch_size: int, device=None):
        c = self.config
        h = torch.zeros(c.num_layers, batch_size, c.hidden_size, device=device)
        return (h, h.clone()) if c.cell == "lstm" else h

    def forward(self, input_ids: torch.Tensor, state=None):
        x = self.drop(self.embed(input_ids))          # (B, T, E)
        out, state = self.rnn(x, state)               # (B, T, H)
        return self.decoder(self.drop(out)), state    # (B, T, V)


class RNNLanguageModel(LanguageModelTask):
    """LightningModule for :class:`RNNLM` (all ``RNNLMConfig`` fields, plus the optimiser's).

    Args:
        vocab_size: linked from the datamodule by the CLI.
        cell: ``rnn_tanh``, ``rnn_relu``, ``lstm`` or ``gru``.
        embedding_size: input embedding width.
        hidden_size: recurrent state width.
        num_layers: stacked recurrent layers.
        dropout: on non-recurrent connections (Zaremba et al. 2014).
        tie_weights: share the input embedding and the softmax weights.
        init_range: uniform(-r, r) init of every weight; 0 keeps PyTorch's.
        embeddings: pretrained word vectors for the input embedding (a path or a name such as
            ``glove-6b-50d``; see :func:`seqzoo.embeddings.load_embeddings`); None: random.
        freeze_embeddings: keep those vectors fixed during training.
    """

    def __init__(self, vocab_size: int = 10000, cell: str = "lstm", embedding_size: int = 200,
                 hidden_size: int = 200, num_layers: int = 2, dropout: float = 0.0, tie_weights: bool = False,
                 init_range: float = 0.1, optimizer: str = "sgd", lr: float = 20.0, momentum: float = 0.0,
                 weight_decay: float = 0.0, lr_decay: float = 1.0, decay_start: int = 0,
                 lr_schedule: str = "epoch",
                 embeddings: str | None = None, freeze_embeddings: bool = False):
        super().__init__(optimizer, lr, momentum, weight_decay, lr_decay, decay_start, lr_schedule)
        self.save_hyperparameters()
        self.net = RNNLM(RNNLMConfig(vocab_size, cell, embedding_size, hidden_size, num_layers, dropout,
                                     tie_weights, init_range))

    def setup(self, stage: str) -> None:
        # before Lightning restores a checkpoint, so a resumed run keeps its trained rows
        if stage == "fit" and self.hparams.embeddings:
            from seqzoo.embeddings import init_embedding
            dm = self.trainer.datamodule
            report = init_embedding(self.net.embed, dm.vocab, self.hparams.embeddings,
                                    freeze=self.hparams.freeze_embeddings, data_dir=dm.hparams.data_dir)
            print(report.summary())

    @property
    def model_config(self) -> dict:
        return asdict(self.net.config)


def _create(arch_defaults: dict, **kwargs) -> RNNLM:
    return RNNLM(RNNLMConfig(**{**arch_defaults, **kwargs}))


def _hub(tag: str, recipe: str) -> PretrainedCfg:
    return PretrainedCfg(hf_hub_id=f"seqzoo/{tag}", dataset="ptb", recipe=recipe)


@register_model(pretrained={"ptb_zaremba": _hub("lstm_lm_2x200.ptb_zaremba", "recipes/ptb/lstm_small.yaml")})
def lstm_lm_2x200(pretrained=False, **kwargs):
    """Zaremba et al. 2014 "small": 2 x 200 LSTM, no dropout."""
    return _create(dict(cell="lstm", embedding_size=200, hidden_size=200, num_layers=2), **kwargs)


@register_model(pretrained={"wikitext2": PretrainedCfg(hf_hub_id="seqzoo/lstm_lm_2x200_tied.wikitext2", dataset="wikitext-2",
                                                       recipe="recipes/wikitext2/lstm_tied.yaml")})
def lstm_lm_2x200_tied(pretrained=False, **kwargs):
    """pytorch/examples word_language_model with --tied: 2 x 200 LSTM, dropout 0.2, tied input/output embeddings."""
    return _create(dict(cell="lstm", embedding_size=200, hidden_size=200, num_layers=2, dropout=0.2,
                        tie_weights=True), **kwargs)


@register_model(pretrained={"wikitext2": PretrainedCfg(hf_hub_id="seqzoo/lstm_lm_2x200_dropout.wikitext2",
                                                       dataset="wikitext-2", recipe="recipes/wikitext2/lstm.yaml")})
def lstm_lm_2x200_dropout(pretrained=False, **kwargs):
    """pytorch/examples word_language_model's defaults: 2 x 200 LSTM, dropout 0.2, untied embeddings."""
    return _create(dict(cell="lstm", embedding_size=200, hidden_size=200, num_layers=2, dropout=0.2), **kwargs)


@register_model
def lstm_lm_2x650(pretrained=False, **kwargs):
    """Zaremba et al. 2014 "medium": 2 x 650 LSTM, dropout 0.5, init 0.05."""
    return _create(dict(cell="lstm", embedding_size=650, hidden_size=650, num_layers=2, dropout=0.5,
                        init_range=0.05), **kwargs)


@register_model
def lstm_lm_2x1500(pretrained=False, **kwargs):
    """Zaremba et al. 2014 "large": 2 x 1500 LSTM, dropout 0.65, init 0.04."""
    return _create(dict(cell="lstm", embedding_size=1500, hidden_size=1500, num_layers=2, dropout=0.65,
                        init_range=0.04), **kwargs)


@register_model(pretrained={"ptb": _hub("gru_lm_2x200.ptb", "recipes/ptb/gru_small.yaml")})
def gru_lm_2x200(pretrained=False, **kwargs):
    """2 x 200 GRU (Cho et al. 2014 cell), trained like the small LSTM."""
    return _create(dict(cell="gru", embedding_size=200, hidden_size=200, num_layers=2), **kwargs)


@register_model(pretrained={"ptb": _hub("rnn_lm_2x200.ptb", "recipes/ptb/rnn_small_lr5.yaml")})  # lr 20 diverges
def rnn_lm_2x200(pretrained=False, **kwargs):
    """2 x 200 vanilla tanh RNN (Elman / Mikolov 2010), trained like the small LSTM but at lr 5."""
    return _create(dict(cell="rnn_tanh", embedding_size=200, hidden_size=200, num_layers=2), **kwargs)


@register_model(pretrained={"tinyshakespeare": PretrainedCfg(
    hf_hub_id="seqzoo/char_lstm_lm_2x256.tinyshakespeare", file="char_lstm_lm_2x256.tinyshakespeare",
    dataset="tinyshakespeare", recipe="recipes/tinyshakespeare/char_lstm_2x256.yaml")})
def char_lstm_lm_2x256(pretrained=False, **kwargs):
    """A small character LSTM, 2 x 256 over 128-d embeddings; its Tiny Shakespeare weights ship in the package."""
    return _create(dict(cell="lstm", embedding_size=128, hidden_size=256, num_layers=2, dropout=0.1,
                        init_range=0.08), **kwargs)


@register_model(pretrained={"tinyshakespeare": PretrainedCfg(
    hf_hub_id="seqzoo/char_lstm_lm_3x512.tinyshakespeare", dataset="tinyshakespeare",
    recipe="recipes/tinyshakespeare/char_lstm.yaml")})
def char_lstm_lm_3x512(pretrained=False, **kwargs):
    """Karpathy's char-rnn "large": 3 x 512 LSTM over 128-d character embeddings, dropout 0.2, init 0.08."""
    return _create(dict(cell="lstm", embedding_size=128, hidden_size=512, num_layers=3, dropout=0.2,
                        init_range=0.08), **kwargs)
