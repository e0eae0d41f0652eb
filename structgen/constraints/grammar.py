"""Context-free constraints: a lexer DFA over the grammar's terminals and a parser: LALR(1)
tables where the grammar has them without conflicts (:mod:`structgen.automata.lr`), else an
Earley parser (:mod:`structgen.automata.earley`); both give persistent parse nodes.

A state is a frozenset of configurations (lexer state, parse node): the lexer state of the
open lexeme (0 when none is open) and the parse of the lexemes before it. Several
configurations live side by side while the bytes have not decided between lexemes that share
a prefix, or where a lexeme ends. States are immutable and shared, so a matcher's copy and
rollback stay O(1).

A state's mask is the union of its configurations' masks, each in two parts (see
:mod:`structgen.automata.grammar_kernels`): the tokens read inside the open lexeme, from one
numba walk of the token trie cached per (lexer state, allowed terminals), so that a grammar
position met again under another parse costs no such walk; and the tokens that cross a
lexeme boundary, walked from the cached boundaries with the parser (Earley nodes numbered in
a table the kernel reads). Whole masks are cached per state as well, so a state met again
(inside a long lexeme, or at the same point of another sequence) costs a lookup.

With LR tables, a configuration's mask is also kept per lexeme part and the states of its
parse stack's top, as many as the parser and the boundary walk read (every LR step reports
the lowest stack height it read): a grammar position met again under another parse that
agrees that far down (a value in another object, a statement in another block) costs a
lookup too, though the state as a whole is new.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..automata import grammar_kernels as gk
from ..automata.kernels import trie_arrays
from ..automata.token_marks import TokenMarks
from ..automata.token_slices import (
    NO_CHAIN, NO_COUNTS, NO_NODES, StringShadow, TokenSlice, chain_walk, closed_slice, deep_landing_state, find_chain,
    landing_state, self_loop_slice,
)
from ..automata.earley import EarleyGrammar, EarleyNode
from ..automata import lr_kernels
from ..automata.lr import LRNode, LRTable, lalr_table, no_store
from ..automata.arrays import grown, zeroed
from ..automata.lexer import Lexer, LexerViews, bits_to_words, set_bits, words_to_ints
from ..grammar.ir import Bnf
from ..tokenizers.vocabulary import Vocabulary
from .base import Constraint

MASK_CACHE_SIZE = 4096
PREBUILT_PARTS = 32  # lexeme parts built at compile time at most (see GrammarConstraint.prebuild)
PREBUILT_CONFIGS = 512  # configuration masks built at compile time at most (see GrammarConstraint._prebuild_configs)
PREBUILD_CONFIGS_S = 0.05  # and for at most this long
LEXEME_CACHE_SIZE = 1024
PART_KEYS_SIZE = 1 << 16
MAX_CONFIGS = 64
SHARED_CONFIGS = 8  # states with at most this many configurations get their masks per configuration
CONFIG_CACHE_SIZE = 2048  # (16 KB a mask at 131k tokens)
MAX_TABLE_NODES = 1 << 18
SPARE_ROWS = 4096  # parser nodes the walk may add without a new round
SPARE_CELLS = 1 << 20  # at most this many cells of spare rows (JSON Schemas have many terminals)
COVERED_FROM_RECORDS = 256  # parts with this many boundaries let walks skip subtrees they cover
NO_COVERED = np.zeros(0, dtype=np.bool_)

State = frozenset  # of (lexer state, parse node)
ParseNode = EarleyNode | LRNode


@dataclass(frozen=True, eq=False)
class LexemePart:
    """What a configuration's mask owes to its lexer state and allowed terminals alone: the
    tokens read inside lexemes (``words``) and the boundaries passed, grouped by (terminal,
    byte) as :func:`structgen.automata.grammar_kernels.bucket_records` returns them."""

    words: np.ndarray
    keys: np.ndarray
    starts: np.ndarray
    nodes: np.ndarray
    uncovered: np.ndarray
    groups: np.ndarray
    in_order: np.ndarray
    covered: np.ndarray  # see grammar_kernels.covered_subtrees; empty for parts with few boundaries
    view: int  # the lexer view the walk ran under


class GrammarConstraint(Constraint):
    """A context-free grammar over a vocabulary (see the module docstring)."""

    def __init__(
        self, bnf: Bnf, lexer: Lexer, vocab: Vocabulary, description: str = "", parser: Any = None, merge_views: bool = True,
        shadow: np.ndarray | None = None, lalr: bool = True,
    ) -> None:
        """``shadow``: the transitions of a string body (state 0 loops on its characters),
        for lexers whose strings count their lengths (see :class:`StringShadow`). ``lalr``:
        parse with LALR(1) tables where the grammar has them (a step is a few reductions, not
        an Earley closure), else with the Earley parser."""
        self.bnf = bnf
        self.lexer = lexer
        self.vocab = vocab
        self.description = description
        self.lark_parser = parser  # lark's own parser for parse trees (Lark grammars only)
        self.earley = EarleyGrammar(bnf)
        table = lalr_table(bnf, self.earley.ignore_bits) if lalr else None
        self._root = self.earley.root() if table is None else table.root()
        self._lr: LRTable | None = table
        self._initial: State = frozenset({(0, self._root)})
        self._trans = lexer.transitions
        self._live = words_to_ints(lexer.live)
        self._accepts = words_to_ints(lexer.accepts)
        self._accepting = lexer.accepts.any(axis=1)  # whether a state accepts any terminal
        self._ignore = self.earley.ignore_bits
        follow, self._last = self.earley.follow_and_last()  # (only _last can end a sentence: is_accepting steps no others)
        self._flat, self._offsets = vocab.flat_bytes
        self._lock = threading.RLock() if table is None else table.lock
        self._masks: OrderedDict[State, np.ndarray] = OrderedDict()
        self._lexeme_parts: OrderedDict[tuple[int, int], LexemePart] = OrderedDict()
        self._config_masks: OrderedDict[tuple, np.ndarray] = OrderedDict()  # see _config_mask
        self._config_depths: dict[tuple, set[int]] = {}
        self._part_keys: dict[tuple[int, int], tuple] = {}  # see _part_key
        self._views = LexerViews(lexer, self._ignore, merge=merge_views)
        # lexer states alike for as many bytes as the longest token share lexeme walks
        self._horizon = lexer.horizon_classes(vocab.trie.max_depth).tolist()
        self._follow_ok = self._follow_table(follow)
        self._deep_landings: dict[int, int] = {}  # see _deep_slice
        self._deep_loop_slices: dict[int, TokenSlice] = {}
        self._landings: dict[int, int] = {}  # see _landing_slice
        self._closed_slices: dict[int, TokenSlice] = {}
        self._chains: dict[int, tuple[np.ndarray, np.ndarray, bool]] = {}  # see _chain
        self._shadow = None if shadow is None else StringShadow(shadow)
        self._loop_slot = np.full(lexer.n_states, -1, dtype=np.int32)  # see _keep_loop
        self._slot_outside: list[np.ndarray] = []  # per loop slot, its slice's counts
        self._all_terminals = np.full(lexer.words, np.iinfo(np.uint64).max, dtype=np.uint64)
        self._n_words = (vocab.logits_width + 31) // 32
        self._marks = TokenMarks(self._n_words)  # tokens crossing boundaries
        self._lexeme_marks = TokenMarks(self._n_words)  # tokens inside lexemes
        self._records = zeroed((vocab.trie.n_nodes, 3), np.int32)  # (boundaries found: a prefix is written)
        self._requests = np.zeros((256, 2), dtype=np.int32)  # children a boundary walk asks for
        self._walk_args: tuple | None = None  # see _walk_tables
        self._spare_rows = min(SPARE_ROWS, max(64, SPARE_CELLS // max(1, bnf.n_terminals)))
        self._reset_table()

    @property
    def parser_kind(self) -> str:
        """``"lalr"`` or ``"earley"``: which parser the grammar got (see the module docstring)."""
        return "earley" if self._lr is None else "lalr"

    def __repr__(self) -> str:
        return (
            f"GrammarConstraint({self.description}, terminals={self.bnf.n_terminals}, "
            f"lexer_states={self.lexer.n_states}, {self.vocab!r})"
        )

    def _follow_table(self, follow: list[int]) -> np.ndarray:
        """``[t, b]``: whether byte ``b`` begins some terminal that may follow ``t`` (or an
        ignored one); ``follow``: the terminals after each terminal."""
        words = self.lexer.words
        first_state = self._trans[0]
        begins = np.where((first_state >= 0)[:, None], self.lexer.live[np.maximum(first_state, 0)], 0)  # (256, words)
        after = np.stack([bits_to_words(bits | self._ignore, words) for bits in follow]) if follow else np.zeros((1, words), np.uint64)
        table = np.zeros((after.shape[0], 256), dtype=bool)
        for w in range(words):  # (a word at a time: terminals x bytes x words could be large)
            table |= (after[:, w, None] & begins[None, :, w]) != 0
        return table

    # ---- the parser table the kernel reads -------------------------------------------------
    # (with LR tables the table is the parser's own: its rows are the stacks, stepped in the
    # kernels, see structgen.automata.lr_kernels; Earley nodes are numbered here)
    def _reset_table(self) -> None:
        self._nodes: list[ParseNode] = []
        self._e_aid = np.zeros(64, dtype=np.int32)  # each node's lexer view
        self._e_child = np.zeros((64, max(1, self.bnf.n_terminals)), dtype=np.int32)  # child + 1 (see grammar_kernels)
        self._e_child_low = np.zeros_like(self._e_child)  # (0, all of the stack, for Earley nodes)

    @property
    def _aid(self) -> np.ndarray:
        """Each node's lexer view (-1: none yet)."""
        return self._e_aid if self._lr is None else self._lr.aid

    @property
    def _child(self) -> np.ndarray:
        """Each node's child after each terminal, plus one (see grammar_kernels)."""
        return self._e_child if self._lr is None else self._lr.child

    @property
    def _child_low(self) -> np.ndarray:
        """The lowest stack height each child was decided from."""
        return self._e_child_low if self._lr is None else self._lr.child_low

    def _lr_store(self) -> tuple:
        """What the kernels read of the LR tables (an empty store for the Earley parser)."""
        if self._lr is None:
            return no_store()
        self._lr.meta[lr_kernels.M_VIEWS] = len(self._views)
        return self._lr.store

    def _reserve(self, rows: int) -> None:
        """Makes room for ``rows`` more nodes and views (the kernel's arrays must not move
        mid-walk)."""
        self._views.reserve(min(rows, 64))
        if self._lr is not None:
            self._lr.reserve(rows)
            return
        need = len(self._nodes) + rows
        if need > self._e_child.shape[0]:
            n, used = max(need, 2 * self._e_child.shape[0]), len(self._nodes)
            self._e_aid = grown(self._e_aid, n, used)
            self._e_child = grown(self._e_child, n, used)
            self._e_child_low = grown(self._e_child_low, n, used)

    def _index(self, node: ParseNode) -> int:
        if self._lr is not None:
            if self._lr.aid[node.index] < 0:
                self._lr.aid[node.index] = self._views.view_of(node.allowed)
            return node.index
        if node.index >= 0 and node.index < len(self._nodes) and self._nodes[node.index] is node:
            return node.index
        k = len(self._nodes)
        if k == self._child.shape[0]:
            self._reserve(1)
        self._nodes.append(node)
        node.index = k
        self._aid[k] = self._views.view_of(node.allowed)
        return k  # its child row is all -1 (not computed yet); kernels ask only for allowed terminals

    def _expand(self, p: int, t: int) -> int:
        """Fills in the child of node ``p`` after terminal ``t`` and returns it as the
        kernels read it (the node, or -2 for a terminal not allowed)."""
        if self._lr is not None:
            return self._expand_lr(p, t, grow=True)
        node = self._nodes[p]
        nxt = node.scan(t)
        c = -2 if nxt is None else self._index(nxt)
        self._child[p, t] = c + 1  # (stored plus one, see grammar_kernels)
        return c

    def _expand_lr(self, p: int, t: int, grow: bool) -> int:
        """:meth:`_expand` with LR tables: the kernels step the parser themselves and ask
        here where no row was left or the child has no lexer view yet. Without ``grow``
        (mid-walk), -1 where that needs more room."""
        table = self._lr
        c = int(table.child[p, t]) - 1
        if c == -1:
            c = table.step(p, t, grow=grow)[0]
            if c == lr_kernels.FULL:
                return -1
        if c >= 0 and table.aid[c] < 0:
            if not grow and not self._views.has_room:
                return -1
            table.aid[c] = self._views.view_of(table.node(c).allowed)
        return c

    def _expand_in_walk(self, p: int, t: int) -> int:
        """The kernel's callback: the child of node ``p`` after terminal ``t``, numbered in a
        spare row (-1 when none is left: the kernel then asks for another round)."""
        if self._lr is not None:
            return self._expand_lr(p, t, grow=False)
        if len(self._nodes) >= self._child.shape[0] or not self._views.has_room:
            return -1
        return self._expand(p, t)

    # ---- the Constraint interface ---------------------------------------------------------
    @property
    def initial_state(self) -> State:
        return self._initial

    def advance(self, state: State, token_id: int) -> State | None:
        if self.vocab.special[token_id]:
            return None
        start, end = int(self._offsets[token_id]), int(self._offsets[token_id + 1])
        if start == end:
            return None
        return self.advance_bytes(state, self._flat[start:end].tobytes())

    def advance_bytes(self, state: State, data: bytes) -> State | None:
        """The state after ``data``, or None if no sentence has the output so far followed
        by ``data`` as a prefix."""
        configs = state
        for b in data:
            configs = self._step(configs, b)
            if not configs:
                return None
        return frozenset(configs)

    def _step(self, configs, b: int) -> set:
        trans, live, accepts, ignore = self._trans, self._live, self._accepts, self._ignore
        first = int(trans[0, b])
        out = set()
        for q, node in configs:
            allowed = node.allowed
            q2 = int(trans[q, b])
            if q2 >= 0 and live[q2] & allowed:
                out.add((self._views.rep(allowed, q2), node))
            if q == 0 or first < 0:
                continue
            ended = accepts[q] & allowed
            if not ended:
                continue
            if ended & ignore and live[first] & allowed:
                out.add((self._views.rep(allowed, first), node))
            for t in set_bits(ended & node.scannable):
                nxt = node.scan(t)
                if nxt is not None and live[first] & nxt.allowed:
                    out.add((self._views.rep(nxt.allowed, first), nxt))
        return out

    def is_accepting(self, state: State) -> bool:
        for q, node in state:
            if q == 0:
                if node.accepting:
                    return True
                continue
            ended = self._accepts[q] & node.allowed
            if ended & self._ignore and node.accepting:
                return True
            for t in set_bits(ended & node.scannable & self._last):
                nxt = node.scan(t)
                if nxt is not None and nxt.accepting:
                    return True
        return False

    def next_bytes(self, state: State) -> list[int]:
        """The bytes that may come next (EOS aside)."""
        return [b for b in range(256) if self._step(state, b)]

    def mask_words(self, state: State) -> np.ndarray:
        words = self._masks.get(state)
        if words is not None:
            return words
        with self._lock:
            words = self._masks.get(state)
            if words is None:
                words = self._compute_mask(state)
                self._masks[state] = words
                if len(self._masks) > MASK_CACHE_SIZE:
                    self._masks.popitem(last=False)
        return words

    def _compute_mask(self, state: State) -> np.ndarray:
        """The union of the configurations' masks: for each, its lexeme part (cached per
        lexer state and allowed terminals) and the tokens crossing a boundary."""
        if self._lr is None and len(self._nodes) > MAX_TABLE_NODES:
            self._reset_table()
        per_config = self._lr is not None and self._views.merged
        configs = self._with_ends_before(state, ordered=not per_config)
        if per_config and len(configs) <= SHARED_CONFIGS:
            owns = []
            for q, node in configs:
                own = self._config_mask(q, node)
                if own is None:
                    return self._mask_by_advancing(state)
                owns.append(own)
            # (a lone configuration's mask is shared, not copied: masks are read-only)
            words = owns[0] if len(owns) == 1 else np.bitwise_or(owns[0], owns[1])
            for own in owns[2:]:
                words |= own
            if self.is_accepting(state):
                words = words | self.eos_words
            return words
        trie = self.vocab.trie
        words = np.zeros(self._n_words, dtype=np.uint32)
        marks = self._marks
        shared = None if self._views.merged else self._allowed_per_lexer_state(configs)
        for q, node in configs:
            walked = node.allowed if shared is None else shared[q]
            part = self._lexeme_part(q, walked)
            if part is None:
                marks.flush_into(np.zeros_like(words), trie)  # drop what was marked
                return self._mask_by_advancing(state)
            over = self._dominating(q, node, configs)
            if over is None:
                words |= part.words
                only = self._all_terminals if walked == node.allowed else self._terminal_words(set_bits(node.allowed))
            else:  # its own tokens are the other's, but for boundaries leading elsewhere
                only = self._terminal_words(
                    t
                    for t in set((part.keys >> 8).tolist())
                    if node.allowed >> t & 1 and node.scan(t) is not over.scan(t)
                )
            if part.keys.size and only.any() and self._boundary_part(part, self._index(node), only) is None:
                marks.flush_into(np.zeros_like(words), trie)
                return self._mask_by_advancing(state)
        marks.flush_into(words, trie)
        if self.is_accepting(state):
            words |= self.eos_words
        return words

    def _config_mask(self, q: int, node: LRNode) -> np.ndarray | None:
        """The tokens configuration ``(q, node)`` reads (None when a walk meets too many
        configurations at once), kept per lexeme part and the states of the stack's top as
        deep as the walks read it: met again under another parse with the same top (a
        value in another object, a statement in another block), it costs a lookup."""
        key = self._part_key(q, node.allowed)[2]
        for depth in self._config_depths.get((key, node.state), ()):
            found = (key, node.top_states(depth))
            words = self._config_masks.get(found)
            if words is not None:
                self._config_masks.move_to_end(found)
                return words
        part = self._lexeme_part(q, node.allowed)
        if part is None:
            return None
        low = node.height  # (the node's own allowed set, read deeper, is in the key)
        words = part.words
        if part.keys.size:
            low = self._boundary_part(part, self._index(node), self._all_terminals, low)
            if low is None:
                self._marks.flush_into(np.zeros_like(words), self.vocab.trie)  # drop what was marked
                return None
            words = words.copy()
            self._marks.flush_into(words, self.vocab.trie)
        depth = node.height - low + 1
        self._config_depths.setdefault((key, node.state), set()).add(depth)
        self._config_masks[(key, node.top_states(depth))] = words
        if len(self._config_masks) > CONFIG_CACHE_SIZE:
            self._config_masks.popitem(last=False)
        return words

    @staticmethod
    def _allowed_per_lexer_state(configs: list) -> dict[int, int]:
        """Per lexer state, the terminals any configuration in it allows. Configurations in
        one lexer state share one lexeme walk under that union: a token read inside the
        lexeme keeps some terminal of the union live, so some configuration reads it (the
        union of their parts, which is what the mask needs); a boundary the walk records
        for terminal ``t`` is one every configuration allowing ``t`` passes, and each walks
        only the boundaries of its own terminals (states equivalent under the union are
        equivalent under each configuration's own terminals). Only for lexers too large to
        merge states per view: in merged ones a state is a representative under one view,
        and walks per (state, allowed set) are met again more often than unions are."""
        shared: dict[int, int] = {}
        for q, node in configs:
            shared[q] = shared.get(q, 0) | node.allowed
        return shared

    @staticmethod
    def _dominating(q: int, node: ParseNode, configs: list) -> ParseNode | None:
        """Another node of ``configs`` in lexer state ``q`` that allows every terminal
        ``node`` allows (ties broken by id, so that no two configurations defer to each
        other). Such a configuration reads every token ``(q, node)`` reads inside lexemes
        (a simulation: same bytes, more terminals, the same node after ignored ones), and
        after a boundary whose terminal leads both nodes to the same successor, the same
        tokens again; only boundaries leading elsewhere remain to be walked."""
        allowed = node.allowed
        for q2, other in configs:
            if q2 == q and other is not node and not allowed & ~other.allowed:
                if allowed != other.allowed or id(other) < id(node):
                    return other
        return None

    def _terminal_words(self, terminals) -> np.ndarray:
        bits = 0
        for t in terminals:
            bits |= 1 << t
        return bits_to_words(bits, self.lexer.words)

    def _with_ends_before(self, state: State, ordered: bool = True) -> list:
        """The configurations of ``state`` plus, for each open lexeme that could end here,
        the configuration after it with no lexeme open (what the lexeme walk leaves out);
        in a fixed order unless not ``ordered``."""
        if len(state) == 1 and not ordered:
            (q, node), = state
            if q == 0:
                return [(q, node)]
        configs = set(state)
        for q, node in state:
            if q == 0:
                continue
            ended = self._accepts[q] & node.allowed
            if ended & self._ignore:
                configs.add((0, node))
            for t in set_bits(ended & node.scannable):
                nxt = node.scan(t)
                if nxt is not None:
                    configs.add((0, nxt))
        return sorted(configs, key=lambda c: (c[0], id(c[1]))) if ordered else list(configs)

    def _lexer_rows(self) -> tuple[np.ndarray, ...]:
        """What the kernels read of the lexer and its views (live, accepts, reps, allowed,
        ends, ignored)."""
        views = self._views
        return self.lexer.live, self.lexer.accepts, views.reps, views.allowed, views.ends, views.ignored

    def _lexeme_part(self, q: int, allowed: int) -> "LexemePart | None":
        """The lexeme part of configurations in lexer state ``q`` under a parser node that
        allows ``allowed`` (None when the walk meets too many lexer states at once); the
        same for every state of ``q``'s horizon class.

        Inside a lexeme that no ignored terminal can end, only the terminals still live in
        ``q`` count (live sets only shrink along the lexer's transitions, and a lexeme
        begins again only after an ignored one): a name read under one set of allowed
        terminals walks as under any other that allows the same of its live ones, and from
        any state that behaves alike under those (a name's states after different letters)."""
        q, allowed, key = self._part_key(q, allowed)
        part = self._lexeme_parts.get(key)
        if part is not None:
            self._lexeme_parts.move_to_end(key)
            return part
        trie = self.vocab.trie
        marks = self._lexeme_marks
        reach, body = 0, None
        if q != 0 and self._shadow is not None:
            # a JSON string (a key or a value) that reads what the plain string body reads:
            # the body's slice skips more than the landing state's would, whose component
            # strings of other shapes (formats, patterns, the declared keys) leave; and it
            # is built once per tokenizer, not once per schema
            reach, body = self._shadow.reach(
                self._trans, q, trie, self._n_words, allowed, self.lexer.live, bits_to_words(allowed, self.lexer.words)
            )
        # else a landing state live under these terminals, accepting or not: every token of
        # a clean subtree is read inside the lexeme, so a boundary there (a CSV field or
        # markup text could end at any byte) could only lead to tokens already allowed
        landing, found = (-1, None) if body is not None else self._landing_slice(q, allowed)
        clean, path_in = (NO_NODES, NO_NODES) if found is None else (found.clean, found.path_in)
        deep, below = self._deep_slice(q, landing, found)
        chain, chain_reach, chain_in, chain_clean = NO_CHAIN, 0, NO_NODES, NO_NODES
        start_words = None if found is None else found.words
        if body is not None:
            clean, path_in, start_words = body.clean, body.path_in, body.words
        if found is None and q != 0 and not reach:
            chain, chain_reach, chained, start_words = self._chain(q, allowed)
            if chained is not None:
                chain_in, chain_clean = chained.path_in, chained.clean
        while True:
            v = self._views.view_of(allowed)
            live, accepts, *view_rows = self._lexer_rows()
            words = np.zeros(self._n_words, dtype=np.uint32) if start_words is None else start_words.copy()
            status, marks.count, r = gk.lexeme_walk(
                self._trans, live, accepts, self._accepting, *view_rows, v, self._follow_ok, q, *trie_arrays(trie),
                landing, clean, path_in, reach, deep, below, chain, chain_reach, chain_in, chain_clean, trie.subtree_deepest, trie.token_ptr,
                trie.token_ids, words, MAX_CONFIGS, marks.ok, marks.visited, self._records,
            )  # fmt: skip
            if status != gk.RECORDS_FULL:
                break
            marks.flush_into(np.zeros(self._n_words, dtype=np.uint32), trie)
            self._records = zeroed((2 * self._records.shape[0], 3), np.int32)
        marks.flush_into(words, trie)
        if status == gk.TOO_MANY_CONFIGS:
            return None
        covered = NO_COVERED
        if r >= COVERED_FROM_RECORDS:  # (names that could also read as keywords: most boundaries add nothing)
            covered = gk.covered_subtrees(trie.node_token, trie.subtree_end, words, self._records, r)
            r = gk.drop_covered_records(self._records, r, covered)
        part = LexemePart(words, *gk.bucket_records(self._records, r, max(1, self.bnf.n_terminals), trie.byte), covered, v)
        self._lexeme_parts[key] = part
        if len(self._lexeme_parts) > LEXEME_CACHE_SIZE:
            self._lexeme_parts.popitem(last=False)
        return part

    def _part_key(self, q: int, allowed: int) -> tuple[int, int, tuple[int, int]]:
        """The lexer state and terminals a lexeme walk from ``q`` under ``allowed`` runs
        with, and the key its part is kept under (see :meth:`_lexeme_part`); kept."""
        found = self._part_keys.get((q, allowed))
        if found is None:
            q0, allowed0 = q, allowed
            if q != 0 and not self._live[q] & self._ignore:
                allowed &= self._live[q]
                q = self._views.rep(allowed, q)
            found = self._part_keys[(q0, allowed0)] = (q, allowed, (self._horizon[q], allowed))
            if len(self._part_keys) > PART_KEYS_SIZE:
                self._part_keys.clear()
        return found

    def prebuild(self, deadline: float, max_parts: int = PREBUILT_PARTS, max_configs: int = PREBUILT_CONFIGS) -> None:
        """Builds now what the first requests would otherwise build (each a walk of the
        whole trie, milliseconds at 131k tokens), while ``time.monotonic()`` is before
        ``deadline``: the closed slices of the lexer states where walks land and loop (a
        string's or a comment's body, a name's tail; kept per tokenizer, so grammars share
        them), then, with LR tables, the lexeme parts with no lexeme open under the
        terminals of each LR state that only shifts (its allowed set whatever the stack
        below: the positions after an opening bracket or a keyword), then under all the
        terminals each other state acts on (its allowed set where the stack below refuses
        none of its reductions' lookaheads), at most ``max_parts``; then, in lexers small
        enough to merge views, configuration masks (see :meth:`_prebuild_configs`)."""
        for landing in sorted({self._landing(q) for q in range(1, self.lexer.n_states)} - {-1}):
            self._closed_slice(landing, eager=True)
        if self._lr is None:
            return
        table = self._lr
        # states that only shift first (their allowed set whatever the stack), then the others
        states = sorted(range(table.n_states), key=lambda s: bool(table.reduces[s]))
        wanted = dict.fromkeys(
            (table.shift_bits[s] | sum(bits for bits, _, _ in table.reduces[s])) & table.terminal_bits | table.ignore_bits
            for s in states
        )
        for allowed in list(wanted)[:max_parts]:
            if time.monotonic() > deadline:
                break
            self._lexeme_part(0, allowed)
        if self._views.merged:
            self._prebuild_configs(min(deadline, time.monotonic() + PREBUILD_CONFIGS_S), max_configs)

    def _prebuild_configs(self, deadline: float, max_configs: int) -> None:
        """Builds the configuration masks (see :meth:`_config_mask`) of one parse per LR
        state, met breadth-first from the root, with no lexeme open first, then in every
        lexer state a lexeme begun there reaches, while ``time.monotonic()`` is before
        ``deadline`` and at most ``max_configs``: a grammar position first met in a
        request then costs a lookup wherever its mask reads no deeper than the stack's
        top (as xgrammar's compile does for every position)."""
        seen: dict[int, LRNode] = {}
        queue = [self._root]
        for node in queue:  # (the queue grows while read)
            if node.state in seen or len(seen) >= max_configs:
                continue
            seen[node.state] = node
            for t in set_bits(node.scannable):
                child = node.scan(t)
                if child is not None and child.state not in seen:
                    queue.append(child)
                if time.monotonic() > deadline:
                    return
        budget = max_configs
        for node in seen.values():  # no lexeme open
            if budget <= 0 or time.monotonic() > deadline or self._config_mask(0, node) is None:
                return
            budget -= 1
        # inside a lexeme: the states one byte in for every LR state first, then two bytes in...
        by_allowed = {allowed: self._begun_states(allowed) for allowed in {node.allowed for node in seen.values()}}
        keys = {state: {self._part_key(0, node.allowed)[2]} for state, node in seen.items()}
        for depth in range(max(map(len, by_allowed.values()), default=0)):
            for state, node in seen.items():
                levels = by_allowed[node.allowed]
                for q in levels[depth] if depth < len(levels) else ():
                    q = self._views.rep(node.allowed, q)
                    key = self._part_key(q, node.allowed)[2]
                    if key in keys[state]:
                        continue
                    keys[state].add(key)
                    if budget <= 0 or time.monotonic() > deadline or self._config_mask(q, node) is None:
                        return
                    budget -= 1

    def _begun_states(self, allowed: int) -> list[list[int]]:
        """The lexer states a lexeme begun under ``allowed`` reaches while some allowed
        terminal stays live (state 0 aside), by the fewest bytes they take (one, two...)."""
        trans = self._trans
        ok = (self.lexer.live & bits_to_words(allowed, self.lexer.words)).any(axis=1)
        ok[0] = False
        seen = np.zeros(len(ok), dtype=bool)
        frontier = np.zeros(1, dtype=np.int64)
        levels = []
        while True:
            nxt = np.unique(trans[frontier])
            nxt = nxt[nxt > 0]
            nxt = nxt[ok[nxt] & ~seen[nxt]]
            if not nxt.size:
                return levels
            seen[nxt] = True
            levels.append(nxt.tolist())
            frontier = nxt

    def _landing_slice(self, q: int, allowed: int) -> "tuple[int, TokenSlice | None]":
        """The landing state of walks from ``q`` and its closed slice (see
        :func:`structgen.automata.token_slices.landing_slice`), or (-1, None) when it is not
        live under ``allowed`` or has no slice (yet); both kept per state once found (the
        search for either costs as much as a small walk)."""
        landing = self._landing(q)
        if landing < 0 or not self._live[landing] & allowed:
            return -1, None
        # (built at once for accepting states: a slice costs about one fast walk of the trie, a walk there several)
        found = self._closed_slice(landing, eager=bool(self._accepting[landing]))
        return (-1, None) if found is None else (landing, found)

    def _landing(self, q: int) -> int:
        """The landing state of walks from ``q`` (-1 if none), kept per state."""
        landing = self._landings.get(q)
        if landing is None:
            landing = self._landings[q] = landing_state(self._trans, q)
        return landing

    def _closed_slice(self, landing: int, eager: bool) -> "TokenSlice | None":
        """The closed slice of state ``landing``, kept once built (see
        :func:`structgen.automata.token_slices.closed_slice` for ``eager``)."""
        found = self._closed_slices.get(landing)
        if found is None:
            found = closed_slice(self.vocab.trie, self._trans, landing, self._n_words, eager=eager, lexer=True)
            if found is not None:
                self._closed_slices[landing] = found
        return found

    def _chain(self, q: int, allowed: int) -> "tuple[np.ndarray, int, TokenSlice | None, np.ndarray | None]":
        """The chain from ``q`` (see :func:`structgen.automata.token_slices.byte_chain`, kept
        per state) as far as its states are live under ``allowed`` and accept nothing, as
        :func:`structgen.automata.token_slices.chain_walk` gives it to the walk."""
        found = self._chains.get(q)
        if found is None:
            found = self._chains[q] = find_chain(self._trans, q, self.vocab.trie)
        on, states, dies = found
        length = 0
        for row in states.tolist():  # (rows of -1 before the chain begins: walked as usual)
            if any(r >= 0 and (self._accepting[r] or not self._live[r] & allowed) for r in row):
                dies = False
                break
            length += 1
        return chain_walk(self.vocab.trie, on, states[:length], dies, self._n_words)

    def _deep_slice(self, q: int, landing: int, found: "TokenSlice | None") -> tuple[int, np.ndarray]:
        """The state whose slice lexeme walks from ``q`` use below the first bytes (see
        :func:`structgen.automata.grammar_kernels.lexeme_walk`), and its counts of nodes
        outside the set: the landing state's when there is one and it accepts (a name, a
        field), else the state most walks from ``q`` reach after two bytes (a name's body,
        from no open lexeme, or after a keyword's run of spaces in lexers that merge views,
        where the name may also sit inside a longer lexeme: ``"(" type name ")"``), both
        kept per state; (-1, empty) when none or its slice is not built yet."""
        if found is not None:
            self._keep_loop(landing, found)
            # (inside lexemes that cannot end, such as JSON strings, the root slice is enough
            # and marking subtrees one by one measured slower than walking them)
            return (landing, found.outside_before) if self._accepting[landing] else (-1, NO_COUNTS)
        deep = self._deep_landings.get(q)
        if deep is None:
            deep = -1
            # (from an open lexeme: only in lexers small enough to merge views, whose states
            # are few and met often; JSON Schemas' thousands of states would pay the search
            # on more first walks than it saves, measured. One that accepts nothing serves
            # as well: every token below it stays inside the lexeme)
            if q == 0 or self._views.merged:
                deep = deep_landing_state(self._trans, q)
            self._deep_landings[q] = deep
        if deep < 0:
            return -1, NO_COUNTS
        other = self._deep_loop_slices.get(deep)
        if other is None:
            other = self_loop_slice(self.vocab.trie, self._trans[deep], deep, self._n_words, eager=bool(self._accepting[deep]))
            if other is None:
                return -1, NO_COUNTS  # (not built yet: asked for again, it is)
            self._deep_loop_slices[deep] = other
        self._keep_loop(deep, other)
        return deep, other.outside_before

    def _keep_loop(self, r: int, found: TokenSlice) -> None:
        """Lets boundary walks mark a subtree at once where a configuration holds state
        ``r`` and every byte below stays in ``r``'s loop set (``found``, its slice); for
        the first ``LOOP_SLOTS`` such states met (see :func:`grammar_kernels.boundary_walk`)."""
        if self._loop_slot[r] >= 0 or len(self._slot_outside) >= gk.LOOP_SLOTS:
            return
        self._loop_slot[r] = len(self._slot_outside)
        self._slot_outside.append(found.outside_before)

    def _boundary_part(self, part: "LexemePart", p: int, only: np.ndarray, low: int = 0) -> int | None:
        """Marks the tokens of parser node ``p`` that cross one of ``part``'s boundaries
        whose terminal is in the bitset ``only``. Returns the lowest stack height the walk
        read (``low`` at most: pass the node's height), or None when it met too many
        configurations at once."""
        marks = self._marks
        requests = self._requests
        gk.set_expander(self._expand_in_walk)
        while True:
            self._reserve(self._spare_rows)
            slots, tables, lr = self._walk_tables()
            status, marks.count, n_req, low = gk.boundary_walk(
                part.keys, part.starts, part.nodes, part.uncovered, part.groups, part.in_order, part.covered, *slots, p,
                part.view, only, *tables, marks.count, requests, low, lr,
            )  # fmt: skip
            if status == gk.OK:
                return low
            if status == gk.TOO_MANY_CONFIGS:
                return None
            for p2, t in requests[:n_req].tolist():
                if self._child[p2, t] == 0 or self._lr is not None:  # (not computed yet, or with no view)
                    self._expand(p2, t)

    def _walk_tables(self) -> tuple[tuple, tuple, tuple]:
        """What :func:`grammar_kernels.boundary_walk` reads besides the lexeme part and the
        node: the loop slots, then the lexer, parser and trie arrays from ``transitions`` to
        the marks, then the LR store; kept until one of the arrays moves (views or parser
        rows grown, a loop slot added)."""
        lr = self._lr_store()
        moved, reps, n_slots = lr if self._lr is not None else self._e_child, self._views.reps, len(self._slot_outside)
        cached = self._walk_args
        if cached is None or cached[0] is not moved or cached[1] is not reps or cached[2] != n_slots:
            slots = (self._loop_slot, *self._slot_outside, *[NO_COUNTS] * (gk.LOOP_SLOTS - len(self._slot_outside)))
            tables = (
                self._trans, self._aid, *self._lexer_rows(), self._follow_ok, self._child, self._child_low,
                *trie_arrays(self.vocab.trie), MAX_CONFIGS, self._marks.ok, self._marks.visited,
            )  # fmt: skip
            cached = self._walk_args = (moved, reps, n_slots, slots, tables)
        return cached[3], cached[4], lr

    def _mask_by_advancing(self, state: State) -> np.ndarray:
        """The exact mask token by token (slow; only for states with very many
        configurations)."""
        words = np.zeros((self.vocab.logits_width + 31) // 32, dtype=np.uint32)
        for t in self.vocab.maskable_ids.tolist():
            if self.advance(state, t) is not None:
                words[t >> 5] |= np.uint32(1 << (t & 31))
        if self.is_accepting(state):
            words |= self.eos_words
        return words

    @property
    def cached_states(self) -> int:
        return len(self._masks)

    def parse(self, text: str):
        """The parse tree of ``text`` built by lark's own Earley parser for the same
        grammar (Lark grammars only)."""
        if self.lark_parser is None:
            raise ValueError("parse trees are available for Lark grammars only")
        return self.lark_parser.parse(text)
