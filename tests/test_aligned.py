"""Grammar-aligned sampling on a toy model with a known next-token table: the conditional
distribution p(x | constraint) is computed by enumerating every token sequence and checking
its text with Python's ``re`` (never with structgen), then compared with samples."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
import torch

from structgen import Vocabulary, compile_regex
from structgen.generation.aligned import AlignedSampler
from structgen.generation.importance import (
    effective_sample_size,
    importance_resample,
    log_importance_weights,
    weighted_distribution,
)
from structgen.generation.scoring import CallableScorer

TOKENS = [b"a", b"b", b"c", b"ab", b"bc", b"</s>"]
EOS = 5
VOCAB = Vocabulary(TOKENS, special_ids=[EOS], eos_token_ids=[EOS], name="toy")
PATTERN = r"(a|b){1,3}c"
MAX_NEW_TOKENS = 4

# P(next | previous token); row 6 is the start. Columns: a, b, c, ab, bc, EOS.
# "a" is the likely start, but after it the model wants to stop: plain masking over-samples it.
TABLE = np.array(
    [
        [0.05, 0.03, 0.02, 0.03, 0.02, 0.85],  # after a
        [0.10, 0.10, 0.50, 0.05, 0.20, 0.05],  # after b
        [0.02, 0.02, 0.02, 0.02, 0.02, 0.90],  # after c
        [0.10, 0.05, 0.40, 0.05, 0.10, 0.30],  # after ab
        [0.02, 0.02, 0.02, 0.02, 0.02, 0.90],  # after bc
        [1 / 6] * 6,  # after EOS (never used)
        [0.60, 0.10, 0.10, 0.10, 0.05, 0.05],  # start
    ]
)


def table_logprobs(prefixes: list[list[int]], table: np.ndarray = TABLE) -> np.ndarray:
    return np.log(np.stack([table[p[-1] if p else 6] for p in prefixes]))


def sequence_prob(seq: tuple[int, ...], table: np.ndarray = TABLE) -> float:
    prob, prev = 1.0, 6
    for t in seq + (EOS,):
        prob *= table[prev, t]
        prev = t
    return prob


def exact_distribution(pattern: str = PATTERN, max_len: int = MAX_NEW_TOKENS, table: np.ndarray = TABLE) -> dict:
    """p(token sequence | its text matches ``pattern``), by enumerating every sequence."""
    mass = {}
    for length in range(0, max_len + 1):
        for seq in itertools.product(range(5), repeat=length):
            if re.fullmatch(pattern, b"".join(TOKENS[t] for t in seq).decode()):
                mass[seq] = sequence_prob(seq, table)
    total = sum(mass.values())
    return {k: v / total for k, v in mass.items()}


EXACT = exact_distribution()


def sampler(method: str, seed: int = 0, **kw) -> AlignedSampler:
    constraint = compile_regex(PATTERN, VOCAB)
    return AlignedSampler(
        constraint=constraint, scorer=CallableScorer(table_logprobs), method=method, seed=seed, max_new_tokens=MAX_NEW_TOKENS, **kw
    )


def empirical(samples, n=None) -> dict[tuple[int, ...], float]:
    chosen = samples[:n] if n else samples
    counts: dict[tuple[int, ...], float] = {}
    for r in chosen:
        counts[tuple(r.token_ids)] = counts.get(tuple(r.token_ids), 0) + 1 / len(chosen)
    return counts


def total_variation(p: dict, q: dict) -> float:
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def chi_square_p_value(samples, expected: dict) -> float:
    """Pearson's goodness-of-fit test; outcomes expected fewer than 5 times are pooled."""
    n = len(samples)
    observed: dict = {}
    for r in samples:
        observed[tuple(r.token_ids)] = observed.get(tuple(r.token_ids), 0) + 1
    big = [k for k, p in expected.items() if p * n >= 5]
    obs = [observed.get(k, 0) for k in big] + [n - sum(observed.get(k, 0) for k in big)]
    exp = [expected[k] * n for k in big] + [n - sum(expected[k] * n for k in big)]
    stat = sum((o - e) ** 2 / e for o, e in zip(obs, exp) if e > 0)
    dof = sum(1 for e in exp if e > 0) - 1
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64), torch.tensor(stat / 2, dtype=torch.float64)))


def test_reference_is_distorted_by_masking():
    """The toy is a real test: plain masking's distribution differs from the conditional."""
    starts_with_a = sum(p for k, p in EXACT.items() if k[0] == 0)
    assert starts_with_a < 0.35  # conditional: "a..." is rare once the future is accounted for


@pytest.mark.parametrize("method", ["mask", "asap", "exact"])
def test_every_sample_satisfies_the_constraint(method):
    for r in sampler(method, seed=1).sample(200):
        assert re.fullmatch(PATTERN, r.text) and r.completed and r.finish_reason == "eos"
        assert len(r.log_z) == len(r.token_ids) + 1  # EOS was scored too


def test_exact_sampler_passes_chi_square():
    s = sampler("exact", seed=2)
    samples = s.sample(2000)
    assert chi_square_p_value(samples, EXACT) > 1e-3
    assert 0 < s.acceptance_rate < 1
    assert s.stats.rejected > 0 and s.stats.accepted >= 2000


def test_plain_masking_fails_chi_square():
    samples = sampler("mask", seed=2).sample(2000)
    assert chi_square_p_value(samples, EXACT) < 1e-6


def test_exact_sampler_acceptance_rises_as_it_learns():
    s = sampler("exact", seed=3)
    s.sample(50)
    early = s.acceptance_rate
    proposals, accepted = s.stats.proposals, s.stats.accepted
    s.sample(1000)
    late = (s.stats.accepted - accepted) / (s.stats.proposals - proposals)
    assert late > early


def test_asap_divergence_shrinks_with_n():
    samples = sampler("asap", seed=4).sample(3000)
    mask_tv = total_variation(EXACT, empirical(sampler("mask", seed=4).sample(3000)))
    tv_100, tv_all = total_variation(EXACT, empirical(samples, 100)), total_variation(EXACT, empirical(samples))
    late = total_variation(EXACT, empirical(samples[1000:]))
    assert tv_all < tv_100 and late < 0.06 and late < mask_tv / 4, (tv_100, tv_all, late, mask_tv)


def test_asap_bound_converges_to_valid_mass():
    s = sampler("asap", seed=5)
    s.sample(2000)
    valid_mass = sum(sequence_prob(k) for k in EXACT)
    assert s.log_valid_mass_bound >= math.log(valid_mass) - 1e-9  # an upper bound
    assert s.log_valid_mass_bound - math.log(valid_mass) < 0.05  # and nearly tight


def test_importance_weights_correct_plain_masking():
    samples = sampler("mask", seed=6).sample(3000)
    for r in samples[:20]:
        assert math.isclose(r.log_importance_weight, sum(r.log_z), abs_tol=1e-9)
        assert math.isclose(r.logprob, math.log(sequence_prob(tuple(r.token_ids))), abs_tol=1e-9)
    weighted = weighted_distribution(samples, key=lambda r: tuple(r.token_ids))
    assert total_variation(EXACT, weighted) < 0.05
    assert total_variation(EXACT, empirical(samples)) > 0.2
    resampled = importance_resample(samples, 3000, seed=0)
    assert total_variation(EXACT, empirical(resampled)) < 0.06
    assert 1 < effective_sample_size(samples) < len(samples)


def test_exact_samples_have_equal_weights():
    samples = sampler("exact", seed=7).sample(50)
    assert np.allclose(log_importance_weights(samples), 0.0)


def test_seed_reproduces_samples():
    a = [r.token_ids for r in sampler("asap", seed=8).sample(100)]
    b = [r.token_ids for r in sampler("asap", seed=8).sample(100)]
    assert a == b


def test_tempered_or_truncated_sampling_is_refused():
    for kw in ({"temperature": 0.7}, {"top_k": 5}, {"top_p": 0.9}):
        with pytest.raises(ValueError, match="temperature 1"):
            sampler("asap", **kw)


def test_unsatisfiable_within_length_is_an_error():
    constraint = compile_regex(r"aaaaac", VOCAB)
    s = AlignedSampler(constraint=constraint, scorer=CallableScorer(table_logprobs), method="exact", max_new_tokens=3, seed=0)
    with pytest.raises(ValueError, match="no continuation"):
        s.sample(5)


def test_exact_sampler_with_rare_valid_continuations():
    """An unbounded language cut at 6 tokens (606 token sequences, dead ends at the cut) under
    a random table that prefers to stop: the accepted samples follow the conditional."""
    rng = np.random.default_rng(11)
    table = rng.dirichlet([0.3] * 6, size=7)
    table[:, EOS] += 2.0  # stopping is what the model likes, and only "...c" may stop
    table /= table.sum(axis=1, keepdims=True)
    pattern = r"(a|b|ab)*bc"
    expected = exact_distribution(pattern, 6, table)
    def make(method: str) -> AlignedSampler:
        scorer = CallableScorer(lambda prefixes: table_logprobs(prefixes, table))
        return AlignedSampler(constraint=compile_regex(pattern, VOCAB), scorer=scorer, method=method, max_new_tokens=6, seed=12, batch_size=64)

    assert chi_square_p_value(make("exact").sample(2000), expected) > 1e-3
    mask = make("mask").sample(2000)
    assert chi_square_p_value(mask, expected) < 1e-6


@pytest.mark.model
def test_real_model_samplers_stay_valid(smollm2):
    """With SmolLM2: ASAp returns valid JSON for a schema (checked by jsonschema), the exact
    sampler valid numbers with its acceptance rate."""
    import jsonschema

    model, tok = smollm2
    schema = {"type": "object", "properties": {"size": {"enum": ["S", "M", "L"]}, "n": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["size", "n"], "additionalProperties": False}
    s = AlignedSampler("A T-shirt as JSON.", method="asap", schema=schema, model=model, tokenizer=tok, max_new_tokens=24, batch_size=8, seed=0)
    for r in s.sample(8):
        jsonschema.validate(r.value, schema)
        assert r.valid and r.finish_reason == "eos"
    assert s.log_valid_mass_bound <= 0.0 and s.stats.accepted >= 8
    pattern = r"1[0-9]{2}"
    exact = AlignedSampler("Pick a number between 1 and 10.", method="exact", regex=pattern, model=model, tokenizer=tok, max_new_tokens=4, batch_size=8, seed=0)
    for r in exact.sample(8):
        assert re.fullmatch(pattern, r.text)
    assert 0 < exact.acceptance_rate <= 1
