"""JSON numbers with bounds and ``multipleOf`` as exact digit-level automata.

Numbers are never written as ``-0``. Bounded ones (and multiples) are written without an
exponent (``1.5``, never ``15e-1``); a number without bounds may carry one (``1e-06``, as
Python's json writes small floats: :func:`any_decimal`). Bounds compare decimal strings
digit by digit, so ``"minimum": 0.1`` admits ``0.1000001`` and refuses ``0.0999``, exactly.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

import numpy as np

from ..automata.byte_dfa import DEAD, ByteDFA, product
from ..automata.expr_nfa import expr_to_nfa
from ..grammar.ir import Alt, Automaton, Bytes, Expr, Pattern, Repeat, Seq, literal

DIGIT = Bytes((((0x30, 0x39),),))
FRACTION = Seq((literal(b"."), Repeat(DIGIT, 1, None)))
OPTIONAL_FRACTION = Repeat(FRACTION, 0, 1)
OPTIONAL_EXPONENT = Repeat(Pattern(r"[eE][+-]?[0-9]+"), 0, 1)
# 1.0 is an integer; one zero only, so that a model cannot run away writing 1.000000...
INTEGER_FRACTION = Repeat(literal(b".0"), 0, 1)


class EmptyRange(ValueError):
    """No number satisfies the bounds."""


def _digits(lo: int, hi: int) -> Bytes:
    return Bytes((((0x30 + lo, 0x30 + hi),),))


def _alt(options: list[Expr]) -> Expr:
    if not options:
        raise EmptyRange("no number satisfies the bounds")
    return options[0] if len(options) == 1 else Alt(tuple(options))


def digit_ranges(lo: int, hi: int, width: int, base: int = 10) -> list[tuple[tuple[int, int], ...]]:
    """Fixed-width base-``base`` numbers lo..hi as tuples of digit ranges (most significant
    first): every number in the range is matched by exactly one tuple."""
    if width == 1:
        return [((lo, hi),)]
    unit = base ** (width - 1)
    lo_head, lo_rest = divmod(lo, unit)
    hi_head, hi_rest = divmod(hi, unit)
    if lo_head == hi_head:
        return [((lo_head, lo_head),) + t for t in digit_ranges(lo_rest, hi_rest, width - 1, base)]
    out = []
    if lo_rest:
        out += [((lo_head, lo_head),) + t for t in digit_ranges(lo_rest, unit - 1, width - 1, base)]
        lo_head += 1
    tail = []
    if hi_rest != unit - 1:
        tail = [((hi_head, hi_head),) + t for t in digit_ranges(0, hi_rest, width - 1, base)]
        hi_head -= 1
    if lo_head <= hi_head:
        out.append(((lo_head, hi_head),) + ((0, base - 1),) * (width - 1))
    return out + tail


def natural_range(lo: int, hi: int | None) -> Expr:
    """Decimal strings (no leading zeros) of the integers lo..hi (``hi=None``: unbounded)."""
    if lo < 0 or (hi is not None and hi < lo):
        raise EmptyRange(f"empty range {lo}..{hi}")
    options: list[Expr] = []
    top = len(str(hi)) if hi is not None else len(str(lo))
    for width in range(len(str(lo)), top + 1):
        a = max(lo, 10 ** (width - 1) if width > 1 else 0)
        b = min(hi, 10**width - 1) if hi is not None else 10**width - 1
        if a > b:
            continue
        for digits in digit_ranges(a, b, width):
            options.append(Seq(tuple(_digits(x, y) for x, y in digits)))
    if hi is None:  # every longer number
        options.append(Seq((_digits(1, 9), Repeat(DIGIT, top, None))))
    return _alt(options)


def integer_range(lo: int | None, hi: int | None) -> Expr:
    """Signed integers in lo..hi (None: unbounded), without ``-0``."""
    options: list[Expr] = []
    if hi is None or hi >= 0:
        options.append(natural_range(max(lo, 0) if lo is not None else 0, hi))
    if lo is None or lo < 0:
        top = -lo if lo is not None else None
        bottom = max(1, -hi) if hi is not None else 1
        if top is None or bottom <= top:
            options.append(Seq((literal(b"-"), natural_range(bottom, top))))
    return _alt(options)


# ---- decimals ----------------------------------------------------------------------------
def _split(bound: Decimal) -> tuple[int, str]:
    """A non-negative bound as (integer part, fractional digits without trailing zeros)."""
    text = format(bound, "f")
    whole, _, frac = text.partition(".")
    return int(whole), frac.rstrip("0")


def _magnitude_at_least(bound: Decimal, strict: bool) -> Expr:
    whole, frac = _split(bound)
    options: list[Expr] = [Seq((natural_range(whole + 1, None), OPTIONAL_FRACTION))]
    same = literal(str(whole).encode())
    nonzero_tail = Seq((Repeat(DIGIT), _digits(1, 9), Repeat(DIGIT)))
    if not frac:
        options.append(Seq((same, literal(b"."), nonzero_tail)) if strict else Seq((same, OPTIONAL_FRACTION)))
    else:
        tails: list[Expr] = []
        for j, ch in enumerate(frac):
            d = int(ch)
            if d < 9:
                tails.append(Seq((literal(frac[:j].encode()), _digits(d + 1, 9), Repeat(DIGIT))))
        tails.append(Seq((literal(frac.encode()), nonzero_tail)) if strict else Seq((literal(frac.encode()), Repeat(DIGIT))))
        options.append(Seq((same, literal(b"."), _alt(tails))))
    return _alt(options)


def _magnitude_at_most(bound: Decimal, strict: bool) -> Expr:
    whole, frac = _split(bound)
    options: list[Expr] = []
    if whole > 0:
        options.append(Seq((natural_range(0, whole - 1), OPTIONAL_FRACTION)))
    same = literal(str(whole).encode())
    zeros = Repeat(literal(b"0"), 1, None)
    if not frac:
        if not strict:
            options.append(Seq((same, Repeat(Seq((literal(b"."), zeros)), 0, 1))))
    else:
        tails: list[Expr] = []
        for j, ch in enumerate(frac):
            d = int(ch)
            if d > 0:
                tails.append(Seq((literal(frac[:j].encode()), _digits(0, d - 1), Repeat(DIGIT))))
            tails.append(Seq((literal(frac[:j].encode()), Repeat(literal(b"0"), 0 if j else 1, None))))
        if not strict:
            tails.append(Seq((literal(frac.encode()), Repeat(literal(b"0")))))
        options.append(Seq((same, Repeat(Seq((literal(b"."), _alt(tails))), 0, 1))))
    return _alt(options)


def _dfa(expr: Expr) -> ByteDFA:
    dfa = ByteDFA.from_nfa(expr_to_nfa(expr))
    if dfa is None:
        raise EmptyRange("no number satisfies the bounds")
    return dfa


def _intersect(a: ByteDFA, b: ByteDFA) -> ByteDFA:
    dfa = product(a, b)
    if dfa is None:
        raise EmptyRange("no number satisfies the bounds")
    return dfa


@lru_cache(maxsize=1)
def _positive() -> ByteDFA:
    return _dfa(_magnitude_at_least(Decimal(0), True))


def _at_least(bound: Decimal, strict: bool) -> ByteDFA:
    if bound > 0 or (bound == 0 and not strict):
        return _dfa(_magnitude_at_least(bound, strict))
    if bound == 0:  # strictly positive
        return _positive()
    negative = _intersect(_dfa(_magnitude_at_most(-bound, strict)), _positive())
    return _dfa(Alt((Seq((natural_range(0, None), OPTIONAL_FRACTION)), Seq((literal(b"-"), Automaton(negative))))))


def _at_most(bound: Decimal, strict: bool) -> ByteDFA:
    if bound > 0 or (bound == 0 and not strict):
        return _dfa(Alt((_magnitude_at_most(bound, strict), Seq((literal(b"-"), Automaton(_positive()))))))
    negative = _dfa(_magnitude_at_least(-bound, strict)) if bound < 0 else _positive()
    return _dfa(Seq((literal(b"-"), Automaton(negative))))


@lru_cache(maxsize=1)
def any_decimal() -> ByteDFA:
    """Any number, in any JSON number syntax (exponents too) but ``-0``."""
    non_negative = Seq((natural_range(0, None), OPTIONAL_FRACTION, OPTIONAL_EXPONENT))
    return _dfa(Alt((non_negative, Seq((literal(b"-"), Automaton(_positive()), OPTIONAL_EXPONENT)))))


@lru_cache(maxsize=1024)
def decimal_range(lo: Decimal | None, lo_strict: bool, hi: Decimal | None, hi_strict: bool) -> ByteDFA:
    """Numbers (no exponent, no ``-0``) within the bounds (remembered: schemas repeat bounds)."""
    parts = []
    if lo is not None:
        parts.append(_at_least(lo, lo_strict))
    if hi is not None:
        parts.append(_at_most(hi, hi_strict))
    if not parts:
        return _dfa(Alt((Seq((natural_range(0, None), OPTIONAL_FRACTION)), Seq((literal(b"-"), Automaton(_positive()))))))
    return parts[0] if len(parts) == 1 else _intersect(parts[0], parts[1])


# ---- multipleOf --------------------------------------------------------------------------
MAX_MODULUS = 100_000


def multiple_of(step: Decimal, integer: bool) -> ByteDFA:
    """Numbers (no exponent, no ``-0``) that are integer multiples of ``step`` (> 0). With
    ``integer``, only integers (written without a fraction). Refuses moduli above
    :data:`MAX_MODULUS` (raises ValueError)."""
    sign, digits, exponent = step.normalize().as_tuple()
    scale = max(0, -exponent)  # value * 10**scale must be an integer multiple of p
    p = int(step * (10**scale))
    if p > MAX_MODULUS:
        raise ValueError(f"multipleOf {step} needs {p} remainder states (limit {MAX_MODULUS})")
    if integer:
        scale = 0  # (fractions are not written)
    # states: 0 start, 1 after '-', 2 after a lone '0', then (r, f, phase) packed
    # phase 0: integer part; 1: just read '.'; 2: in the fraction (f digits so far)
    index: dict[tuple, int] = {}
    rows: list[np.ndarray] = []
    accepting: list[bool] = []

    def state(key: tuple) -> int:
        found = index.get(key)
        if found is None:
            found = index[key] = len(rows)
            rows.append(np.full(256, DEAD, dtype=np.int32))
            accepting.append(False)
            todo.append(key)
        return found

    def ok(r: int, f: int) -> bool:
        return (r * 10 ** (scale - f)) % p == 0

    todo: list[tuple] = []
    start = state(("start",))
    while todo:
        key = todo.pop()
        q = index[key]
        row = rows[q]
        kind = key[0]
        if kind in ("start", "minus"):
            if kind == "start":
                row[ord("-")] = state(("minus",))
            row[ord("0")] = state(("int", 0, True))
            for d in range(1, 10):
                row[0x30 + d] = state(("int", d % p, False))
        elif kind == "int":
            _, r, zero = key
            accepting[q] = ok(r, 0)
            if not zero:
                for d in range(10):
                    row[0x30 + d] = state(("int", (10 * r + d) % p, False))
            if not integer:
                row[ord(".")] = state(("dot", r, 0))
        else:  # "dot" (no digit yet) or "frac"
            _, r, f = key
            accepting[q] = kind == "frac" and ok(r, f)
            for d in range(10):
                if f < scale:
                    row[0x30 + d] = state(("frac", (10 * r + d) % p, f + 1))
                elif d == 0:
                    row[0x30] = state(("frac", r, f))
    del start
    dfa = ByteDFA.from_table(np.stack(rows), np.array(accepting, dtype=bool))
    if dfa is None:
        raise EmptyRange("no multiple of the step")
    return dfa

