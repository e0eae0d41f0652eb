"""The OpenAI-compatible HTTP server (FastAPI): ``/v1/chat/completions`` with
``response_format``, ``tools`` / ``tool_choice`` and streaming, ``/v1/completions``,
``/v1/models``. Every request's output is constrained by the grammar of its fields (see
:mod:`.output_grammar`); what cannot be enforced is a 400 in OpenAI's error shape."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..errors import StructgenError
from ..generation.decode import vocabulary_for
from .chat_prompt import chat_prompt_ids
from .engine import Delta, Engine, EngineRequest
from .output_grammar import output_constraint
from .protocol import APIError, OutputSpec, SamplingParams, parse_chat_request, parse_completion_request
from .tool_calls import ToolCallReader

DISCONNECT_POLL_S = 0.5


@dataclass
class ServerState:
    model: Any
    tokenizer: Any
    engine: Engine
    model_id: str
    max_context: int
    default_max_tokens: int


def create_app(model: Any = None, tokenizer: Any = None, *, model_id: str | None = None, max_batch: int = 16,
               default_max_tokens: int = 256) -> FastAPI:
    """The app serving ``model`` (the default SmolLM2-135M-Instruct when None)."""
    from ..generation.models import default_model_path, load_model

    if model is None:
        model, tokenizer = load_model(None)
        model_id = model_id or os.path.splitext(os.path.basename(default_model_path()))[0]
    vocab = vocabulary_for(model, tokenizer)
    state = ServerState(
        model=model,
        tokenizer=tokenizer,
        engine=Engine(model, vocab, max_batch=max_batch),
        model_id=model_id or getattr(model.config, "name_or_path", None) or "model",
        max_context=int(getattr(model.config, "max_position_embeddings", 2048)),
        default_max_tokens=default_max_tokens,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        state.engine.stop()

    app = FastAPI(title="structgen", version="0.1.0", lifespan=lifespan)
    app.state.structgen = state

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [_model_card(state)]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> dict:
        _check_model(state, model_id)
        return _model_card(state)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "waiting": state.engine.waiting, "active_rows": state.engine.active_rows}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        body = await _json_body(request)
        req = parse_chat_request(body, state.default_max_tokens)
        _check_model(state, req.model)
        tools = req.output.tools if req.output.tools_possible else None
        prompt_ids = chat_prompt_ids(state.tokenizer, req.messages, tools)
        sampling = _fit_context(state, req.sampling, len(prompt_ids))
        constraint = await _constraint(req.output, state)
        job = _Job(state, request, [prompt_ids], sampling, constraint)
        meta = _meta("chatcmpl", "chat.completion", state)
        if req.stream:
            return _sse(_chat_stream(job, meta, req.output, req.include_usage))
        deltas = await job.collect()
        choices = [_chat_choice(i, text, finish, req.output) for i, (text, finish) in enumerate(deltas)]
        return {**meta, "choices": choices, "usage": job.usage()}

    @app.post("/v1/completions")
    async def completions(request: Request):
        body = await _json_body(request)
        req = parse_completion_request(body, state.default_max_tokens)
        _check_model(state, req.model)
        prompt_ids = [list(state.tokenizer.encode(p, add_special_tokens=True)) for p in req.prompts]
        sampling = _fit_context(state, req.sampling, max(len(p) for p in prompt_ids))
        constraint = await _constraint(req.output, state)
        job = _Job(state, request, prompt_ids, sampling, constraint)
        meta = _meta("cmpl", "text_completion", state)
        if req.stream:
            return _sse(_completion_stream(job, meta, req.include_usage))
        deltas = await job.collect()
        choices = [{"index": i, "text": text, "logprobs": None, "finish_reason": finish} for i, (text, finish) in enumerate(deltas)]
        return {**meta, "choices": choices, "usage": job.usage()}

    return app


# ---- requests ------------------------------------------------------------------------------
async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise APIError(f"the request body is not valid JSON: {exc}") from exc


def _model_card(state: ServerState) -> dict:
    return {"id": state.model_id, "object": "model", "created": 0, "owned_by": "structgen"}


def _check_model(state: ServerState, name: str | None) -> None:
    if name is not None and name != state.model_id:
        raise APIError(f"the model {name!r} does not exist; this server serves {state.model_id!r}", status=404,
                       param="model", code="model_not_found")


def _fit_context(state: ServerState, sampling: SamplingParams, prompt_tokens: int) -> SamplingParams:
    room = state.max_context - prompt_tokens
    if room < 1:
        raise APIError(f"the prompt has {prompt_tokens} tokens; the model's context is {state.max_context}",
                       param="messages", code="context_length_exceeded")
    sampling.max_tokens = min(sampling.max_tokens, room)
    return sampling


async def _constraint(spec: OutputSpec, state: ServerState):
    try:
        return await run_in_threadpool(output_constraint, spec, state.engine.vocab)
    except StructgenError as exc:
        param = "tools" if spec.tools_possible and spec.response_format is None else _answer_param(spec)
        raise APIError(f"cannot enforce the requested output: {exc}", param=param, code="unsupported_constraint") from exc
    except ValueError as exc:
        raise APIError(f"invalid constraint: {exc}", param=_answer_param(spec)) from exc


def _answer_param(spec: OutputSpec) -> str | None:
    for name in ("regex", "grammar", "choices"):
        if getattr(spec, name) is not None:
            return name
    return "response_format" if spec.response_format is not None else "tools"


def _meta(prefix: str, obj: str, state: ServerState) -> dict:
    return {"id": f"{prefix}-{uuid.uuid4().hex}", "object": obj, "created": int(time.time()), "model": state.model_id}


class _Job:
    """One HTTP request's rows in the engine: events arrive on an asyncio queue; the rows are
    cancelled when the client goes away."""

    def __init__(self, state: ServerState, request: Request, prompts: list[list[int]], sampling: SamplingParams, constraint) -> None:
        self.request = request
        self.queue: asyncio.Queue[Delta] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.prompt_tokens = sum(len(p) for p in prompts)
        self.n_choices = len(prompts) * sampling.n
        self.tokens = [0] * self.n_choices
        self.parts: list[EngineRequest] = []
        for i, ids in enumerate(prompts):
            part = EngineRequest(ids, constraint, sampling, lambda d: loop.call_soon_threadsafe(self.queue.put_nowait, d),
                                 first_index=i * sampling.n)
            self.parts.append(part)
            state.engine.submit(part)

    def cancel(self) -> None:
        for part in self.parts:
            part.cancel()

    async def events(self) -> AsyncIterator[Delta]:
        """Every delta until each choice has finished; cancels the rows if the client leaves."""
        finished = 0
        try:
            while finished < self.n_choices:
                try:
                    delta = await asyncio.wait_for(self.queue.get(), DISCONNECT_POLL_S)
                except asyncio.TimeoutError:
                    if await self.request.is_disconnected():
                        return
                    continue
                if delta.error is not None:
                    raise APIError(f"generation failed: {delta.error}", status=500, type="server_error")
                self.tokens[delta.index] = delta.completion_tokens
                finished += delta.finish_reason is not None
                yield delta
        finally:
            if finished < self.n_choices:
                self.cancel()

    async def collect(self) -> list[tuple[str, str]]:
        texts, reasons = [""] * self.n_choices, [""] * self.n_choices
        async for d in self.events():
            texts[d.index] += d.text
            if d.finish_reason is not None:
                reasons[d.index] = d.finish_reason
        return list(zip(texts, reasons))

    def usage(self) -> dict:
        completion = sum(self.tokens)
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion}


# ---- responses -----------------------------------------------------------------------------
def _chat_choice(index: int, text: str, finish: str, spec: OutputSpec) -> dict:
    message: dict = {"role": "assistant", "content": text, "refusal": None}
    if spec.tools_possible:
        reader = ToolCallReader()
        reader.feed(text, final=True)
        if reader.calls:
            message["content"] = None
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in reader.calls
            ]
            if finish == "stop":
                finish = "tool_calls"
    return {"index": index, "message": message, "logprobs": None, "finish_reason": finish}


def _sse(events: AsyncIterator[dict]) -> StreamingResponse:
    async def lines() -> AsyncIterator[str]:
        try:
            async for event in events:
                yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
        except APIError as exc:
            yield f"data: {json.dumps(exc.body())}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(lines(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _chat_stream(job: _Job, meta: dict, spec: OutputSpec, include_usage: bool) -> AsyncIterator[dict]:
    meta = {**meta, "object": "chat.completion.chunk"}

    def chunk(index: int, delta: dict, finish: str | None = None) -> dict:
        return {**meta, "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    readers = [ToolCallReader(tools_possible=spec.tools_possible) for _ in range(job.n_choices)]
    texts = [""] * job.n_choices
    for i in range(job.n_choices):
        yield chunk(i, {"role": "assistant", "content": ""})
    async for d in job.events():
        texts[d.index] += d.text
        reader = readers[d.index]
        content, calls = reader.feed(texts[d.index], final=d.finish_reason is not None)
        if content:
            yield chunk(d.index, {"content": content})
        for k, call, new, arguments in calls:
            entry: dict = {"index": k, "function": {"arguments": arguments}}
            if new:
                entry.update(id=call.id, type="function")
                entry["function"]["name"] = call.name
            yield chunk(d.index, {"tool_calls": [entry]})
        if d.finish_reason is not None:
            finish = "tool_calls" if reader.calls and d.finish_reason == "stop" else d.finish_reason
            yield chunk(d.index, {}, finish)
    if include_usage:
        yield {**meta, "choices": [], "usage": job.usage()}


async def _completion_stream(job: _Job, meta: dict, include_usage: bool) -> AsyncIterator[dict]:
    async for d in job.events():
        if d.text or d.finish_reason is not None:
            yield {**meta, "choices": [{"index": d.index, "text": d.text, "logprobs": None, "finish_reason": d.finish_reason}]}
    if include_usage:
        yield {**meta, "choices": [], "usage": job.usage()}
