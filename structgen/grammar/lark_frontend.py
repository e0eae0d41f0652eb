"""Lark grammar files → grammar IR.

lark's own loader reads the file (rules and terminals, ``?rule`` / ``_rule`` / ``!rule``,
EBNF operators ``? * + [] ~ n..m``, templates, ``%import`` from lark's library or sibling files,
``%ignore``, ``%declare``, priorities), so the language is the one lark defines; structgen takes
the BNF lark produces and the terminals' regular expressions.

Semantics: a terminal's language is every string its regular expression fully matches, and a
text is accepted if some split of it into terminals (with ignored terminals anywhere between
them) is a sentence of the grammar — as lark's Earley parser with ``lexer="dynamic_complete"``.
Priorities only pick between parses; they do not change the language.
"""

from __future__ import annotations

import os
import re

import lark
from lark.exceptions import GrammarError as LarkGrammarError
from lark.exceptions import UnexpectedInput

from ..errors import GrammarError
from .ir import Alt, Grammar, Ref, Seq, Terminal

# lark's common.ESCAPED_STRING uses a lookbehind and lazy repeats; this is the language its
# lexer accepts: a double-quoted string on one line in which a backslash escapes any character.
_KNOWN_PATTERNS = {
    r'".*?(?<!\\)(\\\\)*?"': r'"(?:[^"\\\n]|\\.)*"',
}


def _position(text: str, name: str) -> tuple[int, int]:
    """Line and column of the definition of rule or terminal ``name`` in ``text`` (0, 0 if
    it is not defined there, e.g. imported)."""
    m = re.search(rf"^[ \t]*[?!_]?{re.escape(name.lstrip('?!'))}\b[^:\n]*:", text, re.M)
    if not m:
        return 0, 0
    start = m.start() + len(m.group(0)) - len(m.group(0).lstrip())
    return text.count("\n", 0, start) + 1, start - (text.rfind("\n", 0, start) + 1) + 1


def _first_use(text: str, name: str) -> tuple[int, int]:
    for m in re.finditer(rf"(?<![\w.]){re.escape(name)}(?!\w)", text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        if not re.match(rf"[ \t]*[?!_]?{re.escape(name)}\b[^:\n]*:", text[line_start:]):
            return text.count("\n", 0, m.start()) + 1, m.start() - line_start + 1
    return 0, 0


def _load(text: str, source: str, start: str, import_paths: list[str]) -> lark.Lark:
    try:
        return lark.Lark(text, start=start, parser="earley", lexer="dynamic", import_paths=import_paths, source_path=source)
    except UnexpectedInput as exc:
        raise GrammarError(f"{source}:{exc.line}:{exc.column}: syntax error in the grammar: {exc}") from exc
    except LarkGrammarError as exc:
        message = str(exc)
        line, col = 0, 0
        m = re.search(r"'([^']+)' used but not defined", message) or re.search(r"Using an undefined (?:rule|terminal): \w+\('(\w+)'\)", message)
        if m:
            line, col = _first_use(text, m.group(1))
        where = f"{source}:{line}:{col}" if line else source
        raise GrammarError(f"{where}: {message}") from exc
    except (lark.exceptions.LarkError, ValueError, OSError) as exc:
        raise GrammarError(f"{source}: {exc}") from exc


def lark_to_ir(text: str, *, source: str = "<lark>", start: str = "start", import_paths: list[str] | None = None) -> tuple[Grammar, lark.Lark]:
    """The IR of a Lark grammar, and lark's own compiled parser for it (for parse trees)."""
    paths = list(import_paths or [])
    if os.path.isfile(source):
        paths.append(os.path.dirname(os.path.abspath(source)))
    parser = _load(text, source, start, paths)
    terminal_defs = {t.name: t for t in parser.terminals}
    rules: dict[str, list] = {}
    positions: dict[str, tuple[int, int]] = {}
    terminals: dict[str, str] = {}
    for rule in parser.rules:
        name = str(rule.origin.name)
        items = []
        for sym in rule.expansion:
            sym_name = str(sym.name)
            if sym.is_term:
                if sym_name not in terminal_defs:
                    line, col = _first_use(text, sym_name)
                    raise GrammarError(
                        f"{source}:{line}:{col}: terminal {sym_name!r} has no pattern (declared with %declare, "
                        "it can only come from a postlexer, which structgen does not support)"
                    )
                items.append(Terminal(sym_name))
            else:
                items.append(Ref(sym_name))
        rules.setdefault(name, []).append(Seq(tuple(items)) if len(items) != 1 else items[0])
        positions.setdefault(name, _position(text, name))
    for name, tdef in terminal_defs.items():
        terminals[name] = _terminal_regex(tdef, text, source)
        positions.setdefault(name, _position(text, name))
    grammar = Grammar(
        rules={name: options[0] if len(options) == 1 else Alt(tuple(options)) for name, options in rules.items()},
        start=start,
        terminals=terminals,
        ignore=tuple(parser.ignore_tokens),
        positions=positions,
        source=source,
    )
    return grammar, parser


def _terminal_regex(tdef, text: str, source: str) -> str:
    pattern = tdef.pattern
    value = pattern.value
    if pattern.type == "re" and value in _KNOWN_PATTERNS:
        regex = _KNOWN_PATTERNS[value]
        return f"(?{''.join(sorted(pattern.flags))}:{regex})" if pattern.flags else regex
    return pattern.to_regexp()
