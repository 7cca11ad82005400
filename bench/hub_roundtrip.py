"""Round trip of exported PTB checkpoints through a local Hub server.

    python bench/hub_roundtrip.py FOLDER REPO_ID [FOLDER REPO_ID ...]
    e.g.  python bench/hub_roundtrip.py runs/ptb/kn5/seqzoo seqzoo/kn5.ptb

(after `seqzoo reproduce recipes/ptb --only ...`, which exports each trained model to runs/ptb/NAME/seqzoo).
Each folder is evaluated on the PTB test split, pushed with `seqzoo push` to the local Hub HTTP server of
tests/hub_server.py, pulled back through huggingface_hub and evaluated again. Each round trip replaces its
entry (by repo id) in recipes/ptb/hub_roundtrip.json."""
import json, os, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, "tests")
from hub_server import FakeHub
# A 5-gram ARPA file is ~90 MB; the fake Hub takes every file inline ("regular" uploads; the real Hub would ask
# for LFS / xet above 10 MB, a path tests/hub_server.py does not speak), so its body limit is raised here.
server = FakeHub(max_body=1 << 30, timeout=300).start()
os.environ.update(HF_ENDPOINT=server.url, HF_HOME=tempfile.mkdtemp(), HF_TOKEN="dummy", HF_HUB_DISABLE_TELEMETRY="1")
from seqzoo.cli import run_evaluate, run_push
from seqzoo.recipes import device_name

out = Path("recipes/ptb/hub_roundtrip.json")
old = json.loads(out.read_text()) if out.exists() else {"runs": []}
runs = old["runs"] if "runs" in old else [old]  # the first round trip was written as one object
args = sys.argv[1:]
for folder, repo in zip(args[::2], args[1::2]):
    local = run_evaluate(folder, "ptb", "test", "../shared/data")
    t = time.perf_counter()
    info = run_push(folder, repo)
    push_s = time.perf_counter() - t
    pulled = run_evaluate(f"hf-hub:{repo}", "ptb", "test", "../shared/data")
    run = {"repo_id": repo, "command": f"python bench/hub_roundtrip.py {folder} {repo}", "local": local,
           "pulled": pulled, "identical": local["perplexity"] == pulled["perplexity"] and local["tokens"] == pulled["tokens"],
           "push_seconds": round(push_s, 2), "commit": info.oid, "device": device_name()}
    print(json.dumps(run, indent=1))
    runs = [r for r in runs if r.get("repo_id", r.get("pulled", {}).get("model", "").removeprefix("hf-hub:")) != repo] + [run]
out.write_text(json.dumps({"what": "exported checkpoints evaluated, pushed to a local Hub HTTP server "
                                   "(tests/hub_server.py) with seqzoo push, pulled with huggingface_hub, evaluated again",
                           "runs": runs}, indent=1) + "\n")
