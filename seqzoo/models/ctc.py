"""CTC sequence models: a BiLSTM / BiGRU encoder trained with connectionist temporal
classification, decoded greedily or by prefix beam search.

Label 0 is the CTC blank. CTC emits at most one label per frame, but an output may be longer
than its input (grapheme-to-phoneme: ``x`` -> ``K S``), so the encoder first *upsamples* time:
each input frame's embedding is projected by a linear layer to ``upsample`` different vectors
(``(B, T, E) -> (B, T * upsample, E)``), and the recurrent stack runs over the longer sequence.

References:
- Graves, Fernández, Gomez & Schmidhuber 2006, "Connectionist Temporal Classification:
  Labelling Unsegmented Sequence Data with Recurrent Neural Networks".
- Hannun, Maas, Jurafsky & Ng 2014, "First-Pass Large Vocabulary Continuous Speech Recognition
  using Bi-Directional Recurrent DNNs" (arXiv:1408.2873; CTC prefix beam search).
- Rao, Peng, Sak & Beaufays 2015, "Grapheme-to-phoneme conversion using Long Short-Term Memory
  recurrent neural networks" (CTC G2P on CMUdict).
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.text import WordErrorRate

from seqzoo.hub import HubMixin
from seqzoo.models.tagger import CELLS, PAD_ID, RecurrentEncoder, SequenceTask, _check_choice
from seqzoo.registry import PretrainedCfg, register_model
from seqzoo.utils import batched, evaluating, require

__all__ = ["CTCConfig", "CTCModel", "CTCTask", "ctc_decode", "ctc_greedy_decode", "ctc_prefix_beam_search",
           "evaluate_g2p", "DECODERS", "BLANK"]

BLANK = 0
DECODERS = ("greedy", "beam")
_NEG_INF = float("-inf")


def _logaddexp(a: float, b: float) -> float:
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def ctc_greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor | None = None,
                      blank: int = BLANK) -> list[list[int]]:
    """Best path: the argmax label per frame, repeats collapsed, blanks dropped.

    ``log_probs`` (B, T, C) (or (T, C)), ``lengths`` (B,) frames per row -> a label list per row.
    """
    if log_probs.dim() == 2:
        return ctc_greedy_decode(log_probs[None], None if lengths is None else lengths[None], blank)[0]
    best = log_probs.argmax(-1)                                      # (B, T)
    prev = F.pad(best, (1, 0), value=-1)[:, :-1]                     # the label one frame earlier
    keep = (best != blank) & (best != prev)
    if lengths is not None:
        keep &= torch.arange(best.shape[1], device=best.device)[None, :] < lengths[:, None]
    return [row[k].tolist() for row, k in zip(best, keep)]


def ctc_prefix_beam_search(log_probs: torch.Tensor, beam_size: int = 10, blank: int = BLANK,
                           prune: float | None = None) -> list[tuple[list[int], float]]:
    """CTC prefix beam search (Hannun et al. 2014), in log space, over one sequence.

    Every prefix keeps two scores: the log-probability of all alignments of the frames so far that
    collapse to it and end in a blank (``pb``) or in its last label (``pnb``); a repeated label
    only extends a prefix through ``pb`` (a blank must separate ``a a``). With ``beam_size`` at
    least the number of labellings the scores are exact: the sum over alignments.

    ``log_probs`` (T, C) -> up to ``beam_size`` (labels, log-probability), best first. ``prune``:
    skip labels whose probability at a frame is below it (blank is always kept).
    """
    if log_probs.dim() != 2:
        raise ValueError(f"log_probs must be (T, C) for one sequence, got shape {tuple(log_probs.shape)}")
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, _NEG_INF)}
    floor = math.log(prune) if prune else _NEG_INF
    for frame in log_probs.detach().double().cpu().tolist():
        labels = [c for c, lp in enumerate(frame) if c != blank and lp >= floor]
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [_NEG_INF, _NEG_INF])
        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            stay = nxt[prefix]
            stay[0] = _logaddexp(stay[0], total + frame[blank])      # ... then a blank
            last = prefix[-1] if prefix else None
            for c in labels:
                ext = nxt[prefix + (c,)]
                if c == last:
                    stay[1] = _logaddexp(stay[1], pnb + frame[c])    # "a" + "a" collapses to "a"
                    ext[1] = _logaddexp(ext[1], pb + frame[c])       # "a" + blank + "a" = "aa"
                else:
                    ext[1] = _logaddexp(ext[1], total + frame[c])
        live = [kv for kv in nxt.items() if _logaddexp(*kv[1]) > _NEG_INF]  # "a a" with no blank: impossible
        ranked = sorted(live, key=lambda kv: _logaddexp(*kv[1]), reverse=True)[:beam_size]
        beams = {p: (s[0], s[1]) for p, s in ranked}
    return [(list(p), _logaddexp(*s)) for p, s in sorted(beams.items(), key=lambda kv: _logaddexp(*kv[1]),
                                                           reverse=True)]


def ctc_decode(log_probs: torch.Tensor, lengths: torch.Tensor, beam_size: int = 1) -> list[list[int]]:
    """(B, T, C), (B,) -> label ids per row: best path for ``beam_size`` 1, else the best prefix of
    :func:`ctc_prefix_beam_search` (labels below probability 1e-4 at a frame pruned)."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if beam_size == 1:
        return ctc_greedy_decode(log_probs, lengths)
    return [ctc_prefix_beam_search(lp[:n], beam_size, prune=1e-4)[0][0] for lp, n in zip(log_probs, lengths.tolist())]


@dataclass
class CTCConfig:
    vocab_size: int = 40  # input symbols (characters)
    num_labels: int = 40  # output labels, blank (0) included
    cell: str = "lstm"
    embedding_size: int = 64
    hidden_size: int = 256
    num_layers: int = 3
    bidirectional: bool = True
    dropout: float = 0.0
    upsample: int = 2  # output frames per input frame

    def __post_init__(self):
        _check_choice("cell", self.cell, CELLS)
        if min(self.vocab_size, self.embedding_size, self.hidden_size, self.num_layers, self.upsample) < 1:
            raise ValueError("vocab_size, embedding_size, hidden_size, num_layers and upsample must be >= 1")
        if self.num_labels < 2:
            raise ValueError(f"num_labels counts the blank (0) and must be >= 2, got {self.num_labels}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class CTCModel(HubMixin, nn.Module):
    """Embedding -> upsample (linear to ``upsample`` vectors per frame) -> stacked (bi)RNN -> linear
    -> log-softmax.

    ``forward(input_ids (B, T) int64, lengths (B,) | None) -> log_probs (B, T * upsample,
    num_labels), out_lengths (B,)``.
    """

    def __init__(self, config: CTCConfig | None = None, **kwargs):
        super().__init__()
        self.config = c = config or CTCConfig(**kwargs)
        self.embed = nn.Embedding(c.vocab_size, c.embedding_size, padding_idx=PAD_ID)
        self.expand = nn.Linear(c.embedding_size, c.embedding_size * c.upsample)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = RecurrentEncoder(c.embedding_size, c.hidden_size, c.num_layers, c.cell, c.bidirectional,
                                        c.dropout)
        self.out = nn.Linear(self.encoder.output_size, c.num_labels)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None):
        B, T = input_ids.shape
        r = self.config.upsample
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long, device=input_ids.device)
        x = self.expand(self.embed(input_ids)).view(B, T * r, -1)    # (B, T*r, E): frame t -> t*r .. t*r+r-1
        h, _ = self.encoder(self.drop(x), lengths * r)               # (B, T*r, dirs*H)
        return self.out(self.drop(h)).log_softmax(-1), lengths * r

    @torch.no_grad()
    def transcribe(self, words: list[str], beam_size: int = 1, batch_size: int = 256) -> list[list[str]]:
        """The labels of each input string, read character by character:
        ``transcribe(["zoo"]) -> [["Z", "UW"]]`` for a CMUdict G2P model.

        Characters are lower-cased when the vocabulary is (``Vocab.uncased``; CMUdict's words are);
        a character the vocabulary lacks reads as ``<unk>``. ``beam_size`` 1 is best-path decoding,
        more is prefix beam search. An empty string gives no labels. Needs ``.vocab`` and ``.labels``.
        """
        from seqzoo.data.g2p import collate_g2p
        require(self, "vocab", "labels")
        norm = str.lower if self.vocab.uncased else str
        out: list[list[str]] = [[] for _ in words]
        todo = [i for i, w in enumerate(words) if w]
        with evaluating(self) as device:
            for idx in batched(todo, batch_size):
                b = collate_g2p([([self.vocab[c] for c in norm(words[i])], []) for i in idx], pad_id=PAD_ID)
                log_probs, out_lengths = self(b["input_ids"].to(device), b["lengths"].to(device))
                for i, labels in zip(idx, ctc_decode(log_probs, out_lengths, beam_size)):
                    out[i] = [self.labels[c] for c in labels]
        return out


class CTCTask(SequenceTask):
    """LightningModule for :class:`CTCModel`: ``torch.nn.CTCLoss`` (blank 0; per-sequence loss
    divided by its target length, averaged over the batch), and the label error rate over the
    whole split (edit distance / reference length; torchmetrics ``WordErrorRate`` over
    space-joined label ids), logged as ``valid_per`` / ``test_per`` (a fraction).

    Batches: ``input_ids`` (B, T), ``lengths`` (B,), ``labels`` (B, S) (padded with 0),
    ``label_lengths`` (B,).

    Args:
        vocab_size, num_labels: linked from the datamodule by the CLI.
        cell: ``lstm`` or ``gru``.
        embedding_size: input symbol embedding width.
        hidden_size: recurrent state width per direction.
        num_layers: stacked recurrent layers.
        bidirectional: read both ways.
        dropout: on the RNN's input and output and between layers.
        upsample: output frames per input frame (CTC needs at least one frame per output label).
        decoder: ``greedy`` or ``beam`` (prefix beam search) for validation and test.
        beam_size: prefix beam search width.
    """

    def __init__(self, vocab_size: int = 40, num_labels: int = 40, cell: str = "lstm", embedding_size: int = 64,
                 hidden_size: int = 256, num_layers: int = 3, bidirectional: bool = True, dropout: float = 0.0,
                 upsample: int = 2, decoder: str = "greedy", beam_size: int = 10, optimizer: str = "adam",
                 lr: float = 1e-3, weight_decay: float = 0.0, lr_decay: float = 1.0):
        super().__init__(optimizer, lr, weight_decay, lr_decay)
        _check_choice("decoder", decoder, DECODERS)
        self.save_hyperparameters()
        self.net = CTCModel(CTCConfig(vocab_size, num_labels, cell, embedding_size, hidden_size, num_layers,
                                      bidirectional, dropout, upsample))
        self.ctc = nn.CTCLoss(blank=BLANK, zero_infinity=True)
        self.valid_per, self.test_per = WordErrorRate(), WordErrorRate()

    def forward(self, batch: dict):
        """A batch dict -> log_probs (B, T', num_labels), out_lengths (B,)."""
        return self.net(batch["input_ids"], batch.get("lengths"))

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """(B, T', C), (B,) -> label ids per row, by the configured decoder."""
        return ctc_decode(log_probs, lengths, 1 if self.hparams.decoder == "greedy" else self.hparams.beam_size)

    def _loss(self, batch):
        log_probs, out_lengths = self(batch)
        loss = self.ctc(log_probs.transpose(0, 1), batch["labels"], out_lengths, batch["label_lengths"])
        return log_probs, out_lengths, loss

    def training_step(self, batch, batch_idx):
        _, _, loss = self._loss(batch)
        self._check_loss(loss)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["input_ids"]))
        return loss

    def _eval(self, batch, split: str):
        log_probs, out_lengths, loss = self._loss(batch)
        hyps = self.decode(log_probs, out_lengths)
        refs = [row[:n].tolist() for row, n in zip(batch["labels"], batch["label_lengths"].tolist())]
        metric = getattr(self, f"{split}_per")
        metric.update([" ".join(map(str, h)) for h in hyps], [" ".join(map(str, r)) for r in refs])
        self.log(f"{split}_loss", loss, batch_size=len(refs))
        self.log(f"{split}_per", metric, prog_bar=True, on_step=False, on_epoch=True)

    def validation_step(self, batch, batch_idx):
        self._eval(batch, "valid")

    def test_step(self, batch, batch_idx):
        self._eval(batch, "test")


def evaluate_g2p(net: CTCModel, dataset: str = "cmudict", split: str = "test", beam_size: int = 1,
                 batch_size: int = 256) -> dict:
    """Phoneme error rate (edit distance / reference length over the whole split, as ``CTCTask``
    logs it) and word error rate (share of words with any error) of ``net.transcribe`` on a split of
    :class:`~seqzoo.data.g2p.G2PDataModule`; stress digits kept if the model's labels have them."""
    from torchmetrics.functional.text import word_error_rate

    from seqzoo.data.g2p import G2PDataModule
    require(net, "labels")
    stress = any(ch.isdigit() for label in net.labels for ch in label)
    pairs = G2PDataModule(dataset, stress=stress).pairs
    if split not in pairs or not pairs[split]:
        raise ValueError(f"dataset {dataset!r} has no words in split {split!r}; splits: train, valid, test")
    known = set(net.labels)
    for w, ps in pairs[split]:
        bad = next((p for p in ps if p not in known), None)
        if bad is not None:
            raise ValueError(f"{dataset} {split} word {w!r} has the phoneme {bad!r}, which the model does not know")
    hyps = net.transcribe([w for w, _ in pairs[split]], beam_size, batch_size)
    refs = [ps for _, ps in pairs[split]]
    return {"per": float(word_error_rate([" ".join(h) for h in hyps], [" ".join(r) for r in refs])),
            "wer": sum(h != r for h, r in zip(hyps, refs)) / len(refs), "words": len(refs)}


def _create(arch_defaults: dict, **kwargs) -> CTCModel:
    return CTCModel(CTCConfig(**{**arch_defaults, **kwargs}))


@register_model
def bilstm_ctc_3x256(pretrained=False, **kwargs):
    """3 x 256 BiLSTM over 2x-upsampled character embeddings, CTC output (Rao et al. 2015 style G2P)."""
    return _create(dict(cell="lstm", embedding_size=64, hidden_size=256, num_layers=3, upsample=2), **kwargs)


@register_model(pretrained={"cmudict": PretrainedCfg(hf_hub_id="seqzoo/bilstm_ctc_2x256.cmudict", dataset="cmudict",
                                                    recipe="recipes/cmudict_g2p/bilstm_ctc_2x256.yaml")})
def bilstm_ctc_2x256(pretrained=False, **kwargs):
    """2 x 256 BiLSTM over 2x-upsampled character embeddings, CTC output, dropout 0.2 (the CPU-sized G2P recipe)."""
    return _create(dict(cell="lstm", embedding_size=64, hidden_size=256, num_layers=2, upsample=2, dropout=0.2),
                   **kwargs)


@register_model
def bigru_ctc_3x256(pretrained=False, **kwargs):
    """3 x 256 BiGRU over 2x-upsampled character embeddings, CTC output."""
    return _create(dict(cell="gru", embedding_size=64, hidden_size=256, num_layers=3, upsample=2), **kwargs)
