"""The numba functions behind :mod:`bench.metrics.kernels` (importing this compiles nothing:
each is compiled on its first call, and cached on disk).

Only :mod:`bench.metrics.kernels` imports this module, and only when the kernels are
used, so a run that never evaluates a large block never imports numba.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "cutoff_sums_rows", "mark_hits_rows", "pairwise_block", "pairwise_sum", "segment_sum",
]

_jit = numba.njit(nogil=True, cache=True)
#: Helpers called once per row: inlined into the caller, because a call that passes arrays
#: costs their reference counts (about 50 ns a row, as much as the arithmetic).
_inline = numba.njit(nogil=True, cache=True, inline="always")


@_jit
def mark_hits_rows(recs, indptr, indices, data, row0, n_items, marks, stamp, hits, gains,
                   with_gains, dup):
    """Rows of ``recs`` against rows ``row0, row0 + 1, ...`` of the CSR
    ``(indptr, indices, data)``.

    ``marks`` (int64, ``n_items`` cells) is never cleared: row ``u`` owns the stamp
    ``s = stamp + u`` (the caller never reuses a stamp with the same ``marks``). A
    relevant item of the row is marked ``s << 32 | (1 + its offset in the row's data)``;
    a listed item is read (a hit when the high word is ``s``) and then marked ``-s``, so
    meeting ``-s`` again means the list repeats it. Writes ``hits[u, j]``, ``gains[u, j]``
    (when ``with_gains``) and ``dup[u]``. Returns False, leaving the outputs partial, as
    soon as an item code outside ``[-1, n_items)`` is met.
    """
    n, k = recs.shape
    for u in range(n):
        s = stamp + u
        high = s << 32
        lo = indptr[row0 + u]
        hi = indptr[row0 + u + 1]
        for p in range(lo, hi):
            marks[indices[p]] = high | (p - lo + 1)
        for j in range(k):
            item = recs[u, j]
            if item < 0 or item >= n_items:
                if item != -1:
                    return False
                hits[u, j] = False
                if with_gains:
                    gains[u, j] = 0.0
                continue
            v = marks[item]
            marks[item] = -s
            if v == -s:
                dup[u] = True
            hit = (v >> 32) == s
            hits[u, j] = hit
            if with_gains:
                gains[u, j] = data[lo + (v & 0xFFFFFFFF) - 1] if hit else 0.0
    return True


@_inline
def pairwise_block(a, lo, hi):
    """``a[lo:hi].sum()`` in numpy's pairwise order for ``hi - lo <= 128`` (one leaf of
    numpy's ``pairwise_sum``: below 8 terms left to right, else eight running sums)."""
    n = hi - lo
    if n < 8:
        res = -0.0
        for i in range(lo, hi):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = lo + 8
    end = hi - n % 8
    while i < end:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < hi:
        res += a[i]
        i += 1
    return res


@_jit
def pairwise_sum(a, lo, hi):
    """``a[lo:hi].sum()`` in numpy's pairwise order: halves (the first a multiple of 8)
    summed recursively down to leaves of at most 128 terms."""
    n = hi - lo
    if n <= 128:
        return pairwise_block(a, lo, hi)
    n2 = n // 2
    n2 -= n2 % 8
    return pairwise_sum(a, lo, lo + n2) + pairwise_sum(a, lo + n2, hi)


@_inline
def segment_sum(terms, start, stop):
    """One segment of ``np.add.reduceat(terms, ...)``: ``terms[start]`` plus the pairwise
    sum of ``terms[start + 1 : stop]`` (numpy's reduce loop starts from the first term)."""
    seg = terms[start]
    if stop - start > 129:
        seg = seg + pairwise_sum(terms, start + 1, stop)
    elif stop - start > 1:
        seg = seg + pairwise_block(terms, start + 1, stop)
    return seg


@_jit
def cutoff_sums_rows(hits, ks, disc, count, dcg, ap):
    """Per row ``u`` of ``hits`` (bool, at least ``ks[-1]`` columns) and cutoff ``ks[j]``:
    ``count[u, j]`` = the hits in the first ``ks[j]`` ranks, ``dcg[u, j]`` = the sum of
    ``disc[i]`` over those hit ranks ``i`` and ``ap[u, j]`` = the sum over them of
    ``hits@i / i``: the numpy form's ``np.cumsum(np.add.reduceat(terms, starts))`` of the
    terms (``disc[i]``, resp. ``hits@i / i``, at hits and 0.0 elsewhere), bit for bit.

    Adding 0.0 is exact and adding two numbers does not depend on their order, so a
    segment with at most two hits sums to those terms in any order; only a segment with
    three or more hits is summed term by term in numpy's order.
    """
    n = hits.shape[0]
    nk = ks.shape[0]
    kmax = ks[nk - 1]
    t_dcg = np.zeros(kmax, np.float64)
    t_ap = np.zeros(kmax, np.float64)
    for u in range(n):
        c = 0
        start = 0
        dcg_total = 0.0
        ap_total = 0.0
        for j in range(nk):
            stop = ks[j]
            c0 = c
            dcg_seg = 0.0
            ap_seg = 0.0
            for i in range(start, stop):
                if hits[u, i]:
                    c += 1
                    dcg_seg += disc[i]
                    ap_seg += c / (i + 1.0)
            if c - c0 > 2:  # numpy's order matters: the terms, then its sum
                cc = c0
                for i in range(start, stop):
                    if hits[u, i]:
                        cc += 1
                        t_dcg[i] = disc[i]
                        t_ap[i] = cc / (i + 1.0)
                    else:
                        t_dcg[i] = 0.0
                        t_ap[i] = 0.0
                dcg_seg = segment_sum(t_dcg, start, stop)
                ap_seg = segment_sum(t_ap, start, stop)
            if j == 0:
                dcg_total = dcg_seg
                ap_total = ap_seg
            else:
                dcg_total += dcg_seg
                ap_total += ap_seg
            count[u, j] = c
            dcg[u, j] = dcg_total
            ap[u, j] = ap_total
            start = stop
