"""The OpenAI wire format: request bodies checked and turned into plain objects, errors in
OpenAI's shape. A field the server does not honour is a 400 that names it — never a 200
with the field silently dropped."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_N = 16
MAX_STOP = 4


class APIError(Exception):
    """An error answered as ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float | None = None
    top_k: int | None = None
    n: int = 1
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


@dataclass
class OutputSpec:
    """What constrains the output: at most one answer format (``response_format`` or a
    structgen extension) and the tools the model may call."""

    response_format: dict | None = None  # {"type": "text" | "json_object" | "json_schema", ...}
    regex: str | None = None
    grammar: str | None = None
    choices: list[str] | None = None
    tools: list[dict] = field(default_factory=list)  # the "function" objects
    tool_choice: str = "none"  # "none" | "auto" | "required" | "function"
    tool_name: str | None = None  # the named function
    parallel_tool_calls: bool = True

    @property
    def tools_possible(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"


@dataclass
class Request:
    """What both endpoints share."""

    model: str | None
    sampling: SamplingParams
    output: OutputSpec
    stream: bool = False
    include_usage: bool = False


@dataclass
class ChatRequest(Request):
    messages: list[dict] = field(default_factory=list)


@dataclass
class CompletionRequest(Request):
    prompts: list[str] = field(default_factory=list)


# Fields that change nothing at their default value; any other value is refused.
_NEUTRAL = {
    "frequency_penalty": (0, 0.0, None),
    "presence_penalty": (0, 0.0, None),
    "logprobs": (False, None),
    "top_logprobs": (0, None),
    "logit_bias": (None,),
    "service_tier": (None, "auto", "default"),
    "modalities": (None, ["text"]),
    "audio": (None,),
    "prediction": (None,),
    "echo": (False, None),
    "suffix": (None,),
    "best_of": (None, 1),
}
_IGNORED = {"user", "metadata", "store"}  # bookkeeping fields with no effect on the output
_EXTENSIONS = {"regex", "grammar", "choices", "top_k"}
_SAMPLING = {"temperature", "top_p", "n", "seed", "stop", "max_tokens", "stream", "stream_options", "model"}
CHAT_FIELDS = _SAMPLING | _EXTENSIONS | _IGNORED | {
    "messages", "max_completion_tokens", "response_format", "tools", "tool_choice", "parallel_tool_calls",
    "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs", "logit_bias", "service_tier", "modalities",
    "audio", "prediction",
}
COMPLETION_FIELDS = _SAMPLING | _EXTENSIONS | _IGNORED | {
    "prompt", "response_format", "frequency_penalty", "presence_penalty", "logprobs", "logit_bias", "echo",
    "suffix", "best_of",
}


def parse_chat_request(body: Any, default_max_tokens: int) -> ChatRequest:
    _check_fields(body, CHAT_FIELDS)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError("'messages' must be a non-empty list", param="messages")
    checked = [_message(m, i) for i, m in enumerate(messages)]
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    sampling = _sampling(body, max_tokens, default_max_tokens)
    output = _output(body)
    _tools(body, output)
    stream, include_usage = _stream(body)
    return ChatRequest(body.get("model"), sampling, output, stream, include_usage, messages=checked)


def parse_completion_request(body: Any, default_max_tokens: int) -> CompletionRequest:
    _check_fields(body, COMPLETION_FIELDS)
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = list(prompt)
    else:
        raise APIError("'prompt' must be a string or a non-empty list of strings (token-id prompts are not supported)", param="prompt")
    sampling = _sampling(body, body.get("max_tokens", 16), default_max_tokens)
    if sampling.n * len(prompts) > MAX_N:
        raise APIError(f"n times the number of prompts must be at most {MAX_N}", param="n")
    stream, include_usage = _stream(body)
    return CompletionRequest(body.get("model"), sampling, _output(body), stream, include_usage, prompts=prompts)


def _check_fields(body: Any, known: set[str]) -> None:
    if not isinstance(body, dict):
        raise APIError("the request body must be a JSON object")
    unknown = sorted(set(body) - known)
    if unknown:
        raise APIError(f"unsupported field(s): {', '.join(unknown)}", param=unknown[0], code="unsupported_parameter")
    for name, neutral in _NEUTRAL.items():
        if name in body and body[name] not in neutral:
            raise APIError(f"'{name}' is not supported (only {neutral[0]!r})", param=name, code="unsupported_parameter")


def _number(body: dict, name: str, lo: float, hi: float, default: Any) -> Any:
    v = body.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise APIError(f"'{name}' must be a number in [{lo}, {hi}]", param=name)
    return v


def _sampling(body: dict, max_tokens: Any, default_max_tokens: int) -> SamplingParams:
    if max_tokens is None:
        max_tokens = default_max_tokens
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise APIError("'max_tokens' must be a positive integer", param="max_tokens")
    top_p = _number(body, "top_p", 0, 1, None)
    if top_p is not None and top_p <= 0:
        raise APIError("'top_p' must be greater than 0", param="top_p")
    n = 1 if body.get("n") is None else body["n"]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise APIError(f"'n' must be an integer from 1 to {MAX_N}", param="n")
    top_k = _number(body, "top_k", -1, 1 << 30, None)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise APIError("'seed' must be an integer", param="seed")
    stop = body.get("stop")
    if stop is None:
        stops = []
    elif isinstance(stop, str):
        stops = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= MAX_STOP:
        stops = list(stop)
    else:
        raise APIError(f"'stop' must be a string or a list of at most {MAX_STOP} strings", param="stop")
    if any(s == "" for s in stops):
        raise APIError("'stop' strings must not be empty", param="stop")
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=float(_number(body, "temperature", 0, 2, 1.0)),
        top_p=None if top_p in (None, 1) else float(top_p),
        top_k=None if top_k in (None, -1, 0) else int(top_k),
        n=n,
        seed=seed,
        stop=stops,
    )


def _stream(body: dict) -> tuple[bool, bool]:
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise APIError("'stream' must be a boolean", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict) or set(options) - {"include_usage", "include_obfuscation"}:
        raise APIError("'stream_options' supports only 'include_usage'", param="stream_options")
    return stream, bool(options.get("include_usage"))


def _message(m: Any, i: int) -> dict:
    where = f"messages[{i}]"
    if not isinstance(m, dict):
        raise APIError(f"{where} must be an object", param=where)
    role = m.get("role")
    if role not in ("system", "developer", "user", "assistant", "tool"):
        raise APIError(f"{where}.role must be system, developer, user, assistant or tool", param=f"{where}.role")
    content = m.get("content")
    if isinstance(content, list):
        parts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                raise APIError(f"{where}.content[{j}]: only text parts are supported", param=f"{where}.content")
            parts.append(part.get("text") or part.get("refusal") or "")
        content = "".join(parts)
    elif content is not None and not isinstance(content, str):
        raise APIError(f"{where}.content must be a string or a list of text parts", param=f"{where}.content")
    if content is None and not (role == "assistant" and m.get("tool_calls")):
        if role != "assistant":
            raise APIError(f"{where}.content is required", param=f"{where}.content")
        content = ""
    out = {"role": role, "content": content or ""}
    if role == "assistant" and m.get("tool_calls"):
        calls = m["tool_calls"]
        if not isinstance(calls, list):
            raise APIError(f"{where}.tool_calls must be a list", param=f"{where}.tool_calls")
        out["tool_calls"] = []
        for j, call in enumerate(calls):
            fn = call.get("function") if isinstance(call, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(fn.get("arguments", ""), str):
                raise APIError(f"{where}.tool_calls[{j}] needs function.name and function.arguments (a JSON string)",
                               param=f"{where}.tool_calls")
            out["tool_calls"].append({"id": call.get("id"), "name": fn["name"], "arguments": fn.get("arguments") or "{}"})
    if role == "tool":
        out["tool_call_id"] = m.get("tool_call_id")
    return out


def _output(body: dict) -> OutputSpec:
    spec = OutputSpec()
    rf = body.get("response_format")
    if rf is not None:
        if not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object", "json_schema"):
            raise APIError("response_format.type must be 'text', 'json_object' or 'json_schema'", param="response_format")
        if rf["type"] == "json_schema":
            js = rf.get("json_schema")
            if not isinstance(js, dict):
                raise APIError("response_format.json_schema must be an object", param="response_format.json_schema")
            if not isinstance(js.get("name"), str) or not NAME_RE.match(js["name"]):
                raise APIError("response_format.json_schema.name must be 1-64 letters, digits, '_' or '-'",
                               param="response_format.json_schema.name")
            schema = js.get("schema", {})
            if not isinstance(schema, (dict, bool)):
                raise APIError("response_format.json_schema.schema must be a JSON Schema object", param="response_format.json_schema.schema")
            if not isinstance(js.get("strict", False), (bool, type(None))):
                raise APIError("response_format.json_schema.strict must be a boolean", param="response_format.json_schema.strict")
        if rf["type"] != "text":
            spec.response_format = rf
    given = [k for k in ("regex", "grammar", "choices") if body.get(k) is not None]
    if len(given) + (spec.response_format is not None) > 1:
        raise APIError("give at most one of response_format (json), regex, grammar, choices", param=given[-1])
    if body.get("regex") is not None and not isinstance(body["regex"], str):
        raise APIError("'regex' must be a string", param="regex")
    if body.get("grammar") is not None and not isinstance(body["grammar"], str):
        raise APIError("'grammar' must be Lark grammar text", param="grammar")
    choices = body.get("choices")
    if choices is not None and (not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices)):
        raise APIError("'choices' must be a non-empty list of strings", param="choices")
    spec.regex, spec.grammar, spec.choices = body.get("regex"), body.get("grammar"), choices
    return spec


def _tools(body: dict, spec: OutputSpec) -> None:
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise APIError("'tools' must be a list", param="tools")
    names = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            raise APIError(f"{where}: only {{'type': 'function', 'function': {{...}}}} tools are supported", param=where)
        fn = tool["function"]
        name = fn.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise APIError(f"{where}.function.name must be 1-64 letters, digits, '_' or '-'", param=f"{where}.function.name")
        if name in names:
            raise APIError(f"{where}: the function name {name!r} is used twice", param=f"{where}.function.name")
        names.add(name)
        params = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            raise APIError(f"{where}.function.parameters must be a JSON Schema object", param=f"{where}.function.parameters")
        spec.tools.append({"name": name, "description": fn.get("description"), "parameters": params,
                           "strict": bool(fn.get("strict"))})
    choice = body.get("tool_choice")
    if choice is None:
        choice = "auto" if tools else "none"
    if isinstance(choice, dict):
        fn = choice.get("function")
        if choice.get("type") != "function" or not isinstance(fn, dict) or fn.get("name") not in names:
            raise APIError("tool_choice names a function that is not in 'tools'", param="tool_choice")
        spec.tool_choice, spec.tool_name = "function", fn["name"]
    elif choice in ("none", "auto", "required"):
        if choice == "required" and not tools:
            raise APIError("tool_choice 'required' needs 'tools'", param="tool_choice")
        spec.tool_choice = choice
    else:
        raise APIError("tool_choice must be 'none', 'auto', 'required' or a named function", param="tool_choice")
    parallel = body.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise APIError("'parallel_tool_calls' must be a boolean", param="parallel_tool_calls")
    spec.parallel_tool_calls = parallel
    if spec.tools_possible and spec.grammar is not None:
        raise APIError("a Lark 'grammar' cannot be combined with tools (give tool_choice 'none')", param="grammar")
