"""The grammar IR: one form for every front end (Lark, GBNF, later JSON Schema and tool formats).

A ``Grammar`` is a set of rules, each an expression tree over terminals (byte-level regular
expressions in Python ``re`` syntax), rule references, sequences, alternatives and bounded or
unbounded repetitions, plus ``ignore`` terminals that may appear between any two lexemes.
:func:`lower` turns it into plain BNF (:class:`Bnf`) for the Earley parser, lifting regular
parts into single terminals where that cannot change the language.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Union

from ..errors import GrammarError


# ---- expressions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Terminal:
    """A named terminal of ``Grammar.terminals``."""

    name: str


@dataclass(frozen=True)
class Pattern:
    """An anonymous terminal: a regular expression (Python ``re`` syntax, full-match)."""

    regex: str


@dataclass(frozen=True)
class Bytes:
    """An anonymous terminal given as byte sequences: each sequence is a tuple of inclusive
    ``(lo, hi)`` byte ranges, one per byte (front ends that build their own character
    encodings, like JSON strings, use it instead of regex text)."""

    sequences: tuple[tuple[tuple[int, int], ...], ...]


def literal(data: bytes) -> Bytes:
    """The terminal matching exactly ``data``."""
    return Bytes((tuple((b, b) for b in data),))


@dataclass(frozen=True, eq=False)
class Automaton:
    """An anonymous terminal given as a byte DFA (``transitions[state, byte]`` → next state or
    -1, ``accepting[state]``; state 0 initial), e.g. an intersection built by a front end."""

    dfa: object


@dataclass(frozen=True)
class Ref:
    """A reference to a rule."""

    name: str
    line: int = 0
    column: int = 0


@dataclass(frozen=True, eq=False)
class Seq:
    items: tuple["Expr", ...]


@dataclass(frozen=True, eq=False)
class Alt:
    options: tuple["Expr", ...]


@dataclass(frozen=True, eq=False)
class Repeat:
    """``item`` repeated min..max times; with a ``separator``, one between each two items
    (``item (separator item)*``) — an automaton then holds one copy of the item."""

    item: "Expr"
    min: int = 0
    max: int | None = None  # None: unbounded
    separator: "Expr | None" = None

    def expanded(self) -> "Expr":
        """The same language without a separator."""
        if self.separator is None:
            return self
        if self.max == 0:
            return EMPTY
        rest = Repeat(Seq((self.separator, self.item)), max(self.min - 1, 0), None if self.max is None else self.max - 1)
        body = Seq((self.item, rest))
        return body if self.min >= 1 else Repeat(body, 0, 1)


Expr = Union[Terminal, Pattern, Bytes, Automaton, Ref, Seq, Alt, Repeat]
# Compound nodes compare by identity: front ends share sub-expressions (a DAG), and the
# automaton builder reuses a shared node's states; structural hashing would be exponential.
EMPTY = Seq(())


@dataclass
class Grammar:
    """Rules (name → expression), named terminals (name → regex), the start rule, the
    ignored terminals, and where each rule and terminal was defined (line, column).
    ``keep`` names rules that stay nonterminals even when regular (a front end splitting a
    language too big for one automaton). ``warn_unreachable``: whether unreachable rules are
    worth a warning (not for a front end that builds rules it may then drop, as the JSON
    Schema compiler does for branches it finds empty)."""

    rules: dict[str, Expr]
    start: str
    terminals: dict[str, str] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    source: str = "<grammar>"
    keep: frozenset[str] = frozenset()
    warn_unreachable: bool = True

    def where(self, name: str) -> str:
        line, col = self.positions.get(name, (0, 0))
        return f"{self.source}:{line}:{col}" if line else self.source


# ---- BNF ------------------------------------------------------------------------------------
@dataclass
class Bnf:
    """Plain BNF for the Earley parser. Symbols in right-hand sides are ints: a nonterminal
    ``n >= 0``, a terminal ``t`` as ``~t`` (negative). No terminal matches the empty string."""

    nonterminals: list[str]
    productions: list[tuple[int, tuple[int, ...]]]
    terminals: list[Expr]  # closed regular expressions (no Ref/Terminal), none matching ""
    terminal_names: list[str]
    ignore: list[int]
    start: int

    @property
    def n_terminals(self) -> int:
        return len(self.terminals)


def lower(grammar: Grammar, graph: "RuleGraph | None" = None) -> Bnf:
    """Checks ``grammar`` and lowers it to BNF. Raises :class:`GrammarError` (with line and
    column) for undefined rules, rules that can never finish and an empty language; warns
    about unreachable rules. ``graph``: the grammar's :func:`rule_graph`, when already made."""
    return _Lowering(grammar, graph or rule_graph(grammar)).run()


def regular_expr(grammar: Grammar, graph: "RuleGraph | None" = None) -> Expr | None:
    """The whole language as one closed regular expression when the grammar has no ignored
    terminals and its start rule does not recurse (no parser at run time), else None."""
    lowering = _Lowering(grammar, graph or rule_graph(grammar))
    if not lowering.lift or grammar.start in lowering.recursive:
        return None
    return lowering.closed(grammar.rules[grammar.start])


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of a node (none for leaves and references)."""
    if isinstance(expr, Seq):
        return expr.items
    if isinstance(expr, Alt):
        return expr.options
    if isinstance(expr, Repeat):
        return (expr.item,) if expr.separator is None else (expr.item, expr.separator)
    return ()


def nodes(expr: Expr):
    """Every node object of an expression DAG once (shared sub-expressions are visited once)."""
    seen: set[int] = set()
    todo = [expr]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(children(e))


_NONE: frozenset[str] = frozenset()
_NOTHING: tuple[frozenset[str], frozenset[str]] = (_NONE, _NONE)


def _names_below(expr: Expr, memo: dict[int, tuple]) -> tuple[frozenset[str], frozenset[str]]:
    """The names of the rules ``expr`` refers to and of the named terminals it uses.
    ``memo`` (node id → (node kept alive, answer)) is shared by every rule of a grammar:
    front ends share sub-expressions between rules, and each is walked once."""
    todo: list[Expr] = [expr]
    while todo:
        e = todo[-1]
        if id(e) in memo:
            todo.pop()
            continue
        kind = type(e)
        if kind is Ref:
            memo[id(e)] = (e, (frozenset((e.name,)), _NONE))
            todo.pop()
            continue
        if kind is Terminal:
            memo[id(e)] = (e, (_NONE, frozenset((e.name,))))
            todo.pop()
            continue
        below = children(e)
        missing = [c for c in below if id(c) not in memo]
        if missing:
            todo.extend(missing)
            continue
        todo.pop()
        found = [f for f in (memo[id(c)][1] for c in below) if f is not _NOTHING]
        if not found:
            answer = _NOTHING
        elif len(found) == 1 or all(f is found[0] for f in found):
            answer = found[0]
        else:
            answer = (frozenset().union(*(f[0] for f in found)), frozenset().union(*(f[1] for f in found)))
        memo[id(e)] = (e, answer)
    return memo[id(expr)][1]


@dataclass
class RuleGraph:
    """Which rules and named terminals each rule uses, and which rules recurse (take part in
    a cycle or are kept, or reach one)."""

    refs: dict[str, frozenset[str]]
    terminals: dict[str, frozenset[str]]
    recursive: set[str]
    below: dict[int, tuple]  # node id → (node, (rules it refers to, named terminals)), every node of a rule


def rule_graph(grammar: Grammar) -> RuleGraph:
    """Checks ``grammar``'s references (:class:`GrammarError` for an undefined rule or
    terminal, a warning for an unreachable rule) and returns its :class:`RuleGraph`."""
    memo: dict[int, tuple] = {}
    used = {name: _names_below(expr, memo) for name, expr in grammar.rules.items()}
    graph = RuleGraph({n: u[0] for n, u in used.items()}, {n: u[1] for n, u in used.items()}, set(), memo)
    _check_references(grammar, graph)
    graph.recursive = _recursive_rules(grammar, graph)
    return graph


def _check_references(grammar: Grammar, graph: RuleGraph) -> None:
    if grammar.start not in grammar.rules:
        raise GrammarError(f"{grammar.source}: the start rule {grammar.start!r} is not defined")
    for name, expr in grammar.rules.items():
        if not graph.refs[name] <= grammar.rules.keys():
            ref = next(e for e in nodes(expr) if isinstance(e, Ref) and e.name not in grammar.rules)
            where = f"{grammar.source}:{ref.line}:{ref.column}" if ref.line else grammar.where(name)
            raise GrammarError(f"{where}: rule {ref.name!r} is used in rule {name!r} but never defined")
        for term in sorted(graph.terminals[name]):
            if term not in grammar.terminals:
                raise GrammarError(f"{grammar.where(name)}: terminal {term!r} is used in rule {name!r} but has no pattern")
    if not grammar.warn_unreachable:
        return
    reachable = {grammar.start}
    todo = [grammar.start]
    while todo:
        for target in graph.refs[todo.pop()]:
            if target not in reachable:
                reachable.add(target)
                todo.append(target)
    for name in grammar.rules:
        if name not in reachable:
            warnings.warn(f"{grammar.where(name)}: rule {name!r} is unreachable from {grammar.start!r}", GrammarWarning, stacklevel=3)


class GrammarWarning(UserWarning):
    """A grammar that compiles but has something odd about it (an unreachable rule)."""


def _recursive_rules(grammar: Grammar, rules: RuleGraph) -> set[str]:
    """Rules that take part in a cycle or are kept, or reach one (so are not turned into a
    single terminal)."""
    graph = {name: set(refs) for name, refs in rules.refs.items()}
    # Tarjan's strongly connected components, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cyclic: set[str] = set()
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    cyclic.update(component)
    # everything that reaches a cycle is not regular either
    result = set(cyclic) | set(grammar.keep)
    changed = True
    while changed:
        changed = False
        for name, targets in graph.items():
            if name not in result and targets & result:
                result.add(name)
                changed = True
    return result


class _Lowering:
    """Grammar → Bnf. Without ignored terminals, every non-recursive rule and every run of
    consecutive regular items becomes one terminal: fewer lexemes, and a grammar whose start
    rule is regular needs no parser at all (see :attr:`Bnf` users)."""

    def __init__(self, grammar: Grammar, graph: RuleGraph) -> None:
        self.g = grammar
        self.lift = not grammar.ignore
        self.recursive = graph.recursive if self.lift else set(grammar.rules)
        self.below = graph.below
        self.closed_rule: dict[str, Expr] = {}
        self.closed_node: dict[int, tuple[Expr, Expr]] = {}  # id → (node kept alive, closed)
        self.nonterminals: list[str] = []
        self.nt_index: dict[str, int] = {}
        self.productions: list[tuple[int, tuple[int, ...]]] = []
        self.terminals: list[Expr] = []
        self.terminal_names: list[str] = []
        self.term_index: dict[int, int] = {}  # shape → terminal
        self.shapes: dict[tuple, int] = {}
        self.shape_of: dict[int, tuple[Expr, int]] = {}  # id → (node kept alive, shape)
        self.helpers: dict[tuple, int] = {}
        self.recursive_below: dict[int, tuple[Expr, bool]] = {}  # id → (node kept alive, answer)

    # ---- regular parts --------------------------------------------------------------------
    def is_regular(self, expr: Expr) -> bool:
        return self.lift and not self._reaches_recursive(expr)

    def _reaches_recursive(self, expr: Expr) -> bool:
        """Whether ``expr`` refers to a recursive rule, remembered per node (the lowering
        asks for every sub-expression)."""
        known = self.below.get(id(expr))
        if known is not None:  # a node of a rule: its references are known
            return not known[1][0].isdisjoint(self.recursive)
        memo = self.recursive_below
        found = memo.get(id(expr))
        if found is not None:
            return found[1]
        todo: list[tuple[Expr, bool]] = [(expr, False)]
        while todo:
            e, expanded = todo.pop()
            if id(e) in memo:
                continue
            if isinstance(e, Ref):
                memo[id(e)] = (e, e.name in self.recursive)
                continue
            below = children(e)
            if not expanded and any(id(c) not in memo for c in below):
                todo.append((e, True))
                todo.extend((c, False) for c in below if id(c) not in memo)
                continue
            memo[id(e)] = (e, any(memo[id(c)][1] for c in below))
        return memo[id(expr)][1]

    def closed(self, expr: Expr) -> Expr:
        """``expr`` with named terminals and (non-recursive) rule references substituted;
        each rule is closed once and shared, so the automaton builder can reuse it."""
        if isinstance(expr, (Pattern, Bytes, Automaton)):
            return expr
        known = self.below.get(id(expr))
        if known is not None and known[1] is _NOTHING:  # no reference, no named terminal below
            return expr
        done = self.closed_node.get(id(expr))
        if done is not None:
            return done[1]
        result = self._close(expr)
        self.closed_node[id(expr)] = (expr, result)
        return result

    def _close(self, expr: Expr) -> Expr:
        if isinstance(expr, Terminal):
            return Pattern(self.g.terminals[expr.name])
        if isinstance(expr, Ref):
            found = self.closed_rule.get(expr.name)
            if found is None:
                found = self.closed_rule[expr.name] = self.closed(self.g.rules[expr.name])
            return found
        if isinstance(expr, Seq):
            return Seq(tuple(self.closed(i) for i in expr.items))
        if isinstance(expr, Alt):
            return Alt(tuple(self.closed(o) for o in expr.options))
        if isinstance(expr, Repeat):
            sep = None if expr.separator is None else self.closed(expr.separator)
            return Repeat(self.closed(expr.item), expr.min, expr.max, sep)
        raise TypeError(expr)

    # ---- symbols --------------------------------------------------------------------------
    def nonterminal(self, name: str) -> int:
        found = self.nt_index.get(name)
        if found is None:
            found = self.nt_index[name] = len(self.nonterminals)
            self.nonterminals.append(name)
        return found

    def terminal(self, expr: Expr, name: str) -> int:
        """The terminal of a closed expression; expressions of the same shape (front ends
        build a JSON object's ``"key": value`` runs afresh in each rule) share one."""
        shape = self.shape(expr)
        found = self.term_index.get(shape)
        if found is None:
            found = self.term_index[shape] = len(self.terminals)
            self.terminals.append(expr)
            self.terminal_names.append(name)
        return found

    def shape(self, expr: Expr) -> int:
        """A number per structure of a closed expression: equal numbers, equal languages
        (leaves compare by value, an :class:`Automaton` by its DFA object)."""
        done = self.shape_of.get(id(expr))
        if done is not None:
            return done[1]
        if isinstance(expr, Seq):
            key: tuple = (0, *(self.shape(i) for i in expr.items))
        elif isinstance(expr, Alt):
            key = (1, *(self.shape(o) for o in expr.options))
        elif isinstance(expr, Repeat):
            key = (2, self.shape(expr.item), expr.min, expr.max, None if expr.separator is None else self.shape(expr.separator))
        elif isinstance(expr, Automaton):
            key = (3, id(expr.dfa))
        else:
            key = (4, expr)
        number = self.shapes.setdefault(key, len(self.shapes))
        self.shape_of[id(expr)] = (expr, number)
        return number

    def helper(self, key: tuple, name: str, alternatives) -> int:
        found = self.helpers.get(key)
        if found is None:
            found = self.helpers[key] = self.nonterminal(f"{name}#{len(self.helpers)}")
            for rhs in alternatives(found):
                self.productions.append((found, tuple(rhs)))
        return found

    def symbols(self, expr: Expr, owner: str) -> list[int]:
        """The symbol sequence for ``expr`` inside rule ``owner``."""
        if self.is_regular(expr) and not isinstance(expr, Terminal):
            return [self.regular_symbol(self.closed(expr), owner)]
        if isinstance(expr, Terminal):
            return [self.regular_symbol(Pattern(self.g.terminals[expr.name]), expr.name)]
        if isinstance(expr, Ref):
            return [self.nonterminal(expr.name)]
        if isinstance(expr, Seq):
            out: list[int] = []
            run: list[Expr] = []
            for item in expr.items:
                if self.is_regular(item) and not isinstance(item, Terminal):
                    run.append(item)
                    continue
                if run:
                    out.append(self.regular_symbol(self.closed_run(run), owner))
                    run = []
                out.extend(self.symbols(item, owner))
            if run:
                out.append(self.regular_symbol(self.closed_run(run), owner))
            return out
        if isinstance(expr, Alt):
            key = ("alt", expr)
            return [self.helper(key, owner, lambda _: [self.symbols(o, owner) for o in expr.options])]
        if isinstance(expr, Repeat):
            return self.repeat_symbols(expr, owner)
        raise TypeError(expr)

    def repeat_symbols(self, expr: Repeat, owner: str) -> list[int]:
        if expr.separator is not None:
            return self.symbols(expr.expanded(), owner)
        body = self.symbols(expr.item, owner)
        out = body * expr.min
        if expr.max is None:
            star = self.helper(("star", expr.item), owner, lambda me: [[], [me, *body]])
            return out + [star]
        optional = None
        for _ in range(expr.max - expr.min):  # nested optionals: (x (x (x)?)?)?
            inner = [] if optional is None else [optional]
            key = ("opt", expr.item, optional)
            optional = self.helper(key, owner, lambda _, inner=inner: [[], [*body, *inner]])
        return out + ([optional] if optional is not None else [])

    def closed_run(self, run: list[Expr]) -> Expr:
        return self.closed(run[0]) if len(run) == 1 else Seq(tuple(self.closed(i) for i in run))

    def regular_symbol(self, expr: Expr, owner: str) -> int:
        """A terminal for a regular part; a part that can be empty becomes an optional
        non-empty terminal (the lexer never matches the empty string)."""
        if not nullable(expr):
            return ~self.terminal(expr, owner)
        t = self.terminal(expr, owner)
        return self.helper(("opt-terminal", t), owner, lambda _: [[], [~t]])

    # ---- the whole grammar ---------------------------------------------------------------
    def run(self) -> Bnf:
        g = self.g
        start = self.nonterminal(g.start)
        lowered: set[str] = set()
        k = 0
        while k < len(self.nonterminals):  # rules are lowered as references to them appear
            name = self.nonterminals[k]
            k += 1
            if name not in g.rules or name in lowered:
                continue
            lowered.add(name)
            expr = g.rules[name]
            options = expr.options if isinstance(expr, Alt) else (expr,)
            for option in options:
                self.productions.append((self.nt_index[name], tuple(self.symbols(option, name))))
        ignore = [self.terminal(Pattern(g.terminals[name]), name) for name in g.ignore]
        bnf = Bnf(self.nonterminals, self.productions, self.terminals, self.terminal_names, ignore, start)
        self.check_productive(bnf)
        return bnf

    def check_productive(self, bnf: Bnf) -> None:
        productive: set[int] = set()
        changed = True
        while changed:
            changed = False
            for lhs, rhs in bnf.productions:
                if lhs not in productive and all(s < 0 or s in productive for s in rhs):
                    productive.add(lhs)
                    changed = True
        if bnf.start not in productive:
            raise GrammarError(f"{self.g.where(self.g.start)}: the grammar's language is empty: rule {self.g.start!r} can never finish")
        for name in self.g.rules:
            k = self.nt_index.get(name)
            if k is not None and k not in productive:
                raise GrammarError(f"{self.g.where(name)}: rule {name!r} can never finish (every alternative recurses forever)")
        # helper nonterminals inherit their owner's name before '#'
        for k, name in enumerate(bnf.nonterminals):
            if k not in productive:
                owner = name.split("#")[0]
                raise GrammarError(f"{self.g.where(owner)}: part of rule {owner!r} can never finish")


def nullable(expr: Expr) -> bool:
    """Whether a closed regular expression matches the empty string."""
    if isinstance(expr, Pattern):
        try:
            return re.fullmatch(expr.regex, "") is not None
        except re.error:
            return False  # reported later, with the terminal's name, by the regex compiler
    if isinstance(expr, Bytes):
        return any(not seq for seq in expr.sequences)
    if isinstance(expr, Automaton):
        return bool(expr.dfa.accepting[0])
    if isinstance(expr, Seq):
        return all(nullable(i) for i in expr.items)
    if isinstance(expr, Alt):
        return any(nullable(o) for o in expr.options)
    if isinstance(expr, Repeat):
        if expr.separator is not None:
            return nullable(expr.expanded())
        return expr.min == 0 or nullable(expr.item)
    raise TypeError(expr)
