"""Packed token bitmasks: int32 words, bit ``i % 32`` of word ``i // 32`` for token ``i``
(xgrammar's layout), and applying them to logits."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch

_BIT_SHIFTS = torch.arange(32, dtype=torch.int32)


def bitmask_width(logits_width: int) -> int:
    """Words per row for a model whose logits have ``logits_width`` entries."""
    return (logits_width + 31) // 32


def allocate_token_bitmask(batch_size: int, logits_width: int) -> torch.Tensor:
    """A zeroed ``(batch_size, ceil(logits_width / 32))`` int32 bitmask, its word view made
    now rather than on the first fill (see :func:`cpu_row`: torch's numpy bridge costs the
    first call ~0.4 ms in a fresh worker process)."""
    bitmask = torch.zeros((batch_size, bitmask_width(logits_width)), dtype=torch.int32)
    _cpu_entry(bitmask)
    return bitmask


_cpu_views: dict[int, tuple[weakref.ref, int, np.ndarray, dict[tuple[int, int], np.ndarray]]] = {}
_last_view: tuple = (None, -1, -1, -1, None)  # (tensor, row, width, storage address, view): see cpu_row


def _cpu_entry(bitmask: Any) -> tuple | None:
    """``(ref, address, rows, row views)`` for a CPU tensor, kept per tensor and storage
    address; None for a tensor on a device."""
    key = id(bitmask)
    found = _cpu_views.get(key)
    if found is not None and found[0]() is bitmask and found[1] == bitmask.data_ptr():
        return found
    if not bitmask.is_cpu:
        return None
    if len(_cpu_views) > 64:
        _cpu_views.clear()
    found = _cpu_views[key] = (weakref.ref(bitmask), bitmask.data_ptr(), bitmask.numpy().view(np.uint32), {})
    return found


def cpu_row(bitmask: Any, row: int, width: int) -> np.ndarray | None:
    """The first ``width`` words of row ``row`` as uint32 words sharing the bitmask's memory,
    or None for a tensor on a device. A CPU tensor's views are kept per tensor and storage
    address, so that a decode loop filling one bitmask every step makes them once."""
    global _last_view
    if type(bitmask) is np.ndarray:
        return bitmask.view(np.uint32)[row, :width]
    last = _last_view  # (a decode loop asks for the same row of the same tensor every step)
    if last[0] is bitmask and last[1] == row and last[2] == width and last[3] == bitmask.data_ptr():
        return last[4]
    found = _cpu_entry(bitmask)
    if found is None:
        return None
    views = found[3]
    view = views.get((row, width))
    if view is None:
        view = views[(row, width)] = found[2][row, :width]
    _last_view = (bitmask, row, width, found[1], view)
    return view


def unpack_bitmask(bitmask: torch.Tensor, logits_width: int) -> torch.Tensor:
    """Booleans ``(batch, logits_width)``: True where the token is allowed."""
    bits = (bitmask.unsqueeze(-1) >> _BIT_SHIFTS.to(bitmask.device)) & 1
    return bits.reshape(bitmask.shape[0], -1)[:, :logits_width].bool()


def apply_token_bitmask_inplace(logits: torch.Tensor, bitmask: torch.Tensor) -> torch.Tensor:
    """Sets disallowed logits to -inf, in place; works on a batch ``(B, V)`` or one row ``(V,)``.
    Logits beyond the bitmask's width are disallowed."""
    rows = logits if logits.dim() == 2 else logits.unsqueeze(0)
    mask = bitmask if bitmask.dim() == 2 else bitmask.unsqueeze(0)
    width = rows.shape[-1]
    allowed = unpack_bitmask(mask.to(rows.device), min(width, mask.shape[-1] * 32))
    if allowed.shape[-1] < width:
        pad = torch.zeros((allowed.shape[0], width - allowed.shape[-1]), dtype=torch.bool, device=rows.device)
        allowed = torch.cat([allowed, pad], dim=-1)
    rows.masked_fill_(~allowed, float("-inf"))
    return logits


def words_to_ids(words: np.ndarray, limit: int) -> np.ndarray:
    """Token ids whose bits are set in uint32/int32 ``words`` (ids below ``limit``)."""
    bits = np.unpackbits(words.view(np.uint8), bitorder="little")
    return np.flatnonzero(bits[:limit]).astype(np.int32)
