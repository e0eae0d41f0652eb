"""Regular expressions to byte-level NFAs (parsed by interegular), with Python ``re`` full-match
semantics and clear errors for what a finite automaton cannot enforce.

Semantics: the whole output must match (as ``re.fullmatch``); a leading ``^``/``\\A`` and a
trailing ``$``/``\\Z`` are accepted and redundant. ``\\d``, ``\\w`` and ``\\s`` are ASCII
classes (as with ``re.ASCII``), which is what JSON Schema's ECMA-262 patterns mean too.
"""

from __future__ import annotations

import re

import interegular

from ..errors import RegexError
from .nfa import ByteNFA, UnsupportedRegexNode, nfa_from_pattern


_LOOKAROUND = {"(?=": "lookahead", "(?!": "negative lookahead", "(?<=": "lookbehind", "(?<!": "negative lookbehind"}


def strip_anchors(pattern: str) -> str:
    """Removes a leading ``^``/``\\A`` and a trailing ``$``/``\\Z``/``\\z``; rejects other
    constructs that a DFA cannot enforce, naming the construct and its position."""
    body = pattern
    offset = 0
    if body.startswith("^"):
        body, offset = body[1:], 1
    elif body.startswith("\\A"):
        body, offset = body[2:], 2
    for suffix in ("\\Z", "\\z", "$"):
        if body.endswith(suffix) and not is_escaped(body, len(body) - len(suffix)):
            if suffix == "$" or not is_escaped(body, len(body) - 2):
                body = body[: -len(suffix)]
                break
    _check_constructs(pattern, body, offset)
    return _unicode_escapes_to_literals(body)


_META = set("\\.^$*+?{}[]|()-/")


def _unicode_escapes_to_literals(body: str) -> str:
    """Rewrites ``\\uXXXX`` and ``\\UXXXXXXXX`` (which interegular lacks) as literal characters."""
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            kind = body[i + 1]
            width = {"u": 4, "U": 8}.get(kind)
            digits = body[i + 2 : i + 2 + width] if width else ""
            if width and len(digits) == width and all(d in "0123456789abcdefABCDEF" for d in digits):
                ch = chr(int(digits, 16))
                out.append("\\" + ch if ch in _META else ch)
                i += 2 + width
                continue
            out.append(body[i : i + 2])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def class_members_start(body: str, i: int) -> int:
    """Where the members of the character class opened at ``body[i]`` begin that a "]"
    closes: past a "^", and past a "]" right after "[" or "[^" (a literal there)."""
    j = i + 1
    if body[j : j + 1] == "^":
        j += 1
    if body[j : j + 1] == "]":
        j += 1
    return j


def is_escaped(text: str, index: int) -> bool:
    backslashes = 0
    i = index - 1
    while i >= 0 and text[i] == "\\":
        backslashes += 1
        i -= 1
    return backslashes % 2 == 1


def _check_constructs(pattern: str, body: str, offset: int) -> None:
    in_class = False
    i = 0
    while i < len(body):
        c = body[i]
        pos = i + offset
        if c == "\\":
            nxt = body[i + 1 : i + 2]
            if not in_class:
                if nxt.isdigit() and nxt != "0":
                    raise RegexError(pattern, f"backreference \\{nxt} cannot be enforced by a finite automaton", pos)
                if nxt in ("b", "B"):
                    raise RegexError(pattern, f"word boundary \\{nxt} is not supported", pos)
                if nxt in ("A", "Z", "z"):
                    raise RegexError(pattern, f"anchor \\{nxt} is only supported at the pattern's start/end", pos)
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            i += 1
            continue
        if c == "[":
            in_class = True
            i = class_members_start(body, i)
            continue
        if c == "(":
            for opener, name in _LOOKAROUND.items():
                if body.startswith(opener, i):
                    raise RegexError(pattern, f"{name} {opener}...) is not supported", pos)
            if body.startswith("(?P=", i):
                raise RegexError(pattern, "backreference (?P=...) cannot be enforced by a finite automaton", pos)
            if body.startswith("(?(", i):
                raise RegexError(pattern, "conditional group (?(...) is not supported", pos)
        if c in "^$":
            raise RegexError(pattern, f"anchor {c!r} is only supported at the pattern's start/end", pos)
        i += 1


def regex_to_nfa(pattern: str) -> ByteNFA:
    """Parses ``pattern`` with interegular and builds its byte-level NFA."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise RegexError(pattern, f"syntax error: {exc.msg}", exc.pos) from exc
    body = strip_anchors(pattern)
    try:
        parsed = interegular.parse_pattern(body)
    except Exception as exc:  # interegular raises several kinds; all mean "cannot compile"
        raise RegexError(pattern, f"cannot compile: {exc}") from exc
    try:
        return nfa_from_pattern(parsed)
    except UnsupportedRegexNode as exc:
        raise RegexError(pattern, str(exc)) from exc
