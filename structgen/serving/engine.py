"""The server's decode engine: one thread owns the model and decodes whatever requests are
waiting as one batch (each row with its own constraint, sampling parameters, stop strings
and token budget), reporting text as it is produced. Finished and cancelled rows leave the
batch (and its KV cache) at once; new requests start with the next batch."""

from __future__ import annotations

import codecs
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..automata.bitmask import allocate_token_bitmask
from ..constraints.base import Constraint
from ..generation.decode import left_padded
from ..generation.models import keep_last_logits
from ..generation.sampling import masked_scores, select_tokens
from ..tokenizers.vocabulary import Vocabulary
from .protocol import SamplingParams


@dataclass
class Delta:
    """New text of choice ``index`` (``finish_reason`` set on its last event)."""

    index: int
    text: str
    completion_tokens: int
    finish_reason: str | None = None  # "stop" | "length" | "error"
    error: str | None = None


@dataclass
class EngineRequest:
    prompt_ids: list[int]
    constraint: Constraint | None
    sampling: SamplingParams
    on_event: Callable[[Delta], None]  # called on the engine thread; must not block
    first_index: int = 0  # choice index of the first row (completions with several prompts)
    cancelled: threading.Event = field(default_factory=threading.Event)
    submitted: float = field(default_factory=time.perf_counter)

    def cancel(self) -> None:
        self.cancelled.set()


class _Row:
    """One choice being decoded."""

    def __init__(self, request: EngineRequest, index: int, generator: torch.Generator | None) -> None:
        self.request = request
        self.index = index
        self.matcher = request.constraint.matcher() if request.constraint is not None else None
        self.generator = generator
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.tokens = 0
        self.text = ""
        self.sent = 0  # characters already reported
        self.finish: str | None = None

    def add_text(self, piece: str) -> None:
        before = len(self.text)
        self.text += piece
        for stop in self.request.sampling.stop:
            at = self.text.find(stop, max(0, before - len(stop) + 1))
            if at >= 0:
                self.text = self.text[:at]
                self.finish = "stop"

    def end(self, reason: str) -> None:
        """Finishes the row: the decoder's held-back bytes are flushed first (a stop string
        they complete takes precedence)."""
        self.add_text(self.decoder.decode(b"", final=True))
        self.finish = self.finish or reason

    def safe_length(self) -> int:
        """How much text can be reported: not a tail that may still become a stop string."""
        if self.finish is not None:
            return len(self.text)
        hold = 0
        for stop in self.request.sampling.stop:
            for k in range(min(len(stop) - 1, len(self.text)), 0, -1):
                if self.text.endswith(stop[:k]):
                    hold = max(hold, k)
                    break
        return len(self.text) - hold

    def report(self) -> None:
        end = self.safe_length()
        if end > self.sent or self.finish is not None:
            delta = Delta(self.index, self.text[self.sent : end], self.tokens, self.finish)
            self.sent = end
            self.request.on_event(delta)


class Engine:
    """Decodes submitted requests in batches of at most ``max_batch`` rows on its own thread."""

    def __init__(self, model: Any, vocab: Vocabulary, *, max_batch: int = 16) -> None:
        self.model = model
        self.vocab = vocab
        self.max_batch = max_batch
        self._waiting: list[EngineRequest] = []
        self._cond = threading.Condition()
        self._stopped = False
        self.active_rows = 0
        self.batches = 0
        self._thread = threading.Thread(target=self._run, name="structgen-engine", daemon=True)
        self._thread.start()

    def submit(self, request: EngineRequest) -> None:
        if request.sampling.n > self.max_batch:
            raise ValueError(f"n={request.sampling.n} is more than the engine's batch of {self.max_batch}")
        with self._cond:
            self._waiting.append(request)
            self._cond.notify()

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=10)

    def _next_batch(self) -> list[EngineRequest] | None:
        with self._cond:
            while not self._waiting and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            batch, rows = [], 0
            for req in list(self._waiting):
                if req.cancelled.is_set():
                    self._waiting.remove(req)
                elif rows + req.sampling.n <= self.max_batch:
                    batch.append(req)
                    rows += req.sampling.n
                    self._waiting.remove(req)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if not batch:
                continue
            try:
                self._decode(batch)
            except Exception as exc:  # a failed batch answers its requests; the engine goes on
                traceback.print_exc()
                for req in batch:
                    for i in range(req.sampling.n):
                        req.on_event(Delta(req.first_index + i, "", 0, "error", f"{type(exc).__name__}: {exc}"))
            finally:
                self.active_rows = 0

    @torch.inference_mode()
    def _decode(self, requests: list[EngineRequest]) -> None:
        self.batches += 1
        rows: list[_Row] = []
        for req in requests:
            generator = torch.Generator().manual_seed(req.sampling.seed) if req.sampling.seed is not None else None
            rows.extend(_Row(req, req.first_index + i, generator) for i in range(req.sampling.n))
        self.active_rows = len(rows)
        vocab, device = self.vocab, self.model.device
        pad_id = vocab.eos_token_ids[0] if vocab.eos_token_ids else 0
        input_ids, attention, positions = left_padded([r.request.prompt_ids for r in rows], pad_id, device)
        bitmask = allocate_token_bitmask(len(rows), vocab.logits_width)
        eos_ids = set(vocab.eos_token_ids)
        past = None
        step_ids, step_positions = input_ids, positions
        while rows:
            out = self.model(input_ids=step_ids, attention_mask=attention, position_ids=step_positions,
                             past_key_values=past, use_cache=True, **keep_last_logits(self.model, 1))
            past = out.past_key_values
            logits = out.logits[:, -1, :].float()
            matchers = [r.matcher for r in rows]
            masked = masked_scores(logits, vocab.n_tokens, matchers if any(m is not None for m in matchers) else None, bitmask)
            chosen: list[int] = []
            for i, row in enumerate(rows):
                s = row.request.sampling
                tid = int(select_tokens(masked[i : i + 1], temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                                        generator=row.generator)[0])
                chosen.append(tid)
                self._advance(row, tid, eos_ids)
            keep = [i for i, r in enumerate(rows) if r.finish is None and not r.request.cancelled.is_set()]
            for r in rows:
                if not r.request.cancelled.is_set():
                    r.report()
            if len(keep) < len(rows):
                index = torch.tensor(keep, dtype=torch.long, device=device)
                rows = [rows[i] for i in keep]
                chosen = [chosen[i] for i in keep]
                self.active_rows = len(rows)
                if not rows:
                    break
                past.batch_select_indices(index)
                attention = attention.index_select(0, index)
                step_positions = step_positions.index_select(0, index)
            step_ids = torch.tensor([[t] for t in chosen], dtype=torch.long, device=device)
            attention = torch.cat([attention, torch.ones((len(rows), 1), dtype=attention.dtype, device=device)], dim=1)
            step_positions = step_positions[:, -1:] + 1

    def _advance(self, row: _Row, tid: int, eos_ids: set[int]) -> None:
        if row.matcher is not None and not row.matcher.accept_token(tid):
            raise RuntimeError(f"internal error: masked token {tid} refused by the matcher")
        if tid in eos_ids:
            row.end("stop")
            return
        row.tokens += 1
        row.add_text(row.decoder.decode(self.vocab.decode_bytes([tid])))
        if row.finish is not None:
            return
        if row.matcher is not None and row.matcher.only_eos_allowed():
            row.end("stop")
        elif row.tokens >= row.request.sampling.max_tokens:
            row.end("length")
