"""Speculative decoding over the constraint: draft sources propose tokens, the model scores the
pending token and the whole draft in one forward pass over the KV cache, and each draft token is
verified against the masked distribution at its position (the matcher advanced along the draft,
rolled back on rejection; the KV cache cropped). Greedy: accept while the masked argmax agrees.
Sampling: a draft token d is accepted with probability p(d) (the masked, processed distribution),
else a token is drawn from p without d, so every emitted token keeps exactly the distribution of
decoding without drafts. One sequence at a time (see ``generate``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from ..automata.bitmask import allocate_token_bitmask
from ..constraints.base import Constraint
from ..tokenizers.vocabulary import Vocabulary
from .drafts import DraftContext, DraftSource, fitting_length, propose_draft
from .models import keep_last_logits
from .result import GenerationResult
from .sampling import masked_scores, token_probs


class VerifierSession(Protocol):
    """One growing sequence: ``extend`` appends tokens and returns the next-token logits after
    each of the last ``keep`` of them, ``(keep, V)``; ``crop`` keeps the first ``length`` tokens."""

    def extend(self, tokens: Sequence[int], keep: int) -> torch.Tensor: ...

    def crop(self, length: int) -> None: ...


class ModelVerifier:
    """A transformers causal LM with a KV cache (``DynamicCache.crop`` on rejection)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.cache: Any = None
        self.length = 0

    @torch.inference_mode()
    def extend(self, tokens: Sequence[int], keep: int) -> torch.Tensor:
        device = self.model.device
        ids = torch.tensor([list(tokens)], dtype=torch.long, device=device)
        positions = torch.arange(self.length, self.length + len(tokens), device=device)[None, :]
        out = self.model(
            input_ids=ids, position_ids=positions, past_key_values=self.cache, use_cache=True,
            **keep_last_logits(self.model, keep),
        )
        self.cache = out.past_key_values
        self.length += len(tokens)
        return out.logits[0, -keep:].float()

    def crop(self, length: int) -> None:
        if length < self.length:
            self.cache.crop(length - self.length)  # a negative count: remove that many (old and new transformers)
            self.length = length


class CallableVerifier:
    """``fn(prefixes) -> (len(prefixes), V)`` logits as a verifier (a toy model, tests)."""

    def __init__(self, fn: Callable[[list[list[int]]], Any]) -> None:
        self.fn = fn
        self.tokens: list[int] = []

    def extend(self, tokens: Sequence[int], keep: int) -> torch.Tensor:
        start = len(self.tokens)
        self.tokens += [int(t) for t in tokens]
        prefixes = [self.tokens[: start + i + 1] for i in range(len(tokens) - keep, len(tokens))]
        return torch.as_tensor(np.asarray(self.fn(prefixes)), dtype=torch.float64)

    def crop(self, length: int) -> None:
        del self.tokens[length:]


def speculative_decode(
    verifier: VerifierSession,
    vocab: Vocabulary,
    prompt_ids: Sequence[int],
    constraint: Constraint | None,
    sources: Sequence[DraftSource],
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    max_draft: int = 31,
) -> GenerationResult:
    """Decodes one sequence; the result reports forward passes, drafted and accepted tokens."""
    started = time.perf_counter()
    matcher = constraint.matcher() if constraint is not None else None
    bitmask = allocate_token_bitmask(1, vocab.logits_width) if constraint is not None else None
    eos_ids = frozenset(vocab.eos_token_ids)
    output: list[int] = []
    log_z: list[float] = []
    logprob = 0.0
    passes = drafted = accepted_total = 0
    pending = list(prompt_ids)  # tokens not yet in the KV cache
    kv_length = 0  # tokens in the KV cache (prompt + accepted output)
    finish: str | None = None
    prefill_seconds = 0.0
    while finish is None:
        room = max_new_tokens - len(output)
        plan = propose_draft(sources, DraftContext(prompt_ids, output, matcher), min(max_draft, room - 1))
        plan.cut(fitting_length(len(plan.tokens)))
        draft = plan.tokens
        logits = verifier.extend(pending + draft, keep=len(draft) + 1)
        passes += 1
        if passes == 1:
            prefill_seconds = time.perf_counter() - started
        drafted += len(draft)
        emitted: list[int] = []
        n_ok = 0  # draft tokens accepted in this pass
        all_logprobs = torch.log_softmax(logits.double(), dim=-1)
        for i in range(len(draft) + 1):
            logprobs = all_logprobs[i : i + 1]
            masked = masked_scores(logprobs, vocab.n_tokens, [matcher] if matcher is not None else None, bitmask)
            step_log_z = float(torch.logsumexp(masked, dim=-1))
            if not np.isfinite(step_log_z):
                finish = "dead_end"
                break
            proposed = draft[i] if i < len(draft) else None
            token, ok = _verify(masked, proposed, temperature, top_k, top_p, generator)
            n_ok += ok
            emitted.append(token)
            log_z.append(step_log_z)
            logprob += float(logprobs[0, token])
            if matcher is not None and not matcher.accept_token(token):
                raise RuntimeError(f"internal error: masked token {token} refused by the matcher")
            if token in eos_ids:
                finish = "eos"
                break
            output.append(token)
            if matcher is not None and matcher.only_eos_allowed():
                finish = "constraint_end"
                break
            if len(output) >= max_new_tokens:
                finish = "length"
                break
            if not ok:
                break
        accepted_total += n_ok
        plan.feedback(n_ok)
        # the KV cache holds pending + draft; keep pending + the accepted draft tokens
        kv_length += len(pending) + n_ok
        verifier.crop(kv_length)
        pending = [emitted[-1]] if len(emitted) > n_ok else []
    for source in sources:
        if hasattr(source, "finish"):
            source.finish(output)
    completed = finish == "eos" or (matcher is not None and (finish == "constraint_end" or matcher.can_terminate()))
    return GenerationResult(
        text=vocab.decode(output),
        token_ids=output,
        completed=completed,
        finish_reason=finish,
        log_z=log_z,
        logprob=logprob,
        prefill_seconds=prefill_seconds,
        total_seconds=time.perf_counter() - started,
        forward_passes=passes,
        drafted_tokens=drafted,
        accepted_draft_tokens=accepted_total,
    )


def _verify(
    masked: torch.Tensor,
    proposed: int | None,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
) -> tuple[int, bool]:
    """(token, whether it is the proposed one). Without a proposal: a plain draw."""
    if temperature == 0:
        token = int(masked.argmax(dim=-1))
        return token, proposed is not None and token == proposed
    probs = token_probs(masked, temperature=temperature, top_k=top_k, top_p=top_p)[0]
    if proposed is not None:
        p = float(probs[proposed])
        if p > 0 and float(torch.rand(1, generator=generator, dtype=torch.float64)) < p:
            return proposed, True
        probs = probs.clone()
        probs[proposed] = 0.0
        if float(probs.sum()) <= 0:  # p(proposed) was 1 up to rounding
            return proposed, True
    return int(torch.multinomial(probs, 1, generator=generator)), False
