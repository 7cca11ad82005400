"""Round trip of exported checkpoints through a local Hub server.

    python bench/hub_roundtrip.py FOLDER REPO_ID [FOLDER REPO_ID ...]
    e.g.  python bench/hub_roundtrip.py runs/ptb/kn5/seqzoo seqzoo/kn5.ptb
          python bench/hub_roundtrip.py --dataset multi30k --langs de en \\
              runs/multi30k/gru_bahdanau_de_en_cpu_15ep/lightning_logs/version_0/seqzoo \\
              seqzoo/seq2seq_gru_bahdanau_256.multi30k_de_en

(after `seqzoo reproduce recipes/<dataset> --only ...`, which exports each trained model to a seqzoo folder).
Each folder is evaluated on the test split (--split) with `seqzoo evaluate` (language models: perplexity; translation
models, --langs: BLEU / chrF with beam 5; taggers: accuracy, e.g. --dataset ud-english-ewt --recipe ud_ewt),
pushed with `seqzoo push` to the local Hub HTTP server of tests/hub_server.py, pulled back through
huggingface_hub and evaluated again. Each round trip replaces its entry (by repo id) in
recipes/<recipe>/hub_roundtrip.json."""
import argparse, json, os, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, "tests")
from hub_server import FakeHub

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("pairs", nargs="+", metavar="FOLDER REPO_ID")
p.add_argument("--dataset", default="ptb", help="named corpus of the recipe (default: ptb)")
p.add_argument("--recipe", default=None, help="recipe folder under recipes/ (default: the dataset's name)")
p.add_argument("--split", default="test", help="split to score (default: test; SST-2: valid)")
p.add_argument("--langs", nargs=2, default=(None, None), metavar=("SRC", "TGT"), help="translation models")
p.add_argument("--data-dir", default="../shared/data")
a = p.parse_args()
if len(a.pairs) % 2:
    p.error("give FOLDER REPO_ID pairs")
# A 5-gram ARPA file is ~90 MB; the fake Hub takes every file inline ("regular" uploads; the real Hub would ask
# for LFS / xet above 10 MB, a path tests/hub_server.py does not speak), so its body limit is raised here.
server = FakeHub(max_body=1 << 30, timeout=300).start()
os.environ.update(HF_ENDPOINT=server.url, HF_HOME=tempfile.mkdtemp(), HF_TOKEN="dummy", HF_HUB_DISABLE_TELEMETRY="1")
from seqzoo.cli import run_evaluate, run_push
from seqzoo.recipes import device_name

out = Path("recipes") / (a.recipe or a.dataset) / "hub_roundtrip.json"
old = json.loads(out.read_text()) if out.exists() else {"runs": []}
runs = old["runs"] if "runs" in old else [old]  # the first round trip was written as one object


def evaluate(model):
    return run_evaluate(model, a.dataset, a.split, a.data_dir, src_lang=a.langs[0], tgt_lang=a.langs[1])


def scores(r):  # what must survive the round trip: everything but the model's name and the time taken
    return {k: v for k, v in r.items() if k not in ("model", "seconds")}


for folder, repo in zip(a.pairs[::2], a.pairs[1::2]):
    local = evaluate(folder)
    t = time.perf_counter()
    info = run_push(folder, repo)
    push_s = time.perf_counter() - t
    pulled = evaluate(f"hf-hub:{repo}")
    run = {"repo_id": repo, "command": "python " + " ".join(sys.argv), "local": local, "pulled": pulled,
           "identical": scores(local) == scores(pulled), "push_seconds": round(push_s, 2), "commit": info.oid,
           "device": device_name()}
    print(json.dumps(run, indent=1))
    runs = [r for r in runs if r.get("repo_id", r.get("pulled", {}).get("model", "").removeprefix("hf-hub:")) != repo] + [run]
out.write_text(json.dumps({"what": "exported checkpoints evaluated, pushed to a local Hub HTTP server "
                                   "(tests/hub_server.py) with seqzoo push, pulled with huggingface_hub, evaluated again",
                           "runs": runs}, indent=1) + "\n")
