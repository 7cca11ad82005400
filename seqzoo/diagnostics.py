"""Gradient-flow diagnostics: the vanishing-gradient argument, measured.

- :func:`gradient_flow`: for each ``k``, the mean norm of d loss_T / d h_{T-k}, the gradient of
  the loss at the last step w.r.t. the recurrent state k steps earlier (Bengio, Simard &
  Frasconi 1994, "Learning long-term dependencies with gradient descent is difficult";
  Hochreiter 1991; Pascanu, Mikolov & Bengio 2013, "On the difficulty of training recurrent
  neural networks"). A tanh RNN's profile falls geometrically with k; an LSTM's cell state
  (Hochreiter & Schmidhuber 1997) lets it fall much more slowly, once its forget gate is open.
- :class:`GradientStats`: a Lightning callback logging the total gradient norm before clipping
  and the fraction of steps that clipping changed (Pascanu et al. 2013's norm clipping).
- :func:`plot_gradient_flow`: the k-profiles on a log scale.
- :func:`run_gradient_flow`: the ``recipes/gradient_flow`` measurement on a real corpus.

Run the recipe::

    python -m seqzoo.diagnostics recipes/gradient_flow/gradient_flow.yaml --data-dir ../shared/data
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import nn

from seqzoo.data.lm import IGNORE_INDEX
from seqzoo.models.cells import cell_step, layer_weights
from seqzoo.utils import evaluating

__all__ = ["gradient_flow", "GradientStats", "plot_gradient_flow", "run_gradient_flow", "unroll", "set_forget_bias"]


# -- d loss_T / d h_{T-k} ---------------------------------------------------------------------------
def unroll(rnn: nn.Module, x: torch.Tensor, state=None) -> list[list]:
    """Run a stacked ``torch.nn.RNN/LSTM/GRU`` (or a :mod:`seqzoo.models.cells` twin) one step at a time.

    x (B, T, I) batch-first -> ``states[t][layer]``: h (B, H), or (h, c) for the LSTM: the state
    after step t. Each is its own autograd node (a clone) that only step t+1 reads, the layer
    above reading the un-cloned value, so the gradient w.r.t. ``states[t]`` is that w.r.t. the state
    h_t as a whole (what truncated BPTT carries), every layer of it held apart. Dropout is not applied.
    """
    mode, layers = rnn.mode, rnn.num_layers
    if state is None:
        h = x.new_zeros(layers, x.shape[0], rnn.hidden_size)
        state = (h, h) if mode == "LSTM" else h
    cur = [(state[0][k], state[1][k]) if mode == "LSTM" else state[k] for k in range(layers)]
    weights = [layer_weights(rnn, k) for k in range(layers)]
    states = []
    for t in range(x.shape[1]):
        inp = x[:, t]
        for k in range(layers):
            new = cell_step(mode, inp, cur[k], *weights[k])
            inp = new[0] if mode == "LSTM" else new
            cur[k] = tuple(v.clone() for v in new) if mode == "LSTM" else new.clone()
        states.append(list(cur))
    return states


def gradient_flow(model: nn.Module, ids: torch.Tensor, ks: Iterable[int] = range(0, 35, 5), targets=None,
                  state=None, layer: int | None = None) -> list[tuple[int, float]]:
    """Mean over the batch of || d loss_T / d h_{T-k} || for each k in ``ks``.

    Args:
        model: an RNN LM with ``embed``, ``rnn`` (stacked, batch-first) and ``decoder``
            (e.g. :class:`seqzoo.models.rnn_lm.RNNLM`); evaluated without dropout.
        ids: (B, T+1) int64: the model reads ``ids[:, :T]`` and loss_T is the cross-entropy of
            predicting ``ids[:, T]``. With ``targets`` (B, T) given, ``ids`` is (B, T) and the
            target is ``targets[:, -1]`` (a stream batch); rows whose target is ignored are skipped.
        ks: how many steps back; each must be < T.
        state: the initial recurrent state (default zeros).
        layer: the norm of that layer's h only; ``None``: of every layer's h together.

    The loss is per sequence (summed over the batch), so each row's gradient is its own loss's.
    Returns ``[(k, mean norm), ...]`` in the order of ``ks``.
    """
    ks = list(ks)
    if targets is None:
        ids, target = ids[:, :-1], ids[:, -1]
    else:
        target = targets[:, -1]
    T = ids.shape[1]
    if not ks or min(ks) < 0 or max(ks) >= T:
        raise ValueError(f"every k must be in [0, {T - 1}] for {T} input steps, got {ks}")
    keep = target != IGNORE_INDEX
    if not keep.any():
        raise ValueError("every row's last target is ignored (padding): nothing to measure")
    with evaluating(model), torch.enable_grad():
        states = unroll(model.rnn, model.embed(ids), state)
        top = states[-1][-1]
        h_top = top[0] if isinstance(top, tuple) else top
        loss = F.cross_entropy(model.decoder(h_top), target, ignore_index=IGNORE_INDEX, reduction="sum")
        layers = range(len(states[0])) if layer is None else [layer]
        wrt = [_h(states[T - 1 - k][l]) for k in ks for l in layers]
        grads = torch.autograd.grad(loss, wrt, materialize_grads=True)  # k=0: lower layers unused
    n = len(layers)
    out = []
    for j, k in enumerate(ks):
        sq = sum(g.pow(2).sum(-1) for g in grads[j * n:(j + 1) * n])  # (B,)
        out.append((k, float(sq.sqrt()[keep].mean())))
    return out


def _h(s):
    return s[0] if isinstance(s, tuple) else s


def set_forget_bias(rnn: nn.Module, value: float) -> None:
    """Set every LSTM layer's forget-gate bias to ``value`` (b_if = value, b_hf = 0), in place.

    Gers et al. 2000 start it positive; Jozefowicz, Zaremba & Sutskever 2015 recommend 1. The
    cell state's gradient is multiplied by f = sigmoid(.) at every step back, ~0.5 at a zero bias.
    """
    if rnn.mode != "LSTM":
        raise ValueError(f"forget_bias needs an LSTM, got a {rnn.mode} layer")
    H = rnn.hidden_size
    with torch.no_grad():
        for k in range(rnn.num_layers):
            _, _, b_ih, b_hh = layer_weights(rnn, k)
            if b_ih is None:
                raise ValueError("forget_bias needs an LSTM with biases")
            b_ih[H:2 * H] = value  # gate rows i, f, g, o
            b_hh[H:2 * H] = 0.0


# -- gradient statistics during training ------------------------------------------------------------
class GradientStats(Callback):
    """Log the total gradient norm before clipping and the fraction of steps clipping changed.

    Logged every step: ``grad_norm`` (2-norm over every parameter's gradient, the value
    ``torch.nn.utils.clip_grad_norm_`` returns) and ``grad_clip_fraction`` (running fraction of this
    epoch's steps whose norm exceeded ``trainer.gradient_clip_val``; for the ``value`` algorithm, whose
    largest |gradient| did). ``norms`` and ``clipped`` keep every step's values.
    """

    def __init__(self, norm_type: float = 2.0):
        super().__init__()
        self.norm_type = norm_type
        self.norms: list[float] = []
        self.clipped: list[bool] = []
        self._epoch_steps = self._epoch_clipped = 0

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_steps = self._epoch_clipped = 0

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        # Lightning calls this after backward (and AMP unscaling) and before it clips.
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        if not grads:
            return
        norm = float(torch.nn.utils.get_total_norm(grads, self.norm_type))
        clip = trainer.gradient_clip_val
        if not clip:
            clipped = False
        elif trainer.gradient_clip_algorithm == "value":
            clipped = max(float(g.abs().max()) for g in grads) > clip
        else:
            clipped = norm > clip
        self.norms.append(norm)
        self.clipped.append(clipped)
        self._epoch_steps += 1
        self._epoch_clipped += int(clipped)
        pl_module.log("grad_norm", norm, on_step=True, on_epoch=False)
        pl_module.log("grad_clip_fraction", self._epoch_clipped / self._epoch_steps, on_step=True, on_epoch=False)


# -- plotting -----------------------------------------------------------------------------------------
def plot_gradient_flow(results: dict[str, list[tuple[int, float]]], path: str | Path,
                       title: str = "gradient flow: || d loss_T / d h_(T-k) ||") -> Path:
    """One line per model: k on x, the mean gradient norm on a log-scale y; written to ``path`` (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, profile in results.items():
        ks, norms = zip(*profile)
        ax.plot(ks, norms, marker="o", ms=3, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("k (steps back from the loss)")
    ax.set_ylabel("mean gradient norm")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- the recipe ---------------------------------------------------------------------------------------
def run_gradient_flow(config: str | Path, data_dir: str | None = None, out_dir: str | Path | None = None) -> dict:
    """Measure every model of a gradient-flow recipe YAML; write ``results.json`` and ``gradient_flow.png``.

    The YAML holds ``dataset``, ``split``, ``batch_size``, ``num_batches``, ``ks``, ``seed`` and
    ``models``: a list of ``{name, model, args, forget_bias, checkpoint}`` where ``model`` is a
    registered name, randomly initialised (``args``: size overrides; ``forget_bias``: see
    :func:`set_forget_bias`), and ``checkpoint`` (optional) a trained checkpoint folder to load
    instead (:func:`seqzoo.hub.from_pretrained`); a folder that does not exist yet is skipped.
    Each batch is a slice of ``max(ks) + 2`` tokens per column of the split's stream; the
    recurrent state is carried from slice to slice (zeros before the first).
    """
    import seqzoo
    from seqzoo.data.lm import LanguageModelDataModule, StreamBatches
    from seqzoo.recipes import read_spec

    config = Path(config)
    if not config.is_file():
        raise FileNotFoundError(f"gradient-flow config not found: {config}")
    spec = read_spec(config, "gradient-flow config")
    if not spec.get("ks") or not spec.get("models"):
        raise ValueError(f"{config}: needs a list 'ks' (steps back) and a list 'models'")
    ks = [int(k) for k in spec["ks"]]
    out_dir = Path(out_dir) if out_dir else config.parent
    dm = LanguageModelDataModule(spec.get("dataset", "ptb"), data_dir)
    dm.setup()
    split = spec.get("split", "valid")
    if split not in dm.ids:
        raise ValueError(f"dataset {spec.get('dataset')!r} has no split {split!r}; available: {', '.join(dm.ids)}")
    batches = StreamBatches(dm.ids[split], spec.get("batch_size", 20), max(ks) + 2, dm.vocab.eos_id,
                            dm.vocab.pad_id)
    runs, profiles = [], {}
    for m in spec["models"]:
        ckpt = m.get("checkpoint")
        if ckpt and not Path(ckpt).exists():  # trained runs join once their checkpoints exist
            print(f"skipping {m['name']}: checkpoint folder {ckpt} not found (not trained yet)")
            continue
        torch.manual_seed(spec.get("seed", 0))
        model = seqzoo.from_pretrained(ckpt) if ckpt else seqzoo.create_model(m["model"], vocab_size=dm.vocab_size,
                                                                                 **m.get("args", {}))
        if m.get("forget_bias") is not None:
            set_forget_bias(model.rnn, m["forget_bias"])
        model.eval()
        sums, n, state = [0.0] * len(ks), 0, None
        for _, b in zip(range(spec.get("num_batches", 5)), batches):
            ids, tgt = b["input_ids"], b["targets"]
            if ids.shape[1] < max(ks) + 1:
                break
            prof = gradient_flow(model, ids, ks, targets=tgt, state=state)
            sums = [s + v for s, (_, v) in zip(sums, prof)]
            n += 1
            with torch.no_grad():  # carry the state into the next slice, as in training
                _, state = model.rnn(model.embed(ids), state)
        if n == 0:
            raise ValueError(f"split {split!r} is too short for slices of {max(ks) + 2} tokens per column")
        profile = [(k, s / n) for k, s in zip(ks, sums)]
        profiles[m["name"]] = profile
        runs.append({"name": m["name"], "model": m.get("model"), "checkpoint": ckpt,
                     "init": "trained" if ckpt else "random", "batches": n,
                     "profile": [[k, v] for k, v in profile],
                     "ratio_last_to_first": profile[-1][1] / profile[0][1]})
        print(f"{m['name']}: " + "  ".join(f"k={k}: {v:.3g}" for k, v in profile))
    result = {"config": str(config), "dataset": spec.get("dataset", "ptb"), "split": split,
              "batch_size": spec.get("batch_size", 20), "ks": ks, "seed": spec.get("seed", 0), "runs": runs}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    if profiles:
        plot_gradient_flow(profiles, out_dir / "gradient_flow.png",
                           title=f"|| d loss_T / d h_(T-k) || on {result['dataset']} {split}")
    return result


def main(argv=None) -> int:
    """``seqzoo gradient-flow CONFIG [--data-dir D] [--out-dir O]``."""
    p = argparse.ArgumentParser(prog="seqzoo gradient-flow", description=run_gradient_flow.__doc__.splitlines()[0])
    p.add_argument("config", help="recipe YAML, e.g. recipes/gradient_flow/gradient_flow.yaml")
    p.add_argument("--data-dir", default=None, help="local mirror of the corpora (default: $SEQZOO_DATA)")
    p.add_argument("--out-dir", default=None, help="where results.json and the PNG go (default: the config's folder)")
    a = p.parse_args(argv)
    run_gradient_flow(a.config, a.data_dir, a.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
