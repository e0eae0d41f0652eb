"""Reading a JSON text that is still being written: the value its complete parts describe.

``parse_partial_json('{"name": "Ad')`` is ``{"name": "Ad"}``: open strings, arrays and objects
are closed where the text stops; a key without its value yet, a ``-`` or a half-written
``true`` are left out. As the text grows each partial value extends the previous one
(strings grow, lists and objects gain entries) and the complete text gives ``json.loads``'s
value.
"""

from __future__ import annotations

import json
import re
from typing import Any

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NUMBER_CHARS = re.compile(r"[-+0-9.eE]*")
_LITERALS = {"true": True, "false": False, "null": None}


class _End(Exception):
    """The text stopped inside a value that has nothing to show yet."""


def parse_partial_json(text: str) -> Any:
    """The value of a (possibly incomplete) JSON text; None when nothing is complete yet.
    Raises ValueError when the text is not the beginning of a JSON text."""
    parser = _Parser(text)
    try:
        value = parser.value()
    except _End:
        return None
    parser.space()
    if not parser.cut and parser.i < len(text):
        raise ValueError(f"extra data at position {parser.i}")
    return value


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.cut = False  # the text stopped inside the value being read

    def space(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t\n\r":
            self.i += 1

    def at_end(self) -> bool:
        self.space()
        return self.i >= len(self.s)

    def value(self) -> Any:
        if self.at_end():
            raise _End
        c = self.s[self.i]
        if c == "{":
            return self.object()
        if c == "[":
            return self.array()
        if c == '"':
            return self.string()
        if c in "-0123456789":
            return self.number()
        for word, v in _LITERALS.items():
            if self.s.startswith(word, self.i):
                self.i += len(word)
                return v
            if word.startswith(self.s[self.i :]):
                raise _End
        raise ValueError(f"unexpected {c!r} at position {self.i}")

    def number(self) -> Any:
        m = _NUMBER_CHARS.match(self.s, self.i)
        if m.end() < len(self.s):  # followed by something: complete
            if not _NUMBER.fullmatch(m.group()):
                raise ValueError(f"malformed number {m.group()!r} at position {self.i}")
            self.i = m.end()
            return json.loads(m.group())
        # the text stops inside the number: show the longest part that reads as one
        readable = _NUMBER.match(m.group())
        if readable is None:
            raise _End
        self.i = len(self.s)
        self.cut = True
        return json.loads(readable.group())

    def string(self) -> str:
        j = self.i + 1
        out = []
        while j < len(self.s):
            c = self.s[j]
            if c == '"':
                self.i = j + 1
                return "".join(out)
            if c == "\\":
                esc = self.s[j : j + 6] if self.s[j + 1 : j + 2] == "u" else self.s[j : j + 2]
                if len(esc) < 2 or (esc[1] == "u" and len(esc) < 6):
                    break  # an escape cut in the middle
                if esc[1] == "u" and 0xD800 <= int(esc[2:], 16) <= 0xDBFF and self.s[j + 6 : j + 8] in ("\\u", "\\", ""):
                    if len(self.s) < j + 12:
                        break  # a surrogate pair cut in the middle
                    esc = self.s[j : j + 12]
                out.append(json.loads(f'"{esc}"'))
                j += len(esc)
                continue
            out.append(c)
            j += 1
        self.i = len(self.s)
        self.cut = True
        return "".join(out)

    def array(self) -> list:
        self.i += 1
        items: list = []
        while True:
            if self.at_end():
                self.cut = True
                return items
            if self.s[self.i] == "]":
                self.i += 1
                return items
            if items:
                self.expect(",")
            try:
                items.append(self.value())
            except _End:
                self.cut = True
                return items
            if self.cut:
                return items

    def object(self) -> dict:
        self.i += 1
        out: dict = {}
        while True:
            if self.at_end():
                self.cut = True
                return out
            if self.s[self.i] == "}":
                self.i += 1
                return out
            if out or self.s[self.i] == ",":
                self.expect(",")
                if self.at_end():
                    self.cut = True
                    return out
            if self.s[self.i] != '"':
                raise ValueError(f"expected a key at position {self.i}")
            key = self.string()
            if self.cut or self.at_end():
                self.cut = True
                return out  # a key without its value
            self.expect(":")
            try:
                value = self.value()
            except _End:
                self.cut = True
                return out
            out[key] = value
            if self.cut:
                return out

    def expect(self, c: str) -> None:
        self.space()
        if self.i >= len(self.s):
            raise _End
        if self.s[self.i] != c:
            raise ValueError(f"expected {c!r} at position {self.i}")
        self.i += 1

