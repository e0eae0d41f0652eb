"""Reading a Vocabulary out of real tokenizers: transformers, mistral-common, sentencepiece,
and GGUF files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from ..errors import TokenizerError
from .byte_decoding import byte_level_to_bytes, sentencepiece_to_bytes
from .vocabulary import Vocabulary


def vocabulary_from_tokenizer(
    tokenizer: Any, *, eos_token_ids: Iterable[int] | None = None, logits_width: int | None = None
) -> Vocabulary:
    inner = getattr(getattr(tokenizer, "instruct_tokenizer", None), "tokenizer", None)
    if inner is not None:  # mistral-common MistralTokenizer
        tokenizer = inner
    if hasattr(tokenizer, "id_to_byte_piece") and hasattr(tokenizer, "num_special_tokens"):
        return _from_tekken(tokenizer, eos_token_ids, logits_width)
    if hasattr(tokenizer, "convert_ids_to_tokens"):
        return _from_transformers(tokenizer, eos_token_ids, logits_width)
    spm = getattr(tokenizer, "_model", tokenizer)
    if hasattr(spm, "is_byte") and hasattr(spm, "id_to_piece"):
        eos = eos_token_ids if eos_token_ids is not None else [getattr(tokenizer, "eos_id", spm.eos_id())]
        return _from_sentencepiece(spm, eos, logits_width)
    raise TokenizerError(f"unsupported tokenizer type {type(tokenizer).__name__}")


# ---- transformers ----------------------------------------------------------------------------
def _transformers_kind(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        decoder = json.dumps(spec.get("decoder"))
        model_type = (spec.get("model") or {}).get("type")
        if "ByteLevel" in decoder:
            return "byte_level"
        if "Metaspace" in decoder or "ByteFallback" in decoder or "\u2581" in decoder:
            return "sentencepiece"
        raise TokenizerError(f"unsupported tokenizer model {model_type!r} with decoder {decoder[:200]}")
    if hasattr(tokenizer, "byte_encoder"):
        return "byte_level"
    if hasattr(tokenizer, "sp_model"):
        return "sentencepiece"
    raise TokenizerError(f"cannot tell how {type(tokenizer).__name__} spells bytes")


def _from_transformers(tokenizer: Any, eos_token_ids, logits_width) -> Vocabulary:
    kind = _transformers_kind(tokenizer)
    n = len(tokenizer)
    added = dict(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    n = max([n, *(i + 1 for i in added)])
    strings = tokenizer.convert_ids_to_tokens(list(range(n)))
    special = set(int(i) for i in getattr(tokenizer, "all_special_ids", []) or [])
    token_bytes = []
    for i, s in enumerate(strings):
        if i in added:
            token = added[i]
            token_bytes.append(getattr(token, "content", str(token)).encode("utf-8"))
            if getattr(token, "special", True):
                special.add(i)
        elif s is None:
            token_bytes.append(b"")
            special.add(i)
        elif kind == "byte_level":
            token_bytes.append(byte_level_to_bytes(s))
        else:
            token_bytes.append(sentencepiece_to_bytes(s))
    if eos_token_ids is None:
        eos_token_ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    return Vocabulary(
        token_bytes,
        special_ids=special,
        eos_token_ids=eos_token_ids,
        logits_width=logits_width,
        kind=kind,
        name=getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__,
    )


# ---- mistral-common / sentencepiece ------------------------------------------------------------
def _from_tekken(tokenizer: Any, eos_token_ids, logits_width) -> Vocabulary:
    n = tokenizer.n_words
    n_special = tokenizer.num_special_tokens
    token_bytes = [tokenizer.id_to_piece(i).encode("utf-8") for i in range(n_special)]
    token_bytes += [tokenizer.id_to_byte_piece(i) for i in range(n_special, n)]
    eos = eos_token_ids if eos_token_ids is not None else [tokenizer.eos_id]
    return Vocabulary(
        token_bytes,
        special_ids=range(n_special),
        eos_token_ids=eos,
        logits_width=logits_width,
        kind="tiktoken",
        name=os.path.basename(str(getattr(tokenizer, "file_path", "tekken"))),
    )


def _from_sentencepiece(spm: Any, eos_token_ids, logits_width) -> Vocabulary:
    n = spm.get_piece_size()
    token_bytes, special = [], []
    for i in range(n):
        piece = spm.id_to_piece(i)
        if spm.is_control(i) or spm.is_unknown(i) or spm.is_unused(i):
            special.append(i)
            token_bytes.append(piece.encode("utf-8"))
        else:
            token_bytes.append(sentencepiece_to_bytes(piece))
    return Vocabulary(
        token_bytes, special_ids=special, eos_token_ids=eos_token_ids, logits_width=logits_width, kind="sentencepiece"
    )


# ---- GGUF ----------------------------------------------------------------------------------------
# llama.cpp token types
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6


def read_gguf_tokenizer_fields(path: str) -> dict[str, Any]:
    """The ``tokenizer.*`` metadata of a GGUF file as plain Python values."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    return {k: f.contents() for k, f in reader.fields.items() if k.startswith("tokenizer.")}


def vocabulary_from_gguf(
    path: str, *, eos_token_ids: Iterable[int] | None = None, logits_width: int | None = None
) -> Vocabulary:
    fields = read_gguf_tokenizer_fields(path)
    model = fields.get("tokenizer.ggml.model")
    tokens: list[str] = fields["tokenizer.ggml.tokens"]
    types: list[int] = fields.get("tokenizer.ggml.token_type") or [_NORMAL] * len(tokens)
    if model == "gpt2":
        kind, decode = "byte_level", byte_level_to_bytes
    elif model == "llama":
        kind, decode = "sentencepiece", sentencepiece_to_bytes
    else:
        raise TokenizerError(f"{path}: unsupported GGUF tokenizer model {model!r}")
    token_bytes, special = [], []
    for i, (text, ttype) in enumerate(zip(tokens, types)):
        if ttype in (_UNKNOWN, _CONTROL, _UNUSED):
            special.append(i)
            token_bytes.append(text.encode("utf-8"))
        elif ttype == _USER_DEFINED:
            token_bytes.append(text.encode("utf-8"))
        else:
            token_bytes.append(decode(text))
    if eos_token_ids is None:
        eos_token_ids = [
            fields[k] for k in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id") if k in fields
        ]
    return Vocabulary(
        token_bytes,
        special_ids=special,
        eos_token_ids=eos_token_ids,
        logits_width=logits_width,
        kind=kind,
        name=os.path.basename(path),
    )
