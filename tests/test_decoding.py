"""seqzoo.decoding: batched beam search against a plain per-sentence one, greedy / sampling identities,
nucleus sampling, and generate() on an RNN LM."""
import pytest
import torch

from seqzoo.data.translation import BOS_ID, EOS_ID, PAD_ID
from seqzoo.data.vocab import Vocab
from seqzoo.decoding import (Hypothesis, beam_search, filter_logits, generate, greedy, length_penalty,
                             reorder_state, sample, suppress)
from seqzoo.models.rnn_lm import RNNLM
from seqzoo.models.seq2seq import Seq2SeqNet


def reference_beam_search(step_fn, state, start: int, eos: int, k: int, max_len: int, alpha: float):
    """The textbook algorithm, one sentence, Python lists: the specification the batched one must meet."""
    beams, finished = [([], 0.0, state, start)], []
    for _ in range(max_len):
        cands = []
        for seq, score, st, last in beams:
            lp, st2 = step_fn(torch.tensor([[last]]), st)
            cands += [(score + x, seq, v, st2) for v, x in enumerate(lp[0].tolist())]
        cands = sorted(cands, key=lambda c: -c[0])[:2 * k]
        beams = []
        for rank, (score, seq, v, st2) in enumerate(cands):
            if v == eos:
                if rank < k:
                    finished.append((seq, score, score / length_penalty(len(seq) + 1, alpha)))
            elif len(beams) < k:
                beams.append((seq + [v], score, st2, v))
        if len(finished) >= k:
            break
    else:
        finished += [(seq, s, s / length_penalty(len(seq), alpha)) for seq, s, _, _ in beams]
    return sorted(finished, key=lambda f: -f[2])


def _net(attention="bahdanau", cell="gru", layers=1, bidirectional=True, vocab=17, eos_bias=1.0):
    torch.manual_seed(0)
    net = Seq2SeqNet(src_vocab_size=vocab, tgt_vocab_size=vocab, cell=cell, attention=attention, embedding_size=8,
                     hidden_size=12, num_layers=layers, bidirectional=bidirectional).double().eval()
    with torch.no_grad():  # make <eos> likely enough that hypotheses end before max_len
        net.decoder.out.bias[EOS_ID] += eos_bias
    return net


def _batch(lengths, vocab=17):
    g = torch.Generator().manual_seed(1)
    src = torch.full((len(lengths), max(lengths)), 2, dtype=torch.long)
    for i, n in enumerate(lengths):
        src[i, :n] = torch.randint(4, vocab, (n,), generator=g)
    return src, torch.tensor(lengths)


@pytest.mark.parametrize("attention,cell,layers,bidir", [("bahdanau", "gru", 1, True),
                                                        ("luong_general", "lstm", 2, True),
                                                        ("none", "lstm", 2, False)])
@pytest.mark.parametrize("alpha", [0.0, 0.8])
def test_batched_beam_equals_per_sentence_reference(attention, cell, layers, bidir, alpha):
    net, (k, max_len, n_best) = _net(attention, cell, layers, bidir), (4, 12, 3)
    src, lengths = _batch([5, 2, 9, 7, 3, 6])
    start = torch.full((len(lengths),), BOS_ID)
    batched = beam_search(net.decode_step, net.encode(src, lengths), start, EOS_ID, k, max_len, alpha, n_best)
    ended = 0
    for i, n in enumerate(lengths.tolist()):
        ref = reference_beam_search(net.decode_step, net.encode(src[i:i + 1, :n]), BOS_ID, EOS_ID, k, max_len,
                                    alpha)[:n_best]
        assert [h.tokens for h in batched[i]] == [r[0] for r in ref], i
        assert [h.score for h in batched[i]] == pytest.approx([r[1] for r in ref], abs=1e-9)
        assert [h.normalized for h in batched[i]] == pytest.approx([r[2] for r in ref], abs=1e-9)
        ended += sum(len(h.tokens) < max_len for h in batched[i])
    assert ended > 0  # some hypotheses ended with <eos>, not only at max_len


class ToyLM:
    """Per-sentence bigram tables with an <eos> logit that grows with the step: hypotheses of many lengths."""

    def __init__(self, n, vocab=11, eos=1, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.table, self.eos = torch.randn(n, vocab, vocab, generator=g, dtype=torch.float64) * 2, eos

    def __call__(self, tokens, state):
        logits = self.table[state["sent"], tokens[:, 0]].clone()
        logits[:, self.eos] += -5 + 1.2 * state["t"]
        return logits.log_softmax(-1), {"sent": state["sent"], "t": state["t"] + 1}


@pytest.mark.parametrize("k,n_best,alpha", [(3, 3, 0.0), (5, 2, 0.6), (8, 8, 1.0)])
def test_batched_beam_equals_reference_on_toy_model(k, n_best, alpha):
    n, max_len = 16, 14
    lm = ToyLM(n)
    state = {"sent": torch.arange(n), "t": torch.zeros(n, dtype=torch.float64)}
    batched = beam_search(lm, state, torch.full((n,), 3), 1, k, max_len, alpha, n_best)
    for i in range(n):
        one = {"sent": torch.tensor([i]), "t": torch.zeros(1, dtype=torch.float64)}
        ref = reference_beam_search(lm, one, 3, 1, k, max_len, alpha)[:n_best]
        assert [h.tokens for h in batched[i]] == [r[0] for r in ref], i
        assert [h.score for h in batched[i]] == pytest.approx([r[1] for r in ref], abs=1e-9)
    lens = {len(h.tokens) for hs in batched for h in hs}
    assert len(lens) >= 4 and max(lens) < max_len, lens  # many lengths, ended by <eos>


def test_beam_one_top_k_one_and_cold_temperature_equal_greedy():
    net = _net("luong_dot", "gru", eos_bias=1.0)
    src, lengths = _batch([4, 8, 2, 6, 5])
    start = torch.full((5,), BOS_ID)
    ref = greedy(net.decode_step, net.encode(src, lengths), start, EOS_ID, 15)
    beam = beam_search(net.decode_step, net.encode(src, lengths), start, EOS_ID, beam_size=1, max_len=15)
    assert [b[0].tokens for b in beam] == [h.tokens for h in ref]
    assert [b[0].score for b in beam] == pytest.approx([h.score for h in ref])
    g = torch.Generator().manual_seed(0)
    for kw in (dict(top_k=1), dict(temperature=1e-4), dict(top_p=1e-6)):
        out = sample(net.decode_step, net.encode(src, lengths), start, EOS_ID, 15, generator=g, **kw)
        assert [h.tokens for h in out] == [h.tokens for h in ref], kw
    # a real sample differs from greedy somewhere (so the equalities above are not vacuous)
    hot = sample(net.decode_step, net.encode(src, lengths), start, EOS_ID, 15, temperature=2.0, generator=g)
    assert [h.tokens for h in hot] != [h.tokens for h in ref]


def test_beam_search_finds_higher_scores_than_greedy():
    n = 32
    lm, state = ToyLM(n, seed=5), {"sent": torch.arange(n), "t": torch.zeros(n, dtype=torch.float64)}
    g = greedy(lm, state, torch.full((n,), 3), 1, 20)
    b = beam_search(lm, state, torch.full((n,), 3), 1, beam_size=6, max_len=20)
    gain = torch.tensor([bb[0].score - gg.score for bb, gg in zip(b, g)])
    assert gain.mean() > 0.1 and (gain > 1e-6).sum() > n // 4, gain


class FixedDistribution:
    """A 'model' whose next-token distribution is always ``probs``."""

    def __init__(self, probs):
        self.log_probs = torch.tensor(probs).log()

    def __call__(self, tokens, state):
        return self.log_probs.expand(tokens.shape[0], -1), state


def test_top_p_draws_only_from_the_nucleus():
    probs = [0.05, 0.4, 0.1, 0.3, 0.15]          # sorted: 1 (.4), 3 (.3), 4 (.15), 2 (.1), 0 (.05)
    step = FixedDistribution(probs)
    g = torch.Generator().manual_seed(0)
    out = sample(step, None, torch.zeros(4000, dtype=torch.long), None, 1, top_p=0.75, generator=g)
    drawn = torch.tensor([h.tokens[0] for h in out])
    assert set(drawn.tolist()) == {1, 3, 4}     # .4 + .3 < .75, so .15 is needed; .1 and .05 never
    freq = torch.bincount(drawn, minlength=5).double() / len(drawn)
    assert freq[[1, 3, 4]].tolist() == pytest.approx([0.4 / 0.85, 0.3 / 0.85, 0.15 / 0.85], abs=0.03)
    top2 = sample(step, None, torch.zeros(2000, dtype=torch.long), None, 1, top_k=2, generator=g)
    assert {h.tokens[0] for h in top2} == {1, 3}


def test_filter_logits_and_bad_arguments():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[True, False, False, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.01)).tolist() == [[True, False, True, True]]
    for t in (0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            sample(FixedDistribution([0.5, 0.5]), None, torch.zeros(1, dtype=torch.long), None, 1, temperature=t)
    with pytest.raises(ValueError, match="top_p must be in"):
        sample(FixedDistribution([0.5, 0.5]), None, torch.zeros(1, dtype=torch.long), None, 1, top_p=1.5)
    with pytest.raises(ValueError, match="n_best must be in"):
        beam_search(FixedDistribution([0.5, 0.5]), None, torch.zeros(1, dtype=torch.long), 0, 2, 3, n_best=3)
    for alpha in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="length penalty alpha must be a finite number >= 0"):
            beam_search(FixedDistribution([0.5, 0.5]), None, torch.zeros(1, dtype=torch.long), 0, 2, 3, alpha=alpha)


def test_reorder_state_nested():
    state = {"h": (torch.arange(3).view(3, 1), torch.arange(3) * 10), "m": [torch.arange(3)], "none": None}
    out = reorder_state(state, torch.tensor([2, 2, 0]))
    assert out["h"][0].view(-1).tolist() == [2, 2, 0] and out["h"][1].tolist() == [20, 20, 0]
    assert out["m"][0].tolist() == [2, 2, 0] and out["none"] is None
    with pytest.raises(TypeError, match="cannot reorder a state of type str"):
        reorder_state("x", torch.tensor([0]))


def test_beam_n_best_sorted_and_max_len_respected():
    net = _net("bahdanau", "gru", eos_bias=-5.0)  # <eos> unlikely: hypotheses run to max_len
    src, lengths = _batch([3, 5])
    out = beam_search(net.decode_step, net.encode(src, lengths), torch.full((2,), BOS_ID), EOS_ID, 5, 7, 0.6, 5)
    for hyps in out:
        assert len(hyps) == 5 and all(len(h.tokens) == 7 for h in hyps)
        assert [h.normalized for h in hyps] == sorted((h.normalized for h in hyps), reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 5


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_generate_with_rnn_lm(cell):
    torch.manual_seed(0)
    lm = RNNLM(vocab_size=23, cell=cell, embedding_size=8, hidden_size=8, num_layers=2)
    prompt = torch.tensor([[1, 5, 7], [1, 9, 2]])
    a = generate(lm, prompt, max_new_tokens=11, greedy=True)
    assert a.shape == (2, 11) and a.dtype == torch.long
    assert torch.equal(a, generate(lm, prompt, max_new_tokens=11, greedy=True))
    # greedy == argmax of the full forward pass over prompt + continuation, step by step
    ids = prompt
    for _ in range(11):
        nxt = lm(ids)[0][:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], 1)
    assert torch.equal(a, ids[:, 3:])
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    s1 = generate(lm, prompt[0], 9, temperature=0.8, top_k=5, top_p=0.9, generator=g1)
    assert s1.shape == (1, 9) and torch.equal(s1, generate(lm, prompt[0], 9, temperature=0.8, top_k=5, top_p=0.9,
                                                            generator=g2))
    assert torch.equal(generate(lm, prompt, 11, top_k=1), a)
    assert lm.training  # generate puts the model back in the mode it found it in
    with pytest.raises(ValueError, match="at least one token"):
        generate(lm, torch.zeros(1, 0, dtype=torch.long), 3)


def test_suppressed_tokens_are_never_produced():
    step = suppress(FixedDistribution([0.6, 0.1, 0.3]), [0])
    start = torch.zeros(3, dtype=torch.long)
    assert [h.tokens for h in greedy(step, None, start, None, 4)] == [[2] * 4] * 3
    assert {t for h in sample(step, None, start, None, 50) for t in h.tokens} == {1, 2}
    assert all(0 not in h.tokens for hs in beam_search(step, None, start, 1, 3, 5, n_best=3) for h in hs)
    assert suppress(step, []) is step


def test_translation_and_lm_generation_never_emit_pad_or_bos():
    net = _net()
    with torch.no_grad():  # a decoder that all but always proposes <pad>, then <bos>
        net.decoder.out.bias[PAD_ID] += 50.0
        net.decoder.out.bias[BOS_ID] += 40.0
    src, lengths = _batch([5, 2, 9])
    raw = greedy(net.decode_step, net.encode(src, lengths), torch.full((3,), BOS_ID), EOS_ID, 8)
    assert all(h.tokens[0] == PAD_ID for h in raw)
    for beam in (1, 3):
        hyps = [h for hs in net.generate(src, lengths, beam_size=beam, max_len=8) for h in hs]
        assert len(hyps) == 3 and not any({PAD_ID, BOS_ID} & set(h.tokens) for h in hyps)
    torch.manual_seed(0)
    lm = RNNLM(vocab_size=12, embedding_size=8, hidden_size=8, num_layers=1).eval()
    with torch.no_grad():
        lm.decoder.bias[PAD_ID] += 50.0
    prompt = torch.tensor([[EOS_ID, 5]])
    assert (generate(lm, prompt, 6, greedy=True) == PAD_ID).all()   # a bare network has no vocab: nothing banned
    lm.vocab = Vocab.build([[f"w{i}" for i in range(8)]])            # as from_pretrained attaches it
    out = generate(lm, prompt.repeat(20, 1), 6, temperature=2.0, generator=torch.Generator().manual_seed(0))
    assert not {PAD_ID, BOS_ID} & set(out.flatten().tolist())
    assert (generate(lm, prompt, 6, greedy=True, suppress_ids=()) == PAD_ID).all()


def test_hypothesis_fields():
    h = greedy(FixedDistribution([0.1, 0.9]), None, torch.zeros(2, dtype=torch.long), 1, 5)
    assert h == [Hypothesis([], pytest.approx(torch.tensor(0.9).log().item()))] * 2


@pytest.mark.slow
def test_batched_beam_equals_per_sentence_on_the_multi30k_test_set(data_dir, tmp_path):
    """All 1,000 sentences of Multi30k test2016 (de), translated by a small Bahdanau model trained for a few
    hundred steps: beam 5 over batches of 64 gives, sentence for sentence, the hypotheses and scores of beam 5
    run on each sentence alone (unpadded), and the first 20 match the textbook search above."""
    import lightning as L

    from seqzoo.data.translation import PAD_ID, TranslationDataModule
    from seqzoo.models.seq2seq import Seq2Seq
    if not (data_dir / "multi30k" / "raw" / "test_2016_flickr.de.gz").exists():
        pytest.skip("no multi30k mirror in the shared data")
    L.seed_everything(0)
    dm = TranslationDataModule("multi30k", "de", "en", str(data_dir), vocab_size=1000, batch_size=64)
    model = Seq2Seq(dm.src_vocab_size, dm.tgt_vocab_size, embedding_size=32, hidden_size=64, dropout=0.0, lr=3e-3,
                    src_tokenizer=dm.src_tokenizer_json, tgt_tokenizer=dm.tgt_tokenizer_json)
    L.Trainer(max_steps=300, limit_val_batches=0, logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path).fit(model, dm)
    net = model.net.double().eval()
    sources = [p[1] for p in sorted(dm.pairs["test"])]
    assert len(sources) == 1000
    k, alpha, n_best = 5, 0.6, 2
    batched = []
    for b in range(0, len(sources), 64):
        chunk = sources[b:b + 64]
        lengths = torch.tensor([len(s) for s in chunk])
        src = torch.full((len(chunk), int(lengths.max())), PAD_ID, dtype=torch.long)
        for i, s in enumerate(chunk):
            src[i, :len(s)] = torch.tensor(s)
        batched += beam_search(net.decode_step, net.encode(src, lengths), torch.full((len(chunk),), BOS_ID),
                               EOS_ID, k, int(lengths.max()) * 2 + 10, alpha, n_best)
    for i, s in enumerate(sources):
        one = torch.tensor([s])
        alone = beam_search(net.decode_step, net.encode(one, torch.tensor([len(s)])), torch.full((1,), BOS_ID),
                            EOS_ID, k, len(s) * 2 + 10, alpha, n_best)[0]
        assert [h.tokens for h in batched[i]] == [h.tokens for h in alone], i
        assert [h.score for h in batched[i]] == pytest.approx([h.score for h in alone], abs=1e-9), i
        if i < 20:
            ref = reference_beam_search(net.decode_step, net.encode(one), BOS_ID, EOS_ID, k, len(s) * 2 + 10,
                                        alpha)[:n_best]
            assert [h.tokens for h in alone] == [r[0] for r in ref], i
    # not vacuous: the model ends its hypotheses itself, at many lengths, mostly with real words
    best = [h[0].tokens for h in batched]
    ended = [len(t) < len(s) * 2 + 10 for t, s in zip(best, sources)]
    assert sum(ended) > 900 and len({len(t) for t in best}) > 10
    assert len({tuple(t) for t in best}) > 500, "the model says the same thing for every sentence"
