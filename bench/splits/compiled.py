"""The numba kernel behind the leakage audit's shared-pair count on large splits
(:func:`bench.splits.audit.audit_split`).

Importing this compiles nothing: the kernel is compiled on its first call and cached on
disk. Only :mod:`bench.splits.audit` imports it, and only for parts large enough to pay
for it, so small splits never import numba.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["shared_pairs"]


@numba.njit(nogil=True, cache=True)
def shared_pairs(a_starts, a_items, b_starts, b_items, n_items):
    """Distinct (user, item) pairs found in both ``a`` and ``b``.

    Each part's rows are grouped by user: user ``u``'s items are
    ``a_items[a_starts[u]:a_starts[u + 1]]`` (likewise ``b``). Per user, ``a``'s items are
    marked with the user's stamp ``u + 1``; a ``b`` item carrying it is shared, and is
    re-marked ``-(u + 1)`` so a pair repeated in ``b`` counts once. Stamps are never
    reused, so the marker array is never cleared.
    """
    marks = np.zeros(n_items, dtype=np.int64)
    shared = 0
    for u in range(a_starts.size - 1):
        lo, hi = b_starts[u], b_starts[u + 1]
        if lo == hi:
            continue
        stamp = u + 1
        for t in range(a_starts[u], a_starts[u + 1]):
            marks[a_items[t]] = stamp
        for t in range(lo, hi):
            item = b_items[t]
            if marks[item] == stamp:
                shared += 1
                marks[item] = -stamp
    return shared
