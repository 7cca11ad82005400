"""DDP on CPU (gloo, 2 processes) scores exactly what one process scores."""
import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    import lightning as L
    from seqzoo.data.lm import LanguageModelDataModule
    from seqzoo.models.rnn_lm import RNNLanguageModel

    corpus, devices, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    L.seed_everything(0)
    # batch_size is per process: 2 x 3 columns == 1 x 6 columns
    dm = LanguageModelDataModule(corpus, batch_size=6 // devices, eval_batch_size=6 // devices, bptt=4)
    model = RNNLanguageModel(vocab_size=dm.vocab_size, embedding_size=16, hidden_size=16, num_layers=1,
                             optimizer="adam", lr=0.01)
    trainer = L.Trainer(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
                        max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(model, datamodule=dm)
    m = trainer.validate(model, datamodule=dm, verbose=False)[0]
    if trainer.global_rank == 0:
        json.dump({"ppl": m["valid_perplexity"], "tokens": m["valid_tokens"],
                   "steps": trainer.global_step}, open(out, "w"))
""")


@pytest.mark.slow
def test_ddp_two_processes_equal_one(tiny_corpus, tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    results = {}
    for devices in (1, 2):
        out = tmp_path / f"out{devices}.json"
        subprocess.run([sys.executable, str(script), str(tiny_corpus), str(devices), str(out)], check=True,
                       capture_output=True, timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
        results[devices] = json.loads(out.read_text())
    one, two = results[1], results[2]
    assert one["steps"] == two["steps"]  # same number of optimiser steps: each rank reads half the columns
    assert two["tokens"] == one["tokens"] == sum(len(line.split()) + 1
                                                 for line in (tiny_corpus / "valid.txt").read_text().splitlines())
    # gradients are averaged over ranks, each with the mean over its own tokens: equal to one process's
    # mean when the ranks hold equally many tokens, so the trained weights agree to float tolerance
    assert two["ppl"] == pytest.approx(one["ppl"], rel=1e-4)


TRANSLATION = textwrap.dedent("""
    import json, sys
    import lightning as L, torch
    from seqzoo.data.translation import TranslationDataModule
    from seqzoo.models.seq2seq import Seq2Seq

    data, weights, devices, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    dm = TranslationDataModule(data, "src", "tgt", tokenization="word", vocab_size=50, min_frequency=1,
                               batch_size=16, eval_batch_size=7)
    model = Seq2Seq(dm.src_vocab_size, dm.tgt_vocab_size, src_tokenizer=dm.src_tokenizer_json,
                    tgt_tokenizer=dm.tgt_tokenizer_json, **json.loads(sys.argv[5]))
    model.load_state_dict(torch.load(weights))
    kw = dict(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto", logger=False,
              enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer = L.Trainer(**kw)
    m = trainer.validate(model, datamodule=dm, verbose=False)[0]
    mine = [int(i) for b in dm.val_dataloader().dataset.batches for i in b]  # the pairs this rank scored
    trainer = L.Trainer(max_steps=3, limit_val_batches=0, **kw)
    trainer.fit(model, datamodule=dm)  # DDP training runs: each rank its own batches
    json.dump({"bleu": m["valid_bleu"], "mine": mine, "steps": trainer.global_step},
              open(f"{out}.{trainer.global_rank}", "w"))
""")


@pytest.mark.slow
def test_ddp_translation_bleu_is_exact_over_ranks(tmp_path):
    """Corpus BLEU with 2 processes, each scoring its own half of the validation set, equals 1 process's."""
    import os
    from pathlib import Path
    import lightning as L
    import torch
    sys.path.insert(0, str(Path(__file__).parent / "models"))
    from test_seq2seq import _model, _synthetic, _trainer
    from seqzoo.data.translation import TranslationDataModule
    L.seed_everything(0)
    data = _synthetic(tmp_path / "copy", "copy", n_train=600)
    dm = TranslationDataModule(str(data), "src", "tgt", tokenization="word", vocab_size=50, min_frequency=1,
                               batch_size=16, eval_batch_size=7)
    args = dict(cell="gru", attention="bahdanau", embedding_size=32, hidden_size=64, dropout=0.0,
                label_smoothing=0.0, lr=3e-3)
    model = _model(dm, **{k: v for k, v in args.items()})
    _trainer(2, gradient_clip_val=1.0, limit_val_batches=0).fit(model, datamodule=dm)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    script = tmp_path / "ddp_translate.py"
    script.write_text(TRANSLATION)
    runs = {}
    for devices in (1, 2):
        out = tmp_path / f"t{devices}"
        subprocess.run([sys.executable, str(script), str(data), str(tmp_path / "w.pt"), str(devices), str(out),
                        json.dumps(args)], check=True, capture_output=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
        runs[devices] = [json.loads(Path(f"{out}.{r}").read_text()) for r in range(devices)]
    one, two = runs[1][0], runs[2]
    n_valid = len((data / "valid.src").read_text().splitlines())
    assert sorted(one["mine"]) == list(range(n_valid))
    assert sorted(two[0]["mine"] + two[1]["mine"]) == list(range(n_valid))  # disjoint halves, all scored once
    assert two[0]["mine"] and two[1]["mine"]
    assert 10 < one["bleu"] < 100 and two[0]["bleu"] == pytest.approx(one["bleu"], abs=1e-4) == two[1]["bleu"]
    assert one["steps"] == two[0]["steps"] == 3


@pytest.mark.slow
def test_reproduce_on_two_processes_writes_one_row_from_rank_zero(tiny_corpus, tmp_path):
    """`seqzoo reproduce RECIPE -- --trainer.devices 2` (the README's multi-GPU command, here on CPU with gloo):
    every rank runs the recipe (its n-gram run too) and trains; only rank 0 exports and writes. (It crashed:
    rank 0 alone asked the trainer for log_dir, a collective, while rank 1 wrote a row without a model.)"""
    import os
    from pathlib import Path

    import yaml
    repo = Path(__file__).resolve().parents[1]
    folder = tmp_path / "recipe"
    folder.mkdir()
    (folder / "lstm.yaml").write_text((repo / "recipes/ptb/lstm_small.yaml").read_text())
    (folder / "recipe.yaml").write_text(yaml.safe_dump({"title": "t", "dataset": str(tiny_corpus), "runs": [
        {"name": "lstm", "config": "lstm.yaml"}, {"name": "kn3", "kind": "ngram", "order": 3}]}))
    cmd = [sys.executable, "-m", "seqzoo.cli", "reproduce", str(folder), "--", "--data.dataset", str(tiny_corpus),
           "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--trainer.devices", "2",
           "--trainer.strategy", "ddp", "--trainer.enable_progress_bar", "false", "--data.batch_size", "3",
           "--model.init_args.hidden_size", "16", "--model.init_args.embedding_size", "16"]
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    runs = json.loads((folder / "results.json").read_text())["runs"]
    assert [r["name"] for r in runs] == ["lstm", "kn3"]
    assert runs[0]["device"].startswith("2 x cpu: ") and runs[0]["metrics"]["test_perplexity"] > 1
    assert (tmp_path / runs[0]["export_dir"] / "model.safetensors").is_file()
    assert (folder / "results.md").is_file()
