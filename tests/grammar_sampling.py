"""Random sentences of a grammar for differential tests: derivations of the lowered BNF with
a depth limit, each terminal replaced by a random string of its own regex (a random walk on
its byte DFA that heads for acceptance once long enough), ignored terminals sprinkled between
lexemes. Every sentence is in the language by construction, independently of the matcher."""

from __future__ import annotations

import random
from collections import deque

import numpy as np

from structgen.automata.byte_dfa import ByteDFA
from structgen.automata.expr_nfa import expr_to_nfa
from structgen.grammar.ir import Bnf


class SentenceSampler:
    def __init__(self, bnf: Bnf, seed: int = 0) -> None:
        self.bnf = bnf
        self.rng = random.Random(seed)
        self.dfas = [ByteDFA.from_nfa(expr_to_nfa(p)) for p in bnf.terminals]
        self.by_lhs: dict[int, list[tuple[int, ...]]] = {}
        for lhs, rhs in bnf.productions:
            self.by_lhs.setdefault(lhs, []).append(rhs)
        self.height = self._heights()

    def _heights(self) -> dict[int, int]:
        """Minimal derivation height of each nonterminal (to finish derivations)."""
        height: dict[int, int] = {}
        changed = True
        while changed:
            changed = False
            for lhs, rhs in self.bnf.productions:
                if all(s < 0 or s in height for s in rhs):
                    h = 1 + max([height[s] for s in rhs if s >= 0], default=0)
                    if h < height.get(lhs, 1 << 30):
                        height[lhs] = h
                        changed = True
        return height

    def terminal_string(self, t: int, max_len: int = 12) -> bytes:
        dfa = self.dfas[t]
        dist = _distance_to_accept(dfa)
        state, out = 0, bytearray()
        while True:
            row = dfa.transitions[state]
            choices = np.flatnonzero(row >= 0)
            if dfa.accepting[state] and out and (len(out) >= max_len or len(choices) == 0 or self.rng.random() < 0.3):
                return bytes(out)
            if len(out) >= max_len:  # head for acceptance
                choices = [b for b in choices if dist[row[b]] < dist[state]]
            b = int(self.rng.choice(list(choices)))
            out.append(b)
            state = int(row[b])

    def sentence(self, max_depth: int = 6) -> bytes:
        pieces: list[bytes] = []
        self._expand(self.bnf.start, max_depth, pieces)
        return b"".join(pieces)

    def terminal_sequence(self, max_depth: int = 6) -> list[int]:
        """The terminals of a random derivation (ignored ones left out)."""
        out: list[int] = []
        todo = [(self.bnf.start, max_depth)]
        while todo:
            symbol, depth = todo.pop()
            if symbol < 0:
                out.append(~symbol)
                continue
            options = self.by_lhs[symbol]
            if depth <= 0:
                options = sorted(options, key=lambda rhs: max([self.height.get(s, 0) for s in rhs if s >= 0], default=0))[:1]
            todo.extend((s, depth - 1) for s in reversed(self.rng.choice(options)))
        return out

    def _expand(self, symbol: int, depth: int, pieces: list[bytes]) -> None:
        if symbol < 0:
            if self.bnf.ignore and self.rng.random() < 0.3:
                pieces.append(self.terminal_string(self.rng.choice(self.bnf.ignore), 3))
            pieces.append(self.terminal_string(~symbol))
            return
        options = self.by_lhs[symbol]
        if depth <= 0:
            options = sorted(options, key=lambda rhs: max([self.height.get(s, 0) for s in rhs if s >= 0], default=0))[:1]
        rhs = self.rng.choice(options)
        for s in rhs:
            self._expand(s, depth - 1, pieces)


def _distance_to_accept(dfa: ByteDFA) -> list[int]:
    n = dfa.n_states
    back: list[set[int]] = [set() for _ in range(n)]
    for s in range(n):
        for t in set(dfa.transitions[s].tolist()):
            if t >= 0:
                back[t].add(s)
    dist = [1 << 30] * n
    queue = deque()
    for s in range(n):
        if dfa.accepting[s]:
            dist[s] = 0
            queue.append(s)
    while queue:
        s = queue.popleft()
        for p in back[s]:
            if dist[p] > dist[s] + 1:
                dist[p] = dist[s] + 1
                queue.append(p)
    return dist


def mutations(data: bytes, rng: random.Random, alphabet: bytes, count: int) -> list[bytes]:
    """Byte insertions, deletions and swaps of ``data``."""
    out = []
    for _ in range(count):
        if not data:
            out.append(bytes([rng.choice(alphabet)]))
            continue
        i = rng.randrange(len(data))
        kind = rng.randrange(3)
        if kind == 0:
            out.append(data[:i] + bytes([rng.choice(alphabet)]) + data[i:])
        elif kind == 1:
            out.append(data[:i] + data[i + 1 :])
        else:
            j = rng.randrange(len(data))
            b = bytearray(data)
            b[i], b[j] = b[j], b[i]
            out.append(bytes(b))
    return out
