"""OpenAI chat messages → the model's prompt: through the tokenizer's chat template, with the
tools described in the system message and earlier tool calls and results written in the
format the model is constrained to (see :mod:`.tool_calls`)."""

from __future__ import annotations

from typing import Any

from . import tool_calls


def template_messages(messages: list[dict], tools: list[dict] | None) -> list[dict]:
    """Messages with string contents and only system / user / assistant roles."""
    out: list[dict] = []
    for m in messages:
        role, content = m["role"], m["content"]
        if role == "developer":
            role = "system"
        if role == "assistant" and m.get("tool_calls"):
            calls = tool_calls.SEPARATOR.join(tool_calls.render_call(c["name"], c["arguments"]) for c in m["tool_calls"])
            content = f"{content}\n{calls}" if content else calls
        if role == "tool":
            role, content = "user", f"<tool_response>\n{content}\n</tool_response>"
        out.append({"role": role, "content": content})
    if tools:
        described = tools_description(tools)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{described}"}
        else:
            out.insert(0, {"role": "system", "content": described})
    return out


def tools_description(tools: list[dict]) -> str:
    listed = [
        {"type": "function", "function": {k: t[k] for k in ("name", "description", "parameters") if t.get(k) is not None}}
        for t in tools
    ]
    return tool_calls.tools_system_prompt(listed)


def chat_prompt_ids(tokenizer: Any, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
    """Token ids of the conversation followed by the start of the assistant's turn."""
    rendered = template_messages(messages, tools)
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(rendered, add_generation_prompt=True, tokenize=False)
        return list(tokenizer.encode(text, add_special_tokens=False))
    text = "".join(f"{m['role']}: {m['content']}\n" for m in rendered) + "assistant: "
    return list(tokenizer.encode(text, add_special_tokens=True))
