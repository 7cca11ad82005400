"""Fine-tune a pretrained model on one's own corpus: ``seqzoo finetune NAME_OR_PATH --train my.txt`` for a language
model, ``--src my.de --tgt my.en`` for a translation model (its subword tokenizers are kept as they are), ``--data
PATH`` for a tagger, classifier or CTC model (its vocabularies and outputs are kept).

The pretrained vocabulary is kept, so the model's ids mean what they meant. With ``extend_vocab`` the new
corpus's frequent words that the vocabulary lacks are appended (old ids unchanged). Their rows start as
``<unk>``'s: the input embedding is ``<unk>``'s vector (or, with ``vectors``, the word's own pretrained / FastText
subword vector), the softmax row is ``<unk>``'s, and ``<unk>``'s probability is shared equally between
``<unk>`` and the k new words (bias - log(k + 1) each), so the extended model predicts exactly what the old one
did until training moves the new rows. Training is Lightning's (:class:`~seqzoo.lm.LanguageModelTask`) at a
lower learning rate than from scratch; the result is saved as a seqzoo checkpoint whose card names its base.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import torch

from seqzoo.data.corpora import check_text_file, split_points
from seqzoo.data.vocab import Vocab, tokenize
from seqzoo.utils import check_oov, require

__all__ = ["extend_vocab", "oov_rate", "grow_vocab", "finetune_lm", "finetune_seq2seq", "finetune_labelled"]

TASKS = {"rnn_lm": "seqzoo.models.rnn_lm.RNNLanguageModel", "window_lm": "seqzoo.models.window_lm.WindowLanguageModel"}


def _lines(path: Path) -> list[str]:
    check_text_file(path)  # one clear line for a missing, empty or non-UTF-8 file
    return path.read_text(encoding="utf-8").splitlines()


def extend_vocab(vocab: Vocab, lines, min_freq: int = 2, max_new: int | None = None) -> tuple[Vocab, list[str]]:
    """``vocab`` + the words of ``lines`` seen at least ``min_freq`` times that it lacks (most frequent first,
    at most ``max_new``); old ids are unchanged."""
    counts = Counter(t for line in lines for t in tokenize(line, vocab.level) if t not in vocab)
    new = [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_freq][:max_new]
    return Vocab(list(vocab.itos) + new, level=vocab.level), new


def oov_rate(vocab: Vocab, lines) -> float:
    """Share of the tokens of ``lines`` (``<eos>`` not counted) that ``vocab`` maps to ``<unk>``, when ``<unk>``
    itself is not written in the text."""
    toks = [t for line in lines for t in tokenize(line, vocab.level)]
    return sum(t not in vocab or t == vocab.itos[vocab.unk_id] for t in toks) / max(1, len(toks))


def grow_vocab(net, new_size: int, vectors=None, vocab: Vocab | None = None):
    """A copy of the RNN LM ``net`` with ``new_size`` >= its vocab_size rows, the new ones initialised as the module
    docstring says; ``vectors`` (KeyedVectors of the embedding's width) give new words their own input vector."""
    from seqzoo.models.rnn_lm import RNNLM, RNNLMConfig
    if not isinstance(net, RNNLM):
        raise ValueError(f"extending the vocabulary needs an RNN LM, got a {type(net).__name__}")
    old = net.config.vocab_size
    k = new_size - old
    if k < 0:
        raise ValueError(f"new_size {new_size} is smaller than the vocab_size {old}")
    if vectors is not None and net.config.tie_weights:
        raise ValueError("--vectors cannot start the new words of a model with tied weights: its embedding is its "
                         "softmax, so their vectors would change what it predicts; drop --vectors")
    grown = RNNLM(RNNLMConfig(**{**asdict(net.config), "vocab_size": new_size}))
    src = net.state_dict()
    unk = 0  # Vocab.unk_id: the specials come first
    with torch.no_grad():
        for name, t in grown.state_dict().items():
            s = src[name]
            if t.shape == s.shape:
                t.copy_(s)
                continue
            t[:old] = s  # embedding / decoder rows and the decoder bias
            t[old:] = s[unk]
        if "decoder.bias" in src and k:
            shift = math.log(k + 1)
            grown.decoder.bias[old:] -= shift
            grown.decoder.bias[unk] -= shift
        if vectors is not None and vocab is not None and k:
            if vectors.vector_size != net.config.embedding_size:
                raise ValueError(f"vectors have {vectors.vector_size} dimensions but the embedding has "
                                 f"{net.config.embedding_size}")
            for i, w in enumerate(vocab.itos[old:], start=old):
                v = vectors.get_vector(w) if (w in vectors.key_to_index or getattr(vectors, "bucket", 0)) else None
                if v is not None:
                    grown.embed.weight[i] = torch.as_tensor(v, dtype=grown.embed.weight.dtype)
    grown.architecture = getattr(net, "architecture", None)
    return grown


def _task(net, family: str, optimizer: str, lr: float, lr_decay: float, decay_start: int):
    from seqzoo.hub import _import
    task = _import(TASKS[family])(**asdict(net.config), optimizer=optimizer, lr=lr, lr_decay=lr_decay,
                                 decay_start=decay_start)
    task.net.load_state_dict(net.state_dict())
    return task


def finetune_lm(model: str, train: str | os.PathLike, valid: str | os.PathLike | None = None,
                test: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
                extend: bool = False, min_freq: int = 2, max_new_words: int | None = None, vectors: str | None = None,
                epochs: int = 3, optimizer: str = "sgd", lr: float | None = None, lr_decay: float = 0.5,
                batch_size: int = 20, bptt: int = 35, clip: float = 0.25, max_steps: int = -1,
                accelerator: str = "auto", devices=1, trust_pickle: bool = False, seed: int = 0) -> dict:
    """Fine-tune ``model`` (a name, Hub repo, folder or ``.ckpt``) on ``train``; perplexities before and after.

    Args:
        train, valid, test: UTF-8 text files, one sentence or paragraph per line. Without ``valid``, ``train`` is
            split 90 / 5 / 5 by line (contiguous ranges).
        out: the new checkpoint folder (default: ``runs/finetune/<name>``).
        extend: append the frequent new words (``min_freq``, ``max_new_words``) to the vocabulary.
        vectors: word vectors (path or name, e.g. a FastText ``.bin``) of the embedding's width for the new rows.
        lr: default 1.0 for SGD (a twentieth of the from-scratch 20) and 3e-4 for Adam; halved (``lr_decay``)
            after every epoch.

    Returns a dict: ``before`` / ``after`` (``valid_perplexity``, and ``test_perplexity`` where there is a test text:
    ``test``, or the 5% test lines of ``train`` when no ``valid`` is given), ``oov`` (rates of the train and valid
    text before and after extension), ``new_words``, ``out``, ``seconds``.
    """
    import lightning as L

    from seqzoo.data.lm import LanguageModelDataModule
    from seqzoo.hub import load_model, model_family

    out = _check_run(model, out, epochs, max_steps, lr, lr_decay, batch_size)
    if test is not None and valid is None:
        raise ValueError("--test needs --valid: without --valid the train text is split 90/5/5 by line, and its "
                         "last 5% is the test text")
    start = time.perf_counter()
    L.seed_everything(seed, verbose=False)
    net = load_model(model, trust_pickle)
    family = model_family(net)
    if family not in TASKS:
        raise ValueError(f"seqzoo finetune --train fine-tunes language models; {model} is a {type(net).__name__}")
    if getattr(net, "vocab", None) is None:
        raise ValueError(f"{model} has no vocab.json: cannot map the new corpus to its ids")
    train = Path(train)
    lines = {"train": _lines(train)}
    if valid is None:  # the 90 / 5 / 5 line split of seqzoo.data.corpora, to count OOVs on the same text
        a, b = split_points(len(lines["train"]), f"{train} (no --valid given)")
        lines = {"train": lines["train"][:a], "valid": lines["train"][a:b]}
    else:
        lines["valid"] = _lines(Path(valid))
    vocab, new_words = net.vocab, []
    if extend:
        vocab, new_words = extend_vocab(net.vocab, lines["train"], min_freq, max_new_words)
    oov = {f"{s}_{when}": oov_rate(v, lines[s]) for s in ("train", "valid")
           for when, v in (("before", net.vocab), ("after", vocab))}
    check_oov(oov["train_after"], train, model, "" if extend else " (--extend-vocab adds its frequent new words)")
    lr = lr if lr is not None else (1.0 if optimizer == "sgd" else 3e-4)
    with tempfile.TemporaryDirectory(prefix="seqzoo-finetune-") as tmp:
        if valid is None:
            corpus = str(train)  # one .txt: split 90 / 5 / 5 by line
        else:
            corpus = tmp
            for split, path in (("train", train), ("valid", valid), ("test", test or valid)):  # valid as test: unscored
                os.symlink(Path(path).resolve(), Path(tmp) / f"{split}.txt")
        vocab.save(Path(tmp) / "vocab.json")
        dm = LanguageModelDataModule(corpus, level=vocab.level, batch_size=batch_size, eval_batch_size=10,
                                     bptt=bptt, vocab_path=str(Path(tmp) / "vocab.json"))
        dm.setup()
        if len(vocab) != net.config.vocab_size:
            kv = None
            if vectors:
                from seqzoo.embeddings import load_embeddings
                kv = load_embeddings(vectors, trust_pickle=trust_pickle)
            net = grow_vocab(net, len(vocab), kv, vocab)
        task = _task(net, family, optimizer, lr, lr_decay, decay_start=1)
        trainer = L.Trainer(max_epochs=epochs, max_steps=max_steps, gradient_clip_val=clip, accelerator=accelerator,
                            devices=devices, logger=False, enable_checkpointing=False,
                            default_root_dir=str(out.parent))
        has_test = valid is None or test is not None  # else the test split is the valid text: not a test score

        def scores():
            s = {"valid_perplexity": trainer.validate(task, datamodule=dm, verbose=False)[0]["valid_perplexity"]}
            if has_test:
                s["test_perplexity"] = trainer.test(task, datamodule=dm, verbose=False)[0]["test_perplexity"]
            if vocab.level == "char":  # a char LM is reported in nats per character, as its recipe does
                s.update({k.replace("perplexity", "nats_per_char"): math.log(v) for k, v in list(s.items())})
            return s

        before = scores()
        trainer.fit(task, datamodule=dm)
        after = scores()
    command = (f"seqzoo finetune {model} --train {train}" + (f" --valid {valid}" if valid else "")
               + (f" --test {test}" if test else "") + (" --extend-vocab" if extend else "")
               + f" --epochs {epochs} --lr {lr}" + _steps(max_steps))
    return _save(task.net, model, out, trainer, start, command, str(train), vocab,
                 {"before": before, "after": after, "oov": oov, "new_words": len(new_words),
                  "vocab_size": len(vocab), "lr": lr, "optimizer": optimizer})


def _check_run(model, out, epochs: int, max_steps: int, lr: float | None, lr_decay: float, batch_size: int) -> Path:
    """The training flags every fine-tuning shares, and the output folder (default ``runs/finetune/<base name>``),
    checked before anything is loaded or trained: a run that can only fail, never stop or change nothing is refused
    up front. Returns the output folder's absolute path."""
    from seqzoo.hub import PICKLE_SUFFIXES, check_target
    if epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {epochs}")
    if max_steps != -1 and max_steps < 1:
        raise ValueError(f"--max-steps must be >= 1 (or -1: no limit), got {max_steps}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"--lr must be a finite number > 0, got {lr}")
    if not (math.isfinite(lr_decay) and lr_decay > 0):
        raise ValueError(f"--lr-decay must be a finite number > 0, got {lr_decay}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    name = Path(str(model).rstrip("/")).name
    target = check_target(out if out is not None else
                          Path("runs/finetune") / (Path(name).stem if name.endswith(PICKLE_SUFFIXES) else name))
    base = Path(str(model)).expanduser()
    if base.exists() and target.resolve() == base.resolve():
        raise ValueError(f"--out {out or target} is the model being fine-tuned: write the new checkpoint to another "
                         f"folder")
    return target


def _steps(max_steps: int) -> str:
    """The --max-steps flag of a card's command, when a run was cut short by it."""
    return f" --max-steps {max_steps}" if max_steps != -1 else ""


def _save(net, model, out, trainer, start: float, command: str, corpus: str | None, vocab, result: dict) -> dict:
    """The fine-tuned ``net`` (a network or its task) saved as the checkpoint folder ``out`` (from
    :func:`_check_run`) with a card naming its base ``model``, and ``result`` (plus model, out, epochs, seconds) as
    its finetune.json. Under DDP only global rank 0 writes."""
    from seqzoo.cards import make_card
    from seqzoo.hub import save_pretrained

    diverged = [f"{k} {v}" for k, v in result["after"].items() if not math.isfinite(v)]
    params = getattr(net, "net", net).parameters()
    if diverged or not all(torch.isfinite(p).all() for p in params):
        raise ValueError(f"fine-tuning diverged ({', '.join(diverged) or 'non-finite weights'} after training): "
                         f"nothing was saved; try a lower --lr")
    from seqzoo.recipes import _cwd_relative, _epochs_trained, device_name
    from seqzoo.utils import write_text_atomic
    epochs = _epochs_trained(trainer)  # a fraction where --max-steps stopped inside an epoch
    run = {"metrics": result["after"], "epochs": epochs, "wall_seconds": round(time.perf_counter() - start, 1),
           "device": device_name(trainer.strategy.root_device)}
    card = make_card(out.name, asdict(getattr(net, "net", net).config), run, corpus, command, base_model=str(model))
    result = {"model": str(model), "out": _cwd_relative(out), **result, "epochs": epochs,
              "seconds": round(time.perf_counter() - start, 1)}
    if trainer.is_global_zero:
        save_pretrained(net, out, card=card, **({"vocab": vocab} if vocab is not None else {}))
        write_text_atomic(out / "finetune.json", json.dumps(result, indent=2) + "\n")
    return result


def _unk_rate(tokenizer, lines) -> float:
    from seqzoo.data.translation import UNK_ID
    ids = [i for e in tokenizer.encode_batch([x for x in lines if x.strip()]) for i in e.ids]
    return sum(i == UNK_ID for i in ids) / max(1, len(ids))


def finetune_seq2seq(model: str, src: str | os.PathLike, tgt: str | os.PathLike, valid_src=None, valid_tgt=None,
                     out: str | os.PathLike | None = None, epochs: int = 3, optimizer: str = "adam",
                     lr: float | None = None, lr_decay: float = 0.5, batch_size: int = 64, max_steps: int = -1,
                     clip: float = 1.0, accelerator: str = "auto", devices=1, trust_pickle: bool = False,
                     seed: int = 0) -> dict:
    """Fine-tune a translation model on two line-aligned files (``src``, ``tgt``) with its own tokenizers; BLEU
    and chrF on the validation pairs (``valid_src`` / ``valid_tgt``, default: the last 5% of the training pairs,
    then left out of training) before and after. ``lr`` default: 3e-4 for Adam (a third of from-scratch), 0.1
    for SGD. Returns ``before`` / ``after`` (``valid_bleu``, ``valid_chrf``), ``unk`` (the share of ``<unk>``
    subwords in the source and target training text), ``out``, ``seconds``."""
    import lightning as L

    from seqzoo.data.translation import TranslationDataModule, read_parallel
    from seqzoo.hub import load_model
    from seqzoo.models.seq2seq import Seq2Seq, Seq2SeqNet

    out = _check_run(model, out, epochs, max_steps, lr, lr_decay, batch_size)
    start = time.perf_counter()
    L.seed_everything(seed, verbose=False)
    net = load_model(model, trust_pickle)
    if not isinstance(net, Seq2SeqNet):
        raise ValueError(f"--src / --tgt fine-tune translation models; {model} is a {type(net).__name__}")
    src_lines, tgt_lines = read_parallel(src, tgt)  # one clear line for missing files or unequal line counts
    if valid_src is not None or valid_tgt is not None:
        if valid_src is None or valid_tgt is None:
            raise ValueError("give both --valid-src and --valid-tgt, or neither")
        valid = read_parallel(valid_src, valid_tgt)
    else:
        n = max(1, len(src_lines) // 20)
        valid, src_lines, tgt_lines = (src_lines[-n:], tgt_lines[-n:]), src_lines[:-n], tgt_lines[:-n]
    if not src_lines:
        raise ValueError(f"{src}: no training pairs left")
    lr = lr if lr is not None else (3e-4 if optimizer != "sgd" else 0.1)
    task = Seq2Seq.from_net(net, optimizer=optimizer, lr=lr, lr_decay=lr_decay)
    unk = {"src": _unk_rate(net.src_tokenizer, src_lines), "tgt": _unk_rate(net.tgt_tokenizer, tgt_lines)}
    with tempfile.TemporaryDirectory(prefix="seqzoo-finetune-") as tmp:
        for split, (a, b) in (("train", (src_lines, tgt_lines)), ("valid", valid)):
            (Path(tmp) / f"{split}.src").write_text("\n".join(a) + "\n", encoding="utf-8")
            (Path(tmp) / f"{split}.tgt").write_text("\n".join(b) + "\n", encoding="utf-8")
        (Path(tmp) / "src_tokenizer.json").write_text(net.src_tokenizer.to_str(), encoding="utf-8")
        (Path(tmp) / "tgt_tokenizer.json").write_text(net.tgt_tokenizer.to_str(), encoding="utf-8")
        dm = TranslationDataModule(tmp, "src", "tgt", batch_size=batch_size, tokenizers=tmp)
        trainer = L.Trainer(max_epochs=epochs, max_steps=max_steps, gradient_clip_val=clip, accelerator=accelerator,
                            devices=devices, logger=False, enable_checkpointing=False, num_sanity_val_steps=0)

        def scores():
            m = trainer.validate(task, datamodule=dm, verbose=False)[0]
            return {"valid_bleu": m["valid_bleu"], **({"valid_chrf": m["valid_chrf"]} if "valid_chrf" in m else {})}

        before = scores()
        trainer.fit(task, datamodule=dm)
        after = scores()
    command = f"seqzoo finetune {model} --src {src} --tgt {tgt} --epochs {epochs} --lr {lr}" + _steps(max_steps)
    return _save(task, model, out, trainer, start, command, str(src), None,
                 {"before": before, "after": after, "unk": unk, "train_pairs": len(src_lines),
                  "valid_pairs": len(valid[0]), "lr": lr, "optimizer": optimizer})


# The labelled families: the task that trains each, and what --data is for it.
LABELLED = {"tagger": "seqzoo.models.tagger.TaggerTask", "classifier": "seqzoo.models.classifier.ClassifierTask",
            "ctc": "seqzoo.models.ctc.CTCTask"}


def _labelled_datamodule(family: str, net, data: str, tag_column: str, batch_size: int):
    """The family's datamodule over ``data``, encoding with ``net``'s vocabularies (its ids mean what they meant);
    a tag, class or phoneme the model lacks is an error naming it."""
    if family == "tagger":
        from seqzoo.data.tagging import TaggingDataModule
        dm = TaggingDataModule(data, tag_column=tag_column, batch_size=batch_size, lowercase=net.vocab.uncased,
                               max_word_length=net.config.max_word_length)
        found = sorted({t for sents in dm.sents.values() for _, ts in sents for t in ts})
        known, what = net.tags, f"{tag_column} tag"
        dm.vocab, dm.tags = net.vocab, list(net.tags)
        if getattr(net, "char_vocab", None) is not None:
            dm.char_vocab = net.char_vocab
    elif family == "classifier":
        from seqzoo.data.classification import ClassificationDataModule
        dm = ClassificationDataModule(data, batch_size=batch_size, lowercase=net.vocab.uncased)
        found = sorted({y for rows in dm.rows.values() for _, y in rows})
        known, what = range(net.config.num_classes), "class"
        dm.vocab = net.vocab
        dm.labels = list(getattr(net, "labels", None) or dm.labels)
    else:
        from seqzoo.data.g2p import G2PDataModule
        stress = any(ch.isdigit() for label in net.labels for ch in label)
        dm = G2PDataModule(data, stress=stress, batch_size=batch_size)
        found = sorted({p for pairs in dm.pairs.values() for _, ps in pairs for p in ps})
        known, what = net.labels, "phoneme"
        dm.vocab, dm.labels = net.vocab, list(net.labels)
    bad = [x for x in found if x not in known]
    if bad:
        raise ValueError(f"{data} has the {what} {bad[0]!r}, which the model does not know (fine-tuning keeps the "
                         f"model's {len(known)} outputs)")
    return dm


def finetune_labelled(model: str, data: str | os.PathLike, out: str | os.PathLike | None = None, epochs: int = 3,
                      optimizer: str = "adam", lr: float | None = None, lr_decay: float = 0.5, batch_size: int = 32,
                      tag_column: str | None = None, clip: float = 5.0, max_steps: int = -1, accelerator: str = "auto",
                      devices=1, trust_pickle: bool = False, seed: int = 0) -> dict:
    """Fine-tune a tagger, classifier or CTC model on labelled data of the layout its datamodule reads: a folder of
    ``*-ud-{train,dev,test}.conllu`` (tagger), a folder with ``train.tsv`` / ``dev.tsv`` (classifier, GLUE format)
    or a CMUdict-format dictionary (CTC, split by word hash). The model's vocabularies are kept (unknown words read
    as ``<unk>``; a new tag, class or phoneme is an error), text is lower-cased when its vocabulary is. ``lr``
    default: 3e-4 for Adam, 0.1 for SGD. Returns ``before`` / ``after`` (the validation score, and the test score
    where the data has a test split), ``oov_rate`` (training words the vocabulary lacks), ``out``, ``seconds``."""
    import lightning as L

    from seqzoo.hub import _import, load_model, model_family

    out = _check_run(model, out, epochs, max_steps, lr, lr_decay, batch_size)
    start = time.perf_counter()
    L.seed_everything(seed, verbose=False)
    net = load_model(model, trust_pickle)
    family = model_family(net)
    if family not in LABELLED:
        raise ValueError(f"seqzoo finetune --data fine-tunes taggers, classifiers and CTC models; {model} is a "
                         f"{type(net).__name__} (--train for a language model, --src/--tgt for translation)")
    require(net, "vocab", *{"tagger": ["tags"], "ctc": ["labels"]}.get(family, []))
    if tag_column is not None and family != "tagger":
        raise ValueError(f"--tag-column is for taggers; {model} is a {type(net).__name__}")
    tag_column = tag_column or "upos"
    dm = _labelled_datamodule(family, net, str(data), tag_column, batch_size)
    rows = dm.encode("train")
    ids = [i for r in rows for i in (r["ids"] if family == "tagger" else r[0])]
    oov = check_oov(sum(i == net.vocab.unk_id for i in ids) / max(1, len(ids)), data, model)
    lr = lr if lr is not None else (0.1 if optimizer == "sgd" else 3e-4)
    task = _import(LABELLED[family]).from_net(net, optimizer=optimizer, lr=lr, lr_decay=lr_decay)
    trainer = L.Trainer(max_epochs=epochs, max_steps=max_steps, gradient_clip_val=clip, accelerator=accelerator,
                        devices=devices, logger=False, enable_checkpointing=False, num_sanity_val_steps=0,
                        default_root_dir=str(out.parent))
    metric = "per" if family == "ctc" else "accuracy"
    has_test = not getattr(dm, "test_is_valid", False)

    def scores():
        s = {f"valid_{metric}": trainer.validate(task, datamodule=dm, verbose=False)[0][f"valid_{metric}"]}
        if has_test:
            s[f"test_{metric}"] = trainer.test(task, datamodule=dm, verbose=False)[0][f"test_{metric}"]
        return s

    before = scores()
    trainer.fit(task, datamodule=dm)
    after = scores()
    command = (f"seqzoo finetune {model} --data {data}" + (f" --tag-column {tag_column}" if family == "tagger" else "")
               + f" --epochs {epochs} --lr {lr}" + _steps(max_steps))
    return _save(task, model, out, trainer, start, command, str(data), None,
                 {"before": before, "after": after, "oov_rate": oov, "train_examples": len(rows), "lr": lr,
                  "optimizer": optimizer})
