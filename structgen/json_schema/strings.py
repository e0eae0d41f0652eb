"""JSON strings as byte-level grammar expressions.

A JSON string is a sequence of *characters*, each written either literally (UTF-8) or as an
escape. Schema keywords constrain the decoded characters (``pattern``, ``minLength``,
``format``, ``enum``), so every character set here is turned into the set of all the ways
JSON may write one of its characters, and the constraint holds however the model chooses
to write it. The encodings accepted are the ones JSON serialisers produce: printable ASCII
literally (``"`` and ``\\`` escaped), control characters as ``\\n``-style or ``\\u00XX``
escapes, and DEL or any non-ASCII character literally or as ``\\uXXXX`` (a surrogate pair above
U+FFFF), hex digits in either case.
"""

from __future__ import annotations

from functools import lru_cache

from interegular import patterns as ip

from ..automata.byte_dfa import ByteDFA, product
from ..automata.expr_nfa import expr_to_nfa
from ..automata.regex import is_escaped, strip_anchors
from ..automata.utf8 import MAX_CODE_POINT, merge_ranges, ranges_to_sequences, remove_surrogates
from ..errors import RegexError
from ..grammar.ir import EMPTY, Alt, Automaton, Bytes, Expr, Repeat, Seq, literal
from .pattern_text import Lookahead, LookaroundError, split_lookaheads, top_level_branches
from .numbers import digit_ranges

Ranges = tuple[tuple[int, int], ...]

_SHORT_ESCAPES = {0x22: b'\\"', 0x5C: b"\\\\", 0x08: b"\\b", 0x0C: b"\\f", 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t"}
ALL_CHARS: Ranges = tuple(remove_surrogates([(0, MAX_CODE_POINT)]))
QUOTE = literal(b'"')


def intersect(a: Ranges, b: Ranges) -> Ranges:
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def subtract(a: Ranges, b: Ranges) -> Ranges:
    out = []
    for lo, hi in a:
        for blo, bhi in b:
            if bhi < lo or blo > hi:
                continue
            if blo > lo:
                out.append((lo, blo - 1))
            lo = bhi + 1
            if lo > hi:
                break
        if lo <= hi:
            out.append((lo, hi))
    return tuple(out)


@lru_cache(maxsize=8192)
def encode_chars(ranges: Ranges) -> Expr:
    """Every JSON encoding of one character from ``ranges`` (merged code-point ranges)."""
    options: list[Expr] = []
    literal_ok = ((0x20, 0x21), (0x23, 0x5B), (0x5D, MAX_CODE_POINT))
    plain = remove_surrogates(list(intersect(ranges, literal_ok)))
    if plain:
        options.append(Bytes(tuple(ranges_to_sequences(plain))))
    shorts = [seq for c, seq in _SHORT_ESCAPES.items() if intersect(ranges, ((c, c),))]
    if shorts:
        options.append(Bytes(tuple(tuple((b, b) for b in s) for s in sorted(shorts))))
    controls = subtract(intersect(ranges, ((0, 0x1F),)), tuple((c, c) for c in sorted(_SHORT_ESCAPES) if c < 0x20))
    bmp = remove_surrogates(list(intersect(ranges, ((0x7F, 0xFFFF),))))  # json.dumps escapes DEL too
    hex_ranges = tuple(controls) + tuple(bmp)
    if hex_ranges:
        options.append(Seq((literal(b"\\u"), _hex_expr(hex_ranges, 4))))
    astral = intersect(ranges, ((0x10000, MAX_CODE_POINT),))
    for lo, hi in astral:
        options.extend(_surrogate_pairs(lo, hi))
    if not options:
        raise ValueError("empty character set")
    return options[0] if len(options) == 1 else Alt(tuple(options))


def any_char() -> Expr:
    return encode_chars(ALL_CHARS)


def has_one_encoding(ch: str) -> bool:
    """Whether a JSON string holds ``ch`` one way only: printable ASCII but quote and
    backslash (every other character may also be written escaped)."""
    return " " <= ch < "\x7f" and ch not in '"\\'


def encode_text(text: str) -> Expr:
    """Every JSON encoding of the characters of ``text`` (without the quotes)."""
    if not text:
        return EMPTY
    parts: list[Expr] = []
    run = bytearray()
    for ch in text:
        if has_one_encoding(ch):
            run.extend(ch.encode())
            continue
        if run:
            parts.append(literal(bytes(run)))
            run = bytearray()
        parts.append(encode_chars(((ord(ch), ord(ch)),)))
    if run:
        parts.append(literal(bytes(run)))
    return parts[0] if len(parts) == 1 else Seq(tuple(parts))


def quoted(body: Expr) -> Expr:
    return Seq((QUOTE, body, QUOTE))


# ---- hex digits -------------------------------------------------------------------------
def _hex_digit(lo: int, hi: int) -> Expr:
    """One hex digit with value in lo..hi, either case."""
    seqs = []
    if lo <= 9:
        seqs.append(((0x30 + lo, 0x30 + min(hi, 9)),))
    if hi >= 10:
        a, b = max(lo, 10) - 10, hi - 10
        seqs.append(((0x61 + a, 0x61 + b),))
        seqs.append(((0x41 + a, 0x41 + b),))
    return Bytes(tuple(seqs))


def _hex_expr(ranges: Ranges, width: int) -> Expr:
    options = []
    for lo, hi in ranges:
        for digits in digit_ranges(lo, hi, width, 16):
            options.append(Seq(tuple(_hex_digit(a, b) for a, b in digits)))
    return options[0] if len(options) == 1 else Alt(tuple(options))


def _surrogate_pairs(lo: int, hi: int) -> list[Expr]:
    """``\\uD8xx\\uDCxx`` pairs for the astral code points lo..hi."""
    out = []
    h_lo, h_hi = 0xD800 + ((lo - 0x10000) >> 10), 0xD800 + ((hi - 0x10000) >> 10)

    def pair(hs: tuple[int, int], ls: tuple[int, int]) -> Expr:
        return Seq((literal(b"\\u"), _hex_expr((hs,), 4), literal(b"\\u"), _hex_expr((ls,), 4)))

    low_of = lambda c: 0xDC00 + ((c - 0x10000) & 0x3FF)  # noqa: E731
    if h_lo == h_hi:
        return [pair((h_lo, h_lo), (low_of(lo), low_of(hi)))]
    out.append(pair((h_lo, h_lo), (low_of(lo), 0xDFFF)))
    if h_lo + 1 <= h_hi - 1:
        out.append(pair((h_lo + 1, h_hi - 1), (0xDC00, 0xDFFF)))
    out.append(pair((h_hi, h_hi), (0xDC00, low_of(hi))))
    return out


# ---- patterns ---------------------------------------------------------------------------
_ICASE = ip.REFlags.CASE_INSENSITIVE
_DOTALL = ip.REFlags.SINGLE_LINE
_EMPTY_T = type(ip._EMPTY)
_DOT_T = type(ip._DOT)
_ECMA_DOT = tuple(subtract(ALL_CHARS, ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))))


LOOKAHEAD_STATES = 16384  # a lookahead's automata (the rest of the pattern, the lookahead) at most


class PatternError(ValueError):
    """A ``pattern`` that cannot be compiled exactly (the message says why)."""


class EmptyPattern(PatternError):
    """A ``pattern`` that no string matches (its lookaheads exclude every one)."""


@lru_cache(maxsize=1024)
def pattern_expr(pattern: str) -> Expr:
    """The JSON encodings of the strings in which the ECMA-262 regex ``pattern`` finds a
    match (unanchored search, as JSON Schema specifies); the result excludes the quotes."""
    options = _nonempty(top_level_branches(pattern), "", pattern)
    if not options:
        raise EmptyPattern(f"pattern {pattern!r} matches no string")
    return options[0] if len(options) == 1 else Alt(tuple(options))


def _nonempty(branches: list[str], prefix: str, pattern: str) -> list[Expr]:
    """The expressions of the branches some string matches (``prefix`` put before each)."""
    out = []
    for branch in branches:
        try:
            out.append(_branch_expr(prefix + branch, pattern))
        except EmptyPattern:
            pass
    return out


def _branch_expr(branch: str, pattern: str) -> Expr:
    """One top-level alternative of ``pattern``, unanchored ends read as any characters."""
    anchored_start = branch.startswith("^")
    anchored_end = branch.endswith("$") and not is_escaped(branch, len(branch) - 1)
    tail = EMPTY if anchored_end else Repeat(any_char())
    body = branch[1 if anchored_start else 0 : len(branch) - 1 if anchored_end else len(branch)]
    try:
        pieces = split_lookaheads(body)
    except LookaroundError as exc:
        raise PatternError(f"pattern {pattern!r}: {exc}") from exc
    rest = tail
    for piece in reversed(pieces):
        if isinstance(piece, Lookahead):
            rest = _with_lookahead(rest, piece, pattern)
        elif piece:
            rest = Seq((_fragment_expr(piece, pattern), rest))
    return rest if anchored_start else Seq((Repeat(any_char()), rest))


def _fragment_expr(fragment: str, pattern: str) -> Expr:
    """A piece of ``pattern`` with no lookaround and no anchor, matched in full."""
    try:
        anchored = strip_anchors(fragment) != fragment
    except RegexError as exc:
        raise PatternError(str(exc)) from exc
    if anchored:
        raise PatternError(f"pattern {pattern!r}: an anchor next to a lookahead is not supported")
    try:
        parsed = ip.parse_pattern(fragment)
    except Exception as exc:  # interegular's parse errors
        raise PatternError(f"cannot parse pattern {pattern!r}: {exc}") from exc
    return _convert(parsed, ip.REFlags(0))


def _with_lookahead(rest: Expr, lookahead: Lookahead, pattern: str) -> Expr:
    """The strings of ``rest`` that begin with a match of the lookahead's body (with
    ``negative``: that do not), as one automaton."""
    bodies = top_level_branches(lookahead.body)
    if any(body.startswith("^") for body in bodies):
        raise PatternError(f"pattern {pattern!r}: an anchor at the start of a lookahead is not supported")
    branches = _nonempty(bodies, "^", pattern)
    if not branches:  # a lookahead no string passes
        if lookahead.negative:
            return rest
        raise EmptyPattern(f"pattern {pattern!r} matches no string")
    begins = branches[0] if len(branches) == 1 else Alt(tuple(branches))
    what = f"pattern {pattern!r}"
    dfa = product(
        ByteDFA.from_nfa(expr_to_nfa(rest), what=what, max_states=LOOKAHEAD_STATES),
        ByteDFA.from_nfa(expr_to_nfa(begins), what=what, max_states=LOOKAHEAD_STATES),
        difference=lookahead.negative, max_states=LOOKAHEAD_STATES,
    )
    if dfa is None:
        raise EmptyPattern(f"pattern {pattern!r} matches no string")
    return Automaton(dfa)


@lru_cache(maxsize=64)
def regex_chars_expr(regex: str, wide: tuple[tuple[str, Ranges], ...] = ()) -> Expr:
    """The JSON encodings of the strings that fully match ``regex`` (format patterns);
    ``wide``: (character, code-point ranges) pairs, each character of the regex standing
    for any character of its ranges."""
    return _convert(ip.parse_pattern(regex), ip.REFlags(0), dict(wide))


def _convert(node, flags, wide: dict[str, Ranges] | None = None) -> Expr:
    if isinstance(node, ip.Pattern):
        flags = (flags | node.added_flags) & ~node.removed_flags
        options = tuple(_convert(o, flags, wide) for o in node.options)
        return options[0] if len(options) == 1 else Alt(options)
    if isinstance(node, ip._Concatenation):
        parts = tuple(_convert(p, flags, wide) for p in node.parts)
        return parts[0] if len(parts) == 1 else Seq(parts)
    if isinstance(node, ip._Repeated):
        return Repeat(_convert(node.base, flags, wide), node.min, node.max)
    if isinstance(node, ip._CharGroup):
        chars = node.chars
        if wide and not node.negated and len(chars) == 1 and next(iter(chars)) in wide:
            return encode_chars(wide[next(iter(chars))])
        if flags & _ICASE:
            chars = {v for c in chars for v in (c, c.lower(), c.upper()) if len(v) == 1}
        ranges = tuple(merge_ranges((ord(c), ord(c)) for c in chars))
        if node.negated:
            ranges = subtract(ALL_CHARS, ranges)
        if not ranges:
            raise PatternError("a character class matches nothing")
        return encode_chars(ranges)
    if isinstance(node, _DOT_T):
        return encode_chars(ALL_CHARS if flags & _DOTALL else _ECMA_DOT)
    if isinstance(node, _EMPTY_T):
        return EMPTY
    raise PatternError(f"unsupported regex construct {type(node).__name__.strip('_')}")
