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
