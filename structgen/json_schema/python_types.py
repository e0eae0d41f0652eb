"""Python types → JSON Schema: pydantic models, dataclasses, TypedDict, Enum, Literal,
``list[...]``, ``dict[str, ...]``, ``Optional`` and unions. JSON texts and dicts pass through."""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing


def to_json_schema(obj):
    """A JSON Schema (dict or bool) for ``obj``: a schema dict/bool, JSON text, or a Python type."""
    if isinstance(obj, (dict, bool)):
        return obj
    if isinstance(obj, (str, bytes)):
        return json.loads(obj)
    if hasattr(obj, "model_json_schema"):  # pydantic v2 model
        return obj.model_json_schema()
    defs: dict = {}
    schema = _type_schema(obj, defs)
    if defs:
        schema = {**schema, "$defs": defs}
    return schema


def _type_schema(tp, defs: dict) -> dict:
    if tp is type(None) or tp is None:
        return {"type": "null"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is str:
        return {"type": "string"}
    if tp is typing.Any:
        return {}
    if hasattr(tp, "model_json_schema"):
        sub = tp.model_json_schema(ref_template="#/$defs/{model}")
        for name, d in sub.pop("$defs", {}).items():
            defs.setdefault(name, d)
        defs.setdefault(tp.__name__, sub)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type_schema(a, defs) for a in args]}
    if origin in (list, set, frozenset, typing.Sequence) or tp in (list,):
        out = {"type": "array"}
        if args:
            out["items"] = _type_schema(args[0], defs)
        return out
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _type_schema(args[0], defs)}
        return {"type": "array", "prefixItems": [_type_schema(a, defs) for a in args], "items": False, "minItems": len(args)}
    if origin is dict or tp is dict:
        out = {"type": "object"}
        if args:
            out["additionalProperties"] = _type_schema(args[1], defs)
        return out
    if dataclasses.is_dataclass(tp) or typing.is_typeddict(tp):
        return _record(tp, defs)
    raise TypeError(f"cannot turn {tp!r} into a JSON Schema")


def _record(tp, defs: dict) -> dict:
    name = tp.__name__
    if name in defs:
        return {"$ref": f"#/$defs/{name}"}
    defs[name] = {}  # placeholder: recursive types refer to it
    hints = typing.get_type_hints(tp)
    props = {k: _type_schema(v, defs) for k, v in hints.items()}
    if dataclasses.is_dataclass(tp):
        required = [f.name for f in dataclasses.fields(tp) if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    else:
        required = sorted(getattr(tp, "__required_keys__", hints))
        required = [k for k in hints if k in required]
    defs[name] = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    return {"$ref": f"#/$defs/{name}"}
