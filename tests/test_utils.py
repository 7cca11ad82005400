"""seqzoo.utils: the eval-mode context and batching that every inference method (generate, perplexity, translate,
tag, classify, transcribe) goes through; each gives the caller's mode back, also when it fails halfway."""
import pytest
import torch

from seqzoo.decoding import generate
from seqzoo.lm import stream_perplexity
from seqzoo.models.rnn_lm import RNNLM
from seqzoo.utils import batched, evaluating, require


def test_evaluating_restores_the_mode_after_an_error():
    net = torch.nn.Linear(2, 2).train()
    with pytest.raises(RuntimeError, match="boom"):
        with evaluating(net) as device:
            assert not net.training and device == torch.device("cpu")
            raise RuntimeError("boom")
    assert net.training
    with evaluating(net.eval()):
        pass
    assert not net.training  # an eval-mode caller stays in eval mode


def test_batched_chunks_and_rejects_a_zero_size():
    assert list(batched(list(range(5)), 2)) == [[0, 1], [2, 3], [4]]
    assert list(batched([], 3)) == []
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        list(batched([1], 0))


def test_require_names_the_missing_vocabulary():
    net = torch.nn.Linear(1, 1)
    net.vocab = object()
    require(net, "vocab")
    with pytest.raises(ValueError, match="has no tags: load it with seqzoo.from_pretrained"):
        require(net, "vocab", "tags")


class _Failing(RNNLM):
    """An LM whose second forward call fails, as a bad batch or an out-of-memory error would."""

    calls = 0

    def forward(self, input_ids, state=None):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("second call fails")
        return super().forward(input_ids, state)


@pytest.mark.parametrize("run", ["generate", "perplexity"])
def test_lm_inference_gives_the_training_mode_back_after_an_error(run):
    lm = _Failing(vocab_size=12, embedding_size=4, hidden_size=4, num_layers=1).train()
    batches = [{"input_ids": torch.ones(2, 3, dtype=torch.long), "targets": torch.ones(2, 3, dtype=torch.long)}] * 3
    with pytest.raises(RuntimeError, match="second call fails"):
        if run == "generate":
            generate(lm, torch.tensor([1, 4, 5]), max_new_tokens=4)
        else:
            stream_perplexity(lm, batches)
    assert lm.training


def test_write_folder_replaces_whole_or_keeps_the_old_one(tmp_path, monkeypatch):
    import os

    from seqzoo.utils import write_folder
    out = tmp_path / "out"
    write_folder(out, lambda d: (d / "a.txt").write_text("1"))
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"] and oct(out.stat().st_mode & 0o777) == "0o755"

    def half(d):
        (d / "b.txt").write_text("2")
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        write_folder(out, half)
    real, calls = os.replace, []

    def fail_second(src, dst):  # moving the old folder aside works, renaming the new one into place fails
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("rename failed")
        real(src, dst)
    monkeypatch.setattr(os, "replace", fail_second)
    with pytest.raises(OSError, match="rename failed"):
        write_folder(out, lambda d: (d / "c.txt").write_text("3"))
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"] and (out / "a.txt").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left behind


def test_write_text_atomic_keeps_the_old_text_on_failure(tmp_path, monkeypatch):
    import os

    import pytest

    from seqzoo.utils import write_text_atomic
    p = tmp_path / "results.json"
    write_text_atomic(p, "old ü\n")
    assert p.read_text(encoding="utf-8") == "old ü\n" and oct(p.stat().st_mode & 0o777) == "0o644"

    def fail(*args):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(p, "new\n")
    assert p.read_text(encoding="utf-8") == "old ü\n" and [q.name for q in tmp_path.iterdir()] == ["results.json"]
