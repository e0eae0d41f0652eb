"""Lexical constraints over bytes: an Aho–Corasick automaton over every phrase the output must
(or must not) contain, advanced by each token's bytes, so a phrase is seen whatever the
tokenization and wherever inside a token it starts or ends."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class PhraseConstraints:
    """``must_include``: each item a phrase or a list of alternative phrases (any one meets it);
    ``must_not_include``: phrases that may not appear. States are ints; ``met`` is a bitmask over
    the ``must_include`` items."""

    def __init__(self, must_include: Sequence[str | Sequence[str]] = (), must_not_include: Sequence[str] = ()) -> None:
        self.groups: list[list[bytes]] = []
        for item in must_include:
            alternatives = [item] if isinstance(item, str) else list(item)
            if not alternatives or any(not isinstance(a, str) or not a for a in alternatives):
                raise ValueError(f"must_include items are non-empty phrases or lists of them, got {item!r}")
            self.groups.append([a.encode("utf-8") for a in alternatives])
        if len(self.groups) > 62:
            raise ValueError("at most 62 must_include items")
        self.forbidden = [p.encode("utf-8") for p in must_not_include]
        if any(not p for p in self.forbidden):
            raise ValueError("must_not_include phrases must be non-empty")
        self._build()

    @property
    def all_met(self) -> int:
        return (1 << len(self.groups)) - 1

    def _build(self) -> None:
        goto: list[dict[int, int]] = [{}]
        out = [0]
        bad = [False]
        patterns = [(p, 1 << g, False) for g, alts in enumerate(self.groups) for p in alts]
        patterns += [(p, 0, True) for p in self.forbidden]
        for phrase, bit, forbidden in patterns:
            state = 0
            for b in phrase:
                if b not in goto[state]:
                    goto.append({})
                    out.append(0)
                    bad.append(False)
                    goto[state][b] = len(goto) - 1
                state = goto[state][b]
            out[state] |= bit
            bad[state] = bad[state] or forbidden
        n = len(goto)
        table = np.zeros((n, 256), dtype=np.int32)
        fail = [0] * n
        order = []
        for b, s in goto[0].items():
            table[0, b] = s
            order.append(s)
        head = 0
        while head < len(order):  # breadth-first: fail links and the full transition table
            s = order[head]
            head += 1
            out[s] |= out[fail[s]]
            bad[s] = bad[s] or bad[fail[s]]
            for b in range(256):
                child = goto[s].get(b)
                if child is None:
                    table[s, b] = table[fail[s], b]
                else:
                    fail[child] = table[fail[s], b]
                    table[s, b] = child
                    order.append(child)
        self.table = table
        self.texts = [b""] * n
        for s in order:  # parents come before children in breadth-first order
            for b, child in goto[s].items():
                self.texts[child] = self.texts[s] + bytes([b])
        for b, child in goto[0].items():
            self.texts[child] = bytes([b])
        self.out, self.bad = np.array(out, dtype=np.int64), np.array(bad)

    def advance(self, state: int, met: int, data: bytes) -> tuple[int, int, bool]:
        """(state, met, ok) after ``data``; ok is False once a forbidden phrase has appeared."""
        table, out, bad = self.table, self.out, self.bad
        ok = True
        for b in data:
            state = int(table[state, b])
            met |= int(out[state])
            if bad[state]:
                ok = False
        return state, met, ok

    def remainders(self, state: int, met: int) -> list[list[bytes]]:
        """Per unmet item, the byte strings that would complete one of its phrases from here:
        the rest of a phrase the output has partly written, and the whole phrase."""
        text = self.texts[state]  # the longest suffix of the output that begins some phrase
        out = []
        for g, alts in enumerate(self.groups):
            if met >> g & 1:
                continue
            rests = []
            for phrase in alts:
                rests.append(phrase)
                for k in range(min(len(text), len(phrase) - 1), 0, -1):
                    if text.endswith(phrase[:k]):
                        rests.append(phrase[k:])
                        break
            out.append(rests)
        return out
