"""numba kernels: walking token bytes through byte DFAs.

Compiled with ``cache=True`` (the compiled code is kept on disk) and ``nogil=True``; call
:func:`warm_up` once at start-up so that JIT time never lands on a request.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .token_slices import NO_CHAIN, unmark_node, unmark_subtree
from .token_marks import VISITED_RING, TokenMarks, mark_node
from .token_trie import TokenTrie


def trie_arrays(trie: TokenTrie) -> tuple:
    """The trie's arrays in the order the walking kernels take them (after the automaton's
    own arguments): node_byte, depth, subtree_end, node_token, root_children, max_depth."""
    return (
        trie.byte, trie.depth, trie.subtree_end, trie.node_token, trie.root_children, trie.max_depth,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _in_row(chain_states: np.ndarray, d: int, q: int) -> bool:
    """Whether state ``q`` is one of the chain's states at depth ``d``."""
    for k in range(chain_states.shape[1]):
        if chain_states[d - 1, k] == q:
            return True
    return False


@njit(cache=True, nogil=True)
def dfa_token_mask(
    transitions: np.ndarray,
    state: int,
    node_byte: np.ndarray,
    node_depth: np.ndarray,
    subtree_end: np.ndarray,
    node_token: np.ndarray,
    root_children: np.ndarray,
    max_depth: int,
    landing: int,
    clean: np.ndarray,
    path_in: np.ndarray,
    clean_deepest: np.ndarray,
    shadow_reach: int,
    chain_states: np.ndarray,
    chain_reach: int,
    chain_in: np.ndarray,
    chain_clean: np.ndarray,
    token_ptr: np.ndarray,
    token_ids: np.ndarray,
    words: np.ndarray,
    ok: np.ndarray,
    visited: np.ndarray,
) -> tuple[int, int]:
    """Marks (see :mod:`token_marks`) every trie token that the DFA reads from ``state``
    without dying; returns the depth of the deepest live trie node and the number of
    nodes marked. Only the first bytes the state allows are entered (so a sparse state
    touches a few subtrees, not the whole trie); inside, dead subtrees are skipped in one
    jump. With a token slice of state ``landing`` (``clean`` not empty; see
    :mod:`token_slices`) whose tokens ``words`` holds, a clean subtree is skipped too where
    the walk holds the state the landing state's walk along the same bytes holds (under a
    first byte that leads where it leads from ``landing``, or deeper: past a keyword's
    first letters, inside a name); the slice's tokens elsewhere are cleared from ``words``
    where the walk does not mark them again. With ``shadow_reach`` > 0 (and ``landing``
    -1), the slice is another table's (a string body) whose every string of at most that
    many bytes ``state`` reads too (see :func:`token_slices.shadow_depths`): a clean
    subtree no deeper than that is skipped wherever it is met.

    With a chain instead (``chain_reach`` > 0; see :func:`token_slices.byte_chain`), as in
    a string whose length is counted: rows by depth of the states strings over a byte set
    S reach, and ``words`` holding the tokens of S no longer than the chain (``chain_in``:
    their nodes). Where the walk holds a chain state of its depth, a subtree of tokens of S
    only (``chain_clean``) no deeper than ``chain_reach`` is skipped (the chain's length, or
    any depth when S's bytes die after it); elsewhere the tokens of S are cleared from
    ``words`` unless the walk marks them again. (``clean_deepest``: each node's deepest
    descendant, for the depth this returns.)"""
    stack = np.empty(max_depth + 1, dtype=np.int32)
    stack[0] = state
    beside = np.empty(max_depth + 1, dtype=np.int32)  # the landing state's walk along the same path
    beside[0] = landing
    deepest = 0
    n = 0
    sliced = clean.shape[0] > 0
    chained = chain_reach > 0
    n_chain = chain_states.shape[0]
    for first in range(256):
        child = root_children[first]
        if child < 0:
            continue
        if transitions[state, first] < 0:
            if sliced:
                unmark_subtree(child, subtree_end, path_in, token_ptr, token_ids, words)
            if chained:
                unmark_subtree(child, subtree_end, chain_in, token_ptr, token_ids, words)
            continue
        i = child
        end = subtree_end[child]
        while i < end:
            d = node_depth[i]
            b = node_byte[i]
            nxt = transitions[stack[d - 1], b]
            if sliced:
                s = beside[d - 1]
                if s >= 0:
                    s = transitions[s, b]
                beside[d] = s
            if nxt < 0:
                if sliced:
                    unmark_subtree(i, subtree_end, path_in, token_ptr, token_ids, words)
                if chained:
                    unmark_subtree(i, subtree_end, chain_in, token_ptr, token_ids, words)
                i = subtree_end[i]
                continue
            if sliced:
                if clean[i] and (nxt == beside[d] or clean_deepest[i] <= shadow_reach):  # read to the end
                    if clean_deepest[i] > deepest:
                        deepest = clean_deepest[i]
                    i = subtree_end[i]
                    continue
                if path_in[i]:
                    unmark_node(i, token_ptr, token_ids, words)
            if chained:
                if chain_clean[i] and d <= n_chain and clean_deepest[i] <= chain_reach and _in_row(chain_states, d, nxt):
                    if clean_deepest[i] > deepest:
                        deepest = clean_deepest[i]
                    i = subtree_end[i]  # read through the chain
                    continue
                if chain_in[i]:
                    unmark_node(i, token_ptr, token_ids, words)
            stack[d] = nxt
            if d > deepest:
                deepest = d
            n = mark_node(i, node_token, ok, visited, n)
            i += 1
    return deepest, n


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


def one_token_trie() -> TokenTrie:
    """A trie with one token (id 0, the byte "a") for warming kernels up."""
    return TokenTrie.build([b"a"], np.array([0]))


def warm_up() -> None:
    """Compiles (or loads from the on-disk cache) every kernel with its real signatures."""
    transitions = np.zeros((1, 256), dtype=np.int32)
    trie = one_token_trie()
    marks = TokenMarks(1)
    words = np.zeros(1, dtype=np.uint32)
    nodes = np.ones(trie.n_nodes, dtype=np.bool_)
    _, marks.count = dfa_token_mask(
        transitions, 0, *trie_arrays(trie), 0, nodes, nodes, trie.depth, 0, NO_CHAIN, 0, nodes, nodes, trie.token_ptr, trie.token_ids,
        words, marks.ok, marks.visited,
    )  # fmt: skip
    marks.flush_into(words, trie)
    marks.count = VISITED_RING + 1
    marks.flush_into(words, trie)  # the packing path
    dfa_walk(transitions, 0, trie.byte, 0, 1)
    dfa_agree_within(np.zeros((2, 1), dtype=np.int64), 0, 1, 1)
