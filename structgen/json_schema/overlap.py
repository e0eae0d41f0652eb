"""Whether two JSON Schemas can share an instance: the checks that let ``oneOf`` compile exactly.

Every check is sound: :func:`disjoint` answers True only when no JSON value satisfies both
schemas, and "cannot tell" is False. Schemas here are flattened dicts (``$ref`` and ``allOf``
merged, see :mod:`.merge`); sub-schemas are flattened on demand through ``flat``, which
returns None when a sub-schema cannot be flattened.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ..automata.byte_dfa import ByteDFA, product
from ..automata.expr_nfa import expr_to_nfa
from ..grammar.ir import Alt
from .merge import ANNOTATIONS, TYPES, is_type, json_equal
from .strings import encode_text, pattern_expr

Flat = Callable[[Any], "dict | None"]

ALL_TYPES = frozenset(TYPES) | {"integer"}
# keywords of an object schema whose instances include {} whenever nothing is required
_PLAIN_OBJECT_KEYS = {"type", "properties", "additionalProperties", "required", "minProperties", "maxProperties", "x-normalized"}
_MAX_DEPTH = 4


def types_of(s: dict) -> frozenset[str]:
    """The JSON types an instance of ``s`` may have (``integer`` listed with ``number``)."""
    if "enum" in s:
        return frozenset(t for v in s["enum"] for t in ALL_TYPES if is_type(v, t))
    if "type" in s:
        types = set(s["type"])
        if "number" in types:
            types.add("integer")
        if "integer" in types:
            types.add("number")  # an integer is a number: the two always share instances
        return frozenset(types)
    return ALL_TYPES


def disjoint(a: dict, b: dict, flat: Flat, depth: int = 0) -> bool:
    """True when no JSON value satisfies both ``a`` and ``b``."""
    shared = types_of(a) & types_of(b)
    if not shared:
        return True
    if "enum" in a and "enum" in b:
        return not any(json_equal(x, y) for x in a["enum"] for y in b["enum"])
    if depth >= _MAX_DEPTH:
        return False
    if shared <= {"object"} and (_property_disjoint(a, b, flat, depth) or _property_disjoint(b, a, flat, depth)):
        return True
    return shared <= {"string"} and _strings_disjoint(a, b)


def forbids(s: dict, name: str, flat: Flat) -> bool:
    """True when an object instance of ``s`` cannot have the property ``name``."""
    props = s.get("properties") or {}
    if name in props:
        sub = props[name]
        if sub is False:
            return True
        f = flat(sub)
        return f is not None and not types_of(f)
    if s.get("patternProperties"):
        return False  # a pattern might match the name
    return s.get("additionalProperties", True) is False


def empty_object_only(a: dict, b: dict) -> bool:
    """True when ``a`` and ``b`` can share no instance but ``{}``, and both accept ``{}``:
    object-only schemas, no property allowed by both, nothing required."""
    if not (types_of(a) & types_of(b)) <= {"object"}:
        return False
    for s in (a, b):
        if set(s) - _PLAIN_OBJECT_KEYS - ANNOTATIONS:
            return False
        if s.get("additionalProperties", True) is not False or s.get("required") or (s.get("minProperties") or 0) > 0:
            return False
    names_a = {n for n, sub in (a.get("properties") or {}).items() if sub is not False}
    names_b = {n for n, sub in (b.get("properties") or {}).items() if sub is not False}
    return not (names_a & names_b)


def _property_disjoint(x: dict, y: dict, flat: Flat, depth: int) -> bool:
    """A property ``x`` requires that ``y`` forbids, or whose values the two keep apart."""
    x_props, y_props = x.get("properties") or {}, y.get("properties") or {}
    for name in x.get("required") or []:
        if forbids(y, name, flat):
            return True
        if name in x_props and name in y_props:
            fx, fy = flat(x_props[name]), flat(y_props[name])
            if fx is not None and fy is not None and disjoint(fx, fy, flat, depth + 1):
                return True
    return False


def _strings_disjoint(a: dict, b: dict) -> bool:
    la, lb = _string_language(a), _string_language(b)
    if la is None or lb is None:
        return False
    try:
        return product(la, lb) is None
    except Exception:  # a budget error: cannot tell
        return False


def _string_language(s: dict) -> ByteDFA | None:
    """Every encoding of the strings ``s`` allows by ``enum`` or its patterns, or None when
    neither constrains them."""
    if "enum" in s:
        words = tuple(v for v in s["enum"] if isinstance(v, str))
        return _enum_language(words) if words else None
    patterns = tuple(p for p in [s.get("pattern"), *(s.get("x-patterns") or [])] if isinstance(p, str))
    return _patterns_language(patterns) if patterns else None


@lru_cache(maxsize=1024)
def _enum_language(words: tuple[str, ...]) -> ByteDFA | None:
    """(Cached: ``oneOf`` checks compare every pair of branches, each language many times.)"""
    try:
        encoded = [encode_text(w) for w in words]
        return ByteDFA.from_nfa(expr_to_nfa(Alt(tuple(encoded)) if len(encoded) > 1 else encoded[0]))
    except Exception:  # noqa: BLE001 - a budget error: cannot tell
        return None


@lru_cache(maxsize=1024)
def _patterns_language(patterns: tuple[str, ...]) -> ByteDFA | None:
    try:
        language = None
        for p in patterns:
            dfa = ByteDFA.from_nfa(expr_to_nfa(pattern_expr(p)))
            if dfa is None:
                return None  # no string matches: cannot tell more cheaply than "unknown"
            language = dfa if language is None else product(language, dfa)
            if language is None:
                return None
        return language
    except Exception:  # noqa: BLE001 - a PatternError, a budget error: cannot tell
        return None
