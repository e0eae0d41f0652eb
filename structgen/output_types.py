"""Output types that name their language explicitly, for :class:`structgen.Generator`
(a bare string would be ambiguous between a regex, a grammar and JSON text)::

    Generator(Regex(r"\\d{3}-\\d{4}"))   Generator(Lark(open("sql.lark").read()))
    Generator(JsonSchema({...}))        Generator(["yes", "no"])   Generator(MyPydanticModel)
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Regex:
    pattern: str


@dataclass(frozen=True)
class Lark:
    grammar: str


@dataclass(frozen=True)
class GBNF:
    grammar: str


@dataclass(frozen=True)
class JsonSchema:
    schema: Any  # a dict / bool, or JSON text


def constraint_arguments(output_type: Any) -> dict:
    """The keyword naming ``output_type``'s language for :func:`resolve_constraint`:
    ``regex=``, ``grammar=``, ``gbnf=``, ``choices=``, ``schema=`` or ``constraint=``."""
    from .constraints.base import Constraint

    if isinstance(output_type, Constraint):
        return {"constraint": output_type}
    if isinstance(output_type, Regex):
        return {"regex": output_type.pattern}
    if isinstance(output_type, Lark):
        return {"grammar": output_type.grammar}
    if isinstance(output_type, GBNF):
        return {"gbnf": output_type.grammar}
    if isinstance(output_type, JsonSchema):
        return {"schema": output_type.schema}
    if isinstance(output_type, (list, tuple)) and output_type and all(isinstance(c, str) for c in output_type):
        return {"choices": list(output_type)}
    if isinstance(output_type, str):
        raise TypeError("a bare string is ambiguous: wrap it as Regex(...), Lark(...), GBNF(...) or JsonSchema(...)")
    if isinstance(output_type, (dict, bool)) or _is_python_type(output_type):
        return {"schema": output_type}
    raise TypeError(f"unsupported output type {output_type!r}")


def _is_python_type(tp: Any) -> bool:
    return (
        isinstance(tp, type)
        or typing.get_origin(tp) is not None
        or dataclasses.is_dataclass(tp)
        or isinstance(tp, enum.EnumMeta)
    )
