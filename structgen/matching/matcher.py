"""The matcher: one object per sequence, following a compiled constraint token by token.

Its history is a persistent linked list of constraint states, so ``copy`` shares it (O(1))
and ``rollback(n)`` pops n entries without copying anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..automata.bitmask import cpu_row, words_to_ids
from ..constraints.base import Constraint

_TERMINATED = object()  # the state after EOS


class Matcher:
    """Follows a constraint over token ids.

    ``accept_token`` refuses a token that is not allowed and then leaves the state unchanged.
    EOS is allowed exactly where the constraint can end; after it, the matcher is terminated.
    """

    __slots__ = ("constraint", "_top", "_length")

    def __init__(self, constraint: Constraint, _top: tuple | None = None, _length: int = 0) -> None:
        self.constraint = constraint
        self._top = _top if _top is not None else (constraint.initial_state, None)
        self._length = _length

    # ---- state -----------------------------------------------------------------------------
    @property
    def state(self) -> Any:
        """The constraint state now (opaque)."""
        return self._top[0]

    @property
    def num_accepted(self) -> int:
        """Tokens accepted since the start (what ``rollback`` can undo)."""
        return self._length

    def is_terminated(self) -> bool:
        """True once EOS has been accepted."""
        return self._top[0] is _TERMINATED

    def can_terminate(self) -> bool:
        """True if the output so far is complete, so EOS is allowed now."""
        state = self._top[0]
        return state is not _TERMINATED and self.constraint.is_accepting(state)

    def only_eos_allowed(self) -> bool:
        """True when the output is complete and nothing but EOS may follow (a decode loop can
        stop without another forward pass)."""
        return self.can_terminate() and np.array_equal(self.mask_words(), self.constraint.eos_words)

    # ---- advancing -------------------------------------------------------------------------
    def _next(self, state: Any, token_id: int) -> Any | None:
        if state is _TERMINATED:
            return None
        vocab = self.constraint.vocab
        if token_id in vocab.eos_token_ids:
            return _TERMINATED if self.constraint.is_accepting(state) else None
        if not 0 <= token_id < vocab.n_tokens:
            return None
        return self.constraint.advance(state, token_id)

    def accept_token(self, token_id: int) -> bool:
        """Advances by one token; returns False (and changes nothing) if it is not allowed."""
        nxt = self._next(self._top[0], int(token_id))
        if nxt is None:
            return False
        self._top = (nxt, self._top)
        self._length += 1
        return True

    def validate_tokens(self, token_ids: Sequence[int]) -> int:
        """How many of ``token_ids``, from the first, would be accepted. The state is unchanged."""
        state = self._top[0]
        for k, tid in enumerate(token_ids):
            state = self._next(state, int(tid))
            if state is None:
                return k
        return len(token_ids)

    def accept_tokens(self, token_ids: Sequence[int]) -> bool:
        """Accepts all of ``token_ids`` or, if any is refused, none of them."""
        top, length = self._top, self._length
        for tid in token_ids:
            nxt = self._next(top[0], int(tid))
            if nxt is None:
                return False
            top = (nxt, top)
            length += 1
        self._top, self._length = top, length
        return True

    def rollback(self, num_tokens: int = 1) -> None:
        """Undoes the last ``num_tokens`` accepted tokens."""
        if not 0 <= num_tokens <= self._length:
            raise ValueError(f"cannot roll back {num_tokens} tokens: only {self._length} accepted")
        top = self._top
        for _ in range(num_tokens):
            top = top[1]
        self._top = top
        self._length -= num_tokens

    def reset(self) -> None:
        self._top = (self.constraint.initial_state, None)
        self._length = 0

    def copy(self) -> "Matcher":
        """An independent matcher with the same history (shared, never copied)."""
        return Matcher(self.constraint, self._top, self._length)

    # ---- forced continuations ---------------------------------------------------------------
    def forced_bytes(self, limit: int = 256) -> bytes:
        """The bytes the constraint allows uniquely from here (empty where the output may
        end, or where more than one byte may follow). The state is unchanged."""
        state = self._top[0]
        if state is _TERMINATED:
            return b""
        out = bytearray()
        while len(out) < limit and not self.constraint.is_accepting(state):
            successors = self.constraint.next_bytes(state)
            if len(successors) != 1:
                break
            out.append(successors[0])
            state = self.constraint.advance_bytes(state, bytes(successors[:1]))
        return bytes(out)

    def forced_tokens(self, limit: int = 64) -> list[int]:
        """The tokens that are the only ones allowed, one after another, from here (stops
        where the output may end or a choice opens). The state is unchanged."""
        state = self._top[0]
        out: list[int] = []
        vocab = self.constraint.vocab
        while len(out) < limit and state is not _TERMINATED and not self.constraint.is_accepting(state):
            ids = words_to_ids(self.constraint.mask_words(state), vocab.logits_width)
            if len(ids) != 1:
                break
            out.append(int(ids[0]))
            state = self.constraint.advance(state, int(ids[0]))
        return out

    # ---- masks -----------------------------------------------------------------------------
    def mask_words(self) -> np.ndarray:
        """The allowed tokens as uint32 words (shared: do not modify)."""
        state = self._top[0]
        if state is _TERMINATED:
            return self.constraint.eos_words
        return self.constraint.mask_words(state)

    def fill_bitmask(self, bitmask: Any, row: int = 0) -> None:
        """Writes this matcher's mask into row ``row`` of an int32 bitmask (torch or numpy)."""
        words = self.mask_words()
        target = cpu_row(bitmask, row, words.shape[0])
        if target is None:
            import torch

            bitmask[row, : words.shape[0]].copy_(torch.from_numpy(words.view(np.int32)), non_blocking=True)
            return
        target[...] = words

    def allowed_token_ids(self) -> np.ndarray:
        """Sorted ids of the tokens allowed now (EOS included where the output may end)."""
        return words_to_ids(self.mask_words(), self.constraint.vocab.logits_width)

    def __repr__(self) -> str:
        return f"Matcher({type(self.constraint).__name__}, accepted={self._length}, terminated={self.is_terminated()})"
