"""Importance weights of samples with respect to p(x | constraint): from plain masking (each
result's per-step valid mass), or from any sampler that records its proposal probability.
Self-normalised estimates, effective sample size, and resampling."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from .result import GenerationResult


def log_importance_weights(results: Sequence[GenerationResult]) -> np.ndarray:
    """log w(x) per result (up to one shared constant); -inf for incomplete results, which are
    outside the constraint's language. Plain masking must have taken its last step (EOS) through
    the model: a result that stopped at ``"constraint_end"`` lacks the factor P(EOS | x)."""
    out = np.empty(len(results), dtype=np.float64)
    for i, r in enumerate(results):
        if r.finish_reason == "constraint_end" and r.log_proposal is None:
            raise ValueError(
                "a result ended at 'constraint_end' without scoring EOS, so its weight misses P(EOS | x); "
                "draw weighted samples with structgen.AlignedSampler(..., method='mask')"
            )
        out[i] = r.log_importance_weight if r.completed else -math.inf
    return out


def normalized_weights(results: Sequence[GenerationResult]) -> np.ndarray:
    """Self-normalised importance weights (summing to 1)."""
    log_w = log_importance_weights(results)
    if not np.isfinite(log_w).any():
        raise ValueError("no complete sample: every weight is zero")
    w = np.exp(log_w - log_w[np.isfinite(log_w)].max())
    return w / w.sum()


def effective_sample_size(results: Sequence[GenerationResult]) -> float:
    """Kish's effective sample size, (sum w)^2 / sum w^2."""
    w = normalized_weights(results)
    return float(1.0 / np.square(w).sum())


def weighted_estimate(results: Sequence[GenerationResult], f: Callable[[GenerationResult], float]) -> float:
    """Self-normalised importance-sampling estimate of E[f(x)] under p(x | constraint)."""
    w = normalized_weights(results)
    return float(sum(wi * f(r) for wi, r in zip(w, results) if wi > 0))


def weighted_distribution(
    results: Sequence[GenerationResult], key: Callable[[GenerationResult], Hashable] = lambda r: r.text
) -> dict[Hashable, float]:
    """The weighted empirical distribution of ``key(x)``."""
    dist: dict[Hashable, float] = {}
    for wi, r in zip(normalized_weights(results), results):
        if wi > 0:
            k = key(r)
            dist[k] = dist.get(k, 0.0) + float(wi)
    return dist


def importance_resample(results: Sequence[GenerationResult], n: int, *, seed: int | None = None) -> list[Any]:
    """``n`` results drawn with replacement in proportion to their weights (multinomial
    resampling): an unweighted set approximately distributed as p(x | constraint)."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(results), size=n, replace=True, p=normalized_weights(results))
    return [results[i] for i in picks]
