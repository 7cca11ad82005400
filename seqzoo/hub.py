"""Pretrained checkpoints: one folder format, the same on disk and in a Hugging Face Hub repo.

Like timm's ``_hub.py``: safetensors weights, a ``config.json`` that rebuilds the model on its own,
a model card, uploads in one commit; nothing is ever unpickled unless you say so.

A seqzoo checkpoint folder::

    config.json        {"format_version": 1, "seqzoo_version", "architecture" (e.g. "lstm_lm_2x200", or the
                        family name, e.g. "rnn_lm", for a model built by hand), "family" (a key of FAMILIES, or
                        "ngram"), "model_class", "model_args" (the family's config dataclass fields),
                        "vocab_file", "vocabularies" ({attribute: {"file", "kind"}}), "weights_file",
                        "weights_sha256"}
    model.safetensors  neural models; tied weights (embed.weight is decoder.weight) are stored once
    model.arpa         n-gram LMs, written by NGramLM._write_folder (which also writes config.json)
    vocab.json         the input vocabulary (seqzoo.data.vocab.Vocab)
    *.json             the other vocabularies a family has (VOCABULARIES): a tagger's char_vocab.json and
                       tags.json, a CTC model's labels.json, a translation model's src_tokenizer.json and
                       tgt_tokenizer.json (HF tokenizers)
    README.md          the model card (seqzoo.cards)

``from_pretrained`` takes a registered name with a tag (``lstm_lm_2x200.ptb_zaremba``), ``hf-hub:org/name``,
``org/name``, a local folder, or a Lightning ``.ckpt``. A ``.ckpt`` / ``*.bin`` / ``*.pt`` / ``*.pkl`` is a pickle,
and unpickling can run code: it is refused unless ``trust_pickle=True``, and even then it is read with
``torch.load(weights_only=True)``, which builds tensors and plain containers only.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile
import warnings
from dataclasses import asdict, fields
from pathlib import Path

import torch

from seqzoo.utils import check_folder, write_folder

__all__ = ["save_pretrained", "check_target", "from_pretrained", "push_to_hub", "convert_checkpoint",
           "load_checkpoint_folder", "HubMixin", "load_lightning_checkpoint", "model_family",
           "FORMAT_VERSION", "CONFIG_NAME", "WEIGHTS_NAME", "VOCAB_NAME", "CARD_NAME", "PICKLE_SUFFIXES"]

FORMAT_VERSION = 1
CONFIG_NAME, WEIGHTS_NAME, VOCAB_NAME, CARD_NAME, ARPA_NAME = (
    "config.json", "model.safetensors", "vocab.json", "README.md", "model.arpa")
PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth", ".pkl", ".pickle")
PACKAGED_DIR = Path(__file__).resolve().parent / "pretrained"  # small demo checkpoints shipped in the wheel
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_HUB_FILES = ["*.json", "*.safetensors", "*.arpa", "*.md"]


# -- what a model is -------------------------------------------------------------------------------
# family -> (network class, its config dataclass). Every network has ``.config``, one such dataclass.
FAMILIES = {
    "rnn_lm": ("seqzoo.models.rnn_lm.RNNLM", "seqzoo.models.rnn_lm.RNNLMConfig"),
    "window_lm": ("seqzoo.models.window_lm.WindowLM", "seqzoo.models.window_lm.WindowLMConfig"),
    "seq2seq": ("seqzoo.models.seq2seq.Seq2SeqNet", "seqzoo.models.seq2seq.Seq2SeqConfig"),
    "tagger": ("seqzoo.models.tagger.RNNTagger", "seqzoo.models.tagger.TaggerConfig"),
    "classifier": ("seqzoo.models.classifier.RNNClassifier", "seqzoo.models.classifier.ClassifierConfig"),
    "ctc": ("seqzoo.models.ctc.CTCModel", "seqzoo.models.ctc.CTCConfig"),
}
SUPPORTED_FAMILIES = (*FAMILIES, "ngram")
# The vocabularies a network may carry as attributes: name -> (kind, the config field that is its size).
# kind "vocab": seqzoo Vocab; "labels": a list of strings (id = position); "tokenizer": tokenizers.Tokenizer.
VOCABULARIES = {
    "vocab": ("vocab", "vocab_size"),
    "char_vocab": ("vocab", "num_chars"),
    "tags": ("labels", "num_tags"),
    "labels": ("labels", ("num_labels", "num_classes")),
    "src_tokenizer": ("tokenizer", "src_vocab_size"),
    "tgt_tokenizer": ("tokenizer", "tgt_vocab_size"),
}
# The Lightning task of each family (for .ckpt files): class path -> family.
TASK_FAMILIES = {
    "seqzoo.models.rnn_lm.RNNLanguageModel": "rnn_lm",
    "seqzoo.models.window_lm.WindowLanguageModel": "window_lm",
    "seqzoo.models.seq2seq.Seq2Seq": "seq2seq",
    "seqzoo.models.tagger.TaggerTask": "tagger",
    "seqzoo.models.classifier.ClassifierTask": "classifier",
    "seqzoo.models.ctc.CTCTask": "ctc",
}


def _import(dotted: str):
    import importlib
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _vocab_size(obj) -> int:
    return obj.get_vocab_size() if hasattr(obj, "get_vocab_size") else len(obj)


def _collect_vocabs(source) -> dict:
    """The VOCABULARIES attributes that ``source`` (a network, a datamodule) has and that are set."""
    return {k: getattr(source, k) for k in VOCABULARIES if getattr(source, k, None) is not None}


def vocab_payload(vocabs: dict) -> dict:
    """Vocabularies as plain data (what ``torch.load(weights_only=True)`` reads back): a Vocab as its dict, labels
    as a list of strings, a tokenizer as its JSON string."""
    kinds = {name: VOCABULARIES[name][0] for name in vocabs}
    return {name: obj.to_dict() if kinds[name] == "vocab" else obj.to_str() if kinds[name] == "tokenizer"
            else [str(x) for x in obj] for name, obj in vocabs.items()}


def _vocabs_from_payload(payload, source: str) -> dict:
    from seqzoo.data.vocab import Vocab
    if not isinstance(payload, dict):
        raise ValueError(f"{source}: its stored vocabularies are a {type(payload).__name__}, not a mapping")
    out = {}
    for name, data in payload.items():
        kind = VOCABULARIES.get(name, ("?",))[0]
        try:
            if kind == "vocab":
                out[name] = Vocab.from_dict(data)
            elif kind == "tokenizer":
                from tokenizers import Tokenizer
                out[name] = Tokenizer.from_str(data)
            elif kind == "labels" and isinstance(data, list) and all(isinstance(x, str) for x in data):
                out[name] = list(data)
            else:
                raise ValueError("not a known vocabulary")
        except Exception as e:  # a Vocab's ValueError, a KeyError, the tokenizers Exception ...
            raise ValueError(f"{source}: its stored vocabulary {name!r} cannot be read ({e})") from None
    return out


def _unwrap(model):
    """A LightningModule (any seqzoo task) -> its ``.net``, and the vocabularies of its datamodule or
    hyperparameters, if any; a network -> itself and {}."""
    import lightning as L
    vocabs = {}
    if isinstance(model, L.LightningModule) and isinstance(getattr(model, "net", None), torch.nn.Module):
        trainer = getattr(model, "_trainer", None)
        dm = getattr(trainer, "datamodule", None)
        if dm is not None:
            vocabs = _collect_vocabs(dm)
        if hasattr(model, "tokenizer"):  # Seq2Seq keeps its tokenizers in its hyperparameters
            for side in ("src", "tgt"):
                try:
                    vocabs[f"{side}_tokenizer"] = model.tokenizer(side)
                except ValueError:
                    pass
        model = model.net
    return model, vocabs


def hub_models() -> list[str]:
    """Registered names whose family saves to / loads from the seqzoo checkpoint format (all of them)."""
    from seqzoo.registry import _family as family_of, list_models
    return [n for n in list_models() if family_of[n] in SUPPORTED_FAMILIES]


def model_family(model) -> str:
    """The family of a network or NGramLM (``rnn_lm``, ``seq2seq`` ..., ``ngram``); an error for anything else."""
    for family, (net_path, _) in FAMILIES.items():
        if type(model) is _import(net_path):
            return family
    if type(model).__name__ == "NGramLM" and type(model).__module__ == "seqzoo.models.ngram":
        return "ngram"
    raise ValueError(f"cannot save a {type(model).__name__}; supported: a seqzoo task (LightningModule with .net), "
                     f"{', '.join(p.rsplit('.', 1)[1] for p, _ in FAMILIES.values())}, NGramLM")


def _size_fields(config) -> dict:
    """The config fields that a dataset decides (vocabulary and label counts)."""
    sizes = {f for _, f in VOCABULARIES.values()} | {"num_classes"}
    return {k: v for k, v in asdict(config).items() if k in sizes}


@functools.lru_cache(maxsize=None)
def _variant_config(name: str, sizes: tuple) -> tuple | None:
    """A registered variant's config built with these sizes, as sorted items (None if it does not build)."""
    from seqzoo.registry import create_model
    try:
        with torch.device("meta"):  # sizes only: no memory
            ref = create_model(name, **dict(sizes))
    except (TypeError, ValueError):  # another family's variant, or sizes it does not take
        return None
    config = getattr(ref, "config", None)
    return (type(ref).__name__, tuple(sorted(asdict(config).items()))) if config is not None else None


def _architecture(net, family: str) -> str:
    """The registered variant of ``family`` with exactly ``net``'s config, else the family name."""
    if getattr(net, "architecture", None):
        return net.architecture
    from seqzoo.registry import _family as family_of, list_models
    sizes = tuple(sorted(_size_fields(net.config).items()))
    own = (type(net).__name__, tuple(sorted(asdict(net.config).items())))
    return next((n for n in list_models() if family_of[n] == family and _variant_config(n, sizes) == own), family)


def _tied_groups(state: dict) -> list[list[str]]:
    """Names that are one tensor (same data pointer and shape), sorted; singletons included."""
    groups: dict[tuple, list[str]] = {}
    for k, t in state.items():
        groups.setdefault((t.device, t.data_ptr(), tuple(t.shape), t.dtype), []).append(k)
    return [sorted(g) for g in groups.values()]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- saving ----------------------------------------------------------------------------------------
def _write_weights(net, path: Path) -> None:
    """safetensors, one entry per tensor: a tied group is stored under its first name, as
    ``safetensors.torch.save_model`` does, so its ``load_model`` reads our files. Built by hand because
    save_model finds ties by shared *storage*, and cuDNN's ``flatten_parameters`` puts all LSTM weights
    of a GPU model in one storage; here ties are the same data pointer and shape, copied to CPU.
    (The GPU case is reasoned, not tested: no GPU in this test setup.)"""
    from safetensors.torch import save_file
    state = net.state_dict()
    tensors = {g[0]: state[g[0]].detach().to("cpu").contiguous().clone() for g in _tied_groups(state)}
    save_file(tensors, str(path), metadata={"format": "pt"})
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # safetensors creates it 0600; readable like the other files of the folder


def _write_json(obj, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _default_card(name: str, config: dict, dataset: str | None = None) -> str:
    from seqzoo.cards import make_card
    return make_card(name, config, None, dataset, None)


def _vocab_file(name: str) -> str:
    return VOCAB_NAME if name == "vocab" else f"{name}.json"


def _check_vocab_sizes(vocabs: dict, args: dict, source: str) -> None:
    """Each vocabulary has the size its config field says (``vocab`` <-> ``vocab_size`` ...)."""
    for name, obj in vocabs.items():
        if name not in VOCABULARIES:
            raise ValueError(f"{source}: unknown vocabulary {name!r}; valid: {', '.join(VOCABULARIES)}")
        fields_ = VOCABULARIES[name][1]
        field = next((f for f in ((fields_,) if isinstance(fields_, str) else fields_) if f in args), None)
        if field is None:
            raise ValueError(f"{source}: this model has no {fields_} for a {name}")
        if _vocab_size(obj) != args[field]:
            label = "vocab" if name == "vocab" else name
            raise ValueError(f"{source}: {label} has {_vocab_size(obj)} tokens but the model's {field} is {args[field]}")


def _write_vocab(name: str, obj, path: Path) -> None:
    kind = VOCABULARIES[name][0]
    if kind == "vocab":
        obj.save(path)
    elif kind == "tokenizer":
        path.write_text(obj.to_str(pretty=True) + "\n", encoding="utf-8")
    else:
        labels = list(obj)
        if not all(isinstance(x, str) for x in labels):
            raise ValueError(f"{name} must be a list of strings")
        _write_json(labels, path)


def _read_vocab(name: str, kind: str, path: Path):
    if kind == "vocab":
        from seqzoo.data.vocab import Vocab
        return Vocab.load(path)
    try:
        if kind == "tokenizer":
            from tokenizers import Tokenizer
            return Tokenizer.from_file(str(path))
        labels = json.loads(path.read_text(encoding="utf-8"))
    except Exception as e:  # JSONDecodeError, the tokenizers Exception ...
        raise ValueError(f"{path} is not a readable {kind} file: {e}") from None
    if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise ValueError(f"{path} must hold a JSON list of strings")
    return labels


def _save_into(model, folder: Path, vocab, card: str | None, card_name: str | None, architecture: str | None,
               vocabs: dict | None = None):
    """Write every file of a checkpoint into the existing, empty ``folder``."""
    from seqzoo import __version__
    model, attached = _unwrap(model)
    family = model_family(model)
    if family == "ngram":
        if vocab is not None or vocabs:
            raise ValueError("an n-gram LM keeps its own vocabulary in model.arpa; do not pass vocab=")
        model._write_folder(folder)  # model.arpa + config.json, the n-gram family's own format
        cfg = json.loads((folder / CONFIG_NAME).read_text())
        arch = architecture or getattr(model, "architecture", None) or "ngram"
        cfg.update({"format_version": FORMAT_VERSION, "seqzoo_version": __version__, "architecture": arch,
                    "family": "ngram"})
        _write_json(cfg, folder / CONFIG_NAME)
        card_config = {k: cfg[k] for k in ("order", "smoothing", "k", "vocab_size") if k in cfg}
    else:
        # what is passed wins over what the network carries (from_pretrained), which wins over the datamodule's
        found = {**attached, **_collect_vocabs(model), **(vocabs or {}), **({"vocab": vocab} if vocab is not None else {})}
        args = asdict(model.config)
        found = {k: v for k, v in found.items()
                 if not (k == "char_vocab" and not args.get("num_chars"))}  # a tagger without char features
        _check_vocab_sizes(found, args, type(model).__name__)
        arch = architecture or _architecture(model, family)
        _write_weights(model, folder / WEIGHTS_NAME)
        for name, obj in found.items():
            _write_vocab(name, obj, folder / _vocab_file(name))
        cfg = {"format_version": FORMAT_VERSION, "seqzoo_version": __version__, "architecture": arch,
               "family": family, "model_class": type(model).__name__, "model_args": args,
               "vocab_file": VOCAB_NAME if "vocab" in found else None,
               "vocabularies": {k: {"file": _vocab_file(k), "kind": VOCABULARIES[k][0]} for k in found},
               "weights_file": WEIGHTS_NAME, "weights_sha256": _sha256(folder / WEIGHTS_NAME)}
        _write_json(cfg, folder / CONFIG_NAME)
        card_config = args
    (folder / CARD_NAME).write_text(card if card is not None else _default_card(card_name or arch, card_config),
                                    encoding="utf-8")
    return cfg


def check_target(directory: str | os.PathLike) -> Path:
    """The absolute path of a folder that :func:`save_pretrained` may write: new, empty, or a seqzoo checkpoint
    folder (replaced as a whole), below no file. Callers that train first check it before they start."""
    return check_folder(directory, _is_checkpoint_folder, "a seqzoo checkpoint folder")


def _is_checkpoint_folder(folder: Path) -> bool:
    """``folder/config.json`` is a seqzoo config (a transformers model folder has a config.json too)."""
    try:
        config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "format_version" in config and "family" in config


def save_pretrained(model, directory: str | os.PathLike, vocab=None, card: str | None = None,
                    architecture: str | None = None, vocabs: dict | None = None) -> Path:
    """Write a checkpoint folder for any seqzoo network (``RNNLM``, ``WindowLM``, ``Seq2SeqNet``, ``RNNTagger``,
    ``RNNClassifier``, ``CTCModel``), its Lightning task (its ``.net``), or an ``NGramLM``.

    Args:
        model: the model; its vocabularies default to the network's attributes (``.vocab``, ``.tags``,
            ``.src_tokenizer`` ..., set by ``from_pretrained``), else to those of the datamodule of the Trainer
            it is attached to (a Seq2Seq task: the tokenizers in its hyperparameters).
        directory: the folder; it is replaced as a whole. Everything is written to a temporary folder
            beside it first and renamed into place, so a crash mid-save leaves the old checkpoint whole.
        vocab: a ``Vocab`` whose size is the model's ``vocab_size``.
        vocabs: the other vocabularies by name (``VOCABULARIES``): ``{"tags": [...], "char_vocab": Vocab}`` ...
        card: the README.md text (default: a card made by :func:`seqzoo.cards.make_card`).
        architecture: registered name for ``config.json`` (default: inferred from the sizes, else the family).

    Returns the folder's path.
    """
    target = check_target(directory)
    write_folder(target, lambda tmp: _save_into(model, tmp, vocab, card, target.name, architecture, vocabs))
    return target


# -- loading ---------------------------------------------------------------------------------------
def _strict_load(net, tensors: dict, source: str) -> None:
    """Load ``tensors`` into ``net``: every parameter (a tied group once), nothing else, the same shapes."""
    own = net.state_dict()
    groups = _tied_groups(own)
    missing = [" = ".join(g) for g in groups if not any(k in tensors for k in g)]
    unexpected = sorted(set(tensors) - set(own))
    mismatched = [f"{k} {tuple(tensors[k].shape)} in the file, {tuple(own[k].shape)} in the model"
                  for k in sorted(set(tensors) & set(own)) if tuple(tensors[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        problems = [f"missing keys: {', '.join(missing)}" if missing else "",
                    f"unexpected keys: {', '.join(unexpected)}" if unexpected else "",
                    f"shape mismatch: {'; '.join(mismatched)}" if mismatched else ""]
        raise ValueError(f"weights in {source} do not fit {type(net).__name__}({net.config}): "
                         + "; ".join(p for p in problems if p))
    full = {}
    for g in groups:
        present = next(k for k in g if k in tensors)
        full.update({k: tensors[k] if k in tensors else tensors[present] for k in g})
    net.load_state_dict(full, strict=True)


def _read_safetensors(path: Path, expected_sha256: str | None) -> dict:
    from safetensors.torch import load_file
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if expected_sha256 and _sha256(path) != expected_sha256:
        raise ValueError(f"{path} is corrupted or truncated: its sha256 does not match config.json "
                         f"(delete it and download or save it again)")
    try:
        return load_file(str(path))
    except Exception as e:  # SafetensorError: header too large, incomplete file, bad JSON ...
        raise ValueError(f"{path} is not a readable safetensors file (corrupted or truncated?): {e}") from None


def _build(family: str, args: dict, overrides: dict, source: str):
    net_path, config_path = FAMILIES[family]
    config_cls = _import(config_path)
    valid = [f.name for f in fields(config_cls)]
    bad = sorted(set(args) - set(valid)) + sorted(set(overrides) - set(valid))
    if bad:
        raise ValueError(f"unknown {family} argument(s) {', '.join(bad)} in {source}; valid: {', '.join(valid)}")
    return _import(net_path)(config_cls(**{**args, **overrides}))


def _attach_vocabs(net, vocabs: dict, source: str) -> None:
    _check_vocab_sizes(vocabs, asdict(net.config), source)
    for name in VOCABULARIES:
        if name in vocabs or name == "vocab":
            setattr(net, name, vocabs.get(name))


def _pickle_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)


def load_checkpoint_folder(folder: str | os.PathLike, trust_pickle: bool = False, **overrides):
    """Rebuild a model from a checkpoint folder (see the module docstring); the model is in eval mode."""
    folder = Path(folder)
    cfg_path = folder / CONFIG_NAME
    if not cfg_path.is_file():
        pickles = _pickle_files(folder)
        if len(pickles) == 1:
            return load_lightning_checkpoint(pickles[0], trust_pickle, **overrides)
        raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}: not a seqzoo checkpoint folder")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{cfg_path} is not valid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{cfg_path} holds a JSON {type(cfg).__name__}, not an object: not a seqzoo checkpoint config")
    family = cfg.get("family") or ("ngram" if cfg.get("model_class") == "NGramLM" else None)
    version = cfg.get("format_version", 1 if family == "ngram" else None)  # NGramLM._write_folder alone
    if not isinstance(version, int):
        raise ValueError(f"{cfg_path} has no integer format_version: not a seqzoo checkpoint config")
    if version > FORMAT_VERSION:
        from seqzoo import __version__
        raise ValueError(f"{folder} is format_version {version} (written by seqzoo {cfg.get('seqzoo_version', '?')});"
                         f" this seqzoo {__version__} reads up to format_version {FORMAT_VERSION}: upgrade seqzoo")
    if family == "ngram":
        if overrides:
            raise ValueError(f"an n-gram checkpoint takes no overrides, got {', '.join(overrides)}")
        if not (folder / cfg.get("weights", ARPA_NAME)).is_file():
            raise FileNotFoundError(f"{folder} has no {cfg.get('weights', ARPA_NAME)}")
        from seqzoo.models.ngram import NGramLM
        return NGramLM._read_folder(folder)
    if family not in FAMILIES:
        raise ValueError(f"{cfg_path}: unknown model family {family!r}; this seqzoo reads "
                         f"{', '.join(SUPPORTED_FAMILIES)}")
    weights = folder / cfg.get("weights_file", WEIGHTS_NAME)
    if not weights.is_file():
        pickles = _pickle_files(folder)
        hint = (f"; it holds pickle weights ({', '.join(p.name for p in pickles)}): load one with trust_pickle=True "
                f"only if you trust it") if pickles else ""
        raise FileNotFoundError(f"{folder} has no {weights.name}{hint}")
    if not isinstance(cfg.get("model_args"), dict):
        raise ValueError(f"{cfg_path} has no model_args object: not a seqzoo checkpoint config")
    net = _build(family, cfg["model_args"], overrides, str(cfg_path))
    _strict_load(net, _read_safetensors(weights, cfg.get("weights_sha256")), str(weights))
    listed = dict(cfg.get("vocabularies") or {})
    if cfg.get("vocab_file") and "vocab" not in listed:  # written before "vocabularies" existed
        listed["vocab"] = {"file": cfg["vocab_file"], "kind": "vocab"}
    vocabs = {}
    for name, entry in listed.items():
        if (name not in VOCABULARIES or not isinstance(entry, dict) or entry.get("kind") != VOCABULARIES[name][0]
                or not isinstance(entry.get("file"), str)):
            raise ValueError(f"{cfg_path}: bad vocabularies entry {name!r}: {entry!r}")
        path = folder / entry["file"]
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: config.json names {entry['file']} but it is missing")
        vocabs[name] = _read_vocab(name, entry["kind"], path)
    _attach_vocabs(net, vocabs, str(folder))
    net.architecture = cfg.get("architecture") or family
    return net.eval()


def _torch_load_weights_only(path: Path, trust_pickle: bool) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix not in PICKLE_SUFFIXES:
        raise ValueError(f"{path} is not a Lightning checkpoint ({', '.join(PICKLE_SUFFIXES)}) nor a seqzoo "
                         f"checkpoint folder")
    if not trust_pickle:
        raise ValueError(f"refusing to load {path}: {path.suffix} files are pickles and unpickling can run "
                         f"arbitrary code; pass trust_pickle=True (--trust-pickle) only for a file you trust, "
                         f"or load a safetensors checkpoint folder")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for any global outside torch's allow-list; EOFError ...
        text = str(e).strip()
        found = re.search(r"Unsupported global: (?:GLOBAL )?(\S+)", text)
        reason = (f"it needs {found.group(1)}, which is not a tensor or plain container (the file would run code)"
                  if found else (text.splitlines()[0] if text else type(e).__name__))
        raise ValueError(f"{path} cannot be read with torch.load(weights_only=True), the only way seqzoo "
                         f"unpickles: {reason}") from None


def _vocabs_from_datamodule(class_path: str | None, hparams: dict, data_dir: str | None = None) -> dict:
    """Rebuild the datamodule a task was trained with (from its saved hyperparameters) and take its
    vocabularies; ``data_dir`` replaces the saved one (e.g. when the run was on another machine)."""
    from seqzoo.cli import task_for
    dm_cls = task_for(class_path)[1] if class_path else _import("seqzoo.data.lm.LanguageModelDataModule")
    args = {k: v for k, v in hparams.items() if not k.startswith("_")}
    if data_dir is not None:
        args["data_dir"] = data_dir
    dm = dm_cls(**args)
    for prepare in ("prepare_vocab", "prepare_tokenizers"):
        if hasattr(dm, prepare):
            getattr(dm, prepare)()
    return _collect_vocabs(dm)


def _task_family(hp: dict, path: Path) -> tuple[str, str | None]:
    """(family, the task's class path) of a Lightning checkpoint's hyperparameters."""
    class_path = hp.get("_class_path")
    if class_path in TASK_FAMILIES:
        return TASK_FAMILIES[class_path], class_path
    if class_path:  # a user's subclass of one of our tasks
        try:
            cls = _import(class_path)
        except (ImportError, AttributeError):
            cls = None
        for task_path, family in TASK_FAMILIES.items():
            if isinstance(cls, type) and issubclass(cls, _import(task_path)):
                return family, class_path
    # saved without LightningCLI (no _class_path): the family whose own arguments are there
    for key, family in (("src_vocab_size", "seq2seq"), ("num_tags", "tagger"), ("num_classes", "classifier"),
                        ("num_labels", "ctc"), ("context_size", "window_lm"), ("cell", "rnn_lm")):
        if key in hp and (family == "seq2seq" or "vocab_size" in hp):
            return family, next(p for p, f in TASK_FAMILIES.items() if f == family)
    raise ValueError(f"{path}: hyperparameters are not a seqzoo task's ({class_path or 'no _class_path'})")


def load_lightning_checkpoint(path: str | os.PathLike, trust_pickle: bool = False, vocab=None,
                              data_dir: str | None = None, require_vocab: bool = False, **overrides):
    """A Lightning ``.ckpt`` of any seqzoo task -> its network in eval mode, with its vocabularies: ``vocab``, or
    those the checkpoint stores (``seqzoo_vocabularies``, written by every task since seqzoo 0.1.0), or for older
    files those rebuilt by the task's datamodule from ``datamodule_hyper_parameters`` (``data_dir`` replaces the
    saved one); a Seq2Seq task's tokenizers come from its hyperparameters. Refused unless ``trust_pickle``; read with
    ``torch.load(weights_only=True)``; ``net.`` prefixes stripped."""
    path = Path(path).expanduser()
    ckpt = _torch_load_weights_only(path, trust_pickle)
    if not (isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict"), dict)
            and isinstance(ckpt.get("hyper_parameters"), dict)):
        raise ValueError(f"{path} is not a Lightning checkpoint (no state_dict + hyper_parameters)")
    hp = ckpt["hyper_parameters"]
    family, class_path = _task_family(hp, path)
    config_cls = _import(FAMILIES[family][1])
    args = {f.name: hp[f.name] for f in fields(config_cls) if f.name in hp}
    net = _build(family, args, overrides, str(path))
    sd = ckpt["state_dict"]
    if any(k.startswith("net.") for k in sd):  # every seqzoo task keeps its network under .net
        sd = {k[len("net."):]: v for k, v in sd.items() if k.startswith("net.")}
    _strict_load(net, sd, str(path))
    vocabs = {"vocab": vocab} if vocab is not None else {}
    if family == "seq2seq":
        from tokenizers import Tokenizer
        vocabs.update({f"{s}_tokenizer": Tokenizer.from_str(hp[f"{s}_tokenizer"]) for s in ("src", "tgt")
                       if hp.get(f"{s}_tokenizer")})
    if "seqzoo_vocabularies" in ckpt:  # written by HubMixin.on_save_checkpoint: no corpus needed
        vocabs = {**_vocabs_from_payload(ckpt["seqzoo_vocabularies"], str(path)), **vocabs}
    dm = ckpt.get("datamodule_hyper_parameters")
    if not vocabs and dm:
        try:
            vocabs = _vocabs_from_datamodule(class_path, dm, data_dir)
            if vocabs:
                warnings.warn(f"{path} stores no vocabulary (written before seqzoo 0.1.0): rebuilt it from the corpus "
                              f"in its datamodule hyperparameters, checked against the model by size only; if that "
                              f"corpus changed since training, ids may not match (pass vocab= to be sure)")
        except (OSError, ValueError) as e:
            if require_vocab:
                raise ValueError(f"cannot rebuild the vocab of {path} from its datamodule hyperparameters "
                                 f"({e}); pass data_dir= or vocab=") from None
            warnings.warn(f"{path}: vocab not rebuilt ({e}); the model has no .vocab")
    if not vocabs and require_vocab:
        raise ValueError(f"{path} holds no datamodule hyperparameters to rebuild the vocab from; pass vocab=")
    if not args.get("num_chars"):
        vocabs.pop("char_vocab", None)
    _attach_vocabs(net, vocabs, str(path))
    net.architecture = _architecture(net, family)
    return net.eval()


# -- resolving names -------------------------------------------------------------------------------
def _download(repo_id: str, revision, cache_dir, local_files_only: bool, trust_pickle: bool) -> Path:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
    except ImportError:  # pragma: no cover
        raise ImportError("loading from the Hub needs huggingface_hub: pip install huggingface_hub") from None
    from seqzoo import __version__
    patterns = _HUB_FILES + ([f"*{s}" for s in PICKLE_SUFFIXES] if trust_pickle else [])
    try:
        path = snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
                                 allow_patterns=patterns, library_name="seqzoo", library_version=__version__)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as e:
        raise FileNotFoundError(f"{repo_id}@{revision or 'main'} is not in the local cache and the Hub cannot be "
                                f"reached ({type(e).__name__})") from e
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403, 404):
            first = str(e).strip().splitlines()[0]
            raise FileNotFoundError(f"cannot get {repo_id}@{revision or 'main'} from the Hub: {type(e).__name__}: "
                                    f"{first}") from e
        raise
    return Path(path)


def _resolve(name: str, revision, cache_dir, local_files_only: bool, trust_pickle: bool) -> tuple[Path, bool]:
    """(local path, whether it is a Hub snapshot)."""
    s = str(name)
    if s.startswith("hf-hub:"):
        return _download(s[len("hf-hub:"):], revision, cache_dir, local_files_only, trust_pickle), True
    p = Path(s).expanduser()
    if p.exists():
        return p, False
    from seqzoo.registry import get_pretrained_cfg, is_model
    if is_model(s):
        cfg = get_pretrained_cfg(s)
        shipped = PACKAGED_DIR / cfg.file if cfg.file else None
        if shipped is not None and revision is None and (shipped / CONFIG_NAME).is_file():
            return shipped, False  # the copy shipped in the package: no network, same files as the Hub repo
        if not cfg.hf_hub_id:
            raise ValueError(f"{s} has no hub id in its PretrainedCfg")
        return _download(cfg.hf_hub_id, revision, cache_dir, local_files_only, trust_pickle), True
    if _REPO_ID.fullmatch(s):
        try:
            return _download(s, revision, cache_dir, local_files_only, trust_pickle), True
        except FileNotFoundError as e:
            if p.parent.is_dir():  # "out/model" below an existing folder: perhaps a local path, mistyped
                raise FileNotFoundError(f"{s}: no such local folder or file; as a Hub repo id: {e}") from None
            raise
    raise FileNotFoundError(f"{s!r} is not a local folder or file, a registered name with a checkpoint "
                            f"(seqzoo.list_models(pretrained=True)) or a Hub repo id (org/name)")


def from_pretrained(name_or_repo_or_path: str | os.PathLike, revision: str | None = None,
                    cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                    trust_pickle: bool = False, **overrides):
    """Load a checkpoint: a network (``RNNLM``, ``Seq2SeqNet``, ``RNNTagger`` ..., with ``.architecture`` and its
    vocabularies: ``.vocab``, ``.tags``, ``.src_tokenizer`` ...) or an ``NGramLM``, in eval mode.

    Args:
        name_or_repo_or_path: ``lstm_lm_2x200.ptb_zaremba`` (registered name -> its hub id), ``hf-hub:org/name``,
            ``org/name``, a local checkpoint folder, or a Lightning ``.ckpt`` (pickle: needs ``trust_pickle``).
        revision: branch, tag or commit sha on the Hub (a sha pins the exact files).
        cache_dir: Hub cache (default ``$HF_HUB_CACHE``); ``HF_HUB_OFFLINE=1`` reads it without the network.
        local_files_only: never touch the network.
        trust_pickle: allow ``.ckpt`` / ``.bin`` / ``.pt`` / ``.pkl``, read with ``torch.load(weights_only=True)``.
        **overrides: config fields that do not change shapes (e.g. ``dropout=0.0``).

    Raises ``ValueError`` for weights that do not fit (naming the keys and shapes), a corrupted file, a vocab of
    the wrong size or a newer ``format_version``; ``FileNotFoundError`` when nothing is found.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    path, remote = _resolve(name_or_repo_or_path, revision, cache_dir, local_files_only, trust_pickle)
    if remote and not (path / CONFIG_NAME).is_file() and not (path.is_dir() and _pickle_files(path)):
        raise FileNotFoundError(f"{name_or_repo_or_path} has no {CONFIG_NAME} on the Hub: not a seqzoo checkpoint "
                                f"(pickle weights, *.bin / *.ckpt ..., are fetched only with trust_pickle=True)")
    if path.is_dir():
        return load_checkpoint_folder(path, trust_pickle=trust_pickle, **overrides)
    if path.suffix in PICKLE_SUFFIXES:
        return load_lightning_checkpoint(path, trust_pickle, **overrides)
    if path.name == CONFIG_NAME:
        return load_checkpoint_folder(path.parent, trust_pickle=trust_pickle, **overrides)
    raise ValueError(f"{path}: give a checkpoint folder (config.json + {WEIGHTS_NAME}) or a Lightning .ckpt")


def load_model(name_or_path: str | os.PathLike, trust_pickle: bool = False, data_dir: str | None = None,
               revision: str | None = None):
    """What the ``seqzoo`` verbs load: a Lightning ``.ckpt`` (with ``trust_pickle``; its vocabularies rebuilt by
    its datamodule, ``data_dir`` replacing the saved one, an error if they cannot be), or anything
    :func:`from_pretrained` reads."""
    if str(name_or_path).endswith(PICKLE_SUFFIXES):
        return load_lightning_checkpoint(name_or_path, trust_pickle, data_dir=data_dir, require_vocab=True)
    return from_pretrained(name_or_path, revision=revision, trust_pickle=trust_pickle)


def convert_checkpoint(ckpt_path: str | os.PathLike, out_dir: str | os.PathLike, trust_pickle: bool = True,
                       vocab=None, data_dir: str | None = None, card: str | None = None) -> Path:
    """A Lightning ``.ckpt`` of our CLI -> a seqzoo checkpoint folder (safetensors, config, vocabularies, card).

    The vocabularies are ``vocab`` if given, else rebuilt by the task's datamodule from the checkpoint's
    ``datamodule_hyper_parameters`` (``data_dir`` replaces the one saved there, e.g. when the run was elsewhere).
    """
    net = load_lightning_checkpoint(Path(ckpt_path), trust_pickle, vocab=vocab, data_dir=data_dir,
                                  require_vocab=True)
    return save_pretrained(net, out_dir, card=card)


# -- uploading -------------------------------------------------------------------------------------
def push_to_hub(model, repo_id: str, vocab=None, private: bool = False, revision: str | None = None,
                commit_message: str | None = None, card: str | None = None, token: str | None = None,
                vocabs: dict | None = None):
    """Create ``repo_id`` if needed and upload a checkpoint folder in one commit; returns the ``CommitInfo``
    (a ``str``: the commit url; ``.oid``: its sha). ``revision`` names a branch, created from main if new."""
    try:
        from huggingface_hub import CommitOperationAdd, HfApi
    except ImportError:  # pragma: no cover
        raise ImportError("pushing to the Hub needs huggingface_hub: pip install huggingface_hub") from None
    from seqzoo import __version__
    api = HfApi(token=token, library_name="seqzoo", library_version=__version__)
    with tempfile.TemporaryDirectory(prefix="seqzoo-push-") as tmp:
        folder = Path(tmp)
        cfg = _save_into(model, folder, vocab, card, repo_id, None, vocabs)  # bad models fail before any request
        ops = [CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=str(p))
               for p in sorted(folder.iterdir()) if p.is_file()]
        # one create_commit = one commit (upload_folder may split a folder into several commits with hf_xet)
        message = commit_message or f"Upload {cfg['architecture']} (seqzoo {__version__})"
        with _hub_errors(f"push to {repo_id}"):
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision not in (None, "main"):
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            return api.create_commit(repo_id, operations=ops, revision=revision, commit_message=message)


@contextlib.contextmanager
def _hub_errors(what: str):
    """The Hub out of reach, or refusing us, as one line (ConnectionError / PermissionError), not a traceback."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
    transport: tuple = ()
    for module in ("httpx2", "httpx", "requests"):  # what huggingface_hub speaks HTTP with, by version
        try:
            mod = __import__(module)
        except ImportError:
            continue
        found = (getattr(mod, n, None) for n in ("TransportError", "ConnectionError", "Timeout"))
        transport += tuple(c for c in found if isinstance(c, type) and issubclass(c, Exception))
    try:
        yield
    except OfflineModeIsEnabled as e:
        raise ConnectionError(f"cannot {what}: HF_HUB_OFFLINE is set") from e
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403):
            raise PermissionError(f"cannot {what}: the Hub refused ({status}); log in with `hf auth login` or pass "
                                  f"a token with write access") from e
        raise
    except transport as e:
        raise ConnectionError(f"cannot {what}: the Hub cannot be reached ({type(e).__name__}: {e})") from e


# -- as methods ------------------------------------------------------------------------------------
class HubMixin:
    """``save_pretrained`` / ``push_to_hub`` methods and a ``from_pretrained`` classmethod on every seqzoo model
    and task (as in timm and transformers); they call the functions of this module."""

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """A Lightning task's ``.ckpt`` carries its vocabularies as plain data, so that it loads without the
        corpus its datamodule built them from (older ``.ckpt`` files rebuild them from that corpus)."""
        net, vocabs = _unwrap(self)
        vocabs = {k: v for k, v in {**_collect_vocabs(net), **vocabs}.items()
                  if VOCABULARIES[k][0] != "tokenizer"}  # a Seq2Seq task keeps those in its hyperparameters
        if vocabs:
            checkpoint["seqzoo_vocabularies"] = vocab_payload(vocabs)

    def save_pretrained(self, directory: str | os.PathLike, **kwargs) -> Path:
        """:func:`seqzoo.hub.save_pretrained` of this model."""
        return save_pretrained(self, directory, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs):
        """:func:`seqzoo.hub.push_to_hub` of this model (``private``, ``revision``, ``commit_message`` ...)."""
        return push_to_hub(self, repo_id, **kwargs)

    @classmethod
    def from_pretrained(cls, name_or_repo_or_path, **kwargs):
        """:func:`seqzoo.hub.from_pretrained`, checked to be a ``cls``; a Lightning task class wraps the loaded
        network (``cls.from_net``), ready to fine-tune or test."""
        import lightning as L
        model = from_pretrained(name_or_repo_or_path, **kwargs)
        if isinstance(model, cls):
            return model
        if issubclass(cls, L.LightningModule) and hasattr(model, "config"):
            return cls.from_net(model)
        raise ValueError(f"{name_or_repo_or_path} holds a {type(model).__name__}, not a {cls.__name__}")

    @classmethod
    def from_net(cls, net, **hparams):
        """A task (LightningModule) around a network loaded with :func:`from_pretrained`: its config becomes the
        task's model arguments, its weights and vocabularies are kept; ``hparams`` set the rest (optimizer, lr ...)."""
        import lightning as L
        if not issubclass(cls, L.LightningModule):
            raise TypeError(f"{cls.__name__}.from_net: only a Lightning task wraps a network")
        try:
            task = cls(**asdict(net.config), **hparams)
        except TypeError as e:
            raise ValueError(f"a {type(net).__name__} does not fit {cls.__name__}: {e}") from None
        if type(task.net) is not type(net):
            raise ValueError(f"{cls.__name__} holds a {type(task.net).__name__}, not a {type(net).__name__}")
        task.net.load_state_dict(net.state_dict())
        for k, v in _collect_vocabs(net).items():
            setattr(task.net, k, v)
        task.net.architecture = getattr(net, "architecture", None)
        return task
