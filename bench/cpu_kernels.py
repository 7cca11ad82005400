"""How far torch's CPU kernels alone move a trained result: not a speed benchmark.

Trains and tests one recipe config (default: the quickstart LSTM, ~40 s a run on 2 cores) once per vector ISA that
torch can use here, each in a fresh process with ``ATEN_CPU_CAPABILITY`` set: same code, packages, data and seed,
only the kernels differ. On one kernel set two runs are identical; across kernel sets the floating-point sums
differ and SGD carries the difference on, so a row reproduced on another CPU lands near, not on, the recorded one.

    python bench/cpu_kernels.py          # -> bench/results/cpu_kernels.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ONE_RUN = """
import json, sys
from seqzoo.recipes import run_fit
r = run_fit(sys.argv[1], None, ["--trainer.default_root_dir", sys.argv[2], "--trainer.enable_checkpointing", "false",
                                "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"])
print(json.dumps({"device": r["device"], "metrics": r["metrics"], "epochs": r["epochs"],
                  "wall_seconds": r["wall_seconds"], "history": r["history"]}))
"""


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="recipes/quickstart/lstm.yaml")
    p.add_argument("--isa", nargs="+", default=["avx512", "avx2", "default"],
                   help="ATEN_CPU_CAPABILITY values; one this CPU lacks falls back to the best it has")
    p.add_argument("--out", default="bench/results/cpu_kernels.json")
    a = p.parse_args(argv)
    from seqzoo.recipes import software_versions

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for isa in a.isa:
            env = {**os.environ, "ATEN_CPU_CAPABILITY": isa, "PYTHONWARNINGS": "ignore"}
            done = subprocess.run([sys.executable, "-c", ONE_RUN, a.config, str(Path(tmp) / isa)], env=env,
                                  capture_output=True, text=True, check=True)
            run = {"ATEN_CPU_CAPABILITY": isa, **json.loads(done.stdout.strip().splitlines()[-1])}
            runs.append(run)
            print(f"{isa}: {run['device']}: test {run['metrics']}")
    out = {"config": a.config, "command": "python bench/cpu_kernels.py " + " ".join(argv or sys.argv[1:]),
           "software": software_versions(), "runs": runs}
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
