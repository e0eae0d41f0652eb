"""Grammar-aligned sampling: draws that follow the model's distribution conditioned on the
constraint, p(x | x satisfies it), instead of the distribution plain masking produces.

Both methods keep a trie over the prefixes sampled so far. Each scored prefix w stores the mass
the constraint allows after it, Z(w), and V(w): an upper bound on the probability that the model
continues w into a sentence of the constraint (the expected future grammaticality of
"Grammar-Aligned Decoding", Park et al. 2024). Tokens never tried count as 1, tokens the mask
forbids as 0, tokens tried as their child's V; every draw tightens the bounds on its path.
Proposals pick token t after w with probability proportional to P(t | w) V(wt).

- ``"asap"`` (adaptive sampling with approximate expected futures) returns every proposal; as
  the bounds converge the samples approach the conditional distribution.
- ``"exact"`` accepts a proposal with probability prod_i S(w_i) / V(w_i) over its prefixes past
  the first, where S(w) is the normaliser the proposal met at w. Then accepted samples are exact
  draws from p(x | constraint), i.i.d. (the idea of adaptive rejection sampling, as in CARS); the
  test runs token by token, so a doomed proposal stops early, and what it saw still tightens
  the bounds, so acceptance rises as the trie grows.
- ``"mask"`` is plain masking, with its importance weights recorded.

The target is the model at temperature 1, untruncated, over sentences of at most
``max_new_tokens`` tokens followed by EOS.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..automata.bitmask import allocate_token_bitmask, apply_token_bitmask_inplace
from ..constraints.base import Constraint
from .decode import attach_parsed_output, model_and_vocabulary, render_prompt, resolve_constraint
from .result import GenerationResult
from .scoring import ModelScorer, TokenScorer

METHODS = ("asap", "exact", "mask")


class _Node:
    """A scored prefix: ``prob`` = P(last token | parent), ``z`` = mass allowed after it,
    ``value`` = V, the upper bound on its probability of ending in a sentence."""

    __slots__ = ("prob", "z", "children", "value")

    def __init__(self, prob: float, z: float) -> None:
        self.prob = prob
        self.z = z
        self.children: dict[int, _Node] = {}
        self.value = z

    def refresh(self) -> None:
        explored = kept = 0.0
        for child in self.children.values():
            explored += child.prob
            kept += child.prob * child.value
        self.value = max(0.0, self.z - explored) + kept


@dataclass
class SamplerStats:
    """Counts over the sampler's lifetime."""

    proposals: int = 0  # sequences started
    accepted: int = 0  # sequences returned
    rejected: int = 0  # stopped by the exact sampler's test
    dead_ends: int = 0  # reached a prefix with no allowed continuation of positive probability
    token_steps: int = 0  # (sequence, position) pairs scored by the model
    seconds: float = 0.0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.proposals if self.proposals else float("nan")


@dataclass
class _Draw:
    tokens: list[int] = field(default_factory=list)  # sampled ids, EOS included when reached
    token_logprobs: list[float] = field(default_factory=list)  # log P(token | prefix) of each sampled token
    z: list[float] = field(default_factory=list)  # log mass allowed at each scored position
    logprob: float = 0.0
    log_proposal: float = 0.0
    status: str = "live"  # live | eos | rejected | dead_end


class AlignedSampler:
    """Samples continuations of one prompt under one constraint, learning across calls.

    ``sampler = AlignedSampler("Pick a number.", regex=r"1\\d\\d", method="exact")`` then
    ``sampler.sample(100)``. The constraint is a compiled ``Constraint`` or one of ``regex=``,
    ``choices=``, ``grammar=``, ``gbnf=``, ``schema=``. ``scorer=`` replaces the model by any
    next-token scorer (see ``structgen.generation.scoring``); ``prompt`` is then unused.
    """

    def __init__(
        self,
        prompt: str | Sequence[int] | None = None,
        constraint: Constraint | None = None,
        *,
        method: str = "asap",
        model: Any = None,
        tokenizer: Any = None,
        scorer: TokenScorer | None = None,
        regex: str | None = None,
        choices: Sequence[str] | None = None,
        grammar: str | None = None,
        gbnf: str | None = None,
        schema: Any = None,
        max_new_tokens: int = 32,
        batch_size: int = 16,
        seed: int | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        chat_template: bool = True,
        system_prompt: str | None = None,
        max_proposals: int | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if temperature != 1.0 or top_k is not None or top_p not in (None, 1.0):
            raise ValueError(
                "aligned sampling targets the model's own distribution (temperature 1, no top-k / top-p) "
                "conditioned on the constraint; a changed temperature or truncation changes every step's "
                "distribution, so no sampler here could target p(x | constraint). Use structgen.generate() "
                "for tempered or truncated sampling."
            )
        if max_new_tokens < 1 or batch_size < 1:
            raise ValueError("max_new_tokens and batch_size must be >= 1")
        self.method = method
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_proposals = max_proposals
        self.generator = torch.Generator().manual_seed(seed if seed is not None else int(torch.seed() % 2**63))
        self.prompt = prompt if isinstance(prompt, str) else ""
        self.python_type = schema
        if scorer is not None:
            if constraint is None:
                raise ValueError("with scorer=, give a compiled constraint")
            self.constraint, self.scorer = constraint, scorer
        else:
            self.constraint, self.scorer = _model_and_constraint(
                prompt, constraint, model, tokenizer, chat_template, system_prompt,
                dict(regex=regex, choices=choices, grammar=grammar, gbnf=gbnf, schema=schema),
            )
        self.vocab = self.constraint.vocab
        self.eos_ids = frozenset(self.vocab.eos_token_ids)
        if not self.eos_ids:
            raise ValueError("the vocabulary has no EOS id: sentences could never end")
        self.root: _Node | None = None
        self.stats = SamplerStats()
        self._spare: list[GenerationResult] = []

    # ---- public ------------------------------------------------------------------------------
    @property
    def acceptance_rate(self) -> float:
        return self.stats.acceptance_rate

    @property
    def log_valid_mass_bound(self) -> float:
        """Upper bound on log P(the model's continuation satisfies the constraint), from the
        trie (0.0 before any draw; "mask" keeps no trie)."""
        if self.root is None:
            return 0.0
        return math.log(self.root.value) if self.root.value > 0 else float("-inf")

    def sample(self, n: int) -> list[GenerationResult]:
        """``n`` complete samples, each satisfying the constraint."""
        out, self._spare = self._spare[:n], self._spare[n:]
        budget = self.max_proposals if self.max_proposals is not None else 100 * n + 1000
        started, proposals_before = time.perf_counter(), self.stats.proposals
        while len(out) < n:
            if self.stats.proposals - proposals_before >= budget:
                raise RuntimeError(
                    f"{self.method} sampler: {budget} proposals gave {len(out)} of {n} samples "
                    f"(acceptance rate {self.acceptance_rate:.3g}); raise max_proposals or max_new_tokens"
                )
            needed = n - len(out)
            if self.method == "exact":
                rate = max(self.acceptance_rate if self.stats.proposals else 1.0, 1.0 / self.batch_size)
                needed = math.ceil(needed / rate)
            draws = self._draw_batch(min(self.batch_size, needed))
            for draw in draws:
                if self.method != "mask":
                    self._record(draw)
                if draw.status == "eos":
                    out.append(self._result(draw))
                    self.stats.accepted += 1
            if self.root is not None and self.root.value <= 0.0:
                raise ValueError(
                    f"no continuation satisfying the constraint within max_new_tokens={self.max_new_tokens} "
                    "has positive probability under the model"
                )
        self.stats.seconds += time.perf_counter() - started
        out, self._spare = out[:n], self._spare + out[n:]
        return out

    # ---- one batch ---------------------------------------------------------------------------
    def _draw_batch(self, size: int) -> list[_Draw]:
        self.stats.proposals += size
        draws = [_Draw() for _ in range(size)]
        matchers = [self.constraint.matcher() for _ in range(size)]
        cursors: list[_Node | None] = [self.root] * size
        live = list(range(size))  # draw index of each live row
        session = self.scorer.session(size)
        logprobs = session.step()
        bitmask = allocate_token_bitmask(size, self.vocab.logits_width)
        eos_only = self.constraint.eos_words.view(np.int32)
        for depth in range(self.max_new_tokens + 1):
            rows = len(live)
            logprobs = logprobs.double()
            if logprobs.shape[-1] != self.vocab.logits_width:
                raise ValueError(f"the scorer gives {logprobs.shape[-1]} scores per token, the vocabulary has {self.vocab.logits_width}")
            self.stats.token_steps += rows
            for r, d in enumerate(live):
                if depth < self.max_new_tokens:
                    matchers[d].fill_bitmask(bitmask, r)
                else:  # the length limit: only EOS, where the output can end
                    bitmask[r] = torch.from_numpy(eos_only) if matchers[d].can_terminate() else 0
            masked = logprobs.clone()
            apply_token_bitmask_inplace(masked, bitmask[:rows])
            log_z = torch.logsumexp(masked, dim=-1)
            proposal = masked if self.method == "mask" else self._reweight(masked, [cursors[d] for d in live])
            log_s = torch.logsumexp(proposal, dim=-1)
            finite = torch.isfinite(log_s)
            probs = torch.where(finite[:, None], torch.exp(proposal - log_s[:, None].where(finite[:, None], 0.0)), 1.0)
            chosen = torch.multinomial(probs, 1, generator=self.generator).squeeze(-1).tolist()
            uniforms = torch.rand(rows, generator=self.generator, dtype=torch.float64).tolist()
            next_live, next_tokens, keep = [], [], []
            for r, d in enumerate(live):
                draw, cursor = draws[d], cursors[d]
                draw.z.append(float(log_z[r]))
                if not bool(finite[r]):
                    draw.status = "dead_end"
                    self.stats.dead_ends += 1
                    continue
                if self.method == "exact" and depth > 0:
                    bound = cursor.value if cursor is not None else 1.0
                    if uniforms[r] > math.exp(float(log_s[r])) / bound:
                        draw.status = "rejected"
                        self.stats.rejected += 1
                        continue
                t = chosen[r]
                draw.tokens.append(t)
                draw.token_logprobs.append(float(logprobs[r, t]))
                draw.logprob += draw.token_logprobs[-1]
                draw.log_proposal += float(proposal[r, t] - log_s[r])
                if t in self.eos_ids:
                    draw.status = "eos"
                    continue
                if not matchers[d].accept_token(t):
                    raise RuntimeError(f"internal error: masked token {t} refused by the matcher")
                cursors[d] = cursor.children.get(t) if cursor is not None else None
                next_live.append(d)
                next_tokens.append(t)
                keep.append(r)
            live = next_live
            if not live:
                break
            logprobs = session.step(next_tokens, keep)
        for d in live:  # unreachable: the last position allows EOS only
            draws[d].status = "dead_end"
        return draws

    @staticmethod
    def _reweight(masked: torch.Tensor, cursors: list[_Node | None]) -> torch.Tensor:
        """log P(t | w) + log V(wt) for the children already in the trie (others count V = 1)."""
        out = None
        for r, node in enumerate(cursors):
            if node is None or not node.children:
                continue
            if out is None:
                out = masked.clone()
            ids = torch.tensor(list(node.children), dtype=torch.long)
            values = torch.tensor([c.value for c in node.children.values()], dtype=torch.float64)
            out[r, ids] += torch.log(values)
        return masked if out is None else out

    # ---- learning from a draw ----------------------------------------------------------------
    def _record(self, draw: _Draw) -> None:
        """Adds the draw's prefixes to the trie and tightens the bounds along its path."""
        if not draw.z:
            return
        if self.root is None:
            self.root = _Node(1.0, math.exp(draw.z[0]))
        path = [self.root]
        node = self.root
        for depth, token in enumerate(draw.tokens):
            child = node.children.get(token)
            if child is None:
                prob = math.exp(draw.token_logprobs[depth])
                if token in self.eos_ids:
                    child = _Node(prob, 1.0)  # a complete sentence
                else:
                    child = _Node(prob, math.exp(draw.z[depth + 1]))
                node.children[token] = child
            node = child
            path.append(node)
        for node in reversed(path):
            if node.children:
                node.refresh()

    def _result(self, draw: _Draw) -> GenerationResult:
        ids = draw.tokens[:-1]  # without the EOS
        exact = self.method == "exact"
        result = GenerationResult(
            text=self.vocab.decode(ids),
            token_ids=ids,
            completed=True,
            finish_reason="eos",
            log_z=list(draw.z),
            logprob=draw.logprob,
            log_proposal=draw.logprob if exact else draw.log_proposal,
            prompt=self.prompt,
        )
        attach_parsed_output(result, self.constraint, self.python_type)
        return result


def _model_and_constraint(
    prompt: str | Sequence[int] | None,
    constraint: Constraint | None,
    model: Any,
    tokenizer: Any,
    chat_template: bool,
    system_prompt: str | None,
    named: dict[str, Any],
) -> tuple[Constraint, ModelScorer]:
    model, tokenizer, vocab = model_and_vocabulary(model, tokenizer)
    compiled = resolve_constraint(vocab, constraint=constraint, **named)
    if compiled is None:
        raise ValueError("aligned sampling needs a constraint")
    if prompt is None:
        raise ValueError("give a prompt")
    if isinstance(prompt, str):
        ids = render_prompt(tokenizer, prompt, chat_template=chat_template, system_prompt=system_prompt)
    else:
        ids = [int(i) for i in prompt]
    return compiled, ModelScorer(model, ids)
