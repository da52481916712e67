"""Exact top-k: the numpy reference and a fused, blocked kernel for factor products.

Every function here follows one contract (see :func:`top_k`): higher score first, ties
toward the lower item code, NaN (and ``-inf``) never ranks, short rows padded with code
``-1`` and score NaN. The numba kernel and the numpy functions return bit-identical
arrays for the same scores (``tests/models/test_topk_fast.py``).

* :func:`top_k_numpy` / :func:`top_k_exact` -- the numpy path (``partition`` then
  ``lexsort``; an int64 key per cell when ties make the candidate set large).
* :func:`top_k` -- what the base class calls: the numba kernel over row chunks in worker
  threads when numba is installed, else :func:`top_k_numpy`.
* :func:`rank_rows` / :func:`skip_history` -- for scores shared by many users (one row
  for a static rule, one per group of users for business rules over it): rank each
  shared row once, then give every user the first ``k`` items of its row's ranking that
  are not in its history, without a ``(users, n_items)`` block.
* :func:`factor_top_k` -- ``user_factors @ item_factors.T`` fused with masking and
  top-k: per block of ``block_rows`` users, float32 ``sgemm`` tiles into a buffer owned
  by the worker thread, the block's excluded items (a CSR, never densified) and
  unscorable items written as NaN, then a single-pass selection per row (a k-sized
  heap carried from tile to tile; an item enters only when it beats the current k-th
  score, which is rare after the first few hundred items). The tiles take the items
  in order of decreasing norm, and a block stops as soon as no item left can enter
  any of its lists: a score is at most ``|u| |v|``, so once every k-th score beats
  ``|u|`` times the largest norm left, the rest is never computed. On ALS factors
  (whose item norms follow popularity) that skips about 90% of the products; on
  factors of equal norms it skips nothing and costs a second ``sgemm`` call per block.
  Blocks run on ``threads`` worker threads with BLAS pinned to one thread each, so
  peak memory is ``threads x block_rows x n_items`` floats whatever the number of users.

Set ``BENCH_TOPK_ENGINE=numpy`` to force the numpy path (the kernel is then never
compiled); inputs under ``KERNEL_MIN_CELLS`` cells take it too. Scores are compared
exactly as given: two different BLAS calls (other block shapes, other thread counts) may
round a product differently in the last bit, which can swap near-ties; within one call
the order is exact. The tiles do not change a score: an ``sgemm`` entry is the dot
product of one user row and one item row, whichever columns it sits among (checked
bitwise for OpenBLAS here: tiles, offsets and item permutations give the same bits;
``bench perf topk`` compares the lists with the numpy path's on whole blocks).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from bench.machine import usable_cores

__all__ = [
    "BLOCK_ROWS",
    "factor_top_k",
    "have_kernel",
    "rank_rows",
    "skip_history",
    "top_k",
    "top_k_exact",
    "top_k_numpy",
]

#: Users per score block of :func:`factor_top_k` (a block is ``BLOCK_ROWS x n_items`` floats).
BLOCK_ROWS = 128
#: Score cells (users x items) of the first tile of a block in :func:`factor_top_k`'s
#: kernel path (512 KiB of float32: 1,024 items for 128 users). It holds the items of
#: largest norm; on ALS factors most blocks need little more than it.
TILE_CELLS = 1 << 17
#: Cells below which :func:`top_k` runs the kernel inline instead of in worker threads.
INLINE_CELLS = 1 << 20
#: Cells (rows x items) below which both entry points take the numpy path: tiny inputs
#: are not worth importing numba (and compiling the kernel, ~5 s without its cache).
KERNEL_MIN_CELLS = 1 << 18

_ENGINE_ENV = "BENCH_TOPK_ENGINE"
_CHUNK = 64  # cells per vectorised pre-check in the kernel
_kernel = None  # the compiled selection kernel, False when numba is unavailable
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()


# ---------------------------------------------------------------------- numpy reference
def top_k_numpy(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` item codes and scores per row of ``scores``; NaN never ranks.

    Order is exact and deterministic: higher score first, ties toward the lower item
    code. Positions beyond the number of finite scores hold code ``-1`` and score NaN.

    One float ``partition`` finds each row's k-th largest score; the items at or above
    it (about k per row) are ordered by (score desc, code asc) with one ``lexsort`` and
    cut to k, so ties at the k-th place keep the lowest codes. Rows with few finite
    scores or with many ties at the threshold would make the candidate set large; the
    whole block then takes :func:`top_k_exact`.
    """
    n_rows, n_items = scores.shape
    k = min(k, n_items)
    if n_rows == 0 or k == 0:
        return top_k_exact(scores, k)
    s = np.where(np.isnan(scores), np.float32(-np.inf), scores).astype(np.float32, copy=False)
    if k == n_items:
        return top_k_exact(scores, k)
    kth = np.partition(s, n_items - k, axis=1)[:, n_items - k]
    if not np.isfinite(kth).all():  # a row with fewer than k finite scores
        return top_k_exact(scores, k)
    mask = s >= kth[:, None]
    rows, cols = np.nonzero(mask)  # row-major: codes ascending within a row
    if len(rows) > 2 * n_rows * k:  # heavy ties at the threshold: the exact key is cheaper
        return top_k_exact(scores, k)
    vals = s[rows, cols] + np.float32(0.0)  # -0.0 -> +0.0, as top_k_exact reports it
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.searchsorted(rows, np.arange(n_rows))
    rank = np.arange(len(rows)) - starts[rows]
    keep = rank < k
    items = np.empty((n_rows, k), dtype=np.int32)
    top = np.empty((n_rows, k), dtype=np.float32)
    items[rows[keep], rank[keep]] = cols[keep]
    top[rows[keep], rank[keep]] = vals[keep]
    return items, top


def top_k_exact(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_k` by one int64 key per cell; handles any number of ties and NaN.

    Score and item code are folded into one int64 key (the float32 bits made
    order-preserving in the high word, the complemented item code in the low word), so
    a single ``argpartition`` decides membership and ties at the k-th place cannot
    depend on its internals.
    """
    n_rows, n_items = scores.shape
    k = min(k, n_items)
    s = np.where(np.isnan(scores), np.float32(-np.inf), scores).astype(np.float32, copy=False)
    s = s + np.float32(0.0)  # -0.0 -> +0.0: signed zeros tie, as they compare equal
    bits = s.view(np.int32).astype(np.int64)
    ordered = np.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # float order as signed ints
    key = (ordered << 32) | (np.int64(0xFFFFFFFF) - np.arange(n_items, dtype=np.int64))
    if k < n_items:
        cand = np.argpartition(key, n_items - k, axis=1)[:, n_items - k :]
    else:
        cand = np.broadcast_to(np.arange(n_items), (n_rows, n_items))
    order = np.argsort(-np.take_along_axis(key, cand, axis=1), axis=1)
    items = np.take_along_axis(cand, order, axis=1).astype(np.int32)
    top = np.take_along_axis(s, items, axis=1)
    missing = np.isneginf(top)
    items[missing] = -1
    top = np.where(missing, np.float32(np.nan), top)
    return items, top


# ---------------------------------------------------------------------- shared rankings
def rank_rows(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every row's full ranking under :func:`top_k`'s contract, for a few rows shared by
    many users (a static rule's one score row, a business rule's groups).

    Returns ``(ranking, place)``, both int64 ``(n_rows, n_items)``: ``ranking[r]`` lists
    the items row ``r`` ranks (higher score first, ties toward the lower item code; NaN
    and ``-inf`` never rank) followed by ``-1``; ``place[r, item]`` is the item's position
    in ``ranking[r]``, ``-1`` when it does not rank. Signed zeros tie, as in :func:`top_k`.
    """
    s = np.asarray(scores, dtype=np.float32)
    if s.ndim != 2:
        raise ValueError(f"rank_rows: expected a 2-d score array, got shape {s.shape}")
    ranked = ~(np.isnan(s) | np.isneginf(s))
    key = np.where(ranked, -(s + np.float32(0.0)), np.float32(np.inf))
    ranking = np.argsort(key, axis=1, kind="stable").astype(np.int64)  # ties: lower code
    length = ranked.sum(axis=1)
    place = np.full(s.shape, -1, dtype=np.int64)
    positions = np.broadcast_to(np.arange(s.shape[1], dtype=np.int64), s.shape)
    np.put_along_axis(place, ranking, np.where(positions < length[:, None], positions, -1),
                      axis=1)
    ranking[positions >= length[:, None]] = -1
    return ranking, place


def skip_history(
    ranking: np.ndarray,
    place: np.ndarray,
    hist: sp.csr_matrix,
    k: int,
    group: np.ndarray | None = None,
) -> np.ndarray:
    """Per history row, the first ``k`` items of its group's ranking not in the row.

    ``ranking`` and ``place`` are :func:`rank_rows`'s (one row per group); row ``r`` of
    ``hist`` takes the ranking of group ``group[r]`` (default: every row group 0).
    Returns int32 ``(hist rows, k)``, ``-1`` where the ranking runs out: what
    :func:`top_k` returns after the row's history is masked, without the ``(rows,
    n_items)`` block. A row with ``s_r`` ranked history items needs only the first ``k +
    s_r`` places of its ranking; they are laid out flat (one run per row), the history's
    places are struck out and the first ``k`` survivors of each run kept, so the cost is
    ``k`` per row plus the history's entries.
    """
    n_rows = hist.shape[0]
    group = np.zeros(n_rows, dtype=np.int64) if group is None else np.asarray(group, np.int64)
    length = (ranking >= 0).sum(axis=1)
    row_of = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(hist.indptr))
    hp = place[group[row_of], hist.indices]
    ranked = hp >= 0
    row_of, hp = row_of[ranked], hp[ranked]
    span = np.minimum(k + np.bincount(row_of, minlength=n_rows), length[group])
    starts = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(span, out=starts[1:])
    struck = np.zeros(int(starts[-1]), dtype=bool)
    inside = hp < span[row_of]
    struck[starts[row_of[inside]] + hp[inside]] = True
    pos = np.arange(struck.size, dtype=np.int64) - np.repeat(starts[:-1], span)
    flat_row = np.repeat(np.arange(n_rows, dtype=np.int64), span)
    keep = ~struck
    pos, flat_row = pos[keep], flat_row[keep]
    # rank of each survivor within its row: survivors are in row order
    first = np.searchsorted(flat_row, np.arange(n_rows))
    rank = np.arange(pos.size, dtype=np.int64) - first[flat_row]
    take = rank < k
    out = np.full((n_rows, k), -1, dtype=np.int32)
    out[flat_row[take], rank[take]] = ranking[group[flat_row[take]], pos[take]]
    return out


# ---------------------------------------------------------------------- numba kernel
def _scan_tile(scores, k, col0, codes, position, indptr, indices, ex_row0, bad_pos, heap_s,
               heap_i, sizes):
    """Rows of a tile of scores (float32, modified in place) into each row's running heap.

    Columns are *positions*: ``scores[r, t]`` is the score of item ``codes[col0 + t]``
    for row ``r`` (``position`` is the inverse of ``codes``); the rows continue the heaps
    ``heap_s[r], heap_i[r]`` (``sizes[r]`` entries) left by the previous tiles of the
    same rows (``sizes`` all zero before the first). Row ``r`` first gets NaN at the
    tile's positions in ``bad_pos`` (ascending) and at the positions of the item codes
    ``indices[indptr[ex_row0 + r] : indptr[ex_row0 + r + 1]]`` (a CSR row).

    Then one scan keeps the k best (score, code) pairs in a min-heap whose root is the
    worst kept pair (lowest score, then highest code): an item enters a full heap when it
    beats the root (a higher score, or the same score and a lower code). The test is one
    float compare per cell (``>=`` the root's score), counted over chunks of ``_CHUNK``
    cells in a loop that compiles to SIMD, so only chunks holding a candidate take the
    scalar heap loop. NaN fails every compare; NaN and -inf never enter.
    """
    n, m = scores.shape
    neg_inf = np.float32(-np.inf)
    b_lo = np.searchsorted(bad_pos, col0)
    b_hi = np.searchsorted(bad_pos, col0 + m)
    for r in range(n):
        row = scores[r]
        for b in range(b_lo, b_hi):
            row[bad_pos[b] - col0] = np.nan
        for p in range(indptr[ex_row0 + r], indptr[ex_row0 + r + 1]):
            c = position[indices[p]] - col0
            if 0 <= c < m:
                row[c] = np.nan
        hs = heap_s[r]
        hi = heap_i[r]
        size = sizes[r]
        thr = hs[0] if size == k else neg_inf  # while the heap fills, any score enters
        for c0 in range(0, m, _CHUNK):  # a vectorised count skips most chunks at once
            chunk = row[c0 : c0 + _CHUNK]  # a slice: its loop vectorises, row[c0:c1] does not
            hits = 0
            for t in range(chunk.shape[0]):
                if chunk[t] >= thr:
                    hits += 1
            if hits == 0:
                continue
            for t in range(chunk.shape[0]):
                s = chunk[t]
                if not s >= thr:
                    continue
                j = codes[col0 + c0 + t]
                if size < k:
                    if not s > neg_inf:
                        continue
                elif not (s > thr or j < hi[0]):  # s == thr: the lower code wins the tie
                    continue
                if size < k:  # sift up
                    c = size
                    size += 1
                    while c > 0:
                        par = (c - 1) >> 1
                        if hs[par] > s or (hs[par] == s and hi[par] < j):
                            hs[c] = hs[par]
                            hi[c] = hi[par]
                            c = par
                        else:
                            break
                    hs[c] = s
                    hi[c] = j
                    if size == k:
                        thr = hs[0]
                else:  # replace the root, sift down
                    c = 0
                    while True:
                        child = 2 * c + 1
                        if child >= k:
                            break
                        right = child + 1
                        if right < k and (
                            hs[right] < hs[child]
                            or (hs[right] == hs[child] and hi[right] > hi[child])
                        ):
                            child = right
                        if hs[child] < s or (hs[child] == s and hi[child] > j):
                            hs[c] = hs[child]
                            hi[c] = hi[child]
                            c = child
                        else:
                            break
                    hs[c] = s
                    hi[c] = j
                    thr = hs[0]
        sizes[r] = size


def _finish_rows(heap_s, heap_i, sizes, out_items, out_scores, out_row0):
    """Each row's heap sorted best first into ``out_*[out_row0 + r]``; -1 / NaN pad."""
    for r in range(heap_s.shape[0]):
        hs = heap_s[r]
        hi = heap_i[r]
        size = sizes[r]
        for a in range(1, size):  # insertion sort, best first
            vs = hs[a]
            vi = hi[a]
            b = a - 1
            while b >= 0 and (hs[b] < vs or (hs[b] == vs and hi[b] > vi)):
                hs[b + 1] = hs[b]
                hi[b + 1] = hi[b]
                b -= 1
            hs[b + 1] = vs
            hi[b + 1] = vi
        o = out_row0 + r
        for a in range(size):
            out_items[o, a] = hi[a]
            out_scores[o, a] = hs[a] + np.float32(0.0)  # -0.0 -> +0.0
        for a in range(size, out_items.shape[1]):
            out_items[o, a] = -1
            out_scores[o, a] = np.nan


class _Heaps:
    """Running top-k heaps of up to ``rows`` rows (one per worker thread, reused)."""

    def __init__(self, rows: int, k: int):
        self.scores = np.empty((rows, max(k, 1)), dtype=np.float32)
        self.items = np.empty((rows, max(k, 1)), dtype=np.int32)
        self.sizes = np.zeros(rows, dtype=np.int64)

    def start(self, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Empty heaps for the first ``rows`` rows."""
        self.sizes[:rows] = 0
        return self.scores[:rows], self.items[:rows], self.sizes[:rows]


def _select_rows(kernels, scores, k, indptr, indices, ex_row0, bad_cols, out_items, out_scores,
                 out_row0):
    """Mask and rank whole rows of ``scores`` (one tile) into ``out_*[out_row0:]``."""
    scan, finish = kernels
    heap_s, heap_i, sizes = _Heaps(scores.shape[0], k).start(scores.shape[0])
    identity = np.arange(scores.shape[1], dtype=np.int32)
    scan(scores, k, 0, identity, identity, indptr, indices, ex_row0, bad_cols, heap_s, heap_i,
         sizes)
    finish(heap_s, heap_i, sizes, out_items, out_scores, out_row0)


def _get_kernel():
    """The compiled ``(scan, finish)`` kernels, or ``None`` (numba missing or
    ``BENCH_TOPK_ENGINE=numpy``)."""
    global _kernel
    if os.environ.get(_ENGINE_ENV, "").lower() == "numpy":
        return None
    if _kernel is None:
        with _lock:
            if _kernel is None:
                try:
                    import numba
                except ImportError:
                    _kernel = False
                else:
                    jit = numba.njit(nogil=True, cache=True)
                    _kernel = (jit(_scan_tile), jit(_finish_rows))
    return _kernel or None


def have_kernel() -> bool:
    """Whether :func:`top_k` and :func:`factor_top_k` use the numba kernel."""
    return _get_kernel() is not None


def default_threads() -> int:
    """Worker threads: the CPUs this process may run on."""
    return usable_cores()


def _executor(threads: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != threads:
            if _pool is not None:
                _pool.shutdown(wait=True)
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="topk")
            _pool_size = threads
        return _pool


_NO_IDX = np.zeros(0, dtype=np.int32)


# ---------------------------------------------------------------------- public entry points
def top_k(
    scores: np.ndarray, k: int, *, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` item codes and scores per row of ``scores``; NaN never ranks.

    Order is exact and deterministic: higher score first, ties toward the lower item
    code. Positions beyond the number of finite scores hold code ``-1`` and score NaN.
    Returns ``(items int32 (n_rows, k'), scores float32 (n_rows, k'))`` with
    ``k' = min(k, n_items)``. Uses the numba kernel when available (row chunks on
    ``threads`` worker threads for large inputs), else :func:`top_k_numpy`; both return
    identical arrays. ``scores`` is not modified.
    """
    n_rows, n_items = scores.shape
    k = min(int(k), n_items)
    kernel = None if n_rows * n_items < KERNEL_MIN_CELLS else _get_kernel()
    if kernel is None or n_rows == 0 or k == 0:
        return top_k_numpy(scores, k)
    work = np.ascontiguousarray(scores, dtype=np.float32)  # read only: nothing is masked
    if not work.flags.writeable:
        work = work.copy()
    items = np.empty((n_rows, k), dtype=np.int32)
    top = np.empty((n_rows, k), dtype=np.float32)
    no_ptr = np.zeros(n_rows + 1, dtype=np.int64)
    threads = threads or default_threads()
    if threads == 1 or n_rows * n_items < INLINE_CELLS:
        _select_rows(kernel, work, k, no_ptr, _NO_IDX, 0, _NO_IDX, items, top, 0)
        return items, top
    step = -(-n_rows // threads)

    def run(start: int) -> None:
        stop = min(start + step, n_rows)
        _select_rows(kernel, work[start:stop], k, no_ptr, _NO_IDX, 0, _NO_IDX, items, top, start)

    list(_executor(threads).map(run, range(0, n_rows, step)))
    return items, top


class _NormOrder:
    """Items by decreasing norm, and the bound that lets :func:`factor_top_k` stop early.

    A score is a dot product, so ``u . v <= |u| |v|`` (Cauchy-Schwarz): once every row of
    a block holds k items and its k-th score exceeds ``|u|`` times the largest norm of
    the items not yet scored, none of those items can enter any list, and the block is
    done. Items are scored tile by tile in order of decreasing norm, so that bound falls
    as fast as it can. The computed float32 product may exceed the exact one by at most
    ``f * 2**-24 |u| |v|`` (f terms), so the bound is inflated by four times that.

    The scores themselves do not change: each is still one ``sgemm`` entry for the same
    pair of factor rows, and the lists keep the exact order (ties toward the lower code).
    Rows with a NaN factor score NaN everywhere and never hold a list: they count as done.
    """

    def __init__(self, uf: np.ndarray, itf: np.ndarray, bad: np.ndarray):
        item_norm = _norms(itf)
        item_norm[np.isnan(item_norm)] = 0.0  # NaN scores never rank: last, and no bound
        item_norm[bad] = 0.0  # neither do unscorable items
        order = np.argsort(-item_norm, kind="stable")
        self.codes = order.astype(np.int32)  # position -> item code
        self.position = np.empty(len(order), dtype=np.int32)  # item code -> position
        self.position[order] = np.arange(len(order), dtype=np.int32)
        self.factors = itf[order]
        self.bad = np.sort(self.position[bad]).astype(np.int32)
        self.tail_max = item_norm[order]  # descending: the largest norm from each position on
        slack = 1.0 + 4.0 * itf.shape[1] * 2.0**-24
        self.user_bound = _norms(uf) * slack
        self.nan_user = np.isnan(self.user_bound)

    def limit(self, start: int, stop: int, heap_s, sizes, k: int) -> int:
        """The position from which, by the rows' current k-th scores, no item can enter a
        list of rows ``start:stop`` (``len(codes)`` when some row has no bound yet). An
        estimate (a quotient rounds): :meth:`settled` is the exact test."""
        live = ~self.nan_user[start:stop]
        if not live.any():
            return 0
        if (sizes[live] < k).any():
            return len(self.codes)
        with np.errstate(divide="ignore", invalid="ignore"):
            need = np.min(heap_s[live, 0] / self.user_bound[start:stop][live])
        if not need > 0:
            return len(self.codes)
        return int(np.searchsorted(-self.tail_max, -need, side="right"))

    def settled(self, start: int, stop: int, col0: int, heap_s, sizes, k: int) -> bool:
        """Whether no item from position ``col0`` on can enter a list of rows
        ``start:stop`` (heaps ``heap_s``, ``sizes``)."""
        if col0 == 0:
            return False
        bound = self.user_bound[start:stop] * self.tail_max[col0]
        full = (sizes == k) & (heap_s[:, 0] > bound)
        return bool((full | self.nan_user[start:stop]).all())


def _norms(factors: np.ndarray) -> np.ndarray:
    """Row norms in float64, without a float64 copy of ``factors``."""
    return np.sqrt(np.einsum("ij,ij->i", factors, factors, dtype=np.float64))


def tile_items(block_rows: int, n_items: int) -> int:
    """Items in the first score tile of a block in :func:`factor_top_k`'s kernel path:
    ``block_rows x tile`` floats within :data:`TILE_CELLS` (a multiple of the kernel's
    chunk). A further tile reaches at most where the bound says the block settles and
    is at most twice as wide as the one before; it takes all the items left when some
    row has no bound yet (:meth:`_NormOrder.limit`)."""
    tile = max(_CHUNK, TILE_CELLS // max(1, block_rows) // _CHUNK * _CHUNK)
    return min(n_items, tile)


def factor_top_k(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    k: int,
    *,
    exclude: sp.csr_matrix | None = None,
    item_mask: np.ndarray | None = None,
    block_rows: int | None = None,
    threads: int | None = None,
    stats: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of ``user_factors @ item_factors.T`` per user, without the full matrix.

    Args:
        user_factors: float32 ``(n_users, f)``; a row of NaN scores NaN everywhere (an
            empty list).
        item_factors: float32 ``(n_items, f)``.
        k: list length (``min(k, n_items)`` columns are returned).
        exclude: CSR ``(n_users, n_items)`` of items never to recommend to each user
            (the seen items), or ``None``.
        item_mask: boolean ``(n_items,)``, False for items that cannot be scored
            (they never rank), or ``None``.
        block_rows: users per block (memory: ``threads x block_rows x n_items`` floats);
            default :data:`BLOCK_ROWS`.
        threads: worker threads (default: the CPUs available); BLAS runs one thread in
            each.
        stats: a dict that receives ``cells`` (users x items) and ``skipped_cells``, the
            score cells never computed because no row of their block could gain from
            them (see :class:`_NormOrder`).

    Returns ``(items int32, scores float32)`` shaped ``(n_users, min(k, n_items))``,
    ordered and padded as :func:`top_k`. Each block holds ``block_rows`` users starting
    at a multiple of ``block_rows``, and its tiles and where it stops depend only on its
    own rows, so the scores (and thus the lists) do not depend on ``threads``.
    """
    from threadpoolctl import threadpool_limits

    uf = np.ascontiguousarray(user_factors, dtype=np.float32)
    itf = np.ascontiguousarray(item_factors, dtype=np.float32)
    n_users, n_items = uf.shape[0], itf.shape[0]
    k = min(int(k), n_items)
    items = np.full((n_users, k), -1, dtype=np.int32)
    top = np.full((n_users, k), np.nan, dtype=np.float32)
    if n_users == 0 or k == 0:
        return items, top
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        if exclude.shape != (n_users, n_items):
            raise ValueError(f"exclude: expected shape {(n_users, n_items)}, got {exclude.shape}")
        indptr = exclude.indptr.astype(np.int64, copy=False)
        indices = exclude.indices.astype(np.int32, copy=False)
    else:
        indptr, indices = np.zeros(n_users + 1, dtype=np.int64), _NO_IDX
    bad = _NO_IDX if item_mask is None else np.flatnonzero(~np.asarray(item_mask)).astype(np.int32)
    kernel = None if n_users * n_items < KERNEL_MIN_CELLS else _get_kernel()
    block_rows = int(block_rows or BLOCK_ROWS)
    threads = max(1, min(threads or default_threads(), -(-n_users // block_rows)))
    starts = range(0, n_users, block_rows)
    local = threading.local()
    if kernel is not None:
        order = _NormOrder(uf, itf, bad)
        first_tile = tile_items(block_rows, n_items)
        skipped = np.zeros(threads, dtype=np.int64)  # score cells skipped, per worker

    def run_block(start: int, worker: int = 0) -> None:
        stop = min(start + block_rows, n_users)
        rows = stop - start
        if kernel is not None:  # item tiles by decreasing norm, while any row can gain
            state = getattr(local, "state", None)
            if state is None:
                state = local.state = (np.empty(block_rows * n_items, np.float32),
                                       _Heaps(block_rows, k))
            flat, heaps = state
            heap_s, heap_i, sizes = heaps.start(rows)
            scan, finish = kernel
            col0, width = 0, first_tile
            while col0 < n_items:
                if col0:
                    if order.settled(start, stop, col0, heap_s, sizes, k):
                        skipped[worker] += rows * (n_items - col0)
                        break
                    # at most to where the bound says the block settles, at most twice the
                    # last tile (the lists improve meanwhile); all the rest when no bound
                    limit = order.limit(start, stop, heap_s, sizes, k)
                    width = (n_items - col0 if limit >= n_items
                             else max(_CHUNK, min(limit - col0, 2 * width)))
                col1 = min(n_items, col0 + width)
                out = flat[: rows * (col1 - col0)].reshape(rows, col1 - col0)
                np.matmul(uf[start:stop], order.factors[col0:col1].T, out=out)
                scan(out, k, col0, order.codes, order.position, indptr, indices, start,
                     order.bad, heap_s, heap_i, sizes)
                col0 = col1
            finish(heap_s, heap_i, sizes, items, top, start)
            return
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = np.empty((block_rows, n_items), dtype=np.float32)
        block = buf[:rows]
        np.matmul(uf[start:stop], itf.T, out=block)
        if len(bad):
            block[:, bad] = np.nan
        sub_ptr = indptr[start : stop + 1]
        if sub_ptr[-1] > sub_ptr[0]:
            rows_of = np.repeat(np.arange(rows), np.diff(sub_ptr))
            block[rows_of, indices[sub_ptr[0] : sub_ptr[-1]]] = np.nan
        items[start:stop], top[start:stop] = top_k_numpy(block, k)

    with threadpool_limits(limits=1, user_api="blas"):
        if threads == 1:
            for start in starts:
                run_block(start)
        else:
            # each worker takes every threads-th block; a block's buffer is per thread
            def run_share(first: int) -> None:
                for start in starts[first::threads]:
                    run_block(start, first)

            list(_executor(threads).map(run_share, range(threads)))
    if stats is not None:
        stats["cells"] = n_users * n_items
        stats["skipped_cells"] = int(skipped.sum()) if kernel is not None else 0
    return items, top
