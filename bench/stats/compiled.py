"""The numba kernels behind the bootstrap: the resample counts on large inputs
(:func:`bench.stats.bootstrap.resample_counts`) and the resampled sums of every input
(:func:`bench.stats.bootstrap.resampled_means`).

Importing this compiles nothing: a kernel is compiled on its first call and cached on
disk. Only :mod:`bench.stats.bootstrap` imports it.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["count_rows", "resample_sums"]

_ROWS_AT_ONCE = 8
"""Resamples summed side by side for one column: independent additions keep the core busy
while each resample's own sum still runs in user order."""

_ROWS_AT_ONCE_WIDE = 64
"""Resamples summed side by side for several columns: each pass over ``values`` serves
this many resamples (their sums, 64 x m doubles, stay in the first-level cache)."""


@numba.njit(nogil=True, cache=True)
def count_rows(picks, out):
    """``out[r] = bincount(picks[r], minlength=out.shape[1])`` for every row ``r``, in
    one pass; returns the largest count.

    ``picks`` holds int64 draws in ``[0, out.shape[1])`` (the caller's generator makes
    them so); ``out`` is float64 or uint8. The counts are small exact integers: the same
    numbers as row-wise ``numpy.bincount``, without its int64 row and the copy into
    ``out``. In a uint8 ``out`` a count above 255 wraps, but the returned largest count
    is then above 255, so the caller can tell.
    """
    out[:, :] = 0
    top = 0
    for r in range(picks.shape[0]):
        for j in range(picks.shape[1]):
            c = picks[r, j]
            count = np.int64(out[r, c]) + 1
            out[r, c] = count
            if count > top:
                top = count
    return top


def resample_sums(counts, values, out):
    """``out[b, j] = sum_u counts[b, u] * values[u, j]``, added in user order ``u = 0, 1,
    ..., n - 1`` starting from 0.0, for every resample ``b`` and column ``j``.

    ``counts`` is the ``(size, n)`` count matrix (uint8 or float64: the same integers give
    the same sums), ``values`` a C-contiguous float64 ``(n, m)`` matrix and ``out`` a
    float64 ``(size, m)`` matrix. The order of the additions is fixed, so a sum does not
    depend on ``m`` (a column's neighbours), on the chunking of the resamples or on the
    thread count of a BLAS library, as a matrix product's does.
    """
    if values.shape[1] == 1:
        _sums_one_column(counts, values, out)
    else:
        _sums_many_columns(counts, values, out)


@numba.njit(nogil=True, cache=True)
def _sums_one_column(counts, values, out):
    size, n = counts.shape
    acc = np.zeros(_ROWS_AT_ONCE)
    for first in range(0, size, _ROWS_AT_ONCE):
        rows = min(_ROWS_AT_ONCE, size - first)
        acc[:] = 0.0
        for u in range(n):
            value = values[u, 0]
            for r in range(rows):
                acc[r] += counts[first + r, u] * value
        for r in range(rows):
            out[first + r, 0] = acc[r]


@numba.njit(nogil=True, cache=True)
def _sums_many_columns(counts, values, out):
    size, n = counts.shape
    m = values.shape[1]
    acc = np.zeros((_ROWS_AT_ONCE_WIDE, m))
    for first in range(0, size, _ROWS_AT_ONCE_WIDE):
        rows = min(_ROWS_AT_ONCE_WIDE, size - first)
        acc[:, :] = 0.0
        for u in range(n):
            for r in range(rows):
                k = np.float64(counts[first + r, u])
                for j in range(m):
                    acc[r, j] += k * values[u, j]
        for r in range(rows):
            for j in range(m):
                out[first + r, j] = acc[r, j]
