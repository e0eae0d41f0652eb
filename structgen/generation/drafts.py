"""Draft sources for speculative decoding: each proposes tokens that may come next, and the
model verifies them (see speculative.py). A wrong draft costs nothing but its verification."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..matching.matcher import Matcher


@dataclass
class DraftContext:
    prompt_ids: Sequence[int]
    output_ids: Sequence[int]  # generated so far (the pending token included)
    matcher: Matcher | None  # at the end of output_ids; not to be advanced by a source


class DraftSource(Protocol):
    name: str

    def propose(self, ctx: DraftContext) -> list[int]: ...

    def feedback(self, proposed: int, accepted: int) -> None: ...


class ForcedDraft:
    """The text the constraint allows uniquely from here (keys, punctuation, the rest of the only
    enum value that fits), tokenized as the model's tokenizer would, cut where the constraint stops
    accepting it. The last token is held back when text may follow (it could merge with what comes
    next into a token the model prefers)."""

    name = "forced"

    def __init__(self, tokenize: Callable[[bytes], list[int]], max_bytes: int = 256) -> None:
        self.tokenize = tokenize
        self.max_bytes = max_bytes

    def propose(self, ctx: DraftContext) -> list[int]:
        m = ctx.matcher
        if m is None or m.is_terminated():
            return []
        forced = m.forced_bytes(self.max_bytes)
        if not forced:
            return []
        ids = self.tokenize(forced)
        ids = ids[: m.validate_tokens(ids)]
        if not ids:
            return []
        probe = m.copy()
        probe.accept_tokens(ids)
        return ids if probe.only_eos_allowed() else ids[:-1]

    def feedback(self, proposed: int, accepted: int) -> None:
        pass


class NgramDraft:
    """Prompt lookup: the tokens that followed the latest earlier occurrence of the last n
    tokens (n = max_n down to 1) in the prompt and the output, cut to what the constraint allows.
    The draft length adapts: longer after a fully accepted draft, shorter after a rejection."""

    name = "ngram"

    def __init__(self, max_n: int = 3, max_len: int = 10, min_len: int = 1) -> None:
        self.max_n, self.max_len, self.min_len = max_n, max_len, min_len
        self.length = min(4, max_len)

    def propose(self, ctx: DraftContext) -> list[int]:
        seq = list(ctx.prompt_ids) + list(ctx.output_ids)
        for n in range(min(self.max_n, len(seq) - 1), 0, -1):
            tail = seq[-n:]
            for start in range(len(seq) - n - 1, -1, -1):
                if seq[start : start + n] == tail:
                    draft = seq[start + n : start + n + self.length]
                    if ctx.matcher is not None:
                        draft = draft[: ctx.matcher.validate_tokens(draft)]
                    if draft:
                        return draft
                    break
        return []

    def feedback(self, proposed: int, accepted: int) -> None:
        if proposed == 0:
            return
        if accepted == proposed:
            self.length = min(self.max_len, self.length + 2)
        else:
            self.length = max(self.min_len, accepted + 1)


def tokenizer_encoder(tokenizer: Any) -> Callable[[bytes], list[int]]:
    """bytes -> ids with a transformers tokenizer (no special tokens); text that is not whole
    UTF-8 is cut to its longest decodable prefix."""

    def encode(data: bytes) -> list[int]:
        for cut in range(len(data), max(len(data) - 4, 0) - 1, -1):
            try:
                text = data[:cut].decode("utf-8")
            except UnicodeDecodeError:
                continue
            return list(tokenizer.encode(text, add_special_tokens=False)) if text else []
        return []

    return encode


DRAFT_SOURCES = ("forced", "ngram")


def make_sources(names: Sequence[str], tokenizer: Any) -> list[DraftSource]:
    """Draft sources by name; ``tokenizer`` (transformers) tokenizes forced text."""
    unknown = [n for n in names if n not in DRAFT_SOURCES]
    if unknown:
        raise ValueError(f"unknown draft source(s) {unknown}; choose from {list(DRAFT_SOURCES)}")
    return [ForcedDraft(tokenizer_encoder(tokenizer)) if n == "forced" else NgramDraft() for n in names]
