"""The subset construction (NFA → DFA over bytes) as a numba kernel.

The NFA is passed as CSR arrays (empty moves; byte-range moves). Each DFA state is a sorted
set of NFA states, kept in one flat array and found again through an open-addressing hash
table.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.typed import Dict

from .nfa import ByteNFA


@njit(cache=True)
def _closure(seeds, n_seeds, eps_ptr, eps_dst, stamp, mark, stack, out):
    """Writes the empty-move closure of seeds[:n_seeds] into ``out`` (unsorted) and returns
    its size; ``stack`` has room for every NFA state (each is pushed at most once)."""
    size = 0
    top = 0
    for k in range(n_seeds + len(stamp)):
        if k < n_seeds:  # the seeds first, then whatever the stack holds
            s = seeds[k]
            if stamp[s] == mark:
                continue
            stamp[s] = mark
        elif top > 0:
            top -= 1
            s = stack[top]
        else:
            break
        out[size] = s
        size += 1
        for j in range(eps_ptr[s], eps_ptr[s + 1]):
            t = eps_dst[j]
            if stamp[t] != mark:
                stamp[t] = mark
                stack[top] = t
                top += 1
    return size


@njit(cache=True)
def _set_hash(members, size):
    """A hash of the set ``members[:size]`` that ignores their order (a sum of mixed members)."""
    h = np.uint64(0)
    for k in range(size):
        z = np.uint64(members[k]) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h += z ^ (z >> np.uint64(31))
    return np.int64(h >> np.uint64(1))


@njit(cache=True)
def _sort_small(a, size):
    """Sorts ``a[:size]`` in place (insertion sort below 16 items)."""
    if size >= 16:
        a[:size].sort()
        return
    for k in range(1, size):
        x = a[k]
        j = k - 1
        while j >= 0 and a[j] > x:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = x


@njit(cache=True)
def _find(slots, hashes, offsets, members, size, h, stamp, mark):
    """The DFA state whose NFA subset is the set of states stamped ``mark`` (``size`` of
    them, hash ``h``) in the open-addressing table ``slots``, or -1; and the slot where it
    is, or where it would go. Comparing against the stamps needs no sorted subsets."""
    mask = len(slots) - 1
    slot = h & mask
    while slots[slot] >= 0:
        c = slots[slot]
        if hashes[c] == h and offsets[c + 1] - offsets[c] == size:
            same = True
            for k in range(offsets[c], offsets[c + 1]):
                if stamp[members[k]] != mark:
                    same = False
                    break
            if same:
                return c, slot
        slot = (slot + 1) & mask
    return -1, slot


@njit(cache=True)
def _rehashed(hashes, count, n_slots):
    slots = np.full(n_slots, -1, dtype=np.int64)
    mask = n_slots - 1
    for c in range(count):
        slot = hashes[c] & mask
        while slots[slot] >= 0:
            slot = (slot + 1) & mask
        slots[slot] = c
    return slots


@njit(cache=True)
def subset_construction(eps_ptr, eps_dst, edge_ptr, edge_lo, edge_hi, edge_dst, start, final, max_states):
    """Returns (transitions int32 (m, 256), accepting bool (m,), flat members, offsets);
    an empty offsets array when more than ``max_states`` states would be needed. A state's
    members are its NFA subset, in no particular order.

    For each DFA state, the bytes are cut into intervals at the bounds of the moves leaving
    it (sorted when few, marked over the byte range when many), and each move's target is
    put in the bucket of every interval it covers; a bucket's closure is the DFA state of
    those bytes. A bucket of one NFA state, the usual case, reuses that state's DFA state
    once known. Rows are filled when their state is made: no table-wide fill, no copies
    while the table grows up to the NFA's size."""
    n = len(eps_ptr) - 1
    stamp = np.zeros(n, dtype=np.int64)
    mark = 0
    buf = np.empty(n, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    seeds = np.empty(max(16, len(edge_dst)), dtype=np.int64)
    members = np.empty(max(1024, n), dtype=np.int64)  # (the start's closure may hold them all)
    cap = min(max(64, n + 1), max_states + 1)
    offsets = np.zeros(cap + 1, dtype=np.int64)
    trans = np.empty((cap, 256), dtype=np.int32)
    slots = np.full(1024, -1, dtype=np.int64)
    hashes = np.zeros(cap, dtype=np.int64)
    single = np.full(n, -1, dtype=np.int64)
    seeds[0] = start
    mark += 1
    size = _closure(seeds, 1, eps_ptr, eps_dst, stamp, mark, stack, buf)
    members[:size] = buf[:size]
    offsets[1] = size
    hashes[0] = _set_hash(buf, size)
    slots[hashes[0] & (len(slots) - 1)] = 0
    trans[0, :] = -1
    count = 1
    n_edges = len(edge_dst)
    points = np.empty(2 * n_edges + 2, dtype=np.int64)
    index_of = np.zeros(258, dtype=np.int64)
    bounds = np.zeros(258, dtype=np.bool_)
    iv_count = np.zeros(258, dtype=np.int64)  # at most 257 distinct bounds in 0..256
    iv_fill = np.zeros(258, dtype=np.int64)
    i = 0
    while i < count:
        lo_m, hi_m = offsets[i], offsets[i + 1]
        n_pts = 0
        for k in range(lo_m, hi_m):
            s = members[k]
            for j in range(edge_ptr[s], edge_ptr[s + 1]):
                points[n_pts] = edge_lo[j]
                points[n_pts + 1] = edge_hi[j] + 1
                n_pts += 2
        if n_pts == 0:
            i += 1
            continue
        n_iv = 0  # distinct points; interval v is [points[v], points[v + 1])
        if n_pts <= 48:
            _sort_small(points, n_pts)
            for k in range(n_pts):
                if k == 0 or points[k] != points[k - 1]:
                    points[n_iv] = points[k]
                    index_of[points[k]] = n_iv
                    iv_count[n_iv] = 0
                    n_iv += 1
        else:  # many moves: mark the bounds over the byte range instead of sorting them
            for k in range(n_pts):
                bounds[points[k]] = True
            for a in range(257):
                if bounds[a]:
                    bounds[a] = False
                    points[n_iv] = a
                    index_of[a] = n_iv
                    iv_count[n_iv] = 0
                    n_iv += 1
        total = 0
        for k in range(lo_m, hi_m):
            s = members[k]
            for j in range(edge_ptr[s], edge_ptr[s + 1]):
                for v in range(index_of[edge_lo[j]], index_of[edge_hi[j] + 1]):
                    iv_count[v] += 1
                    total += 1
        if total > len(seeds):
            seeds = np.empty(2 * total, dtype=np.int64)
        filled = 0
        for v in range(n_iv):
            iv_fill[v] = filled
            filled += iv_count[v]
        for k in range(lo_m, hi_m):
            s = members[k]
            for j in range(edge_ptr[s], edge_ptr[s + 1]):
                for v in range(index_of[edge_lo[j]], index_of[edge_hi[j] + 1]):
                    seeds[iv_fill[v]] = edge_dst[j]
                    iv_fill[v] += 1
        for v in range(n_iv - 1):
            n_seeds = iv_count[v]
            if n_seeds == 0:
                continue
            first = iv_fill[v] - n_seeds
            target = -1
            if n_seeds == 1:
                target = single[seeds[first]]
            if target < 0:
                mark += 1
                size = _closure(seeds[first : first + n_seeds], n_seeds, eps_ptr, eps_dst, stamp, mark, stack, buf)
                h = _set_hash(buf, size)
                target, slot = _find(slots, hashes, offsets, members, size, h, stamp, mark)
                if target < 0:
                    if count >= max_states:
                        return trans[:0], np.zeros(0, dtype=np.bool_), members[:0], offsets[:0]
                    target = count
                    count += 1
                    if count + 1 > len(offsets):
                        offsets = np.concatenate((offsets, np.zeros(len(offsets), dtype=np.int64)))
                    if count > len(hashes):
                        hashes = np.concatenate((hashes, np.zeros(len(hashes), dtype=np.int64)))
                        grown = np.empty((2 * len(trans), 256), dtype=np.int32)
                        grown[: len(trans)] = trans
                        trans = grown
                    trans[target, :] = -1
                    end = offsets[target] + size
                    while end > len(members):
                        members = np.concatenate((members, np.empty(len(members), dtype=np.int64)))
                    members[offsets[target] : end] = buf[:size]
                    offsets[target + 1] = end
                    hashes[target] = h
                    slots[slot] = target
                    if 2 * count > len(slots):
                        slots = _rehashed(hashes, count, 2 * len(slots))
                if n_seeds == 1:
                    single[seeds[first]] = target
            for x in range(points[v], points[v + 1]):
                trans[i, x] = target
        i += 1
    accepting = np.zeros(count, dtype=np.bool_)
    for q in range(count):
        for k in range(offsets[q], offsets[q + 1]):
            if members[k] == final:
                accepting[q] = True
                break
    out = trans[:count]
    if 2 * count < len(trans):
        out = out.copy()
    return out, accepting, members[: offsets[count]], offsets[: count + 1]


@njit(cache=True)
def nfa_co_reachable(eps_ptr, eps_dst, edge_ptr, edge_dst, finals):
    """Whether one of the states ``finals`` can be reached from each NFA state (a search
    backwards over the CSR moves)."""
    n = len(eps_ptr) - 1
    into = np.zeros(n + 1, dtype=np.int64)
    for j in range(len(eps_dst)):
        into[eps_dst[j] + 1] += 1
    for j in range(len(edge_dst)):
        into[edge_dst[j] + 1] += 1
    for x in range(n):
        into[x + 1] += into[x]
    fill = into[:n].copy()
    src = np.empty(into[n], dtype=np.int64)
    for s in range(n):
        for j in range(eps_ptr[s], eps_ptr[s + 1]):
            src[fill[eps_dst[j]]] = s
            fill[eps_dst[j]] += 1
        for j in range(edge_ptr[s], edge_ptr[s + 1]):
            src[fill[edge_dst[j]]] = s
            fill[edge_dst[j]] += 1
    seen = np.zeros(n, dtype=np.bool_)
    for x in finals:
        if x >= 0:
            seen[x] = True
    return _reach_backwards(into, src, seen)


@njit(cache=True)
def _reach_backwards(ptr, src, marked):
    """Marks in ``marked`` (in place) every state from which a marked state can be reached;
    ``src[ptr[t]:ptr[t + 1]]`` are the states with a move into ``t``."""
    n = len(marked)
    stack = np.empty(n, dtype=np.int64)
    top = 0
    for q in range(n):
        if marked[q]:
            stack[top] = q
            top += 1
    while top > 0:
        top -= 1
        t = stack[top]
        for j in range(ptr[t], ptr[t + 1]):
            q = src[j]
            if not marked[q]:
                marked[q] = True
                stack[top] = q
                top += 1
    return marked


@njit(cache=True)
def subsets_meeting(members, offsets, flags):
    """Per DFA state, whether one of its NFA states (``members[offsets[q]:offsets[q + 1]]``)
    has its flag set."""
    n = len(offsets) - 1
    out = np.zeros(n, dtype=np.bool_)
    for q in range(n):
        for k in range(offsets[q], offsets[q + 1]):
            if flags[members[k]]:
                out[q] = True
                break
    return out


@njit(cache=True)
def subset_terminals(members, offsets, live_term, final_term, words):
    """Per DFA state (NFA subsets ``members[offsets[q]:offsets[q + 1]]``), the terminals still
    live and the terminals accepted, as rows of uint64 words: NFA state ``x`` makes terminal
    ``live_term[x]`` live and accepts ``final_term[x]`` (-1: none)."""
    n = len(offsets) - 1
    live = np.zeros((n, words), dtype=np.uint64)
    acc = np.zeros((n, words), dtype=np.uint64)
    one = np.uint64(1)
    for q in range(n):
        for k in range(offsets[q], offsets[q + 1]):
            x = members[k]
            t = live_term[x]
            if t >= 0:
                live[q, t >> 6] |= one << np.uint64(t & 63)
            t = final_term[x]
            if t >= 0:
                acc[q, t >> 6] |= one << np.uint64(t & 63)
    return live, acc


@njit(cache=True)
def distinct_columns(trans):
    """The first byte of each group of equal columns of ``trans`` (n, 256), ascending, and
    those columns as int64 (n, k): bytes every state treats alike folded into one. Reads the
    table row by row (a transpose of a big table is what made this slow)."""
    n, width = trans.shape
    h = np.zeros(width, dtype=np.uint64)
    prime = np.uint64(1099511628211)
    for q in range(n):
        for b in range(width):
            h[b] = (h[b] ^ np.uint64(trans[q, b] + 2)) * prime
    # each byte's candidate: the first byte with the same hash; then one row-major pass
    # checks every candidate (a byte whose column differs keeps its own, so a hash
    # collision costs a duplicate column, never a wrong fold)
    rep = np.arange(width)
    for b in range(width):
        for c in range(b):
            if rep[c] == c and h[c] == h[b]:
                rep[b] = c
                break
    for q in range(n):
        for b in range(width):
            c = rep[b]
            if c != b and trans[q, c] != trans[q, b]:
                rep[b] = b
    keep = np.zeros(width, dtype=np.int64)
    k = 0
    for b in range(width):
        if rep[b] == b:
            keep[k] = b
            k += 1
    out = np.empty((n, k), dtype=np.int64)
    for q in range(n):
        for j in range(k):
            out[q, j] = trans[q, keep[j]]
    return keep[:k], out


@njit(cache=True)
def quotient_table(trans, reps, state_class):
    """Rows ``reps`` of ``trans`` with each target ``t`` replaced by ``state_class[t]`` (a
    negative target stays -1): the transition table of a quotient automaton, int32."""
    width = trans.shape[1]
    out = np.empty((len(reps), width), dtype=np.int32)
    for i in range(len(reps)):
        r = reps[i]
        for b in range(width):
            t = trans[r, b]
            out[i, b] = -1
            if t >= 0:
                out[i, b] = state_class[t]
    return out


@njit(cache=True)
def repeat_table(step, final, local, top, unbounded):
    """The table of :func:`structgen.automata.byte_dfa.repeat_single`: block ``k`` (count
    ``k``) holds the unit's moves (``step``: its non-final states' rows, ``local``: their
    places in a block); a move into a final state goes to the next block's first state (the
    last block's own with ``unbounded``, else nowhere)."""
    width = step.shape[0]
    out = np.full(((top + 1) * width, 256), -1, dtype=np.int32)
    for k in range(top + 1):
        nxt = -1
        if k < top:
            nxt = (k + 1) * width
        elif unbounded:
            nxt = k * width
        for i in range(width):
            row = k * width + i
            for b in range(256):
                t = step[i, b]
                if t < 0:
                    continue
                if final[t]:
                    out[row, b] = nxt
                else:
                    out[row, b] = k * width + local[t]
    return out


def warm_up() -> None:
    nfa = ByteNFA.from_moves(2, 0, 1, np.array([[1, 0]]), np.array([[0, 97, 97, 1]]))
    arrays = nfa.arrays()
    _, _, members, offsets = subset_construction(*arrays, 0, 1, 10)
    subsets_meeting(members, offsets, nfa_co_reachable(arrays[0], arrays[1], arrays[2], arrays[5], np.ones(1, dtype=np.int64)))
    t = np.zeros((1, 256), dtype=np.int32)
    acc = np.ones(1, dtype=np.bool_)
    product_construction(t, acc, t, acc, True, 10)
    live_states(t, acc)
    moore_classes(np.zeros((1, 1), dtype=np.int64), acc)
    moore_refine(np.zeros((1, 1), dtype=np.int64), np.zeros(1, dtype=np.int64))  # also called from Python
    moore_refine(np.zeros((1, 1), dtype=np.int64), np.zeros(1, dtype=np.int64), 1)
    ones = np.ones(1, dtype=np.int64)
    distinct_columns(np.zeros((1, 256), dtype=np.int32))
    repeat_table(np.zeros((1, 256), dtype=np.int64), np.zeros(1, dtype=np.bool_), np.zeros(2, dtype=np.int64), 1, False)
    quotient_table(np.zeros((1, 256), dtype=np.int32), ones * 0, np.zeros(1, dtype=np.int32))  # as build_lexer calls it
    subset_terminals(ones * 0, np.array([0, 1]), ones * 0, ones * 0, 1)
    words = np.ones((1, 1), dtype=np.uint64)
    restricted_representatives(np.zeros((1, 1), dtype=np.int64), words, words, words[0])


@njit(cache=True)
def live_states(trans, accepting):
    """States from which an accepting state can be reached (a search backwards over the moves)."""
    ptr, src = _predecessors(trans)
    return _reach_backwards(ptr, src, accepting.copy())


DENSE_PAIRS = 1 << 22  # products of fewer state pairs number them in an array, not a dict


@njit(cache=True)
def joint_byte_classes(ta, tb):
    """Each byte's class (bytes whose columns are equal in both tables share one) and each
    class's first byte: (class_of (256,), firsts (k,))."""
    h = np.zeros(256, dtype=np.uint64)
    prime = np.uint64(1099511628211)
    for table in (ta, tb):
        for q in range(table.shape[0]):
            for b in range(256):
                h[b] = (h[b] ^ np.uint64(table[q, b] + 2)) * prime
    rep = np.arange(256)
    for b in range(256):
        for c in range(b):
            if rep[c] == c and h[c] == h[b]:
                rep[b] = c
                break
    for table in (ta, tb):  # a hash collision costs a class of its own, never a wrong one
        for q in range(table.shape[0]):
            for b in range(256):
                c = rep[b]
                if c != b and table[q, c] != table[q, b]:
                    rep[b] = b
    class_of = np.empty(256, dtype=np.int64)
    firsts = np.empty(256, dtype=np.int64)
    k = 0
    for b in range(256):
        if rep[b] == b:
            class_of[b] = k
            firsts[k] = b
            k += 1
        else:
            class_of[b] = class_of[rep[b]]
    return class_of, firsts[:k]


@njit(cache=True)
def product_construction(ta, acc_a, tb, acc_b, difference, max_states):
    """Pairs of states reachable from (0, 0): L(a) ∩ L(b), or L(a) minus L(b) with
    ``difference`` (then b may die: -1). Returns (transitions, accepting), or empty arrays
    past ``max_states``. One move per class of bytes both tables treat alike; pairs are
    numbered through an array when there are few enough, else a dict."""
    nb1 = tb.shape[0] + 1
    class_of, firsts = joint_byte_classes(ta, tb)
    k = len(firsts)
    dense = ta.shape[0] * nb1 <= DENSE_PAIRS
    slot = np.full(ta.shape[0] * nb1 if dense else 1, -1, dtype=np.int32)
    index = Dict.empty(key_type=types.int64, value_type=types.int64)
    pairs = np.empty((64, 2), dtype=np.int64)
    compact = np.full((64, k), -1, dtype=np.int32)
    pairs[0, 0] = 0
    pairs[0, 1] = 0
    if dense:
        slot[1] = 0
    else:
        index[1] = 0
    count = 1
    i = 0
    while i < count:
        p = pairs[i, 0]
        q = pairs[i, 1]
        for j in range(k):
            byte = firsts[j]
            na = ta[p, byte]
            if na < 0:
                continue
            nb = -1
            if q >= 0:
                nb = tb[q, byte]
            if nb < 0 and not difference:
                continue
            key = na * nb1 + nb + 1
            target = -1
            if dense:
                target = slot[key]
            elif key in index:
                target = index[key]
            if target < 0:
                if count >= max_states:
                    return np.empty((0, 256), dtype=np.int32), np.zeros(0, dtype=np.bool_)
                target = count
                if dense:
                    slot[key] = target
                else:
                    index[key] = target
                count += 1
                if count > pairs.shape[0]:
                    pairs = np.concatenate((pairs, np.empty_like(pairs)))
                    compact = np.concatenate((compact, np.full(compact.shape, -1, dtype=np.int32)))
                pairs[target, 0] = na
                pairs[target, 1] = nb
            compact[i, j] = target
        i += 1
    trans = np.empty((count, 256), dtype=np.int32)
    for x in range(count):
        for b in range(256):
            trans[x, b] = compact[x, class_of[b]]
    accepting = np.zeros(count, dtype=np.bool_)
    for x in range(count):
        p = pairs[x, 0]
        q = pairs[x, 1]
        if difference:
            accepting[x] = acc_a[p] and (q < 0 or not acc_b[q])
        else:
            accepting[x] = acc_a[p] and acc_b[q]
    return trans, accepting


@njit(cache=True)
def _signature_equal(columns, cls, a, b):
    if cls[a] != cls[b]:
        return False
    for c in range(columns.shape[1]):
        x, y = columns[a, c], columns[b, c]
        cx = -1  # plain branches: numba compiles conditional expressions into slow code
        if x >= 0:
            cx = cls[x]
        cy = -1
        if y >= 0:
            cy = cls[y]
        if cx != cy:
            return False
    return True


@njit(cache=True)
def moore_classes(columns, accepting):
    """The coarsest partition of a trimmed DFA's states (rows of its distinct byte columns,
    -1 dead) that respects acceptance. State 0's class is 0."""
    n = columns.shape[0]
    cls = np.zeros(n, dtype=np.int64)
    for q in range(n):
        if accepting[q] != accepting[0]:
            cls[q] = 1
    return moore_refine(columns, cls)


@njit(cache=True)
def _signature_hash(columns, cls, q):
    """A hash of state ``q``'s class and its successors' classes."""
    h = np.uint64(cls[q] + 1) * np.uint64(0x9E3779B97F4A7C15)
    for c in range(columns.shape[1]):
        t = columns[q, c]
        v = 1
        if t >= 0:
            v = cls[t] + 2
        h = (h ^ np.uint64(v)) * np.uint64(1099511628211)
    return h


@njit(cache=True)
def _predecessors(columns):
    """CSR of each state's predecessors (one entry per move into it)."""
    n, k = columns.shape
    ptr = np.zeros(n + 1, dtype=np.int64)
    for q in range(n):
        for c in range(k):
            if columns[q, c] >= 0:
                ptr[columns[q, c] + 1] += 1
    for t in range(n):
        ptr[t + 1] += ptr[t]
    fill = ptr[:n].copy()
    preds = np.empty(ptr[n], dtype=np.int64)
    for q in range(n):
        for c in range(k):
            t = columns[q, c]
            if t >= 0:
                preds[fill[t]] = q
                fill[t] += 1
    return ptr, preds


@njit(cache=True)
def moore_refine(columns, cls, max_rounds=-1):
    """Refines the classes ``cls`` (numbered from 0) of a DFA's states (rows of ``columns``,
    targets as row numbers, -1 dead) to the coarsest partition whose classes agree on their
    successors' classes. Returns (classes, count), classes numbered by first state (state
    0's class is 0). With ``max_rounds`` >= 0, stops after that many rounds: states still
    together then agree on every string of at most that many bytes (Moore's k-th partition).

    Moore's rounds, each over the *dirty* states only: those with a successor whose class
    changed in the previous round (every state in the first). The members of a class that
    are not dirty still agree with each other and keep the class; the dirty ones are
    grouped by signature (class and successors' classes; a hash table with exact checks),
    and each group takes a new class, but for one group that keeps it when the whole class
    is dirty. Deep automata (long bounded strings) then cost the states that change per
    round, not all of them."""
    n = columns.shape[0]
    count = 0
    for q in range(n):
        if cls[q] + 1 > count:
            count = cls[q] + 1
    ptr, preds = _predecessors(columns)
    size_of = np.zeros(n + 1, dtype=np.int64)  # members per class
    for q in range(n):
        size_of[cls[q]] += 1
    dirty_of = np.zeros(n + 1, dtype=np.int64)  # dirty members per class, this round
    keeper = np.full(n + 1, -1, dtype=np.int64)  # the group keeping the class's id, this round
    n_slots = 1
    while n_slots < 2 * n:
        n_slots *= 2
    mask = n_slots - 1
    slots = np.full(n_slots, -1, dtype=np.int64)
    g_hash = np.empty(n, dtype=np.uint64)
    g_rep = np.empty(n, dtype=np.int64)
    g_slot = np.empty(n, dtype=np.int64)
    g_id = np.empty(n, dtype=np.int64)
    group = np.empty(n, dtype=np.int64)
    changed = np.empty(n, dtype=np.int64)
    changed_to = np.empty(n, dtype=np.int64)
    stamp = np.zeros(n, dtype=np.int64)
    dirty = np.arange(n)
    next_dirty = np.empty(n, dtype=np.int64)
    n_dirty = n
    rnd = 0
    while n_dirty > 0 and rnd != max_rounds:
        rnd += 1
        n_groups = 0
        for x in range(n_dirty):
            q = dirty[x]
            dirty_of[cls[q]] += 1
            h = _signature_hash(columns, cls, q)
            slot = np.int64(h >> np.uint64(8)) & mask
            while True:
                g = slots[slot]
                if g < 0:
                    slots[slot] = n_groups
                    g_slot[n_groups] = slot
                    g_hash[n_groups] = h
                    g_rep[n_groups] = q
                    group[x] = n_groups
                    n_groups += 1
                    break
                if g_hash[g] == h and _signature_equal(columns, cls, q, g_rep[g]):
                    group[x] = g
                    break
                slot = (slot + 1) & mask
        for g in range(n_groups):
            c = cls[g_rep[g]]
            slots[g_slot[g]] = -1
            if keeper[c] == -1 and dirty_of[c] == size_of[c]:
                keeper[c] = g
                g_id[g] = c
            else:
                g_id[g] = count
                count += 1
        n_changed = 0
        for x in range(n_dirty):
            q = dirty[x]
            c = cls[q]
            dirty_of[c] = 0
            keeper[c] = -1
            if g_id[group[x]] != c:
                changed[n_changed] = q
                changed_to[n_changed] = g_id[group[x]]
                n_changed += 1
        n_dirty = 0
        for x in range(n_changed):
            q = changed[x]
            size_of[cls[q]] -= 1
            size_of[changed_to[x]] += 1
            cls[q] = changed_to[x]
            for j in range(ptr[q], ptr[q + 1]):
                p = preds[j]
                if stamp[p] != rnd:
                    stamp[p] = rnd
                    next_dirty[n_dirty] = p
                    n_dirty += 1
        dirty, next_dirty = next_dirty, dirty
    # classes numbered by first state
    remap = np.full(count, -1, dtype=np.int64)
    m = 0
    for q in range(n):
        if remap[cls[q]] < 0:
            remap[cls[q]] = m
            m += 1
        cls[q] = remap[cls[q]]
    return cls, m


@njit(cache=True)
def _row_hash(live, accepts, mask, q):
    h = np.uint64(0x9E3779B97F4A7C15)
    if q == 0:
        h = np.uint64(0x51AF3B9D27C4E1B5)
    for w in range(live.shape[1]):
        h = (h ^ (live[q, w] & mask[w])) * np.uint64(1099511628211)
        h = (h ^ (accepts[q, w] & mask[w])) * np.uint64(1099511628211)
    return h


@njit(cache=True)
def _rows_equal(live, accepts, mask, a, b):
    if (a == 0) != (b == 0):
        return False
    for w in range(live.shape[1]):
        if (live[a, w] ^ live[b, w]) & mask[w] or (accepts[a, w] ^ accepts[b, w]) & mask[w]:
            return False
    return True


@njit(cache=True)
def restricted_representatives(columns, live, accepts, mask):
    """For each lexer state, the least state that behaves the same when only the terminals
    in the bitset ``mask`` (uint64 words) count, or -1 when none of them is live; state 0
    keeps its own class. ``columns``: the folded transition table (-1 dead). The classes
    start from equal masked live and accepted terminals (a hash table with exact checks)
    and are refined by :func:`moore_refine`."""
    n, k = columns.shape
    position = np.full(n, -1, dtype=np.int64)
    live_idx = np.empty(n, dtype=np.int64)
    m = 0
    for q in range(n):
        keep = q == 0
        for w in range(live.shape[1]):
            if live[q, w] & mask[w]:
                keep = True
        if keep:
            position[q] = m
            live_idx[m] = q
            m += 1
    rows = np.empty((m, k), dtype=np.int64)
    for i in range(m):
        q = live_idx[i]
        for c in range(k):
            t = columns[q, c]
            r = -1
            if t >= 0:
                r = position[t]
            rows[i, c] = r
    n_slots = 1
    while n_slots < 2 * m:
        n_slots *= 2
    slots = np.full(n_slots, -1, dtype=np.int64)
    first = np.empty(m, dtype=np.int64)  # each initial class's first state
    cls = np.empty(m, dtype=np.int64)
    n_cls = 0
    for i in range(m):
        q = live_idx[i]
        slot = np.int64(_row_hash(live, accepts, mask, q) >> np.uint64(8)) & (n_slots - 1)
        while True:
            c = slots[slot]
            if c < 0:
                slots[slot] = n_cls
                first[n_cls] = q
                cls[i] = n_cls
                n_cls += 1
                break
            if _rows_equal(live, accepts, mask, q, first[c]):
                cls[i] = c
                break
            slot = (slot + 1) & (n_slots - 1)
    classes, count = moore_refine(rows, cls)
    least = np.full(count, -1, dtype=np.int64)
    reps = np.full(n, -1, dtype=np.int32)
    for i in range(m):  # classes are numbered by first state: the least one
        c = classes[i]
        if least[c] < 0:
            least[c] = live_idx[i]
        reps[live_idx[i]] = least[c]
    return reps
