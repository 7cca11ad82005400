"""Sequence classifiers (many-to-one): a (bi)directional, stacked LSTM / GRU encoder, a pooling of
its states into one vector, and a linear layer.

Poolings: ``last`` (the last *real* state of each direction: forward at ``length - 1``, backward
at 0), ``max`` and ``mean`` over the real positions, and ``attention`` (a masked softmax over
``v . tanh(W h_t)``, Bahdanau et al. 2015 scoring, as in Yang et al. 2016).

References:
- Tai, Socher & Manning 2015, "Improved Semantic Representations From Tree-Structured LSTM
  Networks" (BiLSTM baselines on SST).
- Conneau et al. 2017, "Supervised Learning of Universal Sentence Representations from Natural
  Language Inference Data" (BiLSTM with max pooling).
- Yang et al. 2016, "Hierarchical Attention Networks for Document Classification" (attention pooling).
- Wang et al. 2018, "GLUE" (SST-2; the BiLSTM + GloVe baselines).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from seqzoo.hub import HubMixin
from seqzoo.models.tagger import (CELLS, PAD_ID, RecurrentEncoder, SequenceTask, _check_choice, init_embedding,
                                  lengths_to_mask)
from seqzoo.registry import PretrainedCfg, register_model
from seqzoo.utils import batched, evaluating, require

__all__ = ["ClassifierConfig", "RNNClassifier", "ClassifierTask", "evaluate_classification", "AttentionPooling",
           "masked_max", "masked_mean", "POOLINGS"]

POOLINGS = ("last", "max", "mean", "attention")


def masked_max(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, D), (B, T) bool -> (B, D): the max over real positions only."""
    return h.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, D), (B, T) bool -> (B, D): the mean over real positions only."""
    m = mask[..., None].to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1)


class AttentionPooling(nn.Module):
    """``a = softmax_t(v . tanh(W h_t))`` over real positions; ``forward(h (B, T, D), mask (B, T))
    -> pooled (B, D), weights (B, T)`` (exactly 0 at padding)."""

    def __init__(self, input_size: int, attention_size: int = 100):
        super().__init__()
        self.proj = nn.Linear(input_size, attention_size)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor):
        scores = self.v(torch.tanh(self.proj(h))).squeeze(-1)        # (B, T)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        return torch.einsum("bt,btd->bd", weights, h), weights


@dataclass
class ClassifierConfig:
    vocab_size: int = 20000
    num_classes: int = 2
    cell: str = "lstm"
    embedding_size: int = 100
    hidden_size: int = 200
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.0
    pooling: str = "max"  # last, max, mean or attention
    attention_size: int = 100

    def __post_init__(self):
        _check_choice("cell", self.cell, CELLS)
        _check_choice("pooling", self.pooling, POOLINGS)
        if min(self.vocab_size, self.embedding_size, self.hidden_size, self.num_layers, self.attention_size) < 1:
            raise ValueError("vocab_size, embedding_size, hidden_size, num_layers and attention_size must be >= 1")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class RNNClassifier(HubMixin, nn.Module):
    """Embedding -> dropout -> stacked (bi)RNN -> pooling -> dropout -> linear.

    ``forward(input_ids (B, T) int64, lengths (B,) int64 | None) -> logits (B, num_classes)``.
    Pretrained ``embeddings`` (vocab_size, embedding_size) initialise the embedding.
    """

    def __init__(self, config: ClassifierConfig | None = None, embeddings: torch.Tensor | None = None, **kwargs):
        super().__init__()
        self.config = c = config or ClassifierConfig(**kwargs)
        self.embed = nn.Embedding(c.vocab_size, c.embedding_size, padding_idx=PAD_ID)
        init_embedding(self.embed, embeddings)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = RecurrentEncoder(c.embedding_size, c.hidden_size, c.num_layers, c.cell, c.bidirectional,
                                        c.dropout)
        self.attention = AttentionPooling(self.encoder.output_size, c.attention_size) \
            if c.pooling == "attention" else None
        self.out = nn.Linear(self.encoder.output_size, c.num_classes)

    def pool(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) -> the sentence vector (B, dirs * H)."""
        B, T = input_ids.shape
        h, h_n = self.encoder(self.drop(self.embed(input_ids)), lengths)  # (B, T, dirs*H), (layers*dirs, B, H)
        mask = lengths_to_mask(lengths, T, B, input_ids.device)
        pooling = self.config.pooling
        if pooling == "last":  # the top layer's final states, one per direction
            dirs = 2 if self.config.bidirectional else 1
            return torch.cat(list(h_n[-dirs:]), dim=-1)
        if pooling == "max":
            return masked_max(h, mask)
        if pooling == "mean":
            return masked_mean(h, mask)
        return self.attention(h, mask)[0]

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(self.drop(self.pool(input_ids, lengths)))

    @torch.no_grad()
    def probabilities(self, texts: list[str], batch_size: int = 128) -> torch.Tensor:
        """(len(texts), num_classes) class probabilities. Each text is split on white space and
        lower-cased when the vocabulary is (``Vocab.uncased``), as the datamodule did in training;
        an empty text is an error. Needs ``.vocab`` (``from_pretrained`` sets it)."""
        from seqzoo.data.classification import collate_classification
        require(self, "vocab")
        norm = str.lower if self.vocab.uncased else str
        rows = []
        for n, text in enumerate(texts):
            ids = [self.vocab[w] for w in norm(text).split()]
            if not ids:
                raise ValueError(f"text {n} is empty: nothing to classify")
            rows.append((ids, 0))
        out = [torch.zeros(0, self.config.num_classes)]
        with evaluating(self) as device:
            for chunk in batched(rows, batch_size):
                b = collate_classification(chunk, pad_id=PAD_ID)
                out.append(self(b["input_ids"].to(device), b["lengths"].to(device)).softmax(-1).cpu())
        return torch.cat(out)

    def classify(self, texts: list[str], batch_size: int = 128) -> list[str]:
        """The most probable label of each text: ``classify(["a gorgeous film"]) -> ["positive"]``
        (``.labels`` names the classes; without them, the class ids as strings)."""
        names = getattr(self, "labels", None) or [str(i) for i in range(self.config.num_classes)]
        return [names[i] for i in self.probabilities(texts, batch_size).argmax(-1).tolist()]


class ClassifierTask(SequenceTask):
    """LightningModule for :class:`RNNClassifier`: cross-entropy, accuracy logged as
    ``valid_accuracy`` / ``test_accuracy``. Batches: ``input_ids`` (B, T), ``lengths`` (B,),
    ``labels`` (B,).

    Args:
        vocab_size, num_classes: linked from the datamodule by the CLI.
        cell: ``lstm`` or ``gru``.
        embedding_size: word embedding width (50 for glove.6B.50d).
        hidden_size: recurrent state width per direction.
        num_layers: stacked recurrent layers.
        bidirectional: read both ways.
        dropout: on the embeddings, between layers and on the pooled vector.
        pooling: ``last``, ``max``, ``mean`` or ``attention``.
        attention_size: width of the attention scorer.
        embeddings: pretrained (vocab_size, embedding_size) vectors (linked from the datamodule's
            ``embeddings``; not saved in the hyperparameters).
    """

    def __init__(self, vocab_size: int = 20000, num_classes: int = 2, cell: str = "lstm", embedding_size: int = 100,
                 hidden_size: int = 200, num_layers: int = 1, bidirectional: bool = True, dropout: float = 0.0,
                 pooling: str = "max", attention_size: int = 100, embeddings: torch.Tensor | None = None,
                 optimizer: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0, lr_decay: float = 1.0):
        super().__init__(optimizer, lr, weight_decay, lr_decay)
        self.save_hyperparameters(ignore=["embeddings"])
        self.net = RNNClassifier(ClassifierConfig(vocab_size, num_classes, cell, embedding_size, hidden_size,
                                                  num_layers, bidirectional, dropout, pooling, attention_size),
                                 embeddings=embeddings)
        acc = lambda: MulticlassAccuracy(num_classes, average="micro")  # noqa: E731
        self.train_accuracy, self.valid_accuracy, self.test_accuracy = acc(), acc(), acc()

    def forward(self, batch: dict) -> torch.Tensor:
        """A batch dict -> logits (B, num_classes)."""
        return self.net(batch["input_ids"], batch.get("lengths"))

    def _step(self, batch, split: str):
        logits = self(batch)
        loss = F.cross_entropy(logits, batch["labels"])
        metric = getattr(self, f"{split}_accuracy")
        metric.update(logits.argmax(-1), batch["labels"])
        self.log(f"{split}_loss", loss, prog_bar=split == "train", batch_size=len(batch["labels"]))
        self.log(f"{split}_accuracy", metric, prog_bar=split != "train", on_step=False, on_epoch=True)
        return loss


def evaluate_classification(net: RNNClassifier, dataset: str = "sst2", split: str = "valid",
                            data_dir: str | None = None, batch_size: int = 128) -> dict:
    """Accuracy of ``net.classify`` on a split, as ``ClassifierTask`` logs it; ``dataset`` as in
    :class:`~seqzoo.data.classification.ClassificationDataModule` (SST-2 has train and valid (dev) only), or one
    ``.tsv`` file in its format, scored whole (as ``split``)."""
    from seqzoo.data.classification import ClassificationDataModule, read_glue_tsv
    if str(dataset).endswith(".tsv"):
        rows = {split: read_glue_tsv(dataset)}
    else:
        rows = ClassificationDataModule(dataset, data_dir).rows
    if split not in rows:
        raise ValueError(f"dataset {dataset!r} has no labelled {split!r} split; available: {', '.join(rows)}"
                         f"{' (GLUE keeps the test labels private)' if split == 'test' else ''}")
    top = max(y for _, y in rows[split])
    if top >= net.config.num_classes:
        raise ValueError(f"{dataset} {split} has label {top}, the model has {net.config.num_classes} classes")
    pred = net.probabilities([t for t, _ in rows[split]], batch_size).argmax(-1).tolist()
    return {"accuracy": sum(p == y for p, (_, y) in zip(pred, rows[split])) / len(pred), "sentences": len(pred)}


def _create(arch_defaults: dict, **kwargs) -> RNNClassifier:
    embeddings = kwargs.pop("embeddings", None)
    return RNNClassifier(ClassifierConfig(**{**arch_defaults, **kwargs}), embeddings=embeddings)


@register_model(pretrained={"sst2_glove": PretrainedCfg(hf_hub_id="seqzoo/bilstm_max_classifier_1x200.sst2_glove",
                                                        dataset="sst2", recipe="recipes/sst2/bilstm_max_glove.yaml")})
def bilstm_max_classifier_1x200(pretrained=False, **kwargs):
    """1 x 200 BiLSTM, max pooling over time (Conneau et al. 2017), 50-d embeddings (GloVe 6B), dropout 0.5."""
    return _create(dict(cell="lstm", embedding_size=50, hidden_size=200, num_layers=1, pooling="max", dropout=0.5),
                   **kwargs)


@register_model(pretrained={"sst2_glove": PretrainedCfg(hf_hub_id="seqzoo/bilstm_attn_classifier_1x200.sst2_glove",
                                                        dataset="sst2", recipe="recipes/sst2/bilstm_attn_glove.yaml")})
def bilstm_attn_classifier_1x200(pretrained=False, **kwargs):
    """1 x 200 BiLSTM, attention pooling (Yang et al. 2016), 50-d embeddings (GloVe 6B), dropout 0.5."""
    return _create(dict(cell="lstm", embedding_size=50, hidden_size=200, num_layers=1, pooling="attention",
                        dropout=0.5), **kwargs)


@register_model
def bilstm_last_classifier_1x200(pretrained=False, **kwargs):
    """1 x 200 BiLSTM, last real state of each direction, 50-d embeddings (GloVe 6B)."""
    return _create(dict(cell="lstm", embedding_size=50, hidden_size=200, num_layers=1, pooling="last"), **kwargs)


@register_model
def bigru_max_classifier_1x200(pretrained=False, **kwargs):
    """1 x 200 BiGRU, max pooling over time, 50-d embeddings (GloVe 6B)."""
    return _create(dict(cell="gru", embedding_size=50, hidden_size=200, num_layers=1, pooling="max"), **kwargs)
