"""How tokenizers spell bytes, and how to get the bytes back.

- byte-level BPE (GPT-2, SmolLM2, DeepSeek, Llama 3): each byte is shown as one printable
  character (the GPT-2 byte↔unicode map);
- SentencePiece (Llama 2, Mistral v1–v3, Phi-3): ``▁`` stands for a space and byte-fallback
  pieces are spelled ``<0xNN>``;
- tiktoken-style vocabularies (Tekken) store raw bytes and need no decoding.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..errors import TokenizerError

SENTENCEPIECE_SPACE = "\u2581"
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@lru_cache(maxsize=1)
def gpt2_unicode_to_byte() -> dict[str, int]:
    """Inverse of GPT-2's ``bytes_to_unicode``: printable character → byte value."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    mapping = {chr(b): b for b in printable}
    shift = 0
    for b in range(256):
        if b not in printable:
            mapping[chr(256 + shift)] = b
            shift += 1
    return mapping


def byte_level_to_bytes(token: str) -> bytes:
    """Bytes of a byte-level BPE token string (raises if a character is outside the map)."""
    table = gpt2_unicode_to_byte()
    try:
        return bytes(table[ch] for ch in token)
    except KeyError as exc:
        raise TokenizerError(f"token {token!r} is not in the byte-level alphabet") from exc


def sentencepiece_byte(piece: str) -> int | None:
    """The byte of a ``<0xNN>`` byte-fallback piece, or None for any other piece."""
    match = _BYTE_PIECE.match(piece)
    return int(match.group(1), 16) if match else None


def sentencepiece_to_bytes(piece: str) -> bytes:
    """Bytes of a SentencePiece piece: ``<0xNN>`` is one byte, ``▁`` is a space."""
    byte = sentencepiece_byte(piece)
    if byte is not None:
        return bytes([byte])
    return piece.replace(SENTENCEPIECE_SPACE, " ").encode("utf-8")
