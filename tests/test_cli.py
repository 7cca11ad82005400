"""The seqzoo command: verbs, recipes, and one-line errors on bad input."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import seqzoo
from seqzoo.cli import main
from tiny_models import tiny_model

REPO = Path(__file__).resolve().parents[1]
FAST = ["--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
        "--trainer.enable_checkpointing", "false", "--trainer.enable_model_summary", "false"]


def test_console_script_lists_verbs_and_models():
    out = subprocess.run([sys.executable, "-m", "seqzoo.cli"], capture_output=True, text=True, check=True).stdout
    assert "fit" in out and "ngram" in out and "reproduce" in out
    out = subprocess.run([sys.executable, "-m", "seqzoo.cli", "list", "lstm*"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["lstm_lm_2x1500", "lstm_lm_2x200", "lstm_lm_2x200_dropout", "lstm_lm_2x200_tied", "lstm_lm_2x650"]


def test_version(capsys):
    import seqzoo
    assert main(["--version"]) == 0 and capsys.readouterr().out == f"seqzoo {seqzoo.__version__}\n"


def test_unknown_verb(capsys):
    assert main(["trian"]) == 2
    assert "unknown verb 'trian'" in capsys.readouterr().err


def test_list_with_no_match_says_so(capsys):
    assert main(["list", "seq2seq*", "--pretrained"]) == 0
    assert "seq2seq_gru_bahdanau_256.multi30k_de_en" in capsys.readouterr().out.split()
    assert main(["list", "transformer*"]) == 1
    assert capsys.readouterr().err.strip() == ("seqzoo list: error: no registered model matches 'transformer*'; "
                                               "`seqzoo list` shows them all")
    # a pattern that only a checkpoint tag matches points to --pretrained
    assert main(["list", "*multi30k*"]) == 1
    assert capsys.readouterr().err.strip() == ("seqzoo list: error: no architecture matches '*multi30k*', but 2 names "
                                               "with a checkpoint do: seqzoo list --pretrained '*multi30k*'")


def _lm_configs():
    """Every recipe config of a language model (the other tasks' configs run in test_seq_recipes.py and
    test_seq2seq.py on their own data)."""
    from seqzoo.cli import task_for
    from seqzoo.lm import LanguageModelTask
    out = []
    for p in sorted((REPO / "recipes").glob("*/*.yaml")):
        model = (yaml.safe_load(p.read_text()) or {}).get("model")
        if isinstance(model, dict) and task_for(model["class_path"])[0] is LanguageModelTask:
            out.append(p)
    return out


def test_every_config_belongs_to_a_task():
    from seqzoo.cli import task_for
    configs = [p for p in (REPO / "recipes").glob("*/*.yaml") if "model" in (yaml.safe_load(p.read_text()) or {})]
    assert len(configs) > len(_lm_configs()) >= 8
    for p in configs:
        task_for(yaml.safe_load(p.read_text())["model"]["class_path"])  # raises for an unknown task


@pytest.mark.parametrize("config", _lm_configs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_config_instantiates(config, tiny_corpus):
    """A config whose keys drift from the code fails here, not after an hour of training."""
    from seqzoo.cli import _lightning_cli
    cli = _lightning_cli(["--config", str(config), "--data.dataset", str(tiny_corpus), *FAST], run=False)
    assert cli.model.hparams.vocab_size == cli.datamodule.vocab_size


def test_recipe_tables_name_existing_configs():
    for recipe in (REPO / "recipes").glob("*/recipe.yaml"):
        runs = yaml.safe_load(recipe.read_text())["runs"]
        for run in runs:
            if run.get("kind") == "retest":  # re-tests another run's model: that run must be in the table
                assert run["of"] in [r["name"] for r in runs if r.get("kind") != "retest"], (recipe, run["name"])
            elif run.get("kind") != "ngram":
                assert (recipe.parent / run["config"]).exists(), (recipe, run["name"])


def test_fit_then_test_via_cli(tiny_corpus, tmp_path, capsys):
    """`seqzoo fit` writes a checkpoint; `seqzoo test --ckpt_path` scores it below the untrained model."""
    import re
    args = ["--config", str(REPO / "recipes/ptb/lstm_small.yaml"), "--data.dataset", str(tiny_corpus),
            "--trainer.default_root_dir", str(tmp_path), "--model.init_args.hidden_size", "32",
            "--model.init_args.embedding_size", "32", "--model.init_args.num_layers", "1",
            *FAST[:6]]  # checkpointing on

    def test_perplexity(*extra) -> float:
        assert main(["test", *args, *extra]) == 0
        return float(re.search(r"test_perplexity\W+([0-9.]+)", capsys.readouterr().out).group(1))

    untrained = test_perplexity()
    assert main(["fit", *args, "--trainer.max_epochs", "20", "--data.batch_size", "4", "--data.bptt", "8",
                 "--model.init_args.optimizer", "adam", "--model.init_args.lr", "0.01"]) == 0
    ckpt, = (tmp_path / "checkpoints").glob("*.ckpt")
    assert test_perplexity("--ckpt_path", str(ckpt)) < 0.5 * untrained


def test_reproduce_writes_results(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "recipe"
    folder.mkdir()
    (folder / "lstm.yaml").write_text((REPO / "recipes/ptb/lstm_small.yaml").read_text())
    (folder / "recipe.yaml").write_text(yaml.safe_dump({"title": "t", "dataset": str(tiny_corpus), "runs": [
        {"name": "lstm", "config": "lstm.yaml", "paper": {"test_perplexity": 1.0}}]}))
    assert main(["reproduce", str(folder), "--", "--data.dataset", str(tiny_corpus),
                 "--trainer.default_root_dir", str(tmp_path / "runs"), *FAST[:4]]) == 0
    results = json.loads((folder / "results.json").read_text())
    run = results["runs"][0]
    assert run["name"] == "lstm" and run["epochs"] == 1 and run["device"].startswith("cpu")
    assert run["overrides"] == ["--data.dataset", str(tiny_corpus), "--trainer.default_root_dir",
                                str(tmp_path / "runs"), *FAST[:4]]
    assert set(run) >= {"name", "config", "dataset", "metrics", "epochs", "wall_seconds", "device", "software"}
    # the row names what computed it: package versions, and the commit when seqzoo runs from a git checkout
    import lightning
    assert run["software"]["torch"] == torch.__version__ and run["software"]["lightning"] == lightning.__version__
    if (REPO / ".git").exists():
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        assert run["software"]["git"].split("+")[0] == head
    assert run["metrics"]["test_perplexity"] > 1 and run["metrics"]["valid_perplexity"] > 1
    assert "| lstm |" in (folder / "results.md").read_text()
    assert (folder / "valid_perplexity.png").stat().st_size > 1000
    # the trained model was exported as a seqzoo folder, named relative to the working directory (results.json
    # holds no machine's absolute paths), that evaluates to the recorded test perplexity
    assert run["export_dir"].startswith("runs/") and (Path(run["export_dir"]) / "config.json").is_file()
    from seqzoo.cli import run_evaluate
    r = run_evaluate(run["export_dir"], str(tiny_corpus), "test", batch_size=10, bptt=20)
    assert r["perplexity"] == pytest.approx(run["metrics"]["test_perplexity"], rel=1e-5)


def test_device_name_names_the_cpu_kernels_and_threads(monkeypatch):
    """A CPU row says which vector ISA torch's kernels use: the same code and seed can train to other numbers on a
    CPU whose kernels differ."""
    from seqzoo.recipes import device_name
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    name = device_name()
    assert name.startswith("cpu: ") and name.endswith(f", {torch.get_num_threads()} threads")
    assert f"({torch.backends.cpu.get_cpu_capability()})" in name, name
    # the device that ran is named, not the best one present: a CPU run on a GPU machine is a CPU row
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_name(torch.device("cpu")) == name and device_name(torch.device("meta")) == "meta"


def test_software_versions_marks_changed_code_not_changed_results(tmp_path):
    """A row's ``software.git`` is the commit, ``+dirty`` when code or a config differs from it; a results file
    written by the runs themselves does not make the code dirty."""
    from seqzoo.recipes import software_versions
    (tmp_path / "seqzoo").mkdir()
    (tmp_path / "recipes" / "r").mkdir(parents=True)
    files = {"seqzoo/m.py": "x = 1\n", "recipes/r/a.yaml": "a: 1\n", "recipes/r/results.json": "{}\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "c"]):
        subprocess.run(git + args, check=True, capture_output=True)
    head = subprocess.run(git + ["rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert software_versions(tmp_path)["git"] == head
    (tmp_path / "recipes/r/results.json").write_text('{"runs": []}\n')
    assert software_versions(tmp_path)["git"] == head
    (tmp_path / "recipes/r/a.yaml").write_text("a: 2\n")
    assert software_versions(tmp_path)["git"] == head + "+dirty"
    (tmp_path / "recipes/r/a.yaml").write_text("a: 1\n")
    (tmp_path / "seqzoo/m.py").write_text("x = 2\n")
    assert software_versions(tmp_path)["git"] == head + "+dirty"
    assert "git" not in software_versions(tmp_path / "recipes")  # not a checkout: no commit recorded


def test_report_names_its_reference_column(tmp_path):
    """A recipe whose comparison figures are not a paper's says where they come from in the column head."""
    from seqzoo.recipes import write_report
    run = {"name": "a", "config": "a.yaml", "dataset": "d", "metrics": {"test_perplexity": 131.6},
           "epochs": 6, "wall_seconds": 1.0, "device": "cpu"}
    (tmp_path / "results.json").write_text(json.dumps({"runs": [run]}))
    recipe = {"title": "t", "metrics": ["test_perplexity"], "runs": [{"name": "a", "paper": {"test_perplexity": 130.32}}]}
    write_report(tmp_path, recipe)
    md = (tmp_path / "results.md").read_text()
    assert "| run | model | test_perplexity | paper |" in md and "| a |  | 131.6 | 130.3 | 6 |" in md
    write_report(tmp_path, {**recipe, "reference": "re-run"})
    assert "| run | model | test_perplexity | re-run |" in (tmp_path / "results.md").read_text()


@pytest.mark.parametrize("args,message", [
    (["fit", "--data.dataset", "nope"], "unknown dataset 'nope'"),
    (["reproduce", "recipes/nope"], "no recipe.yaml in recipes/nope"),
    (["reproduce", "recipes/ptb", "--only", "lstm_huge"], "recipe recipes/ptb has no run 'lstm_huge'"),
])
def test_bad_input_one_line(args, message, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    if args[0] == "fit":  # flags after --config override it
        args = ["fit", "--config", "recipes/ptb/lstm_small.yaml", *args[1:], *FAST]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.parametrize("file, text, message", [
    ("recipe.yaml", "runs: [ {name: x", "recipe.yaml is not a valid YAML recipe: while parsing"),
    ("recipe.yaml", "- a\n- b\n", "recipe.yaml is not a YAML recipe: it must be a mapping of keys, got list"),
    ("recipe.yaml", "title: no runs\n", "recipe.yaml needs 'runs': a list of runs"),
    ("results.json", '{"runs": [', "results.json is not valid JSON"),
    ("results.json", '{"runs": [{"name": "kn3"}, {"metrics": {}}]}', "results.json: run 2 has no name"),
    ("gradient.yaml", "", "gradient.yaml is not a YAML gradient-flow config: it must be a mapping")])
def test_broken_recipe_files_are_one_line_before_anything_runs(file, text, message, tmp_path, capsys):
    import shutil
    folder = tmp_path / "recipe"
    shutil.copytree(REPO / "recipes" / "quickstart", folder)
    (folder / file).write_text(text)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    args = ["gradient-flow", str(folder / file)] if file == "gradient.yaml" else ["reproduce", str(folder)]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before  # nothing ran or wrote


def test_a_bad_model_argument_is_one_line_not_jsonargparse_s_dump(tiny_corpus, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["fit", "--config", "recipes/ptb/lstm_small.yaml", "--data.dataset", str(tiny_corpus),
                 "--model.init_args.cell", "banana", *FAST]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line or "Namespace" in line]
    assert err == ["seqzoo fit: error: bad model argument: unknown cell 'banana'; valid: rnn_tanh, rnn_relu, lstm, "
                   "gru"], err


def test_non_utf8_corpus_one_line(tmp_path, capsys):
    for s in ("train", "valid", "test"):
        (tmp_path / f"{s}.txt").write_bytes(b"ok \xff\xfe\n")
    assert main(["fit", "--config", str(REPO / "recipes/ptb/lstm_small.yaml"), "--data.dataset", str(tmp_path),
                 *FAST]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not UTF-8" in err[0]


def test_ngram_json(tiny_corpus, capsys, tmp_path):
    assert main(["ngram", "--dataset", str(tiny_corpus), "--order", "3", "--smoothing", "modified-kn", "--json",
                 "--save", str(tmp_path / "kn3")]) == 0
    r = json.loads(capsys.readouterr().out)
    from seqzoo.cli import run_evaluate
    saved = run_evaluate(str(tmp_path / "kn3"), str(tiny_corpus), "test")
    assert saved["perplexity"] == pytest.approx(r["perplexity"]["test"], rel=1e-6)
    assert json.loads((tmp_path / "kn3" / "config.json").read_text())["architecture"] == "kn3"
    assert set(r["perplexity"]) == {"valid", "test"} and r["seconds"] >= 0
    # a trigram KN model of this tiny repetitive language is far better than uniform over its 10 types
    assert 1 < r["perplexity"]["test"] < 10
    lines = (tiny_corpus / "test.txt").read_text().splitlines()
    assert r["tokens"]["test"] == sum(len(line.split()) + 1 for line in lines)


def test_ngram_stupid_backoff_has_no_perplexity(tiny_corpus, capsys):
    assert main(["ngram", "--dataset", str(tiny_corpus), "--smoothing", "stupid"]) == 1
    err = capsys.readouterr().err  # datasets' progress bars may come first; the error is one line, no traceback
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("seqzoo ngram: error: stupid backoff")


def test_stdin_that_is_not_utf8_is_one_clear_error(tmp_path, monkeypatch):
    """translate and heatmaps read stdin's bytes line by line: a bad byte names its line, whether Python's
    stdin would decode strictly or (C locale) into surrogates that fail later inside the tokenizer."""
    import io

    from seqzoo.data.corpora import read_stdin_lines
    from seqzoo.decoding import translate_main
    from seqzoo.heatmaps import main as heatmaps_main
    raw = "der Hund\n".encode() + b"\xff\xfe kaputt\r\nok\n"
    for errors in ("strict", "surrogateescape"):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", errors=errors))
        with pytest.raises(ValueError, match=r"^standard input is not UTF-8 text \(line 2, position 0\)$"):
            read_stdin_lines()
    assert read_stdin_lines(io.BytesIO("é\r\n\nb".encode())) == ["é", "", "b"]
    assert read_stdin_lines(io.StringIO("a\nb\n")) == ["a", "b"]
    folder = tiny_model("seq2seq_gru_bahdanau").save_pretrained(tmp_path / "s2s")
    for verb in (translate_main, lambda argv: heatmaps_main(argv[:1] + [str(tmp_path / "out")] + argv[1:])):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8",
                                                          errors="surrogateescape"))
        with pytest.raises((ValueError, SystemExit), match="line 2"):
            verb([str(folder), "--beam", "2"])
    assert not (tmp_path / "out").exists()


def test_translate_and_generate_reject_bad_numbers(tmp_path, monkeypatch):
    """A zero beam / batch / length was silently replaced by the default (or crashed in range()); each is now
    an error naming the flag, and the Python API names its argument."""
    import io

    from seqzoo.decoding import generate_main, translate_main
    from seqzoo.models.seq2seq import Seq2Seq
    folder = tiny_model("seq2seq_gru_bahdanau").save_pretrained(tmp_path / "s2s")
    for flag in ("--beam", "--n-best", "--batch-size", "--max-len"):
        monkeypatch.setattr("sys.stdin", io.StringIO("the cat\n"))
        with pytest.raises(ValueError, match=f"^{flag} must be >= 1, got 0$"):
            translate_main([str(folder), flag, "0"])
    model = Seq2Seq.from_net(tiny_model("seq2seq_gru_bahdanau"))
    for kw in ("beam_size", "batch_size", "max_len"):
        with pytest.raises(ValueError, match=f"^{kw} must be >= 1, got 0$"):
            model.translate(["the cat"], **{kw: 0})
    assert len(model.translate(["the cat"], beam_size=2, max_len=3)[0][0].split()) <= 3
    lm = tiny_model("lstm_lm_2x200").save_pretrained(tmp_path / "lm")
    with pytest.raises(ValueError, match="^--num-samples must be >= 1, got 0$"):
        generate_main([str(lm), "--num-samples", "0"])


def test_evaluate_reports_oov_and_refuses_a_corpus_the_vocab_does_not_cover(tiny_corpus, tmp_path, capsys):
    """A model scored on text whose words it mostly lacks reads them all as <unk> and gets a flattering
    perplexity: evaluate says what share that is, and over half is an error unless --allow-oov."""
    import seqzoo
    from seqzoo.cli import run_evaluate
    from seqzoo.data.vocab import Vocab
    assert main(["ngram", "--dataset", str(tiny_corpus), "--order", "3", "--save", str(tmp_path / "kn3")]) == 0
    other = tmp_path / "other"
    other.mkdir()
    for split in ("train", "valid", "test"):
        (other / f"{split}.txt").write_text("zebras graze by rivers\nthe cat\n")
    own = run_evaluate(str(tmp_path / "kn3"), str(tiny_corpus), "test")
    assert own["oov_rate"] == 0.0
    lm = tmp_path / "lm"
    seqzoo.save_pretrained(seqzoo.create_model("lstm_lm_2x200", vocab_size=14, embedding_size=8, hidden_size=8), lm,
                           vocab=Vocab.build([["the", "cat", "sat", "on", "mat", "dog", "log", "a", "saw", "w"]]))
    for model in (tmp_path / "kn3", lm):
        capsys.readouterr()
        assert main(["evaluate", str(model), "--dataset", str(other)]) == 1
        err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]  # (datasets' progress)
        assert len(err) == 1 and "66.7% of the words of" in err[0] and "--allow-oov" in err[0], err
        r = run_evaluate(str(model), str(other), "test", allow_oov=True)
        assert r["oov_rate"] == pytest.approx(4 / 6) and r["perplexity"] > 1


@pytest.mark.parametrize("name", ["seq2seq_gru_bahdanau", "bilstm_ctc_3x256", "bilstm_max_classifier_1x200",
                                  "bilstm_charlstm_tagger_2x200"])
def test_generate_and_evaluate_name_a_model_of_the_wrong_family(name, tiny_corpus, tmp_path, capsys):
    """generate on a translation / CTC / classifier / tagger checkpoint was a traceback from deep inside the
    model (or a misleading "no vocab"); evaluate on the last three, a shape error. Each is one line now; evaluate
    scores the last three (tests/test_predict.py), here on a corpus that is not theirs."""
    folder = str(tiny_model(name).save_pretrained(tmp_path / name))
    assert main(["generate", folder, "--prompt", "the cat"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a language model" in err[0], err
    if name.startswith("seq2seq"):
        assert "seqzoo translate" in err[0]
        return
    assert main(["evaluate", folder, "--dataset", str(tiny_corpus)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tiny_corpus) in err[0], err  # names the corpus it cannot read


def test_generate_prints_eos_as_a_line_break_even_at_the_end(tmp_path, monkeypatch, capsys):
    """A continuation that ended in <eos> printed a literal "<eos>" after its last word."""
    import seqzoo
    import seqzoo.decoding as decoding
    folder = tiny_model("lstm_lm_2x200").save_pretrained(tmp_path / "lm")
    vocab = seqzoo.from_pretrained(folder).vocab
    words = [w for w in vocab.itos if not w.startswith("<")][:3]
    row = vocab.encode(f"{words[0]} {words[1]}") + vocab.encode(words[2])    # each line ends in <eos>
    monkeypatch.setattr(decoding, "generate", lambda *a, **k: torch.tensor([row]))
    assert decoding.generate_main([str(folder), "--prompt", words[2]]) == 0
    assert capsys.readouterr().out == f"{words[2]} {words[0]} {words[1]}\n{words[2]}\n"


def test_a_ckpt_path_of_another_model_or_no_checkpoint_is_one_line(tmp_path, tiny_corpus, capsys, monkeypatch):
    """LightningCLI takes the sizes from the checkpoint's hyperparameters, but the vocabulary size is linked from
    the corpus: a checkpoint tested on a corpus of another vocabulary does not fit (Lightning's RuntimeError)."""
    monkeypatch.chdir(REPO)
    other = tmp_path / "other"
    other.mkdir()
    for split in ("train", "valid", "test"):
        (other / f"{split}.txt").write_text("\n".join(f"x{i} y{i} z{i}" for i in range(60)) + "\n")

    def run(verb, corpus, *extra):
        return main([verb, "--config", "recipes/ptb/lstm_small.yaml", "--data.dataset", str(corpus),
                     "--data.batch_size", "4", "--data.bptt", "8", "--model.init_args.embedding_size", "8",
                     "--model.init_args.hidden_size", "8", "--trainer.logger", "false", "--trainer.default_root_dir",
                     str(tmp_path / "run"), "--trainer.enable_progress_bar", "false",
                     "--trainer.enable_model_summary", "false", *extra])
    assert run("fit", tiny_corpus, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1") == 0
    ckpt = next((tmp_path / "run").rglob("*.ckpt"))
    (tmp_path / "fake.ckpt").write_bytes(b"not a pickle")
    capsys.readouterr()
    for corpus, path, message in [(other, ckpt, "--ckpt_path holds the weights of another model than this config's"),
                                  (tiny_corpus, tmp_path / "fake.ckpt", "--ckpt_path cannot be read as a Lightning")]:
        assert run("test", corpus, "--ckpt_path", str(path)) == 1
        err = [line for line in capsys.readouterr().err.splitlines() if "LightningCLI's args" not in line]
        assert err[-1].startswith("seqzoo test: error: " + message) and "Traceback" not in "".join(err), err
    assert run("test", tiny_corpus, "--ckpt_path", str(ckpt)) == 0


def test_generate_refuses_sampling_flags_with_greedy(capsys):
    """--greedy ignores them: saying so beats printing a continuation the user did not ask for."""
    for flags in (["--temperature", "0.5"], ["--top-k", "3", "--top-p", "0.9"]):
        assert main(["generate", "lstm_lm_2x200", "--greedy", *flags]) == 1  # refused before any model is looked up
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--greedy takes the most probable token" in err[0] and flags[0] in err[0], err


def test_finetune_tag_column_is_for_taggers_only(tmp_path, capsys):
    folder = str(tiny_model("bilstm_max_classifier_1x200").save_pretrained(tmp_path / "clf"))
    assert main(["finetune", folder, "--data", str(tmp_path / "sst"), "--tag-column", "xpos"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tag-column is for taggers; " in err[0] and "RNNClassifier" in err[0], err


def test_history_files_each_metric_under_the_epoch_it_measures(tiny_corpus, tmp_path):
    """results.json's per-epoch history: train perplexity (logged by the module after validation) and
    validation perplexity of epoch e are those the logger tagged with epoch e - 1 (0-based)."""
    import csv

    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    from seqzoo.data.lm import LanguageModelDataModule
    from seqzoo.models.rnn_lm import RNNLanguageModel
    from seqzoo.recipes import History

    L.seed_everything(0)
    dm = LanguageModelDataModule(str(tiny_corpus), batch_size=4, eval_batch_size=2, bptt=8)
    model = RNNLanguageModel(vocab_size=dm.vocab_size, embedding_size=16, hidden_size=16, num_layers=1, lr=5.0)
    history = History()
    trainer = L.Trainer(max_epochs=3, logger=CSVLogger(tmp_path), callbacks=[history], enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=dm)
    logged = {}
    for row in csv.DictReader(open(Path(trainer.log_dir) / "metrics.csv")):
        for key in ("train_perplexity", "valid_perplexity"):
            if row.get(key):
                logged[(int(row["epoch"]) + 1, key)] = float(row[key])
    assert [h["epoch"] for h in history.epochs] == [1, 2, 3]
    for h in history.epochs:
        for key in ("train_perplexity", "valid_perplexity"):
            assert h[key] == pytest.approx(logged[(h["epoch"], key)]), (h, logged)
    assert history.epochs[0]["train_perplexity"] > history.epochs[-1]["train_perplexity"]


def test_reproduce_resume_goes_on_from_the_last_checkpoint(tiny_corpus, tmp_path):
    """2 epochs at once; 1 epoch then --resume to 2; stopped inside epoch 2 then --resume: the same model, one row
    covering both parts. A row stopped inside an epoch says how much of it ran and validates where it stopped."""
    rows, firsts = {}, {}

    def reproduce(folder, flags, resume=False):
        assert main(["reproduce", str(folder), "--only", "lstm", *(["--resume"] if resume else []), "--",
                     "--data.dataset", str(tiny_corpus), "--trainer.default_root_dir", str(folder / "runs"),
                     "--trainer.enable_progress_bar", "false", "--data.batch_size", "2", "--data.bptt", "5",
                     *flags]) == 0
        return json.loads((folder / "results.json").read_text())["runs"][0]

    per_epoch = None
    for name, parts in (("once", [["--trainer.max_epochs", "2"]]),
                        ("twice", [["--trainer.max_epochs", "1"], ["--trainer.max_epochs", "2"]]),
                        ("stopped", [None, ["--trainer.max_epochs", "2"]])):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "lstm.yaml").write_text((REPO / "recipes/ptb/lstm_small.yaml").read_text())
        (folder / "recipe.yaml").write_text(yaml.safe_dump({"title": "t", "dataset": str(tiny_corpus),
                                                            "runs": [{"name": "lstm", "config": "lstm.yaml"}]}))
        if parts[0] is None:  # stop a quarter of the way into epoch 2
            parts[0] = ["--trainer.max_epochs", "2", "--trainer.max_steps", str(per_epoch + per_epoch // 4)]
        for i, flags in enumerate(parts):
            rows[name] = reproduce(folder, flags, resume=i > 0)
            if not i:
                firsts[name] = rows[name]
        if per_epoch is None:
            (ckpt,) = (folder / "runs").glob("lightning_logs/version_0/checkpoints/*.ckpt")
            per_epoch = int(ckpt.stem.split("step=")[1]) // 2
    once, twice, stopped = rows["once"], rows["twice"], rows["stopped"]
    assert twice["epochs"] == once["epochs"] == stopped["epochs"] == 2
    assert [h["epoch"] for h in twice["history"]] == [h["epoch"] for h in stopped["history"]] == [1, 2]
    for row in (twice, stopped):
        assert row["metrics"]["test_perplexity"] == pytest.approx(once["metrics"]["test_perplexity"], rel=1e-6)
    assert twice["history"][0] == firsts["twice"]["history"][0]
    assert twice["resumed_from"]["epochs"] == 1 and twice["resumed_from"]["checkpoint"].endswith(".ckpt")
    assert twice["wall_seconds"] >= firsts["twice"]["wall_seconds"]
    part = firsts["stopped"]
    assert part["epochs"] == round(1 + (per_epoch // 4) / per_epoch, 2) and part["epochs"] != 1
    assert part["history"][-1]["epoch"] == part["epochs"] and "valid_perplexity" in part["history"][-1]
    assert part["metrics"]["valid_perplexity"] == part["history"][-1]["valid_perplexity"]
    assert stopped["resumed_from"]["epochs"] == part["epochs"]


def test_a_resumed_row_keeps_the_first_parts_whole_epochs_before_the_second_part():
    from seqzoo.recipes import _merge_resumed
    prev = {"epochs": 2.25, "wall_seconds": 10.0, "device": "cpu",
            "history": [{"epoch": 1}, {"epoch": 2}, {"epoch": 2.25}]}
    for second, expected in (([{"epoch": 3}], [1, 2, 3]),  # finished the cut epoch
                             ([{"epoch": 2.5}], [1, 2, 2.5]),  # stopped inside it again
                             ([], [1, 2])):  # no history of its own
        run = _merge_resumed(dict(prev), Path("last.ckpt"), {"wall_seconds": 5.0, "history": second})
        assert [h["epoch"] for h in run["history"]] == expected
        assert run["wall_seconds"] == 15.0 and run["resumed_from"]["epochs"] == 2.25


def test_reproduce_resume_needs_an_earlier_run(tmp_path, capsys):
    folder = tmp_path / "recipe"
    folder.mkdir()
    (folder / "recipe.yaml").write_text(yaml.safe_dump({"title": "t", "runs": [{"name": "lstm", "config": "x"}]}))
    assert main(["reproduce", str(folder), "--resume"]) == 1
    assert "--resume needs --only NAME" in capsys.readouterr().err
    assert main(["reproduce", str(folder), "--only", "lstm", "--resume"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot resume 'lstm'" in err[0] and "no earlier run" in err[0], err


def test_every_recipe_folder_has_a_readme_that_names_real_runs_models_and_files():
    import re
    from seqzoo import list_models
    pretrained, archs = set(list_models(pretrained=True)), set(list_models())
    for folder in sorted(p for p in (REPO / "recipes").iterdir() if p.is_dir()):
        readme = folder / "README.md"
        assert readme.is_file(), f"{folder.name} has no README.md"
        text = readme.read_text()
        for recipe, name in re.findall(r"reproduce recipes/(\w+)[^\n`]*?--only (\w+)", text):
            runs = yaml.safe_load((REPO / "recipes" / recipe / "recipe.yaml").read_text())["runs"]
            assert name in [r["name"] for r in runs], (folder.name, recipe, name)
        for name in re.findall(r"`([a-z0-9_]+\.[a-z0-9_]+)`", text):  # arch.tag names
            if name.split(".")[0] in archs and name.split(".")[1] not in ("yaml", "json", "md", "py", "png"):
                assert name in pretrained, (folder.name, name)
        for link in re.findall(r"\]\(([^)#:]+)\)", text):  # relative links
            assert (folder / link).exists(), (folder.name, link)


@pytest.mark.parametrize("config", ["ptb/lstm_small.yaml", "ptb/window_lm.yaml"])
def test_fit_in_bf16_mixed_precision(config, tiny_corpus, tmp_path):
    """--trainer.precision bf16-mixed (what a GPU run would use) trains, with finite losses (a non-finite one
    stops training with an error): autocast on the CPU here."""
    cfg = REPO / "recipes" / config
    assert main(["fit", "--config", str(cfg), "--data.dataset", str(tiny_corpus), "--trainer.precision",
                 "bf16-mixed", "--trainer.max_steps", "3", "--trainer.default_root_dir", str(tmp_path), *FAST]) == 0


def test_translate_names_a_bad_device_in_one_line(tmp_path, capsys):
    folder = seqzoo.save_pretrained(tiny_model("seq2seq_gru_bahdanau"), tmp_path / "s2s")
    cuda = "CUDA device(s)" if torch.cuda.is_available() else "CUDA is not available"
    for device, message in (("cud", "unknown device"), ("cuda:7", cuda)):
        assert main(["translate", str(folder), "--device", device]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"--device {device}: {message}" in err[0], err
