"""numba kernel: token masks of a grammar, the lexer inside the trie walk, the parser at
lexeme boundaries.

A configuration is (lexer state, parser node). Walking down the token trie, each byte either
extends the open lexeme (if a terminal the parser allows stays live) or ends it (if the lexer
accepts an allowed terminal there) and starts the next lexeme with that byte, in the parser
node after that terminal (the same node for an ignored terminal). The parser is a table:
``allowed[p]`` (terminal bitset) and ``child[p, t]`` (the node after terminal ``t``: >= 0,
-2 not allowed, -1 not computed yet). A walk that needs a child not computed yet records
the request and leaves that branch out; the caller computes the requested children and walks
again, so the final mask is exact.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, objmode

from .kernels import one_token_trie

# returned status
OK = 0
NEEDS_CHILDREN = 1
TOO_MANY_CONFIGS = 2

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


@njit(cache=True)  # not nogil: the parser callback runs Python
def grammar_token_mask(
    transitions: np.ndarray,
    live: np.ndarray,
    accepts: np.ndarray,
    ignore: np.ndarray,
    allowed: np.ndarray,
    child: np.ndarray,
    start_q: np.ndarray,
    start_p: np.ndarray,
    node_byte: np.ndarray,
    node_depth: np.ndarray,
    subtree_end: np.ndarray,
    token_ptr: np.ndarray,
    token_ids: np.ndarray,
    root_children: np.ndarray,
    max_depth: int,
    max_configs: int,
    out: np.ndarray,
    requests: np.ndarray,
) -> tuple[int, int]:
    """Sets bit ``t`` of ``out`` for every token that some start configuration can read.
    Returns (status, number of child requests written to ``requests``)."""
    words = live.shape[1]
    cq = np.empty((max_depth + 1, max_configs), dtype=np.int32)
    cp = np.empty((max_depth + 1, max_configs), dtype=np.int32)
    cn = np.zeros(max_depth + 1, dtype=np.int32)
    for j in range(start_q.shape[0]):
        cq[0, j] = start_q[j]
        cp[0, j] = start_p[j]
    cn[0] = start_q.shape[0]
    n_req = 0
    status = OK
    for first in range(256):
        node = root_children[first]
        if node < 0:
            continue
        i = node
        end = subtree_end[node]
        while i < end:
            d = node_depth[i]
            b = node_byte[i]
            k = 0
            for j in range(cn[d - 1]):
                q = cq[d - 1, j]
                p = cp[d - 1, j]
                q2 = transitions[q, b]
                if q2 >= 0 and _intersects(live[q2], allowed[p]):
                    k = _push(cq, cp, d, k, q2, p)
                    if k < 0:
                        return TOO_MANY_CONFIGS, n_req
                if q == 0:
                    continue  # no lexeme open: nothing to end
                for w in range(words):
                    ended = accepts[q, w] & allowed[p, w]
                    bit = 0
                    while ended != 0:
                        if ended & np.uint64(1):
                            t = w * 64 + bit
                            if (ignore[w] >> np.uint64(bit)) & np.uint64(1):
                                q3 = transitions[0, b]
                                if q3 >= 0 and _intersects(live[q3], allowed[p]):
                                    k = _push(cq, cp, d, k, q3, p)
                                    if k < 0:
                                        return TOO_MANY_CONFIGS, n_req
                            c = child[p, t]
                            if c == -1:
                                with objmode(c="int32"):
                                    c = _expand(p, t)
                            if c == -1:
                                if n_req < requests.shape[0]:
                                    requests[n_req, 0] = p
                                    requests[n_req, 1] = t
                                    n_req += 1
                                status = NEEDS_CHILDREN
                            elif c >= 0:
                                q3 = transitions[0, b]
                                if q3 >= 0 and _intersects(live[q3], allowed[c]):
                                    k = _push(cq, cp, d, k, q3, c)
                                    if k < 0:
                                        return TOO_MANY_CONFIGS, n_req
                        ended >>= np.uint64(1)
                        bit += 1
            if k == 0:
                i = subtree_end[i]
                continue
            cn[d] = k
            for m in range(token_ptr[i], token_ptr[i + 1]):
                t = token_ids[m]
                out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
            i += 1
    return status, n_req


def warm_up() -> None:
    """Compiles (or loads from the on-disk cache) the kernel with its real signature."""
    transitions = np.full((2, 256), -1, dtype=np.int32)
    transitions[0, ord("a")] = 1
    live = np.ones((2, 1), dtype=np.uint64)
    accepts = np.array([[0], [1]], dtype=np.uint64)
    ignore = np.zeros(1, dtype=np.uint64)
    allowed = np.ones((1, 1), dtype=np.uint64)
    child = np.full((1, 1), -2, dtype=np.int32)
    out = np.zeros(1, dtype=np.uint32)
    requests = np.zeros((4, 2), dtype=np.int32)
    set_expander(lambda p, t: -1)
    grammar_token_mask(
        transitions, live, accepts, ignore, allowed, child, np.zeros(1, np.int32), np.zeros(1, np.int32),
        *one_token_trie(), 1, 8, out, requests,
    )
