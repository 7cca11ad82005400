import itertools
import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from seqzoo.data.g2p import G2PDataModule, collate_g2p
from seqzoo.models.ctc import CTCConfig, CTCModel, CTCTask, ctc_greedy_decode, ctc_prefix_beam_search
from tests.conftest import registered


def _collapse(path, blank=0):
    out, prev = [], None
    for c in path:
        if c != blank and c != prev:
            out.append(c)
        prev = c
    return tuple(out)


def _brute_force(probs: torch.Tensor) -> dict:
    """Every alignment of a (T, C) probability matrix, summed per labelling."""
    T, C = probs.shape
    total = {}
    for path in itertools.product(range(C), repeat=T):
        p = math.prod(probs[t, c].item() for t, c in enumerate(path))
        total[_collapse(path)] = total.get(_collapse(path), 0.0) + p
    return total


def test_greedy_and_beam_differ_on_hand_example():
    # Two frames, each: blank .4, a .35, b .25. Best path: blank blank -> "" (p .16); but
    # P("a") = aa + a- + -a = .1225 + .14 + .14 = .4025 is the most probable labelling.
    probs = torch.tensor([[0.4, 0.35, 0.25], [0.4, 0.35, 0.25]], dtype=torch.float64)
    lp = probs.log()
    assert ctc_greedy_decode(lp) == []
    beams = ctc_prefix_beam_search(lp, beam_size=10)
    assert beams[0][0] == [1] and math.isclose(math.exp(beams[0][1]), 0.4025, rel_tol=1e-9)
    by_hand = {(): 0.16, (1,): 0.4025, (2,): 0.2625, (1, 2): 0.0875, (2, 1): 0.0875}
    assert {tuple(p): math.exp(s) for p, s in beams} == pytest.approx(by_hand, rel=1e-9)
    assert sum(by_hand.values()) == pytest.approx(1.0)


def test_greedy_collapses_repeats_and_drops_blanks_per_length():
    best = torch.tensor([[1, 1, 0, 1, 2, 2, 0, 3], [2, 0, 2, 2, 1, 1, 1, 1]])
    lp = F.one_hot(best, 4).double().clamp(min=1e-6).log()
    assert ctc_greedy_decode(lp, torch.tensor([8, 4])) == [[1, 1, 2, 3], [2, 2]]


def test_prefix_beam_search_is_exact_against_brute_force_and_ctc_loss():
    torch.manual_seed(0)
    lp = torch.randn(4, 3, dtype=torch.float64).mul(1.5).log_softmax(-1)  # T = 4, labels {blank, a, b}
    exact = _brute_force(lp.exp())
    beams = ctc_prefix_beam_search(lp, beam_size=100)  # wide enough to keep every labelling
    assert {tuple(p): math.exp(s) for p, s in beams} == pytest.approx(exact, rel=1e-9)
    assert tuple(beams[0][0]) == max(exact, key=exact.get)
    for labels, score in beams[:5]:  # and against PyTorch's CTC forward algorithm
        if labels:
            nll = F.ctc_loss(lp[:, None], torch.tensor([labels]), torch.tensor([4]), torch.tensor([len(labels)]),
                             reduction="sum")
            assert -nll.item() == pytest.approx(score, abs=1e-9)


def test_beam_search_finds_map_where_greedy_fails_random_search():
    """Over random 3-frame matrices, beam search always returns the brute-force MAP labelling,
    and at least one matrix separates it from greedy decoding."""
    g = torch.Generator().manual_seed(1)
    differ = 0
    for _ in range(30):
        lp = (torch.randn(3, 3, generator=g, dtype=torch.float64) * 1.2).log_softmax(-1)
        exact = _brute_force(lp.exp())
        best = max(exact, key=exact.get)
        assert tuple(ctc_prefix_beam_search(lp, beam_size=50)[0][0]) == best
        differ += tuple(ctc_greedy_decode(lp)) != best
    assert differ > 0


def test_bad_beam_arguments():
    with pytest.raises(ValueError, match="beam_size must be >= 1"):
        ctc_prefix_beam_search(torch.zeros(2, 3), beam_size=0)
    with pytest.raises(ValueError, match=r"must be \(T, C\)"):
        ctc_prefix_beam_search(torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="unknown decoder 'viterbi'; valid: greedy, beam"):
        CTCTask(vocab_size=10, num_labels=5, decoder="viterbi")
    with pytest.raises(ValueError, match="num_labels counts the blank"):
        CTCConfig(num_labels=1)


def test_model_upsamples_time_and_ignores_padding():
    torch.manual_seed(0)
    m = CTCModel(vocab_size=12, num_labels=5, embedding_size=8, hidden_size=8, num_layers=2, upsample=3).eval()
    ids = torch.tensor([[4, 5, 6, 7, 8], [9, 10, 11, 2, 2]])
    lp, n = m(ids, torch.tensor([5, 3]))
    assert lp.shape == (2, 15, 5) and n.tolist() == [15, 9]
    assert torch.allclose(lp.exp().sum(-1), torch.ones(2, 15), atol=1e-5)
    alone, _ = m(ids[1:, :3], torch.tensor([3]))
    assert torch.allclose(lp[1, :9], alone[0], atol=1e-5)


_TINY_DICT = """;;; a hand-made CMUdict-format file
CAT  K AE1 T
CATS  K AE1 T S
AX  AE1 K S
BOX  B AA1 K S
TAB  T AE1 B
TACK  T AE1 K
TAX  T AE1 K S
BAT  B AE1 T
BAT(2)  B AH0 T
OX  AA1 K S
"""


def test_tiny_g2p_overfits(tmp_path):
    """CTC loss really falls and the phoneme error rate reaches ~0 on the training words (x -> K S too)."""
    L.seed_everything(0)
    path = tmp_path / "tiny.dict"
    path.write_text(_TINY_DICT)
    dm = G2PDataModule(str(path), buckets=(100, 100))
    assert len(dm.pairs["train"]) == 9 and dm.num_labels == 1 + 6  # blank + AA AE B K S T (no AH: BAT(2) skipped)
    batch = collate_g2p(dm.encode("train"))
    loader = DataLoader([batch], batch_size=None)
    model = CTCTask(vocab_size=dm.vocab_size, num_labels=dm.num_labels, embedding_size=16, hidden_size=32,
                    num_layers=1, lr=0.02)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    before = trainer.validate(model, dataloaders=loader, verbose=False)[0]
    trainer = L.Trainer(max_epochs=150, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, check_val_every_n_epoch=150)
    trainer.fit(model, train_dataloaders=loader, val_dataloaders=loader)
    after = trainer.callback_metrics
    assert before["valid_per"] > 0.5 and before["valid_loss"] > 2 * after["valid_loss"], (before, after)
    assert after["valid_per"] <= 0.05, after
    model.eval()
    with torch.no_grad():
        lp, n = model(batch)
    word = [w for w, _ in dm.pairs["train"]].index("tax")
    beam = ctc_prefix_beam_search(lp[word, :n[word]], beam_size=5)[0][0]
    assert dm.decode_labels(beam) == ["T", "AE", "K", "S"]
    test = CTCTask(**{**model.hparams, "decoder": "beam"})
    test.load_state_dict(model.state_dict())
    assert trainer.test(test, dataloaders=loader, verbose=False)[0]["test_per"] <= 0.05


@pytest.mark.parametrize("name", registered("ctc"))
def test_registered_variants_forward_backward(name):
    from seqzoo.registry import create_model
    m = create_model(name, vocab_size=40, num_labels=6, embedding_size=8, hidden_size=8)
    lp, n = m(torch.randint(4, 40, (2, 5)), torch.tensor([5, 3]))
    assert lp.shape == (2, 10, 6) and n.tolist() == [10, 6]
    F.ctc_loss(lp.transpose(0, 1), torch.tensor([[1, 2], [3, 0]]), n, torch.tensor([2, 1])).backward()
    assert all(p.grad is not None for p in m.parameters())
