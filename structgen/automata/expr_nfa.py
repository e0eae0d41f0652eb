"""Regular grammar expressions (the IR's ``Seq``/``Alt``/``Repeat`` over ``Pattern`` and
``Bytes`` leaves) to one byte NFA, without going through regex text.

Each sub-expression is built *into* a given pair of states (start, end). A sub-expression
object that occurs more than once with the same continuation (the same end state) is built
once and entered by an empty move from every place that uses it. Front ends rely on this:
JSON objects with optional properties reuse each property's automaton twice ("first
property" and "after a comma") with one continuation, so the automaton stays linear in the
schema instead of doubling at every nesting level as regex text would.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from ..errors import CompileBudgetError
from ..grammar.ir import Alt, Automaton, Bytes, Expr, Pattern, Ref, Repeat, Seq, Terminal, children
from .nfa import ByteNFA
from .regex import regex_to_nfa

Resolver = Callable[[Expr], Expr]


def expr_to_nfa(expr: Expr, resolve: Resolver | None = None, max_states: int | None = None) -> ByteNFA:
    """The NFA of a regular expression tree; ``resolve`` replaces ``Ref``/``Terminal`` leaves
    by their definitions (it must not recurse forever: only regular parts are built here).
    Raises :class:`CompileBudgetError` as soon as the NFA has more than ``max_states`` states."""
    builder = NfaBuilder(resolve, max_states)
    builder.count(expr)
    nfa = builder.nfa
    nfa.start = nfa.new_state()
    nfa.final = nfa.new_state()
    builder.into(expr, nfa.start, nfa.final)
    builder.check_size()
    return nfa


def accepts_empty(nfa: ByteNFA) -> bool:
    return nfa.final in nfa.closure(nfa.start)


@lru_cache(maxsize=4096)
def _pattern_nfa(regex: str) -> ByteNFA:
    return regex_to_nfa(regex)


class NfaBuilder:
    """Builds expressions into one NFA (``.nfa``): :meth:`count` every expression first (so
    shared nodes are known), then :meth:`into` each between a pair of its states."""

    def __init__(self, resolve: Resolver | None = None, max_states: int | None = None) -> None:
        self.nfa = ByteNFA()
        self.resolve = resolve
        self.max_states = sys.maxsize if max_states is None else max_states
        self.uses: dict[int, int] = {}
        self.entries: dict[tuple[int, int], int] = {}
        self.keep: list[Expr] = []  # keeps ids in ``entries`` valid

    def count(self, expr: Expr) -> None:
        """Counts the uses of every compound sub-expression object (iteratively)."""
        todo = [expr]
        while todo:
            e = todo.pop()
            if isinstance(e, (Ref, Terminal)):
                if self.resolve is None:
                    raise ValueError(f"unresolved {e!r} in a regular expression tree")
                e = self.resolve(e)
            key = id(e)
            seen = self.uses.get(key, 0)
            self.uses[key] = seen + 1
            if seen:
                continue
            self.keep.append(e)
            todo.extend(children(e))

    def check_size(self) -> None:
        if self.nfa.n_states > self.max_states:
            raise CompileBudgetError(f"an NFA exceeds {self.max_states} states")

    def into(self, expr: Expr, start: int, end: int) -> None:
        """Adds paths from ``start`` to ``end`` that read exactly the language of ``expr``."""
        nfa = self.nfa
        kind = type(expr)
        if nfa.n_states > self.max_states:
            self.check_size()
        if kind is Ref or kind is Terminal:
            expr = self.resolve(expr)
            kind = type(expr)
        if kind is Bytes:  # a few byte paths: cheaper to copy than to share
            nfa.add_paths(expr.sequences, start, end)
            return
        if self.uses.get(id(expr), 1) > 1:
            key = (id(expr), end)
            entry = self.entries.get(key)
            if entry is not None:
                nfa.add_epsilon(start, entry)
                return
            entry = self.entries[key] = nfa.new_state()
            nfa.add_epsilon(start, entry)
            start = entry
        if kind is Pattern:
            self._embed(_pattern_nfa(expr.regex), start, end)
        elif kind is Automaton:
            nfa_of = expr.__dict__.get("_nfa")
            if nfa_of is None:  # an Automaton is immutable: convert its DFA once
                nfa_of = _dfa_as_nfa(expr.dfa)
                object.__setattr__(expr, "_nfa", nfa_of)
            self._embed(nfa_of, start, end)
        elif kind is Seq:
            if not expr.items:
                nfa.add_epsilon(start, end)
                return
            state = start
            last = len(expr.items) - 1
            for k, item in enumerate(expr.items):
                target = end if k == last else nfa.new_state()
                self.into(item, state, target)
                state = target
        elif kind is Alt:
            for option in expr.options:  # no construct adds moves *into* its start state
                self.into(option, start, end)
        elif kind is Repeat:
            self._repeat(expr, start, end)
        else:
            raise TypeError(f"not a regular expression node: {expr!r}")

    def _repeat(self, expr: Repeat, start: int, end: int) -> None:
        nfa = self.nfa
        if expr.separator is not None:
            if expr.max is not None or expr.min > 1:
                self.into(expr.expanded(), start, end)
                return
            # item (separator item)*: one copy of the item, the separator loops back to it
            head, tail = nfa.new_state(), nfa.new_state()
            nfa.add_epsilon(start, head)
            if expr.min == 0:
                nfa.add_epsilon(start, end)
            self.into(expr.item, head, tail)
            self.into(expr.separator, tail, head)
            nfa.add_epsilon(tail, end)
            return
        state = start
        for _ in range(expr.min):
            nxt = nfa.new_state()
            self.into(expr.item, state, nxt)
            state = nxt
        if expr.max is None:
            loop = nfa.new_state()
            nfa.add_epsilon(state, loop)
            self.into(expr.item, loop, loop)
            nfa.add_epsilon(loop, end)
            return
        for _ in range(expr.max - expr.min):  # x? chained: each copy may stop at ``end``
            nfa.add_epsilon(state, end)
            nxt = nfa.new_state()
            self.into(expr.item, state, nxt)
            state = nxt
        nfa.add_epsilon(state, end)

    def _embed(self, sub: ByteNFA, start: int, end: int) -> None:
        offset = self.nfa.embed(sub)
        self.nfa.add_epsilon(start, sub.start + offset)
        self.nfa.add_epsilon(sub.final + offset, end)


def _dfa_as_nfa(dfa) -> ByteNFA:
    """A DFA's states as NFA states (runs of bytes with one target become one range move),
    with a fresh final state entered from every accepting state."""
    trans = np.asarray(dfa.transitions, dtype=np.int64)
    m = trans.shape[0]
    begins = np.ones(trans.shape, dtype=bool)
    begins[:, 1:] = trans[:, 1:] != trans[:, :-1]
    q, lo = np.nonzero(begins)  # row-major: each state's runs in byte order
    hi = np.empty_like(lo)
    hi[:-1] = lo[1:] - 1
    hi[np.append(q[1:] != q[:-1], True)] = 255  # a state's last run ends at byte 255
    dst = trans[q, lo]
    keep = dst >= 0
    accepting = np.flatnonzero(np.asarray(dfa.accepting))
    eps = np.column_stack((accepting, np.full(len(accepting), m)))
    return ByteNFA.from_moves(m + 1, 0, m, eps, np.column_stack((q[keep], lo[keep], hi[keep], dst[keep])))
