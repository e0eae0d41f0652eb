"""Choosing the next token from masked logits: greedy, or temperature / top-k / top-p
sampling applied after the constraint's mask."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..automata.bitmask import apply_token_bitmask_inplace


def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def masked_scores(scores: torch.Tensor, n_tokens: int, matchers: Sequence[Any] | None, bitmask: Any) -> torch.Tensor:
    """A copy of ``(B, V)`` scores where ids past the tokenizer's end (padding of the output
    layer) and the tokens row ``r``'s matcher forbids are -inf; ``matchers`` None = no
    constraint (a None entry: none for that row)."""
    masked = scores.clone()
    if masked.shape[-1] > n_tokens:
        masked[:, n_tokens:] = float("-inf")
    if matchers is not None:
        for row, m in enumerate(matchers):
            if m is None:  # an unconstrained row in a mixed batch
                bitmask[row] = -1
            else:
                m.fill_bitmask(bitmask, row)
        apply_token_bitmask_inplace(masked, bitmask[: len(matchers)])
    return masked


def token_probs(
    masked_logits: torch.Tensor, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """The distribution sampling draws from: ``(B, V)`` masked logits (disallowed = -inf) after
    temperature, then top-k, then top-p. ``temperature > 0``."""
    logits = masked_logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative - sorted_logits.softmax(dim=-1) >= top_p  # keep the token that crosses p
        sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits.softmax(dim=-1)


def select_tokens(
    masked_logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token id per row of ``(B, V)`` logits whose disallowed entries are -inf.
    ``temperature == 0`` is greedy."""
    if temperature == 0:
        return masked_logits.argmax(dim=-1)
    probs = token_probs(masked_logits, temperature=temperature, top_k=top_k, top_p=top_p)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)
