"""Sequence taggers (many-to-many): a (bi)directional, stacked LSTM / GRU over words, with
optional character-level word features, and a linear layer per token.

References:
- Graves & Schmidhuber 2005, "Framewise phoneme classification with bidirectional LSTM".
- Huang, Xu & Yu 2015, "Bidirectional LSTM-CRF Models for Sequence Tagging" (the BiLSTM tagger,
  here without the CRF).
- Plank, Søgaard & Goldberg 2016, "Multilingual Part-of-Speech Tagging with Bidirectional LSTM
  Models and Auxiliary Loss" (word + character BiLSTM features; UD POS tagging).
- Lample et al. 2016, "Neural Architectures for Named Entity Recognition" (character BiLSTM);
  Ma & Hovy 2016, "End-to-end Sequence Labeling via Bi-directional LSTM-CNNs-CRF" (character CNN).

This module also holds the pieces the other sequence families share: ``RecurrentEncoder`` (a
packed, stacked (bi)RNN over padded batches), ``lengths_to_mask`` and ``SequenceTask`` (the
optimiser part of a LightningModule).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy

from seqzoo.data.lm import IGNORE_INDEX
from seqzoo.hub import HubMixin
from seqzoo.registry import PretrainedCfg, register_model
from seqzoo.utils import batched, evaluating, require

__all__ = ["TaggerConfig", "RNNTagger", "TaggerTask", "evaluate_tagging", "RecurrentEncoder", "CharEncoder",
           "SequenceTask", "lengths_to_mask", "init_embedding", "CELLS",
           "CHAR_ENCODERS", "OPTIMIZERS", "PAD_ID", "UNK_ID"]

CELLS = ("lstm", "gru")
CHAR_ENCODERS = ("none", "lstm", "cnn")
OPTIMIZERS = ("adam", "adamw", "sgd")
UNK_ID, PAD_ID = 0, 2  # fixed by seqzoo.data.vocab.Vocab's specials


def lengths_to_mask(lengths: torch.Tensor | None, max_len: int, batch_size: int = 1, device=None) -> torch.Tensor:
    """(B,) int64 -> (B, max_len) bool, True at real positions; ``None`` means all real."""
    if lengths is None:
        return torch.ones(batch_size, max_len, dtype=torch.bool, device=device)
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def init_embedding(embed: nn.Embedding, embeddings: torch.Tensor | None) -> None:
    """Copy a pretrained (V, E) matrix (e.g. GloVe rows in vocab order) into ``embed``."""
    if embeddings is None:
        return
    if tuple(embeddings.shape) != tuple(embed.weight.shape):
        raise ValueError(f"pretrained embeddings have shape {tuple(embeddings.shape)}, the model needs "
                         f"(vocab_size, embedding_size) = {tuple(embed.weight.shape)}")
    with torch.no_grad():
        embed.weight.copy_(embeddings)


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")


class RecurrentEncoder(nn.Module):
    """Stacked (bi)directional LSTM / GRU over a padded batch, run packed so padding never enters
    a state: outputs at real positions and the final states do not depend on the padding.

    ``forward(x (B, T, D) float, lengths (B,) int64 | None) -> out (B, T, dirs * H), h_n
    (layers * dirs, B, H)``; ``out`` is zero at padding and ``h_n`` holds each direction's last
    *real* state (forward: at ``length - 1``; backward: at 0).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, cell: str = "lstm",
                 bidirectional: bool = True, dropout: float = 0.0):
        super().__init__()
        _check_choice("cell", cell, CELLS)
        rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_cls(input_size, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional,
                           dropout=dropout if num_layers > 1 else 0.0)
        self.output_size = hidden_size * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None):
        if lengths is None:
            out, h = self.rnn(x)
        else:
            if int(lengths.min()) < 1:
                raise ValueError(f"every sequence needs length >= 1, got {lengths.tolist()}")
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, h = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out, (h[0] if isinstance(h, tuple) else h)


class CharEncoder(nn.Module):
    """A vector per word from its characters: a BiLSTM's two final states (Lample et al. 2016) or a
    CNN max-pooled over the real positions (Ma & Hovy 2016).

    ``forward(chars (N, W) int64, lengths (N,) int64) -> (N, output_size)``.
    """

    def __init__(self, kind: str, num_chars: int, embedding_size: int = 32, hidden_size: int = 50,
                 kernel_size: int = 3):
        super().__init__()
        _check_choice("char_encoder", kind, CHAR_ENCODERS[1:])
        self.kind = kind
        self.embed = nn.Embedding(num_chars, embedding_size, padding_idx=PAD_ID)  # pad row stays 0
        if kind == "lstm":
            self.rnn = RecurrentEncoder(embedding_size, hidden_size, 1, "lstm", bidirectional=True)
            self.output_size = 2 * hidden_size
        else:  # the zero pad embedding makes the convolution's edge padding and batch padding equal
            self.conv = nn.Conv1d(embedding_size, hidden_size, kernel_size, padding=kernel_size // 2)
            self.output_size = hidden_size

    def forward(self, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        e = self.embed(chars)                                        # (N, W, Ec)
        if self.kind == "lstm":
            _, h = self.rnn(e, lengths)                              # (2, N, H)
            return torch.cat([h[-2], h[-1]], dim=-1)                 # (N, 2H)
        c = torch.relu(self.conv(e.transpose(1, 2))).transpose(1, 2)  # (N, W, H)
        mask = lengths_to_mask(lengths, chars.shape[1])
        return c.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)


@dataclass
class TaggerConfig:
    vocab_size: int = 20000
    num_tags: int = 17
    cell: str = "lstm"
    embedding_size: int = 100
    hidden_size: int = 200
    num_layers: int = 2
    bidirectional: bool = True
    dropout: float = 0.0
    word_dropout: float = 0.0  # training only: a word id becomes <unk> with this probability
    char_encoder: str = "none"  # "none", "lstm" (char BiLSTM) or "cnn"
    num_chars: int = 0  # character vocab size; needed when char_encoder != "none"
    char_embedding_size: int = 32
    char_hidden_size: int = 50  # per direction for "lstm", filters for "cnn"
    max_word_length: int = 30  # characters read per word, as the datamodule cut them in training

    def __post_init__(self):
        _check_choice("cell", self.cell, CELLS)
        _check_choice("char_encoder", self.char_encoder, CHAR_ENCODERS)
        if min(self.vocab_size, self.num_tags, self.embedding_size, self.hidden_size, self.num_layers,
               self.max_word_length) < 1:
            raise ValueError("vocab_size, num_tags, embedding_size, hidden_size, num_layers and max_word_length "
                             "must be >= 1")
        for name in ("dropout", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.char_encoder != "none" and self.num_chars <= PAD_ID:
            raise ValueError(f"char_encoder={self.char_encoder!r} needs num_chars (the character vocab size, "
                             f"> {PAD_ID}), got {self.num_chars}")


class RNNTagger(HubMixin, nn.Module):
    """[word embedding ; char features] -> dropout -> stacked (bi)RNN -> dropout -> linear per token.

    ``forward(input_ids (B, T) int64, lengths (B,) | None, chars (B, T, W) | None, char_lengths
    (B, T) | None) -> logits (B, T, num_tags)``. Pretrained ``embeddings`` (vocab_size,
    embedding_size) initialise the word embedding.
    """

    def __init__(self, config: TaggerConfig | None = None, embeddings: torch.Tensor | None = None, **kwargs):
        super().__init__()
        self.config = c = config or TaggerConfig(**kwargs)
        self.embed = nn.Embedding(c.vocab_size, c.embedding_size, padding_idx=PAD_ID)
        init_embedding(self.embed, embeddings)
        self.chars = None if c.char_encoder == "none" else CharEncoder(
            c.char_encoder, c.num_chars, c.char_embedding_size, c.char_hidden_size)
        width = c.embedding_size + (self.chars.output_size if self.chars else 0)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = RecurrentEncoder(width, c.hidden_size, c.num_layers, c.cell, c.bidirectional, c.dropout)
        self.out = nn.Linear(self.encoder.output_size, c.num_tags)

    def forward(self, input_ids, lengths=None, chars=None, char_lengths=None):
        B, T = input_ids.shape
        mask = lengths_to_mask(lengths, T, B, input_ids.device)
        if self.training and self.config.word_dropout > 0:
            drop = (torch.rand(B, T, device=input_ids.device) < self.config.word_dropout) & mask
            input_ids = input_ids.masked_fill(drop, UNK_ID)
        x = self.embed(input_ids)                                    # (B, T, E)
        if self.chars is not None:
            if chars is None or char_lengths is None:
                raise ValueError("this tagger has character features: pass chars and char_lengths")
            feats = self.chars(chars[mask], char_lengths[mask].clamp(min=1))  # (N real words, C)
            per_token = x.new_zeros(B, T, feats.shape[-1])
            per_token[mask] = feats.to(per_token.dtype)              # padding keeps zeros; autocast: bf16 feats
            x = torch.cat([x, per_token], dim=-1)
        out, _ = self.encoder(self.drop(x), lengths)                 # (B, T, dirs * H)
        return self.out(self.drop(out))                              # (B, T, num_tags)

    @torch.no_grad()
    def tag(self, sentences: list[list[str] | str], batch_size: int = 64) -> list[list[str]]:
        """One tag per word: ``tag([["The", "cat", "sat"]]) -> [["DET", "NOUN", "VERB"]]``.

        A sentence is a list of words or a string split on white space. Words are looked up as the
        datamodule did in training: lower-cased when the vocabulary is (``Vocab.uncased``), their
        characters as written, cut to the config's ``max_word_length``. Needs ``.vocab``,
        ``.tags`` and, with character features, ``.char_vocab`` (``from_pretrained`` sets them).
        """
        from seqzoo.data.tagging import collate_tagging
        require(self, "vocab", "tags", *(["char_vocab"] if self.chars is not None else []))
        sents = [s.split() if isinstance(s, str) else list(s) for s in sentences]
        norm = str.lower if self.vocab.uncased else str
        char_id = self.char_vocab.__getitem__ if self.chars is not None else (lambda c: UNK_ID)
        out: list[list[str]] = [[] for _ in sents]
        todo = [i for i, s in enumerate(sents) if s]
        with evaluating(self) as device:
            for idx in batched(todo, batch_size):
                rows = [{"ids": [self.vocab[norm(w)] for w in sents[i]], "tags": [0] * len(sents[i]),
                         "chars": [[char_id(c) for c in w] or [PAD_ID] for w in sents[i]]} for i in idx]
                b = {k: v.to(device) for k, v in collate_tagging(rows, self.config.max_word_length).items()}
                best = self(b["input_ids"], b["lengths"], b["chars"], b["char_lengths"]).argmax(-1).tolist()
                for i, row in zip(idx, best):
                    out[i] = [self.tags[t] for t in row[:len(sents[i])]]
        return out


class SequenceTask(HubMixin, L.LightningModule):
    """What every sequence task (tagging, classification, CTC) shares: the optimiser and LR schedule,
    fresh metrics at fit start, and a stop on a non-finite loss.

    Args:
        optimizer: ``adam``, ``adamw`` or ``sgd``.
        lr: learning rate.
        weight_decay: L2 (adam, sgd) or decoupled (adamw) weight decay.
        lr_decay: multiply the LR by this after every epoch; 1.0 keeps it constant.
    """

    net: nn.Module

    def __init__(self, optimizer: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0, lr_decay: float = 1.0):
        super().__init__()
        _check_choice("optimizer", optimizer, OPTIMIZERS)
        if lr <= 0 or not 0 < lr_decay <= 1:
            raise ValueError(f"need lr > 0 and 0 < lr_decay <= 1, got lr={lr}, lr_decay={lr_decay}")
        self.optim_args = dict(optimizer=optimizer, lr=lr, weight_decay=weight_decay, lr_decay=lr_decay)

    @property
    def model_config(self) -> dict:
        return asdict(self.net.config)

    def on_fit_start(self):
        # metric states left by a validate()/test() under inference_mode cannot be updated in place
        for m in self.modules():
            if isinstance(m, Metric):
                m.reset()

    def _check_loss(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss.item()} at step {self.global_step}: stopping "
                                     f"(lower the learning rate or clip gradients)")

    def configure_optimizers(self):
        a = self.optim_args
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[a["optimizer"]]
        opt = cls(self.parameters(), lr=a["lr"], weight_decay=a["weight_decay"])
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=a["lr_decay"])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    # Subclasses define ``_step(batch, split) -> loss``, logging their metrics; CTC overrides these.
    def training_step(self, batch, batch_idx):
        loss = self._step(batch, "train")
        self._check_loss(loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self._step(batch, "valid")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")


class TaggerTask(SequenceTask):
    """LightningModule for :class:`RNNTagger`: token cross-entropy, token accuracy (micro, padding
    ignored) logged as ``valid_accuracy`` / ``test_accuracy``.

    Batches are dicts with ``input_ids`` (B, T), ``lengths`` (B,), ``tags`` (B, T) (-100 at
    padding), and ``chars`` (B, T, W), ``char_lengths`` (B, T) for character features.

    Args:
        vocab_size, num_tags, num_chars, max_word_length: linked from the datamodule by the CLI.
        cell: ``lstm`` or ``gru``.
        embedding_size: word embedding width (50 for glove.6B.50d).
        hidden_size: recurrent state width per direction.
        num_layers: stacked recurrent layers.
        bidirectional: read both ways.
        dropout: on the RNN's input and output and between layers.
        word_dropout: training only: replace a word by ``<unk>`` with this probability.
        char_encoder: ``none``, ``lstm`` (char BiLSTM) or ``cnn``.
        char_embedding_size: character embedding width.
        char_hidden_size: char BiLSTM state per direction, or char CNN filters.
        embeddings: pretrained (vocab_size, embedding_size) word vectors (linked from the
            datamodule's ``embeddings``; not saved in the hyperparameters).
    """

    def __init__(self, vocab_size: int = 20000, num_tags: int = 17, num_chars: int = 0, cell: str = "lstm",
                 embedding_size: int = 100, hidden_size: int = 200, num_layers: int = 2, bidirectional: bool = True,
                 dropout: float = 0.0, word_dropout: float = 0.0, char_encoder: str = "none",
                 char_embedding_size: int = 32, char_hidden_size: int = 50, embeddings: torch.Tensor | None = None,
                 optimizer: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0, lr_decay: float = 1.0,
                 max_word_length: int = 30):
        super().__init__(optimizer, lr, weight_decay, lr_decay)
        self.save_hyperparameters(ignore=["embeddings"])
        self.net = RNNTagger(TaggerConfig(vocab_size, num_tags, cell, embedding_size, hidden_size, num_layers,
                                          bidirectional, dropout, word_dropout, char_encoder, num_chars,
                                          char_embedding_size, char_hidden_size, max_word_length),
                               embeddings=embeddings)
        acc = lambda: MulticlassAccuracy(num_tags, average="micro", ignore_index=IGNORE_INDEX)  # noqa: E731
        self.train_accuracy, self.valid_accuracy, self.test_accuracy = acc(), acc(), acc()

    def forward(self, batch: dict) -> torch.Tensor:
        """A batch dict -> logits (B, T, num_tags)."""
        return self.net(batch["input_ids"], batch.get("lengths"), batch.get("chars"), batch.get("char_lengths"))

    def _step(self, batch, split: str):
        logits = self(batch)
        loss = F.cross_entropy(logits.flatten(0, 1), batch["tags"].flatten(), ignore_index=IGNORE_INDEX)
        metric = getattr(self, f"{split}_accuracy")
        metric.update(logits.argmax(-1), batch["tags"])
        self.log(f"{split}_loss", loss, prog_bar=split == "train", batch_size=len(batch["input_ids"]))
        self.log(f"{split}_accuracy", metric, prog_bar=split != "train", on_step=False, on_epoch=True)
        return loss


def evaluate_tagging(net: RNNTagger, dataset: str = "ud-english-ewt", split: str = "test", data_dir: str | None = None,
                     tag_column: str = "upos", batch_size: int = 128) -> dict:
    """Token accuracy (micro, over every word of the split) of ``net.tag`` on a treebank split, as
    ``TaggerTask`` logs it; ``dataset`` as in :class:`~seqzoo.data.tagging.TaggingDataModule`, or one
    ``.conllu`` file, scored whole (as ``split``)."""
    from seqzoo.data.tagging import TaggingDataModule, read_conllu
    require(net, "tags")
    if str(dataset).endswith(".conllu"):
        sents = {split: read_conllu(dataset, tag_column)}
    else:
        sents = TaggingDataModule(dataset, data_dir, tag_column).sents
    if split not in sents:
        raise ValueError(f"dataset {dataset!r} has no split {split!r}; available: {', '.join(sents)}")
    known = set(net.tags)
    for _, gold in sents[split]:
        bad = next((t for t in gold if t not in known), None)
        if bad is not None:
            shown = " ".join(net.tags[:20]) + (" ..." if len(net.tags) > 20 else "")
            raise ValueError(f"{dataset} {split} has the {tag_column} tag {bad!r}, which the model does not know "
                             f"(its {len(net.tags)} tags: {shown}); a model of the other --tag-column?")
    pred = net.tag([w for w, _ in sents[split]], batch_size=batch_size)
    pairs = [(p, g) for ps, (_, gs) in zip(pred, sents[split]) for p, g in zip(ps, gs)]
    return {"accuracy": sum(p == g for p, g in pairs) / len(pairs), "tokens": len(pairs),
            "sentences": len(sents[split])}


def _create(arch_defaults: dict, **kwargs) -> RNNTagger:
    embeddings = kwargs.pop("embeddings", None)
    return RNNTagger(TaggerConfig(**{**arch_defaults, **kwargs}), embeddings=embeddings)


@register_model
def bilstm_tagger_2x200(pretrained=False, **kwargs):
    """2 x 200 BiLSTM over word embeddings (Huang et al. 2015, no CRF)."""
    return _create(dict(cell="lstm", embedding_size=100, hidden_size=200, num_layers=2), **kwargs)


@register_model
def bigru_tagger_2x200(pretrained=False, **kwargs):
    """2 x 200 BiGRU over word embeddings."""
    return _create(dict(cell="gru", embedding_size=100, hidden_size=200, num_layers=2), **kwargs)


@register_model(pretrained={"ud_ewt_glove": PretrainedCfg(
    hf_hub_id="seqzoo/bilstm_charlstm_tagger_2x200.ud_ewt_glove", dataset="ud-english-ewt",
    recipe="recipes/ud_ewt/bilstm_char.yaml")})
def bilstm_charlstm_tagger_2x200(pretrained=False, **kwargs):
    """2 x 200 BiLSTM over [word 50-d (GloVe 6B) ; char BiLSTM 2 x 50] features (Plank et al. 2016), dropout 0.33,
    word dropout 0.05: the UD English EWT recipe's model."""
    return _create(dict(cell="lstm", embedding_size=50, hidden_size=200, num_layers=2, char_encoder="lstm",
                        num_chars=kwargs.pop("num_chars", 100), char_hidden_size=50, dropout=0.33, word_dropout=0.05),
                   **kwargs)


@register_model
def bilstm_charcnn_tagger_2x200(pretrained=False, **kwargs):
    """2 x 200 BiLSTM over [word ; char CNN 50 filters, width 3] features (Ma & Hovy 2016)."""
    return _create(dict(cell="lstm", embedding_size=100, hidden_size=200, num_layers=2, char_encoder="cnn",
                        num_chars=kwargs.pop("num_chars", 100), char_hidden_size=50), **kwargs)
