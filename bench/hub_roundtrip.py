"""Round trip of the trained PTB LSTM through a local Hub server.

    python bench/hub_roundtrip.py   (after `seqzoo reproduce recipes/ptb --only lstm_small` and the export)

Push the PTB LSTM checkpoint to a local Hub server, pull it back, evaluate both (test split)."""
import json, os, sys, tempfile, time
sys.path.insert(0, "tests")
from hub_server import FakeHub
server = FakeHub().start()
os.environ.update(HF_ENDPOINT=server.url, HF_HOME=tempfile.mkdtemp(), HF_TOKEN="dummy", HF_HUB_DISABLE_TELEMETRY="1")
from seqzoo.cli import run_evaluate, run_push
folder = "runs/ptb/lstm_small/seqzoo"
local = run_evaluate(folder, "ptb", "test", "../shared/data")
t = time.perf_counter(); info = run_push(folder, "seqzoo/lstm_lm_2x200.ptb_zaremba"); push_s = time.perf_counter() - t
pulled = run_evaluate("hf-hub:seqzoo/lstm_lm_2x200.ptb_zaremba", "ptb", "test", "../shared/data")
print(json.dumps({"local": local, "pulled": pulled, "push_seconds": round(push_s, 2), "commit": info.oid}, indent=1))
