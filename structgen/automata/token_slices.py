"""Token slices: the tokens made only of bytes from a set S, and the trie subtrees that hold
nothing else.

A DFA state ``r`` that loops on every byte of S (a JSON string's body loops on printable
ASCII but ``"`` and ``\\``) reads each such token and stays where it is. So does a state
``q`` whose first byte mostly leads to ``r`` (a property name that may be any string, not
only a declared one), for tokens whose first byte leads there. A trie walk from ``q`` then
skips the root subtrees of such first bytes that hold nothing else (``clean``) and takes
their tokens from ``words`` at once, less those under first bytes that do not lead to
``r`` (``path_in`` finds them). On SmolLM2's vocabulary a string body's S holds 47,873 of
49,152 tokens: the walk is left with the few holding a quote, a backslash or non-ASCII
bytes. Slices are cached per trie and byte set.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit

from .token_trie import TokenTrie

MIN_SLICE_BYTES = 32  # a state looping on fewer bytes walks the whole trie as before
MAX_SLICES_PER_TRIE = 64
BUILD_ON_REQUEST = 2  # a byte set's slice is built when asked for this many times


@dataclass(frozen=True, eq=False)
class TokenSlice:
    path_in: np.ndarray  # bool (n_nodes,): the node's bytes from the root are made of S
    clean: np.ndarray  # bool (n_nodes,): so are those of every node below it
    words: np.ndarray  # uint32 mask words of every token made of S
    # int32 (n_nodes + 1,): how many of nodes 1..i-1 have a byte outside S, so that every
    # node strictly below i has its byte in S iff outside_before[subtree_end[i]] == outside_before[i + 1]
    outside_before: np.ndarray


NO_NODES = np.zeros(0, dtype=np.bool_)  # what kernels get for a walk without a slice
NO_COUNTS = np.zeros(0, dtype=np.int32)


def _loop_count(transitions: np.ndarray, r: int) -> int:
    """How many bytes state ``r`` loops on."""
    return int(np.count_nonzero(transitions[r] == r))


def landing_state(transitions: np.ndarray, q: int) -> int:
    """The state whose slice serves walks from ``q``: ``q`` itself when it loops on at
    least ``MIN_SLICE_BYTES`` bytes, else the state most of its bytes lead to when that one
    does; -1 for none."""
    row = transitions[q]
    if _loop_count(transitions, q) >= MIN_SLICE_BYTES:
        return q
    targets, counts = np.unique(row[row >= 0], return_counts=True)
    if targets.size == 0 or counts.max() < MIN_SLICE_BYTES:
        return -1
    r = int(targets[counts.argmax()])
    return r if _loop_count(transitions, r) >= MIN_SLICE_BYTES else -1


def deep_landing_state(transitions: np.ndarray, q: int) -> int:
    """The state that walks from ``q`` most often reach after two bytes, among those that
    loop on at least ``MIN_SLICE_BYTES`` bytes; -1 for none. From no open lexeme, that is a
    name's body, say, although each keyword's first letter leads elsewhere first."""
    first = transitions[q]
    first = first[first >= 0]
    if first.size == 0:
        return -1
    second = transitions[first].ravel()
    second = second[second >= 0]
    if second.size == 0:
        return -1
    counts = np.bincount(second)
    for r in np.argsort(-counts, kind="stable").tolist():
        if counts[r] < MIN_SLICE_BYTES:
            break
        if _loop_count(transitions, r) >= MIN_SLICE_BYTES:
            return r
    return -1


@njit(cache=True, nogil=True)
def slice_of(node_byte, node_depth, subtree_end, token_ptr, token_ids, max_depth, in_set, words):
    """Marks in ``words`` the tokens made of bytes of ``in_set``; returns per trie node
    whether its bytes from the root are (``path_in``) and whether every token at or below it
    is (``clean``), and the running count of nodes whose byte is outside the set (see
    :class:`TokenSlice`)."""
    n = node_byte.shape[0]
    path_in = np.zeros(n, dtype=np.bool_)  # the path from the root is made of the set
    on_path = np.ones(max_depth + 1, dtype=np.bool_)  # the same for the open node at each depth
    bad_before = np.zeros(n + 1, dtype=np.int32)  # nodes 1..i-1 whose byte is outside the set
    bad = 0
    for i in range(1, n):
        d = node_depth[i]
        inside = in_set[node_byte[i]]
        path_in[i] = inside and on_path[d - 1]
        on_path[d] = path_in[i]
        if not inside:
            bad += 1
        bad_before[i + 1] = bad
        if path_in[i]:
            for m in range(token_ptr[i], token_ptr[i + 1]):
                t = token_ids[m]
                words[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
    clean = np.zeros(n, dtype=np.bool_)
    for i in range(1, n):
        clean[i] = path_in[i] and bad_before[subtree_end[i]] == bad_before[i]
    return path_in, clean, bad_before


_slices: "weakref.WeakKeyDictionary[TokenTrie, dict[bytes, TokenSlice]]" = weakref.WeakKeyDictionary()
_asked: "weakref.WeakKeyDictionary[TokenTrie, dict[bytes, int]]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def self_loop_slice(
    trie: TokenTrie, row: np.ndarray, state: int, n_words: int, *, eager: bool = False
) -> TokenSlice | None:
    """The slice of the bytes on which ``state`` (whose transition row is ``row``) stays
    where it is; None when they are too few to be worth it, or (unless ``eager``) before
    the ``BUILD_ON_REQUEST``-th time a byte set is asked for: building a slice costs a few
    full walks, worth it for sets met again, as a string's body is in every string of a
    schema."""
    loops = np.asarray(row) == state
    if int(loops.sum()) < MIN_SLICE_BYTES:
        return None
    key = np.packbits(loops).tobytes()
    with _lock:
        found = _slices.setdefault(trie, {}).get(key)
        if found is not None:
            return found
        asked = _asked.setdefault(trie, {})
        asked[key] = asked.get(key, 0) + 1
        if (asked[key] < BUILD_ON_REQUEST and not eager) or len(_slices[trie]) >= MAX_SLICES_PER_TRIE:
            return None
    words = np.zeros(n_words, dtype=np.uint32)
    path_in, clean, outside_before = slice_of(
        trie.byte, trie.depth, trie.subtree_end, trie.token_ptr, trie.token_ids, trie.max_depth, loops, words
    )
    found = TokenSlice(path_in=path_in, clean=clean, words=words, outside_before=outside_before)
    with _lock:
        _slices[trie][key] = found
    return found


def landing_slice(
    trie: TokenTrie,
    transitions: np.ndarray,
    q: int,
    n_words: int,
    usable: Callable[[int], bool] | None = None,
    eager: Callable[[int], bool] | None = None,
) -> tuple[int, TokenSlice | None]:
    """The landing state of walks from ``q`` (see :func:`landing_state`) and its slice, or
    (-1, None) when there is none, none is built yet (unless ``eager`` says to build it
    now for that landing state; see :func:`self_loop_slice`), or ``usable`` refuses the
    landing state."""
    landing = landing_state(transitions, q)
    if landing < 0 or (usable is not None and not usable(landing)):
        return -1, None
    found = self_loop_slice(trie, transitions[landing], landing, n_words, eager=eager is not None and eager(landing))
    return (-1, None) if found is None else (landing, found)


def warm_up() -> None:
    trie = TokenTrie.build([b"a", b"ab"], np.array([0, 1]))
    slice_of(
        trie.byte, trie.depth, trie.subtree_end, trie.token_ptr, trie.token_ids, trie.max_depth,
        np.ones(256, dtype=np.bool_), np.zeros(1, dtype=np.uint32),
    )  # fmt: skip
    assert trie.subtree_deepest[0] == 2  # compiles its kernel too
    words = np.ones(1, dtype=np.uint32)
    unmark_root_subtree(1, trie.subtree_end, np.ones(trie.n_nodes, dtype=np.bool_), trie.token_ptr, trie.token_ids, words)


@njit(cache=True, nogil=True)
def unmark_root_subtree(child, subtree_end, path_in, token_ptr, token_ids, words) -> None:
    """Clears from ``words`` the slice's tokens under root child ``child`` (its first byte
    does not lead to the landing state, so they may not be read)."""
    for j in range(child, subtree_end[child]):
        if path_in[j]:
            for m in range(token_ptr[j], token_ptr[j + 1]):
                t = token_ids[m]
                words[t >> 5] &= ~(np.uint32(1) << np.uint32(t & 31))
