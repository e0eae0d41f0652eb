"""JSON Schema → grammar IR.

Every schema node becomes a byte-level expression of the grammar IR; ``$ref`` cycles become
rules (so only recursive schemas need a parser at run time). Semantics:

* declared properties (``properties``, then required names it does not declare) come in any
  order, each at most once, then any additional properties (``property_order="any"``, for
  objects with at most ``ANY_ORDER_MAX_PROPERTIES`` declared ones, within the ``ANY_ORDER_*``
  budgets), or in the schema's order; every declared property is optional unless required;
* additional properties are allowed as the specification says unless ``strict`` (or
  ``additionalProperties: false``); free-form values (``{}``, ``true``, undeclared
  properties) nest to any depth (``any_rule``: one recursive rule, so such a schema runs on
  the grammar engine), except with ``"pretty"`` whitespace, whose indentation follows the
  depth: there at most ``any_depth`` levels (``bounded_any`` on the result);
* numbers are never written as ``-0``, and without exponent where bounded, a multiple or an
  integer (``1e-06`` is a number without bounds); integers may end in ``.0``;
* strings are written as JSON serialisers write them (see :mod:`.strings`);
* whitespace follows the ``whitespace`` option: ``"flexible"`` (one optional space after
  ``{ [ , :`` and before ``} ]``: accepts ``json.dumps`` output with its default or compact
  separators, and a model cannot run away in whitespace), ``"compact"`` (none), or ``"pretty"``
  (``indent`` spaces per level after a newline, as ``json.dumps(indent=...)``; inside recursive
  definitions the indentation of the outer level).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from functools import lru_cache
import sys
from dataclasses import dataclass, field
from decimal import Decimal

from ..automata.byte_dfa import ByteDFA, product, repeat_single
from ..automata.expr_nfa import expr_to_nfa
from ..errors import CompileBudgetError, UnsupportedSchemaError
from ..grammar.ir import EMPTY, Alt, Automaton, Bytes, Expr, Grammar, Ref, Repeat, Seq, literal, nodes
from . import formats, numbers, overlap
from .document import Location, SchemaDocument
from .merge import ANNOTATIONS, NOT_ENFORCED, TYPES, is_type, json_equal, merge, normalize
from .strings import EmptyPattern, PatternError, any_char, encode_text, has_one_encoding, pattern_expr, quoted, regex_chars_expr

# keywords whose meaning depends on another keyword of the same schema
_INTERACTING = {
    "properties", "patternProperties", "additionalProperties", "items", "prefixItems", "additionalItems", "contains",
    "minContains", "maxContains", "if", "then", "else", "unevaluatedProperties", "unevaluatedItems", "$ref",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
}


@dataclass(frozen=True)
class JsonSchemaOptions:
    whitespace: str = "flexible"  # "flexible" | "compact" | "pretty"
    indent: int = 2
    strict: bool = False
    lenient: bool = False
    any_depth: int = 2
    split: bool = False  # every object and array its own grammar rule (for schemas too big for one DFA)
    any_rule: bool = False  # free-form values as one recursive rule, to any depth (not "pretty")
    # an attempt at one DFA, dropped where a free-form value would nest a bounded depth (not
    # "pretty"): the first such value raises CompileBudgetError, not the whole build
    one_dfa: bool = False
    property_order: str = "any"  # "any" (within ANY_ORDER_* budgets) | "schema"


class Unsatisfiable(Exception):
    """No instance satisfies this (sub)schema."""


@dataclass
class CompiledSchema:
    grammar: Grammar
    unenforced: list[str] = field(default_factory=list)  # "keyword at pointer" (lenient mode)
    draft: int = 2020
    bounded_any: bool = False  # whether free-form values nest at most ``any_depth`` levels


def schema_to_grammar(schema, options: JsonSchemaOptions | None = None, document: SchemaDocument | None = None) -> CompiledSchema:
    """Compiles a JSON Schema (a dict or bool) to the grammar IR; ``document``: its
    :class:`SchemaDocument`, where a caller compiles it more than once."""
    options = options or JsonSchemaOptions()
    if options.whitespace not in ("flexible", "compact", "pretty"):
        raise ValueError(f"whitespace must be 'flexible', 'compact' or 'pretty', not {options.whitespace!r}")
    if options.property_order not in ("any", "schema"):
        raise ValueError(f"property_order must be 'any' or 'schema', not {options.property_order!r}")
    if document is None:
        document = SchemaDocument(schema)
    compiler = _compiled(document, options)
    if compiler.recursive and compiler.bounded_any and options.whitespace != "pretty":
        # the grammar engine runs anyway: free-form values need no depth bound
        compiler = _compiled(document, dataclasses.replace(options, any_rule=True))
    grammar = Grammar(
        rules=compiler.rules, start="root", source="<json schema>", keep=frozenset(compiler.kept), warn_unreachable=False
    )
    return CompiledSchema(grammar, compiler.unenforced, compiler.doc.draft, compiler.bounded_any)


def _compiled(document: SchemaDocument, options: JsonSchemaOptions) -> "_Compiler":
    """A compiler that has compiled the document's schema (its rules; ``root`` the start)."""
    schema = document.root
    compiler = _Compiler(document, options)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))
    try:
        try:
            start = compiler.value(schema, compiler.doc.root_location, 0)
        except Unsatisfiable as exc:
            raise UnsupportedSchemaError("schema", str(exc), "no JSON value satisfies the schema") from exc
    finally:
        sys.setrecursionlimit(limit)
    compiler.rules["root"] = start
    return compiler


class _Compiler:
    def __init__(self, doc: SchemaDocument, options: JsonSchemaOptions) -> None:
        self.doc = doc
        self.o = options
        self.rules: dict[str, Expr] = {}
        self.active: dict[str, str] = {}  # $ref targets being compiled → their rule name
        self.recursive: set[str] = set()
        self.ref_memo: dict[tuple, Expr] = {}
        self.unenforced: list[str] = []
        self.kept: list[str] = []
        self._rule_numbers = itertools.count()
        self._validator = None
        self._any: dict[tuple[int, int], Expr] = {}
        self._shared: dict[tuple, Ref] = {}  # kept rules shared by equal string schemas (split builds)
        self.bounded_any = False  # whether a free-form value was unrolled to ``any_depth`` levels
        self.any_order_left = ANY_ORDER_STATES  # member states that objects in any order may still add
        self._flex = self._ws_flexible()
        self._any_string = _ANY_STRING
        self._any_number = _any_number()

    # ---- whitespace ------------------------------------------------------------------------
    def _ws_flexible(self) -> Expr:
        return Repeat(literal(b" "), 0, 1)

    def item_ws(self, depth: int) -> Expr:
        """Before a member or element of a container at ``depth``."""
        if self.o.whitespace == "compact":
            return EMPTY
        if self.o.whitespace == "pretty":
            return literal(b"\n" + b" " * (self.o.indent * (depth + 1)))
        return self._flex

    def close_ws(self, depth: int) -> Expr:
        if self.o.whitespace == "compact":
            return EMPTY
        if self.o.whitespace == "pretty":
            return literal(b"\n" + b" " * (self.o.indent * depth))
        return self._flex

    def colon(self) -> Expr:
        if self.o.whitespace == "compact":
            return literal(b":")
        if self.o.whitespace == "pretty":
            return literal(b": ")
        return Seq((literal(b":"), Repeat(literal(b" "), 0, 1)))

    def depth_key(self, depth: int) -> int:
        return depth if self.o.whitespace == "pretty" else 0

    # ---- entry -----------------------------------------------------------------------------
    def value(self, schema, loc: Location, depth: int) -> Expr:
        """The expression of all JSON texts valid under ``schema``."""
        if schema is True:
            return self.any_value(depth, self.o.any_depth)
        if schema is False:
            raise Unsatisfiable(loc.pointer)
        if not isinstance(schema, dict):
            raise UnsupportedSchemaError("schema", loc.pointer, f"a schema must be an object or a boolean, not {type(schema).__name__}")
        if depth > MAX_NESTING:  # a cycle that no $ref closes (e.g. through merged allOf / anyOf parts)
            raise UnsupportedSchemaError("schema", loc.pointer, f"values nest more than {MAX_NESTING} levels deep without a $ref cycle")
        loc = self.doc.enter(schema, loc)
        ref = schema.get("$ref")
        if isinstance(ref, str):
            siblings = {k: v for k, v in schema.items() if k != "$ref" and k not in ANNOTATIONS}
            if self.doc.draft <= 7 or not siblings:
                return self.reference(ref, loc, depth)
        if isinstance(ref, str) or any(isinstance(sub, dict) and "$ref" in sub for sub in schema.get("allOf") or ()):
            # merges a referenced schema in: a cycle through it comes back to this node
            return self.rule_for(("node", id(schema)), lambda: self.compile_flat(*self.flatten(schema, loc), loc, depth), depth)
        s, sources = self.flatten(schema, loc)
        return self.compile_flat(s, sources, loc, depth)

    def reference(self, ref: str, loc: Location, depth: int) -> Expr:
        target, tloc, key = self.doc.resolve(ref, loc)
        return self.rule_for(key, lambda: self.value(target, tloc, depth), depth)

    def rule_for(self, key, build, depth: int) -> Expr:
        """``build()``'s expression, remembered per (``key``, depth); a rule of the grammar
        when building it comes back to ``key``."""
        name = self.active.get(key)
        if name is not None:  # a cycle: the target becomes a rule of the grammar
            self.recursive.add(name)
            return Ref(name)
        memo_key = (key, self.depth_key(depth))
        found = self.ref_memo.get(memo_key)
        if found is not None:
            return found
        name = f"def{next(self._rule_numbers)}"
        self.active[key] = name
        try:
            expr = build()
        finally:
            del self.active[key]
        if name in self.recursive:
            self.rules[name] = expr
            expr = Ref(name)
        self.ref_memo[memo_key] = expr
        return expr

    # ---- flattening: $ref siblings and allOf merged into one dict ---------------------------
    def flatten(self, schema: dict, loc: Location, seen: frozenset = frozenset()) -> tuple[dict, list]:
        loc = self.doc.enter(schema, loc)
        s = normalize(schema, self.doc.draft, loc.pointer)
        sources = [schema]
        parts: list[tuple[dict, list]] = []
        ref = s.pop("$ref", None)
        if isinstance(ref, str):
            target, tloc, key = self.doc.resolve(ref, loc)
            if key in self.active or key in seen:
                raise UnsupportedSchemaError("$ref", loc.pointer, "a recursive reference combined with other keywords")
            parts.append(self._flatten_any(target, tloc, seen | {key}))
        for i, sub in enumerate(s.pop("allOf", None) or []):
            sub_loc = loc.child("allOf", i)
            if isinstance(sub, dict) and isinstance(sub.get("$ref"), str) and len(sub) == 1:
                target, tloc, key = self.doc.resolve(sub["$ref"], sub_loc)
                if key in self.active or key in seen:
                    raise UnsupportedSchemaError("allOf", sub_loc.pointer, "a recursive reference inside allOf")
                parts.append(self._flatten_any(target, tloc, seen | {key}))
            else:
                parts.append(self._flatten_any(sub, sub_loc, seen))
        if parts:
            # (the parts' properties first: a base schema's, then the ones this one adds)
            base = parts[0][0]
            for part, _ in parts[1:]:
                base = merge(base, part, loc.pointer)
            s = merge(base, s, loc.pointer)
            for _, part_sources in parts:
                sources.extend(part_sources)
        return s, sources

    def _flatten_any(self, schema, loc: Location, seen: frozenset) -> tuple[dict, list]:
        if schema is True:
            return {}, []
        if schema is False:
            return {"enum": []}, []
        if not isinstance(schema, dict):
            raise UnsupportedSchemaError("schema", loc.pointer, "a schema must be an object or a boolean")
        return self.flatten(schema, loc, seen)

    # ---- one flattened schema --------------------------------------------------------------
    def compile_flat(self, s: dict, sources: list, loc: Location, depth: int) -> Expr:
        for _ in range(16):  # rewrites may add allOf parts, merged in turn
            self.check_keywords(s, loc)
            if "if" in s or "then" in s or "else" in s:
                s = self.rewrite_conditional(s, loc)
            if s.get("dependentRequired") or s.get("dependentSchemas"):
                s = self.rewrite_dependencies(s, loc)
            if "not" in s:
                s = self.apply_not(s, loc)
            if "allOf" not in s:
                break
            s, more = self.flatten(s, loc)
            sources = sources + more[1:]
        else:
            self.unsupported("allOf", loc, "the rewrites of not / if / dependencies do not settle")
        for key in ("anyOf", "oneOf"):
            if key in s:
                return self.alternatives(key, s, sources, loc, depth)
        if "enum" in s:
            return self.enum(s, sources, loc, depth)
        types = s.get("type", list(TYPES))
        excluded = s.get("x-not-values", [])
        options = []
        for t in types:
            if t == "integer" and "number" in types:
                continue
            try:
                expr = self.typed(t, s, loc, depth)
                banned = [v for v in excluded if is_type(v, t) or (t == "number" and is_type(v, "integer"))]
                if banned:
                    expr = self.without_values(expr, banned, t, loc, depth)
                options.append(expr)
            except Unsatisfiable:
                pass
        if not options:
            raise Unsatisfiable(loc.pointer)
        return options[0] if len(options) == 1 else Alt(tuple(options))

    def without_values(self, expr: Expr, banned: list, t: str, loc: Location, depth: int) -> Expr:
        """``expr`` minus the encodings of some scalar values (exact: the languages of
        scalars hold every encoding of each value they hold)."""
        if t in ("object", "array"):
            self.unsupported("not", loc, "excluding object or array values")
            return expr
        dfa = product(
            ByteDFA.from_nfa(expr_to_nfa(expr)),
            ByteDFA.from_nfa(expr_to_nfa(Alt(tuple(self.literal_value(v, depth) for v in banned)))),
            difference=True,
        )
        if dfa is None:
            raise Unsatisfiable(loc.pointer)
        return Automaton(dfa)

    def check_keywords(self, s: dict, loc: Location) -> None:
        for key in s:
            if key in NOT_ENFORCED:
                self.unsupported(key, loc, "is not enforced")
            if key == "uniqueItems" and s[key] is True:
                items_can_repeat = s.get("maxItems", 2) > 1
                if items_can_repeat and "array" in s.get("type", ["array"]):
                    self.unsupported(key, loc, "cannot be enforced by an automaton (items of an open domain)")
            if key == "format" and s[key] in formats.UNSUPPORTED and "string" in s.get("type", ["string"]):
                self.unsupported(key, loc, f"format {s[key]!r} is not enforced")

    def unsupported(self, keyword: str, loc: Location, reason: str) -> None:
        if not self.o.lenient:
            raise UnsupportedSchemaError(keyword, loc.pointer, reason)
        self.unenforced.append(f"{keyword} at {loc.pointer or '/'}")

    # ---- composition -----------------------------------------------------------------------
    def alternatives(self, key: str, s: dict, sources: list, loc: Location, depth: int) -> Expr:
        rest = {k: v for k, v in s.items() if k != key}
        branches = s[key]
        if not isinstance(branches, list) or not branches:
            raise UnsupportedSchemaError(key, loc.pointer, "must be a non-empty array")
        # each branch merged with the keywords beside it; a recursive branch stays a reference
        merged: list[tuple[Location, object, dict | None, list]] = []
        plain = not any(k not in ANNOTATIONS and not k.startswith("x-") for k in rest)
        for i, branch in enumerate(branches):
            bloc = loc.child(key, i)
            if key == "anyOf" and plain and _only_ref(branch):
                merged.append((bloc, branch, None, []))  # compiled as a reference: cycles become rules
                continue
            if self._is_active_ref(branch, bloc):
                if not plain:
                    raise UnsupportedSchemaError(key, bloc.pointer, "a recursive reference combined with other keywords")
                merged.append((bloc, branch, None, []))
                continue
            part, part_sources = self._flatten_any(branch, bloc, frozenset())
            merged.append((bloc, branch, merge(rest, part, loc.pointer), part_sources))
        if key == "oneOf" and len(merged) > 1:
            merged = self.exclusive(merged, loc)
        options = []
        for bloc, branch, flat, part_sources in merged:
            try:
                if flat is None:
                    options.append(self.value(branch, bloc, depth))
                else:
                    options.append(self.compile_flat(flat, sources + part_sources, bloc, depth))
            except Unsatisfiable:
                continue
        if not options:
            raise Unsatisfiable(loc.pointer)
        return options[0] if len(options) == 1 else Alt(tuple(options))

    def _is_active_ref(self, branch, loc: Location) -> bool:
        if isinstance(branch, dict) and isinstance(branch.get("$ref"), str):
            _, _, key = self.doc.resolve(branch["$ref"], loc)
            return key in self.active
        return False

    def exclusive(self, merged: list, loc: Location) -> list:
        """``oneOf`` branches made mutually exclusive: exact when no two branches can share an
        instance (see :mod:`.overlap`), or when two object branches share only ``{}`` (then
        ``{}`` is taken out of both); otherwise unsupported."""
        flats = [flat if flat is not None else self.peek(branch, bloc) for bloc, branch, flat, _ in merged]

        def flat_of(sub):
            return self.peek(sub, loc)

        no_empty: set[int] = set()
        for i in range(len(flats)):
            for j in range(i + 1, len(flats)):
                a, b = flats[i], flats[j]
                if a is None or b is None:
                    self.unsupported("oneOf", loc, "branches may overlap (a recursive branch)")
                    return merged
                if overlap.disjoint(a, b, flat_of):
                    continue
                if overlap.empty_object_only(a, b) and merged[i][2] is not None and merged[j][2] is not None:
                    no_empty |= {i, j}
                    continue
                self.unsupported("oneOf", loc, f"branches {i} and {j} may share an instance")
                return merged
        return [
            (bloc, branch, {**flat, "minProperties": max(1, flat.get("minProperties") or 0)} if k in no_empty else flat, srcs)
            for k, (bloc, branch, flat, srcs) in enumerate(merged)
        ]

    def peek(self, schema, loc: Location) -> dict | None:
        """``schema`` flattened for analysis only (recursion allowed), or None when it cannot be."""
        if schema is True:
            return {}
        if schema is False:
            return {"enum": []}
        active, self.active = self.active, {}
        try:
            return self._flatten_any(schema, loc, frozenset())[0]
        except UnsupportedSchemaError:
            return None
        finally:
            self.active = active

    def rewrite_conditional(self, s: dict, loc: Location) -> dict:
        cond = s.get("if")
        then, other = s.get("then", True), s.get("else", True)
        rest = {k: v for k, v in s.items() if k not in ("if", "then", "else")}
        if "if" not in s or (then is True and other is True):
            return rest
        negated = _negate(cond)
        if negated is None:
            self.unsupported("if", loc, "only conditions on a property's const/enum or on the type are supported")
            return rest
        branches = [{"allOf": [cond, then]}, {"allOf": [negated, other]}]
        return {**rest, "allOf": [*rest.get("allOf", []), {"anyOf": branches}]}

    def rewrite_dependencies(self, s: dict, loc: Location) -> dict:
        req = s.pop("dependentRequired", None) or {}
        sch = s.pop("dependentSchemas", None) or {}
        names = list(dict.fromkeys([*req, *sch]))
        if len(names) > 6:
            self.unsupported("dependentRequired", loc, "more than 6 dependencies")
            return s
        groups = []
        for name in names:
            present: dict = {"required": [name, *req.get(name, [])]}
            if name in sch:
                present = {"allOf": [present, sch[name]]}
            groups.append({"anyOf": [{"properties": {name: False}}, present]})
        return {**s, "allOf": [*s.get("allOf", []), *groups]}

    def apply_not(self, s: dict, loc: Location) -> dict:
        neg = s.pop("not")
        if neg is False or neg == {}:
            return s if neg is False else {"enum": []}
        if neg is True:
            return {"enum": []}
        if isinstance(neg, dict) and set(neg) - ANNOTATIONS == {"type"}:
            banned = neg["type"] if isinstance(neg["type"], list) else [neg["type"]]
            types = [t for t in s.get("type", list(TYPES)) if t not in banned]
            if "number" in banned:
                types = [t for t in types if t != "integer"]
            if "integer" in banned and "number" in types:
                self.unsupported("not", loc, "'not integer' within numbers")
            return {**s, "type": types}
        if isinstance(neg, dict) and set(neg) - ANNOTATIONS <= {"enum", "const"}:
            values = neg.get("enum", []) + ([neg["const"]] if "const" in neg else [])
            if "enum" in s:
                return {**s, "enum": [v for v in s["enum"] if not any(json_equal(v, x) for x in values)]}
            return {**s, "x-not-values": values}
        if isinstance(neg, dict) and set(neg) - ANNOTATIONS == {"required"}:
            # not all of these present: at least one absent
            names = neg["required"]
            return {**s, "allOf": [*s.get("allOf", []), {"anyOf": [{"properties": {n: False}} for n in names]}]} if names else {"enum": []}
        keys = set(neg) - ANNOTATIONS if isinstance(neg, dict) else set()
        # De Morgan: not (all of) = any of the nots; not (any of) = all of the nots
        if keys == {"allOf"} and isinstance(neg["allOf"], list):
            parts = neg["allOf"]
            return {**s, "allOf": [*s.get("allOf", []), {"anyOf": [{"not": p} for p in parts]}]} if parts else {"enum": []}
        if keys == {"anyOf"} and isinstance(neg["anyOf"], list):
            for part in neg["anyOf"]:  # one at a time: merged "not"s would become an anyOf again
                s = self.apply_not({**s, "not": part}, loc)
            return s
        if len(keys) > 1 and not keys & _INTERACTING:
            # independent keywords: not (a and b) = not a, or not b
            return {**s, "allOf": [*s.get("allOf", []), {"anyOf": [{"not": {k: neg[k]}} for k in sorted(keys)]}]}
        self.unsupported("not", loc, "only 'not' of a type, const/enum or required list (or allOf/anyOf of those) is supported")
        return s

    # ---- enum / const ----------------------------------------------------------------------
    def enum(self, s: dict, sources: list, loc: Location, depth: int) -> Expr:
        values = s["enum"]
        if not isinstance(values, list):
            raise UnsupportedSchemaError("enum", loc.pointer, "must be an array")
        # each value is checked against the keywords beside the enum (not against the enum:
        # that would compare every value with every other)
        sources = [{k: x for k, x in src.items() if k != "enum"} if isinstance(src, dict) and src.get("enum") is values else src for src in sources]
        kept = [v for v in values if all(self.validates(v, src) for src in sources) and self._type_ok(v, s.get("type"))]
        if "x-not-values" in s:
            kept = [v for v in kept if not any(json_equal(v, x) for x in s["x-not-values"])]
        if not kept:
            raise Unsatisfiable(loc.pointer)
        options = [self.literal_value(v, depth) for v in kept]
        return options[0] if len(options) == 1 else Alt(tuple(options))

    def _type_ok(self, v, types) -> bool:
        if types is None:
            return True
        return any(is_type(v, t) for t in types)

    def validates(self, value, schema) -> bool:
        if self._validator is None:
            from jsonschema import FormatChecker
            from jsonschema.validators import validator_for

            root = self.doc.root
            cls = validator_for(root) if isinstance(root, dict) else validator_for({})
            self._validator = cls(root, format_checker=FormatChecker())
        try:
            return self._validator.evolve(schema=schema).is_valid(value)
        except Exception:  # a $ref the validator cannot follow: keep the value only if harmless
            return True

    def literal_value(self, v, depth: int) -> Expr:
        if v is None:
            return literal(b"null")
        if v is True:
            return literal(b"true")
        if v is False:
            return literal(b"false")
        if isinstance(v, int):
            return Seq((literal(str(v).encode()), numbers.INTEGER_FRACTION))
        if isinstance(v, float):
            if not math.isfinite(v):
                raise UnsupportedSchemaError("enum", "", f"{v} is not a JSON number")
            if v.is_integer():
                return Seq((literal(str(int(v)).encode()), numbers.INTEGER_FRACTION))
            text = format(Decimal(repr(v)), "f")
            return Seq((literal(text.encode()), Repeat(literal(b"0"))))
        if isinstance(v, str):
            return quoted(encode_text(v))
        if isinstance(v, list):
            if not v:
                return literal(b"[]")
            parts: list[Expr] = [literal(b"[")]
            for i, item in enumerate(v):
                if i:
                    parts.append(literal(b","))
                parts += [self.item_ws(depth), self.literal_value(item, depth + 1)]
            parts += [self.close_ws(depth), literal(b"]")]
            return Seq(tuple(parts))
        if isinstance(v, dict):
            if not v:
                return literal(b"{}")
            parts = [literal(b"{")]
            for i, (k, item) in enumerate(v.items()):
                if i:
                    parts.append(literal(b","))
                parts += [self.item_ws(depth), quoted(encode_text(k)), self.colon(), self.literal_value(item, depth + 1)]
            parts += [self.close_ws(depth), literal(b"}")]
            return Seq(tuple(parts))
        raise UnsupportedSchemaError("enum", "", f"{v!r} is not a JSON value")

    # ---- types -----------------------------------------------------------------------------
    def typed(self, t: str, s: dict, loc: Location, depth: int) -> Expr:
        if t == "null":
            return literal(b"null")
        if t == "boolean":
            return Alt((literal(b"true"), literal(b"false")))
        if t == "string":
            return self.string(s, loc)
        if t in ("number", "integer"):
            return self.number(s, loc, integer=t == "integer")
        if t in ("object", "array"):
            expr = self.object(s, loc, depth) if t == "object" else self.array(s, loc, depth)
            return self.kept_rule(t, expr) if self.o.split else expr
        raise UnsupportedSchemaError("type", loc.pointer, f"unknown type {t!r}")

    def number(self, s: dict, loc: Location, integer: bool) -> Expr:
        lo = hi = None
        lo_strict = hi_strict = False
        for key, strict in (("minimum", False), ("exclusiveMinimum", True)):
            if key in s:
                v = _decimal(s[key], key, loc)
                if lo is None or v > lo or (v == lo and strict):
                    lo, lo_strict = v, strict
        for key, strict in (("maximum", False), ("exclusiveMaximum", True)):
            if key in s:
                v = _decimal(s[key], key, loc)
                if hi is None or v < hi or (v == hi and strict):
                    hi, hi_strict = v, strict
        step = _decimal(s["multipleOf"], "multipleOf", loc) if "multipleOf" in s else None
        if step is not None and step <= 0:
            raise UnsupportedSchemaError("multipleOf", loc.pointer, "must be greater than 0")
        try:
            if integer:
                ilo = None if lo is None else (math.floor(lo) + 1 if lo_strict else math.ceil(lo))
                ihi = None if hi is None else (math.ceil(hi) - 1 if hi_strict else math.floor(hi))
                if ilo is not None and ihi is not None and ilo > ihi:
                    raise Unsatisfiable(loc.pointer)
                base: Expr = numbers.integer_range(ilo, ihi)
                if self.doc.draft > 4:  # 1.0 is an integer from draft 6 on
                    base = Seq((base, numbers.INTEGER_FRACTION))
                if step is None:
                    return base
                dfa = product(ByteDFA.from_nfa(expr_to_nfa(base)), numbers.multiple_of(step, integer=True))
            else:
                unbounded = lo is None and hi is None
                dfa = numbers.any_decimal() if unbounded else numbers.decimal_range(lo, lo_strict, hi, hi_strict)
                if step is not None:
                    dfa = product(dfa, numbers.multiple_of(step, integer=False))
        except numbers.EmptyRange as exc:
            raise Unsatisfiable(loc.pointer) from exc
        except ValueError as exc:
            raise UnsupportedSchemaError("multipleOf", loc.pointer, str(exc)) from exc
        if dfa is None:
            raise Unsatisfiable(loc.pointer)
        return Automaton(dfa)

    def string(self, s: dict, loc: Location) -> Expr:
        lo = _count(s, "minLength", loc) or 0
        hi = _count(s, "maxLength", loc)
        patterns: list[str] = []
        for p in ([s["pattern"]] if "pattern" in s else []) + s.get("x-patterns", []):
            try:
                pattern_expr(p)
                patterns.append(p)
            except EmptyPattern:
                raise Unsatisfiable(loc.pointer) from None
            except PatternError as exc:
                self.unsupported("pattern", loc, str(exc))
        fmt = s.get("format") if s.get("format") in formats.FORMATS else None
        if fmt is not None:
            cap = formats.MAX_LENGTH.get(fmt)
            if cap is not None:
                hi = cap if hi is None else min(hi, cap)
        if hi is not None and hi < lo:
            raise Unsatisfiable(loc.pointer)
        key = (lo, hi, tuple(patterns), fmt)
        if self.o.split and hi is not None and hi >= SHARED_STRING_LENGTH:
            # one lexeme per distinct string schema, shared by every property that uses it
            if key not in self._shared:
                self._shared[key] = self.kept_rule("string", self._string(*key, loc))
            return self._shared[key]
        return self._string(*key, loc)

    def _string(self, lo: int, hi: int | None, patterns: tuple[str, ...], fmt: str | None, loc: Location) -> Expr:
        if not patterns and fmt is None and self.o.split and hi is not None and hi >= CHUNKED_LENGTH and lo < CHUNK:
            return self.chunked_string(lo, hi)
        try:
            expr = _string_expr(lo, hi, patterns, fmt)
        except Unsatisfiable:
            raise Unsatisfiable(loc.pointer) from None
        if not self.o.split and isinstance(expr.items[1], Automaton) and expr.items[1].dfa.n_states > ONE_DFA_STATES:
            raise CompileBudgetError(f"a string at {loc.pointer!r} needs more than {ONE_DFA_STATES} states")
        return expr

    def chunked_string(self, lo: int, hi: int) -> Expr:
        """A string of ``lo..hi`` characters for a large ``hi`` (``lo`` below ``CHUNK``): runs
        of ``CHUNK`` characters are one lexeme each, counted by the grammar, so the lexer
        holds one chunk instead of ``hi`` characters."""
        if ("chunk",) not in self._shared:
            self._shared[("chunk",)] = self.kept_rule("chunk", _counted_chars(CHUNK, CHUNK))
        chunk = self._shared[("chunk",)]
        full, rest = divmod(hi, CHUNK)
        shorter = [_counted_chars(lo, CHUNK - 1), Seq((Repeat(chunk, 1, full - 1), _counted_chars(0, CHUNK - 1)))]
        longest = Repeat(chunk, full, full) if rest == 0 else Seq((Repeat(chunk, full, full), _counted_chars(0, rest)))
        return quoted(Alt((*shorter, longest)))

    def kept_rule(self, prefix: str, expr: Expr) -> Ref:
        """A rule that stays a nonterminal (its own lexeme when regular)."""
        name = f"{prefix}{len(self.kept)}"
        self.rules[name] = expr
        self.kept.append(name)
        return Ref(name)

    # ---- objects ---------------------------------------------------------------------------
    def object(self, s: dict, loc: Location, depth: int) -> Expr:
        props: dict = dict(s.get("properties") or {})
        required = list(s.get("required") or [])
        patterns: dict = dict(s.get("patternProperties") or {})
        extra = s.get("additionalProperties", True)
        if self.o.strict and "additionalProperties" not in s:
            extra = False
        names_schema = s.get("propertyNames")
        lo = _count(s, "minProperties", loc) or 0
        hi = _count(s, "maxProperties", loc)
        if extra is True and not patterns and names_schema in (None, True):
            # undeclared members take free-form values: before the declared ones are built,
            # the attempt at one DFA stops here (what extra_entries would meet last)
            self.free_form_here()
        # declared names: schema order, then required names the properties do not declare
        order = list(props) + [n for n in required if n not in props]
        slots = []
        for name in order:
            sub = self.member_schema(name, props.get(name), patterns, extra, names_schema, loc)
            try:
                entry = self.member(name, sub, loc.child("properties", name), depth)
            except Unsatisfiable:
                if name in required:
                    raise
                continue  # the property can never appear
            slots.append((entry, name in required))
        extras = self.extra_entries(order, patterns, extra, names_schema, loc, depth)
        leading = None
        if depth == 0 and lo == 0 and hi is None and extras is not None and LEADING_KEY not in order:
            # a document's own "$schema" first, where the schema lets it be (config files)
            sub = self.member_schema(LEADING_KEY, None, patterns, extra, names_schema, loc)
            try:
                leading = self.member(LEADING_KEY, sub, loc.child("additionalProperties"), depth)
            except Unsatisfiable:
                pass
        return self.object_body(slots, extras, lo, hi, depth, loc, leading)

    def member_schema(self, name: str, declared, patterns: dict, extra, names_schema, loc: Location):
        """The schema of property ``name``'s value: its declared schema (``declared``; else
        ``additionalProperties``'), with every matching ``patternProperties`` schema;
        False where ``propertyNames`` refuses the name."""
        extra_parts = [p_schema for p, p_schema in patterns.items() if _search(p, name, loc)]
        sub = declared
        if sub is None:
            sub = extra if not extra_parts else True
        if names_schema is not None and not self.validates(name, names_schema):
            sub = False
        for p_schema in extra_parts:
            sub = p_schema if sub is True else {"allOf": [sub, p_schema]}
        return sub

    def member(self, name: str, sub, loc: Location, depth: int) -> Expr:
        """``name: value`` (raises Unsatisfiable when no value fits)."""
        return Seq((self.item_ws(depth), quoted(encode_text(name)), self.colon(), self.value(sub, loc, depth + 1)))

    def extra_entries(self, declared: list, patterns: dict, extra, names_schema, loc: Location, depth: int) -> Expr | None:
        """One undeclared member (``key: value``), or None when none may appear."""
        names_dfa = None
        if names_schema is not None and names_schema is not True:
            names_dfa = self.key_language(names_schema, loc.child("propertyNames"))
            if names_dfa is None:
                return None
        declared_dfa = _declared_keys(tuple(declared)) if declared else None
        options = []
        pattern_dfas = []
        for p, p_schema in patterns.items():
            try:
                key = ByteDFA.from_nfa(expr_to_nfa(quoted(pattern_expr(p))))
            except EmptyPattern:
                continue  # (no name matches it)
            except PatternError as exc:
                self.unsupported("patternProperties", loc, str(exc))
                continue
            pattern_dfas.append((key, p_schema, p))
        for i, (a, sa, pa) in enumerate(pattern_dfas):
            for b, sb, pb in pattern_dfas[i + 1 :]:
                if not json_equal(sa, sb) and product(a, b) is not None:
                    self.unsupported("patternProperties", loc, f"patterns {pa!r} and {pb!r} overlap with different schemas")
        for key, p_schema, p in pattern_dfas:
            options.append((key, p_schema, loc.child("patternProperties", p)))
        if extra is not False:
            key = _any_key()
            for other, _, _ in pattern_dfas:
                key = product(key, other, difference=True) if key is not None else None
            if key is not None:
                options.append((key, extra, loc.child("additionalProperties")))
        entries = []
        for key, value_schema, vloc in options:
            if declared_dfa is not None:
                key = _undeclared_keys(tuple(declared)) if key is _any_key() else product(key, declared_dfa, difference=True)
            if key is not None and names_dfa is not None:
                key = product(key, names_dfa)
            if key is None:
                continue
            try:
                value = self.value(value_schema, vloc, depth + 1)
            except Unsatisfiable:
                continue
            entries.append(Seq((self.item_ws(depth), Automaton(key), self.colon(), value)))
        if not entries:
            return None
        return entries[0] if len(entries) == 1 else Alt(tuple(entries))

    def key_language(self, names_schema, loc: Location) -> ByteDFA | None:
        """The quoted strings allowed as property names."""
        if names_schema is False:
            return None
        s, _ = self._flatten_any(names_schema, loc, frozenset())
        s = {k: v for k, v in s.items() if k not in ANNOTATIONS}
        if "string" not in s.get("type", ["string"]):
            return None
        s.pop("type", None)
        if set(s) - {"pattern", "x-patterns", "minLength", "maxLength", "format", "enum", "x-normalized"}:
            self.unsupported("propertyNames", loc, "only string keywords are supported")
        if "enum" in s:
            words = [quoted(encode_text(v)) for v in s["enum"] if isinstance(v, str)]
            return ByteDFA.from_nfa(expr_to_nfa(Alt(tuple(words)))) if words else None
        try:
            return ByteDFA.from_nfa(expr_to_nfa(self.string(s, loc)))
        except Unsatisfiable:
            return None

    def object_body(
        self, slots: list, extras: Expr | None, lo: int, hi, depth: int, loc: Location, leading: Expr | None = None
    ) -> Expr:
        """``{ ... }``: the declared slots in any order where that stays within budget, else in
        the schema's order (see :meth:`any_order_body` and :meth:`ordered_body`); with
        ``leading`` (an undeclared member, when ``lo`` is 0 and ``hi`` None), that member may
        also come first."""
        n = len(slots)
        if hi is not None and hi < lo:
            raise Unsatisfiable(loc.pointer)
        states = 1 << n  # (slots used, members so far): the count follows from the slots
        any_order = self.o.property_order == "any" and 2 <= n <= ANY_ORDER_MAX_PROPERTIES and states <= self.any_order_left
        if any_order:
            # every state but the last copies the members not used yet: half of them on
            # average (a split build shares them: a rule per state)
            if not self.o.split and states * sum(_expr_size(entry) for entry, _ in slots) // 2 > ANY_ORDER_COPIES:
                raise CompileBudgetError(f"{loc.pointer or '/'}: properties in any order need the grammar engine")
            self.any_order_left -= states
        counts = (0,) if leading is None else (0, 1)
        if any_order:
            bodies = self.any_order_body(slots, extras, lo, hi, depth, counts)
        else:
            bodies = self.ordered_body(slots, extras, lo, hi, depth)
        body = bodies.get(0)
        if body is None:
            raise Unsatisfiable(loc.pointer)
        if leading is not None and bodies.get(1) is not None:
            body = Alt((body, Seq((leading, bodies[1]))))
        return Seq((literal(b"{"), body))

    def any_order_body(self, slots: list, extras: Expr | None, lo: int, hi, depth: int, counts: tuple[int, ...]) -> dict:
        """What follows ``{`` once each of ``counts`` members are written, by count (None where
        nothing fits), with the declared slots in any order, each at most once, then any number
        of extra members (as :meth:`ordered_body`). ``lo``/``hi`` bound the number of members.
        One state per (set of slots used, members so far), up to 2^n of them: a rule each in
        split builds (the members' lexemes are shared), else shared sub-expressions of one DFA."""
        n = len(slots)
        required = sum(1 << i for i, (_, needed) in enumerate(slots) if needed)
        first = [entry for entry, _ in slots]
        later = [Seq((literal(b","), entry)) for entry in first]  # one object each: one lexeme each
        tail = self.extras_tail(extras, lo, hi, depth)
        memo: dict[tuple[int, int], Expr | None] = {}

        def state(used: int, c: int) -> Expr | None:
            key = (used, c)
            if key in memo:
                return memo[key]
            options: list[Expr] = []
            if used & required == required and tail.get(c) is not None:
                options.append(tail[c])
            if hi is None or c < hi:
                nxt = _bump(c, lo, hi)
                for i in range(n):
                    if not used >> i & 1:
                        after = state(used | 1 << i, nxt)
                        if after is not None:
                            options.append(Seq((later[i] if c else first[i], after)))
            result: Expr | None = None
            if options:
                result = Alt(tuple(options))
                if self.o.split:
                    result = self.kept_rule("members", result)
            memo[key] = result
            return result

        return {c: state(0, c) for c in counts}

    def extras_tail(self, extras: Expr | None, lo: int, hi, depth: int) -> dict[int, Expr | None]:
        """What may follow the declared members once ``c`` members are written (c capped as
        the bodies count): any number of extra members within the bounds, then ``}``."""
        cap = hi if hi is not None else max(lo, 1)
        comma = literal(b",")
        close_after_members = Seq((self.close_ws(depth), literal(b"}")))
        tail: dict[int, Expr | None] = {}
        for c in range(cap, -1, -1):  # cap >= 1
            end = (close_after_members if c else literal(b"}")) if c >= lo else None
            options = [] if end is None else [end]
            if extras is not None:
                nxt = _bump(c, lo, hi)
                if hi is None and c == cap:
                    options = [Seq((Repeat(Seq((comma, extras))), close_after_members))]
                elif c < cap and tail.get(nxt) is not None:
                    options.append(Seq((comma if c else EMPTY, extras, tail[nxt])))
            tail[c] = None if not options else options[0] if len(options) == 1 else Alt(tuple(options))
        return tail

    def ordered_body(self, slots: list, extras: Expr | None, lo: int, hi, depth: int) -> dict:
        """What follows ``{`` with the declared slots in order, then any number of extra
        members, by the count of members written before (see :meth:`any_order_body`);
        ``lo``/``hi`` bound the number of members. Built from the end: the expression after
        slot i with c members so far is shared by every path reaching that point."""
        cap = hi if hi is not None else max(lo, 1)
        comma = literal(b",")
        n = len(slots)

        def sep(c: int) -> Expr:
            return comma if c else EMPTY

        tail = self.extras_tail(extras, lo, hi, depth)
        after = tail
        for i in range(n - 1, -1, -1):
            entry, required = slots[i]
            current: dict[int, Expr | None] = {}
            for c in range(cap, -1, -1):
                options = []
                nxt = _bump(c, lo, hi)
                if (hi is None or c < hi) and after.get(nxt) is not None:
                    options.append(Seq((sep(c), entry, after[nxt])))
                if not required and after.get(c) is not None:
                    options.append(after[c])
                current[c] = None if not options else options[0] if len(options) == 1 else Alt(tuple(options))
            after = current
        return after

    # ---- arrays ----------------------------------------------------------------------------
    def array(self, s: dict, loc: Location, depth: int) -> Expr:
        prefix = list(s.get("prefixItems") or [])
        rest = s.get("items", True)
        if self.o.strict and "items" not in s and prefix:
            rest = False
        lo = _count(s, "minItems", loc) or 0
        hi = _count(s, "maxItems", loc)
        if hi is not None and hi < lo:
            raise Unsatisfiable(loc.pointer)
        if "contains" in s:
            return self.array_contains(s, prefix, rest, lo, hi, loc, depth)
        elements: list[Expr | None] = []
        for i, sub in enumerate(prefix):
            try:
                elements.append(self.value(sub, loc.child("prefixItems", i), depth + 1))
            except Unsatisfiable:
                elements.append(None)
        try:
            rest_expr = self.value(rest, loc.child("items"), depth + 1) if rest is not False else None
        except Unsatisfiable:
            rest_expr = None
        comma = literal(b",")
        close_after = Seq((self.close_ws(depth), literal(b"]")))
        item_ws = self.item_ws(depth)
        k = len(prefix)
        limit = hi if hi is not None else (k if rest_expr is None else None)
        if limit is not None and limit < lo:
            raise Unsatisfiable(loc.pointer)
        after: Expr | None  # the language after i elements, built from the end
        if limit is None:
            m = max(k, lo)
            more = Repeat(Seq((comma, item_ws, rest_expr)))
            after = Seq((more, close_after)) if m else Alt((literal(b"]"), Seq((Repeat(Seq((item_ws, rest_expr)), 1, None, comma), close_after))))
        else:
            m = limit
            after = close_after if m else literal(b"]")
        for i in range(m - 1, -1, -1):
            elem = elements[i] if i < k else rest_expr
            options = []
            if elem is not None and after is not None:
                options.append(Seq((comma if i else EMPTY, item_ws, elem, after)))
            if i >= lo:
                options.append(close_after if i else literal(b"]"))
            after = None if not options else options[0] if len(options) == 1 else Alt(tuple(options))
        if after is None:
            raise Unsatisfiable(loc.pointer)
        return Seq((literal(b"["), after))

    def array_contains(self, s: dict, prefix: list, rest, lo: int, hi, loc: Location, depth: int) -> Expr:
        if prefix or hi is not None or "maxContains" in s:
            self.unsupported("contains", loc, "contains with prefixItems, maxItems or maxContains")
        at_least = _count(s, "minContains", loc)
        at_least = 1 if at_least is None else at_least
        if lo > at_least:
            self.unsupported("contains", loc, "contains with minItems above minContains")
        item_ws = self.item_ws(depth)
        comma = literal(b",")
        any_item = self.value(rest, loc.child("items"), depth + 1)
        if at_least == 0:
            return self.array({k: v for k, v in s.items() if k not in ("contains", "minContains")}, loc, depth)
        matching = self.value({"allOf": [rest, s["contains"]]} if rest is not True else s["contains"], loc.child("contains"), depth + 1)
        free = Repeat(Seq((item_ws, any_item, comma)))
        parts: list[Expr] = [literal(b"["), free, item_ws, matching]
        for _ in range(at_least - 1):
            parts += [comma, free, item_ws, matching]
        parts += [Repeat(Seq((comma, item_ws, any_item))), self.close_ws(depth), literal(b"]")]
        return Seq(tuple(parts))

    # ---- free-form values ------------------------------------------------------------------
    def any_value(self, depth: int, levels: int) -> Expr:
        """Any JSON value: at most ``levels`` nested containers, or to any depth with
        ``any_rule`` (a rule that refers to itself)."""
        if self.o.any_rule and self.o.whitespace != "pretty":
            return self.any_value_rule()
        self.free_form_here()
        self.bounded_any = True
        key = (self.depth_key(depth), levels)
        found = self._any.get(key)
        if found is None:
            inner = self.any_value(depth + 1, levels - 1) if levels > 0 else None
            found = self._any[key] = self._any_of(inner, depth)
        return found

    def free_form_here(self) -> None:
        """Stops the attempt at one DFA (``one_dfa``), where a free-form value comes: the
        grammar engine takes those to any depth (pretty whitespace bounds their depth)."""
        if self.o.one_dfa and self.o.whitespace != "pretty":
            raise CompileBudgetError("a free-form value nests to any depth: not one DFA")

    def any_value_rule(self) -> Expr:
        if ANY_RULE not in self.rules:
            self.rules[ANY_RULE] = self._any_of(Ref(ANY_RULE), 0)
        return Ref(ANY_RULE)

    def _any_of(self, inner: Expr | None, depth: int) -> Expr:
        """Scalars, and arrays and objects of ``inner`` values (only empty ones when None)."""
        scalars = [literal(b"null"), literal(b"true"), literal(b"false"), self._any_number, self._any_string]
        if inner is None:
            return Alt((*scalars, literal(b"[]"), literal(b"{}")))
        comma = literal(b",")
        ws, close = self.item_ws(depth), self.close_ws(depth)
        member = Seq((ws, self._any_string, self.colon(), inner))
        elements = Repeat(Seq((ws, inner)), 1, None, comma)
        members = Repeat(member, 1, None, comma)
        scalars.append(Seq((literal(b"["), Alt((literal(b"]"), Seq((elements, close, literal(b"]"))))))))
        scalars.append(Seq((literal(b"{"), Alt((literal(b"}"), Seq((members, close, literal(b"}"))))))))
        return Alt(tuple(scalars))


# ---- helpers ------------------------------------------------------------------------------
ANY_RULE = "any_json_value"
LEADING_KEY = "$schema"  # may come first in a top-level object that allows it undeclared
ONE_DFA_STATES = 20_000  # a schema compiled to one DFA has at most this many states
# Objects take their declared properties in any order when they declare at most this many,
ANY_ORDER_MAX_PROPERTIES = 8
# while the schema's objects in any order add at most this many member states (2^n each) ...
ANY_ORDER_STATES = 256
# In a one-DFA build, an object whose states copy more member automata than this (about
# NFA states) sends the schema to the grammar engine, where members are shared lexemes.
ANY_ORDER_COPIES = 12_000
MAX_NESTING = 100  # levels of values a schema may nest without a $ref cycle (a grammar rule)
SHARED_STRING_LENGTH = 64  # split builds: strings with a maxLength this large are shared lexemes
CHUNKED_LENGTH = 2048  # ... and this large, counted in chunks of CHUNK characters by the grammar
CHUNK = 256
_ANY_STRING = quoted(Automaton(ByteDFA.from_nfa(expr_to_nfa(Repeat(any_char())))))


@lru_cache(maxsize=256)
def _string_expr(lo: int, hi: int | None, patterns: tuple[str, ...], fmt: str | None) -> Expr:
    """A quoted string matching every pattern and the format, of ``lo..hi`` characters
    (kept across compile attempts and schemas: the product automata can be big)."""
    parts = [pattern_expr(p) for p in patterns]
    if fmt is not None:
        parts.append(regex_chars_expr(formats.FORMATS[fmt], formats.WIDE_CLASSES))
    if lo or hi is not None:
        parts.append(_counted_chars(lo, hi))
    if not parts:
        return _ANY_STRING
    if len(parts) == 1:
        return quoted(parts[0])
    dfa = None
    for part in parts:
        d = ByteDFA.from_nfa(expr_to_nfa(part))
        dfa = d if dfa is None else product(dfa, d)
        if dfa is None:
            raise Unsatisfiable("")
    return quoted(Automaton(dfa))


@lru_cache(maxsize=256)
def _counted_chars(lo: int, hi: int | None) -> Automaton:
    """lo..hi encoded characters (minLength / maxLength), as one counting automaton."""
    dfa = repeat_single(ByteDFA.from_nfa(expr_to_nfa(any_char())), lo, hi)
    if dfa is None:
        raise Unsatisfiable("")
    return Automaton(dfa)


def _only_ref(schema) -> bool:
    """Whether ``schema`` is a ``$ref`` with nothing but annotations beside it."""
    return isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and all(k == "$ref" or k in ANNOTATIONS for k in schema)


def _expr_size(expr: Expr) -> int:
    """About how many NFA states ``expr`` builds (shared nodes counted once; a reference 2)."""
    total = 0
    for e in nodes(expr):
        if isinstance(e, Automaton):
            total += e.dfa.n_states
        elif isinstance(e, (Seq, Alt, Repeat)):
            total += 1
        elif isinstance(e, Bytes):
            total += sum(len(sequence) for sequence in e.sequences)
        else:
            total += 2
    return total


def _bump(c: int, lo: int, hi: int | None) -> int:
    """Members counted after one more: exactly under ``maxProperties``, else capped where
    nothing depends on the count any more (``minProperties``, or 1 for the comma)."""
    return c + 1 if hi is not None else min(c + 1, max(lo, 1))


@lru_cache(maxsize=1)
def _any_key() -> ByteDFA:
    """Every quoted string (a property name)."""
    return ByteDFA.from_nfa(expr_to_nfa(quoted(Repeat(any_char()))))


@lru_cache(maxsize=512)
def _declared_keys(names: tuple[str, ...]) -> ByteDFA:
    """Every JSON encoding of the quoted ``names`` (escapes included). Cached, as the next:
    a schema compiles twice when it does not fit one DFA, and definitions recur."""
    if all(has_one_encoding(ch) for n in names for ch in n):
        return ByteDFA.from_strings(b'"' + n.encode() + b'"' for n in names)
    return ByteDFA.from_nfa(expr_to_nfa(Alt(tuple(quoted(encode_text(n)) for n in names))))


@lru_cache(maxsize=512)
def _undeclared_keys(names: tuple[str, ...]) -> ByteDFA | None:
    """Every quoted string but an encoding of one of ``names``."""
    return product(_any_key(), _declared_keys(names), difference=True)


@lru_cache(maxsize=1)
def _any_number() -> Automaton:
    return Automaton(numbers.any_decimal())

def _count(s: dict, key: str, loc: Location) -> int | None:
    v = s.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or int(v) != v:
        raise UnsupportedSchemaError(key, loc.pointer, f"must be a non-negative integer, not {v!r}")
    return int(v)


def _decimal(v, key: str, loc: Location) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise UnsupportedSchemaError(key, loc.pointer, f"must be a number, not {v!r}")
    return Decimal(repr(v)) if isinstance(v, float) else Decimal(v)


def _search(pattern: str, name: str, loc: Location) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error as exc:
        raise UnsupportedSchemaError("patternProperties", loc.pointer, f"invalid pattern {pattern!r}: {exc}") from exc


def _negate(cond):
    """A schema for "not cond" when cond is a type test or tests properties' const/enum."""
    if cond is True:
        return False
    if cond is False:
        return True
    if not isinstance(cond, dict):
        return None
    keys = set(cond) - ANNOTATIONS
    if keys == {"type"}:
        return {"not": {"type": cond["type"]}}
    if keys <= {"properties", "required"} and "properties" in cond:
        required = set(cond.get("required", []))
        props = cond["properties"]
        if not all(isinstance(p, dict) and set(p) - ANNOTATIONS <= {"const", "enum"} for p in props.values()):
            return None
        if set(required) - set(props):
            return None
        # not (each listed property absent-or-matching, and the required ones present):
        # some property present with a non-matching value, or a required one absent
        branches = []
        for name, p in props.items():
            values = p.get("enum", []) + ([p["const"]] if "const" in p else [])
            branches.append({"required": [name], "properties": {name: {"not": {"enum": values}}}})
            if name in required:
                branches.append({"properties": {name: False}})
        return {"anyOf": branches}
    return None
