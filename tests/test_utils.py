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
