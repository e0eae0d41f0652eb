"""Faster CPU forward passes for the few rows a decode step feeds the model: one token per
sequence, or a handful when speculative drafting verifies a draft.

Measured on these CPUs (MKL, 2 threads, SmolLM2-135M): ``x @ Wᵀ`` for 1–8 rows is served by
MKL's matrix-vector path or a small-matrix path that runs 1.5–3× slower than the same product
computed as ``W @ xᵀ`` (two rows or more); and transformers' SDPA attention for 2–32 new tokens
over a KV cache repeats the grouped key/value heads and falls back to the math kernel. Here:

- linear layers compute ``(W @ xᵀ)ᵀ`` when the input has at most ``SMALL_ROWS`` rows, the rows
  padded with zeros to 2, 4, 8, 16 or 32 (``padded_rows``: MKL is up to 1.5× slower for 3 or
  9–15 columns than for 4 or 16) and made contiguous (the MLP's ``gate * up`` comes out in a
  transposed layout, which sends the down projection to a path 2.5× slower);
- attention for 2–32 queries packs the query heads of each key/value group into one matrix
  product (no repeated keys), with the causal mask transformers builds for SDPA.

A pass over 1–4 tokens then costs about the same as over one, 5–8 about 1.5×, 9–16 1.9–2.1×,
17–32 2.4–2.5× (``bench/speculative.py --pass-costs``); speculative drafts are cut to fit.

Results agree with the stock layers to float32 rounding (~1e-5 on logits). Prefill (many rows)
and other devices take the stock path. ``speed_up_cpu_decoding`` is applied to the models
structgen loads; call it on your own CPU model to get the same."""

from __future__ import annotations

import types
from typing import Any

import torch

SMALL_ROWS = 32
SHORT_QUERY = 32
ATTENTION_NAME = "structgen_short_query"


def padded_rows(rows: int) -> int:
    """The row count a small product is computed with: the next of 2, 4, 8, 16, 32. MKL's
    ``W @ xᵀ`` for 3 or 9–15 columns is up to 1.5× slower than for 4 or 16."""
    return max(2, 1 << (rows - 1).bit_length())


def small_rows_linear(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``nn.Linear.forward`` with ``W @ xᵀ`` for few rows (see the module docstring)."""
    width = x.shape[-1]
    rows = x.numel() // width if width else 0
    weight = self.weight
    if not 1 <= rows <= SMALL_ROWS or x.device.type != "cpu":
        return torch.nn.functional.linear(x, weight, self.bias)
    flat = x.reshape(rows, width)
    padded = padded_rows(rows)
    if padded > rows:  # the copy also makes a transposed layout (the MLP's gate * up) contiguous
        flat = torch.cat([flat, flat.new_zeros(padded - rows, width)])
    else:  # a transposed layout takes MKL's slow path
        flat = flat.contiguous()
    y = torch.mm(weight, flat.t())[:, :rows].t()
    if self.bias is not None:
        y = y + self.bias
    return y.reshape(*x.shape[:-1], weight.shape[0])


def short_query_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """A transformers attention function: grouped-query attention for 2–32 queries with the
    heads of each key/value group packed together; anything else goes to transformers' SDPA."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, q_len, dim = query.shape
    kv_heads = key.shape[1]
    plain = (
        query.device.type != "cpu"
        or not 2 <= q_len <= SHORT_QUERY
        or attention_mask is None
        or attention_mask.dtype != torch.bool
        or attention_mask.shape[1] != 1
        or attention_mask.shape[-1] != key.shape[2]
        or dropout
        or heads % kv_heads
        or kwargs.get("softcap") is not None
        or kwargs.get("position_bias") is not None
        or getattr(module, "sinks", None) is not None
    )
    if plain or not bool(attention_mask.any(dim=-1).all()):  # a query that sees no key: SDPA's rule
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
    group = heads // kv_heads
    scale = scaling if scaling is not None else dim**-0.5
    packed = query.reshape(batch, kv_heads, group * q_len, dim)
    scores = torch.matmul(packed, key.transpose(-1, -2)) * scale
    kv_len = scores.shape[-1]
    scores = scores.view(batch, kv_heads, group, q_len, kv_len).masked_fill(~attention_mask[:, :, None], float("-inf"))
    weights = torch.softmax(scores.view(batch, kv_heads, group * q_len, kv_len), dim=-1)
    out = torch.matmul(weights, value).view(batch, heads, q_len, dim)
    return out.transpose(1, 2).contiguous(), None


def _register_attention() -> bool:
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    except ImportError:  # an older transformers: keep its attention
        return False
    AttentionInterface.register(ATTENTION_NAME, short_query_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
    return True


def speed_up_cpu_decoding(model: Any) -> Any:
    """Installs the small-row linear layers and (for SDPA models) the short-query attention on
    a CPU model, in place; returns the model. Idempotent; other devices are left alone."""
    if getattr(model, "device", torch.device("cpu")).type != "cpu":
        return model
    for module in model.modules():
        if type(module) is torch.nn.Linear and "forward" not in module.__dict__:
            module.forward = types.MethodType(small_rows_linear, module)
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "_attn_implementation", None) == "sdpa" and _register_attention():
        for sub in model.modules():
            sub_config = getattr(sub, "config", None)
            if sub_config is not None and getattr(sub_config, "_attn_implementation", None) == "sdpa":
                sub_config._attn_implementation = ATTENTION_NAME
    return model
