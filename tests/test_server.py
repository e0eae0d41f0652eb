"""The OpenAI-compatible server driven by real clients (``openai``, ``langchain-openai``) over
loopback HTTP, with the default model. Outputs are checked with the ``jsonschema`` validator
and pydantic, never with structgen's own matcher."""

from __future__ import annotations

import concurrent.futures
import json
import time

import httpx
import jsonschema
import pytest
from pydantic import BaseModel

pytestmark = pytest.mark.model

openai = pytest.importorskip("openai")

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0, "maximum": 120}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 30}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The current time in a time zone",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string", "maxLength": 20}}, "required": ["zone"]},
    },
}
SCHEMAS = {"get_weather": WEATHER_TOOL["function"]["parameters"], "get_time": TIME_TOOL["function"]["parameters"]}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture(scope="module")
def server(smollm2):
    from structgen.serving import BackgroundServer

    model, tokenizer = smollm2
    with BackgroundServer(model, tokenizer, model_id="smollm2") as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=120)


def valid(schema, text: str) -> bool:
    try:
        return jsonschema.Draft202012Validator(schema).is_valid(json.loads(text))
    except ValueError:
        return False


def check_tool_calls(message, names=SCHEMAS) -> None:
    assert message.tool_calls, message
    for call in message.tool_calls:
        assert call.id.startswith("call_") and call.type == "function"
        assert call.function.name in names
        assert valid(SCHEMAS[call.function.name], call.function.arguments), call.function.arguments


def test_models_endpoint(client):
    assert [m.id for m in client.models.list().data] == ["smollm2"]


def test_json_schema_output_validates(client):
    r = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Invent a person. Reply in JSON with name and age."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}},
        max_tokens=40, temperature=0,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "stop"
    assert valid(PERSON, choice.message.content), choice.message.content
    assert r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 0


def test_parse_with_a_pydantic_model(client):
    r = client.chat.completions.parse(
        model="smollm2", messages=[{"role": "user", "content": "Invent a person with a name and an age, as JSON."}],
        response_format=Person, max_tokens=40, temperature=0,
    )
    assert isinstance(r.choices[0].message.parsed, Person)


def test_json_object_mode(client):
    r = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Describe a cat as a JSON object."}],
        response_format={"type": "json_object"}, max_tokens=60, temperature=0,
    )
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(r.choices[0].message.content), dict)
    else:  # cut by max_tokens: a prefix of an object
        assert r.choices[0].message.content.lstrip().startswith("{")


@pytest.mark.parametrize("tool_choice", ["required", {"type": "function", "function": {"name": "get_time"}}])
def test_forced_tool_calls_validate(client, tool_choice):
    r = client.chat.completions.create(
        model="smollm2", messages=ASK_WEATHER, tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=tool_choice,
        max_tokens=60, temperature=0,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    names = SCHEMAS if tool_choice == "required" else {"get_time"}
    check_tool_calls(choice.message, names)
    if isinstance(tool_choice, dict):
        assert len(choice.message.tool_calls) == 1


def test_tool_choice_auto_is_text_or_a_valid_call(client):
    for temperature, seed in [(0, None), (1.0, 1), (1.0, 2)]:
        r = client.chat.completions.create(
            model="smollm2", messages=ASK_WEATHER, tools=[WEATHER_TOOL], tool_choice="auto", max_tokens=40,
            temperature=temperature, seed=seed,
        )
        message = r.choices[0].message
        if message.tool_calls:
            check_tool_calls(message)
        else:
            assert message.content and not message.content.startswith("<tool_call>")


def test_tool_choice_none_answers_in_text(client):
    r = client.chat.completions.create(
        model="smollm2", messages=ASK_WEATHER, tools=[WEATHER_TOOL], tool_choice="none", max_tokens=20, temperature=0,
    )
    assert r.choices[0].message.tool_calls is None and r.choices[0].message.content


def test_tools_and_response_format_together(client):
    r = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Who are you? Answer as JSON with name and age."}],
        tools=[WEATHER_TOOL], tool_choice="auto", max_tokens=40, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}},
    )
    message = r.choices[0].message
    if message.tool_calls:
        check_tool_calls(message)
    else:
        assert valid(PERSON, message.content), message.content


def test_tool_results_in_the_history(client):
    messages = ASK_WEATHER + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'},
    ]
    r = client.chat.completions.create(model="smollm2", messages=messages, tools=[WEATHER_TOOL], tool_choice="none",
                                       max_tokens=20, temperature=0)
    assert r.choices[0].message.content


def test_streaming_text_equals_the_whole_answer(client):
    kwargs = dict(model="smollm2", messages=[{"role": "user", "content": "Name three colors."}], max_tokens=24, temperature=0)
    response = client.chat.completions.create(**kwargs)
    whole = response.choices[0]
    pieces, finish, usage = [], None, None
    for chunk in client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}):
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            pieces.append(c.delta.content or "")
            finish = c.finish_reason or finish
    assert "".join(pieces) == whole.message.content and finish == whole.finish_reason
    assert usage is not None and usage.completion_tokens == response.usage.completion_tokens


def test_streaming_tool_call_arguments(client):
    stream = client.chat.completions.create(
        model="smollm2", messages=ASK_WEATHER, tools=[WEATHER_TOOL], tool_choice="required", max_tokens=60,
        temperature=0, stream=True,
    )
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        for c in chunk.choices:
            finish = c.finish_reason or finish
            for tc in c.delta.tool_calls or []:
                entry = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                if tc.id:
                    assert entry["id"] is None  # sent once
                    entry["id"], entry["name"] = tc.id, tc.function.name
                entry["arguments"] += tc.function.arguments or ""
    assert finish == "tool_calls" and calls
    for entry in calls.values():
        assert entry["id"] and entry["name"] == "get_weather"
        assert valid(SCHEMAS["get_weather"], entry["arguments"]), entry["arguments"]


def test_bad_requests_are_400_in_openai_shape(client, server):
    with pytest.raises(openai.BadRequestError) as info:  # a keyword structgen cannot enforce
        client.chat.completions.create(
            model="smollm2", messages=ASK_WEATHER,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "unevaluatedProperties": False}}},
        )
    assert "unevaluatedProperties" in str(info.value)
    with pytest.raises(openai.BadRequestError):  # a malformed schema
        client.chat.completions.create(
            model="smollm2", messages=ASK_WEATHER,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "objekt"}}},
        )
    with pytest.raises(openai.BadRequestError) as info:  # outside OpenAI's strict subset
        client.chat.completions.create(
            model="smollm2", messages=ASK_WEATHER,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}},
        )
    assert "additionalProperties" in str(info.value)
    with pytest.raises(openai.BadRequestError):  # a field the server does not honour
        client.chat.completions.create(model="smollm2", messages=ASK_WEATHER, logprobs=True)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=ASK_WEATHER)
    r = httpx.post(server.base_url + "/chat/completions", content=b"{not json", timeout=30)
    assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_structgen_extensions_and_completions(client):
    r = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Pick a color."}],
                                       extra_body={"choices": ["red", "green", "blue"]}, max_tokens=8, temperature=0)
    assert r.choices[0].message.content in ("red", "green", "blue")
    r = client.completions.create(model="smollm2", prompt="The year the war ended:", max_tokens=8, temperature=0,
                                  extra_body={"regex": r" (19|20)\d\d"})
    assert r.choices[0].text[1:].isdigit() and len(r.choices[0].text) == 5 and r.choices[0].finish_reason == "stop"
    r = client.completions.create(model="smollm2", prompt=["One, two,", "A, B,"], max_tokens=6, temperature=1.0, n=2, seed=3,
                                  stop=["\n"])
    assert len(r.choices) == 4 and all("\n" not in c.text for c in r.choices)


def test_n_and_seed(client):
    kwargs = dict(model="smollm2", messages=[{"role": "user", "content": "Say a number."}], max_tokens=6, temperature=1.0,
                  n=3, seed=7, extra_body={"regex": r"[0-9]{1,4}"})
    first = [c.message.content for c in client.chat.completions.create(**kwargs).choices]
    again = [c.message.content for c in client.chat.completions.create(**kwargs).choices]
    assert first == again and all(t.isdigit() for t in first)


def test_langchain_structured_output_and_tools(server):
    langchain_openai = pytest.importorskip("langchain_openai")
    llm = langchain_openai.ChatOpenAI(base_url=server.base_url, api_key="x", model="smollm2", temperature=0, max_tokens=60)
    person = llm.with_structured_output(Person).invoke("Invent a person with a name and an age.")
    assert isinstance(person, Person)

    def get_weather(city: str, unit: str) -> str:
        """The current weather in a city; unit is celsius or fahrenheit."""
        return "sunny"

    message = llm.bind_tools([get_weather], tool_choice="required").invoke("What is the weather in Paris?")
    assert message.tool_calls and message.tool_calls[0]["name"] == "get_weather"
    assert set(message.tool_calls[0]["args"]) <= {"city", "unit"}


def test_twenty_concurrent_clients(server, client):
    def ask(i: int) -> str:
        r = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": f"Invent person number {i} as JSON."}],
            response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}},
            max_tokens=40, temperature=1.0, seed=i,
        )
        assert r.choices[0].finish_reason == "stop"
        return r.choices[0].message.content

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        outputs = list(pool.map(ask, range(20)))
    assert all(valid(PERSON, o) for o in outputs), outputs
    assert time.monotonic() - started < 300
    health = httpx.get(f"http://{server.host}:{server.port}/health", timeout=10).json()
    assert health == {"status": "ok", "waiting": 0, "active_rows": 0}


def test_a_client_that_leaves_frees_its_slot(server, client):
    engine = server.app.state.structgen.engine
    stream = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Tell a long story."}],
                                            max_tokens=2000, temperature=1.0, stream=True)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    deadline = time.monotonic() + 30
    while engine.active_rows and time.monotonic() < deadline:
        time.sleep(0.1)
    assert engine.active_rows == 0
    assert client.chat.completions.create(model="smollm2", messages=ASK_WEATHER, max_tokens=4).choices[0].message.content
