"""An LALR(1) recogniser with persistent stacks, for grammars whose tables have no conflict.

It offers what :class:`structgen.automata.earley.EarleyNode` offers (``allowed``,
``scannable``, ``accepting``, ``scan``), so a grammar constraint runs on either. Where the
tables exist, a step past a terminal is a few reductions and a shift instead of an Earley
closure: the token masks of a new parse state ask for dozens of such steps.

A node is one stack: its top LR state and the node below. Stacks are rows of numba arrays
(:mod:`structgen.automata.lr_kernels`), interned by (state, row below), so that the grammar
kernels step the parser themselves; :class:`LRNode` is a row's Python handle, one per row.
Equal stacks are one row, a row never changes once built, and forking or rolling back a
parse costs nothing. A node's ``allowed`` terminals are exact: a terminal the
top state would reduce on counts only if the reductions end in a shift of it (LALR tables may
reduce on a lookahead that the stack then refuses).

Every step also says how deep it looked: a node keeps the lowest stack height its terminals
were read from (``low``), and a scan the lowest height it read (``reads``). What a sequence of
steps decides about a stack is then decided alike for every stack that holds the same states
from that height up (see :func:`top_states`), which lets masks be shared between parses.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from ..grammar.ir import Bnf
from . import lr_kernels as lk
from .arrays import grown
from .lexer import bits_to_words, set_bits

MAX_PRODUCTIONS = 4000  # larger grammars stay with the Earley parser (building tables costs more)
# rows a table starts with: zeros that cost no memory until written (calloc'd pages), so that
# a request rarely meets a growth (which copies the rows in use: about a millisecond at 10k)
INITIAL_ROWS = 1 << 14
STEP_ROOM = 64  # free rows a step from Python makes sure of first


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

    The stacks live in the rows of :mod:`structgen.automata.lr_kernels` (``store``: the tuple
    the kernels read, so that the grammar kernels step the parser without calling Python);
    :meth:`node` gives a row's Python handle. Reductions run on *virtual* stacks, a state
    over a row: only the stack that shifts is pushed (a virtual stack has a row too, which
    keeps its viable terminals, but no handle). Rows are never dropped (a handle may be held
    by any matcher state); ``lock`` guards every step and growth."""

    def __init__(
        self, shifts: list[dict[int, int]], gotos: list[dict[int, int]], reduces: list[list[tuple[int, int, int]]],
        runs: list[bool], start: int, accept: int, end: int, ignore_bits: int,
    ) -> None:
        self.reduces = reduces
        self.shift_bits = [sum(1 << t for t in row) for row in shifts]
        self.shift_bits[accept] |= 1 << end
        self.start = start
        self.end = end
        self.terminal_bits = (1 << end) - 1
        self.ignore_bits = ignore_bits
        self.lock = threading.RLock()
        self.words = end // 64 + 1  # (terminals and the end of input)
        self._tables = _table_arrays(shifts, gotos, reduces, runs, self.shift_bits, self.words)
        self.meta = np.zeros(4, dtype=np.int64)
        self.meta[lk.M_END] = end
        self._ignore = bits_to_words(ignore_bits, max(1, (end + 63) // 64))
        self._handles: dict[int, LRNode] = {}
        self._rows: tuple[np.ndarray, ...] = ()
        self._version = 0
        self._hash: tuple[np.ndarray, np.ndarray] = (np.zeros(128, dtype=np.int64), np.zeros(128, dtype=np.int32))
        self._store: tuple = ()
        self._grow(INITIAL_ROWS)

    @property
    def n_states(self) -> int:
        return self._tables[0].shape[0]

    @property
    def n_rows(self) -> int:
        return int(self.meta[lk.M_ROWS])

    @property
    def aid(self) -> np.ndarray:
        return self._rows[2]

    @property
    def child(self) -> np.ndarray:
        return self._rows[3]

    @property
    def child_low(self) -> np.ndarray:
        return self._rows[4]

    @property
    def store(self) -> tuple:
        """What the kernels read (see :mod:`structgen.automata.lr_kernels`); replaced on growth."""
        return self._store

    @property
    def version(self) -> int:
        """How many times the store grew (a store taken before is stale after)."""
        return self._version

    def reserve(self, spare: int) -> None:
        """Makes room for ``spare`` more rows (kernels must not see the arrays move)."""
        if self.n_rows + spare > self._rows[0].shape[0]:
            self._grow(max(self.n_rows + spare, 2 * self._rows[0].shape[0]))

    def _grow(self, n: int) -> None:
        used = self.n_rows
        if not self._rows:
            cols = max(1, self.end)
            self._rows = (
                np.zeros((0, lk.N_FIELDS), np.int32), np.zeros((0, self.words), np.uint64), np.zeros(0, np.int32),
                np.zeros((0, cols), np.int32), np.zeros((0, cols), np.int32),
            )  # fmt: skip
        self._rows = tuple(grown(a, n, used) for a in self._rows)
        self._version += 1
        size = self._hash[0].shape[0]
        rehash = 2 * n > size
        while 2 * n > size:
            size *= 2
        if rehash:
            self._hash = (np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int32))
        self._store = (*self._tables, *self._rows, *self._hash, self.meta, self._ignore)
        if rehash:
            lk.rehash(self._store)

    def _check(self) -> None:
        if self.meta[lk.M_ERROR]:
            raise RuntimeError("LR tables: a cycle of empty reductions (the grammar is not LALR(1) as built)")

    def root(self) -> "LRNode":
        with self.lock:
            while True:
                row = lk.push(self.store, -1, self.start)
                if row >= 0 and lk.viable(self.store, row):
                    return self.node(row)
                self._check()
                self.reserve(STEP_ROOM)

    def step(self, row: int, terminal: int, grow: bool = True) -> tuple[int, int]:
        """The row after ``terminal`` on stack ``row`` and the lowest height the step read
        (see :func:`structgen.automata.lr_kernels.scan`; without ``grow``, FULL where the
        rows ran out)."""
        with self.lock:
            while True:
                if grow:
                    self.reserve(STEP_ROOM)
                found = lk.scan(self.store, row, terminal)
                self._check()
                if found[0] != lk.FULL or not grow:
                    return found
                self.reserve(2 * self._rows[0].shape[0])

    def node(self, row: int) -> "LRNode":
        """The handle of ``row`` (one object per row)."""
        node = self._handles.get(row)
        if node is None:
            with self.lock:  # (one handle per row, read from rows that do not move meanwhile)
                node = self._handles.get(row)
                if node is None:
                    fields = self._rows[0][row].tolist()
                    if fields[lk.FLAG] != lk.DONE:
                        while not lk.viable(self.store, row):  # (out of rows, or an error _check raises)
                            self._check()
                            self.reserve(STEP_ROOM)
                        fields = self._rows[0][row].tolist()
                    node = self._handles[row] = LRNode(self, row, fields)
        return node


@lru_cache(maxsize=1)
def no_store() -> tuple:
    """A store of the kernels' types with no ``meta``: what they get for the Earley parser
    (one per process: the kernels never write it)."""
    table = LRTable([{}], [{}], [[]], [False], 0, 0, 1, 0)
    return (*table.store[:-2], np.zeros(0, dtype=np.int64), table.store[-1])


def _table_arrays(
    shifts: list[dict[int, int]], gotos: list[dict[int, int]], reduces: list[list[tuple[int, int, int]]], runs: list[bool],
    shift_bits: list[int], words: int,
) -> tuple[np.ndarray, ...]:
    """The tables as :mod:`structgen.automata.lr_kernels` reads them (action, rule,
    goto, runs, shift_words, red_ptr, red_rule, red_look)."""
    n = len(shifts)
    rules: dict[tuple[int, int], int] = {}
    red_ptr, red_rule, red_look = [0], [], []
    for row in reduces:
        for bits, lhs, length in row:
            red_rule.append(rules.setdefault((lhs, length), len(rules)))
            red_look.append(bits_to_words(bits, words))
        red_ptr.append(len(red_rule))
    action = np.full((n, 64 * words), -1, dtype=np.int32)
    for s, row in enumerate(reduces):
        for bits, lhs, length in row:
            for t in set_bits(bits):
                action[s, t] = -2 - rules[(lhs, length)]
    for s, row in enumerate(shifts):
        for t, target in row.items():
            action[s, t] = target
    n_lhs = 1 + max([lhs for lhs, _ in rules] + [k for row in gotos for k in row] + [0])
    goto = np.full((n, n_lhs), -1, dtype=np.int32)
    for s, row in enumerate(gotos):
        for lhs, target in row.items():
            goto[s, lhs] = target
    by_id = sorted(rules, key=rules.get)
    return (
        action, np.array(by_id or [(0, 0)], dtype=np.int32).reshape(-1, 2), goto, np.array(runs, dtype=np.bool_), np.array([bits_to_words(b, words) for b in shift_bits], dtype=np.uint64).reshape(n, words),
        np.array(red_ptr, dtype=np.int32), np.array(red_rule or [0], dtype=np.int32),
        np.array(red_look, dtype=np.uint64).reshape(len(red_look), words) if red_look else np.zeros((1, words), dtype=np.uint64),
    )  # fmt: skip


class LRNode:
    """One parse stack: the Python handle of a row of :class:`LRTable` (see the module
    docstring), with the steps taken from it kept."""

    __slots__ = (
        "table", "state", "height", "low", "children", "reads", "index", "scannable", "allowed", "accepting", "_below", "_tops",
    )  # fmt: skip

    def __init__(self, table: LRTable, row: int, fields: list[int]) -> None:
        """``fields``: the row's (state, row below, height, low, flag)."""
        state, below, height, low, _ = fields
        self.table = table
        self.index = row
        self.state = state
        self._below = below
        self.height = height
        self.low = low  # the lowest height its terminals were read from
        bits = int.from_bytes(table._rows[1][row].tobytes(), "little")
        self.accepting = bool(bits >> table.end & 1)
        self.scannable = bits & table.terminal_bits
        self.allowed = self.scannable | table.ignore_bits
        self.children: dict[int, LRNode | None] = {}
        self.reads: dict[int, int] = {}  # per terminal scanned: the lowest height the scan and its result read
        self._tops: tuple[int, ...] = ()  # see top_states

    @property
    def below(self) -> "LRNode | None":
        return None if self._below < 0 else self.table.node(self._below)

    def scan(self, terminal: int) -> "LRNode | None":
        """The stack after ``terminal``, or None if the grammar does not allow it here."""
        try:
            return self.children[terminal]
        except KeyError:
            pass
        if self.scannable >> terminal & 1:
            table = self.table
            row = int(table.child[self.index, terminal]) - 1  # (stepped already where a kernel asked for it)
            if row == -1:
                row, low = table.step(self.index, terminal)
            else:
                low = int(table.child_low[self.index, terminal])
            nxt = None if row < 0 else table.node(row)
        else:
            nxt, low = None, self.low
        self.children[terminal] = nxt
        self.reads[terminal] = low
        return nxt

    def top_states(self, depth: int) -> tuple[int, ...]:
        """The states of the stack's top ``depth`` entries, top first (all of them when the
        stack is shallower)."""
        if depth == 1:
            return (self.state,)
        tops = self._tops
        if len(tops) < min(depth, self.height):  # (kept as deep as asked for so far)
            rows = self.table._rows[0]
            out = []
            row = self.index
            while row >= 0 and len(out) < depth:
                state, row = rows[row, :2].tolist()
                out.append(state)
            tops = self._tops = tuple(out)
        return tops[:depth]

    def __repr__(self) -> str:
        return f"LRNode(state={self.state}, accepting={self.accepting}, scannable={bin(self.scannable)})"
