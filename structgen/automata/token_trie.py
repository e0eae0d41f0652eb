"""The tokenizer's token trie, flattened in depth-first order for the numba kernels.

Node 0 is the root (the empty string). For node ``i > 0``: ``byte[i]`` is the byte on the
edge from its parent, ``depth[i]`` its length, ``subtree_end[i]`` the first node after its
subtree (so a dead node's whole subtree is skipped in one jump), ``root_children[b]`` the
depth-1 node of first byte ``b`` (or -1), and
``token_ids[token_ptr[i]:token_ptr[i + 1]]`` the tokens whose bytes end exactly there
(several ids may share one byte string, e.g. SentencePiece's ``<0x41>`` and ``A``).
``node_token[i]`` is the first of those ids (-1 for none), so that kernels mark a node's
token with one store; ``extra_pairs`` lists (first id, other id) for nodes with more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit


@dataclass(frozen=True, eq=False)
class TokenTrie:
    byte: np.ndarray  # uint8 (n_nodes,)
    depth: np.ndarray  # int32 (n_nodes,)
    subtree_end: np.ndarray  # int32 (n_nodes,)
    token_ptr: np.ndarray  # int32 (n_nodes + 1,)
    token_ids: np.ndarray  # int32
    root_children: np.ndarray  # int32 (256,): the depth-1 node for each first byte, or -1
    max_depth: int
    node_token: np.ndarray  # int32 (n_nodes,): the first token ending at the node, or -1
    extra_pairs: np.ndarray  # int32 (m, 2): (node_token, another token with the same bytes)
    subtree_deepest: np.ndarray  # int32 (n_nodes,): the depth of the deepest node at or below

    @property
    def n_nodes(self) -> int:
        return int(self.byte.shape[0])

    @classmethod
    def build(cls, token_bytes: Sequence[bytes], ids: np.ndarray) -> "TokenTrie":
        order = sorted((token_bytes[i], int(i)) for i in ids if token_bytes[i])
        node_byte = [0]
        node_depth = [0]
        subtree_end = [0]
        node_tokens: list[list[int]] = [[]]
        path = [0]  # node index at each depth along the current token
        prev = b""
        for data, tid in order:
            common = 0
            limit = min(len(prev), len(data))
            while common < limit and prev[common] == data[common]:
                common += 1
            for closed in path[common + 1 :]:
                subtree_end[closed] = len(node_byte)
            del path[common + 1 :]
            for depth in range(common, len(data)):
                path.append(len(node_byte))
                node_byte.append(data[depth])
                node_depth.append(depth + 1)
                subtree_end.append(0)
                node_tokens.append([])
            node_tokens[path[len(data)]].append(tid)
            prev = data
        for closed in path:
            subtree_end[closed] = len(node_byte)
        counts = np.fromiter((len(t) for t in node_tokens), dtype=np.int32, count=len(node_tokens))
        token_ptr = np.zeros(len(node_tokens) + 1, dtype=np.int32)
        np.cumsum(counts, out=token_ptr[1:])
        token_ids = np.fromiter((t for ts in node_tokens for t in ts), dtype=np.int32, count=int(token_ptr[-1]))
        depth = np.array(node_depth, dtype=np.int32)
        byte = np.array(node_byte, dtype=np.uint8)
        root_children = np.full(256, -1, dtype=np.int32)
        first_level = np.flatnonzero(depth == 1)
        root_children[byte[first_level]] = first_level
        node_token = np.full(len(node_tokens), -1, dtype=np.int32)
        has = counts > 0
        node_token[has] = token_ids[token_ptr[:-1][has]]
        ends = np.array(subtree_end, dtype=np.int32)
        return cls(
            byte=byte,
            depth=depth,
            subtree_end=ends,
            token_ptr=token_ptr,
            token_ids=token_ids,
            root_children=root_children,
            max_depth=max(node_depth),
            node_token=node_token,
            extra_pairs=np.array(
                [(ts[0], t) for ts in node_tokens if len(ts) > 1 for t in ts[1:]], dtype=np.int32
            ).reshape(-1, 2),
            subtree_deepest=_subtree_deepest(depth, ends),
        )

    def prefix_nodes(self, data: bytes) -> list[int]:
        """The nodes of ``data[:1]``, ``data[:2]``, ... as far as the trie holds them."""
        nodes: list[int] = []
        node = int(self.root_children[data[0]]) if data else -1
        for depth in range(1, len(data) + 1):
            if node < 0:
                break
            nodes.append(node)
            if depth == len(data):
                break
            child, end = node + 1, int(self.subtree_end[node])
            while child < end and self.byte[child] != data[depth]:
                child = int(self.subtree_end[child])
            node = child if child < end else -1
        return nodes

    def tokens_at(self, node: int) -> np.ndarray:
        """The ids of the tokens whose bytes end exactly at ``node``."""
        return self.token_ids[self.token_ptr[node] : self.token_ptr[node + 1]]

    def tokens_below(self, node: int) -> np.ndarray:
        """The ids of the tokens whose bytes strictly extend ``node``'s."""
        return self.token_ids[self.token_ptr[node + 1] : self.token_ptr[self.subtree_end[node]]]


@njit(cache=True, nogil=True)
def _subtree_deepest(node_depth, subtree_end):
    """Per node, the depth of the deepest node at or below it (last nodes first, so that
    every child is done before its parent)."""
    deepest = node_depth.copy()
    for i in range(node_depth.shape[0] - 1, -1, -1):
        j = i + 1  # the children, each already holding its subtree's deepest node
        while j < subtree_end[i]:
            if deepest[j] > deepest[i]:
                deepest[i] = deepest[j]
            j = subtree_end[j]
    return deepest
