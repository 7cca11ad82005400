"""Recurrent encoder-decoder translation models, with and without attention.

References:
- Sutskever, Vinyals & Le 2014, "Sequence to Sequence Learning with Neural Networks" (stacked LSTMs; the
  source summarised in the encoder's final state).
- Cho et al. 2014, "Learning Phrase Representations using RNN Encoder-Decoder for Statistical Machine
  Translation" (GRU; the summary context vector fed to every decoder step and to the output layer).
- Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly Learning to Align and Translate"
  (bidirectional encoder, additive attention computed from the previous decoder state).
- Luong, Pham & Manning 2015, "Effective Approaches to Attention-based Neural Machine Translation"
  (dot / general scores on the current decoder state, attentional hidden state fed to the next input).
- Szegedy et al. 2016 (label smoothing); Bengio et al. 2015 (mixing in the model's own predictions, here the
  teacher-forcing ratio); Wu et al. 2016 (GNMT length penalty); bentrevett/pytorch-seq2seq.

The bidirectional encoder has ``hidden_size // 2`` units per direction, so its outputs and its final states
(the two directions concatenated, layer by layer) are ``hidden_size`` wide and start the decoder directly,
as in OpenNMT. Decoding (greedy, beam, sampling) is :mod:`seqzoo.decoding`, over ``Seq2SeqNet.decode_step``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torchmetrics import MeanMetric
from torchmetrics.text import CHRFScore, SacreBLEUScore

from seqzoo import decoding
from seqzoo.data.lm import IGNORE_INDEX
from seqzoo.data.translation import BOS_ID, EOS_ID, PAD_ID, UNK_ID, detokenize, encode_source
from seqzoo.hub import HubMixin
from seqzoo.registry import PretrainedCfg, register_model
from seqzoo.utils import batched, evaluating

__all__ = ["Seq2SeqConfig", "Encoder", "Attention", "Decoder", "Seq2SeqNet", "Seq2Seq", "ATTENTIONS", "CELLS"]

CELLS = ("lstm", "gru")
ATTENTIONS = ("none", "bahdanau", "luong_dot", "luong_general")
OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass
class Seq2SeqConfig:
    src_vocab_size: int = 8000
    tgt_vocab_size: int = 8000
    cell: str = "gru"
    attention: str = "bahdanau"
    embedding_size: int = 256
    hidden_size: int = 512
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.0

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; valid: {', '.join(CELLS)}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {self.attention!r}; valid: {', '.join(ATTENTIONS)}")
        if min(self.src_vocab_size, self.tgt_vocab_size, self.embedding_size, self.hidden_size, self.num_layers) < 1:
            raise ValueError("vocab sizes, embedding_size, hidden_size and num_layers must be >= 1")
        if self.bidirectional and self.hidden_size % 2:
            raise ValueError(f"a bidirectional encoder needs an even hidden_size (half per direction), "
                             f"got {self.hidden_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def _rnn(cell: str, *args, **kwargs) -> nn.Module:
    return (nn.LSTM if cell == "lstm" else nn.GRU)(*args, batch_first=True, **kwargs)


def _map(state, fn):
    """Apply ``fn`` to the tensor(s) of an RNN state: ``h`` (GRU) or ``(h, c)`` (LSTM)."""
    return tuple(fn(s) for s in state) if isinstance(state, tuple) else fn(state)


class Encoder(nn.Module):
    """``src (B, S) int64, lengths (B,)`` -> memory (B, S, H), final state (layers, B, H) [LSTM: (h, c)]."""

    def __init__(self, c: Seq2SeqConfig):
        super().__init__()
        self.bidirectional = c.bidirectional
        self.embed = nn.Embedding(c.src_vocab_size, c.embedding_size, padding_idx=PAD_ID)
        self.drop = nn.Dropout(c.dropout)
        self.rnn = _rnn(c.cell, c.embedding_size, c.hidden_size // (2 if c.bidirectional else 1), c.num_layers,
                        bidirectional=c.bidirectional, dropout=c.dropout if c.num_layers > 1 else 0.0)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor):
        x = self.drop(self.embed(src))                                     # (B, S, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (B, S, H)
        if self.bidirectional:  # (2L, B, H/2) -> (L, B, H): forward and backward halves side by side
            state = _map(state, lambda h: torch.cat([h[0::2], h[1::2]], dim=-1))
        return self.drop(memory), state


class Attention(nn.Module):
    """Scores of a query (B, H) against the source (B, S, H) -> context (B, H), weights (B, S).

    ``bahdanau``: v . tanh(W q + U m); ``luong_dot``: q . m; ``luong_general``: q . W m. Padding positions
    (``mask`` False) get weight exactly 0. ``keys(memory)`` (U m, W m or m) is computed once per sentence.
    """

    def __init__(self, kind: str, hidden_size: int):
        super().__init__()
        self.kind = kind
        if kind in ("bahdanau", "luong_general"):
            self.key = nn.Linear(hidden_size, hidden_size, bias=False)
        if kind == "bahdanau":
            self.query = nn.Linear(hidden_size, hidden_size)
            self.v = nn.Linear(hidden_size, 1, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return memory if self.kind == "luong_dot" else self.key(memory)

    def forward(self, query, keys, memory, mask):
        if self.kind == "bahdanau":
            scores = self.v(torch.tanh(keys + self.query(query).unsqueeze(1))).squeeze(-1)   # (B, S)
        else:
            scores = torch.bmm(keys, query.unsqueeze(-1)).squeeze(-1)                       # (B, S)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        return torch.bmm(weights.unsqueeze(1), memory).squeeze(1), weights


class Decoder(nn.Module):
    """One target step: ``tokens (B,)`` + state -> logits (B, V), state, attention weights (B, S) or None.

    - ``none`` (Cho et al.): input [y; c], output from [h; c; y], c = the encoder's final top-layer state.
    - ``bahdanau``: c_t = attend(h_{t-1}); input [y; c_t]; output from [h_t; c_t; y].
    - ``luong_*``: input [y; h~_{t-1}] (input feeding); c_t = attend(h_t); h~_t = tanh(W [h_t; c_t]); output
      from h~_t.
    """

    def __init__(self, c: Seq2SeqConfig):
        super().__init__()
        self.kind, H = c.attention, c.hidden_size
        self.embed = nn.Embedding(c.tgt_vocab_size, c.embedding_size, padding_idx=PAD_ID)
        self.drop = nn.Dropout(c.dropout)
        self.attention = Attention(c.attention, H) if c.attention != "none" else None
        self.rnn = _rnn(c.cell, c.embedding_size + H, H, c.num_layers, dropout=c.dropout if c.num_layers > 1 else 0.0)
        if self.kind.startswith("luong"):
            self.combine = nn.Linear(2 * H, H, bias=False)
            self.out = nn.Linear(H, c.tgt_vocab_size)
        else:
            self.out = nn.Linear(2 * H + c.embedding_size, c.tgt_vocab_size)

    def init_state(self, memory, enc_state, mask) -> dict:
        """Decoding state, batch-first everywhere so :func:`seqzoo.decoding.reorder_state` can reorder it."""
        state = {"hidden": _map(enc_state, lambda h: h.transpose(0, 1)), "memory": memory, "mask": mask}
        top = (enc_state[0] if isinstance(enc_state, tuple) else enc_state)[-1]   # (B, H)
        if self.kind == "none":
            state["context"] = top
        else:
            state["keys"] = self.attention.keys(memory)
        if self.kind.startswith("luong"):
            state["feed"] = torch.zeros_like(top)
        return state

    def forward(self, tokens: torch.Tensor, state: dict):
        y = self.drop(self.embed(tokens))                                    # (B, E)
        hidden = _map(state["hidden"], lambda h: h.transpose(0, 1).contiguous())   # (L, B, H)
        weights, new = None, dict(state)
        if self.kind == "none":
            ctx = state["context"]
        elif self.kind == "bahdanau":
            top = (hidden[0] if isinstance(hidden, tuple) else hidden)[-1]
            ctx, weights = self.attention(top, state["keys"], state["memory"], state["mask"])
        x = torch.cat([y, state["feed"] if self.kind.startswith("luong") else ctx], -1)
        out, hidden = self.rnn(x.unsqueeze(1), hidden)
        h = out[:, 0]                                                        # (B, H)
        if self.kind.startswith("luong"):
            ctx, weights = self.attention(h, state["keys"], state["memory"], state["mask"])
            new["feed"] = torch.tanh(self.combine(torch.cat([h, ctx], -1)))
            logits = self.out(self.drop(new["feed"]))
        else:
            logits = self.out(self.drop(torch.cat([h, ctx, y], -1)))
        new["hidden"] = _map(hidden, lambda t: t.transpose(0, 1))
        return logits, new, weights


class Seq2SeqNet(HubMixin, nn.Module):
    """Encoder + decoder. ``forward(src (B, S), src_lengths (B,), tgt_in (B, T)) -> logits (B, T, tgt_vocab)``;
    ``decode_step`` is the :mod:`seqzoo.decoding` step function."""

    def __init__(self, config: Seq2SeqConfig | None = None, **kwargs):
        super().__init__()
        self.config = config or Seq2SeqConfig(**kwargs)
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor | None = None) -> dict:
        lengths = (src != PAD_ID).sum(1) if src_lengths is None else src_lengths
        memory, enc_state = self.encoder(src, lengths)
        mask = torch.arange(src.shape[1], device=src.device).unsqueeze(0) < lengths.to(src.device).unsqueeze(1)
        return self.decoder.init_state(memory, enc_state, mask)

    def decode_step(self, tokens: torch.Tensor, state: dict):
        """(N, 1) int64 + state -> log-probabilities (N, V), new state."""
        logits, state, _ = self.decoder(tokens[:, -1], state)
        return logits.log_softmax(-1), state

    def forward(self, src, src_lengths, tgt_in, teacher_forcing: float = 1.0, return_attention: bool = False):
        state = self.encode(src, src_lengths)
        logits, attn, tokens = [], [], tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            step, state, w = self.decoder(tokens, state)
            logits.append(step)
            attn.append(w)
            if t + 1 < tgt_in.shape[1]:  # feed the gold token, or with prob. 1 - ratio the model's own guess
                own = teacher_forcing < 1.0 and torch.rand(()).item() >= teacher_forcing
                tokens = step.argmax(-1) if own else tgt_in[:, t + 1]
        logits = torch.stack(logits, 1)                                      # (B, T, V)
        if return_attention:
            return logits, (torch.stack(attn, 1) if attn[0] is not None else None)   # (B, T, S)
        return logits

    @torch.no_grad()
    def generate(self, src, src_lengths=None, beam_size: int = 1, max_len: int | None = None, alpha: float = 0.0,
                 n_best: int = 1) -> list[list[decoding.Hypothesis]]:
        """Translate a padded batch -> ``n_best`` hypotheses per sentence (greedy when ``beam_size == 1``)."""
        state = self.encode(src, src_lengths)
        max_len = max_len or int(src.shape[1] * 2 + 10)
        start = torch.full((src.shape[0],), BOS_ID, dtype=torch.long, device=src.device)
        step = decoding.suppress(self.decode_step, (PAD_ID, BOS_ID))   # never targets in training
        if beam_size == 1 and n_best == 1:
            return [[h] for h in decoding.greedy(step, state, start, EOS_ID, max_len)]
        return decoding.beam_search(step, state, start, EOS_ID, beam_size, max_len, alpha, n_best)


class Seq2Seq(HubMixin, L.LightningModule):
    """LightningModule for :class:`Seq2SeqNet`: label-smoothed cross-entropy, BLEU / chrF (sacreBLEU, on
    detokenised text) on validation (greedy) and test (``beam_size``).

    Args:
        src_vocab_size, tgt_vocab_size: linked from the datamodule by the CLI.
        cell: ``lstm`` or ``gru``.
        attention: ``none``, ``bahdanau``, ``luong_dot`` or ``luong_general``.
        embedding_size, hidden_size, num_layers, bidirectional, dropout: see :class:`Seq2SeqConfig`.
        teacher_forcing: probability of feeding the gold previous token at each training step.
        label_smoothing: mass spread uniformly over the vocabulary in the training loss.
        optimizer: ``adam``, ``adamw`` or ``sgd``; lr, weight_decay: its settings.
        lr_decay: multiply the LR by this after every epoch.
        beam_size: test-time beam (1 = greedy); length_penalty: GNMT alpha.
        src_tokenizer, tgt_tokenizer: ``tokenizers`` JSON strings (linked from the datamodule), stored in the
            checkpoint's hyperparameters so that it loads with ``torch.load(weights_only=True)``.
    """

    def __init__(self, src_vocab_size: int = 8000, tgt_vocab_size: int = 8000, cell: str = "gru",
                 attention: str = "bahdanau", embedding_size: int = 256, hidden_size: int = 512, num_layers: int = 1,
                 bidirectional: bool = True, dropout: float = 0.3, teacher_forcing: float = 1.0,
                 label_smoothing: float = 0.1, optimizer: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                 lr_decay: float = 1.0, beam_size: int = 1, length_penalty: float = 0.6,
                 src_tokenizer: str | None = None, tgt_tokenizer: str | None = None):
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must be in [0, 1], got {teacher_forcing}")
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        decoding.check_length_penalty(length_penalty)
        self.save_hyperparameters()
        self.net = Seq2SeqNet(Seq2SeqConfig(src_vocab_size, tgt_vocab_size, cell, attention, embedding_size,
                                            hidden_size, num_layers, bidirectional, dropout))
        self.valid_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.valid_bleu, self.test_bleu, self.test_chrf = SacreBLEUScore(), SacreBLEUScore(), CHRFScore()
        self._tok = {}

    @property
    def model_config(self) -> dict:
        return asdict(self.net.config)

    def forward(self, src, src_lengths, tgt_in):
        """(B, S), (B,), (B, T) int64 -> logits (B, T, tgt_vocab)."""
        return self.net(src, src_lengths, tgt_in)

    # -- tokenizers ------------------------------------------------------------------------------
    def tokenizer(self, side: str):
        """``"src"`` / ``"tgt"`` -> ``tokenizers.Tokenizer``, from the hyperparameters or the datamodule."""
        if side not in self._tok:
            from tokenizers import Tokenizer
            text = self.hparams[f"{side}_tokenizer"]
            dm = getattr(getattr(self, "_trainer", None), "datamodule", None)
            if text is None and dm is not None and hasattr(dm, f"{side}_tokenizer_json"):
                text = getattr(dm, f"{side}_tokenizer_json")
                self.hparams[f"{side}_tokenizer"] = text  # so that the checkpoint carries it
            if text is None:
                raise ValueError(f"no {side}_tokenizer: pass the datamodule's {side}_tokenizer_json (the CLI links it)")
            self._tok[side] = Tokenizer.from_str(text)
        return self._tok[side]

    @torch.no_grad()
    def translate(self, texts: list[str], beam_size: int | None = None, length_penalty: float | None = None,
                  n_best: int = 1, batch_size: int = 64, max_len: int | None = None) -> list[list[str]]:
        """Source sentences -> ``n_best`` detokenised translations each (empty input -> empty output)."""
        for name, value in (("beam_size", beam_size), ("batch_size", batch_size), ("max_len", max_len)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        src_tok, tgt_tok = self.tokenizer("src"), self.tokenizer("tgt")
        beam = beam_size or self.hparams.beam_size
        alpha = self.hparams.length_penalty if length_penalty is None else length_penalty
        decoding.check_length_penalty(alpha)
        ids = encode_source(src_tok, texts)
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
        out: list[list[str]] = [[""] * n_best for _ in texts]
        todo = [i for i in order if texts[i].strip()]
        with evaluating(self) as device:
            for idx in batched(todo, batch_size):
                lengths = torch.tensor([len(ids[i]) for i in idx], device=device)
                src = torch.full((len(idx), int(lengths.max())), PAD_ID, dtype=torch.long, device=device)
                for r, i in enumerate(idx):
                    src[r, :len(ids[i])] = torch.tensor(ids[i])
                for i, hyps in zip(idx, self.net.generate(src, lengths, beam, max_len, alpha, n_best)):
                    out[i] = [detokenize(tgt_tok, h.tokens) for h in hyps] + [""] * (n_best - len(hyps))
        return out

    @classmethod
    def from_checkpoint(cls, path, map_location="cpu") -> "Seq2Seq":
        """A Lightning ``.ckpt`` -> model in eval mode, read with ``torch.load(weights_only=True)``."""
        from pathlib import Path
        if not Path(path).is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
        hp = {k: v for k, v in ckpt.get("hyper_parameters", {}).items() if not k.startswith("_")}
        if "attention" not in hp:
            raise ValueError(f"{path} is not a Seq2Seq checkpoint (hyper_parameters: {sorted(hp)[:8]})")
        model = cls(**hp)
        model.load_state_dict(ckpt["state_dict"])
        return model.to(map_location).eval()

    @classmethod
    def from_net(cls, net: Seq2SeqNet, **hparams) -> "Seq2Seq":
        """Wrap a network loaded with :func:`seqzoo.from_pretrained` (it carries ``.src_tokenizer`` and
        ``.tgt_tokenizer``) to translate text with it or fine-tune it; eval mode."""
        toks = {f"{s}_tokenizer": getattr(net, f"{s}_tokenizer", None) for s in ("src", "tgt")}
        missing = [k for k, t in toks.items() if t is None]
        if missing:
            raise ValueError(f"this Seq2SeqNet has no {' or '.join(missing)}: load it from a checkpoint folder")
        model = cls(**asdict(net.config), **{k: t.to_str() for k, t in toks.items()}, **hparams)
        model.net.load_state_dict(net.state_dict())
        return model.to(next(net.parameters()).device).eval()

    # -- steps -----------------------------------------------------------------------------------
    def _loss(self, batch, smoothing: float, teacher_forcing: float = 1.0):
        logits = self.net(batch["src"], batch["src_lengths"], batch["tgt_in"], teacher_forcing)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["tgt_out"].reshape(-1),
                               ignore_index=IGNORE_INDEX, label_smoothing=smoothing)

    def _hyps(self, batch, beam: int) -> list[str]:
        tgt = self.tokenizer("tgt")
        hyps = self.net.generate(batch["src"], batch["src_lengths"], beam, None, self.hparams.length_penalty)
        return [detokenize(tgt, h[0].tokens) for h in hyps]

    def setup(self, stage: str):  # take the datamodule's tokenizers now, so every checkpoint carries both
        for side in ("src", "tgt"):
            if self.hparams[f"{side}_tokenizer"] is None and hasattr(self.trainer.datamodule, f"{side}_tokenizer_json"):
                self.tokenizer(side)

    def on_fit_start(self):
        # fresh metric states (see LanguageModelTask.on_fit_start)
        for m in (self.valid_loss, self.valid_bleu, self.test_loss, self.test_bleu, self.test_chrf):
            m.reset()

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch, self.hparams.label_smoothing, self.hparams.teacher_forcing)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss.item()} at step {self.global_step}: stopping "
                                     f"(lower the learning rate or clip gradients)")
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["tgt_text"]))
        return loss

    def validation_step(self, batch, batch_idx):
        n = int((batch["tgt_out"] != IGNORE_INDEX).sum())
        self.valid_loss.update(self._loss(batch, 0.0), n)
        self.valid_bleu.update(self._hyps(batch, 1), [[r] for r in batch["tgt_text"]])
        self.log("valid_loss", self.valid_loss, prog_bar=True, batch_size=n)

    def on_validation_epoch_end(self):  # BLEU / chrF in points (0-100), as sacreBLEU prints them
        self.log("valid_bleu", self.valid_bleu.compute() * 100, prog_bar=True)
        self.valid_bleu.reset()

    def test_step(self, batch, batch_idx):
        n = int((batch["tgt_out"] != IGNORE_INDEX).sum())
        self.test_loss.update(self._loss(batch, 0.0), n)
        hyps, refs = self._hyps(batch, self.hparams.beam_size), [[r] for r in batch["tgt_text"]]
        self.test_bleu.update(hyps, refs)
        self.test_chrf.update(hyps, refs)
        self.log("test_loss", self.test_loss, batch_size=n)

    def on_test_epoch_end(self):
        self.log("test_bleu", self.test_bleu.compute() * 100)
        self.log("test_chrf", self.test_chrf.compute() * 100)
        self.test_bleu.reset()
        self.test_chrf.reset()

    def configure_optimizers(self):
        h = self.hparams
        if h.optimizer == "sgd":
            opt = torch.optim.SGD(self.parameters(), lr=h.lr, weight_decay=h.weight_decay)
        else:
            cls = torch.optim.Adam if h.optimizer == "adam" else torch.optim.AdamW
            opt = cls(self.parameters(), lr=h.lr, weight_decay=h.weight_decay)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=h.lr_decay)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


def evaluate_translation(net: Seq2SeqNet, dataset: str, split: str, src_lang: str, tgt_lang: str,
                         data_dir: str | None = None, beam_size: int = 5, length_penalty: float = 0.6,
                         batch_size: int = 128, allow_oov: bool = False) -> dict:
    """BLEU and chrF (sacreBLEU, points) and the per-token loss of a loaded translation network on one split of
    a parallel corpus, scored exactly as the recipes' ``test_*`` metrics: the split read by
    :class:`TranslationDataModule` with the network's own tokenizers (its normaliser, e.g. lower-casing, applied
    to the references too), decoded by ``Trainer.test``. ``oov_rate``: the share of source subwords that are
    ``<unk>``; over half is an error (a wrong model, corpus or language) unless ``allow_oov``."""
    import tempfile

    from seqzoo.data.translation import TranslationDataModule
    model = Seq2Seq.from_net(net, beam_size=beam_size, length_penalty=length_penalty)
    with tempfile.TemporaryDirectory() as tmp:
        for side in ("src", "tgt"):
            model.tokenizer(side).save(f"{tmp}/{side}_tokenizer.json")
        dm = TranslationDataModule(dataset, src_lang, tgt_lang, data_dir, tokenizers=tmp, eval_batch_size=batch_size)
    loader = dm._loader(split, False)  # in evaluation order; a missing split is a one-line error there
    src = [i for _, ids, _, _ in dm.pairs[split] for i in ids if i != EOS_ID]
    oov = sum(i == UNK_ID for i in src) / max(1, len(src))
    if oov > 0.5 and not allow_oov:  # another language or script than the model's: not worth decoding
        raise ValueError(f"{oov:.1%} of the source subwords of {dataset} {split} ({src_lang}) are <unk> to this "
                         f"model's tokenizer: a wrong model, corpus or --src-lang? (--allow-oov scores it anyway)")
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, devices=1)
    m = trainer.test(model, dataloaders=loader, verbose=False)[0]
    return {"bleu": float(m["test_bleu"]), "chrf": float(m["test_chrf"]), "loss": float(m["test_loss"]),
            "sentences": len(dm.pairs[split]), "beam_size": beam_size, "length_penalty": length_penalty,
            "oov_rate": oov}


# -- command line: LightningCLI for translation and the recipe runner's hook --------------------------
def translation_cli(args=None, run: bool = True):
    """LightningCLI over :class:`Seq2Seq` and :class:`TranslationDataModule`, vocabularies linked."""
    from seqzoo.cli import _lightning_cli
    return _lightning_cli(args, run, model_class_path="seqzoo.models.seq2seq.Seq2Seq")


# -- registered variants ---------------------------------------------------------------------------
def _create(arch: dict, vocab_size: int | None = None, **kwargs) -> Seq2SeqNet:
    """``vocab_size`` sets both sides (a joint vocabulary); ``src_/tgt_vocab_size`` set one each."""
    if vocab_size is not None:
        kwargs = {"src_vocab_size": vocab_size, "tgt_vocab_size": vocab_size, **kwargs}
    return Seq2SeqNet(Seq2SeqConfig(**{**arch, **kwargs}))


@register_model
def seq2seq_lstm_noattn(pretrained=False, **kwargs):
    """Sutskever et al. 2014 / Cho et al. 2014 encoder-decoder, LSTM, context vector only."""
    return _create(dict(cell="lstm", attention="none", num_layers=2), **kwargs)


@register_model
def seq2seq_gru_noattn(pretrained=False, **kwargs):
    """Cho et al. 2014: GRU encoder-decoder fed the context vector at every step."""
    return _create(dict(cell="gru", attention="none"), **kwargs)


@register_model
def seq2seq_gru_bahdanau(pretrained=False, **kwargs):
    """Bahdanau et al. 2015: bidirectional GRU encoder, additive attention."""
    return _create(dict(cell="gru", attention="bahdanau"), **kwargs)


@register_model
def seq2seq_lstm_luong(pretrained=False, **kwargs):
    """Luong et al. 2015: stacked LSTM, "general" (bilinear) attention."""
    return _create(dict(cell="lstm", attention="luong_general", num_layers=2), **kwargs)


@register_model
def seq2seq_lstm_luong_dot(pretrained=False, **kwargs):
    """Luong et al. 2015: stacked LSTM, dot-product attention."""
    return _create(dict(cell="lstm", attention="luong_dot", num_layers=2), **kwargs)


@register_model(pretrained={
    "multi30k_de_en": PretrainedCfg(hf_hub_id="seqzoo/seq2seq_gru_bahdanau_256.multi30k_de_en", dataset="multi30k",
                                    recipe="recipes/multi30k/gru_bahdanau_de_en_cpu_15ep.yaml"),
    "multi30k_en_de": PretrainedCfg(hf_hub_id="seqzoo/seq2seq_gru_bahdanau_256.multi30k_en_de", dataset="multi30k",
                                    recipe="recipes/multi30k/gru_bahdanau_en_de_cpu.yaml")})
def seq2seq_gru_bahdanau_256(pretrained=False, **kwargs):
    """The CPU-sized Bahdanau model of recipes/multi30k: 256-wide embeddings and states (a 2 x 128 bi-GRU encoder),
    dropout 0.3, a joint 8k BPE vocabulary."""
    return _create(dict(cell="gru", attention="bahdanau", embedding_size=256, hidden_size=256, dropout=0.3), **kwargs)
