"""Marking allowed tokens during a trie walk, cheaply.

Setting a bit of the mask (``words[t >> 5] |= ...``) inside a walk costs a read-modify-write
that the walk's own loads wait on; a byte store does not. So a walk stores ``ok[t] = 1``
(``ok`` holds one byte per token, then sink bytes: a node without a token has id -1, which
indexes the last byte) and writes the nodes it marked into a ring; both stores are
branch-free, which measurably matters in these loops. :func:`flush_marks` then turns the
bytes into mask bits: from the ring when the walk marked no more nodes than it holds, else
by packing every byte; it adds the tokens that share a node's bytes (``extra_pairs``) and
leaves ``ok`` zeroed for the next walk.
"""

from __future__ import annotations

import numpy as np
from numba import njit

VISITED_RING = 2048  # a power of two


class TokenMarks:
    """The ``ok`` bytes (with a uint64 view for packing) and the ring of marked nodes of
    walks that fill a mask of ``n_words`` uint32 words."""

    def __init__(self, n_words: int) -> None:
        self.n_words = n_words
        self.packed = np.zeros(4 * n_words + 1, dtype=np.uint64)  # 32 bytes a word, then the sink
        self.ok = self.packed.view(np.uint8)
        self.visited = np.empty(VISITED_RING, dtype=np.int32)
        self.count = 0  # nodes marked since the last flush

    def flush_into(self, words: np.ndarray, trie) -> None:
        """ORs the marked tokens into ``words`` and clears the marks."""
        flush_marks(self.ok, self.packed, self.visited, self.count, trie.token_ptr, trie.token_ids, trie.extra_pairs, words)
        self.count = 0


@njit(cache=True, nogil=True, inline="always")
def mark_node(i: int, node_token, ok, visited, n: int) -> int:
    """Marks the token ending at trie node ``i``; returns the new count of marked nodes."""
    ok[node_token[i]] = 1  # -1 (no token) wraps around to the sink byte
    visited[n & (visited.shape[0] - 1)] = i
    return n + 1


@njit(cache=True, nogil=True, inline="always")
def mark_below(i: int, subtree_end, node_token, ok, visited, n: int) -> int:
    """Marks the tokens of every node strictly below trie node ``i``; returns the new count."""
    for j in range(i + 1, subtree_end[i]):
        n = mark_node(j, node_token, ok, visited, n)
    return n


@njit(cache=True, nogil=True)
def flush_marks(ok, packed, visited, n: int, token_ptr, token_ids, extra_pairs, words) -> None:
    """See the module docstring; ``packed`` is ``ok`` viewed as uint64."""
    if n <= visited.shape[0]:
        for k in range(n):
            i = visited[k]
            for m in range(token_ptr[i], token_ptr[i + 1]):
                t = token_ids[m]
                words[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
                ok[t] = 0
        ok[ok.shape[0] - 1] = 0
        return
    for x in range(extra_pairs.shape[0]):
        ok[extra_pairs[x, 1]] |= ok[extra_pairs[x, 0]]
    magic = np.uint64(0x0102040810204080)  # gathers the low bit of each of 8 bytes
    for w in range(words.shape[0]):
        lo = (packed[4 * w] * magic) >> np.uint64(56)
        a = (packed[4 * w + 1] * magic) >> np.uint64(56)
        b = (packed[4 * w + 2] * magic) >> np.uint64(56)
        c = (packed[4 * w + 3] * magic) >> np.uint64(56)
        bits = lo | (a << np.uint64(8)) | (b << np.uint64(16)) | (c << np.uint64(24))
        words[w] |= np.uint32(bits)
    packed[:] = 0
