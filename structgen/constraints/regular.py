"""Regular constraints (regexes, choice lists): a byte DFA and the vocabulary's token trie.

No parser at run time: a state is a DFA state, a token advances it by walking its bytes, and
a state's mask is computed once by the numba trie walk and then served from a cache.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from ..automata import kernels
from ..automata.byte_dfa import DEFAULT_MAX_STATES, DEFAULT_TIMEOUT_S, ByteDFA
from ..tokenizers.vocabulary import Vocabulary
from .base import Constraint

EAGER_MASK_STATES = 64


class RegularConstraint(Constraint):
    """A byte DFA over a vocabulary, with masks memoised per DFA state."""

    def __init__(self, dfa: ByteDFA, vocab: Vocabulary, description: str = "", share_masks: bool = True) -> None:
        self.dfa = dfa
        # share masks between states with equal lookahead (pays Moore rounds over the whole
        # DFA once): worth it for counting states, not for big DFAs of many distinct states
        self.share_masks = share_masks
        self.vocab = vocab
        self.description = description
        self._masks: dict[int, np.ndarray] = {}
        # (level, class at that level, accepting) -> (state, its mask, the lookahead that decided it)
        self._shared: dict[tuple[int, int, bool], tuple[int, np.ndarray, int]] = {}
        self._shared_levels: set[int] = set()
        self._classes: list[np.ndarray] = []
        self._lock = threading.RLock()
        self._flat, self._offsets = vocab.flat_bytes

    def __repr__(self) -> str:
        return f"RegularConstraint({self.description}, states={self.dfa.n_states}, {self.vocab!r})"

    @property
    def initial_state(self) -> int:
        return 0

    def is_accepting(self, state: int) -> bool:
        return bool(self.dfa.accepting[state])

    def advance(self, state: int, token_id: int) -> int | None:
        if self.vocab.special[token_id]:
            return None
        start, end = self._offsets[token_id], self._offsets[token_id + 1]
        if start == end:
            return None
        nxt = kernels.dfa_walk(self.dfa.transitions, state, self._flat, start, end)
        return None if nxt < 0 else int(nxt)

    def advance_bytes(self, state: int, data: bytes) -> int | None:
        nxt = self.dfa.walk(data, state)
        return None if nxt < 0 else nxt

    def next_bytes(self, state: int) -> list[int]:
        return np.flatnonzero(self.dfa.transitions[state] >= 0).tolist()

    def mask_words(self, state: int) -> np.ndarray:
        words = self._masks.get(state)
        if words is None:
            with self._lock:
                words = self._masks.get(state)
                if words is None:
                    words = self._shared_mask(state)
                if words is None:
                    words, lookahead = self._compute_mask(state)
                    self._share(state, words, lookahead)
                self._masks[state] = words
        return words

    # Two states whose futures agree on every byte string of length <= r, where r is one
    # more than the deepest live trie node of the first one's walk, allow exactly the same
    # tokens: a token either fits within r bytes (same answer) or already died within r
    # bytes from the first state (so also from the second). Counting states of bounded
    # repetitions (`[a-z]{1,200}`, `.{0,500}`) then share one walk instead of one each.
    # The hashed lookahead classes only propose a candidate; agree_within decides exactly.
    def _shared_mask(self, state: int) -> np.ndarray | None:
        if not self.share_masks:
            return None
        accepting = bool(self.dfa.accepting[state])
        for r in self._shared_levels:
            hit = self._shared.get((r, int(self._classes[r][state]), accepting))
            if hit is not None and self.dfa.agree_within(hit[0], state, hit[2]):
                return hit[1]
        return None

    def _share(self, state: int, words: np.ndarray, lookahead: int) -> None:
        if self.dfa.n_states <= 1 or not self.share_masks:
            return
        if len(self._classes) <= lookahead:
            self._classes = self.dfa.lookahead_classes(lookahead, self._classes)
        r = min(lookahead, len(self._classes) - 1)  # the classes stop growing once stable
        self._shared_levels.add(r)
        key = (r, int(self._classes[r][state]), bool(self.dfa.accepting[state]))
        self._shared.setdefault(key, (state, words, lookahead))

    def _compute_mask(self, state: int) -> tuple[np.ndarray, int]:
        """The mask of ``state`` and the lookahead (in bytes) that decided it."""
        trie = self.vocab.trie
        words = np.zeros((self.vocab.logits_width + 31) // 32, dtype=np.uint32)
        deepest = kernels.dfa_token_mask(
            self.dfa.transitions,
            state,
            trie.byte,
            trie.depth,
            trie.subtree_end,
            trie.token_ptr,
            trie.token_ids,
            trie.root_children,
            trie.max_depth,
            words,
        )
        if self.dfa.accepting[state]:
            words |= self.eos_words
        return words, int(deepest) + 1

    @property
    def cached_states(self) -> int:
        return len(self._masks)

    @property
    def computed_masks(self) -> int:
        """Trie walks done so far (states that shared a walk count once)."""
        return len({id(w) for w in self._masks.values()})

    def precompute_masks(self, max_states: int = EAGER_MASK_STATES) -> int:
        """Computes every state's mask now when the DFA has at most ``max_states`` states (a
        small DFA's masks cost a few µs each, back to back); returns how many were computed.
        A larger DFA gets its lookahead classes instead, so that later masks can be shared
        without that cost landing on a request."""
        if self.dfa.n_states > max_states:
            if not self.share_masks:
                return 0
            with self._lock:
                self._classes = self.dfa.lookahead_classes(self.vocab.trie.max_depth + 1, self._classes)
            return 0
        for state in range(self.dfa.n_states):
            self.mask_words(state)
        return self.dfa.n_states


def compile_regex(
    pattern: str,
    vocab: Vocabulary,
    *,
    max_states: int = DEFAULT_MAX_STATES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    eager_masks: int = EAGER_MASK_STATES,
) -> RegularConstraint:
    """A constraint whose outputs fully match ``pattern`` (Python ``re`` syntax, see
    :mod:`structgen.automata.regex` for the exact semantics). Masks of DFAs with at most
    ``eager_masks`` states are computed at compile time, larger ones lazily per state."""
    dfa = ByteDFA.from_regex(pattern, max_states=max_states, timeout_s=timeout_s)
    constraint = RegularConstraint(dfa, vocab, description=f"regex {pattern!r}")
    constraint.precompute_masks(eager_masks)
    return constraint


def compile_choices(
    choices: Sequence[str | bytes], vocab: Vocabulary, *, eager_masks: int = EAGER_MASK_STATES
) -> RegularConstraint:
    """A constraint whose outputs are exactly one of ``choices``."""
    if not choices:
        raise ValueError("compile_choices needs at least one choice")
    strings = [c.encode("utf-8") if isinstance(c, str) else bytes(c) for c in choices]
    dfa = ByteDFA.from_strings(strings)
    shown = ", ".join(repr(c) for c in list(choices)[:5]) + (", ..." if len(choices) > 5 else "")
    constraint = RegularConstraint(dfa, vocab, description=f"choices [{shown}]")
    constraint.precompute_masks(eager_masks)
    return constraint
