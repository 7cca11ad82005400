"""Tests for seqzoo.models.ngram: normalisation, a hand-worked Kneser-Ney example, a plain
Python modified-KN reference, ARPA I/O, errors, and (data permitting) the PTB numbers."""
from __future__ import annotations

import math
import os
import random
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from seqzoo.models.ngram import NGramLM
from seqzoo.registry import create_model, list_models

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("SEQZOO_DATA") or ROOT.parent / "shared" / "data")
PTB = DATA / "ptb"
needs_ptb = pytest.mark.skipif(not (PTB / "ptb.train.txt").exists(),
                               reason=f"PTB not found in {PTB} (set SEQZOO_DATA to the folder holding ptb/)")


def zipf_corpus(n_sents=400, n_words=150, seed=0):
    """Sentences over w0..w{n-1}, Zipfian, with some repeated phrases: like text, it has
    n-grams of every count 1, 2, 3, 4+ at every order, and rare words."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(n_words)]
    weights = [1.0 / (i + 1) ** 1.1 for i in range(n_words)]
    phrases = [["w0", "w1", "w2"], ["w3", "w0"], ["w5", "w5", "w1"]]
    sents = []
    for _ in range(n_sents):
        s = []
        while len(s) < rng.randint(1, 10):
            s += rng.choice(phrases) if rng.random() < 0.2 else rng.choices(words, weights)
        sents.append(s)
    return sents


def contexts_to_check(model, corpus):
    seen = [list(corpus[3][:2]), list(corpus[7][:1]), ["<s>"], ["<s>", corpus[0][0]], list(corpus[5][-2:])]
    unseen = [[], ["w149", "w148"], ["never-seen", "w0"], ["<s>", "never-seen"], ["w1", "</s>"],
              ["x", "y", "<s>", "w3"]]
    return seen, unseen


def total_mass(model, context):
    return sum(math.exp(model.logprob(w, context)) for w in model.vocab if w != "<s>")


# ------------------------------------------------------------------ normalisation
@pytest.mark.parametrize("smoothing,kw", [("modified-kn", {}), ("katz", {}), ("add-k", {"k": 0.5}),
                                          ("laplace", {}), ("mle", {})])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_sums_to_one(smoothing, kw, order):
    corpus = zipf_corpus()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # order-1 KN on small data may fall back to default discounts
        model = NGramLM(order, smoothing, **kw).fit(corpus)
    assert "<unk>" in model.vocab and "</s>" in model.vocab
    seen, unseen = contexts_to_check(model, corpus)
    for ctx in seen + ([] if smoothing == "mle" else unseen):
        assert total_mass(model, ctx) == pytest.approx(1.0, abs=1e-9), ctx


def test_arpa_loaded_model_sums_to_one(tmp_path):
    corpus = zipf_corpus()
    NGramLM(4).fit(corpus).to_arpa(tmp_path / "m.arpa")
    model = NGramLM.from_arpa(tmp_path / "m.arpa")
    assert model.smoothing == "arpa" and model.order == 4
    seen, unseen = contexts_to_check(model, corpus)
    for ctx in seen + unseen:
        assert total_mass(model, ctx) == pytest.approx(1.0, abs=1e-5), ctx


def test_add_k_formula_and_unseen_context():
    corpus = [["a", "b"], ["a", "c"], ["a", "b"]]
    model = NGramLM(2, "add-k", k=0.5).fit(corpus)
    V = 5  # a b c </s> <unk>
    assert math.exp(model.logprob("b", ["<s>", "a"])) == pytest.approx((2 + 0.5) / (3 + 0.5 * V))
    assert math.exp(model.logprob("a", ["b"])) == pytest.approx((0 + 0.5) / (2 + 0.5 * V))
    assert math.exp(model.logprob("a", ["<unk>"])) == pytest.approx(1 / V)  # unseen context


def test_mle_relative_frequency():
    model = NGramLM(2, "mle").fit([["a", "b"], ["a", "c"], ["a", "b"]])
    assert math.exp(model.logprob("b", ["a"])) == pytest.approx(2 / 3)
    assert model.logprob("a", ["a"]) == -math.inf
    assert model.perplexity([["a", "a"]]) == math.inf


@pytest.mark.filterwarnings("ignore:.*fallback")
@pytest.mark.parametrize("smoothing", ["modified-kn", "katz", "add-k", "stupid"])
@pytest.mark.parametrize("order", [1, 2, 4, 5])
def test_logprob_agrees_with_score_sentences(smoothing, order):
    corpus = zipf_corpus(seed=6)
    model = NGramLM(order, smoothing).fit(corpus)
    test = zipf_corpus(n_sents=15, seed=7) + [[], ["never-seen", "w3"]]
    total, n = model.score_sentences(test)
    by_word = [model.logprob(w, ["x", "<s>"] + s[:i])  # words before <s> must not matter
               for s in test for i, w in enumerate(s + ["</s>"])]
    assert n == len(by_word) == sum(len(s) + 1 for s in test)
    assert total == pytest.approx(sum(by_word), rel=1e-12)
    long_ctx = ["w1", "w2", "w3", "w4", "w5", "w6"]  # only the last order - 1 words count
    assert model.logprob("w0", long_ctx) == model.logprob("w0", long_ctx[len(long_ctx) - order + 1:])


# ------------------------------------------------------------------ Kneser-Ney by hand
HAND_CORPUS = [["a", "b", "c"], ["a", "b"], ["b", "c"], ["a", "c"], ["a", "b", "c"]]


def test_kneser_ney_hand_computed():
    """Order 3 on five sentences. Too little data for Chen & Goodman's discounts (n3 or n4 is 0
    at every order), so lmplz's fallback D1=0.5, D2=1, D3+=1.5 applies everywhere.

    Padded: <s> a b c </s> (x2), <s> a b </s>, <s> b c </s>, <s> a c </s>.
    Trigram counts (top order keeps raw counts):
      <s> a b: 3, a b c: 2, b c </s>: 3, a b </s>: 1, <s> b c: 1, <s> a c: 1, a c </s>: 1
    Bigram adjusted counts: raw for those starting with <s> (<s> a: 4, <s> b: 1), else the
    number of distinct left words in the trigrams:
      a b: {<s>} 1, b c: {a, <s>} 2, c </s>: {b, a} 2, b </s>: {a} 1, a c: {<s>} 1
    Unigram adjusted counts (distinct left words in the bigrams):
      a: {<s>} 1, b: {<s>, a} 2, c: {b, a} 2, </s>: {c, b} 2, <unk>: 0
    Vocabulary predicted: a b c </s> <unk> -> |V| = 5.
    """
    with pytest.warns(UserWarning, match="fallback"):
        model = NGramLM(3, "modified-kn").fit(HAND_CORPUS)
    assert model.discounts == [(0.5, 1.0, 1.5)] * 3
    D = {0: 0.0, 1: 0.5, 2: 1.0, 3: 1.5}

    # unigrams: total adjusted 1+2+2+2 = 7; gamma = (D1 * 1 [a] + D2 * 3 [b c </s>]) / 7
    g0 = (0.5 * 1 + 1.0 * 3) / 7
    p1 = {w: (a - D[a]) / 7 + g0 / 5 for w, a in {"a": 1, "b": 2, "c": 2, "</s>": 2, "<unk>": 0}.items()}
    assert p1["a"] == pytest.approx(0.5 / 7 + 0.1)
    # bigram context "b": b c (2), b </s> (1) -> denominator 3, gamma = (D2 + D1) / 3
    p_c_b = (2 - 1.0) / 3 + (1.0 + 0.5) / 3 * p1["c"]
    p_a_b = 0 + (1.0 + 0.5) / 3 * p1["a"]  # never seen after b: all from the lower order
    # bigram context "<s>": <s> a (4), <s> b (1) -> denominator 5, gamma = (D3+ + D1) / 5
    p_a_bos = (4 - 1.5) / 5 + (1.5 + 0.5) / 5 * p1["a"]
    # bigram context "a": a b (1), a c (1) -> gamma = (D1 + D1) / 2
    p_b_a = (1 - 0.5) / 2 + (0.5 + 0.5) / 2 * p1["b"]
    # trigram context "a b": a b c (2), a b </s> (1) -> denominator 3, gamma = (D2 + D1) / 3
    p_c_ab = (2 - 1.0) / 3 + (1.0 + 0.5) / 3 * p_c_b
    # trigram context "<s> a": <s> a b (3), <s> a c (1) -> denominator 4, gamma = (D3+ + D1) / 4
    p_b_bos_a = (3 - 1.5) / 4 + (1.5 + 0.5) / 4 * p_b_a
    p_a_ab = 0 + (1.0 + 0.5) / 3 * p_a_b  # unseen trigram, seen context

    cases = [("a", [], p1["a"]), ("<unk>", [], g0 / 5),
             ("c", ["b"], p_c_b), ("a", ["b"], p_a_b), ("a", ["<s>"], p_a_bos), ("b", ["a"], p_b_a),
             ("c", ["a", "b"], p_c_ab), ("b", ["<s>", "a"], p_b_bos_a), ("a", ["a", "b"], p_a_ab),
             ("c", ["c", "b"], p_c_b),  # context "c b" never seen: no backoff weight, use p(c | b)
             ("zzz", ["b"], 0 + (1.0 + 0.5) / 3 * p1["<unk>"])]  # OOV is <unk>
    for word, ctx, expected in cases:
        assert math.exp(model.logprob(word, ctx)) == pytest.approx(expected, rel=1e-12), (word, ctx)

    # a whole sentence: <s> a b c </s> scored left to right, </s> counted
    total, n = model.score_sentences([["a", "b", "c"]])
    # p(</s> | b c): trigram context "b c" has only </s> (count 3) -> gamma = D3+ / 3
    p_end_c = (2 - 1.0) / 2 + 1.0 / 2 * p1["</s>"]  # bigram context c: c </s> (2)
    p_end_bc = (3 - 1.5) / 3 + 1.5 / 3 * p_end_c
    assert n == 4
    assert total == pytest.approx(math.log(p_a_bos * p_b_bos_a * p_c_ab * p_end_bc), rel=1e-12)


# ------------------------------------------------------------------ modified KN, reference
def reference_kn(corpus, order):
    """Modified Kneser-Ney written out with dicts, following Chen & Goodman (1998) and lmplz."""
    padded = [["<s>"] + s + ["</s>"] for s in corpus]
    raw = [Counter() for _ in range(order + 1)]
    for s in padded:
        for n in range(1, order + 1):
            for i in range(len(s) - n + 1):
                raw[n][tuple(s[i:i + n])] += 1
    adj = {order: dict(raw[order])}
    for n in range(order - 1, 0, -1):
        left = defaultdict(set)
        for g in raw[n + 1]:
            left[g[1:]].add(g[0])
        adj[n] = {g: (c if g[0] == "<s>" else len(left[g])) for g, c in raw[n].items()}
    adj[1][("<s>",)] = 0
    vocab = sorted({w for s in corpus for w in s} | {"</s>", "<unk>"})
    for w in vocab:
        adj[1].setdefault((w,), 0)
    disc = {}
    for n in range(1, order + 1):
        cc = Counter(min(a, 5) for a in adj[n].values())  # exact n1..n4
        y = cc[1] / (cc[1] + 2 * cc[2])
        disc[n] = [0.0] + [j - (j + 1) * y * cc[j + 1] / cc[j] for j in (1, 2, 3)]
    by_ctx = {n: defaultdict(dict) for n in range(1, order + 1)}
    for n in range(1, order + 1):
        for g, a in adj[n].items():
            if g != ("<s>",):
                by_ctx[n][g[:-1]][g[-1]] = a

    def prob(word, ctx):
        n = len(ctx) + 1
        ext = by_ctx[n].get(ctx)
        if not ext:
            return prob(word, ctx[1:])  # unseen context: backoff weight 1
        total = sum(ext.values())
        gamma = sum(disc[n][min(a, 3)] for a in ext.values()) / total
        a = ext.get(word, 0)
        lower = 1 / len(vocab) if n == 1 else prob(word, ctx[1:])
        return (a - disc[n][min(a, 3)]) / total + gamma * lower

    return prob, disc, vocab


@pytest.mark.parametrize("order", [2, 3, 4])
def test_kneser_ney_matches_reference(order):
    corpus = zipf_corpus(n_sents=500, seed=1)
    model = NGramLM(order, "modified-kn").fit(corpus)
    prob, disc, vocab = reference_kn(corpus, order)
    for n in range(1, order + 1):
        assert model.discounts[n - 1] == pytest.approx(tuple(disc[n][1:]), rel=1e-12)
    assert sorted(w for w in model.vocab if w != "<s>") == vocab
    rng = random.Random(2)
    for _ in range(300):
        sent = rng.choice(corpus)
        i = rng.randint(0, len(sent))
        ctx = (["<s>"] + sent[:i])[-(order - 1):] if order > 1 else []
        if rng.random() < 0.3:  # perturb: unseen contexts and words
            ctx = [rng.choice(vocab[:-2]) for _ in ctx]
        word = rng.choice(vocab)
        expected = prob(word, tuple(ctx[ctx.index("<s>"):] if "<s>" in ctx else ctx))
        assert math.exp(model.logprob(word, ctx)) == pytest.approx(expected, rel=1e-10), (word, ctx)


# ------------------------------------------------------------------ ARPA
@pytest.mark.filterwarnings("ignore:.*fallback")
@pytest.mark.parametrize("smoothing", ["modified-kn", "katz", "add-k", "mle", "stupid"])
def test_arpa_round_trip(tmp_path, smoothing):
    corpus = zipf_corpus(n_sents=300, seed=3)
    model = NGramLM(3, smoothing).fit(corpus)
    if smoothing == "stupid":  # alpha also applies below unseen contexts, which ARPA can't hold
        model.save_pretrained(tmp_path / "m")
        loaded = NGramLM.from_pretrained(tmp_path / "m")
    else:
        model.to_arpa(tmp_path / "m.arpa")
        loaded = NGramLM.from_arpa(tmp_path / "m.arpa")
    assert loaded.order == 3 and set(loaded.vocab) == set(model.vocab)
    test = zipf_corpus(n_sents=50, seed=4) + [["w1", "never-seen", "w2"]]
    for sent in test[:20]:
        for i in range(len(sent) + 1):
            word = sent[i] if i < len(sent) else "</s>"
            ctx = ["<s>"] + sent[:i]
            a, b = model.logprob(word, ctx), loaded.logprob(word, ctx)
            assert b == a if a == -math.inf else b == pytest.approx(a, abs=1e-5), (word, ctx)  # p = 0 is -99
    if smoothing != "stupid":
        assert loaded.perplexity(test) == pytest.approx(model.perplexity(test), rel=1e-6)
    if smoothing == "mle":
        assert model.perplexity(test) == math.inf


def test_gzipped_arpa_reads_as_plain_and_a_non_utf8_file_is_named(tmp_path):
    """KenLM and SRILM write .arpa.gz; a binary or Latin-1 file is one line naming it."""
    import gzip
    import shutil
    model = NGramLM(3).fit(zipf_corpus(n_sents=200, seed=3))
    model.to_arpa(tmp_path / "m.arpa")
    with open(tmp_path / "m.arpa", "rb") as f, gzip.open(tmp_path / "m.arpa.gz", "wb") as g:
        shutil.copyfileobj(f, g)
    plain, gz = NGramLM.from_arpa(tmp_path / "m.arpa"), NGramLM.from_arpa(tmp_path / "m.arpa.gz")
    assert gz.vocab == plain.vocab and gz.logprob("w2", ["<s>", "w1"]) == plain.logprob("w2", ["<s>", "w1"])
    # KenLM splits fields on ASCII white space only: a word ending in a no-break space keeps it
    (tmp_path / "nbsp.arpa").write_text("\\data\\\nngram 1=4\n\n\\1-grams:\n-1.0\t<s>\n-0.5\t</s>\n"
                                        "-0.5\t<unk>\n-0.3\ta\xa0\n\n\\end\\\n", encoding="utf-8")
    assert "a\xa0" in NGramLM.from_arpa(tmp_path / "nbsp.arpa").vocab
    (tmp_path / "latin1.arpa").write_bytes(b"\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\tcaf\xe9\n")
    with pytest.raises(ValueError, match=r"latin1.arpa: not UTF-8 text"):
        NGramLM.from_arpa(tmp_path / "latin1.arpa")


@pytest.mark.filterwarnings("ignore:.*fallback")
@pytest.mark.parametrize("chunk", [1, 2, 7, 10 ** 6])
def test_arpa_written_and_read_in_chunks(tmp_path, monkeypatch, chunk):
    """ARPA I/O streams ``_CHUNK`` lines at a time: any chunk size (section ends inside, at or past a chunk's
    end) gives the same file and the same model."""
    from seqzoo.models import ngram
    model = NGramLM(3, "modified-kn").fit(zipf_corpus(n_sents=200, seed=5))
    model.to_arpa(tmp_path / "whole.arpa")  # the default chunk: one chunk per section here
    whole = NGramLM.from_arpa(tmp_path / "whole.arpa")
    monkeypatch.setattr(ngram, "_CHUNK", chunk)
    model.to_arpa(tmp_path / "chunked.arpa")
    assert (tmp_path / "chunked.arpa").read_text() == (tmp_path / "whole.arpa").read_text()
    loaded = NGramLM.from_arpa(tmp_path / "chunked.arpa")
    assert loaded.vocab == whole.vocab == model.vocab
    assert len(loaded._levels) == 3
    for a, b in zip(loaded._levels, whole._levels):
        assert np.array_equal(a.keys, b.keys) and np.array_equal(a.logp, b.logp, equal_nan=True)
        assert np.array_equal(a.logbo, b.logbo)
    test = zipf_corpus(n_sents=30, seed=6)
    assert loaded.perplexity(test) == pytest.approx(model.perplexity(test), rel=1e-6)


@pytest.mark.filterwarnings("ignore:.*fallback")
@pytest.mark.parametrize("smoothing", ["modified-kn", "katz", "add-k", "mle", "stupid"])
def test_fit_counts_the_corpus_in_chunks(smoothing, monkeypatch):
    """``fit`` reads the corpus a chunk at a time (a generator, read once) and merges the chunks' n-gram counts:
    every chunk size, down to one sentence per chunk and new words appearing in late chunks, gives the same
    levels as one chunk; scoring in chunks gives the same total."""
    from seqzoo.models import ngram
    corpus = zipf_corpus(n_sents=300, seed=8) + [["late", "words", "w0"], ["w1", "late"]]
    whole = NGramLM(4, smoothing).fit(corpus, chunk_tokens=10 ** 9)
    test = zipf_corpus(n_sents=40, seed=9) + [["late", "w0", "unseen"]]
    for chunk in (1, 5, 37, 400):
        model = NGramLM(4, smoothing).fit((list(s) for s in corpus), chunk_tokens=chunk)
        assert model.vocab == whole.vocab
        for a, b in zip(model._levels, whole._levels, strict=True):
            assert np.array_equal(a.keys, b.keys)
            assert np.array_equal(a.logp, b.logp, equal_nan=True) and np.array_equal(a.logbo, b.logbo)
        monkeypatch.setattr(ngram, "_FIT_CHUNK", chunk)
        assert model.score_sentences(test) == pytest.approx(whole.score_sentences(test), rel=1e-12)
        monkeypatch.undo()
    with pytest.raises(ValueError, match="chunk_tokens"):
        NGramLM(2).fit(corpus, chunk_tokens=0)


@pytest.mark.filterwarnings("ignore:.*fallback")  # every trigram seen often: no count-of-counts
def test_fit_memory_is_bounded_by_the_chunk_not_the_corpus():
    """Counting 600k tokens over a small vocabulary: with 20k-token chunks the peak allocation stays far below
    the one-chunk peak, which grows with the corpus (the token arrays of the whole corpus)."""
    import tracemalloc

    def corpus():  # 60k sentences of 8 words from 20: few distinct n-grams, many tokens; never a list
        rng = np.random.default_rng(0)
        for row in rng.integers(0, 20, (60_000, 8)):
            yield [f"w{i}" for i in row]

    peaks = {}
    for chunk in (20_000, 10 ** 9):
        tracemalloc.start()
        NGramLM(3, "modified-kn").fit(corpus(), chunk_tokens=chunk)
        peaks[chunk] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks[20_000] < peaks[10 ** 9] / 5, peaks


@pytest.mark.filterwarnings("ignore:.*fallback")
def test_arpa_file_layout(tmp_path):
    NGramLM(2).fit(HAND_CORPUS[:1] * 4 + [["a"], ["b", "b"], ["c", "a", "a"]]).to_arpa(tmp_path / "m.arpa")
    lines = (tmp_path / "m.arpa").read_text().splitlines()
    assert lines[1] == "\\data\\" and lines[2].startswith("ngram 1=") and lines[-1] == "\\end\\"
    assert "\\1-grams:" in lines and "\\2-grams:" in lines
    bos = next(line for line in lines if line.split("\t")[1:2] == ["<s>"])
    assert bos.startswith("-99\t<s>\t")  # <s> has probability -99 and a backoff, as in KenLM


KENLM_STYLE_ARPA = """# Input file: hand-written
# Smoothing: Modified Kneser-Ney
\\data\\
ngram 1=5
ngram 2=3
ngram 3=2

\\1-grams:
-99\t<s>\t-0.30103
-1.0\t</s>
-0.69897\ta\t-0.2
-0.5\tb\t-0.1
-1.5\t<unk>\t0

\\2-grams:
-0.2\t<s> a\t-0.25
-0.4\ta b\t-0.15
-0.3\tb </s>

\\3-grams:
-0.1\t<s> a b
-0.05\tb a b

\\end\\
"""


def test_hand_written_arpa_backoff(tmp_path):
    path = tmp_path / "hand.arpa"
    path.write_text(KENLM_STYLE_ARPA)
    model = NGramLM.from_arpa(path)
    ln10 = math.log(10)
    cases = [
        ("b", ["<s>", "a"], -0.1),  # stored trigram
        ("</s>", ["a", "b"], -0.15 + -0.3),  # bo(a b) + p(</s> | b)
        ("a", ["a", "b"], -0.15 + -0.1 + -0.69897),  # bo(a b) + bo(b) + p(a)
        ("b", ["<s>"], -0.30103 + -0.5),  # bo(<s>) + p(b)
        ("zzz", ["a"], -0.2 + -1.5),  # OOV -> <unk>: bo(a) + p(<unk>)
        ("b", ["b", "a"], -0.05),  # trigram whose prefix "b a" is not in the file
        ("</s>", ["b", "a"], 0.0 + -0.2 + -1.0),  # "b a" has no backoff; then bo(a) + p(</s>)
        ("a", ["b"], -0.1 + -0.69897),
        ("b", [], -0.5),
    ]
    for word, ctx, log10p in cases:
        assert model.logprob(word, ctx) == pytest.approx(log10p * ln10, abs=1e-9), (word, ctx)
    total, n = model.score_sentences([["a", "b"]])  # <s> a b </s>
    assert n == 3
    assert total == pytest.approx((-0.2 + -0.1 + -0.15 + -0.3) * ln10, abs=1e-9)
    # written back, the missing "b a" gets the probability backoff gives it: bo(b) + p(a)
    model.to_arpa(tmp_path / "again.arpa")
    assert "-0.79897\tb a\n" in (tmp_path / "again.arpa").read_text()
    again = NGramLM.from_arpa(tmp_path / "again.arpa")
    for word, ctx, _ in cases:
        assert again.logprob(word, ctx) == pytest.approx(model.logprob(word, ctx), abs=1e-9), (word, ctx)


def test_save_and_from_pretrained(tmp_path):
    corpus = zipf_corpus(n_sents=200, seed=5)
    model = create_model("kn3").fit(corpus)
    model.save_pretrained(tmp_path / "kn3")
    assert (tmp_path / "kn3" / "model.arpa").exists() and (tmp_path / "kn3" / "config.json").exists()
    loaded = NGramLM.from_pretrained(tmp_path / "kn3")
    assert (loaded.architecture, loaded.order, loaded.smoothing) == ("kn3", 3, "modified-kn")
    assert loaded.perplexity(corpus[:20]) == pytest.approx(model.perplexity(corpus[:20]), rel=1e-6)
    stupid = NGramLM(3, "stupid").fit(corpus)
    stupid.save_pretrained(tmp_path / "s")
    with pytest.raises(ValueError, match="stupid"):
        NGramLM.from_pretrained(tmp_path / "s").perplexity(corpus[:5])


@pytest.mark.filterwarnings("ignore:.*fallback")
@pytest.mark.parametrize("smoothing", ["modified-kn", "katz", "add-k", "mle", "stupid"])
def test_an_order_past_the_longest_sentence_backs_off_to_the_longest(tmp_path, smoothing):
    """Orders above the longest sentence + <s> </s> have no n-grams: they back off at weight 1 (stupid: alpha, as
    for any unseen in-sentence context), so the model scores as the order that has counts, saved or not."""
    corpus = [["the", "cat", "sat", "on", "the", "mat"], ["the", "dog", "sat"]]
    top = NGramLM(8, smoothing).fit(corpus)
    with pytest.warns(UserWarning, match="order 10: the longest sentence has 6 words .* longer than 8"):
        model = NGramLM(10, smoothing).fit(corpus)
    model.save_pretrained(tmp_path / "m")
    assert "ngram 9=0\nngram 10=0\n" in (tmp_path / "m" / "model.arpa").read_text()
    loaded = NGramLM.from_pretrained(tmp_path / "m")
    alpha = math.log(0.4) if smoothing == "stupid" else 0.0
    for sent in corpus + [corpus[0] + corpus[1] + ["unseen"]]:  # the last one is longer than any seen
        for i, word in enumerate(sent + ["</s>"]):
            ctx = ["<s>", *sent[:i]]
            steps = min(max(i - 6, 0), 2)  # the empty orders 9, 10 whose context (8, 9 tokens) is all in ctx
            want = top.logprob(word, ctx) + steps * alpha
            assert (model.logprob(word, ctx), loaded.logprob(word, ctx)) == pytest.approx((want, want), abs=1e-6)
    assert model.score_sentences(corpus) == pytest.approx(top.score_sentences(corpus))


@pytest.mark.filterwarnings("ignore:.*fallback")
def test_ngram_cli_save_below_a_file_is_one_line_and_writes_nothing(tmp_path, capsys):
    from seqzoo.cli import main
    (tmp_path / "ds").mkdir()
    for split in ("train", "valid", "test"):
        (tmp_path / "ds" / f"{split}.txt").write_text("the cat sat on the mat\nthe dog sat\n")
    (tmp_path / "afile").write_text("hi\n")
    before = sorted(tmp_path.rglob("*"))
    assert main(["ngram", "--dataset", str(tmp_path / "ds"), "--save", str(tmp_path / "afile" / "sub")]) == 1
    err = capsys.readouterr().err  # (the corpus loader's progress bars come first)
    assert err.strip().splitlines()[-1].startswith("seqzoo ngram: error: cannot write") and "Traceback" not in err
    assert "afile is a file, not a folder" in err
    assert sorted(tmp_path.rglob("*")) == before and (tmp_path / "afile").read_text() == "hi\n"


# ------------------------------------------------------------------ errors, registry, misc
def test_stupid_backoff_scores_but_refuses_perplexity():
    model = NGramLM(3, "stupid").fit([["a", "b", "c"], ["a", "b"]])
    assert math.exp(model.logprob("c", ["a", "b"])) == pytest.approx(1 / 2)
    assert math.exp(model.logprob("c", ["b", "b"])) == pytest.approx(0.4 * 1 / 2)  # one step down
    assert math.exp(model.logprob("b", ["c", "c"])) == pytest.approx(0.4 * 0.4 * 2 / 7)  # to the unigram
    total, n = model.score_sentences([["a", "b"]])
    assert n == 3 and math.isfinite(total)
    with pytest.raises(ValueError, match="stupid backoff"):
        model.perplexity([["a", "b"]])


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="modified-kn"):
        NGramLM(3, "witten-bell")
    with pytest.raises(ValueError, match="order"):
        NGramLM(0)
    with pytest.raises(ValueError, match="empty"):
        NGramLM(3).fit([])
    with pytest.raises(ValueError, match="marker"):
        NGramLM(3).fit([["a", "</s>", "b"]])
    with pytest.raises(TypeError, match="split"):
        NGramLM(3).fit(["a b c"])
    with pytest.raises(RuntimeError, match="fit"):
        NGramLM(3).logprob("a", [])
    (tmp_path / "junk.arpa").write_text("this is not\nan ARPA file\n")
    with pytest.raises(ValueError, match="ARPA"):
        NGramLM.from_arpa(tmp_path / "junk.arpa")
    (tmp_path / "bad.arpa").write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\ta\n\n\\end\\\n")
    with pytest.raises(ValueError, match="header says 2"):
        NGramLM.from_arpa(tmp_path / "bad.arpa")
    assert NGramLM(2, "laplace").smoothing == "add-k" and NGramLM(2, "laplace", k=3).k == 1.0
    assert NGramLM(2, "kn").smoothing == "modified-kn"


def test_registry_variants():
    assert {"kn3", "kn5", "ngram_katz3", "ngram_addk3", "ngram_mle3", "ngram_stupid5"} <= set(list_models())
    m = create_model("kn5", order=4)
    assert (m.order, m.smoothing) == (4, "modified-kn")
    assert create_model("ngram_addk3", k=0.1).k == 0.1


@pytest.mark.filterwarnings("ignore:.*fallback")
def test_empty_sentence_and_unk_word():
    model = NGramLM(3).fit([["a", "b"], [], ["b", "<unk>"]])
    total, n = model.score_sentences([[], ["qq"]])  # "</s>" and "<unk> </s>"
    assert n == 3
    assert model.logprob("qq", ["a"]) == model.logprob("<unk>", ["a"])


@pytest.mark.parametrize("word", ["new york", "", "tab\there", "nbsp\xa0"])
def test_a_word_that_arpa_cannot_hold_is_refused_at_fit(word):
    """ARPA lines are words split on white space: such a word would save, then never load."""
    with pytest.raises(ValueError, match="must be non-empty and hold no white space"):
        NGramLM(2).fit([["a", word, "b"]])


# ------------------------------------------------------------------ PTB
def read_ptb(split):
    with open(PTB / f"ptb.{split}.txt") as f:
        return [line.split() for line in f]


@pytest.fixture(scope="module")
def ptb():
    return {s: read_ptb(s) for s in ("train", "valid", "test")}


@needs_ptb
@pytest.mark.slow
@pytest.mark.parametrize("order,expected", [(3, 148.3), (5, 141.2)])
def test_ptb_kneser_ney_perplexity(ptb, order, expected):
    model = NGramLM(order, "modified-kn").fit(ptb["train"])
    total, n = model.score_sentences(ptb["test"])
    assert n == 82430  # 78,669 words + 3,761 sentence ends
    assert math.exp(-total / n) == pytest.approx(expected, rel=0.005)


@needs_ptb
@pytest.mark.slow
def test_ptb_arpa_round_trip(ptb, tmp_path):
    model = NGramLM(3).fit(ptb["train"])
    model.to_arpa(tmp_path / "kn3.arpa")
    loaded = NGramLM.from_arpa(tmp_path / "kn3.arpa")
    assert loaded.perplexity(ptb["valid"]) == pytest.approx(model.perplexity(ptb["valid"]), rel=1e-6)


# -- decoding: the n-gram step function of seqzoo.decoding ----------------------------------------
@pytest.mark.parametrize("smoothing", ["modified-kn", "katz", "stupid"])
def test_decode_step_is_the_model_distribution_and_restarts_after_eos(smoothing):
    import torch
    lm = NGramLM(3, smoothing).fit(zipf_corpus())
    V, eos = len(lm.vocab), lm.vocab.index("</s>")
    state = lm.decode_state(torch.tensor([[eos] + lm.encode("w3 w0")]))  # "w1" comes next
    logp, state = lm.decode_step(torch.tensor([[lm.vocab.index("w1")]]), state)
    assert logp.shape == (1, V) and logp.exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    want = torch.tensor([lm.logprob(w, ["<s>", "w3", "w0", "w1"]) for w in lm.vocab])
    if smoothing == "stupid":  # scores, renormalised over the vocabulary
        want = want.log_softmax(-1)
    assert torch.allclose(logp[0, 1:], want[1:].float(), atol=1e-5)  # id 0 is <s>: never predicted
    assert logp[0, 0].exp().item() < 1e-30
    after_eos, _ = lm.decode_step(torch.tensor([[eos]]), state)  # a new sentence: only <s> as history
    at_start = torch.tensor([lm.logprob(w, ["<s>"]) for w in lm.vocab]).float()
    if smoothing == "stupid":
        at_start = at_start.log_softmax(-1)
    assert torch.allclose(after_eos[0, 1:], at_start[1:], atol=1e-5)


def test_generate_and_beam_search_decode_an_ngram_lm():
    import torch

    from seqzoo.decoding import beam_search, generate
    lm = NGramLM(3, "modified-kn").fit(zipf_corpus())
    eos = lm.vocab.index("</s>")
    prompt = torch.tensor([[eos] + lm.encode("w5 w5")])
    out = generate(lm, prompt, 6, greedy=True)[0].tolist()
    context, want = ["<s>", "w5", "w5"], []
    for _ in range(6):  # the greedy chain, word by word through logprob
        best = max(lm.vocab[1:], key=lambda w: lm.logprob(w, context))
        want.append(lm.vocab.index(best))
        context = ["<s>"] if best == "</s>" else context + [best]
    assert out == want
    sampled = generate(lm, prompt.repeat(4, 1), 30, top_k=5, generator=torch.Generator().manual_seed(0))
    assert sampled.shape == (4, 30) and len({tuple(r) for r in sampled.tolist()}) > 1
    (hyp,), = beam_search(lm.decode_step, lm.decode_state(prompt[:, :-1]), prompt[:, -1], eos, 1, 6)
    assert hyp.tokens == (want[:want.index(eos)] if eos in want else want)


def test_generate_cli_on_a_saved_ngram_folder(tmp_path, capsys):
    import seqzoo
    from seqzoo.decoding import generate_main
    lm = NGramLM(3, "modified-kn").fit(zipf_corpus())
    seqzoo.save_pretrained(lm, tmp_path / "kn3")
    assert generate_main([str(tmp_path / "kn3"), "--prompt", "w5 w5 unseen", "--max-new-tokens", "12",
                          "--greedy"]) == 0
    out = capsys.readouterr().out.split()
    assert out[:3] == ["w5", "w5", "unseen"] and len(out) > 3
    assert set(out[3:]) <= set(lm.vocab[1:]) - {"</s>"}
