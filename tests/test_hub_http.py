"""push_to_hub / from_pretrained over real HTTP, against the in-memory Hub of tests/hub_server.py.

huggingface_hub reads HF_ENDPOINT (and HF_HUB_OFFLINE) once, at import, and other test files import it first;
so the client side runs in a subprocess started with the fake Hub's address in its environment. One worker
process serves the whole module (importing torch + seqzoo costs seconds): each test sends it a snippet to exec
and gets back the snippet's ``RESULT`` as JSON. The offline test starts a second process with HF_HUB_OFFLINE=1.
"""
import json
import os
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hub_server import FakeHub  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MARK = "@@seqzoo-test-result@@ "

WORKER = r'''
import json, sys, traceback
MARK = sys.argv[1]
ns = {}
for line in sys.stdin:
    try:
        exec(json.loads(line), ns)
        out = {"ok": True, "result": ns.pop("RESULT", None)}
    except BaseException as e:  # report, keep serving
        out = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    sys.stdout.write(MARK + json.dumps(out) + "\n")
    sys.stdout.flush()
sys.stdout.flush()
import os
os._exit(0)  # stdin closed: leave now, without waiting for library threads
'''

# Shared by every snippet: tiny models and what they compute (tests/tiny_models.py).
PRELUDE = r'''
import json, math, sys, torch, seqzoo
sys.path.insert(0, "tests")
from seqzoo import hub
from seqzoo.models.rnn_lm import RNNLM
from tiny_models import outputs, same, tiny_model as tiny, vocabularies, word_vocab

def vocab50():
    return word_vocab(50)
'''


class Client:
    """A Python subprocess whose huggingface_hub talks to the fake Hub."""

    def __init__(self, env: dict, stderr_path: Path):
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen([sys.executable, "-u", "-c", WORKER, MARK], cwd=REPO, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(stderr_path, "w"))
        self.run(PRELUDE)

    def run(self, code: str, timeout: float = 120.0):
        """Exec ``code`` in the worker; return its ``RESULT``; an exception there fails the test here."""
        r = self.send(code, timeout)
        if not r["ok"]:
            pytest.fail(f"worker raised {r['error']}\n{r['traceback']}", pytrace=False)
        return r["result"]

    def error(self, code: str, timeout: float = 120.0) -> str:
        """Exec ``code``, which must raise; return ``"Type: message"``."""
        r = self.send(code, timeout)
        assert not r["ok"], f"expected an exception, got RESULT = {r['result']!r}"
        return r["error"]

    def send(self, code: str, timeout: float) -> dict:
        self.proc.stdin.write(json.dumps(textwrap.dedent(code)) + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.close()
                pytest.fail(f"worker timed out after {timeout} s\n{self.stderr_tail()}", pytrace=False)
            line = self.proc.stdout.readline()
            if not line:
                pytest.fail(f"worker died (rc {self.proc.poll()})\n{self.stderr_tail()}", pytrace=False)
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])

    def stderr_tail(self) -> str:
        return self.stderr_path.read_text()[-3000:]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def client_env(hub: FakeHub, home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(home), HF_TOKEN="dummy", HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_DATASETS_OFFLINE="1",
               HF_DATASETS_CACHE=str(home / "datasets"), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               PYTHONWARNINGS="ignore", TOKENIZERS_PARALLELISM="false", **extra)
    return env


class _Payload:
    """Unpickling this creates a file: stands for any code a malicious checkpoint would run."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def server():
    with FakeHub() as h:
        yield h


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("hf-home")


@pytest.fixture(scope="module")
def client(server, home):
    c = Client(client_env(server, home), home / "worker.stderr")
    endpoint = c.run("from huggingface_hub import constants\nRESULT = constants.ENDPOINT")
    assert endpoint == server.url, "HF_ENDPOINT was not honoured"
    yield c
    c.close()


def commits_to(server: FakeHub, repo_id: str) -> int:
    return sum(1 for m, p in server.requests if m == "POST" and p.startswith(f"/api/models/{repo_id}/commit/"))


# -- round trips -------------------------------------------------------------------------------------
def test_push_and_pull_every_registered_model(client, server):
    r = client.run("""
        RESULT = {}
        for name in hub.hub_models():
            m = tiny(name)
            info = m.push_to_hub(f"tester/{name}")  # the method every model class has
            back = seqzoo.from_pretrained(f"tester/{name}")
            RESULT[name] = {"same": same(outputs(m), outputs(back)), "oid": info.oid, "url": str(info),
                            "type": type(back).__name__ == type(m).__name__,
                            "vocab": hasattr(m, "config") and vocabularies(back) == vocabularies(m)}
    """)
    from seqzoo.hub import hub_models
    assert sorted(r) == hub_models()
    for name, got in r.items():
        repo = f"tester/{name}"
        assert got["same"] and got["type"], name
        assert got["oid"] == server.branches[repo]["main"] and got["url"].endswith(f"/{repo}/commit/{got['oid']}")
        assert len(server.history[repo]) == 2 and commits_to(server, repo) == 1  # created, then ONE commit
        cfg = json.loads(server.files(repo)["config.json"])
        ngram = cfg["family"] == "ngram"
        weights = {"model.arpa"} if ngram else {"model.safetensors"} | {e["file"] for e in cfg["vocabularies"].values()}
        assert set(server.files(repo)) == {".gitattributes", "config.json", "README.md"} | weights, name
        assert ngram or got["vocab"], name


def test_tied_weights_over_http(client):
    assert client.run("""
        m = seqzoo.create_model("lstm_lm_2x200", vocab_size=50, embedding_size=16, hidden_size=16,
                                tie_weights=True).eval()
        hub.push_to_hub(m, "tester/tied")
        back = seqzoo.from_pretrained("hf-hub:tester/tied")
        RESULT = [back.decoder.weight is back.embed.weight, same(outputs(m), outputs(back))]
    """) == [True, True]


def test_revision_pinning_branches_and_prefixes(client, server):
    r = client.run("""
        m1, m2 = tiny("lstm_lm_2x200", seed=1), tiny("lstm_lm_2x200", seed=2)
        c1 = hub.push_to_hub(m1, "tester/pin", vocab=vocab50(), commit_message="first").oid
        c2 = hub.push_to_hub(m2, "tester/pin", vocab=vocab50(), commit_message="second").oid
        c3 = hub.push_to_hub(m1, "tester/pin", vocab=vocab50(), revision="v1").oid
        o1, o2 = outputs(m1), outputs(m2)
        RESULT = {"c1": c1, "c2": c2, "c3": c3, "differ": not same(o1, o2),
                  "pinned_c1": same(o1, outputs(seqzoo.from_pretrained("tester/pin", revision=c1))),
                  "main": same(o2, outputs(seqzoo.from_pretrained("tester/pin"))),
                  "hf_hub": same(o2, outputs(seqzoo.from_pretrained("hf-hub:tester/pin"))),
                  "branch": same(o1, outputs(seqzoo.from_pretrained("tester/pin", revision="v1"))),
                  "local_only": same(o2, outputs(seqzoo.from_pretrained("tester/pin", local_files_only=True)))}
    """)
    assert r.pop("differ") and all(r.pop(k) for k in ("pinned_c1", "main", "hf_hub", "branch", "local_only"))
    assert len({r["c1"], r["c2"], r["c3"]}) == 3
    assert server.history["tester/pin"][1:] == [r["c1"], r["c2"], r["c3"]]
    assert server.branches["tester/pin"] == {"main": r["c2"], "v1": r["c3"]}
    assert server.messages[r["c1"]] == "first" and server.messages[r["c2"]] == "second"
    assert ("GET", f"/tester/pin/resolve/{r['c1']}/model.safetensors") in server.requests  # the pinned bytes


def test_offline_loading_from_the_cache(client, server, home):
    c1 = client.run(f"""
        m1, m2 = tiny("gru_lm_2x200", seed=1), tiny("gru_lm_2x200", seed=2)
        c1 = hub.push_to_hub(m1, "tester/offline", vocab=vocab50()).oid
        hub.push_to_hub(m2, "tester/offline", vocab=vocab50())
        seqzoo.from_pretrained("tester/offline"), seqzoo.from_pretrained("tester/offline", revision=c1)  # cache both
        hub.save_pretrained(m1, "{home}/expected_c1", vocab=vocab50())
        hub.save_pretrained(m2, "{home}/expected_main", vocab=vocab50())
        RESULT = c1
    """)
    before = len(server.requests)
    offline = Client(client_env(server, home, HF_HUB_OFFLINE="1"), home / "offline.stderr")
    try:
        r = offline.run(f"""
            from huggingface_hub import constants
            RESULT = {{"offline": constants.HF_HUB_OFFLINE,
                      "main": same(outputs(seqzoo.from_pretrained("{home}/expected_main")),
                                   outputs(seqzoo.from_pretrained("tester/offline"))),
                      "c1": same(outputs(seqzoo.from_pretrained("{home}/expected_c1")),
                                 outputs(seqzoo.from_pretrained("tester/offline", revision="{c1}")))}}
        """)
        err = offline.error('seqzoo.from_pretrained("tester/never-downloaded")')
    finally:
        offline.close()
    assert r == {"offline": True, "main": True, "c1": True}
    assert err.startswith("FileNotFoundError: tester/never-downloaded@main is not in the local cache")
    assert len(server.requests) == before  # not one request reached the server


def test_registered_tag_resolves_to_its_hub_id(client, server):
    r = client.run("""
        from seqzoo.registry import get_pretrained_cfg
        repo = get_pretrained_cfg("lstm_lm_2x200.ptb_zaremba").hf_hub_id
        m = tiny("lstm_lm_2x200", seed=3)
        hub.push_to_hub(m, repo, vocab=vocab50())
        RESULT = {"repo": repo,
                  "from_pretrained": same(outputs(m), outputs(seqzoo.from_pretrained("lstm_lm_2x200.ptb_zaremba"))),
                  "create_model": same(outputs(m), outputs(seqzoo.create_model("lstm_lm_2x200.ptb_zaremba")))}
    """)
    assert r == {"repo": "seqzoo/lstm_lm_2x200.ptb_zaremba", "from_pretrained": True, "create_model": True}
    assert ("GET", "/api/models/seqzoo/lstm_lm_2x200.ptb_zaremba/revision/main") in server.requests


# -- errors over HTTP --------------------------------------------------------------------------------
def test_missing_repo_or_revision_is_a_one_line_error(client):
    err = client.error('seqzoo.from_pretrained("tester/does-not-exist")')
    assert err.startswith("FileNotFoundError: cannot get tester/does-not-exist@main from the Hub: "
                          "RepositoryNotFoundError")
    client.run('hub.push_to_hub(tiny("gru_lm_2x200"), "tester/onebranch")')
    err = client.error('seqzoo.from_pretrained("tester/onebranch", revision="no-such-branch")')
    assert err.startswith("FileNotFoundError: cannot get tester/onebranch@no-such-branch from the Hub: "
                          "RevisionNotFoundError")


def test_truncated_weights_on_the_hub_are_a_clear_error(client, server):
    client.run('hub.push_to_hub(tiny("gru_lm_2x200"), "tester/corrupt", vocab=vocab50())')
    good = server.files("tester/corrupt")["model.safetensors"]
    server.put_files("tester/corrupt", {"model.safetensors": good[: len(good) // 2]})
    err = client.error('seqzoo.from_pretrained("tester/corrupt")')
    assert err.startswith("ValueError: ") and "model.safetensors is corrupted or truncated" in err


def test_pickle_weights_on_the_hub_are_not_fetched_or_run(client, server, tmp_path):
    import torch
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.bin"
    torch.save({"state_dict": {"net.embed.weight": _Payload(str(marker))}, "hyper_parameters": {"cell": "lstm"}},
               evil)
    server.create_repo("tester/pickle-only")
    server.put_files("tester/pickle-only", {"pytorch_model.bin": evil.read_bytes()})
    fetched = lambda: [p for m, p in server.requests if m == "GET" and p.endswith("/pytorch_model.bin")]  # noqa: E731
    err = client.error('seqzoo.from_pretrained("tester/pickle-only")')
    assert err.startswith("FileNotFoundError: tester/pickle-only has no config.json") and "trust_pickle" in err
    assert fetched() == []
    err = client.error('seqzoo.from_pretrained("tester/pickle-only", trust_pickle=True)')
    assert "weights_only=True" in err and "which is not a tensor" in err
    assert len(fetched()) == 1 and not marker.exists()  # fetched with the flag, read safely, never run


def test_invalid_card_metadata_is_rejected_before_any_commit(client, server):
    err = client.error('hub.push_to_hub(tiny("gru_lm_2x200"), "tester/badcard", card="---\\n- a list\\n---\\n# x\\n")')
    assert "Invalid metadata in README.md" in err
    assert ("POST", "/api/validate-yaml") in server.requests and commits_to(server, "tester/badcard") == 0


# -- CLI -----------------------------------------------------------------------------------------------
def test_cli_push_and_evaluate(client, server, home, tiny_corpus):
    r = client.run(f"""
        import contextlib, io
        from seqzoo.cli import main
        from seqzoo.data.lm import LanguageModelDataModule
        dm = LanguageModelDataModule("{tiny_corpus}")
        m = seqzoo.create_model("lstm_lm_2x200", vocab_size=dm.vocab_size, embedding_size=8, hidden_size=8).eval()
        folder = hub.save_pretrained(m, "{home}/cli_ckpt", vocab=dm.vocab, card="---\\nlicense: mit\\n---\\n# mine\\n")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc_push = main(["push", str(folder), "--repo-id", "tester/cli", "--private", "--message", "cli push"])
            rc_eval = main(["evaluate", "tester/cli", "--dataset", "{tiny_corpus}", "--json"])
            rc_bad = main(["push", "{home}/nope", "--repo-id", "tester/cli"])
        lines = out.getvalue().splitlines()
        RESULT = {{"rc": [rc_push, rc_eval, rc_bad], "pushed": lines[0], "eval": json.loads(lines[1]),
                  "err": err.getvalue().strip()}}
    """)
    assert r["rc"] == [0, 0, 1]
    sha = server.branches["tester/cli"]["main"]
    assert r["pushed"].endswith(f"/tester/cli/commit/{sha}") and server.messages[sha] == "cli push"
    assert server.repos["tester/cli"]["private"] is True and commits_to(server, "tester/cli") == 1
    assert server.files("tester/cli")["README.md"] == b"---\nlicense: mit\n---\n# mine\n"  # the folder's card kept
    assert r["eval"]["tokens"] == sum(len(line.split()) + 1 for line in
                                      (tiny_corpus / "test.txt").read_text().splitlines())
    assert 1.0 < r["eval"]["perplexity"] < 1000
    assert r["err"].splitlines()[-1].startswith("seqzoo push: error: checkpoint not found")  # one line


def test_cli_push_to_an_unreachable_or_refusing_hub_is_one_line(server, home):
    """No network (nothing listens at HF_ENDPOINT) or no token (the Hub answers 401): `seqzoo push` says so in one
    line and exits 1, instead of a traceback; nothing is committed."""
    import socket
    from types import SimpleNamespace
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = SimpleNamespace(url=f"http://127.0.0.1:{s.getsockname()[1]}")
    no_token = {k: v for k, v in client_env(server, home).items() if k != "HF_TOKEN"}
    snippet = f"""
        import contextlib, io
        from seqzoo.cli import main
        folder = hub.save_pretrained(tiny("gru_lm_2x200"), "{home}/push_fail", vocab=vocab50())
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(["push", str(folder), "--repo-id", "tester/refused"])
        RESULT = [rc, err.getvalue().strip()]
    """
    results = []
    for env, name in ((client_env(closed, home), "closed"), (no_token, "notoken")):
        c = Client(env, home / f"{name}.stderr")
        try:
            results.append(c.run(snippet))
        finally:
            c.close()
    (rc1, err1), (rc2, err2) = results
    assert rc1 == 1 and len(err1.splitlines()) == 1, err1
    assert err1.startswith("seqzoo push: error: cannot push to tester/refused: the Hub cannot be reached (")
    assert rc2 == 1 and len(err2.splitlines()) == 1, err2
    assert err2.startswith("seqzoo push: error: cannot push to tester/refused: the Hub refused (401)")
    assert commits_to(server, "tester/refused") == 0
