"""Attention heat maps: weights of the decoded translation, one row per output token, each a distribution."""
import json
import math

import pytest
import torch

from seqzoo.data.translation import EOS_ID
from seqzoo.heatmaps import attention_map, main, write_heatmaps
from tiny_models import tiny_model


def test_attention_map_rows_are_distributions_over_the_source(tmp_path):
    net = tiny_model("seq2seq_gru_bahdanau")
    m = attention_map(net, "the cat sat on the mat", beam_size=3)
    assert m["src_tokens"][:3] == ["▁the", "▁cat", "▁sat"] and m["src_tokens"][-1] == "<eos>"  # "▁": a word start
    assert len(m["weights"]) == len(m["tgt_tokens"]) and m["tgt_tokens"][-1] == "<eos>"
    for row in m["weights"]:
        assert len(row) == len(m["src_tokens"]) and math.isclose(sum(row), 1.0, abs_tol=1e-5)
    # the rows are for the model's own beam-3 translation, then its </s>
    src = torch.tensor([[net.src_tokenizer.token_to_id(t) for t in m["src_tokens"]]])
    hyp = [t for t in net.generate(src, None, 3)[0][0].tokens if t != EOS_ID]
    assert m["tgt_tokens"] == [net.tgt_tokenizer.id_to_token(t) for t in hyp] + ["<eos>"]
    out = write_heatmaps(net, ["the cat sat on the mat", "", "a dog saw a cat"], tmp_path / "maps")
    assert sorted(p.name for p in out.iterdir()) == ["attention.json", "attention_1.png", "attention_2.png"]
    assert [d["source"] for d in json.loads((out / "attention.json").read_text())] == \
        ["the cat sat on the mat", "a dog saw a cat"]


def test_no_attention_and_no_input_are_clear_errors(tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match="no attention"):
        attention_map(tiny_model("seq2seq_gru_noattn"), "the cat")
    with pytest.raises(ValueError, match="no source sentences"):
        write_heatmaps(tiny_model("seq2seq_gru_bahdanau"), ["", "  "], tmp_path)
    folder = tiny_model("seq2seq_gru_bahdanau").save_pretrained(tmp_path / "s2s")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("the dog sat\n"))
    main([str(folder), str(tmp_path / "out"), "--beam", "2"])
    assert (tmp_path / "out" / "attention_1.png").is_file()
    for args, message in (([str(folder), "--beam", "0"], "--beam must be >= 1, got 0"),
                          ([str(tmp_path / "nope")], "nope"),
                          ([str(folder), "--length-penalty", "-1"], "length penalty")):
        with pytest.raises(SystemExit) as e:
            main([args[0], str(tmp_path / "out2"), *args[1:]])
        assert str(e.value).startswith("error: ") and message in str(e.value) and "\n" not in str(e.value)
