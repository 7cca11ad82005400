"""The reference cells equal torch.nn.RNN / LSTM / GRU: outputs, final states and every gradient."""
import pytest
import torch
from torch import nn

from seqzoo.models import cells

KINDS = {  # name -> (ours, torch's, extra kwargs)
    "rnn_tanh": (cells.RNN, nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (cells.RNN, nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (cells.LSTM, nn.LSTM, {}),
    "gru": (cells.GRU, nn.GRU, {}),
}
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _pair(kind, dtype, num_layers=3, bias=True):
    ours_cls, ref_cls, extra = KINDS[kind]
    torch.manual_seed(0)
    ref = ref_cls(5, 7, num_layers, batch_first=True, bias=bias, **extra).to(dtype)
    ours = ours_cls(5, 7, num_layers, batch_first=True, bias=bias, **extra).to(dtype)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _state(kind, dtype, layers=3, batch=4, hidden=7):
    g = torch.Generator().manual_seed(1)
    h = torch.randn(layers, batch, hidden, generator=g, dtype=dtype)
    return (h, torch.randn(layers, batch, hidden, generator=g, dtype=dtype)) if kind == "lstm" else h


def _flat(state):
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
def test_matches_torch_outputs_states_and_gradients(kind, dtype, with_state):
    ours, ref = _pair(kind, dtype)
    x = torch.randn(4, 6, 5, dtype=dtype, generator=torch.Generator().manual_seed(2))
    results = []
    for m in (ours, ref):
        xi = x.clone().requires_grad_()
        s0 = [s.clone().requires_grad_() for s in _flat(_state(kind, dtype))] if with_state else None
        state = None if s0 is None else (tuple(s0) if kind == "lstm" else s0[0])
        out, final = m(xi, state)
        # a loss that touches the outputs and every part of the final state, with uneven weights
        w = torch.linspace(-1, 2, out.numel(), dtype=dtype).reshape(out.shape)
        loss = (out * w).sum() + sum((s ** 2).sum() for s in _flat(final))
        grads = torch.autograd.grad(loss, [xi, *(s0 or []), *m.parameters()])
        results.append((out, _flat(final), grads))
    (o1, f1, g1), (o2, f2, g2) = results
    tol = TOL[dtype]
    assert o1.shape == o2.shape == (4, 6, 7)
    torch.testing.assert_close(o1, o2, atol=tol, rtol=tol)
    for a, b in zip(f1, f2):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)
    assert len(g1) == len(g2) == 1 + (len(f1) if with_state else 0) + len(list(ref.parameters()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


@pytest.mark.parametrize("kind", list(KINDS))
def test_no_bias_and_time_major_match_torch(kind):
    ours, ref = _pair(kind, torch.float64, num_layers=2, bias=False)
    assert not any("bias" in n for n, _ in ours.named_parameters())
    x = torch.randn(3, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])
    ours.batch_first = ref.batch_first = False
    xt = x.transpose(0, 1)
    torch.testing.assert_close(ours(xt)[0], ref(xt)[0])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_state_dict_loads_into_torch(kind):
    """The layout is torch's: our weights load into torch.nn modules too."""
    ours_cls, ref_cls, _ = KINDS[kind]
    ours = ours_cls(3, 4, 2).double()
    ref = ref_cls(3, 4, 2, batch_first=True).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])


@pytest.mark.parametrize("kind,cell_cls,ref_cls", [("lstm", cells.LSTMCell, nn.LSTMCell),
                                                   ("gru", cells.GRUCell, nn.GRUCell),
                                                   ("rnn_tanh", cells.RNNCell, nn.RNNCell)])
def test_single_cells_match_torch_cells(kind, cell_cls, ref_cls):
    ref = ref_cls(3, 4).double()
    ours = cell_cls(3, 4).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, dtype=torch.float64)
    a, b = ours(x), ref(x)
    for u, v in zip(_flat(a), _flat(b)):
        torch.testing.assert_close(u, v)


def test_dropout_between_layers_only_in_training():
    m = cells.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = torch.randn(2, 5, 3)
    m.eval()
    torch.testing.assert_close(m(x)[0], m(x)[0])
    m.train()
    torch.manual_seed(0)
    a = m(x)[0]
    torch.manual_seed(1)
    assert not torch.allclose(a, m(x)[0])
    one = cells.LSTM(3, 4, num_layers=1, dropout=0.5)   # as torch.nn.LSTM: never after the last layer
    torch.testing.assert_close(one.train()(x)[0], one.eval()(x)[0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown nonlinearity 'sigmoid'; valid: tanh, relu"):
        cells.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout must be in"):
        cells.GRU(3, 4, dropout=1.0)
    with pytest.raises(ValueError, match="unknown mode 'LSTMM'"):
        cells.cell_step("LSTMM", None, None, None, None)
    with pytest.raises(ValueError, match="bidirectional"):
        cells.layer_weights(nn.LSTM(3, 4, bidirectional=True), 0)
