"""Speculative decoding over the constraint: with drafts, sampled outputs keep the distribution
of plain masked decoding (chi-square against an enumeration that uses Python's ``re``, not
structgen), greedy outputs are identical token for token, and the KV cache stays consistent."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
import torch

from structgen import compile_regex
from structgen.generation.cpu_speedups import padded_rows
from structgen.generation.drafts import DraftContext, ForcedDraft, HistoryDraft, NgramDraft, OutputHistory, fitting_length, may_grow
from structgen.generation.speculative import CallableVerifier, ModelVerifier, speculative_decode
from test_aligned import EOS, TABLE, TOKENS, VOCAB, chi_square_p_value
from tokenizer_cases import load_case

PATTERN = r"(a|b){1,3}c|bcb?c"
LANGUAGE = {s for s in (
    "".join(p) + "c" for n in range(1, 4) for p in __import__("itertools").product("ab", repeat=n)
)} | {"bcc", "bcbc"}
PREFIXES = {s[:i] for s in LANGUAGE for i in range(len(s) + 1)}


def toy_logits(prefixes: list[list[int]]) -> np.ndarray:
    """The bigram table of test_aligned; the first token of every prefix is a BOS."""
    return np.log(np.stack([TABLE[p[-1] if len(p) > 1 else 6] for p in prefixes]))


def masked_distribution() -> dict[tuple[int, ...], float]:
    """p(sequence) under plain masked sampling, by enumeration: a token is allowed iff the text
    stays a prefix of the (finite) language; EOS iff the text is in it."""
    out: dict[tuple[int, ...], float] = {}

    def walk(seq: tuple[int, ...], text: str, prob: float, prev: int) -> None:
        allowed = [t for t in range(5) if text + TOKENS[t].decode() in PREFIXES]
        if text in LANGUAGE:
            allowed.append(EOS)
        z = sum(TABLE[prev, t] for t in allowed)
        for t in allowed:
            p = prob * TABLE[prev, t] / z
            if t == EOS:
                out[seq] = out.get(seq, 0.0) + p
            else:
                walk(seq + (t,), text + TOKENS[t].decode(), p, t)

    walk((), "", 1.0, 6)
    return out


def longest_match(data: bytes) -> list[int]:
    ids, i = [], 0
    while i < len(data):
        t = max((t for t in range(5) if data.startswith(TOKENS[t], i)), key=lambda t: len(TOKENS[t]))
        ids.append(t)
        i += len(TOKENS[t])
    return ids


class RandomDraft:
    """Proposes random tokens (mostly wrong): exercises rejection and rollback."""

    name = "random"

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def propose(self, ctx: DraftContext) -> list[int]:
        return [self.rng.randrange(6) for _ in range(self.rng.randrange(4))]

    def feedback(self, proposed: int, accepted: int) -> None:
        pass


def toy_run(sources, *, temperature=1.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return speculative_decode(
        CallableVerifier(toy_logits), VOCAB, [EOS], compile_regex(PATTERN, VOCAB), sources,
        max_new_tokens=8, temperature=temperature, generator=generator,
    )


def test_reference_language_matches_pattern():
    assert all(re.fullmatch(PATTERN, s) for s in LANGUAGE)


@pytest.mark.parametrize("drafts", ["none", "forced+random", "ngram", "history"])
def test_sampled_distribution_unchanged_by_drafts(drafts):
    expected = masked_distribution()
    samples = []
    history = OutputHistory(max_outputs=64)  # drafts from the earlier samples of this test
    for seed in range(1500):
        sources = {
            "none": [],
            "forced+random": [ForcedDraft(longest_match), RandomDraft(seed)],
            "ngram": [NgramDraft()],
            "history": [HistoryDraft(history)],
        }[drafts]
        r = toy_run(sources, seed=seed)
        assert re.fullmatch(PATTERN, r.text) and r.completed
        samples.append(r)
    assert chi_square_p_value(samples, expected) > 1e-3
    if drafts in ("forced+random", "history"):
        assert sum(r.drafted_tokens for r in samples) > sum(r.accepted_draft_tokens for r in samples) > 0


def test_plain_sampling_differs_from_a_wrong_reference():
    """The chi-square test used above can fail: samples against a distorted reference."""
    expected = masked_distribution()
    skewed = {k: v * (3.0 if k[:1] == (0,) else 1.0) for k, v in expected.items()}
    total = sum(skewed.values())
    skewed = {k: v / total for k, v in skewed.items()}
    samples = [toy_run([], seed=s) for s in range(1500)]
    assert chi_square_p_value(samples, skewed) < 1e-6


def test_greedy_identical_with_drafts_toy():
    plain = toy_run([], temperature=0)
    history = OutputHistory()
    history.add([2, 2, 1, 0, 2])  # an earlier output that is not the greedy one
    for sources in ([ForcedDraft(longest_match)], [RandomDraft(1), ForcedDraft(longest_match)], [NgramDraft()],
                    [HistoryDraft(history)], [HistoryDraft(history)]):  # the second time, the first's output drafts
        r = toy_run(sources, temperature=0)
        assert r.token_ids == plain.token_ids and r.finish_reason == plain.finish_reason
    assert r.accepted_draft_tokens > 0


def test_fitting_length_fills_a_pass_to_a_computed_size():
    """The longest draft that is no longer than n and, with the pending token, fills the rows
    a CPU pass is computed with (``padded_rows``) — or any draft of up to 3 (4 rows)."""
    for n in range(0, 80):
        fits = [d for d in range(n + 1) if d <= 3 or padded_rows(d + 1) == d + 1]
        assert fitting_length(n) == max(fits)


def test_output_history_lookup_matches_a_scan():
    """``continuations`` against a scan of the kept outputs, latest first, with evictions."""
    rng = np.random.default_rng(0)
    history = OutputHistory(max_outputs=6, max_n=3)
    kept: list[list[int]] = []
    for step in range(40):
        out = [int(t) for t in rng.integers(0, 4, size=int(rng.integers(0, 12)))]
        history.add(out)
        if len(out) >= 2:
            kept.append(out)
            if len(kept) > 6:
                kept = kept[len(kept) - 4 :]  # the history keeps the newer half when full
        assert history.outputs == kept
        for n in (1, 2, 3):
            tail = [int(t) for t in rng.integers(0, 4, size=n)]
            expected = [seq[end : end + 5] for seq in reversed(kept) for end in range(len(seq) - 1, n - 1, -1)
                        if seq[end - n : end] == tail]
            assert list(history.continuations(tail, 5)) == expected


def test_forced_draft_is_accepted_in_one_pass():
    """Where every byte has one token, the forced text is certain: one forward pass in all (the
    draft cut to 3 tokens, which fill a pass of 4 rows; the pass's last logits give the 4th)."""
    constraint = compile_regex(r"cccc", VOCAB)
    generator = torch.Generator().manual_seed(0)
    r = speculative_decode(CallableVerifier(toy_logits), VOCAB, [EOS], constraint, [ForcedDraft(longest_match)], max_new_tokens=16, temperature=1.0, generator=generator)
    assert r.text == "cccc" and r.finish_reason == "constraint_end"
    assert r.forward_passes == 1 and r.accepted_draft_tokens == r.drafted_tokens == 3


@pytest.mark.model
def test_kv_cache_consistent_after_crop(smollm2):
    model, tok = smollm2
    prompt = tok.encode("The quick brown fox jumps over", add_special_tokens=False)
    v = ModelVerifier(model)
    v.extend(prompt + [1000, 2000, 3000, 4000], keep=1)
    v.crop(len(prompt) + 1)
    after = v.extend([42, 43], keep=2)
    with torch.inference_mode():
        fresh = model(input_ids=torch.tensor([prompt + [1000, 42, 43]])).logits[0, -2:].float()
    assert torch.allclose(after, fresh, atol=1e-3, rtol=1e-3)


@pytest.mark.model
@pytest.mark.parametrize(
    "kwargs",
    [
        {"schema": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}, "pets": {"type": "array", "items": {"enum": ["cat", "dog"]}, "maxItems": 3}}, "required": ["name", "age", "pets"]}},
        {"regex": r"(Monday|Tuesday|Wednesday), the (1st|2nd|3rd) of (January|February)"},
        {"grammar": "start: \"SELECT \" NAME (\", \" NAME)* \" FROM \" NAME \";\"\nNAME: /[a-z_]{1,12}/\n"},
    ],
)
def test_greedy_identical_with_drafts_real_model(smollm2, kwargs):
    import structgen

    model, tok = smollm2
    prompt = "Write the answer for a user called Ann, aged 31, who has a cat."
    plain = structgen.generate(prompt, model=model, tokenizer=tok, temperature=0, max_new_tokens=48, **kwargs)
    fast = structgen.generate(prompt, model=model, tokenizer=tok, temperature=0, max_new_tokens=48, speculative=True, **kwargs)
    assert fast.token_ids == plain.token_ids and fast.finish_reason == plain.finish_reason
    assert fast.forward_passes < plain.forward_passes and fast.accepted_draft_tokens > 0



@pytest.mark.parametrize("name", ["smollm2", "tekken"])
def test_trie_extensions_match_a_scan_of_the_vocabulary(name):
    """The trie's tokens below ``b`` = every maskable token whose bytes start with b and are
    longer, by a full scan; ``may_grow`` = some such token is allowed by the matcher (each
    token checked on its own)."""
    vocab = load_case(name).vocab
    trie = vocab.trie
    maskable = set(vocab.maskable_ids.tolist())
    rng = random.Random(0)
    probes = [b'"', b"-", b'":', b"{", b"\xff", b"\xe2\x80", b"ing", b" the"]
    probes += [vocab.token_bytes[t][: rng.randint(1, len(vocab.token_bytes[t]))] for t in rng.sample(sorted(maskable), 40)]
    for data in probes:
        want = sorted(i for i in maskable if vocab.token_bytes[i].startswith(data) and len(vocab.token_bytes[i]) > len(data))
        nodes = trie.prefix_nodes(data)
        held = len(nodes) == len(data)  # some token starts with data
        assert held == any(vocab.token_bytes[i].startswith(data) for i in maskable), data
        assert (sorted(trie.tokens_below(nodes[-1]).tolist()) if held else []) == want, data
        exact = sorted(i for i in maskable if vocab.token_bytes[i] == data)
        assert (sorted(trie.tokens_at(nodes[-1]).tolist()) if held else []) == exact, data
    single = {t: i for i, t in enumerate(vocab.token_bytes) if len(t) == 1}
    m = compile_regex(r'\{"(key|keyboard|kettle)": -?[0-9]+\}', vocab).matcher()
    for text in ['{"', '{"key', '{"keyboard": -', '{"kettle": 1']:
        probe = m.copy()
        assert probe.accept_tokens([single[bytes((b,))] for b in text.encode()])
        allowed = [t for t in range(vocab.n_tokens) if probe.validate_tokens([t]) == 1]
        assert allowed
        for tid in allowed:
            data = vocab.token_bytes[tid]
            brute = any(vocab.token_bytes[o].startswith(data) and len(vocab.token_bytes[o]) > len(data) for o in allowed)
            assert may_grow(probe, tid) == brute, (text, data)


@pytest.mark.parametrize("pattern, draft_without, draft_with", [
    ("ab(a|c)", [], [3]),  # "ab": no longer token exists -> kept by the exact rule
    ("b(c|a)", [], []),  # "b": "bc" is allowed and longer -> held back either way
    ("abc", [3, 2], [3, 2]),  # the output must end after "c"
])
def test_forced_draft_holds_back_a_last_token_only_if_it_may_grow(pattern, draft_without, draft_with):
    m = compile_regex(pattern, VOCAB).matcher()
    ctx = DraftContext([EOS], [], m)
    assert ForcedDraft(longest_match).propose(ctx) == draft_without
    assert ForcedDraft(longest_match, exact_hold_back=True).propose(ctx) == draft_with
