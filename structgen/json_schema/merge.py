"""Schema normalisation and ``allOf`` merging, at the level of schema dicts.

``normalize`` rewrites draft-specific forms to one vocabulary (2020-12 names, numeric
``exclusiveMinimum``, ``prefixItems``, ``dependentRequired`` / ``dependentSchemas``,
``nullable``). ``merge`` combines two normalised schemas into one that accepts exactly the
instances both accept, or raises :class:`UnsupportedSchemaError` when it cannot say so.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from fractions import Fraction

from ..errors import UnsupportedSchemaError

TYPES = ("null", "boolean", "object", "array", "string", "number", "integer")
ANNOTATIONS = {
    "title", "description", "default", "examples", "example", "$comment", "deprecated", "readOnly", "writeOnly",
    "$schema", "$id", "id", "$anchor", "$defs", "definitions", "$vocabulary", "contentEncoding", "contentMediaType",
    "contentSchema", "$dynamicAnchor", "$recursiveAnchor", "discriminator", "xml", "externalDocs", "markdownDescription",
}
ENFORCED = {
    "type", "enum", "const", "nullable", "properties", "required", "additionalProperties", "patternProperties",
    "propertyNames", "minProperties", "maxProperties", "dependentRequired", "dependentSchemas", "dependencies",
    "items", "prefixItems", "additionalItems", "minItems", "maxItems", "contains", "minContains", "maxContains",
    "uniqueItems", "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref",
}
# validation keywords of the specification that are not enforced (an error unless lenient)
NOT_ENFORCED = {"unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef"}
# what the compiler itself writes into schemas it rewrites
INTERNAL = {"x-normalized", "x-not-values", "x-patterns"}
# every keyword with a meaning for validation: any other is an annotation (``x-...`` vendor
# extensions, generators' hints), ignored like ``title``
VALIDATION = ENFORCED | NOT_ENFORCED | INTERNAL
_LOWER = {"minimum", "minLength", "minItems", "minProperties", "minContains", "exclusiveMinimum"}
_UPPER = {"maximum", "maxLength", "maxItems", "maxProperties", "maxContains", "exclusiveMaximum"}


def json_equal(a, b) -> bool:
    """JSON value equality (1 == 1.0, but True != 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def is_type(v, t: str) -> bool:
    """Whether the JSON value ``v`` (as Python data) is of the JSON Schema type ``t``."""
    if t == "null":
        return v is None
    if t == "boolean":
        return isinstance(v, bool)
    if t == "string":
        return isinstance(v, str)
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool) or (isinstance(v, float) and v.is_integer())
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "object":
        return isinstance(v, dict)
    if t == "array":
        return isinstance(v, list)
    return False


def normalize(schema: dict, draft: int, pointer: str) -> dict:
    if schema.get("x-normalized"):
        return dict(schema)
    s = dict(schema)
    s["x-normalized"] = True
    if draft == 4:
        for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            if isinstance(s.get(flag), bool):
                if s.pop(flag) and bound in s:
                    s[flag] = s.pop(bound)
    if draft < 2020 and isinstance(s.get("items"), list):
        s["prefixItems"] = s.pop("items")
        if "additionalItems" in s:
            s["items"] = s.pop("additionalItems")
    elif "additionalItems" in s:
        s.pop("additionalItems")  # ignored unless items is an array
    if draft < 2020 and "prefixItems" in schema and not isinstance(schema.get("items"), list):
        s.pop("prefixItems")  # not a keyword before 2020-12
    deps = s.pop("dependencies", None)
    if isinstance(deps, dict):
        for name, value in deps.items():
            target = "dependentRequired" if isinstance(value, list) else "dependentSchemas"
            s.setdefault(target, {})
            s[target] = {**s[target], name: value}
    if "const" in s:
        const = s.pop("const")
        s["enum"] = [v for v in s.get("enum", [const]) if json_equal(v, const)]
    if s.pop("nullable", False) is True:
        if "type" in s:
            types = s["type"] if isinstance(s["type"], list) else [s["type"]]
            s["type"] = [*types, "null"]
        if "enum" in s:
            s["enum"] = [*s["enum"], None]
    if isinstance(s.get("type"), str):
        s["type"] = [s["type"]]
    for key in ("type",):
        if key in s and any(t not in TYPES for t in s[key]):
            raise UnsupportedSchemaError("type", pointer, f"unknown type in {s[key]!r}")
    return s


def merge(a: dict, b: dict, pointer: str) -> dict:
    """A schema accepting exactly what both ``a`` and ``b`` accept (both normalised)."""
    a_ap = _extra_schema(a)
    b_ap = _extra_schema(b)
    out = dict(a)
    for key, v in b.items():
        if key not in out:
            out[key] = v
            continue
        u = out[key]
        if key in ANNOTATIONS or key not in VALIDATION:
            continue
        if key == "type":
            out[key] = _intersect_types(u, v)
        elif key in ("properties", "patternProperties", "dependentSchemas"):
            merged = dict(u)
            for name, sub in v.items():
                merged[name] = {"allOf": [merged[name], sub]} if name in merged else sub
            out[key] = merged
        elif key == "required":
            out[key] = list(dict.fromkeys([*u, *v]))
        elif key == "dependentRequired":
            merged = dict(u)
            for name, names in v.items():
                merged[name] = list(dict.fromkeys([*merged.get(name, []), *names]))
            out[key] = merged
        elif key in _LOWER:
            out[key] = max(u, v)
        elif key in _UPPER:
            out[key] = min(u, v)
        elif key == "enum":
            out[key] = [x for x in u if any(json_equal(x, y) for y in v)]
        elif key in ("items", "prefixItems"):
            continue  # merged position by position below
        elif key in ("additionalProperties", "propertyNames", "contains", "not"):
            if key == "contains" and not json_equal(u, v):
                raise UnsupportedSchemaError("allOf", pointer, "two different 'contains' schemas")
            if key == "not":
                out[key] = {"anyOf": [u, v]}
            else:
                out[key] = u if json_equal(u, v) else {"allOf": [u, v]}
        elif key == "anyOf":
            out[key] = [{"allOf": [x, y]} for x in u for y in v]
            if len(out[key]) > 64:
                raise UnsupportedSchemaError("allOf", pointer, "too many anyOf combinations")
        elif key == "multipleOf":
            out[key] = _lcm(u, v, pointer)
        elif key == "x-not-values":
            out[key] = [*u, *v]
        elif key == "uniqueItems":
            out[key] = bool(u) or bool(v)
        elif key == "pattern":
            out[key] = u if u == v else None
            out.setdefault("x-patterns", [])
            out["x-patterns"] = [*out["x-patterns"], *([] if u == v else [u, v])]
            if out[key] is None:
                del out[key]
        elif not json_equal(u, v):
            raise UnsupportedSchemaError(key, pointer, "cannot merge two different values under allOf")
    # array positions: each side's schema for position i is its prefix item or its items
    if any(k in x for x in (a, b) for k in ("items", "prefixItems")):
        pa, pb = a.get("prefixItems") or [], b.get("prefixItems") or []
        ia, ib = a.get("items", True), b.get("items", True)
        n = max(len(pa), len(pb))
        prefix = [_both(pa[i] if i < len(pa) else ia, pb[i] if i < len(pb) else ib) for i in range(n)]
        out.pop("prefixItems", None)
        out.pop("items", None)
        if prefix:
            out["prefixItems"] = prefix
        rest = _both(ia, ib)
        if rest is not True:
            out["items"] = rest
    # additionalProperties of one side applies to the other side's undeclared properties
    for side, other_ap, other in ((b, a_ap, a), (a, b_ap, b)):
        if other_ap is None:
            continue
        if side.get("patternProperties"):
            raise UnsupportedSchemaError("allOf", pointer, "additionalProperties combined with another schema's patternProperties")
        props = dict(out.get("properties", {}))
        for name in list(side.get("properties", {})) + list(side.get("required", [])):
            if name in other.get("properties", {}) or _matches_any(name, other.get("patternProperties", {})):
                continue
            props[name] = _both(props.get(name, True), other_ap)
        if props:
            out["properties"] = props
    if "x-patterns" in out and not out["x-patterns"]:
        del out["x-patterns"]
    return out


def _both(x, y):
    if x is True:
        return y
    if y is True:
        return x
    return {"allOf": [x, y]}


def _extra_schema(s: dict):
    """The schema undeclared properties must satisfy, or None when unconstrained."""
    ap = s.get("additionalProperties", True)
    return None if ap is True or ap == {} else ap


def _matches_any(name: str, patterns: dict) -> bool:
    return any(re.search(p, name) for p in patterns)


def _intersect_types(u: list, v: list) -> list:
    out = []
    for t in u:
        if t in v:
            out.append(t)
        elif t == "number" and "integer" in v:
            out.append("integer")
        elif t == "integer" and "number" in v:
            out.append("integer")
    return list(dict.fromkeys(out))


def _lcm(u, v, pointer: str):
    fu, fv = Fraction(Decimal(str(u))), Fraction(Decimal(str(v)))
    if fu <= 0 or fv <= 0:
        raise UnsupportedSchemaError("multipleOf", pointer, "must be positive")
    # lcm of fractions: lcm(numerators) / gcd(denominators)
    from math import gcd

    num = fu.numerator * fv.numerator // gcd(fu.numerator, fv.numerator)
    den = gcd(fu.denominator, fv.denominator)
    result = Fraction(num, den)
    if result.denominator & (result.denominator - 1) and result.denominator % 5:
        raise UnsupportedSchemaError("multipleOf", pointer, "merged step is not a decimal")
    return json.loads(str(Decimal(result.numerator) / Decimal(result.denominator)))
