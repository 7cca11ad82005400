"""Gradient-flow diagnostics: the profile is the true gradient, it vanishes for a tanh RNN and
not for an LSTM with a high forget bias, and GradientStats logs what clip_grad_norm_ sees."""
import json

import lightning as L
import pytest
import torch
import torch.nn.functional as F
import yaml

from seqzoo.data.lm import LanguageModelDataModule
from seqzoo.diagnostics import GradientStats, gradient_flow, plot_gradient_flow, run_gradient_flow
from seqzoo.models import cells
from seqzoo.models.rnn_lm import RNNLM, RNNLanguageModel


def _brute_force(model, ids, k):
    """Cut the sequence at step T-1-k with torch.nn's own RNN; the gradient w.r.t. that leaf state."""
    x, target = model.embed(ids[:, :-1]), ids[:, -1]
    T = x.shape[1]
    _, state = model.rnn(x[:, :T - k])  # h after reading x_0 .. x_{T-1-k}
    lstm = isinstance(state, tuple)
    h = (state[0] if lstm else state).detach().clone().requires_grad_()  # (layers, B, H)
    rest = (h, state[1].detach()) if lstm else h
    if k == 0:
        top = h[-1]
    else:
        out, _ = model.rnn(x[:, T - k:], rest)
        top = out[:, -1]
    loss = F.cross_entropy(model.decoder(top), target, reduction="sum")
    (g,) = torch.autograd.grad(loss, h)
    return g.pow(2).sum(dim=(0, 2)).sqrt().mean().item()


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_profile_equals_brute_force_autograd(cell):
    torch.manual_seed(0)
    m = RNNLM(vocab_size=20, cell=cell, embedding_size=6, hidden_size=8, num_layers=2, init_range=0.5).double()
    ids = torch.randint(0, 20, (3, 9))
    ks = [0, 1, 3, 7]
    profile = gradient_flow(m, ids, ks)
    assert [k for k, _ in profile] == ks
    for k, v in profile:
        assert v == pytest.approx(_brute_force(m, ids, k), rel=1e-9), k
    # the reference twin of the recurrent layer gives the same profile
    twin = {"rnn_tanh": cells.RNN, "lstm": cells.LSTM, "gru": cells.GRU}[cell](6, 8, 2).double()
    twin.load_state_dict(m.rnn.state_dict())
    m.rnn = twin
    assert [v for _, v in gradient_flow(m, ids, ks)] == pytest.approx([v for _, v in profile], rel=1e-9)


def test_stream_batch_form_and_bad_ks():
    m = RNNLM(vocab_size=20, cell="gru", embedding_size=6, hidden_size=8, num_layers=1)
    ids = torch.randint(0, 20, (3, 9))
    a = gradient_flow(m, ids, [0, 4])
    b = gradient_flow(m, ids[:, :-1], [0, 4], targets=ids[:, 1:])
    assert a == b
    with pytest.raises(ValueError, match=r"every k must be in \[0, 7\] for 8 input steps"):
        gradient_flow(m, ids, [8])


def _profiles():
    torch.manual_seed(0)
    ids = torch.randint(0, 30, (8, 31))
    ks = list(range(0, 21, 2))
    rnn = RNNLM(vocab_size=30, cell="rnn_tanh", embedding_size=16, hidden_size=32, num_layers=1, init_range=0.1)
    lstm = RNNLM(vocab_size=30, cell="lstm", embedding_size=16, hidden_size=32, num_layers=1, init_range=0.1)
    with torch.no_grad():
        lstm.rnn.bias_ih_l0[32:64] = 5.0  # forget gate rows (i, f, g, o): sigmoid(5) ~ 0.993
    return [v for _, v in gradient_flow(rnn, ids, ks)], [v for _, v in gradient_flow(lstm, ids, ks)]


def test_tanh_rnn_gradient_vanishes_lstm_keeps_it():
    rnn, lstm = _profiles()
    assert all(a > b for a, b in zip(rnn, rnn[1:])), rnn  # strictly decreasing in k
    assert rnn[-1] / rnn[0] < 1e-2  # k = 20: vanished
    # the LSTM's cell state carries it: from k=2 to k=20 it barely moves, the RNN's falls by orders
    assert lstm[-1] / lstm[1] > 0.5
    assert lstm[-1] / lstm[1] > 1e3 * rnn[-1] / rnn[1]


def test_plot_gradient_flow(tmp_path):
    path = plot_gradient_flow({"rnn": [(0, 1.0), (5, 1e-3)], "lstm": [(0, 1.0), (5, 0.5)]}, tmp_path / "g.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class _Recording(RNNLanguageModel):
    """Clips with torch.nn.utils.clip_grad_norm_ itself and keeps the norms it returns."""

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        self.returned = getattr(self, "returned", [])
        self.returned.append(float(torch.nn.utils.clip_grad_norm_(self.parameters(), gradient_clip_val)))


def test_gradient_stats_match_clip_grad_norm(tiny_corpus):
    L.seed_everything(0)
    dm = LanguageModelDataModule(str(tiny_corpus), batch_size=4, eval_batch_size=2, bptt=8)
    model = _Recording(vocab_size=dm.vocab_size, embedding_size=16, hidden_size=16, num_layers=1,
                       optimizer="sgd", lr=5.0)
    stats, clip = GradientStats(), 0.5
    trainer = L.Trainer(max_epochs=2, gradient_clip_val=clip, callbacks=[stats], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    steps = trainer.global_step
    assert steps > 4 and len(stats.norms) == len(model.returned) == steps
    assert stats.norms == pytest.approx(model.returned, rel=1e-6)
    assert stats.clipped == [n > clip for n in model.returned]
    assert 0 < sum(stats.clipped) < steps, stats.norms  # some steps clipped, some not: the flag is informative
    assert trainer.callback_metrics["grad_norm"].item() == pytest.approx(model.returned[-1], rel=1e-6)
    last_epoch = stats.clipped[steps // 2:]
    assert trainer.callback_metrics["grad_clip_fraction"].item() == pytest.approx(sum(last_epoch) / len(last_epoch))


def test_run_gradient_flow_recipe_on_tiny_corpus(tiny_corpus, tmp_path):
    cfg = tmp_path / "gf.yaml"
    cfg.write_text(yaml.safe_dump({
        "dataset": str(tiny_corpus), "split": "train", "batch_size": 2, "num_batches": 2, "ks": [0, 2, 4],
        "models": [{"name": "rnn", "model": "rnn_lm_2x200", "args": {"embedding_size": 8, "hidden_size": 8}},
                   {"name": "lstm_trained", "model": "lstm_lm_2x200", "checkpoint": str(tmp_path / "missing")}]}))
    result = run_gradient_flow(cfg)
    assert [r["name"] for r in result["runs"]] == ["rnn"]  # the untrained checkpoint is skipped
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["runs"][0]["batches"] == 2 and [k for k, _ in saved["runs"][0]["profile"]] == [0, 2, 4]
    assert (tmp_path / "gradient_flow.png").stat().st_size > 0
