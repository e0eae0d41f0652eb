"""OpenAI's strict mode (``"strict": true`` on a response format or a function): the schema
must lie in the subset OpenAI accepts, else the request is refused naming the JSON pointer.

The subset (OpenAI's "Supported schemas"): the root is an object (not ``anyOf``); every
object sets ``additionalProperties: false`` and lists every property in ``required``
(optional fields are written as a union with ``null``); keywords are limited to the types,
``enum``, ``const``, ``anyOf``, ``$ref`` / ``$defs`` (recursion allowed), string ``pattern``,
``format`` and lengths, number bounds and ``multipleOf``, array ``items`` / ``minItems`` /
``maxItems``; at most 10 levels of nesting, 5000 properties and 1000 enum values in all.
"""

from __future__ import annotations

from typing import Any

from ..errors import UnsupportedSchemaError

ALLOWED = {
    "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "$ref", "$defs",
    "definitions", "pattern", "format", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minItems", "maxItems", "title", "description", "default", "examples", "$schema", "$id", "$comment",
}
MAX_DEPTH = 10
MAX_PROPERTIES = 5000
MAX_ENUM_VALUES = 1000


def check_strict_schema(schema: Any) -> None:
    """Raises :class:`UnsupportedSchemaError` where ``schema`` leaves OpenAI's strict subset."""
    if not isinstance(schema, dict) or schema.get("type") != "object" or "anyOf" in schema:
        raise UnsupportedSchemaError("type", "", "in strict mode the root schema must be an object (type 'object', not anyOf)")
    counts = {"properties": 0, "enum": 0}
    _check(schema, "", 0, counts)
    for key in ("$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            _check(sub, f"/{key}/{_escape(name)}", 0, counts)


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _check(s: Any, pointer: str, depth: int, counts: dict) -> None:
    if not isinstance(s, dict):
        raise UnsupportedSchemaError("schema", pointer, "in strict mode every schema must be an object")
    if depth > MAX_DEPTH:
        raise UnsupportedSchemaError("properties", pointer, f"strict mode allows at most {MAX_DEPTH} levels of nesting")
    for key in s:
        if key not in ALLOWED:
            raise UnsupportedSchemaError(key, pointer, "is not supported in strict mode (send strict: false to use it)")
    types = s.get("type")
    types = set(types) if isinstance(types, list) else {types}
    if "object" in types or "properties" in s:
        if s.get("additionalProperties", True) is not False:
            raise UnsupportedSchemaError("additionalProperties", pointer, "strict mode requires additionalProperties: false on every object")
        properties = s.get("properties") or {}
        missing = [p for p in properties if p not in (s.get("required") or [])]
        if missing:
            raise UnsupportedSchemaError("required", pointer, f"strict mode requires every property to be required (missing: {', '.join(missing)})")
        counts["properties"] += len(properties)
        if counts["properties"] > MAX_PROPERTIES:
            raise UnsupportedSchemaError("properties", pointer, f"strict mode allows at most {MAX_PROPERTIES} properties in all")
        for name, sub in properties.items():
            _check(sub, f"{pointer}/properties/{_escape(name)}", depth + 1, counts)
    if "enum" in s:
        counts["enum"] += len(s["enum"]) if isinstance(s["enum"], list) else 0
        if counts["enum"] > MAX_ENUM_VALUES:
            raise UnsupportedSchemaError("enum", pointer, f"strict mode allows at most {MAX_ENUM_VALUES} enum values in all")
    if "items" in s:
        _check(s["items"], f"{pointer}/items", depth + 1, counts)
    for i, sub in enumerate(s.get("anyOf") or []):
        _check(sub, f"{pointer}/anyOf/{i}", depth, counts)
