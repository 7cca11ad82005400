"""One decoder for every model: greedy search, beam search and sampling over a step function.

The protocol: a model exposes ``step_fn(tokens (N, 1) int64, state) -> (log_probs (N, V) float, new_state)``,
the distribution of the next token after ``tokens`` given ``state``. ``state`` is any nest of tuples, lists,
dicts and tensors; beam search reorders it with ``reorder_fn(state, index (M,) int64)``, by default
:func:`reorder_state`, which takes ``index_select`` along dim 0 of every tensor (so keep states batch-first, or
pass your own ``reorder_fn``). Seq2seq models give ``Seq2SeqNet.decode_step``; language models get one from
:func:`generate`.

Beam search is batched over sentences *and* beams: the ``N * K`` live hypotheses are one batch of the step
function, and a sentence leaves the batch once it has ``K`` finished hypotheses.

References:
- Sutskever, Vinyals & Le 2014, "Sequence to Sequence Learning with Neural Networks" (left-to-right beam search).
- Wu et al. 2016, "Google's Neural Machine Translation System" (length penalty ((5 + |Y|) / 6) ** alpha).
- Fan, Lewis & Dauphin 2018, "Hierarchical Neural Story Generation" (top-k sampling).
- Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration" (nucleus / top-p sampling).
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from seqzoo.utils import evaluating, parse_device

__all__ = ["Hypothesis", "StepFn", "reorder_state", "suppress", "length_penalty", "check_length_penalty", "filter_logits",
           "greedy", "sample", "beam_search", "generate", "generate_main", "translate_main"]

StepFn = Callable[[torch.Tensor, Any], "tuple[torch.Tensor, Any]"]


@dataclass
class Hypothesis:
    """Generated ids (``eos`` excluded), their summed log-probability (``eos`` included) and, for beam search,
    the score divided by the length penalty, by which n-best lists are ranked."""
    tokens: list
    score: float
    normalized: float | None = None


def reorder_state(state, index: torch.Tensor):
    """``index_select(0, index)`` on every tensor of a nest of tuples / lists / dicts; ``None`` stays."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.index_select(0, index)
    if isinstance(state, dict):
        return {k: reorder_state(v, index) for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(reorder_state(s, index) for s in state)
    raise TypeError(f"cannot reorder a state of type {type(state).__name__}; pass reorder_fn=")


def suppress(step_fn: StepFn, ids) -> StepFn:
    """``step_fn`` that never proposes ``ids``: their log-probabilities become ``-inf`` (as fairseq and
    ``transformers`` do for padding). For tokens a model never sees as a target, such as ``<pad>`` and ``<bos>``,
    which training leaves with a small but non-zero probability."""
    ids = sorted(set(ids))
    if not ids:
        return step_fn

    def step(tokens, state):
        log_probs, state = step_fn(tokens, state)
        return log_probs.index_fill(-1, torch.tensor(ids, device=log_probs.device), float("-inf")), state
    return step


def length_penalty(length: int, alpha: float) -> float:
    """GNMT: ((5 + length) / 6) ** alpha; alpha 0 ranks by the summed log-probability."""
    return ((5.0 + length) / 6.0) ** alpha


def check_length_penalty(alpha: float) -> None:
    """``alpha`` is a finite number >= 0 (GNMT uses 0.6 to 1.0)."""
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"length penalty alpha must be a finite number >= 0, got {alpha}")


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """(N, V) -> (N, V) with ``-inf`` outside the ``top_k`` largest and outside the nucleus: the smallest set of
    most probable tokens whose probability reaches ``top_p`` (the most probable token is always kept)."""
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        outside = probs.cumsum(-1) - probs >= top_p  # mass before this token already reaches top_p
        logits = logits.masked_fill(torch.zeros_like(outside).scatter(-1, order, outside), float("-inf"))
    return logits


def _start(start, device=None) -> torch.Tensor:
    t = torch.as_tensor(start, dtype=torch.long, device=device)
    return t.reshape(-1)


def _run(step_fn: StepFn, state, start, eos_id: int | None, max_len: int, pick) -> tuple[torch.Tensor, torch.Tensor]:
    """Left to right, one token per row and step -> ids (N, T) (after ``eos``: ``eos``) and scores (N,)."""
    tokens = _start(start)
    n = tokens.numel()
    done = torch.zeros(n, dtype=torch.bool, device=tokens.device)
    scores, out = torch.zeros(n, dtype=torch.float64, device=tokens.device), []
    for _ in range(max_len):
        log_probs, state = step_fn(tokens.view(n, 1), state)
        nxt = pick(log_probs)
        if eos_id is not None:
            nxt = nxt.masked_fill(done, eos_id)
        scores += log_probs.gather(1, nxt.view(n, 1)).squeeze(1).double().masked_fill(done, 0.0)
        out.append(nxt)
        tokens = nxt
        if eos_id is not None:
            done |= nxt == eos_id
            if bool(done.all()):
                break
    ids = torch.stack(out, 1) if out else torch.empty(n, 0, dtype=torch.long, device=tokens.device)
    return ids, scores


def _hypotheses(ids: torch.Tensor, scores: torch.Tensor, eos_id: int | None) -> list[Hypothesis]:
    out = []
    for row, s in zip(ids.tolist(), scores.tolist()):
        if eos_id is not None and eos_id in row:
            row = row[:row.index(eos_id)]
        out.append(Hypothesis(row, s))
    return out


@torch.no_grad()
def greedy(step_fn: StepFn, state, start, eos_id: int | None, max_len: int) -> list[Hypothesis]:
    """The most probable next token at every step, for each of the N rows of ``start`` ((N,) first inputs)."""
    return _hypotheses(*_run(step_fn, state, start, eos_id, max_len, lambda lp: lp.argmax(-1)), eos_id)


def _sampler(temperature: float, top_k: int | None, top_p: float | None, generator: torch.Generator | None):
    if not temperature > 0 or not math.isfinite(temperature):  # nan is not > 0
        raise ValueError(f"temperature must be a finite number > 0, got {temperature} (use greedy decoding for 0)")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")

    def pick(log_probs):
        probs = filter_logits(log_probs.float() / temperature, top_k, top_p).softmax(-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)
    return pick


@torch.no_grad()
def sample(step_fn: StepFn, state, start, eos_id: int | None, max_len: int, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None,
           generator: torch.Generator | None = None) -> list[Hypothesis]:
    """Ancestral sampling from softmax(log_probs / temperature), restricted to the top-k and the top-p nucleus.
    Scores are the model's own log-probabilities of the drawn tokens."""
    return _hypotheses(*_run(step_fn, state, start, eos_id, max_len,
                             _sampler(temperature, top_k, top_p, generator)), eos_id)


@torch.no_grad()
def beam_search(step_fn: StepFn, state, start, eos_id: int, beam_size: int = 5, max_len: int = 100,
                alpha: float = 0.0, n_best: int = 1, reorder_fn=reorder_state) -> list[list[Hypothesis]]:
    """Beam search for N sentences at once -> for each, its ``n_best`` hypotheses, best first.

    Each step scores all ``K * V`` continuations of a sentence's K beams and keeps the best ``2K``: those ending
    in ``eos`` among the first K are finished, the first K others are the new beams. A sentence is done with K
    finished hypotheses; after ``max_len`` steps the live beams count as finished. Finished hypotheses are
    ranked by score / ``length_penalty(len, alpha)`` (``eos`` counted in ``len``). ``state`` is for N rows.
    """
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be in [1, beam_size={beam_size}], got {n_best}")
    check_length_penalty(alpha)
    start = _start(start)
    n, k, dev = start.numel(), beam_size, start.device
    rows = torch.arange(n, device=dev).repeat_interleave(k)
    state = reorder_fn(state, rows)
    tokens = start.repeat_interleave(k)
    scores = torch.full((n, k), float("-inf"), device=dev)
    scores[:, 0] = 0.0  # the K copies of a sentence start identical: expand only the first
    hist = torch.empty(n * k, 0, dtype=torch.long, device=dev)
    finished: list[list[Hypothesis]] = [[] for _ in range(n)]
    live = list(range(n))  # sentence of each row-block still in the batch
    for _ in range(max_len):
        log_probs, state = step_fn(tokens.view(-1, 1), state)
        scores = scores.to(log_probs.dtype)
        v, m = log_probs.shape[-1], len(live)
        cand = (scores.view(m * k, 1) + log_probs).view(m, k * v)
        top_s, top_i = cand.topk(min(2 * k, k * v), dim=1)  # (m, 2K), best first
        beam, tok = top_i // v, top_i % v
        is_eos = tok == eos_id
        ends = (is_eos[:, :k] & torch.isfinite(top_s[:, :k])).nonzero().tolist()
        if ends:
            s_cpu, b_cpu = top_s.tolist(), beam.tolist()
            for i, j in ends:
                seq = hist[i * k + b_cpu[i][j]].tolist()
                s = s_cpu[i][j]
                finished[live[i]].append(Hypothesis(seq, s, s / length_penalty(len(seq) + 1, alpha)))
        # the first K candidates that do not end: eos ranks pushed behind every other candidate
        rank = torch.arange(top_s.shape[1], device=dev).expand_as(top_s) + is_eos.long() * top_s.shape[1]
        sel = rank.argsort(dim=1)[:, :k]
        scores, tokens = top_s.gather(1, sel), tok.gather(1, sel).view(-1)
        origin = (torch.arange(m, device=dev).view(m, 1) * k + beam.gather(1, sel)).view(-1)
        keep = [i for i, s in enumerate(live) if len(finished[s]) < k]
        if len(keep) < m:  # done sentences leave the batch
            kt = torch.tensor(keep, dtype=torch.long, device=dev)
            origin, scores, tokens = origin.view(m, k)[kt].view(-1), scores[kt], tokens.view(m, k)[kt].view(-1)
            live = [live[i] for i in keep]
        hist = torch.cat([hist[origin], tokens.view(-1, 1)], 1)
        if not live:
            break
        state = reorder_fn(state, origin)
    for i, s in enumerate(live):  # max_len reached: live beams count as finished
        for j, sc in enumerate(scores[i].tolist()):
            if sc > float("-inf"):
                seq = hist[i * k + j].tolist()
                finished[s].append(Hypothesis(seq, sc, sc / length_penalty(len(seq), alpha)))
    return [sorted(f, key=lambda h: -h.normalized)[:n_best] for f in finished]


# -- language models ------------------------------------------------------------------------------
_greedy, _sample = greedy, sample


@torch.no_grad()
def generate(lm, prompt_ids, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, greedy: bool = False, eos_id: int | None = None,
             generator: torch.Generator | None = None, suppress_ids=None) -> torch.Tensor:
    """Continue ``prompt_ids`` ((P,) or (N, P) int64, P >= 1) with ``lm``, any module with ``forward(ids (N, T),
    state) -> (logits (N, T, V), state)`` such as :class:`seqzoo.models.rnn_lm.RNNLM`, or an
    :class:`~seqzoo.models.ngram.NGramLM` (its ``decode_step``).

    Returns the new tokens only, (N, max_new_tokens) int64 (fewer columns if every row emitted ``eos_id``;
    after its ``eos`` a row holds ``eos``). ``greedy=True`` ignores temperature / top-k / top-p. ``suppress_ids``
    are never generated (see :func:`suppress`); by default the ``<pad>`` and ``<bos>`` of ``lm.vocab``, which an LM
    never has as a target.
    """
    ids = torch.as_tensor(prompt_ids, dtype=torch.long)
    ids = ids.view(1, -1) if ids.dim() == 1 else ids
    if ids.shape[1] < 1:
        raise ValueError("the prompt needs at least one token (e.g. <eos>, the start of a line)")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    pick = (lambda lp: lp.argmax(-1)) if greedy else _sampler(temperature, top_k, top_p, generator)
    if suppress_ids is None:
        vocab = getattr(lm, "vocab", None)
        suppress_ids = (vocab.pad_id, vocab.bos_id) if hasattr(vocab, "bos_id") else ()
    if not isinstance(lm, torch.nn.Module):  # an n-gram LM: a step function of its own, on the CPU
        step = suppress(lm.decode_step, suppress_ids)
        return _run(step, lm.decode_state(ids[:, :-1]), ids[:, -1], eos_id, max_new_tokens, pick)[0]

    def step(tokens, st):
        logits, st = lm(tokens, st)
        return logits[:, -1].float().log_softmax(-1), st

    with evaluating(lm) as device:
        ids = ids.to(device)
        state = lm(ids[:, :-1])[1] if ids.shape[1] > 1 else None
        return _run(suppress(step, suppress_ids), state, ids[:, -1], eos_id, max_new_tokens, pick)[0]


def generate_main(argv=None) -> int:
    """``seqzoo generate CHECKPOINT --prompt "..."``: continue a prompt with a language model."""
    p = argparse.ArgumentParser(prog="seqzoo generate", description="Continue a prompt with a language model "
                                "(a Lightning .ckpt of an RNN LM, or anything seqzoo.from_pretrained reads).")
    p.add_argument("checkpoint", help="a Lightning .ckpt (read with torch.load(weights_only=True)), a checkpoint "
                   "folder or a registered name with a tag")
    p.add_argument("--prompt", default="", help="text to continue (default: start of a line)")
    p.add_argument("--max-new-tokens", type=int, default=50, help="tokens to generate (default: 50)")
    p.add_argument("--temperature", type=float, default=None, help="softmax temperature (default: 1)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most probable tokens only")
    p.add_argument("--top-p", type=float, default=None, help="sample within the top-p nucleus only")
    p.add_argument("--greedy", action="store_true", help="the most probable token every step")
    p.add_argument("--num-samples", type=int, default=1, help="continuations to print (default: 1)")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument("--data-dir", default=None, help=".ckpt only: corpus mirror to rebuild the vocab from")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a Lightning .ckpt (a pickle; read with torch.load(weights_only=True))")
    a = p.parse_args(argv)
    if a.num_samples < 1:
        raise ValueError(f"--num-samples must be >= 1, got {a.num_samples}")
    flags = (("--temperature", a.temperature), ("--top-k", a.top_k), ("--top-p", a.top_p))
    sampling = [f for f, v in flags if v is not None]
    if a.greedy and sampling:
        raise ValueError(f"--greedy takes the most probable token: {', '.join(sampling)} would be ignored; drop one")
    a.temperature = 1.0 if a.temperature is None else a.temperature
    from seqzoo import hub
    lm = hub.load_model(a.checkpoint, a.trust_pickle, a.data_dir)
    family = hub.model_family(lm)
    if family not in ("rnn_lm", "window_lm", "ngram"):
        hint = "; translate with seqzoo translate" if family == "seq2seq" else ""
        raise ValueError(f"{a.checkpoint} is a {type(lm).__name__} ({family}), not a language model: seqzoo generate "
                         f"continues text with an RNN, window or n-gram LM{hint}")
    gen = torch.Generator().manual_seed(a.seed) if a.seed is not None else None
    if isinstance(lm, torch.nn.Module):
        vocab = getattr(lm, "vocab", None)
        if vocab is None:
            raise ValueError(f"{a.checkpoint} has no vocab: cannot turn the prompt into ids")
        prompt = [vocab.eos_id] + vocab.encode(a.prompt, add_eos=False)  # <eos> starts every line in training
        level, eos_token = vocab.level, vocab.itos[vocab.eos_id]

        def decode(row):
            return vocab.decode(row, skip_specials=False)
    else:  # an n-gram LM: words; </s> ends a sentence, the next starts at <s>
        from seqzoo.models.ngram import EOS
        level, eos_token = "word", EOS
        prompt = [lm.vocab.index(EOS)] + lm.encode(a.prompt)

        def decode(row):
            return " ".join(lm.vocab[i] for i in row)

    def text_of(row):  # every end of line is a line break, the last one too
        text = decode(row)
        return "\n".join(p.strip(" ") for p in text.split(eos_token)) if level == "word" else text.replace(eos_token, "\n")

    ids = torch.tensor([prompt] * a.num_samples)
    out = generate(lm, ids, a.max_new_tokens, a.temperature, a.top_k, a.top_p, a.greedy, generator=gen)
    for row in out.tolist():
        print((a.prompt + (" " if a.prompt and level == "word" else "") + text_of(row)).strip())
    return 0


def translate_main(argv=None) -> int:
    """``seqzoo translate CHECKPOINT --beam 5 < src.txt > hyp.txt``: one translation per input line."""
    p = argparse.ArgumentParser(prog="seqzoo translate", description="Translate stdin line by line with a "
                                "seq2seq checkpoint: a seqzoo folder, a Hub repo or registered name, or a Lightning "
                                ".ckpt (read with torch.load(weights_only=True)).")
    p.add_argument("checkpoint", help="a checkpoint folder, hf-hub:org/name, org/name, or a Lightning .ckpt")
    p.add_argument("--beam", type=int, default=5, help="beam size; 1 = greedy (default: 5)")
    p.add_argument("--length-penalty", type=float, default=None, help="GNMT alpha (default: the checkpoint's)")
    p.add_argument("--n-best", type=int, default=1, help="hypotheses per line, tab-separated (default: 1)")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default: 64)")
    p.add_argument("--max-len", type=int, default=None, help="output tokens at most (default: 2 x source + 10)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--trust-pickle", action="store_true",
                   help="required for a Lightning .ckpt: it is a pickle (read with torch.load(weights_only=True))")
    a = p.parse_args(argv)
    for flag, value in (("--beam", a.beam), ("--n-best", a.n_best), ("--batch-size", a.batch_size),
                        ("--max-len", a.max_len)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    from seqzoo.hub import PICKLE_SUFFIXES, from_pretrained
    from seqzoo.models.seq2seq import Seq2Seq, Seq2SeqNet
    a.device = parse_device(a.device)
    if str(a.checkpoint).endswith(PICKLE_SUFFIXES):
        if not a.trust_pickle:
            raise ValueError(f"{a.checkpoint} is a Lightning .ckpt, a pickle: pass --trust-pickle if you trust its "
                             f"source")
        model = Seq2Seq.from_checkpoint(a.checkpoint, map_location=a.device)
    else:
        net = from_pretrained(a.checkpoint)
        if not isinstance(net, Seq2SeqNet):
            raise ValueError(f"{a.checkpoint} is a {type(net).__name__}, not a translation model (Seq2SeqNet)")
        model = Seq2Seq.from_net(net.to(a.device))
    from seqzoo.data.corpora import read_stdin_lines
    lines = read_stdin_lines()
    outs = model.translate(lines, beam_size=a.beam, length_penalty=a.length_penalty, n_best=a.n_best,
                           batch_size=a.batch_size, max_len=a.max_len)
    for hyps in outs:
        print("\t".join(hyps) if a.n_best > 1 else hyps[0])
    return 0
