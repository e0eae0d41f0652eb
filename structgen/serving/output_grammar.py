"""A request's output language as one grammar: the answer (free text, a JSON Schema, JSON
mode, a regex, a list of choices or a Lark grammar) and the tool calls ``tool_choice``
allows, each tool's arguments constrained by its parameter schema.

    tool_choice  "none"      → answer
                 "auto"      → answer | calls     (free text may not start with "<tool_call>")
                 "required"  → calls
                 named       → one call of that function
    calls = call+  with parallel_tool_calls (back to back), else one call

Compiled constraints are cached by (vocabulary, request spec).
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections import OrderedDict

from ..compiler import compile_grammar, compile_json_grammar, compile_json_schema
from ..constraints.base import Constraint
from ..constraints.regular import compile_choices, compile_regex
from ..grammar.compose import GrammarBuilder, text
from ..grammar.ir import Alt, Expr, Grammar, Pattern, Repeat, Seq
from ..json_schema import JsonSchemaOptions, schema_to_grammar
from ..tokenizers.vocabulary import Vocabulary
from . import tool_calls
from .protocol import OutputSpec
from .strict_schema import check_strict_schema

JSON_OBJECT_SCHEMA = {"type": "object"}
JSON_OBJECT_DEPTH = 3  # nesting of values inside a json_object answer
CACHE_SIZE = 128

_cache: OrderedDict[tuple, Constraint | None] = OrderedDict()
_lock = threading.Lock()


def output_constraint(spec: OutputSpec, vocab: Vocabulary) -> Constraint | None:
    """The constraint for a request's output, or None when the output is free text."""
    key = (vocab.fingerprint, json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    constraint = _compile(spec, vocab)
    with _lock:
        _cache[key] = constraint
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return constraint


def answer_schema(spec: OutputSpec) -> tuple[dict | bool, bool] | None:
    """(schema, strict) of a JSON answer, or None."""
    rf = spec.response_format
    if rf is None:
        return None
    if rf["type"] == "json_object":
        return JSON_OBJECT_SCHEMA, False
    js = rf["json_schema"]
    return js.get("schema", {}), bool(js.get("strict"))


def _compile(spec: OutputSpec, vocab: Vocabulary) -> Constraint | None:
    answer = answer_schema(spec)
    if answer is not None and answer[1]:
        check_strict_schema(answer[0])
    for tool in spec.tools:
        if tool["strict"]:
            check_strict_schema(tool["parameters"])
    if not spec.tools_possible:  # the answer alone: the plain compilers
        if spec.grammar is not None:
            return compile_grammar(spec.grammar, vocab, source="<request grammar>")
        if spec.regex is not None:
            return compile_regex(spec.regex, vocab)
        if spec.choices is not None:
            return compile_choices(spec.choices, vocab)
        if answer is None:
            return None
        return compile_json_schema(answer[0], vocab, strict=answer[1], any_depth=_any_depth(answer[0]))
    constraint = compile_json_grammar(lambda split, any_rule: _grammar(spec, answer, split, any_rule), vocab)
    if answer is not None:
        constraint.schema = answer[0]
    return constraint


def _any_depth(schema) -> int:
    return JSON_OBJECT_DEPTH if schema is JSON_OBJECT_SCHEMA else JsonSchemaOptions.any_depth


def _grammar(spec: OutputSpec, answer: tuple | None, split: bool, any_rule: bool) -> Grammar:
    """Answer | tool calls, as tool_choice says (only called when tools are possible)."""
    builder = GrammarBuilder(source="<request output>")
    if answer is not None:
        schema, strict = answer
        options = JsonSchemaOptions(strict=strict, split=split, any_rule=any_rule, any_depth=_any_depth(schema))
        answer_expr: Expr | None = builder.embed(schema_to_grammar(schema, options).grammar, "answer_")
    elif spec.regex is not None:
        answer_expr = Pattern(spec.regex)
    elif spec.choices is not None:
        answer_expr = Alt(tuple(text(c) for c in spec.choices))
    else:
        answer_expr = None  # free text
    allowed = [t for t in spec.tools if spec.tool_choice != "function" or t["name"] == spec.tool_name]
    calls = []
    for i, tool in enumerate(allowed):
        options = JsonSchemaOptions(strict=tool["strict"], split=split, any_rule=any_rule)
        arguments = builder.embed(schema_to_grammar(tool["parameters"], options).grammar, f"tool{i}_")
        calls.append(Seq((text(tool_calls.call_prefix(tool["name"])), arguments, text("}" + tool_calls.CLOSE))))
    one_call = builder.add_rule("tool_call", Alt(tuple(calls)))
    if spec.parallel_tool_calls and spec.tool_choice != "function":
        all_calls: Expr = Repeat(one_call, 1, None, separator=text(tool_calls.SEPARATOR) if tool_calls.SEPARATOR else None)
    else:
        all_calls = one_call
    if spec.tool_choice in ("required", "function"):
        return builder.build(all_calls)
    if answer_expr is None:
        answer_expr = _text_not_starting_with(tool_calls.OPEN)
    return builder.build(Alt((answer_expr, all_calls)))


def _text_not_starting_with(prefix: str) -> Expr:
    """Any text (the empty one too) that does not begin with ``prefix``."""
    options = [re.escape(prefix[:i]) + f"[^{re.escape(prefix[i])}]" + r"[\s\S]*" for i in range(len(prefix))]
    options += [re.escape(prefix[:i]) for i in range(1, len(prefix))]
    return Alt((Seq(()), Pattern("(?:" + "|".join(options) + ")")))
