"""``structgen.Generator`` (compiled once, called many times, streaming) and partial JSON
parsing, checked against ``json.loads``, pydantic and lark."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import structgen
from structgen import parse_partial_json

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


def extends(small, big) -> bool:
    """Whether a partial value ``small`` is on the way to ``big`` (numbers may still grow)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and extends(v, big[k]) for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(small) <= len(big) and all(extends(a, b) for a, b in zip(small, big))
    if isinstance(small, str):
        return isinstance(big, str) and big.startswith(small)
    if isinstance(small, (int, float)) and not isinstance(small, bool):
        return isinstance(big, (int, float)) and not isinstance(big, bool)
    return small == big


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from([None, 2]), st.booleans())
def test_partial_json_grows_towards_the_whole_value(value, indent, ascii_only):
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    expected = json.loads(text)
    for end in range(len(text) + 1):
        partial = parse_partial_json(text[:end])
        if partial is not None:
            assert extends(partial, expected), (text[:end], partial)
    assert parse_partial_json(text) == expected


@pytest.mark.parametrize("text", ['{"a" 1}', "[1 2]", "nul!", '{"a": 1}}', "{1: 2}"])
def test_partial_json_refuses_what_cannot_start_json(text):
    with pytest.raises(ValueError):
        parse_partial_json(text)


def test_a_bare_string_output_type_is_refused():
    with pytest.raises(TypeError, match="ambiguous"):
        structgen.output_types.constraint_arguments(r"\d+")


class City(BaseModel):
    name: str
    country: str
    population: int


@pytest.mark.model
def test_generator_returns_objects_and_streams_them(smollm2):
    model, tokenizer = smollm2
    generator = structgen.Generator(City, model, tokenizer)
    prompt = "Describe Paris as JSON with name, country and population."
    city = generator(prompt, temperature=0, max_new_tokens=48)
    assert isinstance(city, City)
    again = generator([prompt, prompt], temperature=0, max_new_tokens=48)
    assert again == [city, city]
    parts = list(generator.stream(prompt, temperature=0, max_new_tokens=48))
    assert parts[-1].done and parts[-1].value == city
    assert "".join(p.delta for p in parts) == parts[-1].text == parts[-1].result.text
    whole = json.loads(parts[-1].text)
    for p in parts[:-1]:
        assert not p.done and (p.value is None or extends(p.value, whole))


@pytest.mark.model
def test_generator_output_types(smollm2):
    model, tokenizer = smollm2
    assert structgen.Generator(["yes", "no"], model, tokenizer)("Is water wet?", temperature=0) in ("yes", "no")
    year = structgen.Generator(structgen.Regex(r"(19|20)\d\d"), model, tokenizer)("When did WW2 end?", temperature=0)
    assert len(year) == 4 and year.isdigit()
    tree = structgen.Generator(structgen.Lark('start: N "+" N\nN: /[0-9]{1,3}/'), model, tokenizer)(
        "Write an addition.", temperature=0, max_new_tokens=16)
    assert tree.data == "start" and len(tree.children) == 2
    with pytest.raises(structgen.IncompleteOutputError):
        structgen.Generator(City, model, tokenizer)("Describe Rome.", max_new_tokens=3, temperature=0)


@pytest.mark.model
def test_closing_a_stream_stops_the_generation(smollm2):
    model, tokenizer = smollm2
    stream = structgen.Generator(structgen.Regex("[a-z ]{1,400}"), model, tokenizer).stream("Tell a story.", max_new_tokens=300)
    next(stream)
    stream.close()  # returns once the decode thread has stopped
