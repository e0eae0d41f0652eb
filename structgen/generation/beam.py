"""Lexically constrained beam search with dynamic beam allocation (Post & Vilar 2018), combined
with any structgen constraint.

A hypothesis is (tokens, score, phrase-automaton state, phrases met, grammar matcher). Each step
scores every live hypothesis in one batched forward pass; candidates are the best continuations
over the whole beam, each hypothesis' best token, and, per hypothesis, the tokens that start or
continue an unmet phrase (the model's tokenizations of what is left of it), EOS where it is
allowed, and the first token of the grammar's shortest completion, all under the grammar's
mask. The beam is split into banks by the number of phrases met, each bank keeps its best, and
unused slots go to the other banks. EOS is allowed only once every phrase is met and the
grammar can end; a hypothesis whose missing phrases plus the grammar's shortest completion no
longer fit into the remaining tokens is dropped (estimated in tokens as the tokenizer writes
them), so the search keeps a way to finish within its budget; one that writes a forbidden
phrase is never formed."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..automata.bitmask import allocate_token_bitmask
from ..constraints.base import Constraint
from ..tokenizers.vocabulary import Vocabulary
from .models import keep_last_logits
from .phrases import PhraseConstraints
from .sampling import masked_scores


@dataclass
class BeamHypothesis:
    """One returned sequence."""

    text: str
    token_ids: list[int]
    score: float  # sum of the model's log-probabilities (EOS included when finished)
    normalized_score: float  # score / length ** length_penalty
    met: list[str | list[str]]  # the must_include items the output meets
    completed: bool  # ended with EOS (every phrase met, the constraint complete)
    prompt: str = ""
    seconds: float = 0.0
    value: Any = None  # parsed JSON for schemas
    valid: bool | None = None
    parse_tree: Any = None


@dataclass
class _Hyp:
    tokens: list[int]
    score: float
    state: int
    met: int
    matcher: Any
    row: int = 0  # its row in the model batch


class BatchScorer:
    """Next-token log-probs for a beam of continuations of one prompt (transformers model with
    a KV cache reordered between steps) — or ``fn(prefixes)`` for a toy model."""

    def __init__(self, model: Any = None, prompt_ids: Sequence[int] = (), fn: Callable | None = None) -> None:
        self.model, self.prompt_ids, self.fn = model, list(prompt_ids), fn
        self.cache: Any = None
        self.prefixes: list[list[int]] = [[]]

    @torch.inference_mode()
    def step(self, parents: list[int] | None, tokens: list[int] | None) -> torch.Tensor:
        """Reorders the rows to ``parents``, appends ``tokens``; returns (rows, V) log-probs.
        The first call (``None, None``) scores the prompt."""
        if self.fn is not None:
            if parents is not None:
                self.prefixes = [self.prefixes[p] + [t] for p, t in zip(parents, tokens)]
            return torch.log_softmax(torch.as_tensor(np.asarray(self.fn(self.prefixes)), dtype=torch.float64), dim=-1)
        device = self.model.device
        if parents is None:
            ids = torch.tensor([self.prompt_ids], dtype=torch.long, device=device)
            out = self.model(input_ids=ids, use_cache=True, **keep_last_logits(self.model, 1))
            self.length = len(self.prompt_ids)
        else:
            self.cache.batch_select_indices(torch.tensor(parents, dtype=torch.long, device=device))
            ids = torch.tensor([[t] for t in tokens], dtype=torch.long, device=device)
            positions = torch.full((len(tokens), 1), self.length, dtype=torch.long, device=device)
            out = self.model(input_ids=ids, position_ids=positions, past_key_values=self.cache, use_cache=True)
            self.length += 1
        self.cache = out.past_key_values
        return torch.log_softmax(out.logits[:, -1, :].double(), dim=-1)


def constrained_beam_search(
    scorer: BatchScorer,
    vocab: Vocabulary,
    phrases: PhraseConstraints,
    constraint: Constraint | None,
    *,
    encode: Callable[[bytes], list[int]],
    num_beams: int = 8,
    num_return_sequences: int = 1,
    max_new_tokens: int = 64,
    length_penalty: float = 1.0,
    patience: float = 1.0,
    candidates_per_row: int = 1,
) -> list[BeamHypothesis]:
    """The search itself; ``encode(bytes) -> ids`` is the model's tokenization (for phrase tokens)."""
    if num_return_sequences > num_beams:
        raise ValueError("num_return_sequences must be <= num_beams")
    started = time.perf_counter()
    eos_ids = list(vocab.eos_token_ids)
    eos_set = set(eos_ids)
    n_banks = len(phrases.groups) + 1
    first_token_cache: dict[bytes, list[int]] = {}
    budget = _FinishingBudget(vocab, phrases, constraint, encode)

    def phrase_tokens(rest: bytes) -> list[int]:
        if rest not in first_token_cache:
            ids = set()
            for variant in (rest, b" " + rest):
                enc = encode(variant)
                if enc:
                    ids.add(enc[0])
            first_token_cache[rest] = sorted(ids)
        return first_token_cache[rest]

    live = [_Hyp([], 0.0, 0, 0, constraint.matcher() if constraint is not None else None)]
    finished: list[tuple[float, _Hyp]] = []
    keep = max(num_beams, math.ceil(num_beams * patience))
    logprobs = scorer.step(None, None)
    bitmask = allocate_token_bitmask(num_beams, vocab.logits_width)
    for step in range(max_new_tokens):
        rows = len(live)
        masked = masked_scores(logprobs, vocab.n_tokens, [h.matcher for h in live] if constraint is not None else None, bitmask)
        for r, h in enumerate(live):
            if h.met != phrases.all_met:
                masked[r, eos_ids] = float("-inf")
        total = masked + torch.tensor([h.score for h in live], dtype=masked.dtype)[:, None]
        proposals: set[tuple[int, int]] = set()
        flat = total.flatten()
        k = min(2 * num_beams, int(torch.isfinite(flat).sum()))
        if k:
            for i in torch.topk(flat, k).indices.tolist():
                proposals.add((i // total.shape[1], i % total.shape[1]))
        best = torch.topk(total, min(candidates_per_row, total.shape[1]), dim=-1)
        for r in range(rows):
            for v, t in zip(best.values[r].tolist(), best.indices[r].tolist()):
                if math.isfinite(v):
                    proposals.add((r, t))
            for rests in phrases.remainders(live[r].state, live[r].met):
                for rest in rests:
                    for t in phrase_tokens(rest):
                        if math.isfinite(float(total[r, t])):
                            proposals.add((r, t))
            # the way to the end: EOS where it is allowed, else the first token of the
            # shortest completion of the grammar
            for t in eos_ids[:1] if live[r].met == phrases.all_met else []:
                if math.isfinite(float(total[r, t])):
                    proposals.add((r, t))
            t = budget.closing_token(live[r].matcher)
            if t is not None and math.isfinite(float(total[r, t])):
                proposals.add((r, t))
        remaining_steps = max_new_tokens - step - 1
        candidates = []
        for r, t in proposals:
            h = live[r]
            score = float(total[r, t])
            if t in eos_set:
                finished.append((score / max(1, len(h.tokens) + 1) ** length_penalty, _Hyp(h.tokens + [t], score, h.state, h.met, h.matcher)))
                continue
            state, met, ok = phrases.advance(h.state, h.met, vocab.token_bytes[t])
            if not ok:
                continue
            grammar_state = constraint.advance(h.matcher.state, t) if h.matcher is not None else None
            overshoot = budget.tokens_to_finish(state, met, grammar_state) - remaining_steps
            candidates.append((score, r, t, state, met, overshoot))
        # a hypothesis that can no longer meet its phrases and end within the remaining tokens
        # is dropped (when none can, those that overshoot least stay)
        least = min((c[5] for c in candidates), default=0)
        candidates = [c[:5] for c in candidates if c[5] <= max(0, least)]
        chosen = _allocate(candidates, num_beams, n_banks)
        finished.sort(key=lambda x: -x[0])
        del finished[keep:]
        if not chosen:
            live = []
            break
        new_live = []
        for score, r, t, state, met in chosen:
            parent = live[r]
            m = parent.matcher.copy() if parent.matcher is not None else None
            if m is not None and not m.accept_token(t):
                raise RuntimeError(f"internal error: masked token {t} refused by the matcher")
            new_live.append(_Hyp(parent.tokens + [t], score, state, met, m, row=r))
        live = new_live
        if len(finished) >= keep:
            best_live = max(h.score for h in live)
            bound = best_live / max(1, max_new_tokens + 1) ** length_penalty if length_penalty > 0 else best_live / max(1, step + 2) ** length_penalty
            if bound <= finished[-1][0]:
                break
        if step + 1 < max_new_tokens:
            logprobs = scorer.step([h.row for h in live], [h.tokens[-1] for h in live])
    seconds = time.perf_counter() - started
    results = [(ns, h, True) for ns, h in finished]
    if len(results) < num_return_sequences:  # no EOS in time: the best unfinished, marked incomplete
        extra = sorted(live, key=lambda h: (-bin(h.met).count("1"), -h.score))
        results += [(h.score / max(1, len(h.tokens)) ** length_penalty, h, False) for h in extra]
    results.sort(key=lambda x: (not x[2], -x[0]))
    out = []
    for ns, h, done in results[:num_return_sequences]:
        ids = [t for t in h.tokens if t not in eos_set]
        out.append(
            BeamHypothesis(
                text=vocab.decode(ids),
                token_ids=ids,
                score=h.score,
                normalized_score=ns,
                met=[_item(phrases, g) for g in range(len(phrases.groups)) if h.met >> g & 1],
                completed=done,
                seconds=seconds,
            )
        )
    return out


class _FinishingBudget:
    """Estimates of what a hypothesis still needs: the tokens of its missing phrases (as the
    tokenizer writes what is left of each) plus those of the grammar's shortest completion,
    plus EOS; and the first token of that completion. Cached per state."""

    def __init__(self, vocab: Vocabulary, phrases: PhraseConstraints, constraint: Constraint | None,
                 encode: Callable[[bytes], list[int]]) -> None:
        self.vocab, self.phrases, self.constraint, self.encode = vocab, phrases, constraint, encode
        self._phrase_cost: dict[tuple[int, int], int] = {}
        self._closing: dict[Any, tuple[int, int | None]] = {}

    def tokens_to_finish(self, phrase_state: int, met: int, grammar_state: Any) -> int:
        key = (phrase_state, met)
        cost = self._phrase_cost.get(key)
        if cost is None:
            cost = sum(
                min(len(self.encode(variant)) for rest in rests for variant in (rest, b" " + rest))
                for rests in self.phrases.remainders(phrase_state, met)
            )
            self._phrase_cost[key] = cost
        return cost + self._closing_of(grammar_state)[0] + 1

    def closing_token(self, matcher: Any) -> int | None:
        return self._closing_of(matcher.state)[1] if matcher is not None else None

    def _closing_of(self, state: Any) -> tuple[int, int | None]:
        if self.constraint is None or state is None:
            return 0, None
        found = self._closing.get(state)
        if found is None:
            text = self.constraint.shortest_completion(state)
            if not text:  # complete already, or not found within the search limits
                found = (0, None)
            else:
                found = (len(self.encode(text)), self._first_token(state, text))
            self._closing[state] = found
        return found

    def _first_token(self, state: Any, text: bytes) -> int | None:
        """The longest token that starts ``text`` and the grammar allows here."""
        trie = self.vocab.trie
        for node in reversed(trie.prefix_nodes(text[:32])):
            for t in trie.tokens_at(node).tolist():
                if self.constraint.advance(state, t) is not None:
                    return t
        return None


def _item(phrases: PhraseConstraints, g: int) -> str | list[str]:
    alts = [p.decode("utf-8") for p in phrases.groups[g]]
    return alts[0] if len(alts) == 1 else alts


def _allocate(candidates: list[tuple], num_beams: int, n_banks: int) -> list[tuple]:
    """Dynamic beam allocation: candidates grouped by phrases met, an equal share of the beam
    per bank (the remainder to the banks with most met), unused slots handed on, best first."""
    banks: list[list[tuple]] = [[] for _ in range(n_banks)]
    for c in candidates:
        banks[bin(c[4]).count("1")].append(c)
    for bank in banks:
        bank.sort(key=lambda c: -c[0])
    share = [num_beams // n_banks] * n_banks
    for i in range(num_beams % n_banks):
        share[n_banks - 1 - i] += 1
    chosen = []
    spare = 0
    for b in range(n_banks - 1, -1, -1):  # most met first
        take = min(len(banks[b]), share[b])
        chosen += banks[b][:take]
        spare += share[b] - take
        banks[b] = banks[b][take:]
    while spare > 0:
        leftovers = [(b, banks[b][0]) for b in range(n_banks - 1, -1, -1) if banks[b]]
        if not leftovers:
            break
        for b, _ in leftovers:
            if spare == 0:
                break
            chosen.append(banks[b].pop(0))
            spare -= 1
    return chosen


def beam_search(
    prompt: str,
    must_include: Sequence[str | Sequence[str]] = (),
    constraint: Constraint | None = None,
    *,
    must_not_include: Sequence[str] = (),
    regex: str | None = None,
    choices: Sequence[str] | None = None,
    grammar: str | None = None,
    gbnf: str | None = None,
    schema: Any = None,
    num_beams: int = 8,
    num_return_sequences: int = 1,
    max_new_tokens: int = 64,
    length_penalty: float = 1.0,
    patience: float = 1.0,
    model: Any = None,
    tokenizer: Any = None,
    chat_template: bool = True,
    system_prompt: str | None = None,
) -> list[BeamHypothesis]:
    """The ``num_return_sequences`` best outputs that contain every ``must_include`` item (a
    phrase, or a list of alternatives), none of ``must_not_include``, and satisfy the constraint
    (a compiled one or ``regex=`` / ``choices=`` / ``grammar=`` / ``gbnf=`` / ``schema=``)."""
    from .decode import attach_parsed_output, model_and_vocabulary, render_prompt, resolve_constraint
    from .drafts import tokenizer_encoder
    from .result import GenerationResult

    model, tokenizer, vocab = model_and_vocabulary(model, tokenizer)
    compiled = resolve_constraint(vocab, regex=regex, choices=choices, grammar=grammar, gbnf=gbnf, schema=schema, constraint=constraint)
    phrases = PhraseConstraints(must_include, must_not_include)
    ids = render_prompt(tokenizer, prompt, chat_template=chat_template, system_prompt=system_prompt)
    results = constrained_beam_search(
        BatchScorer(model, ids), vocab, phrases, compiled, encode=tokenizer_encoder(tokenizer),
        num_beams=num_beams, num_return_sequences=num_return_sequences, max_new_tokens=max_new_tokens,
        length_penalty=length_penalty, patience=patience,
    )
    for r in results:
        r.prompt = prompt
        probe = GenerationResult(text=r.text, token_ids=r.token_ids, completed=r.completed, finish_reason="eos")
        attach_parsed_output(probe, compiled, schema)
        r.value, r.valid, r.parse_tree = probe.value, probe.valid, probe.parse_tree
    return results
