"""A reusable generator: one output type compiled once, called many times; results come
back parsed (a pydantic object, a dict, a lark tree, the text), or stream as they grow
(partial JSON parsed on the way)."""

from __future__ import annotations

import codecs
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import StructgenError
from ..json_schema.partial import parse_partial_json
from ..output_types import constraint_arguments
from .decode import as_python, attach_parsed_output, decode_batch, generate, model_and_vocabulary, render_prompt, resolve_constraint
from .result import GenerationResult
from .sampling import check_sampling_args


class IncompleteOutputError(StructgenError):
    """The generation stopped before the output was complete (usually ``max_new_tokens``)."""

    def __init__(self, result: GenerationResult) -> None:
        super().__init__(f"the output is incomplete (finish_reason={result.finish_reason!r}); raise max_new_tokens: {result.text!r}")
        self.result = result


@dataclass
class Partial:
    """The output so far while streaming: the newest text, all of it, its value (partial JSON
    parsed for JSON outputs), and on the last one ``done`` and the whole result."""

    delta: str
    text: str
    value: Any = None
    done: bool = False
    result: GenerationResult | None = None


class _Stopped(Exception):
    pass


class Generator:
    """``Generator(output_type, model=None, tokenizer=None)``: ``output_type`` is a pydantic
    model, dataclass, TypedDict, other Python type or JSON Schema dict; ``Regex(...)``,
    ``Lark(...)``, ``GBNF(...)``, ``JsonSchema(...)`` (see :mod:`structgen.output_types`); a list
    of strings (choices); or a compiled constraint. The model defaults to SmolLM2-135M-Instruct."""

    def __init__(self, output_type: Any, model: Any = None, tokenizer: Any = None) -> None:
        self.output_type = output_type
        self.model, self.tokenizer, self.vocab = model_and_vocabulary(model, tokenizer)
        arguments = constraint_arguments(output_type)
        self.python_type = arguments.get("schema")
        self.constraint = resolve_constraint(self.vocab, **arguments)

    def generate(self, prompt: str | Sequence[str], **options: Any) -> GenerationResult | list[GenerationResult]:
        """The whole result(s), as :func:`structgen.generate` returns them."""
        results = generate(prompt, constraint=self.constraint, model=self.model, tokenizer=self.tokenizer, **options)
        for r in [results] if isinstance(results, GenerationResult) else results:
            if r.valid:  # generate() validated the JSON; only the caller's type is missing
                r.value = as_python(r.value, self.python_type)
        return results

    def __call__(self, prompt: str | Sequence[str], **options: Any) -> Any:
        """The parsed output (a list for several prompts): the object for JSON outputs, a lark
        ``Tree`` for Lark grammars, the text otherwise. Raises :class:`IncompleteOutputError`
        when an output was cut short."""
        results = self.generate(prompt, **options)
        if isinstance(results, GenerationResult):
            return self._value(results)
        return [self._value(r) for r in results]

    def _value(self, result: GenerationResult) -> Any:
        if not result.completed:
            raise IncompleteOutputError(result)
        if result.parse_tree is not None:
            return result.parse_tree
        if getattr(self.constraint, "schema", None) is not None:
            return result.value
        return result.text

    def stream(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 64,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        chat_template: bool = True,
        system_prompt: str | None = None,
    ) -> Iterator[Partial]:
        """Yields a :class:`Partial` per token, then a last one with ``done=True`` and the
        result. Stopping the iteration early stops the generation."""
        import torch

        check_sampling_args(temperature, top_k, top_p)
        ids = render_prompt(self.tokenizer, prompt, chat_template=chat_template, system_prompt=system_prompt)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        events: queue.Queue = queue.Queue()
        stop = threading.Event()

        def on_token(row: int, token_id: int) -> None:
            if stop.is_set():
                raise _Stopped
            events.put(token_id)

        def work() -> None:
            try:
                result = decode_batch(self.model, self.vocab, [ids], self.constraint, max_new_tokens=max_new_tokens,
                                      temperature=temperature, top_k=top_k, top_p=top_p, generator=generator,
                                      on_token=on_token)[0]
                events.put(result)
            except _Stopped:
                events.put(None)
            except BaseException as exc:  # handed to the consumer
                events.put(exc)

        worker = threading.Thread(target=work, name="structgen-stream", daemon=True)
        worker.start()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        is_json = getattr(self.constraint, "schema", None) is not None
        text = ""
        try:
            while True:
                item = events.get()
                if isinstance(item, int):
                    delta = decoder.decode(self.vocab.decode_bytes([item]))
                    if not delta:
                        continue
                    text += delta
                    yield Partial(delta, text, _partial_value(text) if is_json else None)
                    continue
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    return
                item.prompt = prompt
                attach_parsed_output(item, self.constraint, self.python_type)
                delta = item.text[len(text) :]
                value = None
                if is_json:
                    value = item.value if item.completed else _partial_value(item.text)
                yield Partial(delta, item.text, value, done=True, result=item)
                return
        finally:
            stop.set()
            worker.join()


def _partial_value(text: str) -> Any:
    try:
        return parse_partial_json(text)
    except ValueError:
        return None
