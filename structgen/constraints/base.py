"""What every compiled constraint offers the matcher: a state machine over token ids."""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from typing import Any, Hashable

import numpy as np

from ..tokenizers.vocabulary import Vocabulary


class Constraint(ABC):
    """A compiled constraint for one vocabulary. States are immutable and hashable, so a
    matcher can share them between copies and keep them in an undo history."""

    vocab: Vocabulary

    @property
    @abstractmethod
    def initial_state(self) -> Hashable: ...

    @abstractmethod
    def advance(self, state: Any, token_id: int) -> Any | None:
        """The state after a non-EOS token, or None if the token is not allowed."""

    @abstractmethod
    def is_accepting(self, state: Any) -> bool:
        """Whether the output so far is a complete sentence (EOS may follow)."""

    @abstractmethod
    def mask_words(self, state: Any) -> np.ndarray:
        """The allowed tokens (EOS included where accepting) as uint32 bitmask words.
        The array is shared and must not be modified."""

    @abstractmethod
    def advance_bytes(self, state: Any, data: bytes) -> Any | None:
        """The state after ``data`` (any bytes, not only whole tokens), or None."""

    @abstractmethod
    def next_bytes(self, state: Any) -> list[int]:
        """The bytes that may come next (EOS aside)."""

    def shortest_completion(self, state: Any, max_bytes: int = 256, max_states: int = 20000) -> bytes | None:
        """The shortest bytes that take ``state`` to an accepting state (printable ASCII tried
        first among equally short ones); None if none is found within the limits. A
        breadth-first search over ``next_bytes``; regular constraints answer from a table."""
        if self.is_accepting(state):
            return b""
        seen = {state}
        frontier: list[tuple[Any, bytes]] = [(state, b"")]
        while frontier:
            following: list[tuple[Any, bytes]] = []
            for current, path in frontier:
                if len(path) >= max_bytes:
                    return None
                for b in sorted(self.next_bytes(current), key=_printable_first):
                    nxt = self.advance_bytes(current, bytes((b,)))
                    if nxt is None or nxt in seen:
                        continue
                    if self.is_accepting(nxt):
                        return path + bytes((b,))
                    seen.add(nxt)
                    following.append((nxt, path + bytes((b,))))
                    if len(seen) > max_states:
                        return None
            frontier = following
        return None

    @cached_property
    def eos_words(self) -> np.ndarray:
        """A bitmask (uint32 words) with only the EOS ids set."""
        words = np.zeros((self.vocab.logits_width + 31) // 32, dtype=np.uint32)
        for e in self.vocab.eos_token_ids:
            words[e >> 5] |= np.uint32(1 << (e & 31))
        return words

    def matcher(self):
        """A fresh matcher at the start of the constraint."""
        from ..matching.matcher import Matcher

        return Matcher(self)


def _printable_first(b: int) -> tuple[bool, int]:
    return (not 0x20 <= b < 0x7F, b)
