"""The text structure of ECMA-262 patterns: top-level branches, groups, and lookaheads
split off the text.

A lookahead whose scope runs to the end of the pattern is a regular constraint on the rest
of the string from where it stands: ``A(?=X)B`` matches the strings of ``A`` followed by a
string of ``B`` (and whatever the pattern lets follow) that also begins with a match of
``X``; ``(?!X)`` asks that none does. That holds where the lookahead stands in the branch's
top-level sequence, or inside plain groups (capturing, ``(?:``, named) that are neither
repeated nor split by ``|``: such a group reads as its contents inline. A lookahead anywhere
else (inside a repetition or an alternative, whose rest depends on the iteration) and every
lookbehind raise :class:`LookaroundError` naming the construct and its position.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..automata.regex import class_members_start

LOOKAHEADS = {"(?=": False, "(?!": True}  # opener -> negative
LOOKBEHINDS = ("(?<=", "(?<!")
_PLAIN_NAMED = ("(?P<", "(?<")


class LookaroundError(ValueError):
    """A lookaround that :func:`split_lookaheads` cannot turn into a suffix constraint."""


@dataclass(frozen=True)
class Lookahead:
    """``(?=body)`` or, with ``negative``, ``(?!body)``."""

    body: str
    negative: bool


@dataclass
class _Group:
    start: int  # index of "("
    opener: str  # "(", "(?:", "(?=", "(?P<name>" ...
    end: int = -1  # index of ")"
    alternated: bool = False  # a "|" directly inside
    parent: "_Group | None" = None


def split_lookaheads(body: str) -> list[str | Lookahead]:
    """``body`` (one top-level branch, anchors removed) as regex fragments and lookaheads in
    order, with the plain groups around lookaheads dissolved (``[body]`` when it has none);
    raises LookaroundError where a lookaround's scope is not the rest of the pattern."""
    groups = _groups(body)
    dissolved: set[int] = set()  # "(" and ")" indexes dropped
    cuts: dict[int, _Group] = {}
    for g in groups:
        if g.opener in LOOKBEHINDS:
            raise LookaroundError(f"lookbehind {g.opener}...) is not supported at position {g.start}")
        if g.opener not in LOOKAHEADS:
            continue
        if _quantified(body, g.end):
            raise LookaroundError(f"a repeated lookahead at position {g.start} is not supported")
        outer = g.parent
        while outer is not None:
            if outer.opener in LOOKAHEADS:  # (nested: split when its body is)
                break
            if outer.alternated or _quantified(body, outer.end) or not _plain(outer.opener):
                raise LookaroundError(
                    f"lookahead {g.opener}...) at position {g.start} is inside a repeated, alternated or flagged group"
                )
            dissolved.update((outer.start, outer.end))
            outer = outer.parent
        if outer is None:
            cuts[g.start] = g
    out: list[str | Lookahead] = []
    piece: list[str] = []
    i = 0
    while i < len(body):
        g = cuts.get(i)
        if g is not None:
            out.append("".join(piece))
            piece = []
            out.append(Lookahead(body[i + len(g.opener) : g.end], LOOKAHEADS[g.opener]))
            i = g.end + 1
            continue
        if i in dissolved:
            i += len(_opener_at(body, i)) if body[i] == "(" else 1
            continue
        if body[i] == "\\":
            piece.append(body[i : i + 2])
            i += 2
            continue
        piece.append(body[i])
        i += 1
    out.append("".join(piece))
    return out


def _plain(opener: str) -> bool:
    return opener in ("(", "(?:") or opener.startswith(_PLAIN_NAMED) and opener not in LOOKBEHINDS


def _quantified(body: str, close: int) -> bool:
    return body[close + 1 : close + 2] in ("*", "+", "?", "{")


def _opener_at(body: str, i: int) -> str:
    for opener in (*LOOKAHEADS, *LOOKBEHINDS, "(?:"):
        if body.startswith(opener, i):
            return opener
    if body.startswith(_PLAIN_NAMED, i):
        close = body.find(">", i)
        if close > 0:
            return body[i : close + 1]
    if body.startswith("(?", i):  # inline flags and the like: not plain
        j = i + 2
        while j < len(body) and body[j] not in ":)":
            j += 1
        return body[i : j + 1]
    return "("


def structural(body: str):
    """The indexes of the characters of ``body`` outside escapes and character classes."""
    in_class = False
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            i = class_members_start(body, i)
            continue
        else:
            yield i
        i += 1


def top_level_branches(pattern: str) -> list[str]:
    """The alternatives of ``pattern`` split at its top-level ``|``."""
    branches, depth, start = [], 0, 0
    for i in structural(pattern):
        c = pattern[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            branches.append(pattern[start:i])
            start = i + 1
    branches.append(pattern[start:])
    return branches


def _groups(body: str) -> list[_Group]:
    """The groups of ``body``, outermost first."""
    found: list[_Group] = []
    open_: list[_Group] = []
    for i in structural(body):
        c = body[i]
        if c == "(":
            g = _Group(i, _opener_at(body, i), parent=open_[-1] if open_ else None)
            found.append(g)
            open_.append(g)
        elif c == ")" and open_:
            open_.pop().end = i
        elif c == "|" and open_:
            open_[-1].alternated = True
    if open_:
        raise LookaroundError(f"unbalanced group at position {open_[-1].start}")
    return found
