"""Train the PTB "small" tanh RNN, LSTM and GRU (recipes/ptb/{rnn_small_lr5,lstm_small,gru_small}.yaml; lr 20 diverges
for the tanh RNN) for one epoch each,
so the gradient-flow profiles can be measured on trained weights as well as at initialisation.

    python recipes/gradient_flow/train_1epoch.py --data-dir ../shared/data [--epochs 1]

Each model is trained by Lightning (``seqzoo.recipes.run_fit``, the function ``seqzoo reproduce`` calls) and
exported to ``runs/gradient_flow/<name>/lightning_logs/version_0/seqzoo``, the folders that the ``*_1epoch``
rows of gradient_flow.yaml load. The runs (perplexities, wall time, device) go to ``trained_runs.json`` here.
"""
import argparse
import json
import os
from pathlib import Path

from seqzoo.recipes import _atomic_write, run_fit

HERE = Path(__file__).resolve().parent
MODELS = {"rnn_1epoch": "rnn_small_lr5.yaml", "lstm_1epoch": "lstm_small.yaml", "gru_1epoch": "gru_small.yaml"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.environ.get("SEQZOO_DATA"))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--only", nargs="*", default=list(MODELS))
    a = p.parse_args()
    out = HERE / "trained_runs.json"
    results = json.loads(out.read_text()) if out.exists() else {"runs": []}
    for name in a.only:
        config = HERE.parent / "ptb" / MODELS[name]
        run = run_fit(config, a.data_dir, ["--trainer.max_epochs", str(a.epochs), "--trainer.default_root_dir",
                                           f"runs/gradient_flow/{name}", "--trainer.enable_progress_bar", "false"])
        run["config"] = str(config.relative_to(HERE.parents[1]))
        results["runs"] = [r for r in results["runs"] if r["name"] != name] + [{"name": name, **run}]
        _atomic_write(out, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
