"""Model cards: the README.md of a checkpoint, with Hub metadata (YAML front matter + ``model-index``).

``make_card`` writes one card, for any family; ``write_cards`` writes one per run of a recipe's ``results.json``
that has a registered pretrained name (``PretrainedCfg.recipe``'s folder and ``PretrainedCfg.run`` name the run). Every number in a card comes from
a ``results.json`` run: a card without one says so instead of showing figures.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from seqzoo.utils import write_text_atomic

__all__ = ["make_card", "write_cards", "card_for_run", "card_metadata", "family_of", "KINDS"]

_CELL_TAGS = {"lstm": "lstm", "gru": "gru", "rnn_tanh": "rnn", "rnn_relu": "rnn"}
_CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "tanh RNN", "rnn_relu": "ReLU RNN"}
# family -> (Hub pipeline tag, task name, results.json metric names, what it is for)
_LM_USE = ("Research and teaching: a reproducible baseline for language modelling perplexity, for comparing "
           "architectures and smoothing methods, and for scoring or sampling text in the domain it was trained on.")
KINDS = {
    "rnn_lm": ("text-generation", "Language modeling", ("perplexity", "nats_per_char"), _LM_USE),
    "window_lm": ("text-generation", "Language modeling", ("perplexity",), _LM_USE),
    "ngram": ("text-generation", "Language modeling", ("perplexity",), _LM_USE),
    "seq2seq": ("translation", "Translation", ("bleu", "chrf"),
                "Research and teaching: a reproducible encoder-decoder translation baseline (with or without "
                "attention) for the language pair and domain it was trained on."),
    "tagger": ("token-classification", "Part-of-speech tagging", ("accuracy",),
               "Research and teaching: a reproducible recurrent tagger for the treebank and tag set it was trained "
               "on; one tag per token."),
    "classifier": ("text-classification", "Text classification", ("accuracy",),
                   "Research and teaching: a reproducible recurrent sentence classifier for the label set and domain "
                   "it was trained on."),
    "ctc": ("text2text-generation", "Grapheme-to-phoneme conversion", ("per",),
            "Research and teaching: a reproducible CTC baseline that maps a spelling to its phonemes."),
}
_METRIC_NAMES = {"perplexity": "perplexity", "nats_per_char": "nats per character", "bleu": "BLEU", "chrf": "chrF",
                 "accuracy": "accuracy", "per": "phoneme error rate"}
_SPLITS = (("test", "test"), ("valid", "validation"))


def family_of(config: dict) -> str:
    """The model family a config's fields belong to."""
    for key, family in (("order", "ngram"), ("src_vocab_size", "seq2seq"), ("num_tags", "tagger"),
                        ("num_classes", "classifier"), ("num_labels", "ctc"), ("context_size", "window_lm")):
        if key in config:
            return family
    return "rnn_lm"


# the non-LM corpora of seqzoo.data: name -> (Hub dataset id, display name)
_TASK_DATASETS = {"sst2": ("stanfordnlp/sst2", "SST-2 (GLUE)"), "multi30k": ("bentrevett/multi30k", "Multi30k"),
                  "ud-english-ewt": ("universal_dependencies", "UD English EWT"), "cmudict": (None, "CMUdict")}


def _dataset_info(dataset: str | None) -> tuple[str | None, str | None]:
    """(Hub dataset id or None, display name) for a corpus name or path."""
    if not dataset:
        return None, None
    from seqzoo.data.corpora import CORPORA
    c = CORPORA.get(dataset)
    if c is not None:
        return c.hub_id, c.description.split(",")[0] or dataset
    if dataset in _TASK_DATASETS:
        return _TASK_DATASETS[dataset]
    looks_like_repo = dataset.count("/") == 1 and not os.path.exists(dataset)
    return (dataset if looks_like_repo else None), dataset


def _encoder(c: dict) -> str:
    bi = "bidirectional " if c.get("bidirectional") else ""
    return f"{c.get('num_layers', '?')}-layer {bi}{_CELL_NAMES.get(c.get('cell'), c.get('cell', 'RNN'))}"


def _describe(config: dict, family: str | None = None) -> tuple[str, list[str]]:
    """One-paragraph description and the tags of a model config (any family's fields)."""
    c, family = config, family or family_of(config)
    base = ["seqzoo", "pytorch", "lightning"]
    cell = [_CELL_TAGS.get(c["cell"], c["cell"])] if "cell" in c else []
    if family == "ngram":
        smoothing = {"modified-kn": "interpolated modified Kneser-Ney", "katz": "Katz backoff", "add-k": "add-k",
                     "mle": "no (maximum likelihood)", "stupid": "stupid backoff"}.get(c.get("smoothing"), c.get("smoothing", "?"))
        text = (f"A word {c['order']}-gram language model with {smoothing} smoothing, stored as an "
                f"ARPA backoff file" + (f" over {c['vocab_size']} words" if c.get("vocab_size") else "") + ".")
        return text, ["language-modeling", "seqzoo", "n-gram", str(c.get("smoothing", "n-gram"))]
    if family == "window_lm":
        text = (f"A fixed-window neural language model (Bengio et al. 2003): the previous {c.get('context_size')} "
                f"words' {c.get('embedding_size')}-wide embeddings, {c.get('hidden_size')} tanh units, a softmax over "
                + (f"{c['vocab_size']} words" if c.get("vocab_size") else "its vocabulary")
                + (", direct connections" if c.get("direct") else "") + ".")
        return text, ["language-modeling", *base, "feed-forward"]
    if family == "seq2seq":
        attention = {"none": "no attention (the context vector only)", "bahdanau": "additive (Bahdanau) attention",
                     "luong_general": "Luong general attention", "luong_dot": "Luong dot attention"}
        text = (f"An encoder-decoder translation model: a {_encoder(c)} encoder and a "
                f"{_CELL_NAMES.get(c.get('cell'), c.get('cell'))} decoder with "
                f"{attention.get(c.get('attention'), c.get('attention'))}, {c.get('hidden_size')}-wide; "
                f"{c.get('src_vocab_size')} source and {c.get('tgt_vocab_size')} target tokens.")
        return text, ["translation", *base, *cell, "seq2seq"]
    if family == "tagger":
        chars = "" if c.get("char_encoder", "none") == "none" else f" and character {c['char_encoder'].upper()} features"
        text = (f"A {_encoder(c)} sequence tagger over {c.get('embedding_size')}-wide word embeddings{chars}: one of "
                + (f"{c['num_tags']} tags per token." if c.get("num_tags") else "its tags per token."))
        return text, ["token-classification", "pos-tagging", *base, *cell]
    if family == "classifier":
        text = (f"A {_encoder(c)} sentence classifier over {c.get('embedding_size')}-wide word embeddings, "
                f"{c.get('pooling')} pooling over time" + (f", {c['num_classes']} classes." if c.get("num_classes")
                                                          else "."))
        return text, ["text-classification", *base, *cell]
    if family == "ctc":
        text = (f"A {_encoder(c)} CTC model over character embeddings (each frame upsampled x{c.get('upsample')}), "
                + (f"{c['num_labels']} output labels including the blank; " if c.get("num_labels") else "")
                + "decoded greedily or by prefix beam search.")
        return text, ["grapheme-to-phoneme", "ctc", *base, *cell]
    cellname = _CELL_NAMES.get(c.get("cell"), c.get("cell"))
    tied = ", input and output embeddings tied" if c.get("tie_weights") else ""
    text = (f"A {c.get('num_layers', '?')}-layer {cellname} language model: {c.get('embedding_size', '?')}-wide "
            f"embeddings, {c.get('hidden_size', '?')}-wide hidden state, dropout {c.get('dropout', 0.0)}{tied}"
            + (f", vocabulary of {c['vocab_size']} tokens" if c.get("vocab_size") else "")
            + ". It reads a token stream left to right and predicts the next token (truncated BPTT training, "
              "hidden state carried across batches; Zaremba et al. 2014).")
    return text, ["language-modeling", *base, *cell]


def _metric_values(results_run: dict | None, family: str = "rnn_lm") -> dict[str, float]:
    """``{"test_perplexity": ...}``: the run's metrics that this family reports, valid and test."""
    m = (results_run or {}).get("metrics") or {}
    keys = [f"{split}_{metric}" for metric in KINDS[family][2] for split, _ in _SPLITS]
    return {k: float(m[k]) for k in keys if m.get(k) is not None}


def card_metadata(model_name: str, config: dict, results_run: dict | None, dataset: str | None,
                  license: str = "apache-2.0", base_model: str | None = None, family: str | None = None) -> dict:
    """The YAML front matter of :func:`make_card` as a dict."""
    family = family or family_of(config)
    pipeline, task_name, metrics, _ = KINDS[family]
    _, tags = _describe(config, family)
    hub_id, display = _dataset_info(dataset)
    meta: dict = {"library_name": "seqzoo", "license": license, "tags": tags, "pipeline_tag": pipeline}
    if hub_id:
        meta["datasets"] = [hub_id]
    if base_model:
        meta["base_model"] = base_model
    values = _metric_values(results_run, family)
    results = []
    for split, label in _SPLITS:
        for metric in metrics:
            key = f"{split}_{metric}"
            if key in values:
                results.append({"task": {"type": pipeline, "name": task_name},
                                "dataset": {"type": hub_id or dataset, "name": display, "split": label},
                                "metrics": [{"type": metric, "value": round(values[key], 4 if values[key] < 10 else 2),
                                             "name": f"{label} {_METRIC_NAMES[metric]}"}]})
    if results:
        meta["model-index"] = [{"name": model_name, "results": results}]
    return meta


# family -> (a Python call on the loaded model, what `seqzoo predict` prints per input line)
_PREDICT = {
    "tagger": ('model.tag(["The cat sat on the mat ."])  # one tag per word; a sentence may be a list of words',
               "one line of word/TAG per input sentence"),
    "classifier": ('model.classify(["a gorgeous , witty film"])  # one label per text; .probabilities(texts) for all',
                   "label and probability per input line"),
    "ctc": ('model.transcribe(["seqzoo"])  # labels (phonemes) per word; beam_size=10 for prefix beam search',
            "the labels of each word of each input line"),
}


def make_card(model_name: str, config: dict, results_run: dict | None, dataset: str | None,
              recipe_command: str | None, license: str = "apache-2.0", base_model: str | None = None,
              family: str | None = None, languages: tuple[str, str] | None = None, eval_flags: str = "") -> str:
    """Markdown model card with Hub front matter (library, license, datasets, tags, model-index).

    Args:
        model_name: how to load it: a Hub repo id or a registered ``arch.tag`` name.
        config: the model's arguments (its family's config fields, or the n-gram's order / smoothing).
        results_run: one run of a recipe's ``results.json`` (``metrics``, ``epochs``, ``wall_seconds``,
            ``device``); ``None``: the card states that no result was measured.
        dataset: corpus name (``ptb``) or path it was trained on.
        recipe_command: the exact command that trains it.
        family: the model family (``seq2seq``, ``tagger`` ...; see ``KINDS``); default: guessed from ``config``'s
            fields (:func:`family_of`).
        languages: a translation model's (source, target) language codes, for its ``seqzoo evaluate`` command.
        eval_flags: flags for the card's ``seqzoo evaluate`` command that give back its figures exactly: a language
            model's stream layout in the recipe (e.g. ``" --batch-size 16 --bptt 100"``), a tagger's tag column ...
    """
    family = family or family_of(config)
    meta = card_metadata(model_name, config, results_run, dataset, license, base_model, family)
    description, _ = _describe(config, family)
    _, display = _dataset_info(dataset)
    values = _metric_values(results_run, family)
    loaded = {"ngram": "NGramLM", "seq2seq": "Seq2SeqNet with .src_tokenizer / .tgt_tokenizer",
              "tagger": "RNNTagger with .vocab, .tags", "classifier": "RNNClassifier with .vocab, .labels",
              "ctc": "CTCModel with .vocab, .labels", "window_lm": "WindowLM with .vocab"}.get(family,
                                                                                            "RNNLM with .vocab")
    use = {"seq2seq": f"`seqzoo translate {model_name} --beam 5 < src.txt > hyp.txt`" + (
               f"; scored on {dataset}'s test split: `seqzoo evaluate {model_name} --dataset {dataset} --src-lang "
               f"{languages[0]} --tgt-lang {languages[1]} --beam 5 --json`" if languages and dataset else ""),
           "ngram": f"`seqzoo evaluate {model_name} --dataset {dataset or 'DATASET'} --json`",
           "rnn_lm": f"`seqzoo evaluate {model_name} --dataset {dataset or 'DATASET'}{eval_flags} --json`",
           "window_lm": f"`seqzoo evaluate {model_name} --dataset {dataset or 'DATASET'}{eval_flags} --json`",
           }.get(family)
    if family in _PREDICT:
        what, split = _PREDICT[family][1], "validation" if "--split valid" in eval_flags else "test"
        use = (f"`seqzoo predict {model_name} < input.txt` ({what}); scored on {dataset or 'DATASET'}'s {split} split: "
               f"`seqzoo evaluate {model_name} --dataset {dataset or 'DATASET'}{eval_flags} --json`")
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    lines = ["---", front.rstrip(), "---", "", f"# {model_name}", "",
             description + (f" Trained on {display}." if display else ""), "",
             "## Intended use", "", KINDS[family][3],
             "", "## How to load", "", "```python", "import seqzoo", "",
             f'model = seqzoo.from_pretrained("{model_name}")  # {loaded}, eval mode',
             *([_PREDICT[family][0]] if family in _PREDICT else []),
             "```", "", "Or from a local copy of this repository: `seqzoo.from_pretrained(\"path/to/folder\")`"
             + (f"; from the shell: {use}." if use else "."), ""]
    lines += ["## Training", ""]
    if recipe_command:
        lines += ["```bash", recipe_command, "```", ""]
    else:
        lines += ["Not recorded for this checkpoint.", ""]
    lines += ["## Results", ""]
    if values:
        r = results_run
        metrics = [m for m in KINDS[family][2] if any(f"{s}_{m}" in values for s, _ in _SPLITS)]
        lines += ["| split | " + " | ".join(_METRIC_NAMES[m] for m in metrics) + " |",
                  "| --- | " + " | ".join("---:" for _ in metrics) + " |"]
        for split, label in reversed(_SPLITS):
            if any(f"{split}_{m}" in values for m in metrics):
                cells = [f"{values[f'{split}_{m}']:.{4 if values[f'{split}_{m}'] < 10 else 2}f}"
                         if f"{split}_{m}" in values else "" for m in metrics]
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        extra = [f"{r['epochs']} epoch{'s' if r['epochs'] != 1 else ''}" if r.get("epochs") is not None
                 and family != "ngram" else "",
                 f"{r['wall_seconds']} s wall time" if r.get("wall_seconds") is not None else "",
                 f"on {r['device']}" if r.get("device") else ""]
        extra = ", ".join(e for e in extra if e)
        if r.get("resumed_from"):  # trained in two parts: say where the second went on from
            first = r["resumed_from"]
            extra += (f" (in two parts: {first['epochs']} epoch{'s' if first['epochs'] != 1 else ''} on "
                      f"{first['device']}, then resumed from that checkpoint with `--resume`; the time is the sum)")
        how = {"perplexity": " Perplexity is token-weighted over the whole split, every `<eos>` included.",
               "bleu": " BLEU and chrF are sacreBLEU's, on detokenised text.",
               "accuracy": " Accuracy is over every token (tagger) or sentence (classifier) of the split.",
               "per": " PER: phoneme edit distance over reference length, summed over the split."}
        lines += ["", f"Measured by the command above{': ' + extra if extra else ''}." + how.get(metrics[0], ""), ""]
    else:
        lines += ["No evaluation results were recorded for this checkpoint.", ""]
    lines += ["## Limitations", "",
              "- It knows only its training vocabulary; every other token is `<unk>`, so its scores are comparable "
              "only across models with the same vocabulary and tokenisation.",
              "- Trained on one corpus: it models that domain only, is no general-purpose model, and its outputs "
              "can reproduce the biases of the training text.",
              "- Numbers above hold for the split and preprocessing named here only.", ""]
    return "\n".join(lines)


def _eval_flags(family: str, data: dict, model: dict) -> str:
    """The ``seqzoo evaluate`` flags that make it score a recipe's model as the recipe's test run did."""
    if family in ("rnn_lm", "window_lm"):
        import inspect

        from seqzoo.cli import run_evaluate
        ev = inspect.signature(run_evaluate).parameters  # the stream layout seqzoo evaluate uses without flags
        default = (ev["batch_size"].default, ev["bptt"].default)
        stream = (data.get("eval_batch_size", default[0]), data.get("bptt", default[1]))
        return f" --batch-size {stream[0]} --bptt {stream[1]}" if stream != default else ""
    if family == "tagger":
        return " --data-dir DATA_DIR" + (f" --tag-column {data['tag_column']}" if data.get("tag_column", "upos")
                                         != "upos" else "")
    if family == "classifier":  # the datamodule serves dev as its test split (GLUE's test labels are private)
        return " --split valid --data-dir DATA_DIR"
    if family == "ctc" and model.get("decoder") == "beam":
        return f" --beam {model.get('beam_size', 10)}"
    return ""


# -- one card per recipe run --------------------------------------------------------------------------
def _pretrained_names_by_run() -> dict[tuple[str, str], str]:
    """(recipe folder name, results.json run name) -> registered ``arch.tag``."""
    from seqzoo.registry import get_pretrained_cfg, list_models
    out = {}
    for name in list_models(pretrained=True):
        cfg = get_pretrained_cfg(name)
        if cfg.recipe:
            out[(Path(cfg.recipe).parent.name, cfg.run or Path(cfg.recipe).stem)] = name
    return out


def _read_config(config_path: Path) -> dict:
    """A LightningCLI YAML as a dict ({} for a missing file or a recipe table's recipe.yaml)."""
    if not config_path.is_file() or config_path.name == "recipe.yaml":
        return {}
    return yaml.safe_load(config_path.read_text()) or {}


def _model_args(config: dict) -> tuple[str | None, dict]:
    """(family, ``model.init_args`` of a loaded LightningCLI YAML, only its family's config fields)."""
    if not config:
        return None, {}
    from dataclasses import fields

    from seqzoo.hub import FAMILIES, TASK_FAMILIES, _import
    model = config.get("model") or {}
    family = TASK_FAMILIES.get(model.get("class_path", "seqzoo.models.rnn_lm.RNNLanguageModel"), "rnn_lm")
    init = model.get("init_args") or {}
    return family, {f.name: init[f.name] for f in fields(_import(FAMILIES[family][1])) if f.name in init}


def _model_args_from_recipe(config_path: Path) -> tuple[str | None, dict]:
    """(family, ``model.init_args`` of a LightningCLI YAML, only its family's config fields)."""
    return _model_args(_read_config(config_path))


def _ngram_args(recipe_dir: Path, run_name: str) -> dict:
    recipe = recipe_dir / "recipe.yaml"
    if not recipe.is_file():  # the run's recipe in this checkout
        recipe = Path(__file__).resolve().parents[1] / "recipes" / recipe_dir.name / "recipe.yaml"
    spec = next((r for r in (yaml.safe_load(recipe.read_text()) or {}).get("runs", []) if r["name"] == run_name), {}) \
        if recipe.is_file() else {}
    return {k: spec[k] for k in ("order", "smoothing") if k in spec} or {"order": "?"}


def card_for_run(recipe_dir: str | os.PathLike, run: dict, config: dict | None = None) -> tuple[str, str] | None:
    """(registered ``arch.tag``, card text) for one ``results.json`` run, or None if no name is registered for it."""
    from seqzoo.registry import get_pretrained_cfg
    recipe_dir = Path(recipe_dir)
    name = _pretrained_names_by_run().get((recipe_dir.name, run["name"]))
    if name is None:
        return None
    cfg = get_pretrained_cfg(name)
    folder, family, languages, eval_flags = Path(cfg.recipe).parent, None, None, ""
    if Path(cfg.recipe).name == "recipe.yaml":  # an n-gram row of the recipe table
        args = config or _ngram_args(recipe_dir, run["name"])
        command = f"{run['config']} --data-dir DATA_DIR\n# or: seqzoo reproduce {folder} --only {run['name']} --data-dir DATA_DIR"
    else:
        exported = Path(run["export_dir"]) / "config.json" if run.get("export_dir") else None
        if config is None and exported is not None and exported.is_file():  # the trained model's own sizes
            saved = json.loads(exported.read_text())
            config, family = saved["model_args"], saved.get("family")
        candidates = [recipe_dir / Path(cfg.recipe).name, Path(__file__).resolve().parents[1] / cfg.recipe]
        recipe = _read_config(next((p for p in candidates if p.is_file()), candidates[0]))
        recipe_family, recipe_args = _model_args(recipe)
        args, family = config or recipe_args, family or recipe_family
        data = recipe.get("data") or {}
        languages = (data["src_lang"], data["tgt_lang"]) if family == "seq2seq" and "src_lang" in data else None
        eval_flags = _eval_flags(family, data, (recipe.get("model") or {}).get("init_args") or {})
        extra = " ".join(run.get("overrides") or [])  # the flags the run was trained with beside its config
        command = (f"seqzoo fit --config {cfg.recipe} --data.data_dir DATA_DIR{' ' + extra if extra else ''}\n"
                   f"# or, with the test run and results.json: seqzoo reproduce {folder} "
                   f"--only {run['name']} --data-dir DATA_DIR{' -- ' + extra if extra else ''}")
    return name, make_card(name, args, run, run.get("dataset") or cfg.dataset, command, family=family,
                           languages=languages, eval_flags=eval_flags)


def write_cards(recipe_dir: str | os.PathLike, out_dir: str | os.PathLike = "model_cards") -> list[Path]:
    """One ``<out_dir>/<arch.tag>.md`` per run of ``<recipe_dir>/results.json`` with a registered pretrained name."""
    recipe_dir, out_dir = Path(recipe_dir), Path(out_dir)
    results_path = recipe_dir / "results.json"
    if not results_path.is_file():
        raise FileNotFoundError(f"no results.json in {recipe_dir}: run `seqzoo reproduce {recipe_dir}` first")
    written = []
    for run in json.loads(results_path.read_text()).get("runs", []):
        card = card_for_run(recipe_dir, run)
        if card is None:
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{card[0]}.md"
        write_text_atomic(path, card[1])
        written.append(path)
    return written
