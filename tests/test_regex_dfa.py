"""Byte DFAs from regexes, checked against Python's ``re.fullmatch`` (the reference)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from structgen import ByteDFA, RegexError

ATOMS = ["a", "b", "é", "中", "🦙", "0", "[ab]", "[^a]", ".", r"\d", "[a-zé]", "x"]


@st.composite
def regexes(draw, depth=0):
    """Random patterns over a small alphabet that mixes 1-, 2-, 3- and 4-byte characters."""
    if depth >= 3 or draw(st.booleans()):
        return draw(st.sampled_from(ATOMS))
    kind = draw(st.sampled_from(["cat", "alt", "star", "plus", "opt", "rep"]))
    inner = draw(regexes(depth=depth + 1))
    if kind == "cat":
        return inner + draw(regexes(depth=depth + 1))
    if kind == "alt":
        return f"(?:{inner}|{draw(regexes(depth=depth + 1))})"
    if kind == "rep":
        lo = draw(st.integers(0, 3))
        return f"(?:{inner}){{{lo},{lo + draw(st.integers(0, 3))}}}"
    return f"(?:{inner})" + {"star": "*", "plus": "+", "opt": "?"}[kind]


TEXT = st.text(alphabet=st.sampled_from(list("abé中🦙0x\n5z")), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(regexes(), st.lists(TEXT, min_size=10, max_size=10), st.data())
def test_dfa_agrees_with_python_re(pattern, texts, data):
    dfa = ByteDFA.from_regex(pattern)
    samples = texts + [data.draw(st.from_regex(re.compile(pattern), fullmatch=True)) for _ in range(5)]
    for text in samples:
        expected = re.fullmatch(pattern, text, re.ASCII) is not None
        assert dfa.accepts(text.encode("utf-8")) == expected, (pattern, text)


@settings(max_examples=60, deadline=None)
@given(regexes())
def test_every_state_is_live_and_reachable(pattern):
    """Every state reaches acceptance (so 'not dead' means 'completable') and is reachable."""
    dfa = ByteDFA.from_regex(pattern)
    n = dfa.n_states
    succ = [set(int(t) for t in row if t >= 0) for row in dfa.transitions]
    reach = {0}
    todo = [0]
    while todo:
        for t in succ[todo.pop()]:
            if t not in reach:
                reach.add(t)
                todo.append(t)
    assert reach == set(range(n))
    for s in range(n):
        seen, todo, ok = {s}, [s], False
        while todo and not ok:
            q = todo.pop()
            ok = bool(dfa.accepting[q])
            for t in succ[q] - seen:
                seen.add(t)
                todo.append(t)
        assert ok, f"state {s} of {pattern!r} cannot reach acceptance"


@pytest.mark.parametrize(
    "pattern,good,bad",
    [
        (r"^\d{4}-\d{2}-\d{2}$", ["2024-01-31"], ["2024-1-31", "2024-01-31\n"]),
        (r"(?i)hello", ["HeLLo"], ["help"]),
        (r"[\u4e00-\u9fff]+", ["中文"], ["a", ""]),
        (r"\w+@\w+\.com", ["a_1@b.com"], ["ü@b.com"]),
        (r"a\.b\$", ["a.b$"], ["axb$"]),
        (r"\Afoo\Z", ["foo"], ["foo\n"]),
    ],
)
def test_python_re_semantics(pattern, good, bad):
    dfa = ByteDFA.from_regex(pattern)
    for s in good:
        assert dfa.accepts(s.encode()) and re.fullmatch(pattern, s, re.ASCII)
    for s in bad:
        assert not dfa.accepts(s.encode()) and not re.fullmatch(pattern, s, re.ASCII)


@pytest.mark.parametrize(
    "pattern,words",
    [
        (r"a(?=b)", "lookahead"),
        (r"(?<!a)b", "lookbehind"),
        (r"(a)\1", "backreference"),
        (r"(?P<x>a)(?P=x)", "backreference"),
        (r"a^b", "anchor"),
        (r"\bword", "word boundary"),
        (r"[a-", "syntax error"),
        (r"(?(1)a|b)", "syntax error"),
    ],
)
def test_unenforceable_constructs_are_named(pattern, words):
    with pytest.raises(RegexError, match=words):
        ByteDFA.from_regex(pattern)


def test_empty_language_is_an_error():
    with pytest.raises(RegexError, match="matches nothing"):
        ByteDFA.from_regex(r"[^\d\D]")


def test_size_budget():
    from structgen import CompileBudgetError

    with pytest.raises(CompileBudgetError):
        ByteDFA.from_regex(r"[a-z]{1,300}", max_states=100)


def test_from_strings_is_minimal_trie():
    dfa = ByteDFA.from_strings([b"yes", b"no", b"nope", b""])
    for s in [b"yes", b"no", b"nope", b""]:
        assert dfa.accepts(s)
    for s in [b"ye", b"nop", b"yess"]:
        assert not dfa.accepts(s)
    assert dfa.transitions.dtype == np.int32 and dfa.transitions.shape[1] == 256


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=6).map(lambda b: bytes(x % 4 + 97 for x in b)), min_size=1, max_size=12))
def test_from_strings_equals_the_minimal_dfa_of_the_alternation(words):
    """The trie merged from the leaves up is the minimal DFA: as many states as the table
    minimisation of the alternation's regex gives, and the same words (checked on every
    string over the alphabet up to one byte longer than the longest word)."""
    dfa = ByteDFA.from_strings(words)
    reference = ByteDFA.from_regex("|".join(re.escape(w.decode()) for w in words) or "")
    assert dfa.n_states == reference.n_states
    longest = max(map(len, words))
    strings = [b""]
    for _ in range(longest + 1):
        strings += [s + c for s in strings if len(s) == len(strings[-1]) for c in (b"a", b"b", b"c", b"d")]
    for text in strings:
        assert dfa.accepts(text) == (text in words) == reference.accepts(text), text


def _coarsest_partition(columns: np.ndarray, initial: list[int]) -> list[int]:
    """Reference: Moore's rounds over every state until no class splits, in plain Python;
    classes numbered by first state."""
    cls = list(initial)
    while True:
        signatures: dict[tuple, int] = {}
        new = [
            signatures.setdefault((cls[q], *(cls[t] if t >= 0 else -1 for t in columns[q])), len(signatures))
            for q in range(len(cls))
        ]
        if len(signatures) == len(set(cls)):
            return new
        cls = new


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_moore_refine_matches_plain_rounds(data):
    from structgen.automata.subset_kernel import moore_refine

    n = data.draw(st.integers(1, 40))
    k = data.draw(st.integers(1, 3))
    if data.draw(st.booleans()):  # a chain: as many rounds as states
        columns = np.full((n, k), -1, dtype=np.int64)
        columns[:-1, 0] = np.arange(1, n)
    else:
        columns = np.array(data.draw(st.lists(st.lists(st.integers(-1, n - 1), min_size=k, max_size=k), min_size=n, max_size=n)))
    initial = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    first: dict[int, int] = {}
    initial = [first.setdefault(c, len(first)) for c in initial]  # numbered from 0
    cls, count = moore_refine(columns.astype(np.int64).reshape(n, k), np.array(initial, dtype=np.int64))
    expected = _coarsest_partition(columns.reshape(n, k), initial)
    assert cls.tolist() == expected and count == len(set(expected))


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="abc", max_size=330))
def test_a_big_product_is_minimal_and_exact(text):
    """The intersection of two DFAs too big for plain Moore rounds (over 256 states) accepts
    what both regexes fully match, and has as many states as the minimal DFA of its table."""
    both = _big_product()
    assert both.accepts(text.encode()) == bool(re.fullmatch("[abc]{0,300}", text) and re.fullmatch("(?:ab|c|ba)*a?", text))
    assert both.n_states == ByteDFA.from_table(both.transitions, both.accepting).n_states


_BIG: list = []


def _big_product() -> ByteDFA:
    if not _BIG:
        from structgen.automata.byte_dfa import product

        _BIG.append(product(ByteDFA.from_regex("[abc]{0,300}"), ByteDFA.from_regex("(?:ab|c|ba)*a?")))
        assert _BIG[0].n_states > 256
    return _BIG[0]


_PRODUCT_REGEXES = ["[a-c]*b[a-c]?", "(?:ab|é)*", "[^a]{1,3}", "a*(?:bc)*é?", "[a-cé]{2,5}", "(?:é|c)+a"]


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(_PRODUCT_REGEXES), st.sampled_from(_PRODUCT_REGEXES), st.booleans(),
    st.lists(st.text(alphabet="abcéz", max_size=7), min_size=1, max_size=20),
)
def test_products_equal_python_re(left, right, difference, texts):
    """Intersections and differences of DFAs (built over classes of bytes both tables treat
    alike) accept what Python's re says of the two regexes, multi-byte characters included."""
    from structgen.automata.byte_dfa import product

    both = product(ByteDFA.from_regex(left), ByteDFA.from_regex(right), difference=difference)
    for text in texts:
        a, b = re.fullmatch(left, text) is not None, re.fullmatch(right, text) is not None
        expected = a and not b if difference else a and b
        assert (both is not None and both.accepts(text.encode())) == expected, (left, right, difference, text)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 6), st.one_of(st.none(), st.integers(0, 6)), st.lists(st.text(alphabet="aé€\U0001f600", max_size=9), min_size=1, max_size=10))
def test_repeat_single_counts_characters(lo, hi, texts):
    """``repeat_single`` of a one-character DFA accepts the texts of lo..hi characters
    (code points, of one to four bytes each), as ``len`` counts them."""
    from structgen.automata.byte_dfa import repeat_single

    if hi is not None and hi < lo:
        lo, hi = hi, lo
    counted = repeat_single(ByteDFA.from_regex("(?s:.)"), lo, hi)
    for text in texts:
        assert counted.accepts(text.encode()) == (lo <= len(text) and (hi is None or len(text) <= hi)), (lo, hi, text)


@st.composite
def raw_nfas(draw):
    """Random NFAs over bytes 'a'..'h' (with dead branches, empty-move cycles, and states with
    many overlapping moves), as (n_states, eps rows, edge rows)."""
    n = draw(st.integers(2, 7))
    state = st.integers(0, n - 1)
    eps = draw(st.lists(st.tuples(state, state), max_size=6))
    lo = st.integers(97, 104)
    edges = [
        (src, min(a, b), max(a, b), dst)
        for src, a, b, dst in draw(st.lists(st.tuples(state, lo, lo, state), min_size=1, max_size=40))
    ]
    return n, eps, edges


def _nfa_accepts(n, eps, edges, word: bytes) -> bool:
    """Plain NFA simulation (state 0 initial, state n - 1 final): the reference."""

    def closure(states):
        out, todo = set(states), list(states)
        while todo:
            s = todo.pop()
            for a, b in eps:
                if a == s and b not in out:
                    out.add(b)
                    todo.append(b)
        return out

    current = closure({0})
    for byte in word:
        current = closure({d for s, lo, hi, d in edges if s in current and lo <= byte <= hi})
    return n - 1 in current


@settings(max_examples=200, deadline=None)
@given(raw_nfas(), st.lists(st.binary(min_size=0, max_size=5).map(lambda w: bytes(97 + b % 8 for b in w)), min_size=20, max_size=20))
def test_subset_construction_agrees_with_nfa_simulation(nfa_parts, words):
    """``ByteDFA.from_nfa`` (intervals from the moves' bounds, subsets found by stamps, liveness
    read off the NFA) accepts what the NFA accepts, and keeps only states that can accept."""
    from structgen.automata.nfa import ByteNFA

    n, eps, edges = nfa_parts
    nfa = ByteNFA.from_moves(n, 0, n - 1, np.array(eps, dtype=np.int64).reshape(-1, 2), np.array(edges, dtype=np.int64).reshape(-1, 4))
    dfa = ByteDFA.from_nfa(nfa)
    if dfa is None:
        assert not any(_nfa_accepts(n, eps, edges, w) for w in words)
        return
    for w in words:
        assert dfa.accepts(w) == _nfa_accepts(n, eps, edges, w), w
    succ = [set(int(t) for t in row if t >= 0) for row in dfa.transitions]
    live = set(np.flatnonzero(dfa.accepting).tolist())
    grew = True
    while grew:
        grew = False
        for q in range(dfa.n_states):
            if q not in live and succ[q] & live:
                live.add(q)
                grew = True
    assert live == set(range(dfa.n_states))



@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(regexes() | st.just("(?:a){0}"), min_size=1, max_size=5), st.lists(TEXT, min_size=10, max_size=10), st.data())
def test_lexer_agrees_with_python_re(patterns, texts, data):
    """The lexer of several terminals, nullable ones included (a lexer matches non-empty
    words only): after each text, the accepted terminals are those whose pattern ``re``
    fully matches (none after the empty text), and the live ones are those of which the
    text is a prefix of a non-empty word (each pattern's own minimal DFA decides).
    ``(?:a){0}`` matches only the empty word: never live."""
    from structgen.automata.lexer import build_lexer
    from structgen.errors import GrammarError
    from structgen.grammar.ir import Pattern

    own = [ByteDFA.from_regex(p) for p in patterns]
    try:
        lexer = build_lexer([Pattern(p) for p in patterns], [f"T{t}" for t in range(len(patterns))])
    except GrammarError:
        assert not any((dfa.transitions[0] >= 0).any() for dfa in own), patterns
        return
    words = ["", *texts, *(data.draw(st.from_regex(re.compile(p), fullmatch=True)) for p in patterns)]
    for text in words:
        data_bytes = text.encode("utf-8")
        state = lexer.initial
        for byte in data_bytes:
            state = int(lexer.transitions[state, byte])
            if state < 0:
                break
        accepted = {t for t, p in enumerate(patterns) if text and re.fullmatch(p, text, re.ASCII)}
        live = set()
        for t, dfa in enumerate(own):
            q = 0
            for byte in data_bytes:
                q = int(dfa.transitions[q, byte])
                if q < 0:
                    break
            if q >= 0 and (text or (dfa.transitions[0] >= 0).any()):
                live.add(t)
        if state < 0:
            assert not live, (patterns, text)
            continue
        assert {t for t in range(len(patterns)) if lexer.accepts_int(state) >> t & 1} == accepted, (patterns, text)
        assert {t for t in range(len(patterns)) if lexer.live_int(state) >> t & 1} == live, (patterns, text)
