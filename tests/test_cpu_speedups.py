"""The CPU decode-step layers agree with transformers' stock layers (the reference)."""

from __future__ import annotations

import types

import pytest
import torch

from structgen.generation.cpu_speedups import ATTENTION_NAME, padded_rows, small_rows_linear, speed_up_cpu_decoding


@pytest.mark.parametrize(
    "shape",
    [(1, 24), (2, 24), (3, 24), (5, 24), (8, 24), (9, 24), (15, 24), (17, 24), (32, 24), (33, 24),
     (1, 1, 24), (1, 3, 24), (2, 4, 24), (0, 24)],
)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("transposed", [False, True])
def test_small_rows_linear_matches_linear(shape, bias, transposed):
    torch.manual_seed(0)
    layer = torch.nn.Linear(24, 40, bias=bias)
    x = torch.randn(*shape)
    if transposed:  # the layout of the MLP's gate * up: a transposed product
        x = torch.randn(*reversed(shape)).permute(*reversed(range(len(shape))))
    expected = torch.nn.functional.linear(x, layer.weight, layer.bias)
    got = small_rows_linear(layer, x)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)


def test_padded_rows_is_the_next_power_of_two():
    for rows in range(1, 70):
        assert padded_rows(rows) == min(p for p in (2, 4, 8, 16, 32, 64, 128) if p >= rows)


def _stock(model):
    """The same model object with transformers' own layers back in place."""
    for module in model.modules():
        module.__dict__.pop("forward", None)
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and getattr(config, "_attn_implementation", None) == ATTENTION_NAME:
            config._attn_implementation = "sdpa"
    return model


@pytest.mark.model
def test_fast_layers_match_stock_layers(smollm2):
    """Logits of a prompt, then of drafts of 1-12 tokens over the KV cache, and of a left-padded
    batch, with the fast layers vs the stock ones."""
    model, tok = smollm2
    assert model.config._attn_implementation == ATTENTION_NAME
    assert isinstance(model.lm_head.forward, types.MethodType)
    prompt = tok.encode("A list of fruits: apple, banana, cherry, and", add_special_tokens=False)
    rows = [[1000 + i for i in range(k)] for k in (1, 2, 3, 5, 8, 12)]
    padded = [prompt[:5], prompt[:9]]

    @torch.inference_mode()
    def run():
        outs = []
        first = model(input_ids=torch.tensor([prompt]), use_cache=True)
        outs.append(first.logits[0, -1])
        for ids in rows:
            cache = first.past_key_values
            positions = torch.arange(len(prompt), len(prompt) + len(ids))[None]
            out = model(input_ids=torch.tensor([ids]), position_ids=positions, past_key_values=cache, use_cache=True)
            cache.crop(-len(ids))
            outs.append(out.logits[0])
        ids = torch.tensor([[0] * (9 - len(p)) + p for p in padded])
        attention = (torch.arange(9)[None] >= torch.tensor([[9 - len(p)] for p in padded])).long()
        outs.append(model(input_ids=ids, attention_mask=attention).logits[:, -1])
        return outs

    try:
        fast = run()
        _stock(model)
        reference = run()
    finally:
        speed_up_cpu_decoding(model)
    for got, expected in zip(fast, reference):
        assert torch.isfinite(got).all()
        assert torch.allclose(got, expected, atol=2e-3, rtol=1e-3), float((got - expected).abs().max())
        assert torch.equal(got.argmax(-1), expected.argmax(-1))
