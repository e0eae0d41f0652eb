"""An LALR(1) recogniser with persistent stacks, for grammars whose tables have no conflict.

It offers what :class:`structgen.automata.earley.EarleyNode` offers (``allowed``,
``scannable``, ``accepting``, ``scan``), so a grammar constraint runs on either. Where the
tables exist, a step past a terminal is a few reductions and a shift instead of an Earley
closure: the token masks of a new parse state ask for dozens of such steps.

A node is one stack: its top LR state and the node below. Nodes are interned by (state,
node below), so equal stacks are one object, a node never changes once built, and forking or
rolling back a parse costs nothing. A node's ``allowed`` terminals are exact: a terminal the
top state would reduce on counts only if the reductions end in a shift of it (LALR tables may
reduce on a lookahead that the stack then refuses).

Every step also says how deep it looked: a node keeps the lowest stack height its terminals
were read from (``low``), and a scan the lowest height it read (``reads``). What a sequence of
steps decides about a stack is then decided alike for every stack that holds the same states
from that height up (see :func:`top_states`), which lets masks be shared between parses.
"""

from __future__ import annotations

from ..grammar.ir import Bnf

MAX_PRODUCTIONS = 4000  # larger grammars stay with the Earley parser (building tables costs more)


def lalr_table(bnf: Bnf, ignore_bits: int = 0) -> "LRTable | None":
    """The LALR(1) tables of ``bnf`` (built by lark's analyser), or None when they have a
    conflict or the grammar is too large."""
    if len(bnf.productions) > MAX_PRODUCTIONS:
        return None
    from lark.common import ParserConf
    from lark.exceptions import GrammarError
    from lark.grammar import NonTerminal, Rule, RuleOptions, Terminal
    from lark.parsers.lalr_analysis import LALR_Analyzer, Shift

    rules: list = []
    shape: dict = {}  # lark's rule -> (lhs, right-hand side)
    for lhs, rhs in dict.fromkeys(bnf.productions):  # (a production written twice is one rule)
        symbols = [Terminal(f"t{~s}") if s < 0 else NonTerminal(f"n{s}") for s in rhs]
        rule = Rule(NonTerminal(f"n{lhs}"), symbols, options=RuleOptions())
        rules.append(rule)
        shape[rule] = (lhs, rhs)
    start = f"n{bnf.start}"
    try:
        analyzer = LALR_Analyzer(ParserConf(rules, None, [start]), debug=True, strict=True)  # (debug: states keep their items)
        analyzer.compute_lalr()
    except GrammarError:
        return None  # a shift/reduce or reduce/reduce conflict: not LALR(1)
    except TypeError:
        return None  # a lark without strict mode (it would resolve conflicts silently)
    end = bnf.n_terminals
    table = analyzer.parse_table
    number = {items: k for k, items in enumerate(table.states)}
    shifts: list[dict[int, int]] = [{} for _ in number]
    gotos: list[dict[int, int]] = [{} for _ in number]
    reduces: list[list[tuple[int, int, int]]] = [[] for _ in number]
    for items, actions in table.states.items():
        state = number[items]
        by_rule: dict = {}
        for name, (action, arg) in actions.items():
            if name[0] == "n":
                gotos[state][int(name[1:])] = number[arg]
                continue
            index = end if name == "$END" else int(name[1:])
            if action is Shift:
                shifts[state][index] = number[arg]
            else:
                by_rule[arg] = by_rule.get(arg, 0) | 1 << index
        reduces[state] = [(bits, shape[rule][0], len(shape[rule][1])) for rule, bits in by_rule.items()]
    runs = [
        _collapsible([(*shape.get(item.rule, (-1, ())), item.index) for item in items if item.index > 0], gotos[k], reduces)
        for k, items in enumerate(table.states)
    ]
    return LRTable(shifts, gotos, reduces, runs, number[table.start_states[start]], number[table.end_states[start]], end, ignore_bits)


def _collapsible(kernel: list[tuple[int, tuple[int, ...], int]], gotos: dict[int, int], reduces: list) -> bool:
    """Whether a stack with this state on top of the same state behaves as the stack with
    it once. ``kernel``: the state's items with the dot past the start, as (left-hand side,
    right-hand side, dot; the start rule's as (-1, ())); ``gotos``: the state's; ``reduces``:
    every state's.

    It does when every such item is ``X: a . Y`` for one terminal ``a`` (a prefix operator,
    pushed again by each ``a``) and completing ``Y`` above the upper copy leads back to
    where the lower copy's ``Y`` completes: either ``Y`` is ``X`` (``factor: "-" factor``),
    or the state after ``X`` reduces ``Y: X`` on every lookahead on which the state after
    ``Y`` reduces ``X: a Y`` (``unary: "-" factor``, ``factor: unary``). The reduction that
    pops the upper copy then leads, under the same lookahead, to the same reduction popping
    the lower one, so a run of ``a`` is one stack however long."""
    if not kernel or any(dot != 1 or len(rhs) != 2 or rhs[0] >= 0 or rhs[1] < 0 for _, rhs, dot in kernel):
        return False
    if len({rhs[0] for _, rhs, _ in kernel}) != 1:
        return False
    for lhs, rhs, _ in kernel:
        y = rhs[1]
        if y == lhs:
            continue
        after_y, after_x = gotos.get(y), gotos.get(lhs)
        if after_y is None or after_x is None:
            return False
        closing = 0
        for bits, reduced, length in reduces[after_y]:
            if reduced == lhs and length == 2:
                closing |= bits
        if not any(reduced == y and length == 1 and not closing & ~bits for bits, reduced, length in reduces[after_x]):
            return False
    return True


class LRTable:
    """Per LR state: ``shifts`` (terminal -> state), ``gotos`` (nonterminal -> state) and
    ``reduces`` (lookahead bitset, left-hand side, length of the right-hand side), ``runs``
    (whether a run of the state is one, see :func:`_collapsible`); terminal
    ``end`` stands for the end of input, which state ``accept`` (the start symbol read from
    the start state) takes.

    Reductions run on *virtual* stacks, a state over a node (``(state, below)``): only the
    stack that shifts becomes a node, so a step through a chain of precedence levels builds
    one or two objects, not one per level."""

    def __init__(
        self, shifts: list[dict[int, int]], gotos: list[dict[int, int]], reduces: list[list[tuple[int, int, int]]],
        runs: list[bool], start: int, accept: int, end: int, ignore_bits: int,
    ) -> None:
        self.shifts = shifts
        self.gotos = gotos
        self.reduces = reduces
        self.runs = runs  # see _collapsible
        self.reduce_on: list[dict[int, tuple[int, int]]] = [  # per state: terminal -> (left-hand side, length)
            {t: (lhs, length) for lookahead, lhs, length in row for t in range(end + 1) if lookahead >> t & 1} for row in reduces
        ]
        self.shift_bits = [sum(1 << t for t in row) for row in shifts]
        self.shift_bits[accept] |= 1 << end
        self.start = start
        self.end = end
        self.terminal_bits = (1 << end) - 1
        self.ignore_bits = ignore_bits
        # (a plain dict: a node stays reachable from the root through the children of the
        # nodes before it anyway, and weak values cost a Python call per lookup)
        self.nodes: dict[tuple[int, LRNode | None], LRNode] = {}
        self._over_root: dict[int, tuple[int, int]] = {}  # viable terminals of one-state stacks

    @property
    def n_states(self) -> int:
        return len(self.shifts)

    def root(self) -> "LRNode":
        return self.push(None, self.start)

    def push(self, below: "LRNode | None", state: int) -> "LRNode":
        """The (interned) stack ``below`` with ``state`` on top (``below`` itself for a
        state that runs, see :func:`_collapsible`)."""
        if self._runs_onto(below, state):
            return below
        key = (state, below)
        node = self.nodes.get(key)
        if node is None:
            node = LRNode(self, state, below)
            self.nodes[key] = node  # (before its terminals: an empty reduction there pushes it again)
            bits, node.low = self._viable(state, below)
            node.accepting = bool(bits >> self.end & 1)
            node.scannable = bits & self.terminal_bits
            node.allowed = node.scannable | self.ignore_bits
        return node

    def reduce(self, state: int, below: "LRNode | None", lhs: int, length: int) -> "tuple[int, LRNode | None, int]":
        """The virtual stack after reducing ``length`` symbols on top of ``(state, below)``
        to ``lhs``, and the height of the lowest state read (the one the goto leaves from)."""
        if length == 0:
            base = self.push(below, state)
        else:
            base = below
            for _ in range(length - 1):
                base = base.below
        top = self.gotos[base.state][lhs]
        return ((top, base.below) if self._runs_onto(base, top) else (top, base)) + (base.height,)

    def _runs_onto(self, below: "LRNode | None", state: int) -> bool:
        """Whether ``state`` pushed on ``below`` is ``below`` itself (see :func:`_collapsible`)."""
        return below is not None and below.state == state and self.runs[state]

    def _viable(self, state: int, below: "LRNode | None") -> tuple[int, int]:
        """The terminals (end of input included) that the stack ``(state, below)`` shifts
        after its reductions, and the lowest stack height read for them; kept per stack on
        the node below."""
        memo = self._over_root if below is None else below.over
        found = memo.get(state)
        if found is None:
            bits = self.shift_bits[state]
            low = 1 if below is None else below.height + 1
            for lookahead, lhs, length in self.reduces[state]:
                if not lookahead & ~bits:
                    continue  # (it could add no terminal: nothing below is read for it)
                top, base, read = self.reduce(state, below, lhs, length)
                more, deeper = self._viable(top, base)
                bits |= lookahead & more
                low = min(low, read, deeper)
            found = memo[state] = (bits, low)
        return found


class LRNode:
    """One parse stack (see the module docstring)."""

    __slots__ = (
        "table", "state", "below", "height", "low", "over", "children", "reads", "index", "scannable", "allowed", "accepting",
    )  # fmt: skip

    def __init__(self, table: LRTable, state: int, below: "LRNode | None") -> None:
        self.table = table
        self.state = state
        self.below = below
        self.height = 1 if below is None else below.height + 1
        self.low = self.height  # the lowest height its terminals were read from (set by LRTable.push)
        self.over: dict[int, tuple[int, int]] = {}  # see LRTable._viable
        self.children: dict[int, LRNode | None] = {}
        self.reads: dict[int, int] = {}  # per terminal scanned: the lowest height the scan and its result read
        self.index = -1
        self.accepting = False  # (set by LRTable.push)
        self.scannable = self.allowed = 0

    def scan(self, terminal: int) -> "LRNode | None":
        """The stack after ``terminal``, or None if the grammar does not allow it here."""
        try:
            return self.children[terminal]
        except KeyError:
            pass
        nxt = None
        low = self.low  # (whether the terminal is scannable at all)
        if self.scannable >> terminal & 1:
            table = self.table
            state, below = self.state, self.below
            while nxt is None:
                shifted = table.shifts[state].get(terminal)
                if shifted is not None:
                    under = self if below is self.below and state == self.state else table.push(below, state)
                    nxt = table.push(under, shifted)
                    low = min(low, nxt.low, under.height if below is None else below.height)
                    break
                # (each reduction reads no deeper than the stack it leaves, and the shift's
                # push reads that stack's top: below.height above)
                state, below, _ = table.reduce(state, below, *table.reduce_on[state][terminal])
        self.children[terminal] = nxt
        self.reads[terminal] = low
        return nxt

    def top_states(self, depth: int) -> tuple[int, ...]:
        """The states of the stack's top ``depth`` entries, top first (all of them when the
        stack is shallower)."""
        out = []
        node = self
        while node is not None and len(out) < depth:
            out.append(node.state)
            node = node.below
        return tuple(out)

    def __repr__(self) -> str:
        return f"LRNode(state={self.state}, accepting={self.accepting}, scannable={bin(self.scannable)})"
