"""``LanguageModelTask``: the one LightningModule that trains any registered language model.

The wrapped network is a plain ``nn.Module`` with ``forward(ids (B, T), state) -> (logits
(B, T, V), state)`` and ``init_state(batch_size)``; this class adds the loss, the
truncated-BPTT state carry, the optimiser and LR schedule, and the metrics. Perplexity is
token-weighted over the whole split (torchmetrics sums log-probs and counts, across ranks
too), never an average of batch averages.
"""
from __future__ import annotations

import math

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric, SumMetric
from torchmetrics.text import Perplexity

from seqzoo.data.lm import IGNORE_INDEX
from seqzoo.hub import HubMixin
from seqzoo.utils import batched, evaluating, require

__all__ = ["LanguageModelTask", "detach_state", "stream_perplexity", "score_lines", "OPTIMIZERS"]

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("epoch", "plateau")


def detach_state(state):
    """Cut the graph at the batch boundary (truncated BPTT); works on tensors and tuples."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return tuple(detach_state(s) for s in state)


class LanguageModelTask(HubMixin, L.LightningModule):
    """Training, evaluation and optimisation shared by every LM family.

    Subclasses build ``self.net`` in ``__init__`` and call ``save_hyperparameters()``.

    Args:
        optimizer: ``sgd``, ``adam`` or ``adamw``.
        lr: learning rate (of the mean per-token loss).
        momentum: SGD momentum.
        weight_decay: L2 / decoupled weight decay.
        lr_decay: multiply the LR by this once per epoch from epoch ``decay_start`` on
            (Zaremba et al. 2014); 1.0 keeps it constant.
        decay_start: first epoch (1-based) trained at the decayed LR is ``decay_start + 1``.
        lr_schedule: ``epoch`` (the decay above) or ``plateau``: multiply the LR by ``lr_decay`` after
            every epoch whose validation perplexity is not below the best so far, as pytorch/examples'
            word_language_model does with 0.25 (``decay_start`` is then unused).
    """

    net: nn.Module

    def __init__(self, optimizer: str = "sgd", lr: float = 20.0, momentum: float = 0.0,
                 weight_decay: float = 0.0, lr_decay: float = 1.0, decay_start: int = 0,
                 lr_schedule: str = "epoch"):
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if lr_schedule not in SCHEDULES:
            raise ValueError(f"unknown lr_schedule {lr_schedule!r}; valid: {', '.join(SCHEDULES)}")
        if lr_schedule == "plateau" and not 0.0 < lr_decay < 1.0:
            raise ValueError(f"lr_schedule plateau needs 0 < lr_decay < 1, got {lr_decay}")
        self.optim_args = dict(optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay,
                               lr_decay=lr_decay, decay_start=decay_start, lr_schedule=lr_schedule)
        self.train_nll = MeanMetric()
        self.valid_ppl = Perplexity(ignore_index=IGNORE_INDEX)
        self.test_ppl = Perplexity(ignore_index=IGNORE_INDEX)
        self.valid_tokens = SumMetric()  # tokens scored, summed over ranks: a check that none is lost
        self.test_tokens = SumMetric()
        self._state = {}
        self._resume = None  # carried state + RNG from a checkpoint, put back in on_train_start
        self._rng = None  # the RNG state as the last training step left it (see on_save_checkpoint)

    def forward(self, input_ids: torch.Tensor, state=None):
        """(B, T) int64 -> logits (B, T, V) float, new state."""
        return self.net(input_ids, state)

    # -- state carry -----------------------------------------------------------------------------
    def _step(self, batch: dict, split: str):
        ids, targets = batch["input_ids"], batch["targets"]
        stream = "lengths" not in batch  # sentence batches start from a fresh state
        state = self._state.get(split) if stream else None
        if state is not None and _batch_size(state) != ids.shape[0]:
            state = None
        logits, state = self(ids, state)
        if stream:
            self._state[split] = detach_state(state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                               ignore_index=IGNORE_INDEX)
        return logits, loss, targets

    def _reset(self, split: str):
        self._state.pop(split, None)

    def on_fit_start(self):
        # A validate() / test() before fit() leaves metric states made under inference_mode,
        # which fit's validation (under no_grad) may not update in place: make them anew.
        for m in (self.train_nll, self.valid_ppl, self.test_ppl, self.valid_tokens, self.test_tokens):
            m.reset()
        self._state.clear()

    def on_train_start(self):
        # After a checkpoint is restored (Lightning calls no on_train_epoch_start when it resumes
        # mid-epoch): carry on exactly where the checkpoint was taken.
        resume, self._resume = self._resume, None
        if resume is not None:
            if resume["train_state"] is not None:  # taken mid-epoch; Lightning loads it onto the CPU
                self._state["train"] = move_data_to_device(resume["train_state"], self.device)
            torch.set_rng_state(resume["rng"])
            if resume.get("plateau_step") is not None:  # the step Lightning skips on resuming (see below)
                self.trainer.lr_scheduler_configs[0].scheduler.step(resume["plateau_step"])

    def on_train_epoch_start(self):
        self._reset("train")

    # -- exact resume: what Lightning does not save itself ------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)  # the vocabulary (HubMixin)
        t = self._trainer
        mid_epoch = t is not None and 0 < t.fit_loop.epoch_loop.batch_progress.current.processed < t.num_training_batches
        # Mid-epoch, the RNG as the last training step left it: a run stopped inside an epoch (max_time) validates
        # before it saves, and starting the validation loader draws from the RNG.
        checkpoint["seqzoo"] = {"train_state": self._state.get("train") if mid_epoch else None,
                                "rng": self._rng if mid_epoch and self._rng is not None else torch.get_rng_state(),
                                "mid_epoch": bool(mid_epoch),
                                "plateau_step": self._pending_plateau_step(t)}

    def _pending_plateau_step(self, t) -> float | None:
        """A checkpoint taken at an epoch's end comes before that epoch's LR scheduler step. Lightning makes up
        for it on resuming, except for a plateau scheduler, whose metric it does not save: the validation
        perplexity that step needs, for on_train_start to take it."""
        config = t.lr_scheduler_configs[0] if t is not None and t.lr_scheduler_configs else None
        if config is None or not config.reduce_on_plateau or config.monitor not in t.callback_metrics:
            return None
        epochs, loop = t.fit_loop.epoch_progress.current, t.fit_loop.epoch_loop
        ended = epochs.processed > epochs.completed and loop._num_ready_batches_reached()
        return float(t.callback_metrics[config.monitor]) if ended else None

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._resume = checkpoint.get("seqzoo")
        if self._resume is not None and self._resume.get("mid_epoch"):
            _reopen_stopped_epoch(checkpoint)

    def on_validation_epoch_start(self):
        self._reset("valid")

    def on_test_epoch_start(self):
        self._reset("test")

    # -- steps -----------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        _, loss, targets = self._step(batch, "train")
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss.item()} at step {self.global_step}: stopping "
                                     f"(lower the learning rate or clip gradients)")
        n = (targets != IGNORE_INDEX).sum()
        self.train_nll.update(loss.detach(), n)
        self._rng = torch.get_rng_state()  # what a mid-epoch checkpoint resumes from (see on_save_checkpoint)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def on_train_epoch_end(self):
        nll = self.train_nll.compute()
        self.log("train_perplexity", torch.exp(nll), sync_dist=False)
        self.train_nll.reset()

    def validation_step(self, batch, batch_idx):
        logits, loss, targets = self._step(batch, "valid")
        self.valid_ppl.update(logits, targets)
        self.valid_tokens.update((targets != IGNORE_INDEX).sum())
        self.log("valid_perplexity", self.valid_ppl, prog_bar=True)
        self.log("valid_tokens", self.valid_tokens)

    def test_step(self, batch, batch_idx):
        logits, loss, targets = self._step(batch, "test")
        self.test_ppl.update(logits, targets)
        self.test_tokens.update((targets != IGNORE_INDEX).sum())
        self.log("test_perplexity", self.test_ppl)
        self.log("test_tokens", self.test_tokens)

    # -- optimisation ----------------------------------------------------------------------------
    def configure_optimizers(self):
        a = self.optim_args
        params = [p for p in self.parameters() if p.requires_grad]  # frozen embeddings stay out
        if a["optimizer"] == "sgd":
            opt = torch.optim.SGD(params, lr=a["lr"], momentum=a["momentum"],
                                  weight_decay=a["weight_decay"])
        elif a["optimizer"] == "adam":
            opt = torch.optim.Adam(params, lr=a["lr"], weight_decay=a["weight_decay"])
        else:
            opt = torch.optim.AdamW(params, lr=a["lr"], weight_decay=a["weight_decay"])
        decay, start = a["lr_decay"], a["decay_start"]
        if a["lr_schedule"] == "plateau":  # pytorch/examples: lr /= 4 unless valid improved
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=decay, patience=0,
                                                               threshold=0.0)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch",
                                                       "monitor": "valid_perplexity"}}
        # LambdaLR's epoch e is 0-based: epochs 1..start keep the LR, epoch start+1 gets lr * decay.
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: decay ** max(0, e + 1 - start))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    # -- perplexity of a whole split, outside the Trainer -----------------------------------------
    def evaluate_stream(self, batches) -> dict:
        """Token-weighted perplexity over an iterable of stream batches (state carried)."""
        return stream_perplexity(self.net, batches)


@torch.no_grad()
def stream_perplexity(net: nn.Module, batches) -> dict:
    """exp(total NLL / tokens) of ``net`` over stream batches, the hidden state carried from batch
    to batch as in training: ``{"perplexity", "nll", "tokens"}``."""
    state, nll, n = None, 0.0, 0
    with evaluating(net) as device:
        for b in batches:
            logits, state = net(b["input_ids"].to(device), state)
            t = b["targets"].to(device)
            nll += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), t.reshape(-1),
                                   ignore_index=IGNORE_INDEX, reduction="sum").item()
            n += int((t != IGNORE_INDEX).sum())
    return {"perplexity": math.exp(nll / n), "nll": nll, "tokens": n}


@torch.no_grad()
def score_lines(lm, lines: list[str], batch_size: int = 64) -> list[dict]:
    """Each line on its own, as KenLM's ``query`` does: ``{"logprob", "tokens", "oov"}`` per line, the natural-log
    probability of its tokens and of the ``<eos>`` (n-gram: ``</s>``) that ends it (``tokens`` counts both), each
    line read from a fresh state after ``<eos>`` (n-gram: ``<s>``), where a line starts in training. ``oov``: its
    tokens the model reads as ``<unk>``. ``lm``: a network with ``.vocab`` (word or character level) or an
    :class:`~seqzoo.models.ngram.NGramLM` (not stupid backoff, whose scores are not probabilities)."""
    if not isinstance(lm, nn.Module):
        if lm.smoothing == "stupid":
            raise ValueError("stupid backoff scores are not probabilities: a line has no log-probability")
        known = set(lm.vocab) - {"<unk>"}
        out = []
        for line in lines:
            total, n = lm.score_sentences([line.split()])
            out.append({"logprob": total, "tokens": n, "oov": sum(w not in known for w in line.split())})
        return out
    require(lm, "vocab")
    vocab = lm.vocab
    rows = [[vocab.eos_id] + vocab.encode(line) for line in lines]  # <eos> w1 .. wn <eos>
    out = []
    with evaluating(lm) as device:
        for chunk in batched(rows, batch_size):
            width = max(map(len, chunk))
            ids = torch.full((len(chunk), width), vocab.pad_id, dtype=torch.long)
            for j, r in enumerate(chunk):
                ids[j, :len(r)] = torch.tensor(r)
            ids = ids.to(device)  # padding after each line: a causal model's real positions never see it
            logits, _ = lm(ids[:, :-1])
            lp = logits.float().log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0]
            for j, r in enumerate(chunk):
                out.append({"logprob": float(lp[j, :len(r) - 1].sum()), "tokens": len(r) - 1,
                            "oov": sum(t == vocab.unk_id for t in r[1:])})
    return out


def _reopen_stopped_epoch(checkpoint: dict) -> None:
    """A run stopped inside an epoch (``max_time``, ``max_steps``) saves its last checkpoint in ``on_train_epoch_end``,
    where Lightning already counts the epoch as processed: resumed as it is, the rest of that epoch would be skipped.
    Count it as unprocessed, as in a checkpoint taken during the epoch: Lightning then resumes mid-epoch (this hook
    runs before it restores its loops), and the stream loader skips the batches already done."""
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {})
    for part in progress.values():
        if part["processed"] == part["started"] and part["completed"] == part["processed"] - 1:
            part["processed"] = part["completed"]


def _batch_size(state) -> int:
    return state.shape[1] if isinstance(state, torch.Tensor) else _batch_size(state[0])
