"""Building one grammar out of several: each part's rules renamed under a prefix, so that a
front end can embed JSON Schemas, regexes and literals in a larger language (tool calls,
"free text or a tool call", an answer schema next to tool schemas)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .ir import EMPTY, Alt, Expr, Grammar, Ref, Repeat, Seq, Terminal, literal


@dataclass
class GrammarBuilder:
    """Collects rules from several grammars under distinct prefixes, then makes a
    :class:`Grammar` whose start rule is any expression over them."""

    source: str = "<composed>"
    rules: dict[str, Expr] = field(default_factory=dict)
    terminals: dict[str, str] = field(default_factory=dict)
    keep: set[str] = field(default_factory=set)
    warn_unreachable: bool = True  # (false once a part that does not warn is embedded)

    def embed(self, grammar: Grammar, prefix: str) -> Ref:
        """Adds ``grammar``'s rules renamed ``prefix + name``; returns a reference to its start.
        Grammars with ignored terminals cannot be embedded (they would apply to the whole)."""
        if grammar.ignore:
            raise ValueError(f"{grammar.source}: a grammar with %ignore terminals cannot be embedded in another")
        if any(name.startswith(prefix) for name in self.rules):
            raise ValueError(f"the prefix {prefix!r} is already in use")
        memo: dict[int, Expr] = {}
        for name, expr in grammar.rules.items():
            self.rules[prefix + name] = _renamed(expr, prefix, memo)
        for name, regex in grammar.terminals.items():
            self.terminals[prefix + name] = regex
        self.keep.update(prefix + name for name in grammar.keep)
        self.warn_unreachable &= grammar.warn_unreachable
        return Ref(prefix + grammar.start)

    def add_rule(self, name: str, expr: Expr) -> Ref:
        if name in self.rules:
            raise ValueError(f"the rule {name!r} is already defined")
        self.rules[name] = expr
        return Ref(name)

    def build(self, start: Expr) -> Grammar:
        rules = dict(self.rules)
        rules["start"] = start
        return Grammar(
            rules=rules, start="start", terminals=dict(self.terminals), source=self.source, keep=frozenset(self.keep),
            warn_unreachable=self.warn_unreachable,
        )


def text(s: str) -> Expr:
    """The exact UTF-8 bytes of ``s`` (the empty expression for "")."""
    return literal(s.encode("utf-8")) if s else EMPTY


def _renamed(expr: Expr, prefix: str, memo: dict[int, Expr]) -> Expr:
    """``expr`` with every rule and named-terminal reference prefixed; shared sub-expressions
    stay shared."""
    hit = memo.get(id(expr))
    if hit is not None:
        return hit
    if isinstance(expr, Ref):
        out: Expr = Ref(prefix + expr.name, expr.line, expr.column)
    elif isinstance(expr, Terminal):
        out = Terminal(prefix + expr.name)
    elif isinstance(expr, Seq):
        out = Seq(tuple(_renamed(e, prefix, memo) for e in expr.items)) if expr.items else expr
    elif isinstance(expr, Alt):
        out = Alt(tuple(_renamed(e, prefix, memo) for e in expr.options))
    elif isinstance(expr, Repeat):
        sep = None if expr.separator is None else _renamed(expr.separator, prefix, memo)
        out = Repeat(_renamed(expr.item, prefix, memo), expr.min, expr.max, sep)
    else:  # Pattern, Bytes, Automaton: closed leaves
        out = expr
    memo[id(expr)] = out
    return out
