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
bytes.

A *closed* slice (:func:`closed_slice`) widens S to walks: the tokens read from ``r``
without leaving a set of states that all lead back to ``r``: the multi-byte characters
a string body or a field reads before coming back to ``r`` (a third of Tekken's
vocabulary holds non-ASCII bytes) and, in a lexer, the whole strongly connected
component (a string that must contain a pattern reads most words through partial
matches of it). Every state of the set can reach ``r``, so each is live
wherever ``r`` is (in a trimmed DFA, in a lexer under the same terminals). Slices are
cached per trie and table of those states (a byte set is the table of one state).

A string whose length is counted (``maxLength``) has no such loop: each position is its
own state. A *chain* (:func:`byte_chain`) follows those states, one per depth, over a byte
set they all move on alike; a walk that holds the chain's state for its depth skips the
subtrees of tokens made of those bytes and no longer than the chain, taken from the set's
slice by length (:func:`chain_slice`).
"""

from __future__ import annotations

import collections
import hashlib
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit

from .lexer import words_to_ints
from .token_trie import TokenTrie

MIN_SLICE_BYTES = 32  # a state looping on fewer bytes walks the whole trie as before
MAX_SLICES_PER_TRIE = 64
MAX_ASKED_PER_TRIE = 4096  # request counts kept per trie (then counting starts again)
MAX_COMPONENT_STATES = 128  # states a closed slice's search meets (see component_table)
EXCURSION_BYTES = 4  # the longest UTF-8 character
CHAIN_STARTS = 4  # the deepest depth a byte chain may begin at (see byte_chain)
CHAIN_WIDTH = 4  # the most states a byte chain holds at one depth
CHAIN_DEPTH = 32  # the longest chain followed (longer tokens are few, and walked)
MIN_SHADOW_DEPTH = 16  # a string body's shadow shallower than this: the chain, or the whole walk (measured faster)
MAX_SHADOW_PAIRS = 4096  # (state, shadow state) pairs shadow_depths numbers at most, ...
SHADOW_BREADTH = 64  # ... first met at one depth
SHADOW_EDGES = 8  # ... and moves a pair on average
BUILD_ON_REQUEST = 2  # a byte set's slice is built when asked for this many times


@dataclass(frozen=True, eq=False)
class TokenSlice:
    path_in: np.ndarray  # bool (n_nodes,): the node's bytes from the root are read within S
    clean: np.ndarray  # bool (n_nodes,): so are those of every node below it
    words: np.ndarray  # uint32 mask words of every token read within S
    # int32 (n_nodes + 1,): how many of nodes 1..i-1 have a byte outside the state's own
    # loop set, so that every node strictly below i has its byte in that set iff
    # outside_before[subtree_end[i]] == outside_before[i + 1]
    outside_before: np.ndarray


NO_NODES = np.zeros(0, dtype=np.bool_)  # what kernels get for a walk without a slice
NO_CHAIN = np.zeros((0, 1), dtype=np.int32)  # ... and without a chain (see byte_chain)
NO_COUNTS = np.zeros(0, dtype=np.int32)
NO_LIVE = np.zeros((1, 0), dtype=np.uint64)  # shadow_depths over a DFA: every state live


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
    targets = row[row >= 0]
    if targets.size == 0:
        return -1
    counts = np.bincount(targets)
    r = int(counts.argmax())
    return r if counts[r] >= MIN_SLICE_BYTES and _loop_count(transitions, r) >= MIN_SLICE_BYTES else -1


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
def slice_of(node_byte, node_depth, subtree_end, token_ptr, token_ids, max_depth, table, words):
    """Marks in ``words`` the tokens read from local state 0 of ``table`` (rows of local
    states, -1 for a byte that leaves them); returns per trie node whether its bytes from
    the root are read (``path_in``) and whether every token at or below it is (``clean``),
    and the running count of nodes whose byte is outside state 0's own loop set (see
    :class:`TokenSlice`)."""
    n = node_byte.shape[0]
    path_in = np.zeros(n, dtype=np.bool_)
    at = np.zeros(max_depth + 1, dtype=np.int32)  # the local state on the open path at each depth (-1: off)
    off_before = np.zeros(n + 1, dtype=np.int32)  # nodes 1..i-1 whose path is not read
    bad_before = np.zeros(n + 1, dtype=np.int32)  # nodes 1..i-1 whose byte is outside state 0's loop set
    off = 0
    bad = 0
    for i in range(1, n):
        d = node_depth[i]
        b = node_byte[i]
        s = at[d - 1]
        nxt = -1
        if s >= 0:
            nxt = table[s, b]
        at[d] = nxt
        if nxt >= 0:
            path_in[i] = True
            for m in range(token_ptr[i], token_ptr[i + 1]):
                t = token_ids[m]
                words[t >> 5] |= np.uint32(1) << np.uint32(t & 31)
        else:
            off += 1
        off_before[i + 1] = off
        if table[0, b] != 0:
            bad += 1
        bad_before[i + 1] = bad
    clean = np.zeros(n, dtype=np.bool_)
    for i in range(1, n):
        clean[i] = path_in[i] and off_before[subtree_end[i]] == off_before[i]
    return path_in, clean, bad_before


@njit(cache=True, nogil=True)
def component_table(transitions, r, max_states, low_byte, max_depth):
    """State ``r`` with the states met on paths from ``r`` of bytes >= ``low_byte``, at
    most ``max_depth`` long, that lead back to ``r`` the same way (a breadth-first search
    of at most ``max_states`` states): with ``low_byte`` 128 and ``max_depth`` 4 the inside
    of multi-byte characters, bounded to the neighbourhood of ``r`` (for DFAs of whole
    documents: the table, the slice's cache key, stays the same wherever the same text is
    read); with 0 and no bound the strongly connected component (for lexers, whose states
    stay inside a lexeme). Row 0 is ``r``, the others follow in search order (by byte);
    entries are local states, -1 for bytes that leave them."""
    order = np.empty(max_states, dtype=np.int64)
    depth = np.empty(max_states, dtype=np.int64)
    found = np.full(transitions.shape[0], -1, dtype=np.int32)  # each state's place in order
    order[0] = r
    depth[0] = 0
    found[r] = 0
    count = 1
    head = 0
    while head < count:
        s = order[head]
        head += 1
        if depth[head - 1] >= max_depth:
            continue
        for b in range(low_byte, 256):
            t = transitions[s, b]
            if t < 0 or found[t] >= 0 or count == max_states:
                continue
            found[t] = count
            order[count] = t
            depth[count] = depth[head - 1] + 1
            count += 1
    inside = np.zeros(count, dtype=np.bool_)  # leads back to r the same way
    inside[0] = True
    changed = True
    while changed:
        changed = False
        for k in range(1, count):
            if inside[k]:
                continue
            for b in range(low_byte, 256):
                t = transitions[order[k], b]
                if t >= 0 and found[t] >= 0 and inside[found[t]]:
                    inside[k] = True
                    changed = True
                    break
    local = np.full(count, -1, dtype=np.int32)
    m = 0
    for k in range(count):
        if inside[k]:
            local[k] = m
            m += 1
    table = np.full((m, 256), -1, dtype=np.int32)
    for k in range(count):
        if not inside[k]:
            continue
        for b in range(256):
            t = transitions[order[k], b]
            if t >= 0 and found[t] >= 0 and inside[found[t]]:
                table[local[k], b] = local[found[t]]
    return table


_slices: "weakref.WeakKeyDictionary[TokenTrie, collections.OrderedDict[bytes, TokenSlice]]" = weakref.WeakKeyDictionary()
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
    return _table_slice(trie, np.where(loops, 0, -1).astype(np.int32)[None, :], n_words, eager)


def closed_slice(
    trie: TokenTrie, transitions: np.ndarray, r: int, n_words: int, *, eager: bool = False, lexer: bool = False
) -> TokenSlice | None:
    """The slice of the tokens read from state ``r`` within its non-ASCII excursions, or
    for a ``lexer`` its strongly connected component (see :func:`component_table`); None as
    for :func:`self_loop_slice`."""
    if _loop_count(transitions, r) < MIN_SLICE_BYTES:
        return None
    if lexer:
        table = component_table(transitions, r, MAX_COMPONENT_STATES, 0, MAX_COMPONENT_STATES)
    else:
        table = component_table(transitions, r, MAX_COMPONENT_STATES, 128, EXCURSION_BYTES)
    return _table_slice(trie, table, n_words, eager)


def _table_slice(trie: TokenTrie, table: np.ndarray, n_words: int, eager: bool) -> TokenSlice | None:
    """The slice of ``table`` (see :func:`slice_of`), cached per trie by a digest of the
    table; the least recently used one goes when ``MAX_SLICES_PER_TRIE`` are kept (a long
    process meets ever new sets, and each slice holds a few bytes per trie node)."""
    key = hashlib.blake2b(table.tobytes(), digest_size=16).digest()
    with _lock:
        kept = _slices.setdefault(trie, collections.OrderedDict())
        found = kept.get(key)
        if found is not None:
            kept.move_to_end(key)
            return found
        asked = _asked.setdefault(trie, {})
        if len(asked) > MAX_ASKED_PER_TRIE:
            asked.clear()
        asked[key] = asked.get(key, 0) + 1
        if asked[key] < BUILD_ON_REQUEST and not eager:
            return None
    words = np.zeros(n_words, dtype=np.uint32)
    path_in, clean, outside_before = slice_of(
        trie.byte, trie.depth, trie.subtree_end, trie.token_ptr, trie.token_ids, trie.max_depth, table, words
    )
    found = TokenSlice(path_in=path_in, clean=clean, words=words, outside_before=outside_before)
    with _lock:
        kept[key] = found
        while len(kept) > MAX_SLICES_PER_TRIE:
            kept.popitem(last=False)
    return found


@njit(cache=True, nogil=True)
def _most_common_target(row: np.ndarray) -> int:
    """The state most bytes of a transition row lead to (-1 when all die)."""
    best = -1
    best_count = 0
    for b in range(256):
        t = row[b]
        if t < 0 or t == best:
            continue
        c = 0
        for b2 in range(256):
            if row[b2] == t:
                c += 1
        if c > best_count:
            best = t
            best_count = c
    return best


@njit(cache=True, nogil=True)
def _start_bytes(row: np.ndarray, width: int) -> np.ndarray:
    """The ASCII bytes of a transition row that lead to its ``width`` most common targets
    among those at least two bytes lead to (a string's closing quote or escape leads
    elsewhere alone)."""
    targets = np.sort(row[:128])
    kinds = np.full(128, -1, dtype=np.int32)
    counts = np.zeros(128, dtype=np.int32)
    n = 0
    for k in range(128):
        t = targets[k]
        if t < 0:
            continue
        if n > 0 and kinds[n - 1] == t:
            counts[n - 1] += 1
        else:
            kinds[n] = t
            counts[n] = 1
            n += 1
    order = np.argsort(-counts[:n], kind="mergesort")
    on = np.zeros(256, dtype=np.bool_)
    for x in range(min(width, n)):
        k = order[x]
        if counts[k] < 2:
            break
        for b in range(128):
            if row[b] == kinds[k]:
                on[b] = True
    return on


@njit(cache=True, nogil=True)
def _chain_from(transitions, first, max_len, min_bytes, width, on, states) -> tuple[int, int, bool]:
    """Fills ``states[d - 1]`` for depths ``first`` .. n: the states strings over the byte
    set ``on`` reach from ``states[first - 1, 0]`` (at most ``width`` a depth), narrowing
    ``on`` to the bytes every one of them reads; stops where ``on`` would keep fewer than
    ``min_bytes`` bytes or a depth more than ``width`` states. Returns (n, the bytes kept,
    whether every byte kept dies after depth n)."""
    d = first
    while d < max_len:
        keep = 0
        for b in range(256):
            if on[b]:
                ok = True
                for k in range(width):
                    r = states[d - 1, k]
                    if r >= 0 and transitions[r, b] < 0:
                        ok = False
                if ok:
                    keep += 1
        if keep < min_bytes:
            break
        nxt = np.full(width, -1, dtype=np.int32)
        m = 0
        fits = True
        for b in range(256):
            if not on[b]:
                continue
            for k in range(width):
                r = states[d - 1, k]
                if r < 0:
                    continue
                t = transitions[r, b]
                if t < 0:
                    continue
                seen = False
                for x in range(m):
                    if nxt[x] == t:
                        seen = True
                if not seen:
                    if m == width:
                        fits = False
                    else:
                        nxt[m] = t
                        m += 1
        if not fits:
            break
        for b in range(256):
            if on[b]:
                for k in range(width):
                    r = states[d - 1, k]
                    if r >= 0 and transitions[r, b] < 0:
                        on[b] = False
        states[d] = nxt
        d += 1
    count = 0
    dies = True
    for b in range(256):
        if on[b]:
            count += 1
            for k in range(width):
                r = states[d - 1, k]
                if r >= 0 and transitions[r, b] >= 0:
                    dies = False
    return d, count, dies


@njit(cache=True, nogil=True)
def byte_chain(
    transitions: np.ndarray, q: int, max_len: int, min_bytes: int, width: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """The states walks from ``q`` hold, depth by depth, on strings over a byte set S, as
    in a string whose length is counted (position k + 1 after position k, whatever the
    byte): from the state most bytes lead to at some depth up to ``CHAIN_STARTS`` (past a
    key's first letters), the states strings over S reach at each next depth, at most
    ``width`` of them (a format that tracks whether the text could still be, say, a URI
    scheme keeps two), where S, at least ``min_bytes`` bytes, holds the ASCII bytes of the
    start's most common targets (:func:`_start_bytes`) that every one of them reads (the
    start that keeps most bytes wins). Returns S, the states by depth
    (rows of ``width``, -1 for none; rows before the start hold none) at most ``max_len``
    deep, and whether the chain ends because every byte of S dies after it (else S would
    shrink there, or the chain is ``max_len`` long); an empty chain when there is none,
    or when fewer than ``min_bytes`` bytes leave ``q``."""
    best_on = np.zeros(256, dtype=np.bool_)
    best = np.full((0, width), -1, dtype=np.int32)
    best_dies = False
    live_bytes = 0
    for b in range(256):
        if transitions[q, b] >= 0:
            live_bytes += 1
    if live_bytes < min_bytes:  # (a walk from q is small: it would only clear the slice's tokens)
        return best_on, best, best_dies
    best_count = -1
    p = q
    for first in range(1, min(CHAIN_STARTS, max_len) + 1):
        p = _most_common_target(transitions[p])
        if p < 0:
            break
        on = _start_bytes(transitions[p], width)
        states = np.full((max_len, width), -1, dtype=np.int32)
        states[first - 1, 0] = p
        offered = 0
        for b in range(256):
            if on[b]:
                offered += 1
        n, count, dies = _chain_from(transitions, first, max_len, min_bytes, width, on, states)
        if n >= first + 1 and count >= min_bytes and count > best_count:
            best_on, best, best_dies, best_count = on, states[:n], dies, count
            if count == offered:  # (no later start keeps more)
                break
    return best_on, best, best_dies


@njit(cache=True, nogil=True, inline="always")
def _dead(t: int, live: np.ndarray, allowed: np.ndarray) -> bool:
    """Whether lexer state ``t`` is dead: none, or (with ``live`` columns) no terminal of
    ``allowed`` live in it."""
    if t < 0:
        return True
    if live.shape[1] == 0:
        return False
    for w in range(live.shape[1]):
        if live[t, w] & allowed[w]:
            return False
    return True


@njit(cache=True, nogil=True)
def shadow_depths(
    transitions: np.ndarray, q: int, shadow: np.ndarray, max_depth: int, min_depth: int, max_pairs: int, live: np.ndarray,
    allowed: np.ndarray, met: np.ndarray,
):
    """How many bytes deep (at most ``max_depth``) every string that the table ``shadow``
    reads from its row 0 is read from state ``q`` too: a string whose length is counted,
    read in the shadow of the unbounded string body until the count runs out. Where a
    subtree is no deeper, its tokens in ``shadow``'s slice are read from ``q``.

    The (state, shadow state) pairs met within ``max_depth`` bytes are numbered once each
    (a position of a counted string is met at many depths: characters of one to four
    bytes), and each pair's distance to one that a shadow byte kills is found by a
    backward breadth-first search. Returns the states ``s`` of the pairs (s, 0) met and
    their depths (the first is ``q``'s); empty arrays past ``max_pairs`` pairs,
    ``SHADOW_BREADTH`` pairs first met at one depth (a key's first letters, each leading
    to its own state: no counted string) or ``SHADOW_EDGES`` moves a pair on average, or
    as soon as a string shorter than
    ``min_depth`` kills ``q`` (then ``q`` alone, with that string's length less one: a
    breadth-first numbering meets pairs by depth). For a lexer, a state counts as dead
    unless its row of ``live`` meets ``allowed`` (the terminals the walk allows; rows
    without columns: every state is live).

    ``met`` (rows of ``live``'s width, for a lexer) gets what makes the answer hold for other
    allowed sets: row 0 the terminals live in every state the search kept (``q`` included),
    row 1 those live in some state it found dead; any set that meets row 0 and misses row 1
    keeps and kills the same states, so its search would be this one. Row 0 is left empty
    (no such promise) when the search stops early."""
    width = shadow.shape[0]
    words = met.shape[1]
    for w in range(words):
        met[0, w] = 0  # (until the search completes)
        met[1, w] = 0
    if min_depth > 0:  # a first byte that kills ``q`` (most states: a key's names), before any allocation
        for x in range(256):
            if shadow[0, x] >= 0 and _dead(transitions[q, x], live, allowed):
                return np.full(1, q, dtype=np.int64), np.zeros(1, dtype=np.int64)
    common = np.empty(words, dtype=np.uint64)
    killed = np.zeros(words, dtype=np.uint64)
    for w in range(words):
        common[w] = live[q, w]
    read_ptr = np.zeros(width + 1, dtype=np.int32)  # the bytes each shadow state reads (a few of 256 in most)
    read = np.empty(width * 256, dtype=np.int32)
    for b in range(width):
        k = read_ptr[b]
        for x in range(256):
            if shadow[b, x] >= 0:
                read[k] = x
                k += 1
        read_ptr[b + 1] = k
    n_slots = 1
    while n_slots < 2 * max_pairs:
        n_slots *= 2
    slots = np.full(n_slots, -1, dtype=np.int32)
    keys = np.empty(max_pairs, dtype=np.int64)
    first = np.empty(max_pairs, dtype=np.int32)  # the depth each pair is first met at
    fails = np.zeros(max_pairs, dtype=np.bool_)
    succ_ptr = np.zeros(max_pairs + 1, dtype=np.int32)
    succ = np.empty(SHADOW_EDGES * max_pairs, dtype=np.int32)  # (never regrown in the loop: numba then slows it 15x)
    nothing = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    n_succ = 0
    depth_now = -1  # the depth whose pairs are being numbered, from pair depth_start on
    depth_start = 0
    keys[0] = q * width
    first[0] = 0
    slots[(keys[0] * 40503) & (n_slots - 1)] = 0
    count = 1
    i = 0
    while i < count:
        succ_ptr[i] = n_succ
        if first[i] < max_depth:
            s = keys[i] // width
            b = keys[i] % width
            last_t, last_nb = -2, -2
            for e in range(read_ptr[b], read_ptr[b + 1]):
                x = read[e]
                nb = shadow[b, x]
                t = transitions[s, x]
                if t == last_t and nb == last_nb:  # the byte before's move (a run of letters): done
                    continue
                last_t, last_nb = t, nb
                if _dead(t, live, allowed):
                    fails[i] = True
                    if first[i] < min_depth:
                        return np.full(1, q, dtype=np.int64), np.full(1, first[i], dtype=np.int64)
                    if t >= 0:
                        for w in range(words):
                            killed[w] |= live[t, w]
                    continue
                for w in range(words):
                    common[w] &= live[t, w]
                key = t * width + nb
                slot = (key * 40503) & (n_slots - 1)
                while slots[slot] >= 0 and keys[slots[slot]] != key:
                    slot = (slot + 1) & (n_slots - 1)
                j = slots[slot]
                if j < 0:
                    if count == max_pairs:
                        return nothing
                    j = count
                    slots[slot] = j
                    keys[j] = key
                    first[j] = first[i] + 1
                    count += 1
                    if first[i] > depth_now:
                        depth_now = first[i]
                        depth_start = j
                    if j - depth_start >= SHADOW_BREADTH:
                        return nothing
                if n_succ == succ.shape[0]:
                    return nothing
                succ[n_succ] = j
                n_succ += 1
        i += 1
    succ_ptr[count] = n_succ
    # predecessors, then each pair's distance to a failing one, backwards
    pred_ptr = np.zeros(count + 1, dtype=np.int32)
    for e in range(n_succ):
        pred_ptr[succ[e] + 1] += 1
    for j in range(count):
        pred_ptr[j + 1] += pred_ptr[j]
    fill = pred_ptr[:count].copy()
    pred = np.empty(n_succ, dtype=np.int32)
    for a in range(count):
        for e in range(succ_ptr[a], succ_ptr[a + 1]):
            t = succ[e]
            pred[fill[t]] = a
            fill[t] += 1
    dist = np.full(count, max_depth, dtype=np.int32)
    queue = np.empty(count, dtype=np.int32)
    head = 0
    tail = 0
    for j in range(count):
        if fails[j]:
            dist[j] = 0
            queue[tail] = j
            tail += 1
    while head < tail:
        j = queue[head]
        head += 1
        for e in range(pred_ptr[j], pred_ptr[j + 1]):
            a = pred[e]
            if dist[a] > dist[j] + 1:
                dist[a] = dist[j] + 1
                queue[tail] = a
                tail += 1
    m = 0
    for j in range(count):
        if keys[j] % width == 0:
            m += 1
    states = np.empty(m, dtype=np.int64)
    depths = np.empty(m, dtype=np.int64)
    k = 0
    for j in range(count):
        if keys[j] % width == 0:
            states[k] = keys[j] // width
            depths[k] = min(dist[j], max_depth - first[j])  # (explored that deep below it)
            k += 1
    for w in range(words):
        met[0, w] = common[w]
        met[1, w] = killed[w]
    return states, depths


class StringShadow:
    """Walks inside strings whose length is counted (no state loops: one per position), in
    the shadow of the unbounded string body (``body``: its transitions, state 0 looping on
    its characters): where a state reads every string the body reads, up to some depth,
    the body's slice serves its walks to that depth. Depths are kept per (state, key) (a
    lexer's key: the terminals its walk allows, ``live`` and ``allowed`` as
    :func:`shadow_depths` takes them); one search finds those of the string's later
    positions too."""

    def __init__(self, body: np.ndarray) -> None:
        self.body = body
        self.table = component_table(body, 0, MAX_COMPONENT_STATES, 128, EXCURSION_BYTES)
        self._depths: dict[tuple[int, int], int] = {}
        # per state, the searches that found its depth under another key, as (terminals live
        # in every state kept, terminals live in some state killed, that key): see _reused
        self._searches: dict[int, list[tuple[int, int, int]]] = {}
        # states whose search ran past its budget under some key: searched again under each
        # other key (a key start under each object's names), it ran past it again, each time
        # paying the whole budget (measured: 150 µs a search on JSONSchemaBench objects)
        self._too_wide: set[int] = set()
        self._slice: TokenSlice | None = None  # (the body's closed slice, once built)

    def reach(
        self, transitions: np.ndarray, q: int, trie: TokenTrie, n_words: int, key: int = 0,
        live: np.ndarray = NO_LIVE, allowed: np.ndarray = NO_LIVE[0],
    ) -> "tuple[int, TokenSlice | None]":
        """How deep walks from ``q`` read what the body reads (see :func:`shadow_depths`),
        and the body's slice; (0, None) when less than ``MIN_SHADOW_DEPTH`` bytes or the
        slice is not built."""
        depth = self._depths.get((q, key))
        if depth is None and q in self._too_wide:
            return 0, None
        if depth is None and live.shape[1]:
            depth = self._reused(q, key)
        if depth is None:
            met = np.zeros((2, live.shape[1]), dtype=np.uint64)
            states, depths = shadow_depths(
                transitions, q, self.table, trie.max_depth, MIN_SHADOW_DEPTH, MAX_SHADOW_PAIRS, live, allowed, met
            )
            if len(states) == 0:  # past the search's budget
                self._too_wide.add(q)
            kept = [q]
            for s, d in zip(states.tolist(), depths.tolist()):
                # (a later position's depth is known as deep as the search went below it: a
                # small one is searched again from there)
                if d >= MIN_SHADOW_DEPTH and d > self._depths.get((s, key), -1):
                    self._depths[(s, key)] = d
                    kept.append(s)
            depth = self._depths.setdefault((q, key), int(depths[0]) if len(depths) else 0)
            if met.shape[1] and met[0].any():
                search = (*words_to_ints(met), key)
                for s in dict.fromkeys(kept):
                    self._searches.setdefault(s, []).append(search)
        if depth < MIN_SHADOW_DEPTH:
            return 0, None
        if self._slice is None:
            self._slice = _table_slice(trie, self.table, n_words, False)  # (closed_slice's table for the body)
        return (0, None) if self._slice is None else (depth, self._slice)

    def _reused(self, q: int, key: int) -> int | None:
        """``q``'s depth under ``key`` from a search under another key that would have gone
        alike (see ``met`` in :func:`shadow_depths`: the objects of one schema each allow
        their own key terminals, and a free key's terminal is live in every state of a
        string), kept under ``key`` too; None when there is none."""
        for common, killed, other in self._searches.get(q, ()):
            if key & common and not key & killed:
                depth = self._depths.get((q, other))
                if depth is not None:
                    self._depths[(q, key)] = depth
                    return depth
        return None


@njit(cache=True, nogil=True)
def words_up_to_length(node_depth, path_in, token_ptr, token_ids, max_depth, n_words) -> np.ndarray:
    """Row ``L``: the mask words of the tokens whose every byte is read (``path_in``) and
    that are at most ``L`` bytes long."""
    out = np.zeros((max_depth + 1, n_words), dtype=np.uint32)
    for i in range(1, node_depth.shape[0]):
        if path_in[i]:
            d = node_depth[i]
            for m in range(token_ptr[i], token_ptr[i + 1]):
                t = token_ids[m]
                out[d, t >> 5] |= np.uint32(1) << np.uint32(t & 31)
    for d in range(1, max_depth + 1):
        for w in range(n_words):
            out[d, w] |= out[d - 1, w]
    return out


_by_length: "weakref.WeakKeyDictionary[TokenSlice, np.ndarray]" = weakref.WeakKeyDictionary()


def chain_slice(
    trie: TokenTrie, on: np.ndarray, n_words: int, *, eager: bool = False
) -> tuple[TokenSlice, np.ndarray] | None:
    """The slice of the byte set ``on`` (see :func:`byte_chain`) and its tokens by length:
    row ``L`` of the array holds those at most ``L`` bytes long, which a chain of ``L``
    states reads whole. None when the set is too small to be worth it, or before it is
    asked for ``BUILD_ON_REQUEST`` times (unless ``eager``)."""
    if int(on.sum()) < MIN_SLICE_BYTES:
        return None
    found = _table_slice(trie, np.where(on, 0, -1).astype(np.int32)[None, :], n_words, eager)
    if found is None:
        return None
    with _lock:
        upto = _by_length.get(found)
    if upto is None:
        upto = words_up_to_length(trie.depth, found.path_in, trie.token_ptr, trie.token_ids, trie.max_depth, n_words)
        with _lock:
            _by_length[found] = upto
    return found, upto


def find_chain(transitions: np.ndarray, q: int, trie: TokenTrie) -> tuple[np.ndarray, np.ndarray, bool]:
    """:func:`byte_chain` from ``q`` as walks over ``trie`` use it (``CHAIN_DEPTH`` deep at
    most, ``CHAIN_WIDTH`` states a depth)."""
    return byte_chain(transitions, q, min(trie.max_depth, CHAIN_DEPTH), MIN_SLICE_BYTES, CHAIN_WIDTH)


def chain_walk(
    trie: TokenTrie, on: np.ndarray, states: np.ndarray, dies: bool, n_words: int
) -> "tuple[np.ndarray, int, TokenSlice | None, np.ndarray | None]":
    """What a walk takes of a chain (rows ``states`` over byte set ``on``; see
    :func:`byte_chain`): its states, how deep a subtree of its bytes' slice may go to be
    read whole (the chain's length, or any depth when the bytes die after it), the slice,
    and its tokens no longer than the chain; (empty, 0, None, None) for chains shorter than
    2 or before the slice is built."""
    length = states.shape[0]
    sliced = chain_slice(trie, on, n_words) if length >= 2 else None
    if sliced is None:
        return NO_CHAIN, 0, None, None
    return states, (trie.max_depth if dies else length), sliced[0], sliced[1][length]


def landing_slice(
    trie: TokenTrie,
    transitions: np.ndarray,
    q: int,
    n_words: int,
    usable: Callable[[int], bool] | None = None,
    eager: Callable[[int], bool] | None = None,
    closed: bool = False,
    lexer: bool = False,
) -> tuple[int, TokenSlice | None]:
    """The landing state of walks from ``q`` (see :func:`landing_state`) and its slice, or
    (-1, None) when there is none, none is built yet (unless ``eager`` says to build it
    now for that landing state; see :func:`self_loop_slice`), or ``usable`` refuses the
    landing state. With ``closed``, the landing state's closed slice (:func:`closed_slice`;
    ``lexer``: of its whole component): a walk from ``q`` then skips a clean subtree under
    a first byte that leads where it leads from the landing state."""
    landing = landing_state(transitions, q)
    if landing < 0 or (usable is not None and not usable(landing)):
        return -1, None
    build_now = eager is not None and eager(landing)
    if closed:
        found = closed_slice(trie, transitions, landing, n_words, eager=build_now, lexer=lexer)
    else:
        found = self_loop_slice(trie, transitions[landing], landing, n_words, eager=build_now)
    return (-1, None) if found is None else (landing, found)


def warm_up() -> None:
    trie = TokenTrie.build([b"a", b"ab"], np.array([0, 1]))
    slice_of(
        trie.byte, trie.depth, trie.subtree_end, trie.token_ptr, trie.token_ids, trie.max_depth,
        np.zeros((1, 256), dtype=np.int32), np.zeros(1, dtype=np.uint32),
    )  # fmt: skip
    component_table(np.zeros((1, 256), dtype=np.int32), 0, MAX_COMPONENT_STATES, 128, EXCURSION_BYTES)
    assert trie.subtree_deepest[0] == 2  # compiles its kernel too
    byte_chain(np.zeros((1, 256), dtype=np.int32), 0, 4, MIN_SLICE_BYTES, CHAIN_WIDTH)
    for live in (NO_LIVE, np.ones((1, 1), dtype=np.uint64)):
        met = np.zeros((2, live.shape[1]), dtype=np.uint64)
        shadow_depths(np.zeros((1, 256), dtype=np.int32), 0, np.zeros((1, 256), dtype=np.int32), 4, 2, MAX_SHADOW_PAIRS, live, live[0], met)
    words_up_to_length(trie.depth, np.ones(trie.n_nodes, dtype=np.bool_), trie.token_ptr, trie.token_ids, trie.max_depth, 1)
    words = np.ones(1, dtype=np.uint32)
    unmark_subtree(1, trie.subtree_end, np.ones(trie.n_nodes, dtype=np.bool_), trie.token_ptr, trie.token_ids, words)


@njit(cache=True, nogil=True, inline="always")
def unmark_node(i, token_ptr, token_ids, words) -> None:
    """Clears from ``words`` the tokens of trie node ``i``."""
    for m in range(token_ptr[i], token_ptr[i + 1]):
        t = token_ids[m]
        words[t >> 5] &= ~(np.uint32(1) << np.uint32(t & 31))


@njit(cache=True, nogil=True)
def unmark_subtree(i, subtree_end, path_in, token_ptr, token_ids, words) -> None:
    """Clears from ``words`` the slice's tokens at and below trie node ``i`` (a walk from
    another state does not read them the way the landing state does)."""
    if not path_in[i]:  # (path_in holds for the prefixes of a node where it holds)
        return
    for j in range(i, subtree_end[i]):
        if path_in[j]:
            unmark_node(j, token_ptr, token_ids, words)
