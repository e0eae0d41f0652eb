"""Regular constraints (regexes, choice lists): a byte DFA and the vocabulary's token trie.

No parser at run time: a state is a DFA state, a token advances it by walking its bytes, and
a state's mask is computed once by the numba trie walk and then served from a cache.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from ..automata import kernels
from ..automata.byte_dfa import DEFAULT_MAX_STATES, DEFAULT_TIMEOUT_S, ByteDFA
from ..automata.token_marks import TokenMarks
from ..automata.token_slices import NO_CHAIN, NO_NODES, StringShadow, chain_walk, find_chain, landing_slice
from ..tokenizers.vocabulary import Vocabulary
from .base import Constraint

EAGER_MASK_STATES = 64


class RegularConstraint(Constraint):
    """A byte DFA over a vocabulary, with masks memoised per DFA state."""

    def __init__(
        self, dfa: ByteDFA, vocab: Vocabulary, description: str = "", share_masks: bool = True, shadow: np.ndarray | None = None
    ) -> None:
        """``shadow``: the transitions of a string body (state 0 loops on its characters),
        for DFAs that count strings' lengths (see :class:`StringShadow`)."""
        self.dfa = dfa
        self._shadow = None if shadow is None else StringShadow(shadow)
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

    def shortest_completion(self, state: int, max_bytes: int = 256, max_states: int = 0) -> bytes | None:
        """The shortest bytes from ``state`` to acceptance, read off a distance table."""
        distance, step = self._completion_table
        if distance[state] < 0 or distance[state] > max_bytes:
            return None
        out = bytearray()
        while distance[state] > 0:
            b = int(step[state])
            out.append(b)
            state = int(self.dfa.transitions[state, b])
        return bytes(out)

    @cached_property
    def _completion_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Per state: bytes to the nearest accepting state (-1: none) and the byte to take
        (printable ASCII preferred among equally near ones); a breadth-first search backwards
        from the accepting states over the reversed transitions."""
        trans = self.dfa.transitions
        n = trans.shape[0]
        byte_order = np.array(sorted(range(256), key=lambda b: (not 0x20 <= b < 0x7F, b)), dtype=np.int64)
        rank_of = np.empty(256, dtype=np.int64)
        rank_of[byte_order] = np.arange(256)
        src, byte = np.nonzero(trans >= 0)
        dst = trans[src, byte].astype(np.int64)
        by_dst = np.argsort(dst, kind="stable")
        src, rank = src[by_dst], rank_of[byte[by_dst]]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(dst, minlength=n), out=offsets[1:])
        distance = np.where(self.dfa.accepting, 0, -1).astype(np.int64)
        step = np.full(n, -1, dtype=np.int64)
        frontier = np.flatnonzero(self.dfa.accepting)
        level = 0
        while frontier.size:
            lengths = offsets[frontier + 1] - offsets[frontier]
            total = int(lengths.sum())
            if total == 0:
                break
            starts = np.repeat(offsets[frontier] - np.cumsum(lengths) + lengths, lengths)
            edges = starts + np.arange(total)
            into, into_rank = src[edges], rank[edges]
            fresh = distance[into] < 0
            into, into_rank = into[fresh], into_rank[fresh]
            if into.size == 0:
                break
            best = np.full(n, 256, dtype=np.int64)
            np.minimum.at(best, into, into_rank)
            frontier = np.unique(into)
            level += 1
            distance[frontier] = level
            step[frontier] = byte_order[best[frontier]]
        return distance, step

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

    @cached_property
    def _marks(self) -> TokenMarks:
        return TokenMarks((self.vocab.logits_width + 31) // 32)

    def _compute_mask(self, state: int) -> tuple[np.ndarray, int]:
        """The mask of ``state`` and the lookahead (in bytes) that decided it."""
        trie = self.vocab.trie
        words = np.zeros((self.vocab.logits_width + 31) // 32, dtype=np.uint32)
        marks = self._marks
        landing, found = landing_slice(trie, self.dfa.transitions, state, words.shape[0], closed=True)
        clean, path_in = (NO_NODES, NO_NODES) if found is None else (found.clean, found.path_in)
        chain, chain_reach, chain_in, chain_clean = NO_CHAIN, 0, NO_NODES, NO_NODES
        reach = 0
        if found is None and self._shadow is not None:
            reach, found = self._shadow.reach(self.dfa.transitions, state, trie, words.shape[0])
            if found is not None:
                clean, path_in = found.clean, found.path_in
        if found is not None:
            words |= found.words  # less what the walk clears
        else:
            chain, chain_reach, chained, upto = chain_walk(trie, *find_chain(self.dfa.transitions, state, trie), words.shape[0])
            if chained is not None:
                chain_in, chain_clean = chained.path_in, chained.clean
                words |= upto
        deepest, marks.count = kernels.dfa_token_mask(
            self.dfa.transitions, state, *kernels.trie_arrays(trie), landing, clean, path_in, trie.subtree_deepest, reach,
            chain, chain_reach, chain_in, chain_clean, trie.token_ptr, trie.token_ids, words, marks.ok, marks.visited,
        )  # fmt: skip
        marks.flush_into(words, trie)
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
        without that cost landing on a request, and (unless ``max_states`` is 0) the initial
        state's mask, every request's first."""
        if self.dfa.n_states > max_states:
            if self.share_masks:
                with self._lock:
                    self._classes = self.dfa.lookahead_classes(self.vocab.trie.max_depth + 1, self._classes)
            if max_states == 0:
                return 0
            self.mask_words(self.initial_state)
            return 1
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
