"""Reference recurrent cells written from the textbook equations, and a stacked sequence wrapper.

Slow but readable twins of ``torch.nn.RNN`` / ``LSTM`` / ``GRU``, with the same parameter names
and layout (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``; gate rows
in the order i, f, g, o for the LSTM and r, z, n for the GRU), so ``load_state_dict`` works both
ways and the two give the same outputs and gradients. They exist to be read, and to be unrolled
one step at a time (:mod:`seqzoo.diagnostics` measures gradients w.r.t. every ``h_t``).

References:
- Elman 1990, "Finding Structure in Time": h' = tanh(W_ih x + b_ih + W_hh h + b_hh).
- Hochreiter & Schmidhuber 1997, "Long Short-Term Memory"; the forget gate of Gers, Schmidhuber
  & Cummins 2000, "Learning to Forget":
      i, f, o = sigmoid(.), g = tanh(.)   (each W_i* x + b_i* + W_h* h + b_h*)
      c' = f * c + i * g,   h' = o * tanh(c')
- Cho et al. 2014, "Learning Phrase Representations using RNN Encoder-Decoder", in PyTorch's
  variant where the reset gate multiplies (W_hn h + b_hn) rather than h:
      r, z = sigmoid(.),   n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),   h' = (1 - z) * n + z * h
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["rnn_step", "lstm_step", "gru_step", "cell_step", "layer_weights", "RNNCell", "LSTMCell", "GRUCell",
           "RNN", "LSTM", "GRU", "MODES"]

MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")  # the values of torch.nn.RNNBase.mode
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# -- one time step, as functions of the weights ---------------------------------------------------
def _affine(x, w, b):
    return F.linear(x, w, b)


def rnn_step(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity: str = "tanh"):
    """Elman step: x (B, I), h (B, H) -> h' (B, H)."""
    a = _affine(x, w_ih, b_ih) + _affine(h, w_hh, b_hh)
    return torch.tanh(a) if nonlinearity == "tanh" else torch.relu(a)


def lstm_step(x, state, w_ih, w_hh, b_ih=None, b_hh=None):
    """LSTM step: x (B, I), (h, c) each (B, H) -> (h', c'); gate rows i, f, g, o."""
    h, c = state
    i, f, g, o = (_affine(x, w_ih, b_ih) + _affine(h, w_hh, b_hh)).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_step(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """GRU step: x (B, I), h (B, H) -> h' (B, H); gate rows r, z, n."""
    xr, xz, xn = _affine(x, w_ih, b_ih).chunk(3, dim=-1)
    hr, hz, hn = _affine(h, w_hh, b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)  # r gates (W_hn h + b_hn), as in PyTorch and cuDNN
    return (1 - z) * n + z * h


def cell_step(mode: str, x, state, w_ih, w_hh, b_ih=None, b_hh=None):
    """One step of any cell; ``mode`` is one of :data:`MODES`; the LSTM state is ``(h, c)``."""
    if mode == "LSTM":
        return lstm_step(x, state, w_ih, w_hh, b_ih, b_hh)
    if mode == "GRU":
        return gru_step(x, state, w_ih, w_hh, b_ih, b_hh)
    if mode in ("RNN_TANH", "RNN_RELU"):
        return rnn_step(x, state, w_ih, w_hh, b_ih, b_hh, "tanh" if mode == "RNN_TANH" else "relu")
    raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")


def layer_weights(rnn: nn.Module, layer: int) -> tuple:
    """(w_ih, w_hh, b_ih, b_hh) of ``layer`` of a torch.nn.RNN/LSTM/GRU or of this module's twins."""
    if getattr(rnn, "bidirectional", False) or getattr(rnn, "proj_size", 0):
        raise ValueError("bidirectional and projected recurrent layers are not supported")
    return tuple(getattr(rnn, f"{n}_l{layer}", None) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


# -- single cells (the parameter names of torch.nn.RNNCell / LSTMCell / GRUCell) -------------------
class _Cell(nn.Module):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"input_size and hidden_size must be >= 1, got {input_size} and {hidden_size}")
        rows = _GATES[self.mode] * hidden_size
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(rows)) if bias else None
        _init_uniform(self, hidden_size)

    def forward(self, x, state=None):
        """x (B, I) -> the next state, (B, H) (``(h, c)`` for the LSTM); ``None`` state = zeros."""
        if state is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
            state = (h, h) if self.mode == "LSTM" else h
        return cell_step(self.mode, x, state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class RNNCell(_Cell):
    """Elman cell, tanh or ReLU: ``RNNCell(I, H, nonlinearity="relu")``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"):
        self.mode = _rnn_mode(nonlinearity)
        super().__init__(input_size, hidden_size, bias)


class LSTMCell(_Cell):
    """LSTM cell with a forget gate; the state is ``(h, c)``."""
    mode = "LSTM"


class GRUCell(_Cell):
    """GRU cell (PyTorch's variant of Cho et al. 2014)."""
    mode = "GRU"


# -- stacked layers over a sequence ---------------------------------------------------------------
class _Stack(nn.Module):
    """Stacked cells over time; batch-first by default; dropout on every layer's output but the last.

    ``forward(x (B, T, I), state) -> out (B, T, H), state`` with the state ``h`` (layers, B, H)
    (``(h, c)`` for the LSTM), exactly as ``torch.nn.RNN/LSTM/GRU(..., batch_first=True)``.
    """
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = True, dropout: float = 0.0):
        super().__init__()
        if min(input_size, hidden_size, num_layers) < 1:
            raise ValueError(f"input_size, hidden_size and num_layers must be >= 1, got "
                             f"{input_size}, {hidden_size}, {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        rows = _GATES[self.mode] * hidden_size
        for k in range(num_layers):
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(rows, input_size if k == 0
                                                                                else hidden_size)))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(rows, hidden_size)))
            if bias:
                self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(rows)))
                self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(rows)))
        _init_uniform(self, hidden_size)

    def init_state(self, batch_size: int, device=None, dtype=None):
        h = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=device, dtype=dtype)
        return (h, h.clone()) if self.mode == "LSTM" else h

    def step(self, x, states: list) -> list:
        """One time step through every layer: x (B, I), per-layer states -> new per-layer states."""
        new = []
        for k, s in enumerate(states):
            s = cell_step(self.mode, x, s, *layer_weights(self, k))
            new.append(s)
            x = s[0] if self.mode == "LSTM" else s
            if self.training and self.dropout > 0 and k < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return new

    def forward(self, x, state=None):
        if not self.batch_first:
            x = x.transpose(0, 1)
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        lstm = self.mode == "LSTM"
        states = [(state[0][k], state[1][k]) if lstm else state[k] for k in range(self.num_layers)]
        outputs = []
        for t in range(x.shape[1]):
            states = self.step(x[:, t], states)
            outputs.append(states[-1][0] if lstm else states[-1])
        out = torch.stack(outputs, 1) if outputs else x.new_zeros(x.shape[0], 0, self.hidden_size)  # (B, T, H)
        if lstm:
            final = (torch.stack([s[0] for s in states]), torch.stack([s[1] for s in states]))
        else:
            final = torch.stack(states)  # (layers, B, H)
        return (out if self.batch_first else out.transpose(0, 1)), final


class RNN(_Stack):
    """Stacked Elman RNN, ``nonlinearity`` ``tanh`` or ``relu`` (torch.nn.RNN's twin)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = True, dropout: float = 0.0):
        self.mode = _rnn_mode(nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout)


class LSTM(_Stack):
    """Stacked LSTM (torch.nn.LSTM's twin, without projections)."""
    mode = "LSTM"


class GRU(_Stack):
    """Stacked GRU (torch.nn.GRU's twin)."""
    mode = "GRU"


def _rnn_mode(nonlinearity: str) -> str:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; valid: tanh, relu")
    return f"RNN_{nonlinearity.upper()}"


def _init_uniform(module: nn.Module, hidden_size: int) -> None:
    """PyTorch's default: every weight and bias uniform(-1/sqrt(H), 1/sqrt(H))."""
    r = 1.0 / math.sqrt(hidden_size)
    for p in module.parameters():
        nn.init.uniform_(p, -r, r)
