"""Thompson construction of a byte-level NFA from interegular's parse tree.

interegular parses the pattern; its own FSM operations are slow on alternations and bounded
repetitions (Outlines' compile profiles were dominated by them), so structgen builds the
automaton itself: each character class becomes UTF-8 byte-range paths, and the NFA is
determinised and minimised in :mod:`structgen.automata.byte_dfa`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from interegular import patterns as ip

from .utf8 import ByteSequence, code_points_to_ranges, complement_ranges, ranges_to_sequences

_ICASE = ip.REFlags.CASE_INSENSITIVE
_DOTALL = ip.REFlags.SINGLE_LINE
_EMPTY_T = type(ip._EMPTY)
_DOT_T = type(ip._DOT)


class UnsupportedRegexNode(ValueError):
    """A parse-tree node the automaton cannot represent (e.g. a lookaround)."""


def grouped(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR grouping of ``keys`` (each in ``0 .. n - 1``): ``ptr`` (n + 1) and the stable
    order that puts key ``k``'s entries at ``order[ptr[k]:ptr[k + 1]]``."""
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=ptr[1:])
    return ptr, np.argsort(keys, kind="stable")


class ByteNFA:
    """A byte NFA under construction: states are ints ``0 .. n_states - 1`` with byte-range
    moves (src, lo, hi, dst) and empty moves (src, dst), one start and one final state.

    Moves added one by one are kept in flat Python lists; another NFA embedded as a whole
    (:meth:`embed`) is kept as a reference with its state offset, and its moves are copied
    only by :meth:`arrays`, in bulk with numpy. An embedded NFA must not change afterwards.
    """

    __slots__ = ("n_states", "start", "final", "_edges", "_eps", "_embedded", "_coo", "_csr")

    def __init__(self) -> None:
        self.n_states = 0
        self.start = 0
        self.final = 0
        self._edges: list[int] = []  # src, lo, hi, dst, src, lo, ...
        self._eps: list[int] = []  # src, dst, src, dst, ...
        self._embedded: list[tuple[int, ByteNFA]] = []
        self._coo: tuple[np.ndarray, ...] | None = None
        self._csr: tuple[np.ndarray, ...] | None = None

    @classmethod
    def from_moves(cls, n_states: int, start: int, final: int, eps: np.ndarray, edges: np.ndarray) -> "ByteNFA":
        """An NFA given its moves at once: ``eps`` rows (src, dst), ``edges`` rows (src, lo,
        hi, dst)."""
        nfa = cls()
        nfa.n_states, nfa.start, nfa.final = n_states, start, final
        nfa._eps = np.asarray(eps, dtype=np.int64).ravel().tolist()
        nfa._edges = np.asarray(edges, dtype=np.int64).ravel().tolist()
        return nfa

    def new_state(self) -> int:
        self.n_states += 1
        return self.n_states - 1

    def add_edge(self, src: int, lo: int, hi: int, dst: int) -> None:
        self._edges += (src, lo, hi, dst)
        self._coo = self._csr = None

    def add_epsilon(self, src: int, dst: int) -> None:
        self._eps += (src, dst)
        self._coo = self._csr = None

    def embed(self, other: "ByteNFA") -> int:
        """Adds a copy of ``other``'s states and moves; returns the number of its state 0."""
        offset = self.n_states
        self.n_states += other.n_states
        self._embedded.append((offset, other))
        self._coo = self._csr = None
        return offset

    def coo(self) -> tuple[np.ndarray, ...]:
        """All moves as int64 arrays: eps_src, eps_dst, edge_src, edge_lo, edge_hi, edge_dst."""
        if self._coo is None:
            eps = np.array(self._eps, dtype=np.int64).reshape(-1, 2)
            edges = np.array(self._edges, dtype=np.int64).reshape(-1, 4)
            parts = [(eps[:, 0], eps[:, 1], edges[:, 0], edges[:, 1], edges[:, 2], edges[:, 3])]
            by_nfa: dict[int, tuple[ByteNFA, list[int]]] = {}
            for offset, other in self._embedded:
                by_nfa.setdefault(id(other), (other, []))[1].append(offset)
            for other, offsets in by_nfa.values():
                shift = np.array(offsets, dtype=np.int64)[:, None]
                e_src, e_dst, g_src, g_lo, g_hi, g_dst = other.coo()
                k = len(offsets)
                parts.append((
                    (e_src + shift).ravel(), (e_dst + shift).ravel(), (g_src + shift).ravel(),
                    np.tile(g_lo, k), np.tile(g_hi, k), (g_dst + shift).ravel(),
                ))  # fmt: skip
            self._coo = tuple(np.concatenate(column) for column in zip(*parts))
        return self._coo

    def arrays(self) -> tuple[np.ndarray, ...]:
        """CSR arrays: eps_ptr, eps_dst, edge_ptr, edge_lo, edge_hi, edge_dst (each state's
        moves in the order added)."""
        if self._csr is not None:
            return self._csr
        e_src, e_dst, g_src, g_lo, g_hi, g_dst = self.coo()
        eps_ptr, e_order = grouped(e_src, self.n_states)
        edge_ptr, g_order = grouped(g_src, self.n_states)
        self._csr = (eps_ptr, e_dst[e_order], edge_ptr, g_lo[g_order], g_hi[g_order], g_dst[g_order])
        return self._csr

    def add_paths(self, sequences, start: int, end: int) -> None:
        """Paths from ``start`` to ``end`` reading each byte sequence (a tuple of inclusive
        ``(lo, hi)`` ranges, one per byte; an empty one is an empty move)."""
        for seq in sequences:
            if not seq:
                self.add_epsilon(start, end)
                continue
            state = start
            for lo, hi in seq[:-1]:
                target = self.new_state()
                self.add_edge(state, lo, hi, target)
                state = target
            self.add_edge(state, seq[-1][0], seq[-1][1], end)

    def closure(self, state: int) -> frozenset[int]:
        """The states reachable from ``state`` by empty moves (itself included)."""
        eps_ptr, eps_dst = self.arrays()[:2]
        seen = {state}
        todo = [state]
        while todo:
            s = todo.pop()
            for t in eps_dst[eps_ptr[s] : eps_ptr[s + 1]].tolist():
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return frozenset(seen)


def nfa_from_pattern(pattern: ip.Pattern) -> ByteNFA:
    nfa = ByteNFA()
    nfa.start = nfa.new_state()
    nfa.final = _build(nfa, pattern, nfa.start, ip.REFlags(0))
    return nfa


def _build(nfa: ByteNFA, node, start: int, flags) -> int:
    """Adds ``node`` to the NFA from ``start``; returns its end state."""
    if isinstance(node, ip.Pattern):
        flags = (flags | node.added_flags) & ~node.removed_flags
        end = nfa.new_state()
        for option in node.options:
            branch = nfa.new_state()
            nfa.add_epsilon(start, branch)
            nfa.add_epsilon(_build(nfa, option, branch, flags), end)
        return end
    if isinstance(node, ip._Concatenation):
        state = start
        for part in node.parts:
            state = _build(nfa, part, state, flags)
        return state
    if isinstance(node, ip._Repeated):
        return _build_repeat(nfa, node, start, flags)
    if isinstance(node, ip._CharGroup):
        return _build_chars(nfa, _char_group_sequences(node, flags), start)
    if isinstance(node, _DOT_T):
        return _build_chars(nfa, _dot_sequences(bool(flags & _DOTALL)), start)
    if isinstance(node, _EMPTY_T):
        return start
    raise UnsupportedRegexNode(f"unsupported construct {type(node).__name__.strip('_')}")


def _build_repeat(nfa: ByteNFA, node, start: int, flags) -> int:
    state = start
    for _ in range(node.min):
        state = _build(nfa, node.base, state, flags)
    if node.max is None:  # Kleene star after the mandatory copies
        loop = nfa.new_state()
        nfa.add_epsilon(state, loop)
        body_end = _build(nfa, node.base, loop, flags)
        nfa.add_epsilon(body_end, loop)
        return loop
    end = nfa.new_state()
    for _ in range(node.max - node.min):
        nfa.add_epsilon(state, end)
        state = _build(nfa, node.base, state, flags)
    nfa.add_epsilon(state, end)
    return end


@lru_cache(maxsize=4096)
def _char_group_sequences(node, flags) -> tuple[ByteSequence, ...]:
    chars = node.chars
    if flags & _ICASE:
        chars = {v for c in chars for v in (c, c.lower(), c.upper()) if len(v) == 1}
    ranges = code_points_to_ranges(ord(c) for c in chars)
    return tuple(ranges_to_sequences(complement_ranges(ranges) if node.negated else ranges))


@lru_cache(maxsize=2)
def _dot_sequences(dotall: bool) -> tuple[ByteSequence, ...]:
    return tuple(ranges_to_sequences(complement_ranges([] if dotall else [(10, 10)])))


def _build_chars(nfa: ByteNFA, sequences: tuple[ByteSequence, ...], start: int) -> int:
    end = nfa.new_state()
    nfa.add_paths(sequences, start, end)
    return end
