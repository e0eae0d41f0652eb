"""The server's parts without a model: request checking, the OpenAI strict subset, the output
grammar (checked against the ``jsonschema`` validator and Python string tests), and reading
tool calls back while they stream (checked against reading the whole text)."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from structgen import UnsupportedSchemaError
from structgen.serving.output_grammar import output_constraint
from structgen.serving.protocol import APIError, parse_chat_request, parse_completion_request
from structgen.serving.strict_schema import check_strict_schema
from structgen.serving.tool_calls import OPEN, ToolCallReader, render_call

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 20}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["city"],
}
TIME = {"type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}, "required": ["zone"], "additionalProperties": False}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "get_time", "parameters": TIME}},
]
ANSWER = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"], "additionalProperties": False}


def chat(**fields):
    return parse_chat_request({"messages": [{"role": "user", "content": "hi"}], **fields}, 64)


def accepts(constraint, text: str) -> bool:
    state = constraint.advance_bytes(constraint.initial_state, text.encode())
    return state is not None and constraint.is_accepting(state)


ARGUMENTS = [
    {"city": "Paris"}, {"city": "Rome", "days": 3}, {"city": "Oslo", "days": 9}, {"days": 2}, {"city": 5},
    {"city": "x" * 25}, {"city": "Lyon", "extra": True}, {"zone": "UTC"}, {"zone": "PST"}, {"zone": "CET", "x": 1}, {},
]


@pytest.mark.parametrize("choice", ["auto", "required", "none", {"type": "function", "function": {"name": "get_time"}}])
@pytest.mark.parametrize("parallel", [True, False])
def test_tool_grammar_matches_the_schemas(smol_vocab, choice, parallel):
    constraint = output_constraint(chat(tools=TOOLS, tool_choice=choice, parallel_tool_calls=parallel).output, smol_vocab)
    schemas = {"get_weather": WEATHER, "get_time": TIME}
    if choice == "none":
        assert constraint is None  # free text, nothing to enforce
        return
    allowed = set(schemas) if not isinstance(choice, dict) else {"get_time"}
    calls = []
    for name in schemas:
        for args in ARGUMENTS:
            valid = name in allowed and jsonschema.Draft202012Validator(schemas[name]).is_valid(args)
            calls.append((render_call(name, json.dumps(args)), valid))
            assert accepts(constraint, calls[-1][0]) == valid, (name, args)
    good = [c for c, ok in calls if ok]
    bad = [c for c, ok in calls if not ok]
    assert accepts(constraint, good[0] + good[-1]) == (parallel and not isinstance(choice, dict))
    assert not accepts(constraint, good[0] + bad[0])
    for text in ["Hello!", "", "<tool", "The answer is <tool_call>"]:
        assert accepts(constraint, text) == (choice == "auto"), text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<tool_call>\n{}ab é")), max_size=16))
def test_auto_free_text_is_any_text_not_starting_a_call(smol_vocab, text):
    constraint = output_constraint(chat(tools=TOOLS, tool_choice="auto").output, smol_vocab)
    if not text.startswith(OPEN):
        assert accepts(constraint, text)
    else:
        assert not accepts(constraint, text)


def test_tools_with_a_response_format(smol_vocab):
    rf = {"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER, "strict": True}}
    constraint = output_constraint(chat(tools=TOOLS, response_format=rf).output, smol_vocab)
    for answer in [{"answer": "yes"}, {"answer": 1}, {"answer": "no", "more": 2}, {}]:
        assert accepts(constraint, json.dumps(answer)) == jsonschema.Draft202012Validator(ANSWER).is_valid(answer)
    assert accepts(constraint, render_call("get_time", '{"zone": "UTC"}'))
    assert not accepts(constraint, "free text")


def test_json_object_mode_accepts_objects_only(smol_vocab):
    constraint = output_constraint(chat(response_format={"type": "json_object"}).output, smol_vocab)
    for value in [{}, {"a": [1, {"b": None}]}, {"x": "y", "n": -2.5}]:
        assert accepts(constraint, json.dumps(value))
    for value in [[], "s", 3, None]:
        assert not accepts(constraint, json.dumps(value))


def test_extensions_compile(smol_vocab):
    c = output_constraint(chat(regex=r"\d{3}").output, smol_vocab)
    assert accepts(c, "123") and not accepts(c, "12")
    c = output_constraint(chat(choices=["red", "green"]).output, smol_vocab)
    assert accepts(c, "green") and not accepts(c, "blue")
    c = output_constraint(chat(grammar='start: "a" start | "b"').output, smol_vocab)
    assert accepts(c, "aab") and not accepts(c, "aa")


@pytest.mark.parametrize(
    "schema, keyword, pointer",
    [
        ({"type": "array"}, "type", ""),
        ({"anyOf": [{"type": "object"}]}, "type", ""),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, "additionalProperties", ""),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}, "required", ""),
        (
            {"type": "object", "properties": {"a": {"type": "string", "minLength": 2, "x-y": 1}}, "required": ["a"], "additionalProperties": False},
            "x-y", "/properties/a",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "object", "properties": {}}}, "required": ["a"], "additionalProperties": False},
            "additionalProperties", "/properties/a",
        ),
        ({"type": "object", "properties": {}, "additionalProperties": False, "allOf": []}, "allOf", ""),
    ],
)
def test_strict_mode_refuses_what_openai_refuses(schema, keyword, pointer):
    with pytest.raises(UnsupportedSchemaError) as info:
        check_strict_schema(schema)
    assert info.value.keyword == keyword and info.value.pointer == pointer


def test_strict_mode_accepts_the_openai_subset():
    check_strict_schema({
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Z]"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]},
        },
        "required": ["name", "tags", "next"],
        "additionalProperties": False,
        "$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}}, "required": ["v"], "additionalProperties": False}},
    })


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"logprobs": True}, "logprobs"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"guided_json": {}}, "guided_json"),
        ({"n": 0}, "n"),
        ({"temperature": 3}, "temperature"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "bad name!", "schema": {}}}}, "response_format.json_schema.name"),
        ({"response_format": {"type": "json_object"}, "regex": "a"}, "regex"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ],
)
def test_requests_the_server_cannot_honour_are_refused(fields, param):
    with pytest.raises(APIError) as info:
        chat(**fields)
    assert info.value.status == 400 and info.value.param == param


def test_neutral_fields_at_their_defaults_pass():
    r = chat(frequency_penalty=0, presence_penalty=0, logprobs=False, user="u", stream=True, stream_options={"include_usage": True})
    assert r.stream and r.include_usage
    assert parse_completion_request({"prompt": ["a", "b"], "n": 2}, 8).sampling.n == 2
    with pytest.raises(APIError):
        parse_completion_request({"prompt": [1, 2, 3]}, 8)


CALLS = [("get_weather", '{"city": "Paris"}'), ("get_time", '{"zone": "UTC"}'), ("f", '{"s": "}\\"{"}')]


@pytest.mark.parametrize("count", [1, 2, 3])
def test_streamed_tool_calls_equal_the_whole_text(count):
    text = "".join(render_call(n, a) for n, a in CALLS[:count])
    whole = ToolCallReader()
    whole.feed(text, final=True)
    assert [(c.name, c.arguments, c.complete) for c in whole.calls] == [(n, a, True) for n, a in CALLS[:count]]
    streamed = ToolCallReader()
    names, arguments = [], {}
    for end in range(1, len(text) + 1):
        content, deltas = streamed.feed(text[:end], final=end == len(text))
        assert content == ""
        for index, call, new, piece in deltas:
            if new:
                names.append(call.name)
            arguments[index] = arguments.get(index, "") + piece
    assert names == [n for n, _ in CALLS[:count]]
    assert [arguments[i] for i in range(count)] == [a for _, a in CALLS[:count]]


def test_reader_passes_text_through_and_holds_a_possible_call_back():
    reader = ToolCallReader()
    assert reader.feed("<tool") == ("", [])  # could still become a call
    assert reader.feed("<tool_x") == ("<tool_x", [])
    reader = ToolCallReader()
    assert reader.feed("<to") == ("", [])
    assert reader.feed("<to", final=True) == ("<to", [])
    assert ToolCallReader(tools_possible=False).feed("<tool_call>\n") == ("<tool_call>\n", [])
