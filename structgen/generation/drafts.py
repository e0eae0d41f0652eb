"""Draft sources for speculative decoding: each proposes tokens that may come next, and the
model verifies them (see speculative.py). A wrong draft costs nothing but its verification."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

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

    # optional: ``finish(output_ids)``, called once when the request ends


def may_grow(matcher: Matcher, token: int) -> bool:
    """True if a token that ``matcher`` allows (at the position of ``token``) starts with
    ``token``'s bytes and is longer: the model could write that one instead."""
    vocab = matcher.constraint.vocab
    data = vocab.token_bytes[token]
    nodes = vocab.trie.prefix_nodes(data)
    if not data or len(nodes) < len(data):
        return False
    ids = vocab.trie.tokens_below(nodes[-1]).astype(np.int64)
    if not len(ids):
        return False
    words = matcher.mask_words()
    return bool(((words[ids >> 5] >> (ids & 31).astype(words.dtype)) & 1).any())


def _trim_tail(ids: list[int], matcher: Matcher, exact: bool) -> list[int]:
    """``ids`` (drafted from text cut at an arbitrary point, all allowed by ``matcher``) less
    the last token where it may be the start of a longer token the model would write
    (``exact``: where ``may_grow``; else unless the output must end after it)."""
    if not ids:
        return ids
    probe = matcher.copy()
    probe.accept_tokens(ids[:-1])
    if exact:
        return ids[:-1] if may_grow(probe, ids[-1]) else ids
    probe.accept_token(ids[-1])
    return ids if probe.only_eos_allowed() else ids[:-1]


class ForcedDraft:
    """The text the constraint allows uniquely from here (keys, punctuation, the rest of the only
    enum value that fits), tokenized as the model's tokenizer would, cut where the constraint stops
    accepting it. The last token is held back when it may merge with what follows into a longer
    token (``exact_hold_back``: when an allowed token extends it, see ``may_grow``; else unless
    the output must end there)."""

    name = "forced"

    def __init__(self, tokenize: Callable[[bytes], list[int]], max_bytes: int = 256, exact_hold_back: bool = False) -> None:
        self.tokenize = tokenize
        self.max_bytes = max_bytes
        self.exact_hold_back = exact_hold_back

    def propose(self, ctx: DraftContext) -> list[int]:
        m = ctx.matcher
        if m is None or m.is_terminated():
            return []
        forced = m.forced_bytes(self.max_bytes)
        if not forced:
            return []
        ids = self.tokenize(forced)
        return _trim_tail(ids[: m.validate_tokens(ids)], m, self.exact_hold_back)

    def feedback(self, proposed: int, accepted: int) -> None:
        pass


DRAFT_LENGTHS = (3, 7, 15, 31)  # with the pending token 4, 8, 16, 32 rows: the sizes CPU passes are computed with


class _AdaptiveLength:
    """A draft length among ``DRAFT_LENGTHS`` (up to ``max_len``): the next one up after a fully
    accepted draft, the smallest that holds one past the accepted part after a rejection."""

    max_len, length = DRAFT_LENGTHS[-1], DRAFT_LENGTHS[0]

    def feedback(self, proposed: int, accepted: int) -> None:
        if proposed == 0:
            return
        sizes = [n for n in DRAFT_LENGTHS if n <= self.max_len] or [self.max_len]
        if accepted == proposed:
            self.length = next((n for n in sizes if n > self.length), sizes[-1])
        else:
            self.length = next((n for n in sizes if n > accepted), sizes[-1])


class NgramDraft(_AdaptiveLength):
    """Prompt lookup: the tokens that followed an earlier occurrence of the last n tokens
    (n = max_n down to 1) in the prompt and the output, the latest occurrence first, cut to what
    the constraint allows; occurrences whose continuation the constraint refuses at once are
    skipped (up to ``tries`` per n). The draft length adapts: longer after a fully accepted
    draft, shorter after a rejection."""

    name = "ngram"

    def __init__(self, max_n: int = 4, max_len: int = DRAFT_LENGTHS[-1], tries: int = 8) -> None:
        self.max_n, self.max_len, self.tries = max_n, max_len, tries
        self.length = min(DRAFT_LENGTHS[0], max_len)

    def propose(self, ctx: DraftContext) -> list[int]:
        seq = list(ctx.prompt_ids) + list(ctx.output_ids)
        for n in range(min(self.max_n, len(seq) - 1), 0, -1):
            tail = seq[-n:]
            tries = self.tries
            for start in range(len(seq) - n - 1, -1, -1):
                if seq[start : start + n] != tail:
                    continue
                draft = seq[start + n : start + n + self.length]
                if ctx.matcher is not None:
                    draft = draft[: ctx.matcher.validate_tokens(draft)]
                if draft:
                    return draft
                tries -= 1
                if tries == 0:
                    break
        return []


class TextLookupDraft(_AdaptiveLength):
    """Prompt lookup over text rather than token ids: the bytes that followed the latest
    earlier occurrence of the output's last ``max_match`` .. ``min_match`` bytes (in the prompt
    and the output), tokenized as the model's tokenizer would and cut to what the constraint
    allows. Finds what token lookup misses when the same text was split into other tokens
    (``{"`` in a compact schema, ``{ "`` in the output). Adaptive length as ``NgramDraft``."""

    name = "text"

    def __init__(self, token_bytes: Sequence[bytes], tokenize: Callable[[bytes], list[int]],
                 min_match: int = 2, max_match: int = 16, max_len: int = DRAFT_LENGTHS[-1], tries: int = 4) -> None:
        self.token_bytes, self.tokenize = token_bytes, tokenize
        self.min_match, self.max_match, self.max_len, self.tries = min_match, max_match, max_len, tries
        self.length = min(DRAFT_LENGTHS[0], max_len)
        self._prompt: tuple[int, int, bytes] = (0, -1, b"")  # (id of the prompt list, its length, its text)

    def propose(self, ctx: DraftContext) -> list[int]:
        key = (id(ctx.prompt_ids), len(ctx.prompt_ids))
        if self._prompt[:2] != key:
            self._prompt = (*key, b"".join(self.token_bytes[t] for t in ctx.prompt_ids))
        text = self._prompt[2] + b"".join(self.token_bytes[t] for t in ctx.output_ids)
        for m in range(min(self.max_match, len(text) - 1), self.min_match - 1, -1):
            tail, end = text[-m:], len(text) - 1
            for _ in range(self.tries):
                at = text.rfind(tail, 0, end)
                if at < 0:
                    break
                follow = text[at + m : at + m + 8 * self.length]
                ids = self.tokenize(follow)[: self.length]
                if ctx.matcher is not None:
                    ids = ids[: ctx.matcher.validate_tokens(ids)]
                if ids:
                    return ids
                end = at + m - 1
        return []


class OutputHistory:
    """Recent outputs of one tokenizer's requests (at most ``max_outputs``), indexed by their
    n-grams (n = 1 .. ``max_n``) for ``HistoryDraft``. Thread-safe enough for lookups racing
    an append: entries are only added whole and evicted by rebuilding the index."""

    def __init__(self, max_outputs: int = 256, max_n: int = 4) -> None:
        self.max_outputs, self.max_n = max_outputs, max_n
        self.outputs: list[list[int]] = []
        self.index: dict[tuple[int, ...], list[tuple[int, int]]] = {}  # n-gram -> (output, end of the n-gram)
        self._first = 0  # the number of outputs evicted so far (index entries count from it)

    def add(self, output: Sequence[int]) -> None:
        if len(output) < 2:
            return
        if len(self.outputs) >= self.max_outputs:
            drop = len(self.outputs) - self.max_outputs // 2
            self.outputs, self._first = self.outputs[drop:], self._first + drop
            self.index = {}
            for i, seq in enumerate(self.outputs):
                self._index(self._first + i, seq)
        self.outputs.append([int(t) for t in output])
        self._index(self._first + len(self.outputs) - 1, self.outputs[-1])

    def _index(self, number: int, seq: list[int]) -> None:
        for n in range(1, self.max_n + 1):
            for end in range(n, len(seq)):
                self.index.setdefault(tuple(seq[end - n : end]), []).append((number, end))

    def continuations(self, tail: Sequence[int], length: int):
        """What followed ``tail`` in earlier outputs, the latest first."""
        for number, end in reversed(self.index.get(tuple(tail), ())):
            i = number - self._first
            if 0 <= i < len(self.outputs):
                yield self.outputs[i][end : end + length]


_histories: dict[int, tuple[Any, OutputHistory]] = {}


def history_of(tokenizer: Any) -> OutputHistory:
    """The process-wide output history of a tokenizer (outputs of different tokenizers never
    mix)."""
    hit = _histories.get(id(tokenizer))
    if hit is None or hit[0] is not tokenizer:
        hit = _histories[id(tokenizer)] = (tokenizer, OutputHistory())
    return hit[1]


def set_history(tokenizer: Any, history: OutputHistory) -> None:
    """Makes ``history`` the one ``history_of(tokenizer)`` returns (a fresh or a separate one)."""
    _histories[id(tokenizer)] = (tokenizer, history)


class HistoryDraft(_AdaptiveLength):
    """Lookup in earlier outputs (suffix decoding): the tokens that followed the output's last
    ``max_n`` .. 1 tokens in the outputs of earlier requests, the latest first, cut to what the
    constraint allows. Requests with the same or a similar schema write the same keys, values
    and layout. Outputs are remembered when a request ends (``finish``); they only ever become
    drafts, which the model verifies, so another request's text cannot reach an output."""

    name = "history"

    def __init__(self, history: OutputHistory, tries: int = 8) -> None:
        self.history, self.tries = history, tries
        self.length = DRAFT_LENGTHS[0]

    def propose(self, ctx: DraftContext) -> list[int]:
        max_n = self.history.max_n  # only the last max_n tokens are looked up
        seq = (list(ctx.prompt_ids[-max_n:]) + list(ctx.output_ids[-max_n:]))[-max_n:]
        for n in range(len(seq), 0, -1):
            for tries, draft in enumerate(self.history.continuations(seq[-n:], self.length)):
                if ctx.matcher is not None:
                    draft = draft[: ctx.matcher.validate_tokens(draft)]
                if draft:
                    return draft
                if tries + 1 >= self.tries:
                    break
        return []

    def finish(self, output_ids: Sequence[int]) -> None:
        self.history.add(output_ids)


@dataclass
class Draft:
    """Tokens proposed for one verification pass, made of segments from the sources (a forced
    run may be followed by an n-gram continuation of it, and so on)."""

    tokens: list[int]
    segments: list[tuple[DraftSource, int, int]]  # (source, start, length) within tokens

    def cut(self, length: int) -> None:
        """Keeps the first ``length`` tokens."""
        self.tokens = self.tokens[:length]
        self.segments = [(s, start, min(n, length - start)) for s, start, n in self.segments if start < length]

    def feedback(self, accepted: int) -> None:
        """Tells each source how much of its segment the model accepted."""
        for source, start, length in self.segments:
            source.feedback(length, min(max(accepted - start, 0), length))


def propose_draft(sources: Sequence[DraftSource], ctx: DraftContext, limit: int, rounds: int = 4) -> Draft:
    """The longest proposal of any source, then continued from its end (the matcher advanced
    along it on a copy) by the sources again, up to ``limit`` tokens and ``rounds`` segments."""
    draft = Draft([], [])
    matcher = ctx.matcher
    for _ in range(rounds):
        room = limit - len(draft.tokens)
        if room <= 0:
            break
        here = DraftContext(ctx.prompt_ids, list(ctx.output_ids) + draft.tokens, matcher)
        best: list[int] = []
        chosen = None
        for source in sources:
            proposal = source.propose(here)[:room]
            if len(proposal) > len(best):
                best, chosen = proposal, source
        if chosen is None:
            break
        draft.segments.append((chosen, len(draft.tokens), len(best)))
        draft.tokens += best
        if matcher is not None:
            matcher = matcher.copy()
            if not matcher.accept_tokens(best) or matcher.is_terminated():
                break
    return draft


def fitting_length(n: int) -> int:
    """The longest draft of at most ``n`` tokens that, with the pending token, fills a CPU pass
    to a size it is computed with (``cpu_speedups.padded_rows``): 0–3, 7, 15, 31... A pass over
    5–8 tokens costs as much as over 8, so a draft of 4–6 is cut to 3 rather than paid for."""
    return n if n <= 3 else (1 << ((n + 1).bit_length() - 1)) - 1


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


DRAFT_SOURCES = ("forced", "ngram", "text", "history")
DEFAULT_SOURCES = ("forced", "ngram", "history")  # speculative=True


def make_sources(names: Sequence[str], tokenizer: Any, token_bytes: Sequence[bytes] = ()) -> list[DraftSource]:
    """Draft sources by name; ``tokenizer`` (transformers) tokenizes drafted text, and
    ``token_bytes`` (the vocabulary's) turns ids back into text for the ``text`` source."""
    unknown = [n for n in names if n not in DRAFT_SOURCES]
    if unknown:
        raise ValueError(f"unknown draft source(s) {unknown}; choose from {list(DRAFT_SOURCES)}")
    encode = tokenizer_encoder(tokenizer)
    made = {
        "forced": lambda: ForcedDraft(encode, exact_hold_back=True),
        "ngram": NgramDraft,
        "text": lambda: TextLookupDraft(token_bytes, encode),
        "history": lambda: HistoryDraft(history_of(tokenizer)),
    }
    return [made[n]() for n in names]
