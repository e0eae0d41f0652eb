"""Code-point ranges to UTF-8 byte-range sequences.

A set of code points becomes a list of sequences, each a tuple of inclusive byte ranges
``((lo0, hi0), (lo1, hi1), ...)``: the set's UTF-8 encodings are exactly the byte strings
whose i-th byte lies in the i-th range of one sequence. Surrogates (U+D800..U+DFFF) have no
UTF-8 encoding and are never produced.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_CODE_POINT = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)

ByteRange = tuple[int, int]
ByteSequence = tuple[ByteRange, ...]


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorts inclusive ranges and merges those that overlap or touch."""
    merged: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def code_points_to_ranges(code_points: Iterable[int]) -> list[tuple[int, int]]:
    """Groups code points into sorted, merged inclusive ranges."""
    return merge_ranges((c, c) for c in code_points)


def complement_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """All encodable code points outside ``ranges`` (which must be merged)."""
    out = []
    start = 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = max(start, hi + 1)
    if start <= MAX_CODE_POINT:
        out.append((start, MAX_CODE_POINT))
    return remove_surrogates(out)


def remove_surrogates(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Cuts the surrogate block out of each range."""
    s_lo, s_hi = SURROGATES
    out = []
    for lo, hi in ranges:
        if hi < s_lo or lo > s_hi:
            out.append((lo, hi))
            continue
        if lo < s_lo:
            out.append((lo, s_lo - 1))
        if hi > s_hi:
            out.append((s_hi + 1, hi))
    return out


def utf8_sequences(lo: int, hi: int) -> list[ByteSequence]:
    """UTF-8 byte-range sequences for the code points ``lo..hi`` (surrogates skipped)."""
    out: list[ByteSequence] = []
    for a, b in remove_surrogates([(lo, hi)]):
        _split(a, b, out)
    return out


def ranges_to_sequences(ranges: Iterable[tuple[int, int]]) -> list[ByteSequence]:
    """UTF-8 byte-range sequences for a union of code-point ranges."""
    out: list[ByteSequence] = []
    for lo, hi in ranges:
        out.extend(utf8_sequences(lo, hi))
    return out


def _split(lo: int, hi: int, out: list[ByteSequence]) -> None:
    # Work list instead of recursion: ranges are split until each one's first and last
    # code point differ only in bytes that span their full continuation range.
    todo = [(lo, hi)]
    while todo:
        lo, hi = todo.pop()
        if lo > hi:
            continue
        split = False
        for boundary in (0x7F, 0x7FF, 0xFFFF):
            if lo <= boundary < hi:
                todo.append((boundary + 1, hi))
                todo.append((lo, boundary))
                split = True
                break
        if split:
            continue
        if hi <= 0x7F:
            out.append(((lo, hi),))
            continue
        for i in (1, 2, 3):
            mask = (1 << (6 * i)) - 1
            if (lo & ~mask) != (hi & ~mask):
                if lo & mask:
                    todo.append(((lo | mask) + 1, hi))
                    todo.append((lo, lo | mask))
                    split = True
                    break
                if (hi & mask) != mask:
                    todo.append((hi & ~mask, hi))
                    todo.append((lo, (hi & ~mask) - 1))
                    split = True
                    break
        if split:
            continue
        first = chr(lo).encode("utf-8")
        last = chr(hi).encode("utf-8")
        out.append(tuple(zip(first, last)))
