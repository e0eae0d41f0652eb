"""An Earley recogniser over terminals, with persistent nodes.

Each :class:`EarleyNode` is the Earley set after some sequence of terminals. Items point at
the node where they started (an object, not an index), so a node never changes once built,
any number of matchers can share it, and forking or rolling back a parse costs nothing. A node
caches its successor per terminal. Nullable nonterminals are handled as Aycock and Horspool
describe (a prediction of a nullable symbol also advances over it).

The items a set predicts (origin: the set itself) depend only on which nonterminals it
predicts, so they are computed once per such set of nonterminals (:class:`Predictions`) and
shared; a node builds only its own items, those scanned into it and those completed from
earlier sets.
"""

from __future__ import annotations

from ..grammar.ir import Bnf

_SELF = object()  # stands for "this node" in interning keys


class Predictions:
    """The items predicted for a closed set of nonterminals, as (production, dot) pairs
    whose origin is the predicting set: ``waiting`` maps a symbol to the pairs waiting on it;
    ``scannable`` is the bitset of terminals among those symbols."""

    __slots__ = ("key", "waiting", "scannable")

    def __init__(self, grammar: "EarleyGrammar", closed: frozenset[int]) -> None:
        self.key = closed
        waiting: dict[int, list[tuple[int, int]]] = {}
        for a in closed:
            for p in grammar.by_lhs[a]:
                rhs = grammar.rhs[p]
                for d, s in enumerate(rhs):
                    waiting.setdefault(s, []).append((p, d))
                    if s < 0 or s not in grammar.nullable:
                        break
        self.waiting = {s: tuple(items) for s, items in waiting.items()}
        scannable = 0
        for s in waiting:
            if s < 0:
                scannable |= 1 << ~s
        self.scannable = scannable


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
        self.closure = [self._predicts(a) for a in range(n + 1)]
        self._predictions: dict[frozenset[int], Predictions] = {}
        # nodes with the same pending items behave the same from here on: keep one (a plain
        # dict: a node lives as long as the root anyway, through its parents' children, and a
        # WeakValueDictionary's Python-level get and set cost more than the rest of interning)
        self.interned: dict[tuple, EarleyNode] = {}
        self.ignore_bits = 0
        for t in bnf.ignore:
            self.ignore_bits |= 1 << t

    def terminal_follow(self, end: int = -1) -> list[int]:
        """For each terminal, the bitset of terminals that can come right after it in some
        sentence (ignored terminals aside): FIRST and FOLLOW sets, to a fixed point. With
        ``end`` >= 0, bit ``end`` stands for the end of the sentence."""
        n = len(self.by_lhs)
        first = [0] * n  # terminals that can begin each nonterminal
        changed = True
        while changed:
            changed = False
            for lhs, rhs in zip(self.lhs, self.rhs):
                bits = first[lhs] | self._first_of(rhs, first)
                if bits != first[lhs]:
                    first[lhs] = bits
                    changed = True
        follow = [0] * n  # terminals that can follow each nonterminal
        if end >= 0:
            follow[self.lhs[self.start_production]] = 1 << end
        t_follow = [0] * self.bnf.n_terminals
        changed = True
        while changed:
            changed = False
            for lhs, rhs in zip(self.lhs, self.rhs):
                after = follow[lhs]  # what can follow the part of the rhs right of here
                for s in reversed(rhs):
                    if s < 0:
                        t_follow[~s] |= after
                        after = 1 << ~s
                    else:
                        if follow[s] | after != follow[s]:
                            follow[s] |= after
                            changed = True
                        after = first[s] | (after if s in self.nullable else 0)
        return t_follow

    def follow_and_last(self) -> tuple[list[int], int]:
        """:meth:`terminal_follow` and the bitset of terminals that can end a sentence
        (ignored ones aside), from one fixed point."""
        end = self.bnf.n_terminals
        follow = self.terminal_follow(end)
        last = sum(1 << t for t, after in enumerate(follow) if after >> end & 1)
        return [after & ~(1 << end) for after in follow], last

    def _first_of(self, rhs: tuple, first: list[int]) -> int:
        bits = 0
        for s in rhs:
            if s < 0:
                return bits | (1 << ~s)
            bits |= first[s]
            if s not in self.nullable:
                return bits
        return bits

    def _predicts(self, a: int) -> frozenset[int]:
        """The nonterminals a prediction of ``a`` predicts, ``a`` included (through nullable
        prefixes too)."""
        seen = {a}
        todo = [a]
        while todo:
            for p in self.by_lhs[todo.pop()]:
                for s in self.rhs[p]:
                    if s < 0:
                        break
                    if s not in seen:
                        seen.add(s)
                        todo.append(s)
                    if s not in self.nullable:
                        break
        return frozenset(seen)

    def predictions(self, seeds: frozenset[int]) -> Predictions:
        found = self._predictions.get(seeds)
        if found is None:
            closed = frozenset().union(*(self.closure[s] for s in seeds))
            found = self._predictions.get(closed)
            if found is None:
                found = self._predictions[closed] = Predictions(self, closed)
            self._predictions[seeds] = found
        return found

    def root(self) -> "EarleyNode":
        node = EarleyNode.__new__(EarleyNode)
        node._build(self, [(self.start_production, 0, node)], root=node)
        return node


class EarleyNode:
    """One Earley set. ``allowed`` is a bitset of the terminals that may come next
    (scannable ones and the ignored ones); ``accepting`` is True when the terminals so far
    form a sentence. ``waiting`` holds the node's own items by the symbol they wait on;
    ``predicted`` the shared predicted ones."""

    __slots__ = (
        "grammar", "root", "waiting", "predicted", "scannable", "allowed", "accepting", "children", "index",
        "targets",
    )  # fmt: skip

    def _build(self, grammar: EarleyGrammar, kernel: list, root: "EarleyNode") -> None:
        self.grammar = grammar
        self.root = root
        self.children: dict[int, EarleyNode | None] = {}
        self.index = -1
        self.targets: dict[int, tuple] = {}
        rhs_of, lhs_of, nullable = grammar.rhs, grammar.lhs, grammar.nullable
        items: set = set()
        waiting: dict[int, list] = {}
        seeds: set[int] = set()
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
                    seeds.add(s)
                    if s in nullable:
                        agenda.append((p, d + 1, origin))
            elif origin is not self:  # completions within this set are the nullable case above
                lhs = lhs_of[p]
                for p2, d2, o2 in origin.waiting.get(lhs, ()):
                    agenda.append((p2, d2 + 1, o2))
                for p2, d2 in origin.predicted.waiting.get(lhs, ()):
                    agenda.append((p2, d2 + 1, origin))
        self.waiting = waiting
        self.predicted = predicted = grammar.predictions(frozenset(seeds))
        self.accepting = (grammar.start_production, 1, root) in items
        scannable = predicted.scannable
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
        if not (self.scannable >> terminal) & 1:
            nxt = None
        else:
            kernel = [(p, d + 1, o) for p, d, o in self.waiting.get(~terminal, ())]
            kernel.extend((p, d + 1, self) for p, d in self.predicted.waiting.get(~terminal, ()))
            nxt = EarleyNode.__new__(EarleyNode)
            nxt._build(self.grammar, kernel, root=self.root)
            nxt = nxt._interned()
        self.children[terminal] = nxt
        return nxt

    def _interned(self) -> "EarleyNode":
        """An existing node with the same future, or this one: the same pending items and
        acceptance (items already completed are irrelevant to the future, so ambiguous
        splits of the same bytes into lexemes meet again here), where an item is keyed by
        where completing it leads (:meth:`completion_target` of its origin), not by the
        origin itself. A right-recursive chain (``factor: "-" factor`` read over a run of
        ``-``) then stays one node, however long the run."""
        lhs = self.grammar.lhs
        keyed = []
        for items in self.waiting.values():
            for p, d, o in items:
                if o is self:
                    keyed.append((p, d, _SELF))
                else:
                    keyed.append((p, d, o.completion_target(lhs[p])))
        key = (self.accepting, frozenset(keyed), self.predicted.key)
        return self.grammar.interned.setdefault(key, self)

    def completion_target(self, symbol: int) -> tuple:
        """Where completing ``symbol`` at this node leads: (symbol, node) after following the
        completions that are forced, i.e. while the node has exactly one item waiting on the
        symbol and that symbol is the item's last (its completion completes the item's own
        left-hand side at the item's origin, and adds nothing else). Two items whose
        completions lead to the same target behave alike from then on."""
        found = self.targets.get(symbol)
        if found is not None:
            return found
        node, sym = self, symbol
        rhs, lhs = self.grammar.rhs, self.grammar.lhs
        for _ in range(64):  # a longer chain keeps a deeper target: still exact, merged less
            own = node.waiting.get(sym, ())
            predicted = node.predicted.waiting.get(sym, ())
            if len(own) + len(predicted) != 1:
                break
            p, d, o = own[0] if own else (*predicted[0], node)
            if d + 1 != len(rhs[p]) or (lhs[p] == sym and o is node):
                break
            if o is not node and lhs[p] in o.targets:
                found = o.targets[lhs[p]]
                break
            node, sym = o, lhs[p]
        if found is None:
            found = (sym, node)
        self.targets[symbol] = found
        return found

    def __repr__(self) -> str:
        return f"EarleyNode(accepting={self.accepting}, scannable={bin(self.scannable)})"
