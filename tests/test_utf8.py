"""UTF-8 range splitting, checked against Python's own encoder."""

from hypothesis import given, settings
from hypothesis import strategies as st

from structgen.automata.utf8 import MAX_CODE_POINT, complement_ranges, utf8_sequences


def _matches(seqs, data: bytes) -> bool:
    return any(len(s) == len(data) and all(lo <= b <= hi for (lo, hi), b in zip(s, data)) for s in seqs)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, MAX_CODE_POINT), st.integers(0, 5000), st.data())
def test_sequences_cover_exactly_the_range(lo, width, data):
    hi = min(MAX_CODE_POINT, lo + width)
    seqs = utf8_sequences(lo, hi)
    for _ in range(30):
        cp = data.draw(st.integers(max(0, lo - 50), min(MAX_CODE_POINT, hi + 50)))
        if 0xD800 <= cp <= 0xDFFF:
            continue
        assert _matches(seqs, chr(cp).encode("utf-8")) == (lo <= cp <= hi)


def test_boundaries_and_full_range():
    seqs = utf8_sequences(0, MAX_CODE_POINT)
    for cp in [0, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFF]:
        assert _matches(seqs, chr(cp).encode("utf-8"))
    # invalid UTF-8 is never matched: overlong forms, surrogates, stray continuation bytes
    for bad in [b"\xc0\x80", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\x80", b"\xf4\x90\x80\x80"]:
        assert not _matches(seqs, bad)


def test_complement_skips_surrogates():
    comp = complement_ranges([(ord("a"), ord("z"))])
    assert (0, ord("a") - 1) in comp and all(not (lo <= 0xD800 <= hi) for lo, hi in comp)
