"""Minimal deterministic automata over bytes, as dense numpy tables.

Every state of a ``ByteDFA`` can still reach an accepting state: a byte that would lead
nowhere useful is a dead transition (``-1``). So "reads all of a token's bytes without
dying" means exactly "the token keeps the output a prefix of some match".
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ..errors import CompileBudgetError, RegexError
from .regex import CharAutomaton, regex_to_char_automaton

DEAD = -1
DEFAULT_MAX_STATES = 200_000
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True, eq=False)
class ByteDFA:
    """``transitions[state, byte]`` is the next state or ``DEAD``; state 0 is initial."""

    transitions: np.ndarray
    accepting: np.ndarray
    has_successor: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "has_successor", (self.transitions >= 0).any(axis=1))

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

    def accepts(self, data: bytes) -> bool:
        state = self.walk(data)
        return state >= 0 and bool(self.accepting[state])

    @classmethod
    def from_regex(
        cls, pattern: str, *, max_states: int = DEFAULT_MAX_STATES, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> "ByteDFA":
        """Compiles a regular expression (full-match semantics) to a minimal byte DFA."""
        deadline = time.monotonic() + timeout_s
        automaton = regex_to_char_automaton(pattern)
        transitions, accepting = _determinize(automaton, max_states, deadline, what=f"regex {pattern!r}")
        dfa = _trim_and_minimize(transitions, accepting)
        if dfa is None:
            raise RegexError(pattern, "the pattern matches nothing")
        return dfa

    @classmethod
    def from_strings(cls, strings: Iterable[bytes]) -> "ByteDFA":
        """The minimal DFA accepting exactly the given byte strings."""
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
        transitions = np.full((len(rows), 256), DEAD, dtype=np.int32)
        for state, row in enumerate(rows):
            for byte, nxt in row.items():
                transitions[state, byte] = nxt
        dfa = _trim_and_minimize(transitions, np.array(accepting, dtype=bool))
        if dfa is None:
            raise ValueError("no strings given: the language is empty")
        return dfa


def _determinize(
    automaton: CharAutomaton, max_states: int, deadline: float, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Subset construction over bytes. An item is (char state, byte ranges still to read)."""
    edges = automaton.edges
    finals = automaton.finals
    move_cache: dict[tuple, list[tuple[int, int, tuple]]] = {}

    def moves(item: tuple) -> list[tuple[int, int, tuple]]:
        cached = move_cache.get(item)
        if cached is None:
            state, rest = item
            if rest:
                cached = [(rest[0][0], rest[0][1], (state, rest[1:]))]
            else:
                cached = [(seq[0][0], seq[0][1], (target, seq[1:])) for seq, target in edges.get(state, ())]
            move_cache[item] = cached
        return cached

    start = frozenset([(automaton.initial, ())])
    index = {start: 0}
    order = [start]
    rows = []
    accepting = []
    i = 0
    while i < len(order):
        if len(order) > max_states:
            raise CompileBudgetError(f"{what}: byte automaton exceeds {max_states} states")
        if (i & 63) == 0 and time.monotonic() > deadline:
            raise CompileBudgetError(f"{what}: compilation exceeded its time budget")
        subset = order[i]
        accepting.append(any(not rest and state in finals for state, rest in subset))
        row = np.full(256, DEAD, dtype=np.int32)
        triples = [m for item in subset for m in moves(item)]
        if triples:
            points = sorted({lo for lo, _, _ in triples} | {hi + 1 for _, hi, _ in triples})
            for a, b in zip(points, points[1:]):
                nxt = frozenset(it for lo, hi, it in triples if lo <= a <= hi)
                if not nxt:
                    continue
                target = index.get(nxt)
                if target is None:
                    target = index[nxt] = len(order)
                    order.append(nxt)
                row[a:b] = target
        rows.append(row)
        i += 1
    return np.stack(rows), np.array(accepting, dtype=bool)


def _trim_and_minimize(transitions: np.ndarray, accepting: np.ndarray) -> ByteDFA | None:
    """Removes states that cannot reach acceptance, merges equivalent states (Moore's
    partition refinement, vectorised), and numbers states in breadth-first order from 0."""
    n = transitions.shape[0]
    live = accepting.copy()
    while True:
        padded = np.append(live, False)  # index -1 (dead) reads False
        grown = live | (padded[transitions]).any(axis=1)
        if (grown == live).all():
            break
        live = grown
    if not live[0]:
        return None
    padded = np.append(live, False)
    trans = np.where(padded[transitions], transitions, DEAD).astype(np.int64)

    # Moore refinement over live states only; dead states get class -1. Bytes that every
    # state treats alike are folded into one column first, which keeps the rounds cheap.
    _, byte_columns = np.unique(trans.T, axis=0, return_index=True)
    columns = trans[:, np.sort(byte_columns)]
    cls = np.where(live, accepting.astype(np.int64), -1)
    n_classes = len(np.unique(cls[live]))
    live_idx = np.flatnonzero(live)
    while True:
        padded_cls = np.append(cls, -1)
        signature = np.ascontiguousarray(np.column_stack([cls[live_idx], padded_cls[columns[live_idx]]]))
        rows = signature.view(np.dtype((np.void, signature.dtype.itemsize * signature.shape[1]))).ravel()
        _, refined = np.unique(rows, return_inverse=True)
        new_count = int(refined.max()) + 1
        cls = np.full(n, -1, dtype=np.int64)
        cls[live_idx] = refined.reshape(-1)
        if new_count == n_classes:
            break
        n_classes = new_count

    representative = np.full(n_classes, -1, dtype=np.int64)
    for state in np.flatnonzero(live)[::-1]:
        representative[cls[state]] = state
    padded_cls = np.append(cls, -1)
    class_trans = padded_cls[trans[representative]]
    class_accepting = accepting[representative]

    # breadth-first renumbering from the initial class
    order = [int(cls[0])]
    number = {order[0]: 0}
    k = 0
    while k < len(order):
        row = class_trans[order[k]]
        for t in np.unique(row[row >= 0]).tolist():
            if t not in number:
                number[t] = len(order)
                order.append(t)
        k += 1
    remap = np.full(n_classes + 1, DEAD, dtype=np.int32)
    for c, num in number.items():
        remap[c] = num
    final_trans = remap[class_trans[order]]  # index -1 maps to remap[-1] == DEAD
    return ByteDFA(transitions=np.ascontiguousarray(final_trans, dtype=np.int32), accepting=class_accepting[order].copy())
