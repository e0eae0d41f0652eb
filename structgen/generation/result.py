"""What a generation returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class GenerationResult:
    """One generated sequence.

    ``log_z[t]`` is the log of the probability mass the model gave to the tokens the constraint
    allowed at step ``t`` (at temperature 1, before top-k/top-p). For plain masking at
    temperature 1 its sum is the log importance weight of the sample with respect to the model's
    distribution conditioned on the constraint (up to the normalising constant); samplers that
    propose otherwise record ``log_proposal`` and the weight is ``logprob - log_proposal``.
    """

    text: str
    token_ids: list[int]
    completed: bool
    finish_reason: str  # "eos" | "constraint_end" | "length" | "dead_end"
    log_z: list[float] = field(default_factory=list)
    logprob: float = 0.0  # model log-probability of the tokens (unmasked, temperature 1)
    prompt: str = ""
    prefill_seconds: float = 0.0  # the prompt's forward pass, to the first logits
    total_seconds: float = 0.0  # the whole decode loop (the batch's, for batched calls)
    parse_tree: Any = None  # a lark Tree of the output, for Lark grammars
    value: Any = None  # the parsed output, for JSON Schemas (a pydantic model / dataclass if given one)
    valid: bool | None = None  # the output checked by the jsonschema validator (JSON Schemas)
    log_proposal: float | None = None  # log-probability of the sample under the sampler that drew it
    forward_passes: int = 0  # model calls (speculative decoding reports them)
    drafted_tokens: int = 0  # draft tokens verified
    accepted_draft_tokens: int = 0  # draft tokens the verification kept

    @property
    def log_z_sum(self) -> float:
        return math.fsum(self.log_z)

    @property
    def log_importance_weight(self) -> float:
        """log p(x) - log q(x) for the target p(x | constraint) (up to a constant shared by all
        samples) and the proposal q that drew the sample."""
        if self.log_proposal is not None:
            return self.logprob - self.log_proposal
        return self.log_z_sum

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["token_ids"], d["log_z"] = list(self.token_ids), list(self.log_z)
        d["parse_tree"] = self.parse_tree.pretty() if self.parse_tree is not None else None
        if hasattr(self.value, "model_dump"):
            d["value"] = self.value.model_dump(mode="json")
        elif self.value is not None and not isinstance(self.value, (dict, list, str, int, float, bool)):
            import dataclasses

            d["value"] = dataclasses.asdict(self.value) if dataclasses.is_dataclass(self.value) else repr(self.value)
        d["log_z_sum"] = self.log_z_sum
        return d
