"""``TranslationDataModule``: parallel text -> BPE (or word) ids -> length-bucketed padded batches.

Sources, each giving a ``datasets.DatasetDict`` with columns ``src`` / ``tgt`` and splits
``train`` / ``valid`` / ``test``:

- ``multi30k`` (Elliott et al. 2016, WMT16 Task 1, de-en; 29,000 / 1,014 / 1,000 pairs, test =
  test_2016_flickr): the local mirror ``<data_dir>/multi30k/raw/{train,val,test_2016_flickr}.{de,en}.gz``
  (raw, cased, untokenised), else the Hub dataset ``bentrevett/multi30k`` (columns ``de`` / ``en``).
- a folder with, per split (``train``, ``valid`` | ``val`` | ``validation`` | ``dev``, ``test``), either two
  line-aligned files ``<split>.<src_lang>`` / ``<split>.<tgt_lang>`` (``.gz`` too), or ``<split>.tsv``
  (``src<TAB>tgt``; a header row naming the two languages picks the columns), or ``<split>.jsonl``
  (objects with keys ``<src_lang>`` / ``<tgt_lang>``, or ``src`` / ``tgt``).

Tokenisation is HF ``tokenizers``, trained on the train split only: BPE (Sennrich et al. 2016) over
SentencePiece-style ``▁`` word boundaries, so ``decode`` gives back the text exactly (characters never seen
in training become ``<unk>``), or whole words (split on white space and punctuation). One joint vocabulary
for both languages or one each. Specials have the fixed ids of :mod:`seqzoo.data.vocab`: ``<unk>`` 0,
``<eos>`` 1, ``<pad>`` 2, ``<bos>`` 3. The source gets ``<eos>`` appended; the decoder reads
``<bos> y`` and predicts ``y <eos>``.

Batches sort pairs by length inside chunks of ``bucket_chunks`` batches, so a batch holds similar lengths
and little padding, and the batches are shuffled (evaluation: one chunk, no shuffling)::

    shuffled pairs  | 7 2 9 4 5 1 | 8 3 6 ...      chunks of batch_size * bucket_chunks pairs
    sorted by length| 2 4 1 9 7 5 | 3 8 6 ...      then cut into batches, and the batches shuffled
"""
from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from seqzoo.data.corpora import resolve_data_dir
from seqzoo.data.lm import IGNORE_INDEX
from seqzoo.data.vocab import SPECIALS

__all__ = ["TranslationDataModule", "BucketBatchSampler", "ParallelCorpus", "PARALLEL_CORPORA", "load_parallel",
           "read_parallel", "train_tokenizer", "encode_source", "detokenize", "collate_pairs", "TOKENIZATIONS",
           "UNK_ID", "EOS_ID", "PAD_ID", "BOS_ID"]

UNK_ID, EOS_ID, PAD_ID, BOS_ID = 0, 1, 2, 3  # the order of seqzoo.data.vocab.SPECIALS
TOKENIZATIONS = ("bpe", "word")
SPLITS = ("train", "valid", "test")
_SPLIT_NAMES = {"train": ("train",), "valid": ("valid", "val", "validation", "dev"), "test": ("test",)}


@dataclass(frozen=True)
class ParallelCorpus:
    """A named parallel corpus: its local file stems, its languages and its hub id."""
    folder: str
    stems: dict  # split -> file stem; files are <stem>.<lang>.gz
    langs: tuple
    hub_id: str | None = None
    hub_splits: dict | None = None


PARALLEL_CORPORA = {
    "multi30k": ParallelCorpus("multi30k/raw", {"train": "train", "valid": "val", "test": "test_2016_flickr"},
                               ("de", "en"), "bentrevett/multi30k",
                               {"train": "train", "valid": "validation", "test": "test"}),
}


# -- reading ---------------------------------------------------------------------------------------
def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"parallel text file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="\n") as f:
            return [line.rstrip("\r\n") for line in f]
    except UnicodeDecodeError as e:
        raise ValueError(f"parallel text file is not UTF-8: {path} (byte {e.start})") from None


def read_parallel(src_path: str | os.PathLike, tgt_path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Two line-aligned files -> (source lines, target lines); different line counts are an error."""
    src, tgt = _read_lines(Path(src_path)), _read_lines(Path(tgt_path))
    if len(src) != len(tgt):
        raise ValueError(f"line counts differ: {src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}")
    return src, tgt


def _read_table(path: Path, src_lang: str, tgt_lang: str) -> tuple[list[str], list[str]]:
    src, tgt = [], []
    if path.suffix == ".jsonl":
        for i, line in enumerate(_read_lines(path), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} line {i} is not JSON: {e}") from None
            keys = (src_lang, tgt_lang) if src_lang in obj and tgt_lang in obj else ("src", "tgt")
            if not all(k in obj for k in keys):
                raise ValueError(f"{path} line {i} has neither keys {src_lang!r}/{tgt_lang!r} nor 'src'/'tgt'")
            src.append(str(obj[keys[0]]))
            tgt.append(str(obj[keys[1]]))
        return src, tgt
    lines = _read_lines(path)
    cols = (0, 1)
    if lines:
        head = lines[0].split("\t")
        if {src_lang, tgt_lang} <= set(head) or head == ["src", "tgt"]:
            cols = (head.index(src_lang), head.index(tgt_lang)) if src_lang in head else (0, 1)
            lines = lines[1:]
    for i, line in enumerate(lines, 1):
        fields = line.split("\t")
        if len(fields) < 2:
            raise ValueError(f"{path} line {i} has {len(fields)} tab-separated field(s); expected 2 (src, tgt)")
        src.append(fields[cols[0]])
        tgt.append(fields[cols[1]])
    return src, tgt


def _folder_split(folder: Path, split: str, src_lang: str, tgt_lang: str) -> tuple[list[str], list[str]] | None:
    for name in _SPLIT_NAMES[split]:
        for ext in ("", ".gz"):
            s, t = folder / f"{name}.{src_lang}{ext}", folder / f"{name}.{tgt_lang}{ext}"
            if s.is_file() or t.is_file():
                return read_parallel(s, t)
        for ext in (".tsv", ".jsonl"):
            if (folder / f"{name}{ext}").is_file():
                return _read_table(folder / f"{name}{ext}", src_lang, tgt_lang)
    return None


def load_parallel(dataset: str, src_lang: str, tgt_lang: str, data_dir: str | os.PathLike | None = None):
    """``DatasetDict`` (train / valid / test present in the source) with string columns ``src`` and ``tgt``."""
    import datasets
    if src_lang == tgt_lang:
        raise ValueError(f"src_lang and tgt_lang are both {src_lang!r}")
    data_dir = resolve_data_dir(data_dir)
    splits: dict[str, tuple[list[str], list[str]]] = {}
    if dataset in PARALLEL_CORPORA:
        c = PARALLEL_CORPORA[dataset]
        bad = [x for x in (src_lang, tgt_lang) if x not in c.langs]
        if bad:
            raise ValueError(f"{dataset} has no language {bad[0]!r}; valid: {', '.join(c.langs)}")
        local = data_dir / c.folder if data_dir else None
        if local is not None and (local / f"{c.stems['train']}.{src_lang}.gz").is_file():
            for split, stem in c.stems.items():
                splits[split] = read_parallel(local / f"{stem}.{src_lang}.gz", local / f"{stem}.{tgt_lang}.gz")
        else:
            from seqzoo.data.corpora import load_hub_dataset
            raw = load_hub_dataset(dataset, str(local) if local else "no --data.data_dir / SEQZOO_DATA given",
                                   c.hub_id)
            for split, hub in c.hub_splits.items():
                if hub in raw:
                    splits[split] = (list(raw[hub][src_lang]), list(raw[hub][tgt_lang]))
    else:
        folder = Path(dataset).expanduser()
        if not folder.is_dir():
            raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(PARALLEL_CORPORA)}; or a folder with "
                             f"<split>.{src_lang} / <split>.{tgt_lang}, <split>.tsv or <split>.jsonl files")
        for split in SPLITS:
            pair = _folder_split(folder, split, src_lang, tgt_lang)
            if pair is not None:
                splits[split] = pair
        if "train" not in splits:
            raise FileNotFoundError(f"folder {folder} has no train.{src_lang} + train.{tgt_lang}, train.tsv or "
                                    f"train.jsonl")
    return datasets.DatasetDict({s: datasets.Dataset.from_dict({"src": a, "tgt": b}) for s, (a, b) in splits.items()})


# -- tokenisers ------------------------------------------------------------------------------------
def train_tokenizer(texts: Iterable[str], kind: str = "bpe", vocab_size: int = 8000, min_frequency: int = 2,
                    lowercase: bool = False):
    """A ``tokenizers.Tokenizer`` trained on ``texts``; specials get ids 0..3 (<unk>, <eos>, <pad>, <bos>)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    if kind not in TOKENIZATIONS:
        raise ValueError(f"unknown tokenization {kind!r}; valid: {', '.join(TOKENIZATIONS)}")
    opts = dict(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIALS), show_progress=False)
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=SPECIALS[0]))
        trainer = trainers.BpeTrainer(**opts)
    else:
        tok = Tokenizer(models.WordLevel(unk_token=SPECIALS[0]))
        trainer = trainers.WordLevelTrainer(**opts)
    # words split at spaces (kept as "▁") and at punctuation: decoding restores the text exactly ("woman's", not
    # "woman ' s"), so BLEU compares a hypothesis with the reference as written
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()])
    tok.decoder = decoders.Metaspace()
    norm = [normalizers.NFC()] + ([normalizers.Lowercase()] if lowercase else [])
    tok.normalizer = normalizers.Sequence(norm)
    tok.train_from_iterator(texts, trainer)
    return tok


def encode_source(tokenizer, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
    """Source ids with ``<eos>`` appended, cut to ``max_length`` (``<eos>`` kept last)."""
    out = []
    for enc in tokenizer.encode_batch(list(texts)):
        ids = enc.ids + [EOS_ID]
        if max_length is not None and len(ids) > max_length:
            ids = ids[:max_length - 1] + [EOS_ID]
        out.append(ids)
    return out


def detokenize(tokenizer, ids: Iterable[int]) -> str:
    """Ids (cut at the first ``<eos>``; specials dropped) -> text."""
    ids = [int(i) for i in ids]
    if EOS_ID in ids:
        ids = ids[:ids.index(EOS_ID)]
    return tokenizer.decode(ids, skip_special_tokens=True)


# -- batching --------------------------------------------------------------------------------------
class BucketBatchSampler(Sampler):
    """Batches of indices of similar length: sort within chunks of ``batch_size * chunk_batches`` pairs of a
    shuffled order, cut, shuffle the batches; a new (seeded) order every epoch. ``shuffle=False``: one sorted
    pass, longest first."""

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, chunk_batches: int = 100,
                 seed: int = 0):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.chunk_batches, self.seed = batch_size, shuffle, chunk_batches, seed
        self.epoch = 0

    def __len__(self) -> int:
        n, chunk = len(self.lengths), self.batch_size * self.chunk_batches
        if not self.shuffle:
            return -(-n // self.batch_size)
        return sum(-(-min(chunk, n - c) // self.batch_size) for c in range(0, n, chunk))

    def __iter__(self) -> Iterator[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(-self.lengths, kind="stable")
            yield from (order[i:i + self.batch_size].tolist() for i in range(0, n, self.batch_size))
            return
        rng = np.random.default_rng(self.seed + self.epoch)
        self.epoch += 1
        order, chunk, batches = rng.permutation(n), self.batch_size * self.chunk_batches, []
        for c in range(0, n, chunk):
            idx = order[c:c + chunk]
            idx = idx[np.argsort(self.lengths[idx], kind="stable")]
            batches += [idx[i:i + self.batch_size].tolist() for i in range(0, len(idx), self.batch_size)]
        for b in rng.permutation(len(batches)):
            yield batches[b]


class Batches(Dataset):
    """Fixed batches (lists of pair indices) as a map-style dataset of collated batches: the training loader
    shuffles their order every epoch, and under DDP Lightning's DistributedSampler gives each rank its own
    batches (fairseq's recipe: buckets drawn once, visited in a new order each epoch)."""

    def __init__(self, pairs: list[tuple], batches: list[list[int]]):
        self.pairs, self.batches = pairs, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict:
        return collate_pairs([self.pairs[j] for j in self.batches[i]])


class ShardedBatches(IterableDataset):
    """Evaluation batches of one rank (and one loader worker): batch ``i`` goes to rank ``i % world_size``. No
    batch is repeated or dropped, so corpus BLEU summed over ranks (torchmetrics' sum-reduced states) equals
    one process's."""

    def __init__(self, pairs: list[tuple], batches: list[list[int]], rank: int = 0, world_size: int = 1):
        self.pairs, self.batches = pairs, batches[rank::world_size]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[dict]:
        from torch.utils.data import get_worker_info
        w = get_worker_info()
        for b in self.batches[w.id::w.num_workers] if w is not None else self.batches:
            yield collate_pairs([self.pairs[j] for j in b])


def collate_pairs(items: list[tuple]) -> dict:
    """(index, src ids, tgt ids, tgt text) tuples -> padded batch.

    ``src`` (B, S) int64 padded with ``<pad>``, ``src_lengths`` (B,), ``src_mask`` (B, S) bool (True = token);
    ``tgt_in`` (B, T) = ``<bos> y`` padded with ``<pad>``; ``tgt_out`` (B, T) = ``y <eos>`` padded with -100;
    ``tgt_text`` the reference strings; ``index`` (B,) positions in the split.
    """
    B = len(items)
    S = max(len(it[1]) for it in items)
    T = max(len(it[2]) for it in items) + 1
    src = torch.full((B, S), PAD_ID, dtype=torch.long)
    tgt_in = torch.full((B, T), PAD_ID, dtype=torch.long)
    tgt_out = torch.full((B, T), IGNORE_INDEX, dtype=torch.long)
    for b, (_, s, t, _) in enumerate(items):
        src[b, :len(s)] = torch.as_tensor(s)
        y = torch.as_tensor(t, dtype=torch.long)
        tgt_in[b, 0] = BOS_ID
        tgt_in[b, 1:len(t) + 1] = y
        tgt_out[b, :len(t)] = y
        tgt_out[b, len(t)] = EOS_ID
    lengths = torch.tensor([len(it[1]) for it in items])
    return {"src": src, "src_lengths": lengths, "src_mask": src != PAD_ID, "tgt_in": tgt_in, "tgt_out": tgt_out,
            "tgt_text": [it[3] for it in items], "index": torch.tensor([it[0] for it in items])}


class TranslationDataModule(L.LightningDataModule):
    """Parallel-text batches for :class:`seqzoo.models.seq2seq.Seq2Seq`.

    Args:
        dataset: ``multi30k`` or a folder of parallel files (see the module docstring).
        src_lang: source language code (file suffix / column), e.g. ``de``.
        tgt_lang: target language code, e.g. ``en``.
        data_dir: folder of local mirrors (layout of ``shared/data``); default ``$SEQZOO_DATA``.
        tokenization: ``bpe`` (subwords) or ``word``.
        vocab_size: size of each vocabulary (or of the joint one), specials included.
        joint_vocab: one tokenizer trained on both sides (``src_vocab_size == tgt_vocab_size``).
        min_frequency: BPE: a merge needs this many occurrences; word: words rarer than this are ``<unk>``.
        lowercase: lower-case both sides (in the tokenizer, so ``translate`` does the same).
        max_length: train pairs with more source (``<eos>`` included) or target tokens are dropped (the count is
            reported); valid / test sources are cut to it instead, so every reference is scored.
        batch_size: pairs per training batch.
        eval_batch_size: pairs per validation / test batch (default: ``batch_size``).
        bucket_chunks: batches per sorting chunk (1: batches of random lengths).
        tokenizers: a folder with ``src_tokenizer.json`` and ``tgt_tokenizer.json`` (a seqzoo translation
            checkpoint) to use instead of training new ones: fine-tuning keeps the pretrained model's ids.
        seed: draws the training buckets (once); their order is reshuffled every epoch (seeded by
            ``seed_everything``). Under DDP each rank reads its own batches: training ones through Lightning's
            DistributedSampler, evaluation ones round-robin, none repeated, so BLEU over all ranks is exact.
    """

    def __init__(self, dataset: str = "multi30k", src_lang: str = "de", tgt_lang: str = "en",
                 data_dir: str | None = None, tokenization: str = "bpe", vocab_size: int = 8000,
                 joint_vocab: bool = True, min_frequency: int = 2, lowercase: bool = False, max_length: int = 100,
                 batch_size: int = 128, eval_batch_size: int | None = None, bucket_chunks: int = 100,
                 num_workers: int = 0, seed: int = 0, tokenizers: str | None = None):
        super().__init__()
        if tokenization not in TOKENIZATIONS:
            raise ValueError(f"unknown tokenization {tokenization!r}; valid: {', '.join(TOKENIZATIONS)}")
        if vocab_size <= len(SPECIALS):
            raise ValueError(f"vocab_size must be > {len(SPECIALS)} (the specials), got {vocab_size}")
        if min(batch_size, eval_batch_size or 1, bucket_chunks, max_length - 1) < 1:
            raise ValueError("batch_size, eval_batch_size and bucket_chunks must be >= 1 and max_length >= 2")
        self.save_hyperparameters()
        self._ds = None
        self.pairs: dict[str, list[tuple]] = {}
        self.filtered: dict[str, dict[str, int]] = {}
        self.src_tokenizer = self.tgt_tokenizer = None
        self.prepare_tokenizers()  # the model's vocab sizes are linked to ours: build them now

    # -- text and tokenisers ---------------------------------------------------------------------
    def corpus(self):
        if self._ds is None:
            h = self.hparams
            self._ds = load_parallel(h.dataset, h.src_lang, h.tgt_lang, h.data_dir)
        return self._ds

    def prepare_tokenizers(self):
        if self.src_tokenizer is None and self.hparams.tokenizers:
            from tokenizers import Tokenizer
            folder = Path(self.hparams.tokenizers)
            files = [folder / f"{side}_tokenizer.json" for side in ("src", "tgt")]
            missing = [str(f) for f in files if not f.is_file()]
            if missing:
                raise FileNotFoundError(f"tokenizers folder {folder} lacks {', '.join(missing)}")
            self.src_tokenizer, self.tgt_tokenizer = (Tokenizer.from_file(str(f)) for f in files)
        if self.src_tokenizer is None:
            h, train = self.hparams, self.corpus()["train"]
            src, tgt = [s for s in list(train["src"]) if s.strip()], [t for t in list(train["tgt"]) if t.strip()]
            if not src or not tgt:
                raise ValueError(f"training split of {h.dataset!r} has no non-empty source or target line")
            fit = lambda texts: train_tokenizer(texts, h.tokenization, h.vocab_size, h.min_frequency,  # noqa: E731
                                                h.lowercase)
            if h.joint_vocab:
                self.src_tokenizer = self.tgt_tokenizer = fit(src + tgt)
            else:
                self.src_tokenizer, self.tgt_tokenizer = fit(src), fit(tgt)
        return self.src_tokenizer, self.tgt_tokenizer

    @property
    def src_vocab_size(self) -> int:
        return self.prepare_tokenizers()[0].get_vocab_size()

    @property
    def tgt_vocab_size(self) -> int:
        return self.prepare_tokenizers()[1].get_vocab_size()

    @property
    def src_tokenizer_json(self) -> str:
        return self.prepare_tokenizers()[0].to_str()

    @property
    def tgt_tokenizer_json(self) -> str:
        return self.prepare_tokenizers()[1].to_str()

    pad_id, bos_id, eos_id, unk_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID

    def decode(self, ids: Iterable[int]) -> str:
        """Target ids -> detokenised text (stops at ``<eos>``)."""
        return detokenize(self.prepare_tokenizers()[1], ids)

    def encode(self, text: str) -> list[int]:
        """Source text -> ids (``<eos>`` appended)."""
        return encode_source(self.prepare_tokenizers()[0], [text])[0]

    # -- ids -------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.pairs:
            return
        from lightning.pytorch.utilities import rank_zero_info
        h, (src_tok, tgt_tok) = self.hparams, self.prepare_tokenizers()
        for split, ds in self.corpus().items():
            src_text, tgt_text = list(ds["src"]), list(ds["tgt"])
            keep = [i for i, (s, t) in enumerate(zip(src_text, tgt_text)) if s.strip() and t.strip()]
            src_ids = encode_source(src_tok, [src_text[i] for i in keep], None if split == "train" else h.max_length)
            tgt_norm = [tgt_tok.normalizer.normalize_str(tgt_text[i]) for i in keep]
            tgt_ids = [e.ids for e in tgt_tok.encode_batch(tgt_norm)]
            pairs = [(j, s, t, r) for j, (s, t, r) in enumerate(zip(src_ids, tgt_ids, tgt_norm))
                     if split != "train" or (len(s) <= h.max_length and len(t) + 1 <= h.max_length)]
            self.filtered[split] = {"empty": len(ds) - len(keep), "overlong": len(keep) - len(pairs)}
            if len(pairs) < len(ds):
                rank_zero_info(f"{h.dataset} {split}: skipped {len(ds) - len(keep)} empty and "
                               f"{len(keep) - len(pairs)} overlong (> {h.max_length} tokens) pairs of {len(ds)}")
            self.pairs[split] = [(k, *p[1:]) for k, p in enumerate(pairs)]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        if split not in self.pairs:
            raise ValueError(f"dataset {self.hparams.dataset!r} has no split {split!r}; "
                             f"available: {', '.join(self.pairs)}")
        h, pairs = self.hparams, self.pairs[split]
        bs = h.batch_size if shuffle else (h.eval_batch_size or h.batch_size)
        lengths = [max(len(p[1]), len(p[2]) + 1) for p in pairs]
        batches = list(BucketBatchSampler(lengths, bs, shuffle, h.bucket_chunks, h.seed))
        if shuffle:  # Lightning shards these across DDP ranks (DistributedSampler) and reshuffles every epoch
            return DataLoader(Batches(pairs, batches), batch_size=None, shuffle=True, num_workers=h.num_workers)
        t = getattr(self, "trainer", None)
        rank, world = (t.global_rank, t.world_size) if t is not None else (0, 1)
        return DataLoader(ShardedBatches(pairs, batches, rank, world), batch_size=None, num_workers=h.num_workers)

    def train_dataloader(self):
        return self._loader("train", True)

    def val_dataloader(self):
        return self._loader("valid", False)

    def test_dataloader(self):
        return self._loader("test", False)
