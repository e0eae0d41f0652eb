"""The Vocabulary: every token id's exact bytes, which ids are special, the EOS ids, and the
width of the model's logits. Everything downstream (automata, masks, decoding) reads tokens
through it and never through a tokenizer's string forms."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..automata.token_trie import TokenTrie


class Vocabulary:
    """Token bytes and token roles for one tokenizer, sized to the model's logits.

    Ids in ``[n_tokens, logits_width)`` (padding of the model's output layer) and special ids
    are never allowed by a constraint unless it names them; EOS ids are allowed exactly
    where a constraint can end.
    """

    def __init__(
        self,
        token_bytes: Sequence[bytes],
        *,
        special_ids: Iterable[int] = (),
        eos_token_ids: Iterable[int] = (),
        logits_width: int | None = None,
        kind: str = "raw",
        name: str = "",
    ) -> None:
        self.token_bytes: list[bytes] = [bytes(b) for b in token_bytes]
        self.n_tokens = len(self.token_bytes)
        self.logits_width = max(self.n_tokens, logits_width or 0)
        self.special = np.zeros(self.n_tokens, dtype=bool)
        for i in special_ids:
            self.special[i] = True
        self.eos_token_ids: tuple[int, ...] = tuple(dict.fromkeys(int(i) for i in eos_token_ids))
        for i in self.eos_token_ids:
            if not 0 <= i < self.logits_width:
                raise ValueError(f"EOS id {i} is outside the logits width {self.logits_width}")
        self.kind = kind
        self.name = name

    def __repr__(self) -> str:
        return (
            f"Vocabulary({self.name or self.kind}, n_tokens={self.n_tokens}, "
            f"logits_width={self.logits_width}, eos={list(self.eos_token_ids)})"
        )

    def __len__(self) -> int:
        return self.n_tokens

    # ---- derived, computed once ----------------------------------------------------------
    @cached_property
    def flat_bytes(self) -> tuple[np.ndarray, np.ndarray]:
        """All token bytes concatenated (uint8) and the offsets (int64, n_tokens + 1)."""
        lengths = np.fromiter((len(b) for b in self.token_bytes), dtype=np.int64, count=self.n_tokens)
        offsets = np.zeros(self.n_tokens + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        data = np.frombuffer(b"".join(self.token_bytes), dtype=np.uint8).copy()
        return data, offsets

    @cached_property
    def maskable_ids(self) -> np.ndarray:
        """Ids a byte-level constraint may allow: not special, not empty."""
        nonempty = np.fromiter((len(b) > 0 for b in self.token_bytes), dtype=bool, count=self.n_tokens)
        return np.flatnonzero(nonempty & ~self.special)

    @cached_property
    def trie(self) -> "TokenTrie":
        """The flattened token trie over ``maskable_ids``, for the numba mask kernels."""
        from ..automata.token_trie import TokenTrie

        return TokenTrie.build(self.token_bytes, self.maskable_ids)

    @cached_property
    def fingerprint(self) -> str:
        """A stable hash of everything that changes a mask (for caches keyed by tokenizer)."""
        h = hashlib.sha256()
        h.update(f"{self.n_tokens}/{self.logits_width}/{self.eos_token_ids}".encode())
        h.update(self.special.tobytes())
        for b in self.token_bytes:
            h.update(len(b).to_bytes(4, "little"))
            h.update(b)
        return h.hexdigest()[:16]

    # ---- use -------------------------------------------------------------------------------
    def decode_bytes(self, ids: Iterable[int], *, skip_special: bool = True) -> bytes:
        """The exact bytes of a token sequence (special tokens left out by default)."""
        out = []
        for i in ids:
            i = int(i)
            if i >= self.n_tokens or (skip_special and self.special[i]):
                continue
            out.append(self.token_bytes[i])
        return b"".join(out)

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        return self.decode_bytes(ids, skip_special=skip_special).decode("utf-8", errors="replace")

    # ---- constructors ----------------------------------------------------------------------
    @classmethod
    def from_tokenizer(
        cls, tokenizer: Any, *, eos_token_ids: Iterable[int] | None = None, logits_width: int | None = None
    ) -> "Vocabulary":
        """From a transformers tokenizer (fast or slow), a mistral-common tokenizer
        (SentencePiece or Tekken), or a ``sentencepiece.SentencePieceProcessor``."""
        from .loaders import vocabulary_from_tokenizer

        return vocabulary_from_tokenizer(tokenizer, eos_token_ids=eos_token_ids, logits_width=logits_width)

    @classmethod
    def from_gguf(
        cls, path: str, *, eos_token_ids: Iterable[int] | None = None, logits_width: int | None = None
    ) -> "Vocabulary":
        """From the tokenizer stored in a GGUF file (byte-level BPE or SentencePiece)."""
        from .loaders import vocabulary_from_gguf

        return vocabulary_from_gguf(path, eos_token_ids=eos_token_ids, logits_width=logits_width)
