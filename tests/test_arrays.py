"""Tables grown ahead of use (structgen/automata/arrays.py): zero-filled, writable and of the
asked shape on both sides of the fresh-pages threshold, as np.zeros would be."""

from __future__ import annotations

import numpy as np
import pytest

from structgen.automata.arrays import FRESH_PAGES_FROM, grown, zeroed


@pytest.mark.parametrize("shape,dtype", [(10, np.int32), ((3, 7), np.uint64), ((FRESH_PAGES_FROM // 4 + 5, 3), np.int32), (FRESH_PAGES_FROM, np.bool_)])
def test_zeroed_equals_np_zeros(shape, dtype):
    out = zeroed(shape, dtype)
    expected = np.zeros(shape, dtype=dtype)
    assert out.shape == expected.shape and out.dtype == expected.dtype and out.flags.c_contiguous and out.flags.writeable
    assert not out.any()
    out[-1] = 1  # (writes land in the array, not in a shared zero page)
    assert out.sum() == (np.prod(out.shape[1:]) if out.ndim > 1 else 1)


@pytest.mark.parametrize("rows", [5, FRESH_PAGES_FROM // 8])
def test_grown_keeps_used_rows_and_zeros_the_rest(rows):
    rng = np.random.default_rng(0)
    table = rng.integers(1, 100, size=(rows, 2)).astype(np.int32)
    used = rows - 2
    out = grown(table, 3 * rows, used)
    assert out.shape == (3 * rows, 2) and out.dtype == np.int32
    assert (out[:used] == table[:used]).all() and not out[used:].any()
