"""Lexically constrained beam search on a toy model with a known next-token table, checked
against exhaustive search over every token sequence (phrases found with Python's ``in``, the
grammar with ``re``); phrase tracking checked against substring search."""

from __future__ import annotations

import itertools
import math
import random
import re

import numpy as np
import pytest

from structgen import compile_regex
from structgen.generation.beam import BatchScorer, constrained_beam_search
from structgen.generation.phrases import PhraseConstraints
from test_aligned import EOS, TOKENS, VOCAB

MAX_LEN = 5


def random_table(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.dirichlet([0.5] * 6, size=7)


def longest_match(data: bytes) -> list[int]:
    ids, i = [], 0
    while i < len(data):
        options = [t for t in range(5) if data.startswith(TOKENS[t], i)]
        if not options:
            return ids
        t = max(options, key=lambda t: len(TOKENS[t]))
        ids.append(t)
        i += len(TOKENS[t])
    return ids


def exhaustive_best(table, must, must_not, pattern):
    best, best_seq = -math.inf, None
    for n in range(0, MAX_LEN + 1):
        for seq in itertools.product(range(5), repeat=n):
            text = b"".join(TOKENS[t] for t in seq).decode()
            if not all(any(p in text for p in ([m] if isinstance(m, str) else m)) for m in must):
                continue
            if any(p in text for p in must_not) or (pattern and not re.fullmatch(pattern, text)):
                continue
            prev, score = 6, 0.0
            for t in seq + (EOS,):
                score += math.log(table[prev, t])
                prev = t
            if score > best:
                best, best_seq = score, seq
    return best, best_seq


def run(table, must, must_not=(), pattern=None, beams=64, **kw):
    scorer = BatchScorer(fn=lambda prefixes: np.log(np.stack([table[p[-1] if p else 6] for p in prefixes])))
    constraint = compile_regex(pattern, VOCAB) if pattern else None
    return constrained_beam_search(
        scorer, VOCAB, PhraseConstraints(must, must_not), constraint, encode=longest_match,
        num_beams=beams, max_new_tokens=MAX_LEN + 1, length_penalty=0.0, **kw,
    )


CASES = [
    (["bc", "ca"], [], None),
    (["cb"], ["aa"], None),
    ([["aab", "bca"], "c"], [], None),
    (["ba"], [], r"[ab]+c"),
    (["b", "bb"], ["ca"], r"(a|b|c)*c"),
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("must,must_not,pattern", CASES)
def test_large_beam_finds_the_exhaustive_best(seed, must, must_not, pattern):
    table = random_table(seed)
    best, best_seq = exhaustive_best(table, must, must_not, pattern)
    out = run(table, must, must_not, pattern)
    if best_seq is None:
        assert not out or not out[0].completed
        return
    top = out[0]
    assert top.completed and math.isclose(top.score, best, abs_tol=1e-9), (top, best_seq, best)
    assert tuple(top.token_ids) == best_seq


@pytest.mark.parametrize("seed", range(6))
def test_outputs_meet_phrases_and_grammar(seed):
    table = random_table(100 + seed)
    for must, must_not, pattern in CASES:
        for h in run(table, must, must_not, pattern, beams=4, num_return_sequences=3):
            if not h.completed:
                continue
            text = h.text
            assert all(any(p in text for p in ([m] if isinstance(m, str) else m)) for m in must)
            assert not any(p in text for p in must_not)
            assert pattern is None or re.fullmatch(pattern, text)
            assert len(h.met) == len(must)


def test_phrase_automaton_matches_substring_search():
    """Phrases split across tokens, starting or ending mid-token, alternatives, forbidden ones."""
    pc = PhraseConstraints(["abc", ["bcd", "cab"], "é"], ["bb"])
    rng = random.Random(0)
    for _ in range(3000):
        text = "".join(rng.choice("abcdé") for _ in range(rng.randrange(14))).encode()
        state, met, ok, i = 0, 0, True, 0
        while i < len(text):
            k = rng.randrange(1, 5)
            state, met, step_ok = pc.advance(state, met, text[i : i + k])
            ok, i = ok and step_ok, i + k
        assert bool(met & 1) == (b"abc" in text)
        assert bool(met & 2) == (b"bcd" in text or b"cab" in text)
        assert bool(met & 4) == ("é".encode() in text)
        assert ok == (b"bb" not in text)
        for rests in pc.remainders(state, met):  # what is left of each unmet item meets it
            for rest in rests:
                _, after, _ = pc.advance(state, met, rest)
                assert bin(after).count("1") > bin(met).count("1")


@pytest.mark.model
def test_real_model_beam_search_with_a_grammar(smollm2):
    """SmolLM2: the required words appear, the forbidden one does not, the regex holds."""
    import structgen

    model, tok = smollm2
    pattern = r"[A-Z][A-Za-z ,']{0,150}\."
    out = structgen.beam_search(
        "Write one sentence about a trip.", must_include=["Lisbon", ["tram", "trams"]], must_not_include=["Porto"],
        regex=pattern, num_beams=4, num_return_sequences=2, max_new_tokens=40, model=model, tokenizer=tok,
    )
    assert len(out) == 2 and out[0].normalized_score >= out[1].normalized_score
    for h in out:
        assert h.completed and re.fullmatch(pattern, h.text), h
        assert "Lisbon" in h.text and "tram" in h.text and "Porto" not in h.text
        assert h.met == ["Lisbon", ["tram", "trams"]]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("budget", [3, 4, 6])
def test_tight_budget_still_finishes(seed, budget):
    """A model that loves to ramble ("a" after everything) and a small beam: whenever some
    sequence within the budget meets the phrases and the grammar (exhaustive search), the search
    returns a completed one."""
    rng = np.random.default_rng(seed)
    table = rng.dirichlet([0.5] * 6, size=7)
    table[:, 0] += 20.0
    table[:, EOS] *= 0.01
    table /= table.sum(axis=1, keepdims=True)
    must, pattern = ["bc"], r"a*(b|c)+a?c"
    feasible = any(
        re.fullmatch(pattern, text) and "bc" in text
        for n in range(1, budget)
        for seq in itertools.product(range(5), repeat=n)
        for text in [b"".join(TOKENS[t] for t in seq).decode()]
    )
    scorer = BatchScorer(fn=lambda prefixes: np.log(np.stack([table[p[-1] if p else 6] for p in prefixes])))
    out = constrained_beam_search(
        scorer, VOCAB, PhraseConstraints(must), compile_regex(pattern, VOCAB), encode=longest_match,
        num_beams=2, max_new_tokens=budget, length_penalty=1.0,
    )
    assert feasible
    assert out[0].completed and "bc" in out[0].text and re.fullmatch(pattern, out[0].text), out
