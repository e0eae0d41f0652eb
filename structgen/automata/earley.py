"""An Earley recogniser over terminals, with persistent nodes.

Each :class:`EarleyNode` is the Earley set after some sequence of terminals. Items point at
the node where they started (an object, not an index), so a node never changes once built,
any number of matchers can share it, and forking or rolling back a parse costs nothing. A node
caches its successor per terminal. Nullable nonterminals are handled as Aycock and Horspool
describe (a prediction of a nullable symbol also advances over it).
"""

from __future__ import annotations

import weakref

from ..grammar.ir import Bnf

_SELF = object()  # stands for "this node" in interning keys


class EarleyGrammar:
    """The BNF with an added start production ``S' -> S`` and the tables the closure needs."""

    def __init__(self, bnf: Bnf) -> None:
        self.bnf = bnf
        n = len(bnf.nonterminals)
        self.lhs = [lhs for lhs, _ in bnf.productions] + [n]
        self.rhs = [rhs for _, rhs in bnf.productions] + [(bnf.start,)]
        self.start_production = len(self.lhs) - 1
        self.by_lhs: list[list[int]] = [[] for _ in range(n + 1)]
        for p, lhs in enumerate(self.lhs):
            self.by_lhs[lhs].append(p)
        nullable: set[int] = set()
        changed = True
        while changed:
            changed = False
            for lhs, rhs in zip(self.lhs, self.rhs):
                if lhs not in nullable and all(s >= 0 and s in nullable for s in rhs):
                    nullable.add(lhs)
                    changed = True
        self.nullable = frozenset(nullable)
        # nodes with the same pending items behave the same from here on: keep one
        self.interned: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.ignore_bits = 0
        for t in bnf.ignore:
            self.ignore_bits |= 1 << t

    def root(self) -> "EarleyNode":
        node = EarleyNode.__new__(EarleyNode)
        node._build(self, [(self.start_production, 0, node)], root=node)
        return node


class EarleyNode:
    """One Earley set. ``allowed`` is a bitset of the terminals that may come next
    (scannable ones and the ignored ones); ``accepting`` is True when the terminals so far
    form a sentence."""

    __slots__ = ("grammar", "root", "waiting", "scannable", "allowed", "accepting", "children", "index", "__weakref__")

    def _build(self, grammar: EarleyGrammar, kernel: list, root: "EarleyNode") -> None:
        self.grammar = grammar
        self.root = root
        self.children: dict[int, EarleyNode | None] = {}
        self.index = -1
        rhs_of, lhs_of, by_lhs, nullable = grammar.rhs, grammar.lhs, grammar.by_lhs, grammar.nullable
        items: set = set()
        waiting: dict[int, list] = {}
        predicted: set[int] = set()
        agenda = list(kernel)
        while agenda:
            item = agenda.pop()
            if item in items:
                continue
            items.add(item)
            p, d, origin = item
            rhs = rhs_of[p]
            if d < len(rhs):
                s = rhs[d]
                waiting.setdefault(s, []).append(item)
                if s >= 0:
                    if s not in predicted:
                        predicted.add(s)
                        agenda.extend((q, 0, self) for q in by_lhs[s])
                    if s in nullable:
                        agenda.append((p, d + 1, origin))
            elif origin is not self:  # completions within this set are the nullable case above
                for p2, d2, o2 in origin.waiting.get(lhs_of[p], ()):
                    agenda.append((p2, d2 + 1, o2))
        self.waiting = waiting
        self.accepting = (grammar.start_production, 1, root) in items
        scannable = 0
        for s in waiting:
            if s < 0:
                scannable |= 1 << ~s
        self.scannable = scannable
        self.allowed = scannable | grammar.ignore_bits

    def scan(self, terminal: int) -> "EarleyNode | None":
        """The node after ``terminal``, or None if the grammar does not allow it here."""
        try:
            return self.children[terminal]
        except KeyError:
            pass
        moved = self.waiting.get(~terminal)
        if not moved:
            nxt = None
        else:
            nxt = EarleyNode.__new__(EarleyNode)
            nxt._build(self.grammar, [(p, d + 1, o) for p, d, o in moved], root=self.root)
            nxt = nxt._interned()
        self.children[terminal] = nxt
        return nxt

    def _interned(self) -> "EarleyNode":
        """An existing node with the same pending items and acceptance, or this one. Items
        already completed are irrelevant to the future, so ambiguous splits of the same
        bytes into lexemes meet again here."""
        key = (
            self.accepting,
            frozenset((p, d, _SELF if o is self else o) for items in self.waiting.values() for p, d, o in items),
        )
        found = self.grammar.interned.get(key)
        if found is not None:
            return found
        self.grammar.interned[key] = self
        return self

    def __repr__(self) -> str:
        return f"EarleyNode(accepting={self.accepting}, scannable={bin(self.scannable)})"
