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
