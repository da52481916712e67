"""Compiled kernels of the ranking evaluator: the hit matrix and the sums metrics share.

Both kernels reproduce, bit for bit, what the numpy code of :mod:`bench.metrics.hits` and
:mod:`bench.metrics.ranking` computes; they exist because that code spends most of its
time in per-call overhead on short rows (a top-10 list is 10 cells), not in arithmetic.
Measured on 100,000 users x top-100 lists, P/R/NDCG/MAP@10 (``bench perf metrics``),
the numpy evaluator took about 84 ms: 65 ms finding hits (about 240 blocks of a dense
buffer, each a dozen numpy calls) and 14 ms in prefix sums and segment sums over rows
of 10 cells.

* :func:`mark_hits` -- per user, the positions of its relevant items are written into a
  marker array of ``n_items`` cells under the user's own stamp, its list is read
  against it (hit, and where the gain is) and each listed item is re-marked as seen (a
  second visit is a duplicate). Stamps are never reused, so nothing is ever cleared.
  Work is ``nnz + n x K``, no temporaries, any catalogue size.
  Nothing is computed in floating point: hits are booleans and gains copied values.
* :func:`cutoff_sums` -- per user, in one pass over the ranks: ``hits@k`` at every
  cutoff, and the DCG and AP numerators at every cutoff. Those two are sums of float64
  terms, so the kernel adds them in exactly numpy's order: the evaluator's numpy form
  sums each segment between consecutive cutoffs with ``np.add.reduceat`` (the first
  term, plus numpy's pairwise sum of the rest: eight running partial sums, blocks of
  128) and then accumulates the segment sums left to right (``np.cumsum``). The tests
  compare the two forms for equality, not closeness.

The kernels are compiled on first use (``numba.njit(cache=True)``), and only for calls
large enough to pay for it (see :data:`MIN_CELLS`); ``BENCH_METRICS_ENGINE=numpy``
turns them off. When numba is not importable the numpy code runs instead.
"""

from __future__ import annotations

import os
import threading

import numpy as np

__all__ = ["MIN_CELLS", "cutoff_sums", "kernels", "mark_hits", "use_kernels"]

#: List cells (users x largest cutoff) of one evaluation from which the kernels are used.
#: Below it numpy is fast enough, and a small run never imports numba nor compiles.
MIN_CELLS = 200_000
_ENGINE_ENV = "BENCH_METRICS_ENGINE"

_compiled = None  # (mark_hits, cutoff_sums) compiled, or False when numba is unavailable
_lock = threading.Lock()


def kernels():
    """``(mark_hits, cutoff_sums)`` compiled, or ``None`` (no numba, or turned off)."""
    global _compiled
    if os.environ.get(_ENGINE_ENV, "").lower() == "numpy":
        return None
    if _compiled is None:
        with _lock:
            if _compiled is None:
                try:
                    from bench.metrics import compiled
                except ImportError:  # pragma: no cover - numba is a core dependency
                    _compiled = False
                else:
                    _compiled = (compiled.mark_hits_rows, compiled.cutoff_sums_rows)
    return _compiled or None


def use_kernels(cells: int) -> bool:
    """Whether an evaluation of ``cells`` list cells (users x largest cutoff) uses them."""
    return cells >= MIN_CELLS and kernels() is not None


def mark_hits(recs, rel, row0: int, scratch: dict, hits, gains, dup) -> bool:
    """The hit kernel (:func:`bench.metrics.compiled.mark_hits_rows`): the lists ``recs``
    against rows ``row0 : row0 + len(recs)`` of the CSR ``rel``. Its marker array and
    next stamp live in ``scratch`` (kept between calls). False: an item code is out of
    range."""
    n_items = rel.shape[1]
    marks = scratch.get("marks")
    if marks is None or marks.size < n_items:
        marks = scratch["marks"] = np.zeros(n_items, dtype=np.int64)
        scratch["stamp"] = 1
    stamp = scratch["stamp"]
    scratch["stamp"] = stamp + recs.shape[0]  # stamps are never reused with these marks
    with_gains = gains is not None
    out = gains if with_gains else np.empty((0, 0), dtype=np.float64)
    return bool(kernels()[0](recs, rel.indptr, rel.indices, rel.data, row0, n_items, marks,
                             stamp, hits, out, with_gains, dup))


def cutoff_sums(hits, ks, disc):
    """``(count int32, binary DCG float64, AP sums float64)``, each ``(n, len(ks))``: the
    kernel :func:`bench.metrics.compiled.cutoff_sums_rows` on bool ``hits``."""
    shape = (hits.shape[0], ks.shape[0])
    count = np.empty(shape, dtype=np.int32)
    dcg = np.empty(shape, dtype=np.float64)
    ap = np.empty(shape, dtype=np.float64)
    kernels()[1](hits, ks, disc, count, dcg, ap)
    return count, dcg, ap
