"""numba kernels of the LALR(1) recogniser (see :mod:`structgen.automata.lr`): parse stacks
as rows of arrays, so that the grammar kernels step the parser without calling Python.

A row is a stack: an LR state over the row below (-1: none). Rows are interned by (state,
row below) in an open-addressing hash, so equal stacks are one row. A row serves both as a
stack the parser pushed and as a *virtual* stack (a state over a row, met while reducing)
whose viable terminals are kept for the stacks that reduce through it.

Everything the kernels read travels as one tuple, :data:`Store` (see :func:`store_tuple`):

- 0-7, the tables: ``action[s, t]`` (>= 0 shift to that state, -1 error, <= -2 reduce
  rule ``-2 - action``), ``rule[r]`` (left-hand side, length), ``goto[s, n]``, ``runs[s]``
  (a state whose run is one, see :func:`structgen.automata.lr._collapsible`),
  ``shift_words[s]`` (the terminals, end of input included, that ``s`` shifts), and per
  state its reductions in table order (``red_ptr``, ``red_rule``, ``red_look``: lookahead
  words);
- 8-12, per row: ``rows[r]`` (state, row below, height, ``low``: the lowest height its
  terminals were read from, and whether its viable terminals are computed), ``bits`` (those
  terminals: what it shifts after reductions, end of input included), ``aid`` (its lexer
  view, -1 until set), ``child`` / ``child_low`` (per terminal: the row after it, stored
  plus one as the grammar kernels read it, and the lowest height that step and the child's
  terminals read, whether ``t`` is allowed aside: ``low`` covers that);
- 13-16: the hash (``h_keys``, ``h_rows``), ``meta`` (rows used, the terminal count, an
  error flag, the lexer views the caller has) and ``ignore`` (the ignored terminals' words).

A step that needs a row when none is left returns :data:`FULL`; the caller grows the arrays
(outside any walk: kernels read them in place) and asks again. A step is a pure function of
the stack, so asking again gives the same rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FULL = -1  # no row left: grow the store and ask again
REFUSED = -2  # the terminal is not allowed

M_ROWS, M_END, M_ERROR, M_VIEWS = 0, 1, 2, 3  # meta slots (M_VIEWS: the lexer views the caller has)
STATE, BELOW, HEIGHT, LOW, FLAG = 0, 1, 2, 3, 4  # the columns of ``rows``
N_FIELDS = 5

_NEW, _BUSY, DONE = 0, 1, 2  # row flags: viable terminals not computed, being computed, computed
_MAX_FRAMES = 256  # reductions nested this deep mean a cycle of empty reductions


@njit(cache=True, nogil=True, inline="always")
def _key(state: int, below: int) -> np.int64:
    return np.int64(state) << np.int64(32) | np.int64(below + 2)  # (never 0: an empty slot)


@njit(cache=True, nogil=True, inline="always")
def _slot(key: np.int64, mask: int) -> int:
    """The first hash slot of ``key`` (Fibonacci hashing)."""
    return np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) & mask


# The helpers take the arrays one by one: taking an array out of the store tuple costs a
# reference count, so only the entry points (which take the tuple) do, once a call.


@njit(cache=True, nogil=True)
def _intern(rows, h_keys, h_rows, aid, meta, state: int, below: int) -> int:
    key = _key(state, below)
    mask = h_keys.shape[0] - 1
    i = _slot(key, mask)
    while h_keys[i] != 0:
        if h_keys[i] == key:
            return h_rows[i]
        i = (i + 1) & mask
    r = meta[M_ROWS]
    if r >= rows.shape[0] or 2 * (r + 1) > h_keys.shape[0]:
        return FULL
    meta[M_ROWS] = r + 1
    h_keys[i] = key
    h_rows[i] = r
    rows[r, STATE] = state
    rows[r, BELOW] = below
    rows[r, HEIGHT] = 1 if below < 0 else rows[below, HEIGHT] + 1
    rows[r, FLAG] = _NEW
    aid[r] = -1
    return r


@njit(cache=True, nogil=True)
def _push(runs, rows, h_keys, h_rows, aid, meta, below: int, state: int) -> int:
    if below >= 0 and rows[below, STATE] == state and runs[state]:
        return below
    return _intern(rows, h_keys, h_rows, aid, meta, state, below)


@njit(cache=True, nogil=True)
def _reduce(rule, goto, runs, rows, h_keys, h_rows, aid, meta, state: int, below: int, r: int) -> tuple[int, int, int]:
    length = rule[r, 1]
    if length == 0:
        base = _push(runs, rows, h_keys, h_rows, aid, meta, below, state)
        if base < 0:
            return FULL, FULL, 0
    else:
        base = below
        for _ in range(length - 1):
            base = rows[base, BELOW]
    top = goto[rows[base, STATE], rule[r, 0]]
    if rows[base, STATE] == top and runs[top]:
        return top, rows[base, BELOW], rows[base, HEIGHT]
    return top, base, rows[base, HEIGHT]


@njit(cache=True, nogil=True)
def _viable(shift_words, red_ptr, red_rule, red_look, rule, goto, runs, rows, bits, h_keys, h_rows, aid, meta, row: int) -> bool:
    if rows[row, FLAG] == DONE:
        return True
    words = bits.shape[1]
    f_row = np.empty(_MAX_FRAMES, dtype=np.int32)
    f_k = np.empty(_MAX_FRAMES, dtype=np.int32)
    f_low = np.empty(_MAX_FRAMES, dtype=np.int64)
    f_read = np.empty(_MAX_FRAMES, dtype=np.int64)  # the pending reduction's goto height
    f_bits = np.empty((_MAX_FRAMES, words), dtype=np.uint64)
    d = 0
    f_row[0] = row
    while True:
        # open frame d
        r = f_row[d]
        s = rows[r, STATE]
        rows[r, FLAG] = _BUSY
        f_k[d] = red_ptr[s]
        f_bits[d] = shift_words[s]
        below = rows[r, BELOW]
        f_low[d] = 1 if below < 0 else rows[below, HEIGHT] + 1
        opened = False
        while not opened:
            r = f_row[d]
            s = rows[r, STATE]
            k = f_k[d]
            if k == red_ptr[s + 1]:
                bits[r] = f_bits[d]
                rows[r, LOW] = f_low[d]
                rows[r, FLAG] = DONE
                if d == 0:
                    return True
                d -= 1  # fold the finished frame into its parent's pending reduction
                k = f_k[d]
                for w in range(words):
                    f_bits[d, w] |= red_look[k, w] & bits[r, w]
                f_low[d] = min(f_low[d], f_read[d], rows[r, LOW])
                f_k[d] = k + 1
                continue
            adds = False
            for w in range(words):
                if red_look[k, w] & ~f_bits[d, w]:
                    adds = True
            if not adds:  # (it could add no terminal: nothing below is read for it)
                f_k[d] = k + 1
                continue
            top, base, read = _reduce(rule, goto, runs, rows, h_keys, h_rows, aid, meta, s, rows[r, BELOW], red_rule[k])
            nxt = FULL if top < 0 else _intern(rows, h_keys, h_rows, aid, meta, top, base)
            if nxt < 0 or rows[nxt, FLAG] == _BUSY or d + 1 == _MAX_FRAMES:
                if nxt >= 0:
                    meta[M_ERROR] = 1
                for e in range(d + 1):  # (left to be computed again)
                    rows[f_row[e], FLAG] = _NEW
                return False
            if rows[nxt, FLAG] == DONE:
                for w in range(words):
                    f_bits[d, w] |= red_look[k, w] & bits[nxt, w]
                f_low[d] = min(f_low[d], read, rows[nxt, LOW])
                f_k[d] = k + 1
                continue
            f_read[d] = read
            d += 1
            f_row[d] = nxt
            opened = True


@njit(cache=True, nogil=True)
def _scan(
    action, shift_words, red_ptr, red_rule, red_look, rule, goto, runs, rows, bits, h_keys, h_rows, aid, meta, child, child_low,
    row: int, t: int,
) -> tuple[int, int]:
    if not _viable(shift_words, red_ptr, red_rule, red_look, rule, goto, runs, rows, bits, h_keys, h_rows, aid, meta, row):
        return FULL, 0
    # (whether ``t`` is allowed here was read from ``rows[row, LOW]`` up; callers that
    # need it add that themselves: the grammar's walks key their results by the allowed set)
    low = rows[row, HEIGHT]
    nxt = REFUSED
    if bits[row, t >> 6] >> np.uint64(t & 63) & np.uint64(1):
        state, below = rows[row, STATE], rows[row, BELOW]
        while True:
            a = action[state, t]
            if a >= 0:
                under = row
                if state != rows[row, STATE] or below != rows[row, BELOW]:
                    under = _push(runs, rows, h_keys, h_rows, aid, meta, below, state)
                if under < 0:
                    return FULL, 0
                nxt = _push(runs, rows, h_keys, h_rows, aid, meta, under, a)
                if nxt < 0 or not _viable(
                    shift_words, red_ptr, red_rule, red_look, rule, goto, runs, rows, bits, h_keys, h_rows, aid, meta, nxt
                ):
                    return FULL, 0
                low = min(low, rows[nxt, LOW], rows[under, HEIGHT] if below < 0 else rows[below, HEIGHT])
                break
            if a == -1:  # (a viable terminal always ends in a shift)
                meta[M_ERROR] = 1
                nxt = REFUSED
                break
            state, below, _ = _reduce(rule, goto, runs, rows, h_keys, h_rows, aid, meta, state, below, -2 - a)
            if state < 0:
                return FULL, 0
    child[row, t] = nxt + 1
    child_low[row, t] = low
    return nxt, low


# ---- entry points: the store as one tuple (see the module docstring) -----------------------
@njit(cache=True, nogil=True)
def push(lr, below: int, state: int) -> int:
    """The stack ``below`` with ``state`` pushed: ``below`` itself where the state's run is
    one, else the interned row (FULL: no row left)."""
    return _push(lr[3], lr[8], lr[13], lr[14], lr[10], lr[15], below, state)


@njit(cache=True, nogil=True)
def viable(lr, row: int) -> bool:
    """Computes the viable terminals and ``low`` of ``row`` (and of the virtual stacks its
    reductions pass) unless known. False when a row was needed and none was left, or on a
    cycle of empty reductions (``meta`` then flags the error)."""
    return _viable(lr[4], lr[5], lr[6], lr[7], lr[1], lr[2], lr[3], lr[8], lr[9], lr[13], lr[14], lr[10], lr[15], row)


@njit(cache=True, nogil=True)
def scan(lr, row: int, t: int) -> tuple[int, int]:
    """The row after terminal ``t`` on stack ``row`` (REFUSED: not allowed; FULL: no row
    left) and the lowest height the step read; written to ``child`` / ``child_low`` too."""
    return _scan(
        lr[0], lr[4], lr[5], lr[6], lr[7], lr[1], lr[2], lr[3], lr[8], lr[9], lr[13], lr[14], lr[10], lr[15], lr[11], lr[12], row, t
    )


@njit(cache=True, nogil=True)
def find_view(lr, row: int, allowed: np.ndarray) -> int:
    """The lexer view whose allowed terminals (rows of ``allowed``, as many as ``meta``
    says there are) are ``row``'s: its viable terminals but the end of input, with the
    ignored ones; -1 when there is none yet."""
    bits, meta, ignore = lr[9], lr[15], lr[16]
    end = meta[M_END]
    words = allowed.shape[1]
    want = np.empty(words, dtype=np.uint64)
    for w in range(words):
        x = bits[row, w] | ignore[w]
        if w == end >> 6:
            x &= ~(np.uint64(1) << np.uint64(end & 63))
        want[w] = x
    for v in range(meta[M_VIEWS]):
        same = True
        for w in range(words):
            if allowed[v, w] != want[w]:
                same = False
                break
        if same:
            return v
    return -1


@njit(cache=True)
def rehash(lr) -> None:
    """Re-enters every row in the (new, all 0) hash of ``lr``."""
    rows, h_keys, h_rows, meta = lr[8], lr[13], lr[14], lr[15]
    mask = h_keys.shape[0] - 1
    for r in range(meta[M_ROWS]):
        key = _key(rows[r, STATE], rows[r, BELOW])
        i = _slot(key, mask)
        while h_keys[i] != 0:
            i = (i + 1) & mask
        h_keys[i] = key
        h_rows[i] = r
