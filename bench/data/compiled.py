"""The numba functions behind the sampling rounds of :mod:`bench.data.synthetic`
(importing this compiles nothing: each is compiled on its first call, and cached on disk).

Only :mod:`bench.data.synthetic` imports this module, and only for datasets large enough
to pay for the compilation, so small synthetic data never imports numba.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["first_fresh_draws", "merge_sorted"]

_jit = numba.njit(nogil=True, cache=True)


@_jit
def first_fresh_draws(users, n_draw, items, need, taken_keys, n_items, marks, stamp, accept,
                      n_fresh):
    """One sampling round's acceptance, user by user.

    ``items`` holds the round's draws, ``n_draw[j]`` of them for ``users[j]`` (ascending),
    in draw order. A draw is fresh when its item is neither among the user's items of
    earlier rounds (its range of the sorted keys ``taken_keys``, ``user * n_items +
    item``) nor drawn earlier in this round; the user's first ``need[user]`` fresh draws
    are accepted (``accept`` set True), and ``n_fresh[j]`` counts its fresh draws.
    ``marks`` (int64, ``n_items`` cells) is never cleared: user ``j`` owns the stamp
    ``stamp + j``. Returns the next unused stamp.
    """
    off = 0
    for j in range(users.size):
        u = users[j]
        s = stamp + j
        base = u * n_items
        lo = np.searchsorted(taken_keys, base)
        hi = np.searchsorted(taken_keys, base + n_items)
        for t in range(lo, hi):
            marks[taken_keys[t] - base] = s
        fresh = 0
        wanted = need[u]
        for d in range(off, off + n_draw[j]):
            item = items[d]
            if marks[item] != s:
                marks[item] = s
                if fresh < wanted:
                    accept[d] = True
                fresh += 1
        n_fresh[j] = fresh
        off += n_draw[j]
    return stamp + users.size


@_jit
def merge_sorted(a, b):
    """The sorted union of two sorted int64 arrays with no value in common."""
    out = np.empty(a.size + b.size, dtype=np.int64)
    i = j = k = 0
    while i < a.size and j < b.size:
        if a[i] <= b[j]:
            out[k] = a[i]
            i += 1
        else:
            out[k] = b[j]
            j += 1
        k += 1
    while i < a.size:
        out[k] = a[i]
        i += 1
        k += 1
    while j < b.size:
        out[k] = b[j]
        j += 1
        k += 1
    return out
