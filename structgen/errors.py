"""Errors raised by structgen. Every one says what was wrong and where."""

from __future__ import annotations


class StructgenError(Exception):
    """Base class of structgen's errors."""


class RegexError(StructgenError, ValueError):
    """A regular expression that cannot be compiled or enforced exactly."""

    def __init__(self, pattern: str, message: str, position: int | None = None):
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where} in pattern {pattern!r}")
        self.pattern = pattern
        self.position = position


class CompileBudgetError(StructgenError):
    """Compilation went over its time or size budget."""


class TokenizerError(StructgenError, ValueError):
    """A tokenizer whose vocabulary cannot be read exactly."""


class GrammarError(StructgenError, ValueError):
    """A grammar that cannot be compiled; the message names the file, line and column."""


class UnsupportedSchemaError(StructgenError, ValueError):
    """A JSON Schema keyword that structgen cannot enforce exactly (or an unsatisfiable or
    malformed schema); names the keyword and the JSON pointer of the schema holding it."""

    def __init__(self, keyword: str, pointer: str, reason: str = "is not supported"):
        where = pointer or "/"
        super().__init__(f"{keyword!r} at {where!r}: {reason}")
        self.keyword = keyword
        self.pointer = pointer
        self.reason = reason
