"""Thompson construction of a byte-level NFA from interegular's parse tree.

interegular parses the pattern; its own FSM operations are slow on alternations and bounded
repetitions (Outlines' compile profiles were dominated by them), so structgen builds the
automaton itself: each character class becomes UTF-8 byte-range paths, and the NFA is
determinised and minimised in :mod:`structgen.automata.byte_dfa`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from interegular import patterns as ip

from .utf8 import ByteSequence, code_points_to_ranges, complement_ranges, ranges_to_sequences

_ICASE = ip.REFlags.CASE_INSENSITIVE
_DOTALL = ip.REFlags.SINGLE_LINE
_EMPTY_T = type(ip._EMPTY)
_DOT_T = type(ip._DOT)


class UnsupportedRegexNode(ValueError):
    """A parse-tree node the automaton cannot represent (e.g. a lookaround)."""


@dataclass
class ByteNFA:
    """States are ints; ``edges[s]`` holds ``(lo, hi, target)`` byte-range moves and
    ``epsilon[s]`` the empty moves. One start and one final state."""

    edges: list[list[tuple[int, int, int]]] = field(default_factory=list)
    epsilon: list[list[int]] = field(default_factory=list)
    start: int = 0
    final: int = 0

    def new_state(self) -> int:
        self.edges.append([])
        self.epsilon.append([])
        return len(self.edges) - 1

    def closure(self, state: int) -> frozenset[int]:
        """The states reachable from ``state`` by empty moves (itself included)."""
        seen = {state}
        todo = [state]
        while todo:
            for t in self.epsilon[todo.pop()]:
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
            nfa.epsilon[start].append(branch)
            nfa.epsilon[_build(nfa, option, branch, flags)].append(end)
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
        nfa.epsilon[state].append(loop)
        body_end = _build(nfa, node.base, loop, flags)
        nfa.epsilon[body_end].append(loop)
        return loop
    end = nfa.new_state()
    for _ in range(node.max - node.min):
        nfa.epsilon[state].append(end)
        state = _build(nfa, node.base, state, flags)
    nfa.epsilon[state].append(end)
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
    for seq in sequences:
        state = start
        for k, (lo, hi) in enumerate(seq):
            target = end if k == len(seq) - 1 else nfa.new_state()
            nfa.edges[state].append((lo, hi, target))
            state = target
    return end
