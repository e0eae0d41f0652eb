"""Minimal deterministic automata over bytes, as dense numpy tables.

Every state of a ``ByteDFA`` can still reach an accepting state: a byte that would lead
nowhere useful is a dead transition (``-1``). So "reads all of a token's bytes without
dying" means exactly "the token keeps the output a prefix of some match".
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import CompileBudgetError, RegexError
from .nfa import ByteNFA
from .regex import regex_to_nfa

DEAD = -1
DEFAULT_MAX_STATES = 200_000
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True, eq=False)
class ByteDFA:
    """``transitions[state, byte]`` is the next state or ``DEAD``; state 0 is initial."""

    transitions: np.ndarray
    accepting: np.ndarray

    initial = 0

    @property
    def n_states(self) -> int:
        return int(self.transitions.shape[0])

    def walk(self, data: bytes, state: int = 0) -> int:
        """The state after reading ``data`` from ``state``, or ``DEAD``."""
        trans = self.transitions
        for byte in data:
            state = int(trans[state, byte])
            if state < 0:
                return DEAD
        return state

    def lookahead_classes(self, rounds: int, previous: list[np.ndarray] | None = None) -> list[np.ndarray]:
        """``classes[r][s]``: a hash class of what byte strings of length <= r state ``s`` can
        read without dying (Moore rounds from "every state is live", hashed). Equal classes
        are a hint: confirm with :meth:`agree_within` before relying on one. Extends
        ``previous`` when given; stops early once the partition is stable."""
        classes = list(previous) if previous else [np.zeros(self.n_states, dtype=np.int64)]
        columns = self.folded_columns
        weights = _HASH_WEIGHTS[: columns.shape[1] + 1]
        while len(classes) <= rounds:
            last = classes[-1]
            padded = np.append(last, -2)  # dead reads -2
            with np.errstate(over="ignore"):
                keys = last * weights[0] + (padded[columns] + 3) @ weights[1:]
            refined = np.unique(keys, return_inverse=True)[1].reshape(-1).astype(np.int64)
            classes.append(refined)
            if refined.max() == last.max():  # stable: every later round is the same
                break
        return classes

    def agree_within(self, a: int, b: int, length: int) -> bool:
        """Exactly: do states ``a`` and ``b`` survive the same byte strings of length <= ``length``?"""
        from .kernels import dfa_agree_within

        return bool(dfa_agree_within(self.folded_columns, a, b, length))

    @property
    def folded_columns(self) -> np.ndarray:
        """The transition table with identical byte columns folded into one (int64)."""
        cached = self.__dict__.get("_folded")
        if cached is None:
            cached = fold_byte_columns(self.transitions)
            object.__setattr__(self, "_folded", cached)
        return cached

    def accepts(self, data: bytes) -> bool:
        state = self.walk(data)
        return state >= 0 and bool(self.accepting[state])

    @classmethod
    def from_regex(
        cls, pattern: str, *, max_states: int = DEFAULT_MAX_STATES, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> "ByteDFA":
        """Compiles a regular expression (full-match semantics) to a minimal byte DFA."""
        deadline = time.monotonic() + timeout_s
        nfa = regex_to_nfa(pattern)
        transitions, accepting, _ = determinize(nfa, max_states, deadline, what=f"regex {pattern!r}")
        dfa = _trim_and_minimize(transitions, accepting)
        if dfa is None:
            raise RegexError(pattern, "the pattern matches nothing")
        return dfa

    @classmethod
    def from_nfa(
        cls, nfa: ByteNFA, *, what: str = "the automaton", max_states: int = DEFAULT_MAX_STATES, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> "ByteDFA | None":
        """The minimal DFA of an NFA (every state live), or None when its language is empty."""
        deadline = time.monotonic() + timeout_s
        transitions, accepting, subsets = determinize(nfa, max_states, deadline, what=what)
        return _trim_and_merge(transitions, accepting, live=_live_subsets(nfa, subsets))

    @classmethod
    def from_table(cls, transitions: np.ndarray, accepting: np.ndarray) -> "ByteDFA | None":
        """The minimal DFA of a transition table (state 0 initial), or None when empty."""
        return _trim_and_minimize(transitions, accepting)

    @classmethod
    def from_strings(cls, strings: Iterable[bytes]) -> "ByteDFA":
        """The minimal DFA accepting exactly the given byte strings: their trie, with equal
        states merged from the leaves up (a trie's children come after their parent), then
        numbered breadth first. No table is minimised: a few names cost microseconds."""
        rows: list[dict[int, int]] = [{}]
        accepting = [False]
        for s in strings:
            state = 0
            for byte in s:
                nxt = rows[state].get(byte)
                if nxt is None:
                    nxt = len(rows)
                    rows[state][byte] = nxt
                    rows.append({})
                    accepting.append(False)
                state = nxt
            accepting[state] = True
        if len(rows) == 1 and not accepting[0]:
            raise ValueError("no strings given: the language is empty")
        merged = [0] * len(rows)
        register: dict[tuple, int] = {}
        for state in range(len(rows) - 1, -1, -1):
            signature = (accepting[state], tuple(sorted((byte, merged[nxt]) for byte, nxt in rows[state].items())))
            merged[state] = register.setdefault(signature, state)
        number = {0: 0}
        order = [0]
        for state in order:  # breadth first over the merged states
            for byte in sorted(rows[state]):
                nxt = merged[rows[state][byte]]
                if nxt not in number:
                    number[nxt] = len(order)
                    order.append(nxt)
        edges = [(number[state], byte, number[merged[nxt]]) for state in order for byte, nxt in rows[state].items()]
        transitions = np.full((len(order), 256), DEAD, dtype=np.int32)
        if edges:
            src, byte, dst = np.array(edges, dtype=np.int32).T
            transitions[src, byte] = dst
        return cls(transitions, np.array([accepting[state] for state in order], dtype=bool))


def fold_byte_columns(transitions: np.ndarray) -> np.ndarray:
    """The distinct columns of a transition table (bytes every state treats alike folded
    into one), as int64."""
    from .subset_kernel import distinct_columns

    return distinct_columns(np.ascontiguousarray(transitions, dtype=np.int32))[1]


class _Subsets:
    """The NFA states of each DFA state, as frozensets made on demand."""

    def __init__(self, members: np.ndarray, offsets: np.ndarray) -> None:
        self.members, self.offsets = members, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, q: int) -> frozenset[int]:
        return frozenset(self.members[self.offsets[q] : self.offsets[q + 1]].tolist())

    def __iter__(self):
        return (self[q] for q in range(len(self)))


def determinize(nfa: ByteNFA, max_states: int, deadline: float, what: str) -> tuple[np.ndarray, np.ndarray, _Subsets]:
    """Subset construction over bytes (a numba kernel sweeping byte intervals). Returns the
    transitions, which states hold ``nfa.final``, and each state's NFA subset."""
    from .subset_kernel import subset_construction

    if time.monotonic() > deadline:
        raise CompileBudgetError(f"{what}: compilation exceeded its time budget")
    transitions, accepting, members, offsets = subset_construction(*nfa.arrays(), nfa.start, nfa.final, max_states)
    if len(offsets) == 0:
        raise CompileBudgetError(f"{what}: byte automaton exceeds {max_states} states")
    return transitions, accepting, _Subsets(members, offsets)


def _live_subsets(nfa: ByteNFA, subsets: _Subsets) -> np.ndarray:
    """Which DFA states can reach acceptance: those holding an NFA state that can reach
    ``nfa.final`` (found on the NFA's few moves, not on the DFA's 256 columns)."""
    from .subset_kernel import nfa_co_reachable, subsets_meeting

    eps_ptr, eps_dst, edge_ptr, _, _, edge_dst = nfa.arrays()
    finals = np.array([nfa.final], dtype=np.int64)
    return subsets_meeting(subsets.members, subsets.offsets, nfa_co_reachable(eps_ptr, eps_dst, edge_ptr, edge_dst, finals))


MERGE_UP_TO = 256


def _trim_and_merge(
    transitions: np.ndarray, accepting: np.ndarray, any_size: bool = False, live: np.ndarray | None = None
) -> ByteDFA | None:
    """Trimmed and minimised with the numba kernels (same result as :func:`_trim_and_minimize`
    up to state numbering; state 0 stays initial). Above ``MERGE_UP_TO`` states only with
    ``any_size``: subset DFAs of front-end NFAs (built from minimal parts) stay as they are,
    products (often far from minimal) are refined. ``live``: which states can reach
    acceptance, when known (else searched on the table)."""
    from .subset_kernel import moore_classes

    dfa = _trim(transitions, accepting, live)
    if dfa is None or (dfa.n_states > MERGE_UP_TO and not any_size):
        return dfa
    trans = dfa.transitions
    cls, count = moore_classes(fold_byte_columns(trans), dfa.accepting)
    if count == trans.shape[0]:
        return dfa
    reps = np.zeros(count, dtype=np.int64)
    reps[cls[::-1]] = np.arange(trans.shape[0])[::-1]  # the lowest state of each class
    remap = np.append(cls, DEAD).astype(np.int32)
    merged = remap[trans[reps]]
    return ByteDFA(transitions=np.ascontiguousarray(merged, dtype=np.int32), accepting=dfa.accepting[reps].copy())


def _trim(transitions: np.ndarray, accepting: np.ndarray, live: np.ndarray | None = None) -> ByteDFA | None:
    """Drops the states that cannot reach acceptance (``live``, when known; keeping state 0
    initial)."""
    from .subset_kernel import live_states, quotient_table

    if live is None:
        live = live_states(transitions, accepting)
    if not live[0]:
        return None
    kept = np.flatnonzero(live)
    if len(kept) == len(live):
        return ByteDFA(transitions=np.ascontiguousarray(transitions, dtype=np.int32), accepting=accepting.copy())
    remap = np.full(len(live), DEAD, dtype=np.int32)
    remap[kept] = np.arange(len(kept), dtype=np.int32)
    trans = quotient_table(np.ascontiguousarray(transitions, dtype=np.int32), kept, remap)
    return ByteDFA(transitions=trans, accepting=accepting[kept].copy())


def _trim_and_minimize(transitions: np.ndarray, accepting: np.ndarray) -> ByteDFA | None:
    """Removes states that cannot reach acceptance, merges equivalent states (Moore's
    partition refinement, vectorised), and numbers states in breadth-first order from 0."""
    n = transitions.shape[0]
    # Bytes that every state treats alike are folded into one column: the rounds below run on
    # these few columns instead of 256.
    columns = fold_byte_columns(transitions)
    live = accepting.copy()
    while True:
        padded = np.append(live, False)  # index -1 (dead) reads False
        grown = live | (padded[columns]).any(axis=1)
        if (grown == live).all():
            break
        live = grown
    if not live[0]:
        return None
    padded = np.append(live, False)
    trans = np.where(padded[transitions], transitions, DEAD).astype(np.int64)
    columns = np.where(padded[columns], columns, DEAD)
    live_idx = np.flatnonzero(live)
    cls = np.full(n, -1, dtype=np.int64)
    cls[live_idx] = refine(columns[live_idx], accepting[live_idx].astype(np.int64), live_idx, n)
    n_classes = int(cls.max()) + 1

    _, first = np.unique(cls[live_idx], return_index=True)
    representative = live_idx[first]  # the lowest state of each class
    padded_cls = np.append(cls, -1)
    class_trans = padded_cls[trans[representative]]
    class_accepting = accepting[representative]

    # breadth-first renumbering from the initial class
    order = [int(cls[0])]
    number = {order[0]: 0}
    k = 0
    class_columns = padded_cls[columns[representative]]
    while k < len(order):
        for t in set(class_columns[order[k]].tolist()):
            if t < 0:
                continue
            if t not in number:
                number[t] = len(order)
                order.append(t)
        k += 1
    remap = np.full(n_classes + 1, DEAD, dtype=np.int32)
    for c, num in number.items():
        remap[c] = num
    final_trans = remap[class_trans[order]]  # index -1 maps to remap[-1] == DEAD
    return ByteDFA(transitions=np.ascontiguousarray(final_trans, dtype=np.int32), accepting=class_accepting[order].copy())


_HASH_WEIGHTS = np.random.default_rng(0x5EED).integers(1, 2**62, size=4096, dtype=np.int64) | 1


def refine(columns: np.ndarray, initial: np.ndarray, live_idx: np.ndarray, n: int) -> np.ndarray:
    """Moore partition refinement: the coarsest classes of the live states (rows of
    ``columns``, targets as original state ids, -1 dead) consistent with ``initial`` (any
    numbering), by :func:`subset_kernel.moore_refine`."""
    from .subset_kernel import moore_refine

    position = np.full(n + 1, -1, dtype=np.int64)  # original id -> row (index -1: dead)
    position[live_idx] = np.arange(len(live_idx))
    rows = np.ascontiguousarray(position[columns])
    cls = np.unique(initial, return_inverse=True)[1].reshape(-1).astype(np.int64)
    return moore_refine(rows, cls)[0]


def repeat_single(one: ByteDFA, lo: int, hi: int | None, max_states: int = DEFAULT_MAX_STATES) -> ByteDFA | None:
    """``L(one){lo,hi}`` built directly, for a DFA whose accepting states have no moves
    (each word is one unit, e.g. one encoded character): states are (count, state of
    ``one``), so ``maxLength: 1000`` costs a table copy per count, not a subset construction."""
    from .subset_kernel import repeat_table

    trans = one.transitions
    m = trans.shape[0]
    final = one.accepting
    if final[0] or (trans[final] >= 0).any():
        raise ValueError("repeat_single needs a DFA of non-empty units with final ends")
    inner = np.flatnonzero(~final)  # state 0 first (initial, not accepting)
    local = np.full(m + 1, DEAD, dtype=np.int64)
    local[inner] = np.arange(len(inner))
    top = hi if hi is not None else lo
    width = len(inner)
    if (top + 1) * width > max_states:
        raise CompileBudgetError(f"a repetition {{{lo},{hi}}} exceeds {max_states} states")
    out = repeat_table(np.ascontiguousarray(trans[inner], dtype=np.int64), final, local, top, hi is None)
    accepting = np.zeros((top + 1) * width, dtype=bool)
    accepting[np.arange(lo, top + 1) * width] = True
    return _trim(out, accepting)


def product(a: ByteDFA, b: ByteDFA, *, difference: bool = False, max_states: int = DEFAULT_MAX_STATES) -> ByteDFA | None:
    """The DFA of L(a) ∩ L(b), or of L(a) \\ L(b) with ``difference``; None when empty."""
    from .subset_kernel import product_construction

    transitions, accepting = product_construction(a.transitions, a.accepting, b.transitions, b.accepting, difference, max_states)
    if len(accepting) == 0:
        raise CompileBudgetError(f"an automaton product exceeds {max_states} states")
    return _trim_and_merge(transitions, accepting, any_size=True)
