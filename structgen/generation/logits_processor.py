"""A transformers ``LogitsProcessor`` that enforces a constraint inside ``model.generate``.

It keeps one matcher per distinct generated prefix, so it stays correct when beam search
reorders, duplicates or drops rows between steps: each row's matcher is found from its own
tokens (a copy of its parent's matcher advanced by one token; copies are O(1)).
Use a new processor for each ``generate`` call.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from ..automata.bitmask import allocate_token_bitmask, apply_token_bitmask_inplace
from ..constraints.base import Constraint
from ..matching.matcher import Matcher


class ConstraintLogitsProcessor(LogitsProcessor):
    def __init__(self, constraint: Constraint) -> None:
        self.constraint = constraint
        self._prompt_length: int | None = None
        self._matchers: dict[tuple[int, ...], Matcher] = {}

    def _matcher_for(self, generated: tuple[int, ...], fresh: dict[tuple[int, ...], Matcher]) -> Matcher:
        found = fresh.get(generated) or self._matchers.get(generated)
        if found is not None:
            return found
        if not generated:
            return self.constraint.matcher()
        parent = fresh.get(generated[:-1]) or self._matchers.get(generated[:-1])
        if parent is None:
            raise RuntimeError("ConstraintLogitsProcessor saw an unknown prefix: use one processor per generate() call")
        child = parent.copy()
        if not child.is_terminated() and not child.accept_token(generated[-1]):
            raise RuntimeError(f"token {generated[-1]} was generated although the constraint did not allow it")
        return child

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._prompt_length is None:
            self._prompt_length = input_ids.shape[1]
        rows = input_ids[:, self._prompt_length :].tolist()
        fresh: dict[tuple[int, ...], Matcher] = {}
        bitmask = allocate_token_bitmask(len(rows), self.constraint.vocab.logits_width)
        for row, seq in enumerate(rows):
            key = tuple(seq)
            matcher = self._matcher_for(key, fresh)
            fresh[key] = matcher
            matcher.fill_bitmask(bitmask, row)
        self._matchers = fresh
        return apply_token_bitmask_inplace(scores, bitmask.to(scores.device))
