"""JSON Schema: conformance against the official JSON-Schema-Test-Suite and JSONSchemaBench
(references: the suites' labels and the jsonschema validator), exact pieces (numbers vs
Decimal, strings vs json.dumps/re), masks vs brute force, Python types, errors, the model."""

from __future__ import annotations

import collections
import dataclasses
import enum
import functools
import json
import os
import re
from decimal import Decimal
from unittest import mock
from typing import Literal, Optional, TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schema_suites import bench_cases, bench_subsets, matcher_accepts, serialise, suite_cases, suite_files, SUITE_DIR
from structgen import UnsupportedSchemaError, compile_json_schema, to_json_schema, validate_json
from structgen.automata.byte_dfa import ByteDFA
from structgen.automata.expr_nfa import expr_to_nfa
from structgen.errors import CompileBudgetError
from structgen.grammar.ir import Repeat
from structgen.json_schema import numbers
from structgen.json_schema.compiler import ONE_DFA_STATES
from structgen.json_schema.strings import EmptyPattern, any_char, encode_text, pattern_expr, quoted, regex_chars_expr

from conftest import load_case
from test_grammars import brute_force_mask, words_to_ids


def _dfa(expr):
    return ByteDFA.from_nfa(expr_to_nfa(expr))


# ---- the official test suite ---------------------------------------------------------------
def _run_suite(draft: str, vocab_case, pretty: bool) -> tuple[dict, list[str]]:
    table: dict[str, collections.Counter] = {}
    false_accepts = []
    for path in suite_files(draft):
        name = os.path.relpath(path, os.path.join(SUITE_DIR, draft))
        row = table.setdefault(name, collections.Counter())
        for description, schema, tests in suite_cases(path, draft):
            try:
                constraint = compile_json_schema(schema, vocab_case.vocab, whitespace="pretty" if pretty else "flexible", timeout_s=10)
            except (UnsupportedSchemaError, CompileBudgetError):
                row["unsupported"] += len(tests)
                continue
            for instance, valid in tests:
                ok = matcher_accepts(constraint, vocab_case.encode(serialise(instance, pretty)))
                if ok and valid:
                    row["accepted"] += 1
                elif not ok and not valid:
                    row["refused"] += 1
                elif ok:
                    row["false accepts"] += 1
                    false_accepts.append(f"{name}: {description}: {json.dumps(instance)[:80]}")
                else:
                    row["false rejects"] += 1
    return table, false_accepts


def _print_table(title: str, table: dict) -> None:
    cols = ["accepted", "refused", "unsupported", "false accepts", "false rejects"]
    print(f"\n{title}\n{'file':34s}" + "".join(f"{c:>15s}" for c in cols))
    total = collections.Counter()
    for name, row in table.items():
        total.update(row)
        print(f"{name:34s}" + "".join(f"{row[c]:15d}" for c in cols))
    print(f"{'TOTAL':34s}" + "".join(f"{total[c]:15d}" for c in cols))


@pytest.mark.parametrize("draft,pretty", [("draft2020-12", False), ("draft7", False), ("draft2020-12", True)])
def test_json_schema_test_suite(draft, pretty):
    """Every instance the compiler accepts is valid (no false accept); most tests compile.
    format.json (2020-12) counts format as an annotation; structgen enforces formats, so its
    false rejects there are by design."""
    case = load_case("smollm2")
    if not os.path.isdir(os.path.join(SUITE_DIR, draft)):
        pytest.skip("JSON-Schema-Test-Suite not found")
    table, false_accepts = _run_suite(draft, case, pretty)
    _print_table(f"JSON-Schema-Test-Suite {draft}{' (pretty)' if pretty else ''}", table)
    assert not false_accepts, "\n".join(false_accepts)
    total = sum((row for row in table.values()), collections.Counter())
    assert total["accepted"] + total["refused"] > 1000


@pytest.mark.parametrize("tokenizer", ["smollm2", "tekken"])
def test_jsonschemabench_sample(tokenizer):
    """The first schemas of every JSONSchemaBench subset: labelled instances (the reference)
    fed as tokens; no false accept; most valid instances accepted."""
    case = load_case(tokenizer)
    counts = collections.Counter()
    false_accepts = []
    for subset in bench_subsets():
        for sid, schema, tests in bench_cases(subset, limit=4):
            try:
                constraint = compile_json_schema(schema, case.vocab, timeout_s=2)
            except (UnsupportedSchemaError, CompileBudgetError):
                counts["unsupported"] += 1
                continue
            counts["compiled"] += 1
            for instance, valid in tests:
                ok = matcher_accepts(constraint, case.encode(serialise(instance)))
                counts[("accepted" if ok else "refused", valid)] += 1
                if ok and not valid:
                    false_accepts.append(f"{subset}/{sid}: {json.dumps(instance)[:100]}")
    print(dict(counts))
    assert not false_accepts, "\n".join(false_accepts)
    assert counts[("accepted", True)] > 3 * counts[("refused", True)]


# ---- exact pieces --------------------------------------------------------------------------
_decimal_text = st.builds(
    lambda neg, whole, frac: ("-" if neg and (whole or frac.strip("0")) else "") + str(whole) + (f".{frac}" if frac else ""),
    st.booleans(),
    st.integers(0, 300),
    st.text("0123456789", max_size=3),
)
_bound = st.one_of(st.none(), st.decimals(min_value=-200, max_value=200, places=2, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(_bound, st.booleans(), _bound, st.booleans(), st.lists(_decimal_text, min_size=20, max_size=40))
def test_decimal_ranges_match_decimal_comparison(lo, lo_strict, hi, hi_strict, texts):
    try:
        dfa = numbers.decimal_range(lo, lo_strict, hi, hi_strict)
    except numbers.EmptyRange:
        dfa = None
    for text in texts:
        v = Decimal(text)
        expected = (lo is None or (v > lo if lo_strict else v >= lo)) and (hi is None or (v < hi if hi_strict else v <= hi))
        assert (dfa is not None and dfa.accepts(text.encode())) == expected, (lo, lo_strict, hi, hi_strict, text)


_NUMBER_SYNTAX = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")  # RFC 8259's number


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.text("0123456789.eE+-", min_size=1, max_size=8),
), min_size=20, max_size=40))  # fmt: skip
def test_numbers_without_bounds_take_any_json_number_syntax(texts):
    """A number schema without bounds accepts exactly RFC 8259's numbers (exponents too, as
    json.dumps writes 1e-06), but negative zero; bounded ones stay without exponent."""
    constraints = {s: compile_json_schema(s, load_case("smollm2").vocab) for s in ('{"type":"number"}', '{"type":"number","minimum":-1e9}')}
    for text in texts + ["1e-06", "-2.5E+300", "-0e1", "0e0"]:
        valid = bool(_NUMBER_SYNTAX.fullmatch(text))
        negative_zero = valid and text.startswith("-") and Decimal(text) == 0
        for schema, constraint in constraints.items():
            state = constraint.advance_bytes(constraint.initial_state, text.encode())
            accepted = state is not None and constraint.is_accepting(state)
            expected = valid and not negative_zero
            if "minimum" in schema:
                expected = expected and "e" not in text.lower() and Decimal(text) >= -(10**9)
            assert accepted == expected, (schema, text)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["3", "0.5", "0.01", "1.5", "7", "0.25"]), st.lists(_decimal_text, min_size=20, max_size=40))
def test_multiple_of_matches_decimal_division(step, texts):
    dfa = numbers.multiple_of(Decimal(step), integer=False)
    for text in texts:
        q = Decimal(text) / Decimal(step)
        assert dfa.accepts(text.encode()) == (q == q.to_integral_value()), (step, text)


def test_integer_ranges_exhaustive():
    for lo, hi in [(None, None), (-37, 1045), (5, 5), (0, None), (None, -3), (-3, None), (99, 1000)]:
        dfa = _dfa(numbers.integer_range(lo, hi))
        for i in range(-1200, 1200):
            assert dfa.accepts(str(i).encode()) == ((lo is None or i >= lo) and (hi is None or i <= hi)), (lo, hi, i)
        assert not dfa.accepts(b"-0") and not dfa.accepts(b"007")


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=12))
def test_strings_accept_every_serialisation(text):
    dfa = _dfa(quoted(Repeat(any_char())))
    for ensure_ascii in (True, False):
        assert dfa.accepts(json.dumps(text, ensure_ascii=ensure_ascii).encode())
    exact = _dfa(quoted(encode_text(text)))
    assert exact.accepts(json.dumps(text).encode()) and exact.accepts(json.dumps(text, ensure_ascii=False).encode())
    assert not exact.accepts(json.dumps(text + "x").encode())


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["^[a-c]+$", "ab|^c", "[0-9]{2,3}", "^\\w+@x\\.org$", "é+", "^.$"]), st.text(alphabet="abcx0123@.orgé\n\"", max_size=8))
def test_patterns_are_unanchored_searches(pattern, text):
    dfa = _dfa(quoted(pattern_expr(pattern)))
    ecma = pattern.replace("$", r"\Z")  # ECMA-262's $ matches only at the very end
    expected = re.search(ecma, text, flags=re.ASCII) is not None
    assert dfa.accepts(json.dumps(text).encode()) == expected
    assert dfa.accepts(json.dumps(text, ensure_ascii=False).encode()) == expected


_LOOK_FRAGMENTS = ["", "a", "b", "[ab]", "[^a]", ".", "a*", "b+", "c?", "(?:ab|c)", "[bc]{1,2}", "a.", "(b)"]


@st.composite
def _lookahead_patterns(draw) -> str:
    """Branches of fragments and lookaheads (with their own ``$``, alternatives and nested
    lookaheads), some inside a plain group, anchored or not at either end."""
    def fragment() -> str:
        return draw(st.sampled_from(_LOOK_FRAGMENTS))

    def lookahead(depth: int) -> str:
        bodies = [fragment() + fragment() + draw(st.sampled_from(["", "$"])) for _ in range(draw(st.integers(1, 2)))]
        if depth and draw(st.booleans()):
            bodies[0] = lookahead(depth - 1) + bodies[0]
        return draw(st.sampled_from(["(?=", "(?!"])) + "|".join(bodies) + ")"

    pieces = [fragment()]
    for _ in range(draw(st.integers(1, 2))):
        pieces += [lookahead(1), fragment()]
    if draw(st.booleans()):  # a plain group around the middle dissolves
        cut = draw(st.integers(1, len(pieces) - 1))
        pieces = pieces[:cut] + ["(" + "".join(pieces[cut:]) + ")"]
    return draw(st.sampled_from(["", "^"])) + "".join(pieces) + draw(st.sampled_from(["", "$"]))


@settings(max_examples=150, deadline=None)
@given(_lookahead_patterns(), st.lists(st.text(alphabet="abc\n", max_size=6), min_size=1, max_size=8))
def test_lookaheads_equal_python_re(pattern, texts):
    """Patterns with lookaheads (at the top level or inside plain groups) against Python's
    re.search, ``$`` read as ECMA-262's end of input."""
    reference = re.compile(pattern.replace("$", r"\Z"))
    try:
        dfa = _dfa(quoted(pattern_expr(pattern)))
    except EmptyPattern:
        assert not any(reference.search(text) for text in texts), pattern
        return
    for text in texts:
        assert dfa.accepts(json.dumps(text).encode()) == (reference.search(text) is not None), (pattern, text)


@pytest.mark.parametrize("pattern", ["(a(?=b))*", "(?:x|(?!a)b)", "(?<=a)b", "a(?=b)+", "(?i:(?=a)a)"])
def test_lookaheads_whose_scope_is_not_the_rest_are_refused(pattern):
    with pytest.raises(UnsupportedSchemaError, match="lookahead|lookbehind"):
        compile_json_schema({"type": "string", "pattern": pattern}, load_case("smollm2").vocab)


def test_uri_template_wide_class_equals_python_re():
    """uri-template's ucschar and iprivate literals (~1M code points, written in the format's
    regex as one stand-in character) against Python's re with the ranges written out."""
    from structgen.json_schema import formats

    stand_in, ranges = formats.WIDE_CLASSES[0]
    written_out = "[" + "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges) + "]"
    reference = re.compile(formats.URI_TEMPLATE.replace(stand_in, written_out))
    dfa = _dfa(quoted(regex_chars_expr(formats.URI_TEMPLATE, formats.WIDE_CLASSES)))
    texts = ["http://x/{id}", "a\u00a0b", "\u009f", "\ud7ff", "\ue000", "\ufdcf", "\ufdd0", "\ufff0", "\U0001fffd",
             "\U0001fffe", "\U000e1000", "\U000e0fff", "\U0010fffd", "\U0010ffff", "x y", "{var:12}", "{a,b*}", "%2g", "<"]
    for text in texts:
        expected = reference.fullmatch(text) is not None
        assert dfa.accepts(json.dumps(text, ensure_ascii=False).encode()) == expected, ascii(text)
        assert dfa.accepts(json.dumps(text).encode()) == expected, ascii(text)


_COMMON_REGEXES = [
    "^value1|value2$", "^[a-z0-9-]+$", r"\d{3}-\d{4}", r"^(?:[A-Z][a-z]+\s?)+$", "(ab|cd)*e?", r"^\w+@\w+\.com$",
    "^[A-Za-z_][A-Za-z0-9_]*$", r"^v?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?$", "(?!un)known", "^$", "a{2,10}?", r"[^\s\]]+",
]


_REGEX_PIECES = ["a", "b", "(", "(?:", "(?=", "(?<=", ")", "|", "[a-z]", "[^b]", "[z-a]", "[", "]", "-", "*", "+", "?",
                 "{2}", "{1,3}", "{3,1}", "{", "}", "^", "$", "\\d", "\\b", "\\1", "\\", "."]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_REGEX_PIECES), max_size=8).map("".join))
def test_regex_format_accepts_only_what_python_compiles(text):
    """``format: regex`` (a regular subset of regex syntax): every string it accepts is one
    jsonschema's format checker accepts (Python's ``re`` compiles it), and common regexes
    are accepted."""
    from jsonschema import FormatChecker

    constraint = _regex_format_constraint()

    def accepts(value: str) -> bool:
        state = constraint.advance_bytes(constraint.initial_state, json.dumps(value).encode())
        return state is not None and constraint.is_accepting(state)

    if accepts(text):
        assert FormatChecker().conforms(text, "regex"), text
    for common in _COMMON_REGEXES:
        assert accepts(common), common
    for broken in ("a**", "a{1}{2}", "[z-a]", "(", "a)", "a{3,1}", "\\b*", "^*", "[]", "[\\d-z]", "\\1", "a\\"):
        assert not FormatChecker().conforms(broken, "regex") and not accepts(broken), broken


@functools.lru_cache(maxsize=None)
def _regex_format_constraint():
    return compile_json_schema({"type": "string", "format": "regex"}, load_case("smollm2").vocab)


def test_escaped_and_control_characters_never_break_the_string():
    dfa = _dfa(quoted(Repeat(any_char())))
    for bad in [b'"a"b"', b'"\x01"', b'"\\x"', b'"\\u12"', b'"\n"']:
        assert not dfa.accepts(bad)


# ---- masks vs brute force ------------------------------------------------------------------
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Z][a-z]+$", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "exclusiveMaximum": 130},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"enum": ["a", "b", 3]}, "maxItems": 3},
        "score": {"type": "number", "minimum": -1.5, "maximum": 2.25},
    },
    "required": ["name", "age"],
}


@pytest.mark.parametrize("tokenizer", ["smollm2", "mistral-v3"])
def test_masks_equal_brute_force(tokenizer):
    """The trie-walk masks equal each token's bytes pushed through the constraint."""
    vocab = load_case(tokenizer).vocab
    constraint = compile_json_schema(SCHEMA, vocab)
    for prefix in ["", '{"name": "Al', '{"name":"Bob","age":12', '{"name":"Bob","age":1,"tags":["a",', '{"name":"Bob","age":1,"score":-1.']:
        state = constraint.advance_bytes(constraint.initial_state, prefix.encode())
        assert state is not None, prefix
        fast = words_to_ids(constraint.mask_words(state), vocab.logits_width).tolist()
        assert fast == brute_force_mask(constraint, state), prefix


COUNTED_SCHEMA = {
    "type": "object",
    "properties": {
        "flag": {"type": "string", "maxLength": 128},
        "code": {"type": "string", "minLength": 2, "maxLength": 20},
        "note": {"type": "string", "maxLength": 30, "pattern": "^[^x]*$"},
    },
    "required": ["flag"],
    "additionalProperties": False,  # (free-form values would send it to the grammar engine)
}


@pytest.mark.parametrize("tokenizer,step", [("smollm2", 1), ("tekken", 4)])
def test_counted_strings_in_the_string_body_shadow_equal_brute_force(tokenizer, step):
    """One-DFA masks inside strings whose length is counted read the string body's slice up
    to where the count runs out (RegularConstraint._shadow): at cuts all along the strings
    (multi-byte characters, the count's last positions, a pattern) the masks equal the
    brute-force ones, and the shadow was used."""
    vocab = load_case(tokenizer).vocab
    # in the schema's order: in any order its three counted strings go to the grammar engine
    constraint = compile_json_schema(COUNTED_SCHEMA, vocab, property_order="schema")
    assert type(constraint).__name__ == "RegularConstraint"
    value = {"flag": "a" * 90 + "é中文🦙 " + "b" * 30, "code": "xé", "note": "yy中é"}
    data = json.dumps(value, ensure_ascii=False).encode()
    n_words = (vocab.logits_width + 31) // 32
    shadowed = 0
    for cut in range(2, len(data), step):
        state = constraint.advance_bytes(constraint.initial_state, data[:cut])
        assert state is not None, data[:cut]
        fast = words_to_ids(constraint.mask_words(state), vocab.logits_width).tolist()
        assert fast == brute_force_mask(constraint, state), f"prefix {data[:cut]!r}"
        shadowed += constraint._shadow.reach(constraint.dfa.transitions, state, vocab.trie, n_words)[0] > 0
    assert shadowed > 80 // step


RECURSIVE_COUNTED = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 64},
                "tag": {"type": "string", "minLength": 1, "maxLength": 24},
                "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
            "required": ["name"],
        }
    },
    "$ref": "#/$defs/node",
}


@pytest.mark.parametrize("tokenizer,step", [("smollm2", 2), ("tekken", 5)])
def test_counted_strings_in_the_shadow_on_the_grammar_path_equal_brute_force(tokenizer, step):
    """The same in lexeme walks (a recursive schema: the grammar engine), where keys and
    values share lexer states: masks equal the brute-force ones, and the shadow was used."""
    vocab = load_case(tokenizer).vocab
    constraint = compile_json_schema(RECURSIVE_COUNTED, vocab)
    assert type(constraint).__name__ == "GrammarConstraint"
    value = {"name": "a" * 40 + "é中文🦙 " + "b" * 12, "tag": "xé", "kids": [{"name": "k" * 20, "kids": []}]}
    _masks_equal_brute_force_at_prefixes(constraint, vocab, json.dumps(value, ensure_ascii=False).encode(), 2, step)
    assert sum(d >= 16 for d in constraint._shadow._depths.values()) > 10


def _masks_equal_brute_force_at_prefixes(constraint, vocab, data: bytes, first: int, step: int) -> None:
    """At every ``step``-th prefix of ``data`` from ``first`` bytes on, the constraint's mask
    equals the brute-force one."""
    for cut in range(first, len(data), step):
        state = constraint.advance_bytes(constraint.initial_state, data[:cut])
        assert state is not None, data[:cut]
        fast = words_to_ids(constraint.mask_words(state), vocab.logits_width).tolist()
        assert fast == brute_force_mask(constraint, state), f"prefix {data[:cut]!r}"


RECURSIVE_WITH_FORMATS = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "severity": {"type": "string", "enum": ["low", "high"]},
                "seen": {"type": "string", "format": "date"},
                "id": {"type": "string", "format": "uuid"},
                "note": {"type": "string"},
                "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
        }
    },
    "$ref": "#/$defs/node",
}


@pytest.mark.parametrize("tokenizer, step", [("smollm2", 1), ("tekken", 3)])
def test_key_masks_read_in_the_string_body_shadow_equal_brute_force(tokenizer, step):
    """On the grammar path, a key being written (undeclared keys allowed, beside string
    values of other shapes: formats, enums) is walked in the plain string body's shadow:
    masks at every position equal the brute-force ones, and the shadow served key states."""
    vocab = load_case(tokenizer).vocab
    constraint = compile_json_schema(RECURSIVE_WITH_FORMATS, vocab)
    assert type(constraint).__name__ == "GrammarConstraint"
    value = {"seen": "2024-01-31", "severity": "high", "kids": [{"id": "123e4567-e89b-12d3-a456-426655440000", "notes": "é中"}], "sev": "x y"}
    _masks_equal_brute_force_at_prefixes(constraint, vocab, json.dumps(value, ensure_ascii=False).encode(), 1, step)
    assert sum(d >= 16 for d in constraint._shadow._depths.values()) > 5


def test_grammar_path_masks_equal_brute_force():
    """A big schema on the grammar path (JSONSchemaBench Github_hard o10495: objects as
    rules, a lexer too large to merge per view) whose instance leaves several parses in one
    lexer state, which then share one lexeme walk: those masks equal the brute-force ones."""
    schema, tests = next((s, t) for sid, s, t in bench_cases("Github_hard", limit=8) if sid == "o10495")
    vocab = load_case("smollm2").vocab
    constraint = compile_json_schema(schema, vocab)
    assert type(constraint).__name__ == "GrammarConstraint"
    text = serialise(next(instance for instance, valid in tests if valid)).encode()
    state, checked = constraint.initial_state, 0
    for cut in range(1, len(text)):
        state = constraint.advance_bytes(state, text[cut - 1 : cut])
        assert state is not None, text[:cut]
        allowed_by_state = collections.defaultdict(set)
        for q, node in state:
            allowed_by_state[q].add(node.allowed)
        if cut % 7 == 0 or any(len(sets) > 1 for sets in allowed_by_state.values()):
            fast = words_to_ids(constraint.mask_words(state), vocab.logits_width).tolist()
            assert fast == brute_force_mask(constraint, state), text[:cut]
            checked += 1
        if checked == 12:
            break
    assert checked == 12


def test_recursive_schema_uses_the_grammar_engine():
    vocab_case = load_case("smollm2")
    schema = {
        "$defs": {"node": {"type": "object", "properties": {"value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["value"], "additionalProperties": False}},
        "$ref": "#/$defs/node",
    }
    constraint = compile_json_schema(schema, vocab_case.vocab)
    assert type(constraint).__name__ == "GrammarConstraint"
    deep = {"value": 1, "children": [{"value": 2, "children": [{"value": 3, "children": [{"value": 4}]}]}, {"value": 5}]}
    assert matcher_accepts(constraint, vocab_case.encode(json.dumps(deep)))
    bad = {"value": 1, "children": [{"value": 2, "children": [{"value": "x"}]}]}
    assert not matcher_accepts(constraint, vocab_case.encode(json.dumps(bad)))


def test_one_dfa_attempt_stops_at_an_object_with_free_form_members_before_building_them():
    """An object whose undeclared members take free-form values (``additionalProperties``
    absent) ends the attempt at one DFA before its declared members are built: a member the
    compiler refuses is reported by the grammar engine's build, naming its pointer; with
    ``additionalProperties: false`` there is nothing to stop at and the member is built."""
    from structgen.json_schema import JsonSchemaOptions, schema_to_grammar

    refused = {"type": "array", "uniqueItems": True}
    schema = {"type": "object", "properties": {"a": refused}}
    with pytest.raises(CompileBudgetError):
        schema_to_grammar(schema, JsonSchemaOptions(one_dfa=True))
    with pytest.raises(UnsupportedSchemaError, match="uniqueItems.*/properties/a"):
        compile_json_schema(schema, load_case("smollm2").vocab)
    closed = {**schema, "additionalProperties": False}
    with pytest.raises(UnsupportedSchemaError, match="/properties/a"):
        schema_to_grammar(closed, JsonSchemaOptions(one_dfa=True))
    # pretty whitespace bounds free-form values: the attempt goes on
    assert schema_to_grammar({"type": "object"}, JsonSchemaOptions(one_dfa=True, whitespace="pretty")).bounded_any


def test_nfa_budget_stops_at_its_size():
    """``expr_to_nfa`` with ``max_states`` gives up exactly when the NFA it would build has
    more states than that (the one-DFA attempt's early exit)."""
    for expr in [quoted(Repeat(any_char(), 0, 40)), quoted(pattern_expr("^[a-z]{3,12}(-[0-9]+)*$")), encode_text("héllo wörld")]:
        size = expr_to_nfa(expr).n_states
        assert expr_to_nfa(expr, max_states=size).n_states == size
        with pytest.raises(CompileBudgetError):
            expr_to_nfa(expr, max_states=size - 1)


def test_schemas_over_the_nfa_budget_fall_back_to_the_grammar_engine(monkeypatch):
    """Schemas that fit one DFA compile to a RegularConstraint; with the NFA budget cut below
    their size, the same schemas take the grammar engine and still accept exactly the
    labelled valid instances (a sample of JSONSchemaBench subsets)."""
    import structgen.compiler as compiler

    vocab_case = load_case("smollm2")
    cases = [(sub, c) for sub in ("Github_easy", "Github_trivial", "Snowplow") for c in bench_cases(sub, limit=3)]
    cases = [(sub, c) for sub, c in cases if type(compile_json_schema(c[1], vocab_case.vocab)).__name__ == "RegularConstraint"]
    assert len(cases) >= 5
    monkeypatch.setattr(compiler, "ONE_DFA_NFA_RATIO", 0.001)
    checked = 0
    for sub, (sid, schema, tests) in cases:
        constraint = compile_json_schema(schema, vocab_case.vocab)
        assert type(constraint).__name__ == "GrammarConstraint", sid
        for instance, valid in tests:
            assert matcher_accepts(constraint, vocab_case.encode(serialise(instance))) == valid, (sub, sid, instance)
            checked += 1
    assert checked >= 10


# Long strings in a schema too big for one DFA: a maxLength of 256 or more makes one shared
# lexeme per string schema, and above 2,048 the characters are counted in 256-character chunks
# by the grammar. Lengths around each chunk boundary, with escapes and multi-byte characters.
_LONG_STRINGS = {"type": "object", "properties": {"a": {"type": "string", "minLength": 3, "maxLength": 2600}, "b": {"type": "string", "maxLength": 300}, "c": {"type": "string", "maxLength": 300}}, "additionalProperties": False}
_LENGTHS = [0, 2, 3, 4, 255, 256, 257, 299, 300, 301, 511, 512, 513, 2303, 2304, 2305, 2559, 2560, 2599, 2600, 2601, 2700]


@settings(max_examples=6, deadline=None)
@given(st.lists(st.sampled_from(["x", "é", "\\n", '"', "€", "\\u0000"]), min_size=1, max_size=4))
def test_long_strings_are_counted_exactly(alphabet):
    """Strings of each length in ``_LENGTHS`` drawn from ``alphabet`` are accepted exactly
    when the validator accepts the instance."""
    from jsonschema import Draft202012Validator

    constraint = _long_strings_constraint()
    assert type(constraint).__name__ == "GrammarConstraint"
    chars = [c.encode().decode("unicode_escape") if c.startswith("\\") else c for c in alphabet]
    for prop in ("a", "b", "c"):
        for length in _LENGTHS:
            value = "".join(chars[i % len(chars)] for i in range(length))
            instance = {"a": "yyy", prop: value} if prop != "a" else {prop: value}  # in schema order
            text = json.dumps(instance, separators=(",", ":"), ensure_ascii=length % 2 == 0)
            state = constraint.advance_bytes(constraint.initial_state, text.encode())
            accepted = state is not None and constraint.is_accepting(state)
            assert accepted == Draft202012Validator(_LONG_STRINGS).is_valid(instance), (prop, length, alphabet)


def test_long_string_masks_match_brute_force():
    """Inside long strings (positions far from the bound share lexeme walks) and near their
    bounds, the mask equals the brute-force mask."""
    constraint = _long_strings_constraint()
    vocab = constraint.vocab
    for prefix in ('{"a":"' + "x" * 100, '{"a":"' + "x" * 180, '{"a":"' + "é" * 2590, '{"a":"yyy","b":"' + "x" * 290):
        state = constraint.advance_bytes(constraint.initial_state, prefix.encode())
        fast = words_to_ids(constraint.mask_words(state), vocab.logits_width).tolist()
        assert fast == brute_force_mask(constraint, state), prefix[-20:]


@functools.lru_cache(maxsize=None)
def _long_strings_constraint():
    return compile_json_schema(_LONG_STRINGS, load_case("smollm2").vocab, max_states=20_000)


# Where the grammar engine runs anyway, free-form values are one recursive rule, to any depth:
# a recursive schema, and one too big for one DFA (here with a 1,000-state budget).
_FREE_FORM_CASES = {
    "recursive": (
        {
            "$defs": {"node": {"type": "object", "properties": {"meta": {}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "additionalProperties": False}},
            "$ref": "#/$defs/node",
        },
        {},
    ),
    "split": ({"type": "object", "properties": {"meta": {}, "kids": {"type": "array", "items": {}}}, "additionalProperties": False}, {"max_states": 1000}),
    # small and not recursive: one DFA would bound free-form values to any_depth levels
    "plain": ({"type": "object", "properties": {"meta": {}, "kids": {"type": "array", "items": {"type": "object", "properties": {"meta": {}}}}}}, {}),
}


@pytest.mark.parametrize("case", sorted(_FREE_FORM_CASES))
@settings(max_examples=40, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
        max_leaves=12,
    )
)
def test_free_form_values_nest_to_any_depth_where_the_grammar_engine_runs(case, value):
    """Every JSON value, at any depth, is accepted where a free-form value may stand exactly
    when the validator accepts the instance."""
    from jsonschema import Draft202012Validator

    schema = _FREE_FORM_CASES[case][0]
    constraint = _free_form_constraint(case)
    assert type(constraint).__name__ == "GrammarConstraint"
    for instance in ({"meta": value}, {"kids": [{"meta": [value, {"x": value}]}]}, {"meta": value, "extra": 1}):
        text = json.dumps(instance, separators=(",", ":"))
        state = constraint.advance_bytes(constraint.initial_state, text.encode())
        accepted = state is not None and constraint.is_accepting(state)
        assert accepted == Draft202012Validator(schema).is_valid(instance), text


def test_schemas_whose_branches_are_dropped_compile_without_grammar_warnings():
    """The compiler builds rules for branches it may then drop (a oneOf branch whose required
    property is undeclared cannot hold an instance): no GrammarWarning about them reaches the
    user, and the instances still match the validator. (Github_trivial o10026, shortened.)"""
    import warnings

    from jsonschema import Draft202012Validator

    from structgen.grammar.ir import GrammarWarning

    item = {"type": "object", "properties": {"key": {"type": "string", "maxLength": 3}, "value": {}}, "required": ["key", "value"], "additionalProperties": False}
    schema = {"type": "object", "oneOf": [
        item, {"properties": {"keyValues": {"type": "array", "items": item}}, "required": ["keys"], "additionalProperties": False},
    ]}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", GrammarWarning)
        constraint = compile_json_schema(schema, load_case("smollm2").vocab)
    for instance in ({"key": "a", "value": [1, {"b": None}]}, {"key": "abcd", "value": 1}, {"keyValues": []}, {"key": "a"}):
        text = json.dumps(instance, separators=(",", ":"))
        state = constraint.advance_bytes(constraint.initial_state, text.encode())
        accepted = state is not None and constraint.is_accepting(state)
        assert accepted == Draft202012Validator(schema).is_valid(instance), text


@functools.lru_cache(maxsize=None)
def _free_form_constraint(case: str):
    schema, budget = _FREE_FORM_CASES[case]
    return compile_json_schema(schema, load_case("smollm2").vocab, **budget)


# ---- property order --------------------------------------------------------------------------
_NAMES = ["a", "b", "cd", "e"]
_VALUES = [
    {"type": "integer"}, {"type": "string", "maxLength": 2},
    {"type": "object", "properties": {"x": {"type": "boolean"}, "y": {"type": "integer"}}, "required": ["y"], "additionalProperties": False},
]


@st.composite
def _object_schemas(draw):
    names = draw(st.lists(st.sampled_from(_NAMES), min_size=2, max_size=4, unique=True))
    schema = {"type": "object", "properties": {n: draw(st.sampled_from(_VALUES)) for n in names}}
    schema["required"] = draw(st.lists(st.sampled_from(names), unique=True, max_size=3))
    schema["additionalProperties"] = draw(st.sampled_from([True, False, {"type": "integer"}]))
    if draw(st.booleans()):
        schema["minProperties"] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        schema["maxProperties"] = draw(st.integers(max(1, schema.get("minProperties", 0)), 4))
    return schema


def _one_dfa_budget(states: int):
    """Schemas over ``states`` states go to the grammar engine (its lexer keeps its budget)."""
    return mock.patch("structgen.compiler.ONE_DFA_STATES", states)


_MEMBER_VALUES = st.one_of(st.integers(-5, 20), st.text("xy", max_size=3), st.fixed_dictionaries({"y": st.integers(0, 9)}, optional={"x": st.booleans()}))


@pytest.mark.parametrize("build", ["one DFA", "grammar engine"])
@settings(max_examples=25, deadline=None)
@given(_object_schemas(), st.lists(st.lists(st.tuples(st.sampled_from(_NAMES + ["zz"]), _MEMBER_VALUES), max_size=5), min_size=4, max_size=4))
def test_properties_in_any_order_match_the_validator(build, schema, members):
    """Objects take their declared properties in any order, each at most once, then their
    undeclared ones: an instance written so is accepted exactly when the validator accepts
    it, whatever the declared properties' order, in both builds."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    try:
        with _one_dfa_budget(1 if build == "grammar engine" else ONE_DFA_STATES):
            constraint = compile_json_schema(schema, load_case("smollm2").vocab)
    except UnsupportedSchemaError as exc:  # only when no object satisfies the schema
        assert "no JSON value satisfies" in str(exc)
        assert not any(validator.is_valid(dict(pairs)) for pairs in members)
        return
    free_form = schema["additionalProperties"] is True  # (free-form values: the grammar engine)
    assert (type(constraint).__name__ == "GrammarConstraint") == (build == "grammar engine" or free_form)
    for pairs in members:
        drawn = dict(pairs)  # one member per key, in the drawn order
        instance = {k: v for k, v in drawn.items() if k in schema["properties"]}
        instance.update((k, v) for k, v in drawn.items() if k not in schema["properties"])
        text = json.dumps(instance, separators=(",", ":"))
        state = constraint.advance_bytes(constraint.initial_state, text.encode())
        accepted = state is not None and constraint.is_accepting(state)
        assert accepted == validator.is_valid(instance), (schema, text)


@pytest.mark.parametrize("build", ["one DFA", "grammar engine"])
@settings(max_examples=20, deadline=None)
@given(_object_schemas(), st.lists(st.lists(st.tuples(st.sampled_from(_NAMES + ["zz"]), _MEMBER_VALUES), max_size=4), min_size=3, max_size=3),
       st.one_of(st.text("xy:/", max_size=4), st.integers(0, 9)))
def test_a_leading_schema_key_matches_the_validator(build, schema, members, leading):
    """A top-level object without member-count bounds may begin with a "$schema" member
    (config files name their schema first) wherever the schema allows that key undeclared:
    accepted exactly when the validator accepts the instance."""
    from jsonschema import Draft202012Validator

    schema = {k: v for k, v in schema.items() if k not in ("minProperties", "maxProperties")}
    validator = Draft202012Validator(schema)
    try:
        with _one_dfa_budget(1 if build == "grammar engine" else ONE_DFA_STATES):
            constraint = compile_json_schema(schema, load_case("smollm2").vocab)
    except UnsupportedSchemaError as exc:
        assert "no JSON value satisfies" in str(exc)
        return
    for pairs in members:
        drawn = dict(pairs)
        instance = {"$schema": leading}
        instance.update((k, v) for k, v in drawn.items() if k in schema["properties"])
        instance.update((k, v) for k, v in drawn.items() if k not in schema["properties"])
        text = json.dumps(instance, separators=(",", ":"))
        state = constraint.advance_bytes(constraint.initial_state, text.encode())
        accepted = state is not None and constraint.is_accepting(state)
        assert accepted == validator.is_valid(instance), (schema, text)


def test_property_order_options_and_duplicate_keys(smol_vocab):
    """A declared key twice is refused, undeclared keys come after the declared ones;
    ``property_order="schema"`` and objects past the
    any-order bound keep the schema's order; masks inside an object in any order equal the
    brute-force mask in the grammar engine's build."""
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a"]}

    def accepts(constraint, text):
        state = constraint.advance_bytes(constraint.initial_state, text.encode())
        return state is not None and constraint.is_accepting(state)

    any_order = compile_json_schema(schema, smol_vocab)
    assert accepts(any_order, '{"b":1,"a":2}') and accepts(any_order, '{"a":2,"b":1}')
    assert not accepts(any_order, '{"a":2,"a":1}') and not accepts(any_order, '{"b":1}')
    assert accepts(any_order, '{"b":1,"a":2,"z":3}') and not accepts(any_order, '{"b":1,"z":3,"a":2}')
    in_order = compile_json_schema(schema, smol_vocab, property_order="schema")
    assert accepts(in_order, '{"a":2,"b":1}') and not accepts(in_order, '{"b":1,"a":2}')
    wide = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(9)}}
    past_bound = compile_json_schema(wide, smol_vocab)
    assert accepts(past_bound, '{"p0":1,"p1":2}') and not accepts(past_bound, '{"p1":2,"p0":1}')
    with pytest.raises(ValueError, match="property_order"):
        compile_json_schema(schema, smol_vocab, property_order="alphabetical")
    nested = {"type": "object", "properties": {"k": schema, "m": {"type": "string"}, "n": {"type": "boolean"}}}
    with _one_dfa_budget(50):
        grammar = compile_json_schema(nested, smol_vocab)
    assert type(grammar).__name__ == "GrammarConstraint"
    for prefix in ('{"n":true,', '{"k":{"b":1,', '{"m":"x","k":{"a":1}', '{"k":{"b":1,"a":3},"n":false,"m":"'):
        state = grammar.advance_bytes(grammar.initial_state, prefix.encode())
        assert state is not None, prefix
        fast = words_to_ids(grammar.mask_words(state), smol_vocab.logits_width).tolist()
        assert fast == brute_force_mask(grammar, state), prefix


# ---- options and errors ----------------------------------------------------------------------
def test_whitespace_options(smol_vocab):
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}, "required": ["a"]}
    value = {"a": [1, 2]}
    compact = compile_json_schema(schema, smol_vocab, whitespace="compact")
    pretty = compile_json_schema(schema, smol_vocab, whitespace="pretty", indent=4)
    flexible = compile_json_schema(schema, smol_vocab)
    texts = {"compact": json.dumps(value, separators=(",", ":")), "pretty": json.dumps(value, indent=4), "default": json.dumps(value)}
    accepts = lambda c, t: c.advance_bytes(c.initial_state, t.encode()) is not None and c.is_accepting(c.advance_bytes(c.initial_state, t.encode()))  # noqa: E731
    assert accepts(compact, texts["compact"]) and not accepts(compact, texts["default"])
    assert accepts(pretty, texts["pretty"]) and not accepts(pretty, texts["compact"])
    assert accepts(flexible, texts["compact"]) and accepts(flexible, texts["default"])
    state = flexible.advance_bytes(flexible.initial_state, b'{"a": [1,')
    assert flexible.advance_bytes(state, b"  ") is None  # whitespace is bounded


def test_strict_forbids_undeclared_properties(smol_vocab):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    loose, strict = compile_json_schema(schema, smol_vocab), compile_json_schema(schema, smol_vocab, strict=True)
    text = b'{"a":1,"b":2}'
    assert loose.advance_bytes(loose.initial_state, text) is not None
    assert strict.advance_bytes(strict.initial_state, text) is None


@pytest.mark.parametrize(
    "schema,keyword,pointer",
    [
        ({"properties": {"x": {"type": "array", "uniqueItems": True}}}, "uniqueItems", "/properties/x"),
        ({"type": "object", "unevaluatedProperties": False}, "unevaluatedProperties", ""),
        ({"$ref": "http://example.com/other.json"}, "$ref", ""),
        ({"properties": {"s": {"type": "string", "format": "idn-hostname"}}}, "format", "/properties/s"),
        ({"items": {"type": "string", "pattern": "(?<=a)b"}}, "pattern", "/items"),
        ({"oneOf": [{"type": "integer"}, {"minimum": 3}]}, "oneOf", ""),
    ],
)
def test_unsupported_keywords_name_their_pointer(schema, keyword, pointer, smol_vocab):
    with pytest.raises(UnsupportedSchemaError) as info:
        compile_json_schema(schema, smol_vocab)
    assert info.value.keyword == keyword and info.value.pointer == pointer
    assert repr(pointer or "/") in str(info.value)


_OBJ = {"type": "object"}
COMBINATOR_CASES = [
    # oneOf whose object branches share only {}: {} is refused, the rest kept
    (
        {**_OBJ, "oneOf": [
            {"additionalProperties": False, "properties": {"a": {"type": "string"}}},
            {"additionalProperties": False, "properties": {"b": {"type": "integer"}}},
        ]},
        [{}, {"a": "x"}, {"b": 1}, {"a": "x", "b": 1}, {"a": 1}, {"c": 1}],
    ),
    # a property one branch requires and the other forbids
    (
        {"oneOf": [
            {**_OBJ, "required": ["k"], "properties": {"k": {}}, "additionalProperties": False},
            {**_OBJ, "properties": {"m": {"type": "string"}}, "additionalProperties": False},
        ]},
        [{}, {"k": 1}, {"m": "s"}, {"k": 1, "m": "s"}, "k"],
    ),
    # a required property whose patterns cannot both match
    (
        {"oneOf": [
            {**_OBJ, "required": ["type"], "properties": {"type": {"type": "string", "pattern": "^Abs$"}, "x": {"type": "number"}}},
            {**_OBJ, "required": ["type"], "properties": {"type": {"type": "string", "pattern": "^Add"}}},
        ]},
        [{"type": "Abs"}, {"type": "Add"}, {"type": "Addx"}, {"type": "Ab"}, {"type": "Abs", "x": 1}, {"type": 3}, {}],
    ),
    # required in one branch, declared with other values in the other
    (
        {"oneOf": [
            {**_OBJ, "properties": {"t": {"enum": ["p"]}}},
            {**_OBJ, "required": ["t"], "properties": {"t": {"enum": ["r"]}}},
        ]},
        [{}, {"t": "p"}, {"t": "r"}, {"t": "q"}, 1],
    ),
    # a branch the keywords beside oneOf make empty
    ({"type": "string", "oneOf": [{"enum": ["a", "b"]}, {"type": "integer"}]}, ["a", "c", 1]),
    # not of allOf / anyOf / of independent keywords (De Morgan)
    (
        {**_OBJ, "properties": {"site": {}, "app": {}}, "not": {"allOf": [{"required": ["site"]}, {"required": ["app"]}]}},
        [{}, {"site": 1}, {"app": 1}, {"site": 1, "app": 1}],
    ),
    ({"not": {"anyOf": [{"type": "string"}, {"type": "null"}]}}, ["x", None, 1, True, [1]]),
    (
        {**_OBJ, "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "not": {"required": ["a"], "type": "object"}},
        [{}, {"a": 1}, {"b": 2}, {"a": 1, "b": 2}],
    ),
    # a document whose base URI has no hierarchy (urn:)
    (
        {"$id": "urn:example:root", "$defs": {"s": {"type": "string", "maxLength": 2}}, "properties": {"x": {"$ref": "#/$defs/s"}}},
        [{"x": "ab"}, {"x": "abc"}, {}],
    ),
    ({**_OBJ, "propertyNames": {"pattern": "^a"}}, [{"ab": 1}, {"b": 1}, {}, {"ab": 1, "ba": 2}]),
    # parts of an allOf that disagree only on vendor extensions (x-...) and unknown keywords
    (
        {"allOf": [
            {**_OBJ, "x-intellij-html-description": "a", "tsType": "A", "properties": {"n": {"type": "integer", "x-order": 1}}},
            {**_OBJ, "x-intellij-html-description": "b", "tsType": "B", "properties": {"n": {"maximum": 3, "x-order": 2}}},
        ]},
        [{"n": 2}, {"n": 4}, {"n": "2"}, {}],
    ),
    # a cycle that passes through anyOf branches only (no $ref is compiled as a reference first)
    (
        {"anyOf": [{"$ref": "#/$defs/loop"}], "$defs": {"loop": {**_OBJ, "properties": {"do": {"anyOf": [{"$ref": "#/$defs/loop"}, {"type": "integer"}]}}}}},
        [{"do": 1}, {"do": {"do": {"do": 2}}}, {"do": {"do": "x"}}, {"do": {}}, 3],
    ),
]


@pytest.mark.parametrize("schema,instances", COMBINATOR_CASES)
def test_combinators_match_the_validator(schema, instances):
    """oneOf made exact, not rewritten, references and property names: the matcher accepts
    an instance (serialised in the schema's property order) iff the jsonschema validator does."""
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    case = load_case("smollm2")
    validator = validator_for(schema)(schema, format_checker=FormatChecker())
    constraint = compile_json_schema(schema, case.vocab)
    for instance in instances:
        text = serialise(instance)
        assert matcher_accepts(constraint, case.encode(text)) == validator.is_valid(instance), text


def test_lenient_mode_reports_what_it_did_not_enforce(smol_vocab):
    schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    constraint = compile_json_schema(schema, smol_vocab, lenient=True)
    assert constraint.unenforced == ["uniqueItems at /"]
    assert not validate_json("[1,1]", schema).valid and validate_json("[1,2]", schema).valid


def test_annotations_and_unknown_keywords_are_ignored(smol_vocab):
    schema = {"title": "t", "description": "d", "examples": [1], "x-custom": 3, "type": "integer", "default": 2}
    compile_json_schema(schema, smol_vocab)


def test_validation_keywords_that_disagree_under_allof_still_raise(smol_vocab):
    schema = {"allOf": [{"type": "string", "format": "date"}, {"format": "email"}]}
    with pytest.raises(UnsupportedSchemaError) as info:
        compile_json_schema(schema, smol_vocab)
    assert info.value.keyword == "format"


def test_schemas_nested_past_the_limit_raise_naming_the_pointer(smol_vocab):
    """A schema whose values nest deeper than MAX_NESTING levels (here written out; in the
    wild, cycles through merged allOf / anyOf parts that no $ref closes) gets a clear error,
    not a RecursionError after seconds."""
    from structgen.json_schema.compiler import MAX_NESTING

    schema: dict = {"type": "integer"}
    for _ in range(MAX_NESTING + 5):
        schema = {"type": "object", "properties": {"a": schema}}
    with pytest.raises(UnsupportedSchemaError) as info:
        compile_json_schema(schema, smol_vocab)
    assert info.value.pointer.startswith("/properties/a/properties/a")


def test_objects_with_hundreds_of_properties_compile(smol_vocab):
    """Hundreds of optional properties (taken in the schema's order) nest the IR as deep:
    lowering it recurses past Python's default limit, which the compile raises for itself."""
    from jsonschema import Draft202012Validator

    names = [f"p{k}" for k in range(400)]
    props = {**{n: {"type": "integer"} for n in names}, "self": {"$ref": "#"}}  # recursive: the grammar engine
    names.append("self")
    schema = {"type": "object", "properties": props, "additionalProperties": False}
    constraint = compile_json_schema(schema, smol_vocab)
    for instance in ({"p0": 1, "p399": 2}, {n: 1 for n in names[:-1:7]}, {"p399": 1, "p0": 2}, {"p5": "x"}, {"p1": 1, "self": {"p2": 2}}):
        text = json.dumps(instance, separators=(",", ":"))
        state = constraint.advance_bytes(constraint.initial_state, text.encode())
        in_order = list(instance) == sorted(instance, key=names.index)
        expected = Draft202012Validator(schema).is_valid(instance) and in_order  # (more than 8: the schema's order)
        assert (state is not None and constraint.is_accepting(state)) == expected, text


# ---- Python types --------------------------------------------------------------------------
class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass
class Point:
    x: int
    y: float
    label: Optional[str] = None


class Movie(TypedDict):
    title: str
    year: int
    genre: Literal["drama", "comedy"]


def test_python_types_to_schema(smol_vocab):
    pydantic = pytest.importorskip("pydantic")

    class Person(pydantic.BaseModel):
        name: str
        age: int
        color: Color
        friends: list[str] = []
        address: dict[str, str] | None = None

    samples = [
        (Person, Person(name="Ann", age=3, color=Color.RED, friends=["b"]).model_dump_json()),
        (Point, json.dumps(dataclasses.asdict(Point(1, 2.5, "p")))),
        (Movie, json.dumps({"title": "M", "year": 1999, "genre": "drama"})),
        (list[Color], '["red","green"]'),
    ]
    for tp, text in samples:
        schema = to_json_schema(tp)
        assert validate_json(text, schema).valid
        constraint = compile_json_schema(tp, smol_vocab)
        state = constraint.advance_bytes(constraint.initial_state, text.encode())
        assert state is not None and constraint.is_accepting(state), (tp, text)
    movie = compile_json_schema(Movie, smol_vocab)
    assert movie.advance_bytes(movie.initial_state, b'{"title":"M","year":1999,"genre":"horror"}') is None


# ---- with the real model -------------------------------------------------------------------
def test_model_outputs_validate(smollm2):
    """One schema per JSONSchemaBench subset (the first that compiles within 3 s, on one DFA or
    on the grammar engine): every finished SmolLM2 output validates with jsonschema."""
    import structgen

    model, tokenizer = smollm2
    vocab = structgen.vocabulary_for(model, tokenizer)
    finished = 0
    engines = collections.Counter()
    for subset in bench_subsets():
        for sid, schema, _ in bench_cases(subset, limit=5):
            try:
                constraint = compile_json_schema(schema, vocab, whitespace="compact", timeout_s=3)
            except (UnsupportedSchemaError, CompileBudgetError):
                continue
            engines[type(constraint).__name__] += 1
            result = structgen.generate(
                f"Write one JSON instance of this schema:\n{json.dumps(schema)[:600]}",
                constraint=constraint, model=model, tokenizer=tokenizer, max_new_tokens=128, temperature=0.7, seed=1,
            )
            if result.completed:
                finished += 1
                check = validate_json(result.text, schema)
                assert check.valid, (subset, sid, result.text, check.errors)
            break
    print(dict(engines), "finished", finished)
    assert finished >= 3 and len(engines) == 2
