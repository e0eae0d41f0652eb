"""The tool-call format the model writes, and reading it back (whole or while it streams).

The format is the one Hermes-style chat models are trained on (and SmolLM2's function-calling
data)::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

several calls written back to back (``</tool_call><tool_call>``: after a call the model
chooses between ending its turn and another call, not between a newline and ending). The server constrains the model to exactly this
layout (see :mod:`.output_grammar`), so reading it back needs no guessing: the name is a JSON
string, the arguments are one JSON value, and they are followed by ``}`` and a newline (a
raw newline cannot occur inside the arguments, whose whitespace is at most single spaces).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

OPEN = "<tool_call>\n"
CLOSE = "\n</tool_call>"
SEPARATOR = ""
NAME_START = '{"name": '
ARGUMENTS_START = ', "arguments": '


def call_prefix(name: str) -> str:
    """The text of a call up to its arguments."""
    return OPEN + NAME_START + json.dumps(name) + ARGUMENTS_START


def render_call(name: str, arguments: str) -> str:
    """A call as the model writes it (used for assistant turns in the history)."""
    return call_prefix(name) + arguments + "}" + CLOSE


def tools_system_prompt(tools: list[dict]) -> str:
    """The instructions that tell the model which tools exist and how to call them."""
    listing = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    example = render_call("function_name", json.dumps({"argument": "value"}))
    return (
        "You may call one or more functions to help with the user's request. The functions are:\n"
        f"<tools>\n{listing}\n</tools>\n"
        "To call a function, reply with a JSON object holding its name and arguments, inside tags:\n"
        + example
    )


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str = ""  # JSON text (possibly incomplete while streaming or when cut off)
    complete: bool = False


@dataclass
class ToolCallReader:
    """Reads the model's output as it grows: free text, or a sequence of tool calls.

    ``feed(text)`` takes the whole output so far and returns what is new since the last call:
    a text delta, and tool-call deltas ``(index, call, name_is_new, arguments_delta)``. Text
    that could still turn into a tool call (a prefix of ``<tool_call>``) is held back."""

    tools_possible: bool = True
    content: str = ""
    calls: list[ToolCall] = field(default_factory=list)  # their arguments as reported so far
    _mode: str = "undecided"  # "undecided" | "text" | "calls"

    def feed(self, text: str, final: bool = False) -> tuple[str, list[tuple[int, ToolCall, bool, str]]]:
        if self._mode == "undecided":
            if not self.tools_possible or not OPEN.startswith(text[: len(OPEN)]):
                self._mode = "text"
            elif len(text) >= len(OPEN):
                self._mode = "calls"
            elif final:
                self._mode = "text"
            else:
                return "", []
        if self._mode == "text":
            delta = text[len(self.content) :]
            self.content = text
            return delta, []
        return "", self._read_calls(text)

    def _read_calls(self, text: str) -> list[tuple[int, ToolCall, bool, str]]:
        deltas = []
        pos = 0
        index = 0
        while True:
            if index > 0:
                if not text.startswith(SEPARATOR + OPEN, pos):
                    break
                pos += len(SEPARATOR)
            if not text.startswith(OPEN + NAME_START, pos):
                break
            name_at = pos + len(OPEN + NAME_START)
            try:
                name, end = json.JSONDecoder().raw_decode(text, name_at)
            except ValueError:
                break  # the name is still being written
            if not text.startswith(ARGUMENTS_START, end):
                break
            args_at = end + len(ARGUMENTS_START)
            close_at = text.find("\n", args_at)
            finished = close_at >= 0
            body = text[args_at:close_at] if finished else text[args_at:]
            # the last "}" belongs to the wrapper once the call is finished; while it is not,
            # a trailing "}" may be either, so it waits
            arguments = body[:-1] if (finished or body.endswith("}")) else body
            new = index >= len(self.calls)
            if new:
                self.calls.append(ToolCall(new_call_id(), name))
            call = self.calls[index]
            delta = arguments[len(call.arguments) :]
            if new or delta:
                deltas.append((index, call, new, delta))
            call.arguments = arguments
            if not finished:
                break
            call.complete = text.startswith(CLOSE, close_at)
            if not call.complete:
                break
            pos = close_at + len(CLOSE)
            index += 1
        return deltas
