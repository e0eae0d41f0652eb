"""Next-token scorers for samplers that draw many continuations of one prompt: a causal LM
whose prompt is encoded once (its KV cache copied per batch), or any Python function of the
prefixes (a toy model with a known next-token table, another LM)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from .models import keep_last_logits


class ScoringSession(Protocol):
    """A batch of continuations of the same prompt, advanced one token per row."""

    def step(self, tokens: Sequence[int] | None = None, keep: Sequence[int] | None = None) -> torch.Tensor:
        """Keeps the live rows listed in ``keep`` (indices into the live rows, all of them
        when None), appends one token to each (none on the first call) and returns the
        next-token log-probabilities, shape ``(live rows, logits width)``."""
        ...


class TokenScorer(Protocol):
    def session(self, batch_size: int) -> ScoringSession: ...


class ModelScorer:
    """A transformers causal LM continuing a fixed prompt; the prompt's forward pass runs once."""

    def __init__(self, model: Any, prompt_ids: Sequence[int]) -> None:
        if not prompt_ids:
            raise ValueError("the prompt is empty: give at least one token (e.g. BOS)")
        self.model = model
        self.prompt_ids = list(prompt_ids)
        self._cache: Any = None
        self._first: torch.Tensor | None = None
        self.forward_passes = 0

    @torch.inference_mode()
    def _prefill(self) -> None:
        ids = torch.tensor([self.prompt_ids], dtype=torch.long, device=self.model.device)
        out = self.model(input_ids=ids, use_cache=True, **keep_last_logits(self.model, 1))
        self.forward_passes += 1
        self._cache = out.past_key_values
        self._first = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)

    def session(self, batch_size: int) -> "_ModelSession":
        if self._cache is None:
            self._prefill()
        return _ModelSession(self, batch_size)


class _ModelSession:
    def __init__(self, scorer: ModelScorer, batch_size: int) -> None:
        self.scorer = scorer
        self.batch_size = batch_size
        self.cache: Any = None
        self.rows = batch_size
        self.length = len(scorer.prompt_ids)

    @torch.inference_mode()
    def step(self, tokens: Sequence[int] | None = None, keep: Sequence[int] | None = None) -> torch.Tensor:
        scorer = self.scorer
        if tokens is None:
            return scorer._first.expand(self.batch_size, -1).clone()
        if self.cache is None:
            self.cache = copy.deepcopy(scorer._cache)
            self.cache.batch_repeat_interleave(self.batch_size)
        if keep is not None and list(keep) != list(range(self.rows)):
            self.cache.batch_select_indices(torch.tensor(list(keep), dtype=torch.long))
        self.rows = len(tokens)
        device = scorer.model.device
        ids = torch.tensor([[t] for t in tokens], dtype=torch.long, device=device)
        positions = torch.full((len(tokens), 1), self.length, dtype=torch.long, device=device)
        out = scorer.model(input_ids=ids, position_ids=positions, past_key_values=self.cache, use_cache=True)
        scorer.forward_passes += 1
        self.cache = out.past_key_values
        self.length += 1
        return torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)


class CallableScorer:
    """Wraps ``fn(prefixes) -> (len(prefixes), V)`` next-token log-probabilities (or logits,
    normalised here) as a scorer; prefixes are lists of generated token ids."""

    def __init__(self, fn: Callable[[list[list[int]]], Any]) -> None:
        self.fn = fn

    def session(self, batch_size: int) -> "_CallableSession":
        return _CallableSession(self.fn, batch_size)


class _CallableSession:
    def __init__(self, fn: Callable[[list[list[int]]], Any], batch_size: int) -> None:
        self.fn = fn
        self.prefixes: list[list[int]] = [[] for _ in range(batch_size)]

    def step(self, tokens: Sequence[int] | None = None, keep: Sequence[int] | None = None) -> torch.Tensor:
        if keep is not None:
            self.prefixes = [self.prefixes[i] for i in keep]
        if tokens is not None:
            self.prefixes = [p + [int(t)] for p, t in zip(self.prefixes, tokens)]
        scores = torch.as_tensor(self.fn(self.prefixes), dtype=torch.float64)
        return torch.log_softmax(scores, dim=-1)
