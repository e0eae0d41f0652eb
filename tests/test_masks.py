"""Token masks from the numba trie walk, checked against a brute-force mask that walks every
token's bytes through the DFA in plain Python, on six real tokenizers."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import ALL_TOKENIZERS, load_case
from structgen import compile_choices, compile_regex
from structgen.automata.bitmask import words_to_ids
from structgen.automata.kernels import dfa_token_mask, trie_arrays
from structgen.automata.token_marks import TokenMarks
from structgen.automata import token_slices
from structgen.automata.byte_dfa import ByteDFA
from structgen.automata.token_slices import NO_CHAIN, NO_NODES, chain_walk, closed_slice, find_chain, landing_state, self_loop_slice
from structgen.constraints.regular import RegularConstraint
from test_regex_dfa import regexes

PATTERNS = [
    (r"\d{4}-\d{2}-\d{2}", "2024-05-17"),
    (r"[a-zA-Z_][a-zA-Z0-9_]{0,30}", "snake_case_name42"),
    (r"[^\"\\]{0,20}", "héllo wörld 🦙 中文"),
    (r"(\+\d{1,3} )?\(\d{3}\) \d{3}-\d{4}", "+1 (555) 123-4567"),
    (r"(red|green|blue|cyan)( and (red|green|blue|cyan))*", "red and cyan and blue"),
    (r"[\u4e00-\u9fff]{1,6}|é+", "中文汉字"),
    (r" ?\{\"name\": \"[a-z]+\"\}", ' {"name": "abc"}'),
]


def brute_force_allowed(vocab, dfa, state: int) -> set[int]:
    """Reference: every token whose bytes the DFA reads from ``state`` without dying."""
    trans = dfa.transitions.tolist()
    allowed = set()
    for tid, data in enumerate(vocab.token_bytes):
        if vocab.special[tid] or not data:
            continue
        s = state
        for byte in data:
            s = trans[s][byte]
            if s < 0:
                break
        if s >= 0:
            allowed.add(tid)
    if dfa.accepting[state]:
        allowed.update(vocab.eos_token_ids)
    return allowed


def states_along(dfa, text: str) -> list[int]:
    """The DFA states after every byte prefix of ``text`` (including mid-character ones)."""
    data = text.encode("utf-8")
    states = [0]
    for k in range(1, len(data) + 1):
        states.append(dfa.walk(data[:k]))
    assert all(s >= 0 for s in states)
    return sorted(set(states))


def mask_ids(constraint, state: int) -> set[int]:
    return set(words_to_ids(constraint.mask_words(state), constraint.vocab.logits_width).tolist())


@pytest.mark.parametrize("name", ALL_TOKENIZERS)
def test_masks_equal_brute_force(name):
    vocab = load_case(name).vocab
    for pattern, sample in PATTERNS:
        constraint = compile_regex(pattern, vocab)
        for state in states_along(constraint.dfa, sample)[:8]:
            assert mask_ids(constraint, state) == brute_force_allowed(vocab, constraint.dfa, state), (name, pattern, state)


@pytest.mark.parametrize("name", ["smollm2", "tekken", "mistral-v3"])
def test_choice_masks_equal_brute_force(name):
    vocab = load_case(name).vocab
    constraint = compile_choices(["yes", "no", "maybe not", "naïve", "🦙 llama"], vocab)
    for sample in ["maybe not", "naïve", "🦙 llama"]:
        for state in states_along(constraint.dfa, sample):
            assert mask_ids(constraint, state) == brute_force_allowed(vocab, constraint.dfa, state)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(regexes(), st.data())
def test_random_regex_masks_equal_brute_force(smol_vocab, pattern, data):
    constraint = compile_regex(pattern, smol_vocab)
    sample = data.draw(st.from_regex(re.compile(pattern, re.ASCII), fullmatch=True))
    for state in states_along(constraint.dfa, sample)[:4]:
        assert mask_ids(constraint, state) == brute_force_allowed(smol_vocab, constraint.dfa, state)


@pytest.mark.parametrize("name", ["smollm2", "tekken", "phi3"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_tokenizer_encodings_follow_python_re(name, data):
    """Strings drawn from the regex, and mutations of them, tokenized by the real tokenizer:
    the matcher accepts them to termination iff ``re.fullmatch`` does."""
    case = load_case(name)
    pattern, _ = data.draw(st.sampled_from(PATTERNS))
    constraint = compile_regex(pattern, case.vocab)
    text = data.draw(st.from_regex(re.compile(pattern, re.ASCII), fullmatch=True))
    if data.draw(st.booleans()) and text:
        k = data.draw(st.integers(0, len(text) - 1))
        text = data.draw(st.sampled_from([text[:k] + text[k + 1 :], text[:k] + "x" + text[k:], text + "!"]))
    ids = case.encode(text)
    if case.space_prefix:  # SentencePiece's leading space is not part of the text
        return
    # a tokenizer cannot spell every text (SmolLM2 lacks some lead bytes such as 0xF1 and
    # silently drops them); the matcher judges the bytes the tokens spell
    assume(case.vocab.decode_bytes(ids) == text.encode("utf-8"))
    m = constraint.matcher()
    accepted = m.accept_tokens(ids) and m.can_terminate()
    assert accepted == (re.fullmatch(pattern, text, re.ASCII) is not None), (pattern, text)


def test_padded_logits_and_special_ids_never_allowed():
    from structgen import Vocabulary

    base = load_case("smollm2").vocab
    padded = Vocabulary(base.token_bytes, special_ids=np.flatnonzero(base.special), eos_token_ids=base.eos_token_ids, logits_width=base.n_tokens + 64)
    constraint = compile_regex(r"[\s\S]*", padded)  # anything at all
    ids = mask_ids(constraint, 0)
    assert max(ids) < padded.n_tokens
    assert not any(padded.special[i] for i in ids if i not in padded.eos_token_ids)
    assert set(padded.eos_token_ids) <= ids


def test_mask_computed_once_per_state(smol_vocab):
    constraint = compile_regex(r"[a-z]{1,5}", smol_vocab, eager_masks=0)
    m = constraint.matcher()
    first = m.mask_words()
    assert m.mask_words() is first and constraint.cached_states == 1
    eager = compile_regex(r"[a-z]{1,5}", smol_vocab, eager_masks=64)
    assert eager.cached_states == eager.dfa.n_states


@pytest.mark.parametrize("name", ["smollm2", "tekken"])
@pytest.mark.parametrize("pattern", [r"[a-z]{1,200}", r"[^\"]{0,60}", r"[a-zA-Z_][a-zA-Z0-9_]{0,63}"])
def test_shared_masks_of_counting_states_equal_brute_force(name, pattern):
    """States of a bounded repetition share trie walks; every state's mask must still equal
    its own brute-force mask, in any visiting order."""
    vocab = load_case(name).vocab
    constraint = compile_regex(pattern, vocab, eager_masks=0)
    n = constraint.dfa.n_states
    rng = np.random.default_rng(0)
    states = list(rng.permutation(n)[:12]) + [0, n - 1]
    for state in states:
        constraint.mask_words(int(state))  # visit in random order first
    for state in range(n):
        constraint.mask_words(state)
    assert constraint.computed_masks < n
    for state in states:
        assert mask_ids(constraint, int(state)) == brute_force_allowed(vocab, constraint.dfa, int(state)), (pattern, state)


# states that loop on many bytes (a string's body) read the tokens made of those bytes from a
# token slice instead of walking them; what is left, and the lookahead the walk reports for
# mask sharing, must stay exact
SLICED = [
    (r'"[^"\\]*"( [a-z]{0,3}){0,40}', '"héllo wörld'),
    (r'([ -~]|\\n)*;[a-z]*', "abc\\nde"),
    (r"(.{0,3}x)?[^x]*", "abxcd"),
    # after '"n' most bytes lead to the any-name state, 'a' goes on with the declared name
    (r'"(name"=[0-9]+|[^"\\]*"=[a-z]+)', '"namx'),
]


@pytest.mark.parametrize("name", ["smollm2", "tekken"])
@pytest.mark.parametrize("pattern,text", SLICED)
def test_sliced_masks_equal_brute_force(name, pattern, text):
    vocab = load_case(name).vocab
    constraint = compile_regex(pattern, vocab, eager_masks=0)
    states = states_along(constraint.dfa, text)
    width = (vocab.logits_width + 31) // 32
    sliced = [s for s in states if self_loop_slice(vocab.trie, constraint.dfa.transitions[s], s, width, eager=True)]
    for state in states:  # states whose bytes mostly lead to a looping one use its slice
        landing = landing_state(constraint.dfa.transitions, state)
        if landing >= 0:
            closed_slice(vocab.trie, constraint.dfa.transitions, landing, width, eager=True)
    assert sliced, "no state of the text has a slice"
    for state in states + list(range(constraint.dfa.n_states)):  # the others may share masks
        constraint.mask_words(state)
    for state in states:
        assert mask_ids(constraint, state) == brute_force_allowed(vocab, constraint.dfa, state), (pattern, state)
    marks = TokenMarks(width)
    for state in sliced:  # the lookahead that decides sharing: as deep as the full walk's
        found = self_loop_slice(vocab.trie, constraint.dfa.transitions[state], state, width)
        deepest = []
        for clean, path_in in ((found.clean, found.path_in), (NO_NODES, NO_NODES)):
            d, marks.count = dfa_token_mask(
                constraint.dfa.transitions, state, *trie_arrays(vocab.trie), state, clean, path_in, vocab.trie.subtree_deepest,
                0, NO_CHAIN, 0, NO_NODES, NO_NODES, vocab.trie.token_ptr, vocab.trie.token_ids, found.words.copy(), marks.ok, marks.visited,
            )  # fmt: skip
            marks.flush_into(np.zeros(width, dtype=np.uint32), vocab.trie)
            deepest.append(d)
        assert deepest[0] == deepest[1], (pattern, state)


# counted repetitions: no state loops (one state per position), so no slice; walks go through
# a chain of states instead (token_slices.byte_chain), two states a position for a format
# that tracks whether the text could still be a keyword
COUNTED = [
    (r"[a-z0-9 ]{3,40}x", "abc def 123 "),
    (r'"(?:[^"\\]|\\.){0,30}"', '"hello wo\\"rld'),
    (r"(?:[ -~]{0,50};|null;)", "nu"),
    (r"[a-zA-Z_][a-zA-Z0-9_]{2,20}=", "x_1"),
]


@pytest.mark.parametrize("name", ["smollm2", "tekken"])
@pytest.mark.parametrize("pattern,text", COUNTED)
def test_chained_masks_equal_brute_force(name, pattern, text, monkeypatch):
    """Masks of states of counted repetitions, read through byte chains and the chain's
    byte set's tokens by length, equal the brute-force ones; the chains were used."""
    monkeypatch.setattr(token_slices, "BUILD_ON_REQUEST", 1)
    vocab = load_case(name).vocab
    constraint = RegularConstraint(ByteDFA.from_regex(pattern), vocab, share_masks=False)
    states = states_along(constraint.dfa, text)
    width = (vocab.logits_width + 31) // 32
    chained = [s for s in states if chain_walk(vocab.trie, *find_chain(constraint.dfa.transitions, s, vocab.trie), width)[1] > 0]
    assert len(chained) >= len(states) // 2, (pattern, len(chained), len(states))
    for state in states:
        assert mask_ids(constraint, state) == brute_force_allowed(vocab, constraint.dfa, state), (pattern, state)


def test_token_slices_against_the_token_bytes():
    vocab = load_case("mistral-v3").vocab
    trie = vocab.trie
    in_set = np.zeros(256, dtype=bool)
    in_set[[*range(0x20, 0x7F), 0xC3, 0xA9]] = True  # ASCII text and the bytes of "é"
    in_set[[ord('"'), ord("\\")]] = False
    row = np.where(in_set, 7, -1)
    found = self_loop_slice(trie, row, 7, (vocab.logits_width + 31) // 32, eager=True)
    made_of_set = {t for t in trie.token_ids.tolist() if all(in_set[b] for b in vocab.token_bytes[t])}
    assert set(words_to_ids(found.words, vocab.logits_width).tolist()) == made_of_set
    rng = np.random.default_rng(1)
    for node in rng.integers(1, trie.n_nodes, 3000).tolist():
        below = range(node, int(trie.subtree_end[node]))
        tokens = [*trie.tokens_at(node).tolist(), *trie.tokens_below(node).tolist()]
        assert found.clean[node] == all(t in made_of_set for t in tokens), node
        assert trie.subtree_deepest[node] == max(int(trie.depth[j]) for j in below), node


def _excursions(transitions: np.ndarray, r: int) -> set[int]:
    """Reference: the states met from ``r`` on paths of at most 4 bytes >= 0x80 that lead
    back to ``r`` by such bytes (plain Python searches)."""
    trans = transitions.tolist()
    met, frontier = {r}, {r}
    for _ in range(4):
        frontier = {t for s in frontier for t in trans[s][128:] if t >= 0} - met
        met |= frontier
    back, changed = {r}, True
    while changed:
        grown = back | {s for s in met if any(t in back for t in trans[s][128:])}
        changed, back = grown != back, grown
    return back


def _component(transitions: np.ndarray, r: int) -> set[int]:
    """Reference: the states reachable from ``r`` that can reach ``r`` back."""
    trans = transitions.tolist()
    forward, todo = {r}, [r]
    while todo:
        for t in trans[todo.pop()]:
            if t >= 0 and t not in forward:
                forward.add(t)
                todo.append(t)
    back, changed = {r}, True
    while changed:
        grown = back | {s for s in forward if any(t in back for t in trans[s])}
        changed, back = grown != back, grown
    return back


@pytest.mark.parametrize("lexer", [False, True], ids=["excursions", "component"])
@pytest.mark.parametrize("pattern,prefix", [(r'"([^"\\]|\\.)*"', '"'), (r'"([^"]|"")*",[a-z]+', '"a'), (r"x[^\n]*\n", "x"), (r'"[^"]*ab12[^"]*"', '"')])
def test_closed_slices_against_the_token_bytes(pattern, prefix, lexer):
    """A closed slice holds exactly the tokens whose walk from the landing state stays among
    the states of its non-ASCII excursions (multi-byte characters) or, for a lexer, of its
    strongly connected component (also escapes, a doubled quote, partial matches of a
    pattern the text must contain); ``clean`` exactly the trie nodes with only such tokens
    at and below them."""
    vocab = load_case("tekken").vocab
    trie = vocab.trie
    dfa = compile_regex(pattern, vocab, eager_masks=0).dfa
    r = dfa.walk(prefix.encode(), 0)
    component = (_component if lexer else _excursions)(dfa.transitions, r)
    assert len(component) > 2  # more than the state's own loop
    found = closed_slice(trie, dfa.transitions, r, (vocab.logits_width + 31) // 32, eager=True, lexer=lexer)
    trans = dfa.transitions.tolist()

    def stays(data: bytes) -> bool:
        s = r
        for byte in data:
            s = trans[s][byte]
            if s not in component:
                return False
        return True

    inside = {t for t in trie.token_ids.tolist() if stays(vocab.token_bytes[t])}
    assert any(b >= 0x80 for t in inside for b in vocab.token_bytes[t])
    assert set(words_to_ids(found.words, vocab.logits_width).tolist()) == inside
    rng = np.random.default_rng(2)
    for node in rng.integers(1, trie.n_nodes, 3000).tolist():
        tokens = [*trie.tokens_at(node).tolist(), *trie.tokens_below(node).tolist()]
        assert found.clean[node] == all(t in inside for t in tokens), node
        path = vocab.token_bytes[tokens[0]][: int(trie.depth[node])]
        assert found.path_in[node] == stays(path), node


def test_token_slices_are_kept_least_recently_used_first(monkeypatch):
    """A long process meets ever new byte sets: the slice cache keeps the most recently used
    ``MAX_SLICES_PER_TRIE`` and builds an evicted one again (same tokens) on request."""
    from structgen.automata import token_slices

    monkeypatch.setattr(token_slices, "MAX_SLICES_PER_TRIE", 2)
    vocab = load_case("smollm2").vocab
    width = (vocab.logits_width + 31) // 32
    rows = []
    for k in range(3):
        row = np.full(256, -1, dtype=np.int32)
        row[0x20 + k : 0x7F] = 5
        rows.append(row)
    first = self_loop_slice(vocab.trie, rows[0], 5, width, eager=True)
    second = self_loop_slice(vocab.trie, rows[1], 5, width, eager=True)
    assert self_loop_slice(vocab.trie, rows[0], 5, width) is first  # used again: kept
    self_loop_slice(vocab.trie, rows[2], 5, width, eager=True)  # evicts the second
    assert self_loop_slice(vocab.trie, rows[0], 5, width) is first
    again = self_loop_slice(vocab.trie, rows[1], 5, width, eager=True)
    assert again is not second and np.array_equal(again.words, second.words)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_shadow_depths_against_enumerated_strings(data):
    """``shadow_depths`` (the search that lets counted strings be walked in the string body's
    shadow, with its first-byte exit) against every string over three bytes: ``q``'s depth is
    one less than the shortest string the shadow reads and ``q`` does not (capped at the
    search depth), and every state it returns reads every shadow string as deep as it says."""
    alphabet = [ord("a"), ord("b"), ord("c")]
    n = data.draw(st.integers(1, 6))
    m = data.draw(st.integers(1, 3))
    transitions = np.full((n, 256), -1, dtype=np.int32)
    shadow = np.full((m, 256), -1, dtype=np.int32)
    for table, size in ((transitions, n), (shadow, m)):
        for s in range(size):
            for x in alphabet:
                table[s, x] = data.draw(st.integers(-1, size - 1))
    words = data.draw(st.integers(0, 1))
    live = np.array([[data.draw(st.integers(0, 3))] for _ in range(n)], dtype=np.uint64)[:, :words]
    allowed = np.array([data.draw(st.integers(1, 3))], dtype=np.uint64)[:words]
    q = data.draw(st.integers(0, n - 1))
    max_depth, min_depth = 5, data.draw(st.integers(0, 4))

    def read_depth(start: int, cap: int) -> int:
        """How many bytes deep every shadow string is read from ``start`` (at most ``cap``)."""
        frontier = [(start, 0)]
        for depth in range(cap):
            nxt = []
            for s, b in frontier:
                for x in alphabet:
                    if shadow[b, x] < 0:
                        continue
                    t = int(transitions[s, x])
                    if t < 0 or (words and not int(live[t, 0]) & int(allowed[0])):
                        return depth
                    nxt.append((t, int(shadow[b, x])))
            frontier = nxt
        return cap

    met = np.zeros((2, words), dtype=np.uint64)
    states, depths = token_slices.shadow_depths(transitions, q, shadow, max_depth, min_depth, 4096, live, allowed, met)
    assume(len(states) > 0)  # (past the search's budget: no answer)
    assert states[0] == q and depths[0] == read_depth(q, max_depth)
    for s, d in zip(states.tolist(), depths.tolist()):
        assert read_depth(s, d) == d
    # its report of what the answer depends on: every allowed set that meets row 0 and
    # misses row 1 gets the same answer from its own search
    if words and met[0, 0]:
        for other in range(1, 4):
            if other & int(met[0, 0]) and not other & int(met[1, 0]):
                again = token_slices.shadow_depths(
                    transitions, q, shadow, max_depth, min_depth, 4096, live, np.array([other], dtype=np.uint64), met.copy()
                )
                assert np.array_equal(again[0], states) and np.array_equal(again[1], depths), other
