"""numba kernels: token masks of a grammar, the lexer inside the trie walk, the parser at
lexeme boundaries.

A configuration is (lexer state ``q``, parser node ``p``). The tokens it allows split in two:

- tokens read inside the open lexeme (and ignored lexemes after it): they depend only on
  ``q`` and on the terminals ``p`` allows, not on the rest of the parse. :func:`lexeme_walk`
  marks them and lists the *boundaries* it passes: trie nodes where a (non-ignored) terminal
  ``t`` ends and the node's byte starts the next lexeme. :func:`bucket_records` groups the
  boundaries by (terminal, byte). The caller caches both per (``q``, allowed terminals), so a
  grammar position met again with another parse below it costs no walk of the whole trie.
- tokens that cross a boundary: :func:`boundary_walk` asks the parser for the node after
  ``t``, drops the (terminal, byte) groups the new node cannot start, and walks the subtrees
  of the rest with the full configuration logic (any number of further boundaries).

Walking on from a boundary, each byte either extends the open lexeme (if a terminal the
parser allows stays live) or ends it (if the lexer accepts an allowed terminal there) and
starts the next lexeme with that byte, in the parser node after that terminal (the same node
for an ignored terminal). The lexer is read through views (see
:class:`structgen.automata.lexer.LexerViews`): under the terminals a parser node allows,
equivalent lexer states merge into one representative, and a state's allowed ends are one
lookup; ``follow_ok[t, b]`` says whether byte ``b`` can begin a lexeme that may follow
terminal ``t`` anywhere in the grammar (a static filter: boundaries it rules out cost no
parser step). The parser is a table: ``aid[p]`` (the view of node ``p``) and ``child[p, t]`` (the
node after terminal ``t``, stored plus one: >= 1 that node, -1 not allowed, 0 not computed yet,
so that spare rows are zeros and cost no memory until the walk writes them; the kernels read
it through :func:`_known_child`, as the node: >= 0, -2 not allowed, -1 not computed). A child
not computed yet is stepped in the kernel with LR tables (the parser's stacks are rows of
:mod:`structgen.automata.lr_kernels`), else, and for a child whose lexer view is new, asked
for through a callback; when no room is left, the walk records the request and leaves that
branch out, and the caller walks again, so the final mask is exact.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, objmode
from numba.cpython.unsafe.numbers import trailing_zeros

from .kernels import trie_arrays
from .lr_kernels import find_view, scan as lr_scan
from .token_slices import unmark_node, unmark_subtree
from .token_marks import TokenMarks, mark_below, mark_node
from .token_trie import TokenTrie

# returned status
OK = 0
NEEDS_CHILDREN = 1
TOO_MANY_CONFIGS = 2
RECORDS_FULL = 3

# The walk asks the parser for a missing child synchronously through this callback (set by
# the caller for its thread): expand(p, t) fills child[p, t] (and the new node's rows, in
# spare rows the caller reserved) and returns it, or -1 when no spare row is left.
_expander = threading.local()


def set_expander(fn) -> None:
    _expander.fn = fn


def _expand(p: int, t: int) -> int:
    return _expander.fn(p, t)


@njit(cache=True, nogil=True, inline="always")
def _push(cq: np.ndarray, cp: np.ndarray, d: int, k: int, q: int, p: int) -> int:
    """Adds (q, p) to the configurations at depth d (k so far); returns the new count, or -1
    when the row is full."""
    for j in range(k):
        if cq[d, j] == q and cp[d, j] == p:
            return k
    if k == cq.shape[1]:
        return -1
    cq[d, k] = q
    cp[d, k] = p
    return k + 1


@njit(cache=True, nogil=True, inline="always")
def _add(cq: np.ndarray, d: int, k: int, q: int) -> int:
    """Adds lexer state q to row d (k so far) unless there; the new count, or -1 when full."""
    for j in range(k):
        if cq[d, j] == q:
            return k
    if k == cq.shape[1]:
        return -1
    cq[d, k] = q
    return k + 1


@njit(cache=True, nogil=True)
def _rep(reps: np.ndarray, live: np.ndarray, allowed: np.ndarray, v: int, q: int) -> int:
    """State ``q``'s representative under view ``v`` of :class:`LexerViews` (-1: none)."""
    if q < 0:
        return -1
    if reps.shape[1] > 0:
        return reps[v, q]
    if q == 0:
        return 0
    for w in range(live.shape[1]):
        if live[q, w] & allowed[v, w]:
            return q
    return -1


@njit(cache=True, nogil=True, inline="always")
def _in_set_below(outside_before: np.ndarray, subtree_end: np.ndarray, i: int) -> bool:
    """Whether every node strictly below trie node ``i`` has its byte in a slice's set
    (``outside_before``: the slice's running count of nodes outside it)."""
    return outside_before[subtree_end[i]] == outside_before[i + 1]


LOOP_SLOTS = 4  # the loop slots boundary walks take (see boundary_walk)


@njit(cache=True, nogil=True, inline="always")
def _slot_in_set_below(
    slot: int, slot0: np.ndarray, slot1: np.ndarray, slot2: np.ndarray, slot3: np.ndarray, subtree_end: np.ndarray, i: int
) -> bool:
    """:func:`_in_set_below` for loop slot ``slot``'s counts (passed as four arrays: a
    slice's counts are shared, never copied into one table)."""
    if slot == 0:
        return _in_set_below(slot0, subtree_end, i)
    if slot == 1:
        return _in_set_below(slot1, subtree_end, i)
    if slot == 2:
        return _in_set_below(slot2, subtree_end, i)
    return _in_set_below(slot3, subtree_end, i)


@njit(cache=True, nogil=True, inline="always")
def _in_chain(reps, live, allowed, v, chain_states, d: int, q: int) -> bool:
    """Whether state ``q`` (a representative under view ``v``) is one of the chain's states
    at depth ``d``."""
    for k in range(chain_states.shape[1]):
        r = chain_states[d - 1, k]
        if r >= 0 and _rep(reps, live, allowed, v, r) == q:
            return True
    return False


@njit(cache=True, nogil=True, inline="always")
def _seeds_from(order_nodes: np.ndarray, s: int, n_seeds: int, e: int) -> int:
    """The first seed at or after trie node ``e`` (seeds are in trie order from ``s`` on)."""
    while s < n_seeds and order_nodes[s] < e:
        s += 1
    return s


@njit(cache=True, nogil=True)
def _ignored_end(accepts: np.ndarray, ignored: np.ndarray, v: int, q: int) -> bool:
    """Whether state ``q`` accepts an ignored terminal that view ``v`` allows."""
    for w in range(accepts.shape[1]):
        if accepts[q, w] & ignored[v, w]:
            return True
    return False


@njit(cache=True, nogil=True)
def lexeme_walk(
    transitions: np.ndarray,
    live: np.ndarray,
    accepts: np.ndarray,
    accepting: np.ndarray,
    reps: np.ndarray,
    allowed: np.ndarray,
    ends: np.ndarray,
    ignored: np.ndarray,
    v: int,
    follow_ok: np.ndarray,
    start_q: int,
    node_byte: np.ndarray,
    node_depth: np.ndarray,
    subtree_end: np.ndarray,
    node_token: np.ndarray,
    root_children: np.ndarray,
    max_depth: int,
    landing: int,
    clean: np.ndarray,
    path_in: np.ndarray,
    shadow_reach: int,
    deep_landing: int,
    outside_before: np.ndarray,
    chain_states: np.ndarray,
    chain_reach: int,
    chain_in: np.ndarray,
    chain_clean: np.ndarray,
    subtree_deepest: np.ndarray,
    token_ptr: np.ndarray,
    token_ids: np.ndarray,
    slice_words: np.ndarray,
    max_configs: int,
    ok: np.ndarray,
    visited: np.ndarray,
    records: np.ndarray,
) -> tuple[int, int, int]:
    """Marks the tokens readable from lexer state ``start_q`` without ending a non-ignored
    terminal, under view ``v`` of the lexer (``reps``, ``allowed``, ``ends``, ``ignored``:
    the rows of :class:`LexerViews`; ``accepting[q]``: whether ``q`` accepts any terminal, so
    that states inside a lexeme cost one transition per trie node), and writes the boundaries passed as rows (terminal, trie node,
    covered) of ``records``. Returns (status, nodes marked, records written). ``covered``
    is 1 when this walk itself holds, at that node, the lexer state a lexeme begun there
    would be in: if the terminal leads back to the same parser node, or to one whose lexeme
    begun there the walk's own lexeme simulates (:func:`_simulated`; a run of ``TEXT``
    lexemes, say), that boundary adds nothing the walk and its later boundaries do not.

    A lexeme that ends before the token's first byte is left out: the caller adds the
    configurations after it (lexer state 0) to the state instead, whose parts are cached
    like any other; walking them here would walk most of the trie with the parser.

    With a token slice (``clean`` not empty; see :mod:`token_slices`) of ``landing``, a
    state live under the view, whose tokens ``slice_words`` holds: a clean subtree is
    skipped where the walk holds (as a representative) the state the landing state's walk
    along the same bytes holds, under a first byte that leads where it leads from
    ``landing`` or deeper (past the first letters of keys, keywords); the walk stays in
    the landing state's component, whose states are all live, and a boundary there could
    only lead to tokens of the same subtree. The slice's tokens elsewhere are cleared from
    ``slice_words`` unless the walk marks them again. With ``shadow_reach`` > 0 (and
    ``landing`` -1), the slice is a string body's, whose every string of at most that many
    bytes the lexeme read from ``start_q`` reads too (see :func:`token_slices.shadow_depths`):
    a clean subtree no deeper is skipped while the walk reads on that one lexeme alone.
    Deeper down, where the walk holds
    ``deep_landing`` alone (as a representative; -1: none) and every node below has its
    byte in that state's self-loop set (``outside_before`` of its slice), the tokens below
    are marked without a walk: the lexeme reads them all, and a boundary among them could
    only lead to tokens of the same subtree (a name after a keyword's first letters, a
    field after its first bytes).

    With a chain instead (``chain_reach`` > 0; see :func:`token_slices.byte_chain`): a
    string whose length is counted, read through ``chain_states`` (rows by depth: the
    states strings over a byte set S reach there, live and accepting nothing);
    ``slice_words`` holds the tokens of S no longer than the chain (``chain_in``: their
    nodes). Where the walk holds a chain state of its depth (under most first bytes at once, under a key's first
    letters once the key is left), a subtree of tokens of S only (``chain_clean``) no
    deeper than ``chain_reach`` is skipped (the chain's length, or any depth when the
    bytes die after it: the longer tokens are not read); elsewhere, the tokens of S are
    cleared from ``slice_words`` unless the walk marks them again."""
    words = ends.shape[1]
    cq = np.empty((max_depth + 1, max_configs), dtype=np.int32)
    cn = np.zeros(max_depth + 1, dtype=np.int32)
    cq[0, 0] = start_q
    cn[0] = 1
    sliced = clean.shape[0] > 0
    chained = chain_reach > 0
    n_chain = chain_states.shape[0]
    beside = np.empty(max_depth + 1, dtype=np.int32)  # the landing state's walk along the same path
    beside[0] = landing
    shadowed = shadow_reach > 0
    same = np.empty(max_depth + 1, dtype=np.bool_)  # still the lexeme begun in start_q, alone
    same[0] = True
    landing_rep = -1
    if deep_landing >= 0 and outside_before.shape[0] > 0:
        landing_rep = _rep(reps, live, allowed, v, deep_landing)
    n = 0
    r = 0
    for first in range(256):
        node = root_children[first]
        if node < 0:
            continue
        i = node
        end = subtree_end[node]
        while i < end:
            d = node_depth[i]
            b = node_byte[i]
            if sliced:
                s = beside[d - 1]
                if s >= 0:
                    s = transitions[s, b]
                beside[d] = s
            if cn[d - 1] == 1 and not accepting[cq[d - 1, 0]]:  # one state inside a lexeme
                q2 = _rep(reps, live, allowed, v, transitions[cq[d - 1, 0], b])
                if q2 < 0:
                    if sliced:
                        unmark_subtree(i, subtree_end, path_in, token_ptr, token_ids, slice_words)
                    if chained:
                        unmark_subtree(i, subtree_end, chain_in, token_ptr, token_ids, slice_words)
                    i = subtree_end[i]
                    continue
                same[d] = same[d - 1]
                if sliced:
                    if clean[i] and (q2 == _rep(reps, live, allowed, v, beside[d]) or (same[d] and subtree_deepest[i] <= shadow_reach)):
                        i = subtree_end[i]  # read to the end, as the landing state (or the string body) reads it
                        continue
                    if path_in[i]:
                        unmark_node(i, token_ptr, token_ids, slice_words)
                if chained:
                    if (
                        chain_clean[i] and d <= n_chain and subtree_deepest[i] <= chain_reach
                        and _in_chain(reps, live, allowed, v, chain_states, d, q2)
                    ):
                        i = subtree_end[i]  # read through the chain
                        continue
                    if chain_in[i]:
                        unmark_node(i, token_ptr, token_ids, slice_words)
                cq[d, 0] = q2
                cn[d] = 1
                n = mark_node(i, node_token, ok, visited, n)
                if q2 == landing_rep and _in_set_below(outside_before, subtree_end, i):
                    n = mark_below(i, subtree_end, node_token, ok, visited, n)
                    i = subtree_end[i]
                    continue
                i += 1
                continue
            begun = transitions[0, b]  # a next lexeme begun with this byte (any view)
            fresh = -2  # its state under this view, found when some lexeme can end here
            k = 0
            r_here = r
            for j in range(cn[d - 1]):
                q = cq[d - 1, j]
                q2 = _rep(reps, live, allowed, v, transitions[q, b])
                if q2 >= 0:
                    k = _add(cq, d, k, q2)
                    if k < 0:
                        return TOO_MANY_CONFIGS, n, r
                if begun < 0 or d == 1 or not accepting[q]:
                    continue  # no lexeme starts with this byte or ends here, or (d == 1) see above
                if fresh == -2:
                    fresh = _rep(reps, live, allowed, v, begun)
                if fresh >= 0 and _ignored_end(accepts, ignored, v, q):
                    k = _add(cq, d, k, fresh)
                    if k < 0:
                        return TOO_MANY_CONFIGS, n, r
                for w in range(words):
                    ended = accepts[q, w] & ends[v, w]
                    while ended != 0:
                        t = w * 64 + trailing_zeros(ended)
                        ended &= ended - np.uint64(1)
                        if not follow_ok[t, b]:
                            continue  # nothing that can follow t begins with this byte
                        seen = False
                        for x in range(r_here, r):
                            if records[x, 0] == t:
                                seen = True
                        if not seen:
                            if r == records.shape[0]:
                                return RECORDS_FULL, n, r
                            records[r, 0] = t
                            records[r, 1] = i
                            r += 1
            for x in range(r_here, r):  # does this walk itself go on as the next lexeme would?
                covered = 0
                for j in range(k):
                    if cq[d, j] == fresh:
                        covered = 1
                records[x, 2] = covered
            if k == 0:
                if sliced:
                    unmark_subtree(i, subtree_end, path_in, token_ptr, token_ids, slice_words)
                if chained:
                    unmark_subtree(i, subtree_end, chain_in, token_ptr, token_ids, slice_words)
                i = subtree_end[i]
                continue
            same[d] = (
                shadowed and k == 1 and same[d - 1] and cn[d - 1] == 1
                and cq[d, 0] == _rep(reps, live, allowed, v, transitions[cq[d - 1, 0], b])
            )  # (the one lexeme read on, a boundary passed or not; only asked for in a shadow)
            if sliced:
                if k == 1 and clean[i] and (
                    cq[d, 0] == _rep(reps, live, allowed, v, beside[d]) or (same[d] and subtree_deepest[i] <= shadow_reach)
                ):
                    i = subtree_end[i]  # read to the end, as the landing state (or the string body) reads it
                    continue
                if path_in[i]:
                    unmark_node(i, token_ptr, token_ids, slice_words)
            if chained:
                if (
                    k == 1 and chain_clean[i] and d <= n_chain and subtree_deepest[i] <= chain_reach
                    and _in_chain(reps, live, allowed, v, chain_states, d, cq[d, 0])
                ):
                    i = subtree_end[i]  # read through the chain
                    continue
                if chain_in[i]:
                    unmark_node(i, token_ptr, token_ids, slice_words)
            cn[d] = k
            n = mark_node(i, node_token, ok, visited, n)
            if k == 1 and cq[d, 0] == landing_rep and _in_set_below(outside_before, subtree_end, i):
                n = mark_below(i, subtree_end, node_token, ok, visited, n)
                i = subtree_end[i]
                continue
            i += 1
    return OK, n, r


@njit(cache=True, nogil=True)
def _bucket_by_counting(
    records: np.ndarray, r: int, n_terminals: int, node_byte: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`bucket_records` by a counting sort over every key (for few terminals)."""
    size = n_terminals * 256
    count = np.zeros(size + 1, dtype=np.int32)
    n_uncovered = np.zeros(size, dtype=np.int32)
    for x in range(r):
        key = records[x, 0] * 256 + node_byte[records[x, 1]]
        count[key + 1] += 1
        if records[x, 2] == 0:
            n_uncovered[key] += 1
    group_of = np.full(size, -1, dtype=np.int32)
    n_keys = 0
    for key in range(size):
        if count[key + 1] > 0:
            group_of[key] = n_keys
            n_keys += 1
        count[key + 1] += count[key]
    keys = np.empty(n_keys, dtype=np.int32)
    starts = np.empty(n_keys + 1, dtype=np.int32)
    uncovered = np.empty(n_keys, dtype=np.int32)
    nodes = np.empty(r, dtype=np.int32)
    groups = np.empty(r, dtype=np.int32)
    in_order = np.empty(r, dtype=np.int32)
    fill_uncovered = count[:size].copy()
    fill_covered = fill_uncovered + n_uncovered
    for x in range(r):
        key = records[x, 0] * 256 + node_byte[records[x, 1]]
        if records[x, 2] == 0:
            nodes[fill_uncovered[key]] = records[x, 1]
            fill_uncovered[key] += 1
        else:
            nodes[fill_covered[key]] = records[x, 1]
            fill_covered[key] += 1
        groups[x] = group_of[key]
        in_order[x] = records[x, 1] * 2 + (records[x, 2] != 0)
    j = 0
    for key in range(size):
        if count[key + 1] > count[key]:
            keys[j] = key
            starts[j] = count[key]
            uncovered[j] = n_uncovered[key]
            j += 1
    starts[n_keys] = r
    return keys, starts, nodes, uncovered, groups, in_order


@njit(cache=True, nogil=True)
def _bucket_by_sorting(
    records: np.ndarray, r: int, n_terminals: int, node_byte: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`bucket_records` by a stable sort of the records (for many terminals)."""
    sort_key = np.empty(r, dtype=np.int64)
    in_order = np.empty(r, dtype=np.int32)
    for x in range(r):
        covered = 0
        if records[x, 2] != 0:
            covered = 1
        sort_key[x] = (np.int64(records[x, 0]) * 256 + node_byte[records[x, 1]]) * 2 + covered
        in_order[x] = records[x, 1] * 2 + covered
    order = np.argsort(sort_key, kind="mergesort")  # stable: trie order within a group
    keys = np.empty(r, dtype=np.int32)  # at most one group per record; cut to size below
    starts = np.empty(r + 1, dtype=np.int32)
    uncovered = np.zeros(r, dtype=np.int32)
    nodes = np.empty(r, dtype=np.int32)
    groups = np.empty(r, dtype=np.int32)
    k = -1
    for j in range(r):
        x = order[j]
        key = sort_key[x] >> 1
        if j == 0 or key != sort_key[order[j - 1]] >> 1:
            k += 1
            keys[k] = key
            starts[k] = j
        if sort_key[x] & 1 == 0:
            uncovered[k] += 1
        nodes[j] = records[x, 1]
        groups[x] = k
    n_keys = k + 1
    starts[n_keys] = r
    return keys[:n_keys], starts[: n_keys + 1], nodes, uncovered[:n_keys], groups, in_order


@njit(cache=True, nogil=True)
def bucket_records(
    records: np.ndarray, r: int, n_terminals: int, node_byte: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Groups the first ``r`` boundary records by key ``terminal * 256 + byte``. Returns the
    keys present (ascending); ``starts`` (one more than keys); the trie nodes, so that group
    ``k`` is ``nodes[starts[k]:starts[k + 1]]``, its records not covered first, then the
    covered ones (each part in trie order); ``uncovered[k]``, how many are not covered;
    and, in the order written (trie order), each record's group and its
    ``node * 2 + covered``. A counting sort over every possible key when they are few
    against the records, else a sort of the records (big JSON schemas have hundreds of
    terminals and few records a walk)."""
    if n_terminals * 256 <= 8 * r:
        return _bucket_by_counting(records, r, n_terminals, node_byte)
    return _bucket_by_sorting(records, r, n_terminals, node_byte)


@njit(cache=True, nogil=True)
def covered_subtrees(node_token: np.ndarray, subtree_end: np.ndarray, words: np.ndarray, records: np.ndarray, r: int) -> np.ndarray:
    """Per trie node at or below the node of one of the boundary records ``records[:r]``
    (in trie order, as :func:`lexeme_walk` writes them), whether every token at or below it
    is in ``words`` (a byte a node); False elsewhere: walks on from those boundaries read
    nothing else (all of the trie: a record at the root, node 0)."""
    n = node_token.shape[0]
    covered = np.zeros(n, dtype=np.bool_)
    count = np.empty(n + 1, dtype=np.int32)  # nodes whose token ``words`` lacks, in the range, before each node
    end = 0
    for x in range(r):
        a = records[x, 1]
        if a < end:
            continue  # (inside the range already counted)
        end = subtree_end[a]
        c = np.int32(0)
        count[a] = 0
        for i in range(a, end):  # branch-free: which nodes lack is as good as random
            t = node_token[i]
            has = np.int32(t >= 0)
            u = max(t, 0)
            bit = np.int32((words[u >> 5] >> np.uint32(u & 31)) & np.uint32(1))
            c += has & (1 - bit)
            count[i + 1] = c
        for i in range(a, end):
            covered[i] = count[subtree_end[i]] == count[i]
    return covered


@njit(cache=True, nogil=True)
def drop_covered_records(records: np.ndarray, r: int, covered: np.ndarray) -> int:
    """Drops the boundary records whose trie node's subtree holds only tokens the lexeme
    walk marked (``covered``, see :func:`covered_subtrees`): walking on from there adds
    nothing. Keeps the others in order; returns how many."""
    kept = 0
    for x in range(r):
        i = records[x, 1]
        if not covered[i]:
            records[kept, 0] = records[x, 0]
            records[kept, 1] = i
            records[kept, 2] = records[x, 2]
            kept += 1
    return kept


@njit(cache=True, nogil=True, inline="always")
def _known_child(child: np.ndarray, aid: np.ndarray, p: int, t: int) -> int:
    """The child of node ``p`` after terminal ``t`` as kernels read it (see the module
    docstring), or -1 where it is not computed yet or has no lexer view yet: the caller
    then asks :func:`_new_child` (in its own body: a helper that passed the LR store on
    would pay a reference count per array of it at every call)."""
    c = child[p, t] - 1
    if c >= 0 and aid[c] < 0:
        return -1
    return c


@njit(cache=True)
def _new_child(lr, child: np.ndarray, aid: np.ndarray, allowed: np.ndarray, p: int, t: int) -> int:
    """A child not computed yet, stepped here with LR tables (``lr``, see
    :mod:`structgen.automata.lr_kernels`; an empty ``meta`` for the Earley parser), with its
    lexer view (views are ``allowed``'s rows), else, and where that step has no row left or
    the child no view yet, asked for through the callback."""
    c = child[p, t] - 1
    if lr[15].shape[0] > 0:
        if c == -1:
            c = lr_scan(lr, p, t)[0]  # (FULL, -1, where no row is left)
        if c >= 0 and aid[c] < 0:
            aid[c] = find_view(lr, c, allowed)
    if c == -1 or (c >= 0 and aid[c] < 0):
        with objmode(e="int32"):
            e = _expand(p, t)
        c = e
    return c


@njit(cache=True, nogil=True)
def _simulated(child, child_low, live, allowed, ignored, aid, begun, c, p, vp, requests, n_req, ask, low) -> tuple[bool, int, int]:
    """Whether a lexeme begun (lexer state ``begun``) under parser node ``c`` reads nothing
    that the same lexeme under node ``p`` does not, where ``p``'s lexeme walk ran under view
    ``vp`` (its terminals, or those of them live in the walk's first state): the terminals
    it may become are allowed under ``vp``, none is ignored, and each leads both nodes to the same child. A boundary
    into ``c`` at a trie node where the lexeme walk under ``p`` holds that lexer state then
    adds no token (a run ``TEXT TEXT`` after ``TEXT``). A child not computed yet makes the
    answer False; with ``ask``, each such child is written to ``requests`` (from row
    ``n_req`` on, while room is left). Returns (answer, rows of ``requests`` now used, the
    lowest stack height read: ``low`` lowered by the children looked at, see boundary_walk)."""
    vc = aid[c]
    for w in range(live.shape[1]):
        may = live[begun, w] & allowed[vc, w]
        if may & ~allowed[vp, w] or may & ignored[vc, w]:
            return False, n_req, low
    answer = True
    for w in range(live.shape[1]):
        may = live[begun, w] & allowed[vc, w]
        while may != 0:
            t = w * 64 + trailing_zeros(may)
            may &= may - np.uint64(1)
            after = child[c, t] - 1
            before = child[p, t] - 1
            low = min(low, child_low[c, t], child_low[p, t])
            if after == -1 or before == -1:
                answer = False
                if not ask:
                    return False, n_req, low
                if after == -1 and n_req < requests.shape[0]:
                    requests[n_req, 0] = c
                    requests[n_req, 1] = t
                    n_req += 1
                if before == -1 and n_req < requests.shape[0]:
                    requests[n_req, 0] = p
                    requests[n_req, 1] = t
                    n_req += 1
            elif after < 0 or after != before:
                return False, n_req, low
    return answer, n_req, low


@njit(cache=True)  # not nogil: the parser callback runs Python
def boundary_walk(
    keys: np.ndarray,
    starts: np.ndarray,
    nodes: np.ndarray,
    uncovered: np.ndarray,
    groups: np.ndarray,
    in_order: np.ndarray,
    covered: np.ndarray,
    loop_slot: np.ndarray,
    slot0: np.ndarray,
    slot1: np.ndarray,
    slot2: np.ndarray,
    slot3: np.ndarray,
    p: int,
    walk_view: int,
    only: np.ndarray,
    transitions: np.ndarray,
    aid: np.ndarray,
    live: np.ndarray,
    accepts: np.ndarray,
    reps: np.ndarray,
    allowed: np.ndarray,
    ends: np.ndarray,
    ignored: np.ndarray,
    follow_ok: np.ndarray,
    child: np.ndarray,
    child_low: np.ndarray,
    node_byte: np.ndarray,
    node_depth: np.ndarray,
    subtree_end: np.ndarray,
    node_token: np.ndarray,
    root_children: np.ndarray,
    max_depth: int,
    max_configs: int,
    ok: np.ndarray,
    visited: np.ndarray,
    n: int,
    requests: np.ndarray,
    low: int,
    lr,
) -> tuple[int, int, int, int]:
    """Marks the tokens of parser node ``p`` that cross one of the boundaries that
    :func:`bucket_records` grouped, for the terminals in the bitset ``only``. Returns (status,
    nodes marked, child requests written to ``requests``, the lowest parse-stack height read).

    ``lr``: the LR store the missing children are stepped in (see :func:`_new_child`).
    ``child_low[p, t]``: the lowest stack height that the child ``child[p, t]`` was decided
    from (with its terminals; whether ``p`` allows ``t`` aside: the caller keys the marks by
    the terminals the lexeme walk ran under, and every terminal the walk steps ``p`` with is
    one of them); ``low`` comes in as ``p``'s height and goes down with every child the walk
    looks at, so that the marks hold for any stack alike from there up.

    The groups whose terminal the parser refuses here, or whose byte cannot start a lexeme
    after it, are dropped as a whole. The other boundaries become seeds (trie node, the
    configuration after it), and one pass in trie order walks below all of them, so that
    configurations reaching the same node are merged instead of walked again. A subtree
    whose tokens the lexeme walk marked already (``covered`` from :func:`covered_subtrees`; empty:
    no such check) is skipped with the seeds in it: a token it holds is in the mask anyway,
    and so is every longer one (a run of names that could also read as keywords). So is a
    subtree below a node where some configuration holds a lexer state that loops on every
    byte below it (``loop_slot[q]``: which of ``slot0`` .. ``slot3`` counts, in trie order,
    the nodes whose byte is outside ``q``'s loop set; -1 for none): that configuration
    reads all its tokens (a name's body after a keyword's first letters)."""
    words = ends.shape[1]
    n_groups = keys.shape[0]
    seed_q = np.empty(n_groups, dtype=np.int32)
    seed_p = np.full(n_groups, -1, dtype=np.int32)
    seed_self = np.zeros(n_groups, dtype=np.bool_)
    n_req = 0
    status = OK
    n_seeds = 0
    check_covered = covered.shape[0] > 0  # (then seeds in covered subtrees cost little: no child is asked for to drop them)
    for k in range(n_groups):
        t = keys[k] >> 8
        b = keys[k] & 255
        if not (only[t >> 6] >> np.uint64(t & 63)) & np.uint64(1):
            continue
        c = _known_child(child, aid, p, t)
        if c == -1:
            c = _new_child(lr, child, aid, allowed, p, t)
        low = min(low, child_low[p, t])
        if c == -1:
            if n_req < requests.shape[0]:
                requests[n_req, 0] = p
                requests[n_req, 1] = t
                n_req += 1
            status = NEEDS_CHILDREN
            continue
        if c < 0:
            continue
        q3 = _rep(reps, live, allowed, aid[c], transitions[0, b])
        if q3 < 0:
            continue
        seed_q[k] = q3
        seed_p[k] = c
        n_covered = starts[k + 1] - starts[k] - uncovered[k]
        simulated = c == p and aid[p] == walk_view  # (a walk under fewer terminals merges states p tells apart)
        if not simulated and n_covered > 0:
            # children it lacks are worth another round for many seeds only
            asked = n_req
            simulated, n_req, low = _simulated(
                child, child_low, live, allowed, ignored, aid, transitions[0, b], c, p, walk_view, requests, n_req,
                n_covered >= 64 and not check_covered, low,
            )
            if n_req > asked:
                status = NEEDS_CHILDREN
        if simulated:
            # boundaries where the lexeme walk holds the state begun here add nothing
            seed_self[k] = True
            n_seeds += uncovered[k]
        else:
            n_seeds += starts[k + 1] - starts[k]
    if n_seeds == 0 or status == NEEDS_CHILDREN:
        return status, n, n_req, low  # (the caller walks again once it has the children asked for)
    # the seeds in trie order: from the kept groups when few, else by filtering all records
    order_nodes = np.empty(n_seeds, dtype=np.int32)
    order_groups = np.empty(n_seeds, dtype=np.int32)
    j = 0
    if 16 * n_seeds < groups.shape[0]:
        for k in range(n_groups):
            if seed_p[k] >= 0:
                last = starts[k + 1]
                if seed_self[k]:
                    last = starts[k] + uncovered[k]
                for m in range(starts[k], last):
                    order_nodes[j] = nodes[m]
                    order_groups[j] = k
                    j += 1
        perm = np.argsort(order_nodes, kind="mergesort")
        order_nodes = order_nodes[perm]
        order_groups = order_groups[perm]
    else:
        for x in range(groups.shape[0]):
            k = groups[x]
            if seed_p[k] >= 0 and not (seed_self[k] and in_order[x] & 1):
                order_nodes[j] = in_order[x] >> 1
                order_groups[j] = k
                j += 1
    cq = np.empty((max_depth + 1, max_configs), dtype=np.int32)
    cp = np.empty((max_depth + 1, max_configs), dtype=np.int32)
    cn = np.zeros(max_depth + 1, dtype=np.int32)
    owner = np.full(max_depth + 1, -1, dtype=np.int32)  # the live node whose configurations row d holds
    s = 0
    i = order_nodes[0]
    n_nodes = node_byte.shape[0]
    while i < n_nodes:
        if check_covered and covered[i]:  # (the loop ends if the subtree did)
            s = _seeds_from(order_nodes, s, n_seeds, subtree_end[i])
            i = subtree_end[i]
            continue
        d = node_depth[i]
        b = node_byte[i]
        a = owner[d - 1]
        parent_live = a >= 0 and a < i and i < subtree_end[a]
        k = 0
        if parent_live:
            begun = transitions[0, b]
            for j in range(cn[d - 1]):
                q = cq[d - 1, j]
                pp = cp[d - 1, j]
                v = aid[pp]
                q2 = _rep(reps, live, allowed, v, transitions[q, b])
                if q2 >= 0:
                    k = _push(cq, cp, d, k, q2, pp)
                    if k < 0:
                        return TOO_MANY_CONFIGS, n, n_req, low
                if begun < 0:
                    continue
                fresh = _rep(reps, live, allowed, v, begun)
                if fresh >= 0 and _ignored_end(accepts, ignored, v, q):
                    k = _push(cq, cp, d, k, fresh, pp)
                    if k < 0:
                        return TOO_MANY_CONFIGS, n, n_req, low
                for w in range(words):
                    ended = accepts[q, w] & ends[v, w]
                    while ended != 0:
                        t = w * 64 + trailing_zeros(ended)
                        ended &= ended - np.uint64(1)
                        if not follow_ok[t, b]:
                            continue
                        c = _known_child(child, aid, pp, t)
                        if c == -1:
                            c = _new_child(lr, child, aid, allowed, pp, t)
                        low = min(low, child_low[pp, t])
                        if c == -1:
                            if n_req < requests.shape[0]:
                                requests[n_req, 0] = pp
                                requests[n_req, 1] = t
                                n_req += 1
                            status = NEEDS_CHILDREN
                        elif c >= 0:
                            q3 = _rep(reps, live, allowed, aid[c], begun)
                            if q3 < 0:
                                continue
                            k = _push(cq, cp, d, k, q3, c)
                            if k < 0:
                                return TOO_MANY_CONFIGS, n, n_req, low
        while s < n_seeds and order_nodes[s] == i:
            g = order_groups[s]
            k = _push(cq, cp, d, k, seed_q[g], seed_p[g])
            if k < 0:
                return TOO_MANY_CONFIGS, n, n_req, low
            s += 1
        if k > 0:
            cn[d] = k
            owner[d] = i
            n = mark_node(i, node_token, ok, visited, n)
            whole = False
            for j in range(k):
                slot = loop_slot[cq[d, j]]
                if slot >= 0 and _slot_in_set_below(slot, slot0, slot1, slot2, slot3, subtree_end, i):
                    whole = True
                    break
            if whole:
                n = mark_below(i, subtree_end, node_token, ok, visited, n)
                s = _seeds_from(order_nodes, s, n_seeds, subtree_end[i])
                i = subtree_end[i]
                continue
            i += 1
        else:
            # dead here: skip the subtree (but for seeds in it) while some ancestor is live,
            # since that ancestor's other descendants still need the walk; else jump to the
            # next seed
            ancestor_live = parent_live
            e = d - 2
            while not ancestor_live and e >= 1:
                a = owner[e]
                ancestor_live = a >= 0 and a < i and i < subtree_end[a]
                e -= 1
            if ancestor_live:
                i = subtree_end[i]
                if s < n_seeds and order_nodes[s] < i:
                    i = order_nodes[s]
            elif s < n_seeds:
                i = order_nodes[s]
            else:
                break
    return status, n, n_req, low


def warm_up() -> None:
    """Compiles (or loads from the on-disk cache) the kernels with their real signatures."""
    transitions = np.full((2, 256), -1, dtype=np.int32)
    transitions[0, ord("a")] = 1
    transitions[1, ord("a")] = 1
    aid = np.zeros(2, dtype=np.int32)
    live = np.array([[1], [1]], dtype=np.uint64)
    accepts = np.array([[0], [1]], dtype=np.uint64)
    reps = np.arange(2, dtype=np.int32)[None, :]
    allowed = np.ones((1, 1), dtype=np.uint64)
    ends = np.ones((1, 1), dtype=np.uint64)
    ignored = np.zeros((1, 1), dtype=np.uint64)
    follow_ok = np.ones((1, 256), dtype=bool)
    child = np.array([[2], [0]], dtype=np.int32)  # node 1's child is asked for: objmode runs
    trie = TokenTrie.build([b"a", b"aa", b"aaa"], np.array([0, 1, 2]))  # "aaa" crosses a boundary mid-walk
    marks = TokenMarks(1)
    records = np.zeros((4, 3), dtype=np.int32)
    requests = np.zeros((4, 2), dtype=np.int32)
    set_expander(lambda p, t: -1)  # compiles the object-mode callback (lazily, once a process)
    no_clean = np.zeros(trie.n_nodes, dtype=np.bool_)
    status, marks.count, r = lexeme_walk(
        transitions, live, accepts, accepts.any(axis=1), reps, allowed, ends, ignored, 0, follow_ok, 1, *trie_arrays(trie),
        0, no_clean, no_clean, 0, -1, np.zeros(0, dtype=np.int32), np.zeros((0, 1), dtype=np.int32), 0, no_clean, no_clean, trie.subtree_deepest, trie.token_ptr, trie.token_ids, np.zeros(1, dtype=np.uint32), 8,
        marks.ok, marks.visited, records,
    )  # fmt: skip
    keys, starts, nodes, uncovered, groups, in_order = bucket_records(records, r, 1, trie.byte)
    from .lr import LRTable, no_store

    # S: "a" (state 1 reduces it before the end, state 2 accepts): the LR kernels compile too
    table = LRTable([{0: 1}, {}, {}], [{0: 2}, {}, {}], [[], [(0b10, 0, 1)], []], [False] * 3, 0, 2, 1, 0)
    table.root().scan(0)
    store = no_store()
    for first_child in (1, -1):  # each call site of the callback compiles its own
        child[0, 0] = first_child + 1
        boundary_walk(
            keys, starts, nodes, uncovered, groups, in_order, covered_subtrees(trie.node_token, trie.subtree_end, np.zeros(1, dtype=np.uint32), records, r),
            np.full(2, -1, dtype=np.int32), *[np.zeros(0, dtype=np.int32)] * LOOP_SLOTS, 0, 0, np.ones(1, dtype=np.uint64), transitions, aid, live, accepts, reps, allowed, ends, ignored,
            follow_ok, child, np.zeros_like(child),
            *trie_arrays(trie), 8, marks.ok, marks.visited, marks.count, requests, 1, store,
        )  # fmt: skip
    marks.flush_into(np.zeros(1, dtype=np.uint32), trie)
