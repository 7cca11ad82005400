"""The demo checkpoint shipped inside the package: it loads with no network, is a trained model, and is the
model of its recipe row."""
import json
import math

import pytest
import torch

import seqzoo
from seqzoo import hub
from seqzoo.decoding import generate_main
from seqzoo.registry import get_pretrained_cfg
from tests.conftest import REPO

DEMO = "char_lstm_lm_2x256.tinyshakespeare"
# Romeo and Juliet II.2 (public domain; not in Tiny Shakespeare, which has no Romeo and Juliet).
VERSE = ["But, soft! what light through yonder window breaks?",
         "It is the east, and Juliet is the sun.",
         "Arise, fair sun, and kill the envious moon,",
         "Who is already sick and pale with grief,"]


@pytest.fixture
def no_hub(monkeypatch):
    """Any attempt to reach the Hub fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"the Hub was asked for {args[0]!r}")
    monkeypatch.setattr(hub, "_download", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _char_perplexity(net, lines) -> float:
    vocab = net.vocab
    ids = [vocab.eos_id] + [i for line in lines for i in vocab.encode(line, add_eos=True)]
    x = torch.tensor([ids])
    with torch.no_grad():
        logits, _ = net(x[:, :-1])
    return math.exp(torch.nn.functional.cross_entropy(logits[0], x[0, 1:]).item())


def test_shipped_demo_weights_stay_under_5_mb():
    files = [p for p in hub.PACKAGED_DIR.rglob("*") if p.is_file()]
    assert files, f"nothing shipped in {hub.PACKAGED_DIR}"
    assert sum(p.stat().st_size for p in files) <= 5 * 2**20


def test_demo_loads_offline_by_name_and_is_trained(no_hub):
    net = seqzoo.from_pretrained(DEMO)
    assert type(net).__name__ == "RNNLM" and net.vocab.level == "char"
    assert seqzoo.create_model(DEMO).state_dict()["decoder.weight"].equal(net.state_dict()["decoder.weight"])
    trained = _char_perplexity(net, VERSE)
    untrained = _char_perplexity(_with_vocab(net), VERSE)
    assert untrained > 40, untrained             # about the 69-symbol vocabulary
    assert trained < 8, trained                  # English verse it has never read


def _with_vocab(net):
    fresh = seqzoo.create_model("char_lstm_lm_2x256", vocab_size=len(net.vocab)).eval()
    fresh.vocab = net.vocab
    return fresh


def test_a_revision_asks_the_hub_not_the_shipped_copy(monkeypatch):
    asked = []

    def record(repo_id, revision, *args):
        asked.append((repo_id, revision))
        raise ConnectionError("offline")
    monkeypatch.setattr(hub, "_download", record)
    with pytest.raises(ConnectionError):
        seqzoo.from_pretrained(DEMO, revision="v2")
    assert asked == [(get_pretrained_cfg(DEMO).hf_hub_id, "v2")]


def test_generate_cli_continues_a_prompt_with_the_demo(no_hub, capsys):
    assert generate_main([DEMO, "--prompt", "ROMEO:", "--max-new-tokens", "80", "--top-k", "5", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ROMEO:") and len(out.strip()) > len("ROMEO:") + 40


def test_demo_is_the_model_of_its_recipe_row(no_hub, data_dir, capsys):
    """The shipped weights score the recipe's results.json perplexities on Tiny Shakespeare, with the seqzoo
    evaluate command their card gives."""
    import re
    import shlex

    from seqzoo.cli import main
    row = next(r for r in json.loads((REPO / "recipes/tinyshakespeare/results.json").read_text())["runs"]
               if r["name"] == "char_lstm_2x256")
    card = (hub.PACKAGED_DIR / get_pretrained_cfg(DEMO).file / "README.md").read_text()
    assert card == (REPO / "model_cards" / f"{DEMO}.md").read_text()
    command = shlex.split(re.search(r"`seqzoo (evaluate [^`]+)`", card).group(1))
    assert "--bptt" in command  # the recipe's stream layout (16 x 100), not evaluate's default (10 x 35)
    for split in ("valid", "test"):
        assert main([*command, "--split", split, "--data-dir", str(data_dir)]) == 0
        r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert r["tokens"] == row["metrics"][f"{split}_tokens"]
        assert r["perplexity"] == pytest.approx(row["metrics"][f"{split}_perplexity"], rel=1e-5)
        assert r["nats_per_char"] == pytest.approx(row["metrics"][f"{split}_nats_per_char"], rel=1e-5)


def test_finetuning_the_demo_reports_nats_per_char_as_its_recipe_does(no_hub, tmp_path, capsys):
    from seqzoo.cli import main
    for name, lines in (("train", VERSE * 6), ("valid", VERSE[:2]), ("test", VERSE[2:])):
        (tmp_path / f"{name}.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "ft"
    assert main(["finetune", DEMO, "--train", str(tmp_path / "train.txt"), "--valid", str(tmp_path / "valid.txt"),
                 "--test", str(tmp_path / "test.txt"), "--max-steps", "2", "--batch-size", "2", "--bptt", "20",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    r = json.loads((out / "finetune.json").read_text())
    for stage in ("before", "after"):
        for split in ("valid", "test"):
            m = r[stage]
            assert m[f"{split}_nats_per_char"] == pytest.approx(math.log(m[f"{split}_perplexity"]))
    b, a = r["before"]["valid_nats_per_char"], r["after"]["valid_nats_per_char"]
    assert f"valid nats per char {b:.3f} -> {a:.3f}" in printed and "new characters" in printed
    assert "nats per character" in (out / "README.md").read_text()
