"""The matcher contract: accept / refuse, rollback, copy, validate, EOS, bitmasks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from structgen import allocate_token_bitmask, apply_token_bitmask_inplace, compile_choices, compile_regex
from structgen.automata.bitmask import bitmask_width


def ids_for(vocab, *pieces: bytes) -> list[int]:
    return [vocab.token_bytes.index(p) for p in pieces]


@pytest.fixture()
def date(smol_vocab):
    return compile_regex(r"\d{4}-\d{2}-\d{2}", smol_vocab)


def test_accept_refuse_leaves_state_unchanged(date, smol_vocab):
    m = date.matcher()
    two, dash, a = ids_for(smol_vocab, b"2", b"-", b"a")
    assert m.accept_token(two)
    before = m.state
    assert not m.accept_token(a) and not m.accept_token(dash)
    assert m.state == before and m.num_accepted == 1


def test_rollback_and_copy_are_independent(date, smol_vocab):
    m = date.matcher()
    digits = ids_for(smol_vocab, b"2", b"0", b"2", b"4")
    assert m.accept_tokens(digits)
    fork = m.copy()
    assert fork.accept_token(ids_for(smol_vocab, b"-")[0])
    assert m.num_accepted == 4 and fork.num_accepted == 5
    fork.rollback(3)
    assert fork.num_accepted == 2 and m.num_accepted == 4
    reference = date.matcher()
    assert reference.accept_tokens(digits[:2])
    assert fork.state == reference.state
    with pytest.raises(ValueError):
        fork.rollback(3)
    m.reset()
    assert m.num_accepted == 0 and m.state == 0


def test_validate_tokens_does_not_move(date, smol_vocab):
    m = date.matcher()
    seq = ids_for(smol_vocab, b"2", b"0", b"2", b"4", b"-", b"a")
    assert m.validate_tokens(seq) == 5 and m.num_accepted == 0
    assert not m.accept_tokens(seq) and m.num_accepted == 0  # all or nothing


def test_eos_exactly_where_the_constraint_ends(smol_vocab):
    c = compile_choices(["no", "nope"], smol_vocab)
    eos = smol_vocab.eos_token_ids[0]
    m = c.matcher()
    assert not m.can_terminate() and not m.accept_token(eos)
    assert eos not in m.allowed_token_ids()
    assert m.accept_token(smol_vocab.token_bytes.index(b"no"))
    assert m.can_terminate() and eos in m.allowed_token_ids()
    assert m.accept_token(smol_vocab.token_bytes.index(b"pe"))
    # "nope" is complete and nothing can follow: only EOS is allowed
    assert list(m.allowed_token_ids()) == list(smol_vocab.eos_token_ids)
    assert m.accept_token(eos) and m.is_terminated()
    assert not m.accept_token(smol_vocab.token_bytes.index(b"n"))
    m.rollback(1)
    assert not m.is_terminated() and m.can_terminate()


def test_token_spanning_the_whole_choice(smol_vocab):
    c = compile_choices([" yes", " no"], smol_vocab)
    m = c.matcher()
    allowed = set(m.allowed_token_ids().tolist())
    assert smol_vocab.token_bytes.index(b" yes") in allowed and smol_vocab.token_bytes.index(b" ") in allowed
    assert smol_vocab.token_bytes.index(b"yes") not in allowed


def test_fill_bitmask_and_apply(date, smol_vocab):
    m = date.matcher()
    bitmask = allocate_token_bitmask(2, smol_vocab.logits_width)
    m.fill_bitmask(bitmask, row=1)
    logits = torch.zeros(2, smol_vocab.logits_width)
    apply_token_bitmask_inplace(logits, bitmask)
    allowed = torch.isfinite(logits[1]).nonzero().flatten().numpy()
    assert np.array_equal(allowed, m.allowed_token_ids())
    assert not torch.isfinite(logits[0]).any()  # row 0 was left empty
    as_numpy = np.zeros((1, bitmask.shape[1]), dtype=np.int32)
    m.fill_bitmask(as_numpy)
    assert np.array_equal(as_numpy[0], bitmask[1].numpy())


def test_fill_bitmask_follows_a_tensor_whose_storage_changes(date, smol_vocab):
    m = date.matcher()
    expected = np.zeros(bitmask_width(smol_vocab.logits_width), dtype=np.int32)
    m.fill_bitmask(expected[None, :])
    bitmask = allocate_token_bitmask(1, smol_vocab.logits_width)
    m.fill_bitmask(bitmask)  # the tensor's numpy view is now kept
    bitmask.set_(torch.zeros_like(bitmask))  # same tensor object, new storage
    m.fill_bitmask(bitmask)
    assert np.array_equal(bitmask[0].numpy(), expected)
    other = allocate_token_bitmask(3, smol_vocab.logits_width)
    m.fill_bitmask(other, row=2)
    assert np.array_equal(other[2].numpy(), expected) and not other[:2].any()


def test_bitmask_layout_matches_xgrammar_convention(smol_vocab):
    c = compile_choices(["!"], smol_vocab)  # one token: id of "!"
    m = c.matcher()
    tid = smol_vocab.token_bytes.index(b"!")
    bitmask = allocate_token_bitmask(1, smol_vocab.logits_width)
    m.fill_bitmask(bitmask)
    word, bit = divmod(tid, 32)
    assert int(bitmask[0, word]) & (1 << bit)
    assert int(bitmask.ne(0).sum()) == 1


def test_special_and_out_of_range_tokens_refused(smol_vocab):
    c = compile_regex(r"[\s\S]*", smol_vocab)
    m = c.matcher()
    assert not m.accept_token(1)  # <|im_start|>
    assert not m.accept_token(smol_vocab.logits_width + 5)
    assert not m.accept_token(-1)


SHORTEST_CASES = [
    (r"\d{4}-\d{2}-\d{2}", ["", "2", "2024-1", "2024-11-0"]),
    (r"(ab|b)*x(0|ab)+", ["", "a", "abx", "bbxa"]),
    (r"[^a]{2,3}é?b+", ["", "x", "xx0"]),
    (r'\{"k": "[a-z]{0,9}", "n": (0|[1-9][0-9]*)\}', ["", '{"k": "ab', '{"k": "", "n": 1']),
]


@pytest.mark.parametrize("pattern,prefixes", SHORTEST_CASES)
def test_shortest_completion_is_shortest(pattern, prefixes, smol_vocab):
    """Checked with ``re.fullmatch`` and against brute force over the pattern's characters;
    the distance table and the generic breadth-first search agree."""
    import itertools
    import re

    from structgen.constraints.base import Constraint

    c = compile_regex(pattern, smol_vocab)
    alphabet = sorted(set("abx0-1é{}\":, kn9"))
    for prefix in prefixes:
        state = c.advance_bytes(c.initial_state, prefix.encode())
        assert state is not None
        got = c.shortest_completion(state)
        assert got is not None and re.fullmatch(pattern, prefix + got.decode())
        assert len(Constraint.shortest_completion(c, state)) == len(got)
        brute = next(
            (min(len("".join(s).encode()) for s in itertools.product(alphabet, repeat=n) if re.fullmatch(pattern, prefix + "".join(s)))
             for n in range(0, 5) if any(re.fullmatch(pattern, prefix + "".join(s)) for s in itertools.product(alphabet, repeat=n))),
            None,
        )
        if brute is not None:
            assert len(got) <= brute


def test_shortest_completion_of_a_grammar(smol_vocab):
    """json.lark: every completion found makes the prefix a sentence (lark's own parser)."""
    import os

    from structgen import compile_grammar_file

    g = compile_grammar_file(os.path.join(os.path.dirname(__file__), "..", "grammars", "json.lark"), smol_vocab)
    for prefix in [b"", b'{"a": [1, {"b": "x', b"[1, 2", b'{"a": tr', b'[{"k": -1.5e']:
        state = g.advance_bytes(g.initial_state, prefix)
        tail = g.shortest_completion(state)
        assert tail is not None
        text = (prefix + tail).decode()
        assert g.is_accepting(g.advance_bytes(g.initial_state, prefix + tail))
        g.parse(text)  # raises if lark does not accept it
