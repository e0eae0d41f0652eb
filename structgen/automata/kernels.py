"""numba kernels: walking token bytes through byte DFAs.

Compiled with ``cache=True`` (the compiled code is kept on disk) and ``nogil=True``; call
:func:`warm_up` once at start-up so that JIT time never lands on a request.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def dfa_token_mask(
    transitions: np.ndarray,
    state: int,
    node_byte: np.ndarray,
    node_depth: np.ndarray,
    subtree_end: np.ndarray,
    token_ptr: np.ndarray,
    token_ids: np.ndarray,
    root_children: np.ndarray,
    max_depth: int,
    out: np.ndarray,
) -> int:
    """Sets bit ``t`` of ``out`` (uint32 words) for every trie token that the DFA reads
    from ``state`` without dying, and returns the depth of the deepest live trie node.
    Only the first bytes the state allows are entered (so a sparse state touches a few
    subtrees, not the whole trie); inside, dead subtrees are skipped in one jump."""
    stack = np.empty(max_depth + 1, dtype=np.int32)
    stack[0] = state
    deepest = 0
    for first in range(256):
        child = root_children[first]
        if child < 0 or transitions[state, first] < 0:
            continue
        i = child
        end = subtree_end[child]
        while i < end:
            d = node_depth[i]
            nxt = transitions[stack[d - 1], node_byte[i]]
            if nxt < 0:
                i = subtree_end[i]
                continue
            stack[d] = nxt
            if d > deepest:
                deepest = d
            for k in range(token_ptr[i], token_ptr[i + 1]):
                t = token_ids[k]
                out[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
            i += 1
    return deepest


@njit(cache=True, nogil=True)
def dfa_walk(transitions: np.ndarray, state: int, data: np.ndarray, start: int, end: int) -> int:
    """The DFA state after reading ``data[start:end]`` from ``state``, or -1."""
    for k in range(start, end):
        state = transitions[state, data[k]]
        if state < 0:
            return -1
    return state


@njit(cache=True, nogil=True)
def dfa_agree_within(columns: np.ndarray, a: int, b: int, length: int) -> bool:
    """Whether DFA states ``a`` and ``b`` survive exactly the same byte strings of length
    <= ``length``; ``columns`` is the transition table with equal byte columns folded."""
    if a == b:
        return True
    n = columns.shape[0]
    k = columns.shape[1]
    seen = {a * n + b}
    frontier = [(a, b)]
    for _ in range(length):
        nxt = [(a, b)]  # typed as a list of pairs for numba, then emptied
        nxt.pop()
        for x, y in frontier:
            for c in range(k):
                tx = columns[x, c]
                ty = columns[y, c]
                if (tx < 0) != (ty < 0):
                    return False
                if tx >= 0 and tx != ty:
                    key = tx * n + ty
                    if key not in seen:
                        seen.add(key)
                        nxt.append((tx, ty))
        if len(nxt) == 0:
            return True
        frontier = nxt
    return True


def one_token_trie() -> tuple[np.ndarray, ...]:
    """A well-formed trie with one token (id 0, the byte "a") for warming kernels up (they do
    not bounds-check): node_byte, depth, subtree_end, token_ptr, token_ids, root_children."""
    root_children = np.full(256, -1, dtype=np.int32)
    root_children[ord("a")] = 1
    return (
        np.array([0, ord("a")], dtype=np.uint8),
        np.array([0, 1], dtype=np.int32),
        np.array([2, 2], dtype=np.int32),
        np.array([0, 0, 1], dtype=np.int32),
        np.array([0], dtype=np.int32),
        root_children,
    )


def warm_up() -> None:
    """Compiles (or loads from the on-disk cache) every kernel with its real signatures."""
    transitions = np.zeros((1, 256), dtype=np.int32)
    trie = one_token_trie()
    node_byte = trie[0]
    out = np.zeros(1, dtype=np.uint32)
    dfa_token_mask(transitions, 0, *trie, 1, out)
    dfa_walk(transitions, 0, node_byte, 0, 2)
    dfa_agree_within(np.zeros((2, 1), dtype=np.int64), 0, 1, 1)
