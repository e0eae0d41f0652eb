"""The lexer of a grammar: one byte DFA over all its terminals at once.

Each state records which terminals the bytes read so far fully match (``accepts``) and which
can still be completed (``live``), as bitsets over terminal ids: the grammar's matcher keeps a
lexer state per open lexeme and asks the parser which terminals are allowed. Terminals never
match the empty string (the grammar IR makes empty ones optional), and the initial state has
no incoming transitions, so "at the initial state" means "no lexeme started".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import GrammarError, RegexError
from .byte_dfa import DEAD, DEFAULT_MAX_STATES, DEFAULT_TIMEOUT_S, determinize, fold_byte_columns, refine
from .subset_kernel import moore_refine, nfa_co_reachable, quotient_table, restricted_representatives, subset_terminals
from ..grammar.ir import Expr
from .arrays import grown
from .expr_nfa import NfaBuilder


@dataclass(frozen=True, eq=False)
class Lexer:
    """``transitions[q, byte]`` (or -1); ``live[q]`` / ``accepts[q]``: terminal bitsets as
    uint64 words (terminal ``t`` is bit ``t % 64`` of word ``t // 64``); state 0 is initial."""

    transitions: np.ndarray  # int32 (n_states, 256)
    live: np.ndarray  # uint64 (n_states, words)
    accepts: np.ndarray  # uint64 (n_states, words)
    n_terminals: int

    initial = 0

    @property
    def n_states(self) -> int:
        return int(self.transitions.shape[0])

    @property
    def words(self) -> int:
        return int(self.live.shape[1])

    def representatives(self, allowed: int) -> np.ndarray:
        """For each state, the least state that behaves the same when only the terminals
        in the bitset ``allowed`` count (the parser allows no others here), or -1 when none
        of them is live. Merging such states keeps a grammar state's configurations few: a
        name that is also a keyword's prefix is one configuration where keywords are not
        allowed. State 0 (no lexeme open) stays its own class."""
        return restricted_representatives(self.folded_columns, self.live, self.accepts, bits_to_words(allowed, self.words))

    def horizon_classes(self, depth: int) -> np.ndarray:
        """Each state's class (int64) under "the same live and accepted terminals after every
        string of at most ``depth`` bytes". A token mask reads no further than the longest
        token, so states in one class have the same lexeme walks: e.g. the positions of a long
        counted string that are far from its end."""
        initial = _signature_classes(self.live, self.accepts, np.arange(self.n_states) == 0)
        return moore_refine(self.folded_columns, initial, depth)[0]

    @cached_property
    def folded_columns(self) -> np.ndarray:
        """The transition table with bytes every state treats alike folded into one."""
        return fold_byte_columns(self.transitions)

    def live_int(self, q: int) -> int:
        return _to_int(self.live[q])

    def accepts_int(self, q: int) -> int:
        return _to_int(self.accepts[q])


def _to_int(words: np.ndarray) -> int:
    return int.from_bytes(words.astype("<u8").tobytes(), "little")


def words_to_ints(rows: np.ndarray) -> list[int]:
    """Rows of uint64 words as Python-int bitsets."""
    ints = rows[:, 0].tolist()
    for w in range(1, rows.shape[1]):
        ints = [i | (x << (64 * w)) for i, x in zip(ints, rows[:, w].tolist())]
    return ints


def set_bits(bits: int):
    """The positions of the set bits of a Python-int bitset, lowest first."""
    while bits:
        low = bits & -bits
        yield low.bit_length() - 1
        bits ^= low


def bits_to_words(bits: int, words: int) -> np.ndarray:
    """A Python-int bitset as uint64 words."""
    return np.frombuffer(bits.to_bytes(8 * words, "little"), dtype="<u8").astype(np.uint64)


def build_lexer(
    patterns: list[Expr],
    names: list[str],
    *,
    max_states: int = DEFAULT_MAX_STATES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Lexer:
    """The lexer DFA of ``patterns`` (closed regular expressions of the grammar IR; terminal
    ``t`` is ``patterns[t]``, each restricted to
    non-empty strings). A pattern that cannot be compiled raises :class:`GrammarError`
    naming its terminal."""
    deadline = time.monotonic() + timeout_s
    builder = NfaBuilder()  # every terminal in one NFA: no NFA object per terminal
    for pattern in patterns:
        builder.count(pattern)
    union = builder.nfa
    start = union.start = union.new_state()
    finals: dict[int, int] = {}
    sizes = [1]  # states per owner: the start (-1), then each terminal's
    for t, pattern in enumerate(patterns):
        first = union.n_states
        t_start, t_final = union.new_state(), union.new_state()
        try:
            builder.into(pattern, t_start, t_final)
        except RegexError as exc:
            raise GrammarError(f"terminal {names[t]}: {exc}") from exc
        # no construct moves into its start state: after a byte, the union's start
        # closure is never met again (the DFA's state 0 has no incoming moves)
        union.add_epsilon(start, t_start)
        sizes.append(union.n_states - first)
        finals[t_final] = t
    union.final = -1
    transitions, _, subsets = determinize(union, max_states, deadline, what="the grammar's lexer")
    words = max(1, (len(patterns) + 63) // 64)
    eps_ptr, eps_dst, edge_ptr, _, _, edge_dst = union.arrays()
    co_reachable = nfa_co_reachable(eps_ptr, eps_dst, edge_ptr, edge_dst, np.array(list(finals), dtype=np.int64))
    owner = np.repeat(np.arange(-1, len(patterns), dtype=np.int64), sizes)
    live_term = np.where(co_reachable, owner, -1)
    final_term = np.full(union.n_states, -1, dtype=np.int64)
    for x, t in finals.items():
        final_term[x] = t
    live, accepts = subset_terminals(subsets.members, subsets.offsets, live_term, final_term, words)
    # terminals are restricted to non-empty words: state 0 accepts nothing, and what is live
    # there is what is live after its first byte
    accepts[0] = 0
    targets = transitions[0][transitions[0] >= 0]
    live[0] = np.bitwise_or.reduce(live[targets], axis=0) if targets.size else 0
    return _minimize(transitions, live, accepts, len(patterns))


def _signature_classes(live: np.ndarray, accepts: np.ndarray, is_initial: np.ndarray) -> np.ndarray:
    """Class ids (int64) of states with the same live and accepted terminals and the same
    initial flag: the partition that Moore refinement starts from."""
    signature = np.ascontiguousarray(np.hstack((live, accepts, is_initial.astype(np.uint64)[:, None])))
    rows = signature.view(np.dtype((np.void, signature.dtype.itemsize * signature.shape[1]))).reshape(-1)
    return np.unique(rows, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _minimize(transitions: np.ndarray, live_words: np.ndarray, acc_words: np.ndarray, n_terminals: int) -> Lexer:
    """Merges states with the same live / accepted terminals and the same futures; the
    initial state's class becomes state 0."""
    n = transitions.shape[0]
    dead = ~live_words.any(axis=1)
    padded = np.append(dead, True)
    live_idx = np.flatnonzero(~dead)
    initial = _signature_classes(live_words[live_idx], acc_words[live_idx], live_idx == 0)
    columns = fold_byte_columns(transitions)  # folding commutes with the dead-state mapping
    columns = np.where(padded[columns], DEAD, columns)
    cls = np.full(n, -1, dtype=np.int64)
    cls[live_idx] = refine(columns[live_idx], initial, live_idx, n)
    if cls[0] < 0:
        raise GrammarError("the grammar's lexer matches no non-empty word")
    # classes numbered by first appearance (the initial state's first); the lowest state of
    # each class represents it
    seen_classes, first = np.unique(cls[live_idx], return_index=True)
    by_first = seen_classes[np.argsort(first, kind="stable")]
    reps = live_idx[np.sort(first)]
    remap = np.full(int(cls.max()) + 2, DEAD, dtype=np.int32)
    remap[by_first] = np.arange(len(by_first), dtype=np.int32)
    final = quotient_table(transitions, reps, remap[cls])  # dead states have class -1: DEAD
    live = np.ascontiguousarray(live_words[reps], dtype=np.uint64)
    accepts = np.ascontiguousarray(acc_words[reps], dtype=np.uint64)
    return Lexer(np.ascontiguousarray(final, dtype=np.int32), live, accepts, n_terminals)


MERGE_STATES_LIMIT = 1024  # larger lexers use each state as its own representative


class LexerViews:
    """The lexer as seen under each set of allowed terminals met so far, numbered, in rows
    the grammar kernels read (a view's id is its row):

    - ``allowed[a]``: the allowed terminals (uint64 words); ``ends[a]``: the non-ignored
      ones, ``ignored[a]``: the ignored ones;
    - ``reps[a, q]``: :meth:`Lexer.representatives` under view ``a`` (-1: nothing live),
      for lexers of at most ``MERGE_STATES_LIMIT`` states. Larger lexers, and those of
      JSON Schemas (``merge=False``: many sets of allowed terminals, each met a few times),
      keep no rows (``reps`` has no columns): a live state is its own representative, since
      refining them per view would cost more than merging saves.

    Rows are added by :meth:`view_of`; walks that may add views mid-walk call
    :meth:`reserve` first, since the arrays they read must not move."""

    def __init__(self, lexer: Lexer, ignore: int, merge: bool = True) -> None:
        self.lexer = lexer
        self.ignore = ignore
        self.merged = merge and lexer.n_states <= MERGE_STATES_LIMIT
        self.ids: dict[int, int] = {}
        self.rep_lists: list[list[int]] = []
        words = lexer.words
        self.reps = np.zeros((8, lexer.n_states if self.merged else 0), dtype=np.int32)
        self.allowed = np.zeros((8, words), dtype=np.uint64)
        self.ends = np.zeros((8, words), dtype=np.uint64)
        self.ignored = np.zeros((8, words), dtype=np.uint64)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_room(self) -> bool:
        return len(self.ids) < self.reps.shape[0]

    def reserve(self, spare: int) -> None:
        need = len(self.ids) + spare
        if need > self.reps.shape[0]:
            n = max(need, 2 * self.reps.shape[0])
            for name in ("reps", "allowed", "ends", "ignored"):
                setattr(self, name, grown(getattr(self, name), n, len(self.ids)))

    def view_of(self, allowed: int) -> int:
        """The id of the view under the terminal bitset ``allowed`` (added if new)."""
        a = self.ids.get(allowed)
        if a is not None:
            return a
        if not self.has_room:
            self.reserve(1)
        a = len(self.ids)
        words = self.lexer.words
        self.allowed[a] = bits_to_words(allowed, words)
        self.ends[a] = bits_to_words(allowed & ~self.ignore, words)
        self.ignored[a] = bits_to_words(allowed & self.ignore, words)
        if self.merged:
            reps = self.lexer.representatives(allowed)
            self.reps[a] = reps
            self.rep_lists.append(reps.tolist())
        self.ids[allowed] = a
        return a

    def rep(self, allowed: int, q: int) -> int:
        """The representative of live state ``q`` under ``allowed`` (byte-by-byte path)."""
        if self.merged:
            return self.rep_lists[self.view_of(allowed)][q]
        return q
