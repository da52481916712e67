"""The numba kernel behind the bootstrap's resample counts on large inputs
(:func:`bench.stats.bootstrap.resample_counts`).

Importing this compiles nothing: the kernel is compiled on its first call and cached on
disk. Only :mod:`bench.stats.bootstrap` imports it, and only for count matrices large
enough to pay for it, so small reports never import numba.
"""

from __future__ import annotations

import numba

__all__ = ["count_rows"]


@numba.njit(nogil=True, cache=True)
def count_rows(picks, out):
    """``out[r] = bincount(picks[r], minlength=out.shape[1])`` for every row ``r``, as
    float64, in one pass.

    ``picks`` holds int64 draws in ``[0, out.shape[1])`` (the caller's generator makes
    them so). The counts are small exact integers: the same numbers as row-wise
    ``numpy.bincount``, without its int64 row and the copy into ``out``.
    """
    out[:, :] = 0.0
    for r in range(picks.shape[0]):
        for j in range(picks.shape[1]):
            out[r, picks[r, j]] += 1.0
