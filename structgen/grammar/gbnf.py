"""GBNF (llama.cpp's grammar format) → grammar IR.

Rules ``name ::= alternatives`` (names of letters, digits and ``-``), the start rule ``root``;
literals ``"..."`` and character classes ``[...]`` / ``[^...]`` with llama.cpp's escapes
(``\\n \\r \\t \\\\ \\" \\[ \\] \\xHH \\uHHHH \\UHHHHHHHH``), ``.`` (any character), groups,
``* + ?`` and ``{m}``, ``{m,}``, ``{m,n}``, ``{,n}``; ``#`` comments. As in llama.cpp, a rule's
body may continue on the next line only after ``::=``, after ``|`` or inside parentheses.
Matching is over characters (UTF-8 encoded), with no implicit whitespace.
"""

from __future__ import annotations

from ..errors import GrammarError
from .ir import Alt, Expr, Grammar, Pattern, Ref, Repeat, Seq

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-", "/": "/", "'": "'"}
_HEX = {"x": 2, "u": 4, "U": 8}


def _is_name_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "-" or c == "_")


def _literal_char(c: str) -> str:
    """A code point written safely in a Python regex, outside a class."""
    if c in "\\.^$*+?{}[]|()":
        return "\\" + c
    return c if c.isprintable() else f"\\U{ord(c):08x}"


def _class_char(c: str) -> str:
    """A code point written safely inside a Python regex character class."""
    return "\\" + c if c in "\\]^-[" else c if c.isprintable() and c != " " else f"\\U{ord(c):08x}"


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.pos = 0

    # ---- positions and errors -------------------------------------------------------------
    def line_col(self, pos: int | None = None) -> tuple[int, int]:
        pos = self.pos if pos is None else pos
        line = self.text.count("\n", 0, pos) + 1
        return line, pos - (self.text.rfind("\n", 0, pos) + 1) + 1

    def error(self, message: str, pos: int | None = None) -> GrammarError:
        line, col = self.line_col(pos)
        return GrammarError(f"{self.source}:{line}:{col}: {message}")

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def skip_space(self, newlines: bool) -> None:
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c == "#":
                while self.pos < len(text) and text[self.pos] not in "\r\n":
                    self.pos += 1
            elif c in " \t" or (newlines and c in "\r\n"):
                self.pos += 1
            else:
                return

    # ---- grammar ------------------------------------------------------------------------
    def parse(self) -> Grammar:
        rules: dict[str, Expr] = {}
        positions: dict[str, tuple[int, int]] = {}
        self.skip_space(True)
        while self.pos < len(self.text):
            start = self.pos
            name = self.name()
            self.skip_space(False)
            if self.peek(3) != "::=":
                raise self.error(f"expected '::=' after rule name {name!r}")
            self.pos += 3
            self.skip_space(True)
            body = self.alternatives(nested=False)
            if name in rules:
                raise self.error(f"rule {name!r} is defined twice", start)
            rules[name] = body
            positions[name] = self.line_col(start)
            self.skip_space(False)
            if self.pos < len(self.text) and self.text[self.pos] not in "\r\n":
                raise self.error(f"unexpected {self.text[self.pos]!r} in rule {name!r}")
            self.skip_space(True)
        if not rules:
            raise GrammarError(f"{self.source}: the grammar defines no rules")
        if "root" not in rules:
            raise GrammarError(f"{self.source}: the grammar has no 'root' rule")
        return Grammar(rules=rules, start="root", positions=positions, source=self.source)

    def name(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and _is_name_char(self.text[self.pos]):
            self.pos += 1
        if self.pos == start:
            raise self.error(f"expected a rule name, found {self.peek()!r}")
        return self.text[start : self.pos]

    def alternatives(self, nested: bool) -> Expr:
        options = [self.sequence(nested)]
        while self.peek() == "|":
            self.pos += 1
            self.skip_space(True)
            options.append(self.sequence(nested))
        return options[0] if len(options) == 1 else Alt(tuple(options))

    def sequence(self, nested: bool) -> Expr:
        items: list[Expr] = []
        while self.pos < len(self.text):
            c = self.text[self.pos]
            start = self.pos
            if c == '"':
                self.pos += 1
                item: Expr = Pattern(self.literal())
            elif c == "[":
                self.pos += 1
                item = Pattern(self.char_class())
            elif c == ".":
                self.pos += 1
                item = Pattern("(?s:.)")
            elif c == "(":
                self.pos += 1
                self.skip_space(True)
                item = self.alternatives(nested=True)
                if self.peek() != ")":
                    raise self.error("expected ')'", start)
                self.pos += 1
            elif _is_name_char(c):
                line, col = self.line_col()
                item = Ref(self.name(), line, col)
            elif c == "<" or c == "!":
                raise self.error("token references (<...>, !<...>) are not supported")
            else:
                break
            self.skip_space(nested)
            item = self.repetition(item)
            items.append(item)
            self.skip_space(nested)
        return items[0] if len(items) == 1 else Seq(tuple(items))

    def repetition(self, item: Expr) -> Expr:
        while True:
            c = self.peek()
            if c == "*":
                item = Repeat(item, 0, None)
            elif c == "+":
                item = Repeat(item, 1, None)
            elif c == "?":
                item = Repeat(item, 0, 1)
            elif c == "{":
                start = self.pos
                close = self.text.find("}", self.pos)
                if close < 0:
                    raise self.error("unclosed '{'", start)
                spec = self.text[self.pos + 1 : close].replace(" ", "")
                try:
                    if "," not in spec:
                        lo = hi = int(spec)
                    else:
                        a, b = spec.split(",", 1)
                        lo = int(a) if a else 0
                        hi = int(b) if b else None
                except ValueError:
                    raise self.error(f"bad repetition {{{spec}}}", start) from None
                if hi is not None and hi < lo:
                    raise self.error(f"bad repetition {{{spec}}}: max below min", start)
                item = Repeat(item, lo, hi)
                self.pos = close
            else:
                return item
            self.pos += 1
            self.skip_space(False)

    # ---- terminals ----------------------------------------------------------------------
    def char(self, closing: str) -> str:
        """One (possibly escaped) character of a literal or class."""
        text = self.text
        if self.pos >= len(text):
            raise self.error("unterminated string" if closing == '"' else "unterminated character class")
        c = text[self.pos]
        if c in "\r\n" and closing == '"':
            raise self.error("newline inside a string literal")
        if c != "\\":
            self.pos += 1
            return c
        e = text[self.pos + 1 : self.pos + 2]
        if e in _HEX:
            digits = text[self.pos + 2 : self.pos + 2 + _HEX[e]]
            if len(digits) != _HEX[e] or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise self.error(f"bad escape \\{e}{digits}")
            self.pos += 2 + _HEX[e]
            return chr(int(digits, 16))
        if e in _ESCAPES:
            self.pos += 2
            return _ESCAPES[e]
        raise self.error(f"unknown escape \\{e}")

    def literal(self) -> str:
        chars = []
        while self.peek() != '"':
            chars.append(self.char('"'))
        self.pos += 1
        if not chars:
            return ""
        return "".join(_literal_char(c) for c in chars)

    def char_class(self) -> str:
        start = self.pos - 1
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        parts = []
        while self.peek() != "]":
            if self.pos >= len(self.text):
                raise self.error("unterminated character class", start)
            lo = self.char("]")
            if self.peek() == "-" and self.peek(2) != "-]" and self.text[self.pos + 1 : self.pos + 2] != "]":
                self.pos += 1
                hi = self.char("]")
                if ord(hi) < ord(lo):
                    raise self.error(f"bad range {lo!r}-{hi!r} in character class", start)
                parts.append(f"{_class_char(lo)}-{_class_char(hi)}")
            else:
                parts.append(_class_char(lo))
        self.pos += 1
        if not parts:
            return "(?s:.)" if negated else "[^\\x00-\\U0010ffff]"  # [^] is any char; [] matches nothing
        return f"[{'^' if negated else ''}{''.join(parts)}]"


def parse_gbnf(text: str, source: str = "<gbnf>") -> Grammar:
    """Parses GBNF text into the grammar IR (start rule ``root``)."""
    return _Parser(text, source).parse()
