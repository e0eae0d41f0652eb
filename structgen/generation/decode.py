"""structgen's own decode loop: batched prompts, KV cache, the constraint's mask applied before
temperature / top-k / top-p, stopping at EOS or where the constraint ends."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..automata.bitmask import allocate_token_bitmask
from ..automata.kernels import warm_up
from ..constraints.base import Constraint
from ..compiler import compile_gbnf, compile_grammar, compile_json_schema
from ..json_schema.python_types import to_json_schema
from ..json_schema.validate import validate_json
from ..constraints.regular import compile_choices, compile_regex
from ..tokenizers.vocabulary import Vocabulary
from .models import eos_ids_of, keep_last_logits, load_default_model, logits_width_of
from .result import GenerationResult
from .sampling import check_sampling_args, masked_scores, select_tokens

_vocab_cache: dict[int, tuple[Any, Vocabulary]] = {}
_constraint_cache: OrderedDict[tuple, Constraint] = OrderedDict()
_cache_lock = threading.Lock()
CONSTRAINT_CACHE_SIZE = 64


def vocabulary_for(model: Any, tokenizer: Any) -> Vocabulary:
    """The Vocabulary of a (model, tokenizer) pair, built once per tokenizer object."""
    with _cache_lock:
        hit = _vocab_cache.get(id(tokenizer))
        if hit is not None and hit[0] is tokenizer:
            return hit[1]
    vocab = Vocabulary.from_tokenizer(
        tokenizer, eos_token_ids=eos_ids_of(model, tokenizer), logits_width=logits_width_of(model)
    )
    _ = vocab.trie
    warm_up()  # numba kernels compiled (or loaded from disk) at set-up, never inside a request
    with _cache_lock:
        _vocab_cache[id(tokenizer)] = (tokenizer, vocab)
    return vocab


def model_and_vocabulary(model: Any, tokenizer: Any) -> tuple[Any, Any, Vocabulary]:
    """(model, tokenizer, vocabulary): the default model when neither is given."""
    if model is None:
        if tokenizer is not None:
            raise ValueError("a tokenizer was given without its model")
        model, tokenizer = load_default_model()
    elif tokenizer is None:
        raise ValueError("a model was given without its tokenizer")
    return model, tokenizer, vocabulary_for(model, tokenizer)


def resolve_constraint(
    vocab: Vocabulary,
    *,
    regex: str | None = None,
    choices: Sequence[str] | None = None,
    grammar: str | None = None,
    gbnf: str | None = None,
    schema: Any = None,
    constraint: Constraint | None = None,
) -> Constraint | None:
    """The constraint named by exactly one of the arguments (or None), compiled once per
    vocabulary and kept in a small LRU cache together with its masks. ``grammar`` is Lark
    text, ``gbnf`` llama.cpp GBNF text, ``schema`` a JSON Schema or a Python type (whose
    objects then get no properties beyond their declared fields)."""
    strict = False
    if schema is not None:
        import json

        # a Python type lists its fields: nothing else is generated (its validation drops extras)
        strict = not isinstance(schema, (dict, bool, str, bytes))
        schema = json.dumps(to_json_schema(schema), sort_keys=False)  # hashable cache key
    named = {"regex": regex, "choices": choices, "grammar": grammar, "gbnf": gbnf, "schema": schema, "constraint": constraint}
    given = [k for k, v in named.items() if v is not None]
    if len(given) > 1:
        raise ValueError(f"give at most one of regex=, choices=, grammar=, gbnf=, schema=, constraint= (got {', '.join(given)})")
    if constraint is not None:
        if constraint.vocab is not vocab and constraint.vocab.fingerprint != vocab.fingerprint:
            raise ValueError("the constraint was compiled for a different vocabulary")
        return constraint
    if not given:
        return None
    kind = given[0]
    value = named[kind]
    key = (vocab.fingerprint, kind, tuple(value) if kind == "choices" else value, strict)
    with _cache_lock:
        hit = _constraint_cache.get(key)
        if hit is not None:
            _constraint_cache.move_to_end(key)
            return hit
    compilers = {
        "regex": lambda: compile_regex(value, vocab),
        "choices": lambda: compile_choices(list(value), vocab),
        "grammar": lambda: compile_grammar(value, vocab),
        "gbnf": lambda: compile_gbnf(value, vocab),
        "schema": lambda: compile_json_schema(value, vocab, strict=strict),
    }
    compiled = compilers[kind]()
    with _cache_lock:
        _constraint_cache[key] = compiled
        while len(_constraint_cache) > CONSTRAINT_CACHE_SIZE:
            _constraint_cache.popitem(last=False)
    return compiled


def render_prompt(tokenizer: Any, prompt: str, *, chat_template: bool, system_prompt: str | None) -> list[int]:
    """Prompt token ids: through the tokenizer's chat template when it has one (and
    ``chat_template`` is True), otherwise the raw text."""
    if chat_template and getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": prompt}]
        if system_prompt is not None:
            messages.insert(0, {"role": "system", "content": system_prompt})
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(tokenizer.encode(text, add_special_tokens=False))
    return list(tokenizer.encode(prompt, add_special_tokens=True))


def generate(
    prompt: str | Sequence[str],
    *,
    regex: str | None = None,
    choices: Sequence[str] | None = None,
    grammar: str | None = None,
    gbnf: str | None = None,
    schema: Any = None,
    constraint: Constraint | None = None,
    model: Any = None,
    tokenizer: Any = None,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    chat_template: bool = True,
    system_prompt: str | None = None,
    speculative: bool | Sequence[str] = False,
) -> GenerationResult | list[GenerationResult]:
    """Generates from one prompt (returns a result) or several (returns a list, decoded as
    one batch). With no constraint the output is unconstrained. ``temperature=0`` is greedy.
    With a Lark grammar (``grammar=`` text, or a constraint compiled from one) a completed
    result also carries ``parse_tree``, built by lark's own parser. With a JSON Schema
    (``schema=`` a dict, JSON text, pydantic model, dataclass, TypedDict...) a completed result
    carries ``value`` (the parsed JSON, or an instance of the pydantic model / dataclass) and
    ``valid`` (checked by the ``jsonschema`` validator).

    ``speculative=True`` (``"forced"``, ``"ngram"`` and ``"history"``; or a list of draft
    sources, ``"text"`` too) drafts tokens from the constraint, the context and earlier outputs
    and verifies them in one forward pass each; outputs keep the same distribution (greedy: the
    same tokens). Prompts are then decoded one after another."""
    check_sampling_args(temperature, top_k, top_p)
    model, tokenizer, vocab = model_and_vocabulary(model, tokenizer)
    compiled = resolve_constraint(vocab, regex=regex, choices=choices, grammar=grammar, gbnf=gbnf, schema=schema, constraint=constraint)
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    prompt_ids = [render_prompt(tokenizer, p, chat_template=chat_template, system_prompt=system_prompt) for p in prompts]
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    if speculative:
        from .drafts import DEFAULT_SOURCES, make_sources
        from .speculative import ModelVerifier, speculative_decode

        names = DEFAULT_SOURCES if speculative is True else tuple(speculative)
        results = [
            speculative_decode(
                ModelVerifier(model), vocab, ids, compiled, make_sources(names, tokenizer, vocab.token_bytes),
                max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator,
            )
            for ids in prompt_ids
        ]
    else:
        results = decode_batch(
            model,
            vocab,
            prompt_ids,
            compiled,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            generator=generator,
        )
    for r, p in zip(results, prompts):
        r.prompt = p
        attach_parsed_output(r, compiled, schema)
    return results[0] if isinstance(prompt, str) else results


def attach_parsed_output(result: GenerationResult, compiled: Constraint | None, python_type: Any = None) -> None:
    """Sets ``parse_tree`` (Lark grammars) or ``value`` / ``valid`` (JSON Schemas) on a
    completed result; ``python_type`` is the pydantic model / dataclass the caller gave."""
    if not result.completed or compiled is None:
        return
    if getattr(compiled, "lark_parser", None) is not None:
        result.parse_tree = compiled.parse(result.text)
    if getattr(compiled, "schema", None) is not None:
        check = validate_json(result.text, compiled.schema)
        result.valid = check.valid
        result.value = as_python(check.value, python_type) if check.valid else check.value


def as_python(value: Any, schema: Any) -> Any:
    """The validated JSON value as the Python type the caller gave (pydantic model, dataclass)."""
    if schema is None or isinstance(schema, (dict, bool, str, bytes)):
        return value
    if hasattr(schema, "model_validate"):
        return schema.model_validate(value)
    import dataclasses

    if dataclasses.is_dataclass(schema) and isinstance(value, dict):
        return schema(**value)
    return value


def left_padded(prompt_ids: Sequence[Sequence[int]], pad_id: int, device: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input ids, attention mask, position ids) of prompts left-padded into one batch."""
    longest = max(len(p) for p in prompt_ids)
    input_ids = torch.full((len(prompt_ids), longest), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompt_ids), longest), dtype=torch.long)
    for row, ids in enumerate(prompt_ids):
        input_ids[row, longest - len(ids) :] = torch.tensor(list(ids), dtype=torch.long)
        attention[row, longest - len(ids) :] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)
    return input_ids, attention, (attention.cumsum(-1) - 1).clamp(min=0)


@torch.inference_mode()
def decode_batch(
    model: Any,
    vocab: Vocabulary,
    prompt_ids: list[list[int]],
    constraint: Constraint | None,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    on_token: Callable[[int, int], None] | None = None,
) -> list[GenerationResult]:
    """The decode loop over already-tokenized prompts (left-padded into one batch).
    ``on_token(row, token_id)`` is called for each output token as it is chosen."""
    batch = len(prompt_ids)
    device = model.device
    pad_id = vocab.eos_token_ids[0] if vocab.eos_token_ids else 0
    input_ids, attention, positions = left_padded(prompt_ids, pad_id, device)

    matchers = [constraint.matcher() for _ in range(batch)] if constraint is not None else None
    bitmask = allocate_token_bitmask(batch, vocab.logits_width) if constraint is not None else None
    eos_ids = set(vocab.eos_token_ids)
    tokens: list[list[int]] = [[] for _ in range(batch)]
    log_z: list[list[float]] = [[] for _ in range(batch)]
    logprob = [0.0] * batch
    finish: list[str | None] = [None] * batch

    past = None
    step_ids, step_positions = input_ids, positions
    started = time.perf_counter()
    prefill_seconds = 0.0
    for step in range(max_new_tokens):
        out = model(
            input_ids=step_ids, attention_mask=attention, position_ids=step_positions, past_key_values=past, use_cache=True,
            **keep_last_logits(model, 1),
        )
        past = out.past_key_values
        passes = step + 1
        logits = out.logits[:, -1, :].float()
        if step == 0:
            prefill_seconds = time.perf_counter() - started
        logprobs = torch.log_softmax(logits, dim=-1)
        masked = masked_scores(logprobs, vocab.n_tokens, matchers, bitmask)
        row_log_z = torch.logsumexp(masked, dim=-1)
        chosen = select_tokens(masked, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
        chosen_list = chosen.tolist()
        for row in range(batch):
            if finish[row] is not None:
                continue
            tid = chosen_list[row]
            log_z[row].append(float(row_log_z[row]))
            if not np.isfinite(log_z[row][-1]):
                finish[row] = "dead_end"  # the constraint allows nothing the model can produce
                continue
            logprob[row] += float(logprobs[row, tid])
            if matchers is not None and not matchers[row].accept_token(tid):
                raise RuntimeError(f"internal error: masked token {tid} refused by the matcher")
            if tid in eos_ids:
                finish[row] = "eos"
                continue
            tokens[row].append(tid)
            if on_token is not None:
                on_token(row, tid)
            if matchers is not None and matchers[row].only_eos_allowed():
                finish[row] = "constraint_end"
        if all(f is not None for f in finish):
            break
        step_ids = torch.tensor(
            [[t if finish[r] is None else pad_id] for r, t in enumerate(chosen_list)], dtype=torch.long, device=device
        )
        attention = torch.cat([attention, torch.ones((batch, 1), dtype=attention.dtype, device=device)], dim=1)
        step_positions = step_positions[:, -1:] + 1

    total_seconds = time.perf_counter() - started
    results = []
    for row in range(batch):
        reason = finish[row] or "length"
        if matchers is None:
            completed = reason == "eos"
        else:
            completed = reason in ("eos", "constraint_end") or matchers[row].can_terminate()
        results.append(
            GenerationResult(
                text=vocab.decode(tokens[row]),
                token_ids=tokens[row],
                completed=completed,
                finish_reason=reason,
                log_z=log_z[row],
                logprob=logprob[row],
                prefill_seconds=prefill_seconds,
                total_seconds=total_seconds,
                forward_passes=passes,
            )
        )
    return results
