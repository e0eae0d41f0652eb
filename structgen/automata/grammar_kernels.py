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
for an ignored terminal). The parser is a table: ``allowed[p]`` (terminal bitset) and
``child[p, t]`` (the node after terminal ``t``: >= 0, -2 not allowed, -1 not computed yet),
and ``reps[p]``, the lexer states' representatives under ``allowed[p]``: configurations
are kept as (representative, node), so that equivalent ones merge.
A child not computed yet is asked for through a callback; when the caller has no room left,
the walk records the request and leaves that branch out, and the caller walks again, so the
final mask is exact.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, objmode
from numba.cpython.unsafe.numbers import trailing_zeros

from .kernels import trie_arrays
from .token_marks import TokenMarks, mark_node
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
def _intersects(a: np.ndarray, b: np.ndarray) -> bool:
    for w in range(a.shape[0]):
        if a[w] & b[w]:
            return True
    return False


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


@njit(cache=True, nogil=True)
def lexeme_walk(
    transitions: np.ndarray,
    live: np.ndarray,
    accepts: np.ndarray,
    ignore: np.ndarray,
    allowed: np.ndarray,
    rep: np.ndarray,
    start_q: int,
    node_byte: np.ndarray,
    node_depth: np.ndarray,
    subtree_end: np.ndarray,
    node_token: np.ndarray,
    node_extra: np.ndarray,
    token_ptr: np.ndarray,
    token_ids: np.ndarray,
    root_children: np.ndarray,
    max_depth: int,
    max_configs: int,
    ok: np.ndarray,
    visited: np.ndarray,
    records: np.ndarray,
) -> tuple[int, int, int]:
    """Marks the tokens readable from lexer state ``start_q`` without ending a non-ignored
    terminal (``allowed``: the terminal bitset of the parser node; ``rep``: the lexer
    states' representatives under it, see :meth:`Lexer.representatives`), and writes the
    boundaries passed as rows (terminal, trie node) of ``records``. Returns (status, nodes
    marked, records written).

    A lexeme that ends before the token's first byte is left out: the caller adds the
    configurations after it (lexer state 0) to the state instead, whose parts are cached
    like any other; walking them here would walk most of the trie with the parser."""
    words = live.shape[1]
    cq = np.empty((max_depth + 1, max_configs), dtype=np.int32)
    cn = np.zeros(max_depth + 1, dtype=np.int32)
    cq[0, 0] = start_q
    cn[0] = 1
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
            q3 = transitions[0, b]
            k = 0
            r_here = r
            for j in range(cn[d - 1]):
                q = cq[d - 1, j]
                q2 = transitions[q, b]
                if q2 >= 0 and _intersects(live[q2], allowed):
                    q2 = rep[q2]
                    # dedupe (a short row: the lexer states reachable at one depth)
                    seen = False
                    for x in range(k):
                        if cq[d, x] == q2:
                            seen = True
                    if not seen:
                        if k == max_configs:
                            return TOO_MANY_CONFIGS, n, r
                        cq[d, k] = q2
                        k += 1
                if q == 0 or q3 < 0 or d == 1:
                    continue  # no lexeme open, no lexeme starts with this byte, or (d == 1) see above
                for w in range(words):
                    ended = accepts[q, w] & allowed[w]
                    while ended != 0:
                        bit = trailing_zeros(ended)
                        ended &= ended - np.uint64(1)
                        t = w * 64 + bit
                        if (ignore[w] >> np.uint64(bit)) & np.uint64(1):
                            if _intersects(live[q3], allowed):
                                seen = False
                                for x in range(k):
                                    if cq[d, x] == rep[q3]:
                                        seen = True
                                if not seen:
                                    if k == max_configs:
                                        return TOO_MANY_CONFIGS, n, r
                                    cq[d, k] = rep[q3]
                                    k += 1
                        else:
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
            if k == 0:
                i = subtree_end[i]
                continue
            cn[d] = k
            n = mark_node(i, node_token, node_extra, token_ptr, token_ids, ok, visited, n)
            i += 1
    return OK, n, r


@njit(cache=True, nogil=True)
def bucket_records(
    records: np.ndarray, r: int, n_terminals: int, node_byte: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Groups the first ``r`` boundary records by key ``terminal * 256 + byte`` (counting
    sort): returns the keys present (ascending), ``starts`` (one more than keys), the trie
    nodes, so that group ``k`` is ``nodes[starts[k]:starts[k + 1]]`` (each in trie order),
    and each record's group in the order written (trie order)."""
    size = n_terminals * 256
    count = np.zeros(size + 1, dtype=np.int32)
    for x in range(r):
        count[records[x, 0] * 256 + node_byte[records[x, 1]] + 1] += 1
    group_of = np.full(size, -1, dtype=np.int32)
    n_keys = 0
    for key in range(size):
        if count[key + 1] > 0:
            group_of[key] = n_keys
            n_keys += 1
        count[key + 1] += count[key]
    keys = np.empty(n_keys, dtype=np.int32)
    starts = np.empty(n_keys + 1, dtype=np.int32)
    nodes = np.empty(r, dtype=np.int32)
    groups = np.empty(r, dtype=np.int32)
    fill = count[:size].copy()
    for x in range(r):
        key = records[x, 0] * 256 + node_byte[records[x, 1]]
        nodes[fill[key]] = records[x, 1]
        fill[key] += 1
        groups[x] = group_of[key]
    j = 0
    for key in range(size):
        if count[key + 1] > count[key]:
            keys[j] = key
            starts[j] = count[key]
            j += 1
    starts[n_keys] = r
    return keys, starts, nodes, groups


@njit(cache=True)
def _child(child: np.ndarray, p: int, t: int) -> int:
    c = child[p, t]
    if c == -1:
        with objmode(c="int32"):
            c = _expand(p, t)
    return c


@njit(cache=True)  # not nogil: the parser callback runs Python
def boundary_walk(
    keys: np.ndarray,
    starts: np.ndarray,
    nodes: np.ndarray,
    groups: np.ndarray,
    p: int,
    transitions: np.ndarray,
    live: np.ndarray,
    accepts: np.ndarray,
    ignore: np.ndarray,
    allowed: np.ndarray,
    reps: np.ndarray,
    child: np.ndarray,
    node_byte: np.ndarray,
    node_depth: np.ndarray,
    subtree_end: np.ndarray,
    node_token: np.ndarray,
    node_extra: np.ndarray,
    token_ptr: np.ndarray,
    token_ids: np.ndarray,
    root_children: np.ndarray,
    max_depth: int,
    max_configs: int,
    ok: np.ndarray,
    visited: np.ndarray,
    n: int,
    requests: np.ndarray,
) -> tuple[int, int, int]:
    """Marks the tokens of parser node ``p`` that cross one of the boundaries that
    :func:`bucket_records` grouped. Returns (status, nodes marked, child requests written
    to ``requests``).

    The groups whose terminal the parser refuses here, or whose byte cannot start a lexeme
    after it, are dropped as a whole. The other boundaries become seeds (trie node, the
    configuration after it), and one pass in trie order walks below all of them, so that
    configurations reaching the same node are merged instead of walked again."""
    words = live.shape[1]
    n_groups = keys.shape[0]
    seed_q = np.empty(n_groups, dtype=np.int32)
    seed_p = np.full(n_groups, -1, dtype=np.int32)
    n_req = 0
    status = OK
    n_seeds = 0
    for k in range(n_groups):
        t = keys[k] >> 8
        b = keys[k] & 255
        c = _child(child, p, t)
        if c == -1:
            if n_req < requests.shape[0]:
                requests[n_req, 0] = p
                requests[n_req, 1] = t
                n_req += 1
            status = NEEDS_CHILDREN
            continue
        if c < 0:
            continue
        q3 = transitions[0, b]
        if not _intersects(live[q3], allowed[c]):
            continue
        seed_q[k] = reps[c, q3]
        seed_p[k] = c
        n_seeds += starts[k + 1] - starts[k]
    if n_seeds == 0:
        return status, n, n_req
    # the seeds in trie order: from the kept groups when few, else by filtering all records
    order_nodes = np.empty(n_seeds, dtype=np.int32)
    order_groups = np.empty(n_seeds, dtype=np.int32)
    j = 0
    if 16 * n_seeds < groups.shape[0]:
        for k in range(n_groups):
            if seed_p[k] >= 0:
                for m in range(starts[k], starts[k + 1]):
                    order_nodes[j] = nodes[m]
                    order_groups[j] = k
                    j += 1
        perm = np.argsort(order_nodes, kind="mergesort")
        order_nodes = order_nodes[perm]
        order_groups = order_groups[perm]
    else:
        fill = starts[:n_groups].copy()
        for x in range(groups.shape[0]):
            k = groups[x]
            if seed_p[k] >= 0:
                order_nodes[j] = nodes[fill[k]]
                order_groups[j] = k
                j += 1
            fill[k] += 1
    cq = np.empty((max_depth + 1, max_configs), dtype=np.int32)
    cp = np.empty((max_depth + 1, max_configs), dtype=np.int32)
    cn = np.zeros(max_depth + 1, dtype=np.int32)
    owner = np.full(max_depth + 1, -1, dtype=np.int32)  # the live node whose configurations row d holds
    s = 0
    i = order_nodes[0]
    n_nodes = node_byte.shape[0]
    while i < n_nodes:
        d = node_depth[i]
        b = node_byte[i]
        a = owner[d - 1]
        parent_live = a >= 0 and a < i and i < subtree_end[a]
        k = 0
        if parent_live:
            q3 = transitions[0, b]
            for j in range(cn[d - 1]):
                q = cq[d - 1, j]
                pp = cp[d - 1, j]
                q2 = transitions[q, b]
                if q2 >= 0 and _intersects(live[q2], allowed[pp]):
                    k = _push(cq, cp, d, k, reps[pp, q2], pp)
                    if k < 0:
                        return TOO_MANY_CONFIGS, n, n_req
                if q == 0 or q3 < 0:
                    continue
                for w in range(words):
                    ended = accepts[q, w] & allowed[pp, w]
                    while ended != 0:
                        bit = trailing_zeros(ended)
                        ended &= ended - np.uint64(1)
                        t = w * 64 + bit
                        if (ignore[w] >> np.uint64(bit)) & np.uint64(1):
                            if _intersects(live[q3], allowed[pp]):
                                k = _push(cq, cp, d, k, reps[pp, q3], pp)
                                if k < 0:
                                    return TOO_MANY_CONFIGS, n, n_req
                        else:
                            c = _child(child, pp, t)
                            if c == -1:
                                if n_req < requests.shape[0]:
                                    requests[n_req, 0] = pp
                                    requests[n_req, 1] = t
                                    n_req += 1
                                status = NEEDS_CHILDREN
                            elif c >= 0 and _intersects(live[q3], allowed[c]):
                                k = _push(cq, cp, d, k, reps[c, q3], c)
                                if k < 0:
                                    return TOO_MANY_CONFIGS, n, n_req
        while s < n_seeds and order_nodes[s] == i:
            g = order_groups[s]
            k = _push(cq, cp, d, k, seed_q[g], seed_p[g])
            if k < 0:
                return TOO_MANY_CONFIGS, n, n_req
            s += 1
        if k > 0:
            cn[d] = k
            owner[d] = i
            n = mark_node(i, node_token, node_extra, token_ptr, token_ids, ok, visited, n)
            i += 1
        elif parent_live:
            i = subtree_end[i]  # dead below, but for seeds further down
            if s < n_seeds and order_nodes[s] < i:
                i = order_nodes[s]
        elif s < n_seeds:
            i = order_nodes[s]  # nothing live here or below: on to the next seed
        else:
            break
    return status, n, n_req


def warm_up() -> None:
    """Compiles (or loads from the on-disk cache) the kernels with their real signatures."""
    transitions = np.full((2, 256), -1, dtype=np.int32)
    transitions[0, ord("a")] = 1
    transitions[1, ord("a")] = 1
    live = np.ones((2, 1), dtype=np.uint64)
    accepts = np.array([[0], [1]], dtype=np.uint64)
    ignore = np.zeros(1, dtype=np.uint64)
    allowed = np.ones((2, 1), dtype=np.uint64)
    child = np.array([[1], [-1]], dtype=np.int32)  # node 1's child is asked for: objmode runs
    trie = TokenTrie.build([b"a", b"aa"], np.array([0, 1]))
    marks = TokenMarks(1)
    records = np.zeros((4, 2), dtype=np.int32)
    requests = np.zeros((4, 2), dtype=np.int32)
    set_expander(lambda p, t: -1)  # compiles the object-mode callback (lazily, once a process)
    reps = np.tile(np.arange(2, dtype=np.int32), (2, 1))
    status, marks.count, r = lexeme_walk(
        transitions, live, accepts, ignore, allowed[0], reps[0], 1, *trie_arrays(trie), 8, marks.ok, marks.visited, records
    )
    keys, starts, nodes, groups = bucket_records(records, r, 1, trie.byte)
    for first_child in (1, -1):  # each call site of the callback compiles its own
        child[0, 0] = first_child
        boundary_walk(
            keys, starts, nodes, groups, 0, transitions, live, accepts, ignore, allowed, reps, child,
            *trie_arrays(trie), 8, marks.ok, marks.visited, marks.count, requests,
        )  # fmt: skip
    marks.flush_into(np.zeros(1, dtype=np.uint32), trie)
