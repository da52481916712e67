"""From recommendation lists and relevance to a hit matrix (users x ranks).

Inputs
------
``recs``
    Integer array ``(n_users, K)`` of item codes in rank order, ``-1`` where the list is
    short (padding). Padding is a miss wherever it appears.
``relevant``
    A SciPy sparse matrix ``(n_users, n_items)``; the stored entries of row ``u`` are the
    relevant items of user ``u`` and their values are the gains (``1.0`` when binary, a
    graded level such as the rating otherwise). Gains must be finite and positive: an
    explicitly stored zero would be ambiguous (relevant or not?) and is rejected.

Design (how hits are found)
---------------------------
Four designs were timed on 100,000 users x top-100 lists (10M pairs), 20,000 items and
~1.5M relevant entries, hits and gains plus the duplicate check (2-core AMD EPYC,
numpy 2.4, best of 3; the sparse product found hits only):

=================================================  ========  =======================
design                                             time      extra memory
=================================================  ========  =======================
sparse elementwise multiply (recs as CSR x rel)    0.84 s    O(n x K) sparse
sorted keys ``row*W + item``, one ``searchsorted``  0.30 s    O(nnz + n x K) int64
the same per block of 512 users (keys in cache)    0.21 s    O(block)
per-block dense buffer, scatter then gather        0.09 s    32 MiB buffer (bounded)
=================================================  ========  =======================

The default is the **per-block dense buffer**: one reusable ``int32`` buffer of
``rows x (n_items + 1)`` cells (at most ``_BUFFER_CELLS``, 32 MiB, so it stays in the
last-level cache; at 20,000 items a block is 419 users). For each block of users the
relevant entries are scattered into it as negative markers (minus their position in the
block's ``relevant.data``), the recommended cells are gathered (negative = hit, and the
value says where its gain is), the recommended cells are then overwritten with their own
positions and read back (a cell that does not read back its own position was written
twice: a duplicate item in that list), and finally the relevant cells are cleared. Work
is proportional to ``nnz + n x K``; the buffer is never zeroed in full. Padding maps to
the extra column ``n_items``, which is never marked. It won because every step is one
fancy-indexing pass over cache-resident memory, with no sort and no ``log(nnz)`` search.

Its weak spot is a very large catalogue: the block shrinks to a few users and Python
overhead per block dominates (at 1M items and 8 users per block: 0.27 s against 0.19 s).
So when a block would hold fewer than ``_MIN_DENSE_ROWS`` (16) users — more than about
500,000 items — the **blocked sorted-key** design is used instead: per block, the keys
``row*W + item`` of the relevant entries (ascending because the CSR is canonical) are
searched with ``np.searchsorted``, and duplicates are found by sorting each list. Both
designs give identical output; the tests check that.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bench.errors import EvaluationError
from bench.metrics import kernels

__all__ = [
    "as_relevance", "hit_matrix", "hit_matrix_block", "hit_matrix_rows", "ideal_gains",
    "ideal_gains_csr",
    "n_relevant", "row_block",
]

#: Cells of the reusable dense buffer (int32), i.e. 32 MiB.
_BUFFER_CELLS = 1 << 23
#: Below this many users per dense block, the sorted-key design is faster.
_MIN_DENSE_ROWS = 16
#: Users per block in the sorted-key design.
_SORTED_BLOCK_ROWS = 512


def hit_matrix(
    recs: np.ndarray, relevant: sp.spmatrix | sp.sparray
) -> tuple[np.ndarray, np.ndarray]:
    """Mark which recommended items are relevant, and their gains.

    Args:
        recs: ``(n_users, K)`` int32/int64 item codes in rank order, ``-1`` = padding.
        relevant: sparse ``(n_users, n_items)``; stored entries are the relevant items,
            values the gains (finite, > 0).

    Returns:
        ``(hits, gains)``: ``hits`` is bool ``(n_users, K)``, ``True`` where ``recs[u, i]`` is
        a relevant item of user ``u``; ``gains`` is float64 ``(n_users, K)``, the stored
        value of that entry where ``hits`` is ``True`` and ``0.0`` elsewhere (padding
        included).

    Raises:
        EvaluationError: ``recs`` is not a 2-D integer array, has item codes outside
            ``[-1, n_items)``, repeats an item within one list, or its row count differs
            from ``relevant``'s; ``relevant`` has non-finite or non-positive values.
    """
    hits, gains = hit_matrix_block(recs, as_relevance(relevant), with_gains=True)
    return hits, gains


def hit_matrix_block(
    recs: np.ndarray,
    rel: sp.csr_matrix,
    *,
    with_gains: bool,
    row_offset: int = 0,
    scratch: dict | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`hit_matrix` on a checked CSR; ``gains`` is None unless ``with_gains``.

    For callers working through blocks of rows: ``row_offset`` is added to row numbers in
    messages, and ``scratch`` (a dict kept between calls) lets the dense buffer be reused.
    """
    n_items = rel.shape[1]
    recs = _check_recs(recs, rel.shape[0], n_items)
    n_users, k = recs.shape
    if n_users == 0 or k == 0:
        gains = np.zeros((n_users, k), dtype=np.float64) if with_gains else None
        return np.zeros((n_users, k), dtype=bool), gains
    if _BUFFER_CELLS // (n_items + 1) >= _MIN_DENSE_ROWS:
        hits, gains, dup_rows = _hits_dense(recs, rel, with_gains, scratch)
    else:
        hits, gains, dup_rows = _hits_sorted(recs, rel, with_gains)
    _raise_on_repeats(recs, dup_rows, row_offset)
    return hits, gains


def hit_matrix_rows(
    recs: np.ndarray,
    rel: sp.csr_matrix,
    start: int,
    stop: int,
    *,
    with_gains: bool,
    scratch: dict,
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`hit_matrix_block` of rows ``start:stop`` of ``recs`` and of the checked CSR
    ``rel`` (whole, not sliced), by the compiled kernel of :mod:`bench.metrics.kernels`.

    The same output and the same errors as the numpy designs; the caller has checked that
    the kernel is available (:func:`bench.metrics.kernels.use_kernels`). ``scratch`` (a
    dict kept between the calls of one evaluation) holds the kernel's marker array.
    """
    n_items = rel.shape[1]
    block = _check_recs(recs[start:stop], stop - start, n_items, values=False)
    n_users, k = block.shape
    hits = np.empty((n_users, k), dtype=bool)
    gains = np.empty((n_users, k), dtype=np.float64) if with_gains else None
    if n_users == 0 or k == 0:
        return hits, gains
    dup = np.zeros(n_users, dtype=bool)
    if not kernels.mark_hits(block, rel, start, scratch, hits, gains, dup):
        _check_recs(block, n_users, n_items)  # raises, naming the range of the codes
    _raise_on_repeats(block, np.flatnonzero(dup), start)
    return hits, gains


def _raise_on_repeats(recs: np.ndarray, dup_rows: np.ndarray, row_offset: int) -> None:
    """The error for lists that repeat an item (``dup_rows``: their rows in ``recs``)."""
    if dup_rows.size:
        first = int(dup_rows[0])
        items = recs[first][recs[first] >= 0]
        uniq, counts = np.unique(items, return_counts=True)
        raise EvaluationError(
            f"recs: expected distinct items within each list, got repeated items in "
            f"{dup_rows.size} list(s) (first: row {first + row_offset} repeats item code(s) "
            f"{uniq[counts > 1][:5].tolist()})"
        )


def row_block(rel: sp.csr_matrix, start: int, stop: int) -> sp.csr_matrix:
    """Rows ``start:stop`` of a canonical CSR, sharing its arrays (no checks, no copy)."""
    lo, hi = rel.indptr[start], rel.indptr[stop]
    parts = (rel.data[lo:hi], rel.indices[lo:hi], rel.indptr[start : stop + 1] - lo)
    return sp.csr_matrix(parts, shape=(stop - start, rel.shape[1]), copy=False)


def n_relevant(relevant: sp.spmatrix | sp.sparray) -> np.ndarray:
    """Number of relevant items per user (stored entries per row), as int64."""
    rel = as_relevance(relevant)
    return np.diff(rel.indptr).astype(np.int64)


def ideal_gains(relevant: sp.spmatrix | sp.sparray, k: int) -> np.ndarray:
    """Each user's relevant gains sorted in descending order, truncated/zero-padded to ``k``.

    This is the ideal ranking of graded NDCG: ``IDCG@k = sum_{i<=k} ideal[u, i] / log2(i+1)``
    (with ``k`` no larger than the width returned here).

    Args:
        relevant: sparse ``(n_users, n_items)``, values = gains (finite, > 0).
        k: width of the result (>= 0).

    Returns:
        float64 ``(n_users, k)``.
    """
    k = int(k)
    if k < 0:
        raise EvaluationError(f"ideal_gains: expected k >= 0, got {k}")
    return ideal_gains_csr(as_relevance(relevant), k)


def ideal_gains_csr(rel: sp.csr_matrix, k: int) -> np.ndarray:
    """:func:`ideal_gains` on a checked, canonical CSR."""
    n_users = rel.shape[0]
    out = np.zeros((n_users, k), dtype=np.float64)
    if rel.nnz == 0 or k == 0:
        return out
    lengths = np.diff(rel.indptr)
    rows = np.repeat(np.arange(n_users, dtype=np.int64), lengths)
    # Sort by row, then by gain descending (lexsort: last key is the primary one).
    order = np.lexsort((-rel.data, rows))
    pos = np.arange(rel.nnz, dtype=np.int64) - rel.indptr[rows]
    keep = pos < k
    out[rows[keep], pos[keep]] = rel.data[order][keep]
    return out


# --------------------------------------------------------------------------- checks
def as_relevance(relevant) -> sp.csr_matrix:
    """Canonical CSR (sorted indices, no duplicates) with finite, positive data.

    The checked input of the block-level functions (:func:`hit_matrix_block`,
    :func:`row_block`, :func:`ideal_gains_csr`); raises :class:`EvaluationError` otherwise.
    """
    if not sp.issparse(relevant):
        raise EvaluationError(
            "relevant: expected a scipy.sparse matrix (users x items), got "
            f"{type(relevant).__name__}"
        )
    rel = relevant if relevant.format == "csr" else relevant.tocsr()
    if not rel.has_canonical_format:
        rel = rel.copy()
        rel.sum_duplicates()
    data = rel.data
    # min > 0 and max < inf (NaN fails both): two reductions, no temporary arrays
    if data.size and not (data.min() > 0 and data.max() < np.inf):
        bad = int((~np.isfinite(data) | (data <= 0)).sum())
        raise EvaluationError(
            f"relevant: expected finite positive gains in every stored entry, got {bad} "
            "entries that are zero, negative or not finite (drop non-relevant entries "
            "instead of storing 0)"
        )
    if data.dtype != np.float64:
        rel = sp.csr_matrix((data.astype(np.float64), rel.indices, rel.indptr), shape=rel.shape)
    return rel


_as_csr = as_relevance  # the name the hit-design tests use


def _check_recs(recs, n_rows: int, n_items: int, values: bool = True) -> np.ndarray:
    """``recs`` as an array, checked: 2-D, integer, ``n_rows`` rows and (``values``) item
    codes in ``[-1, n_items)`` (the kernel checks the codes itself as it reads them)."""
    recs = np.asarray(recs)
    if recs.ndim != 2 or not np.issubdtype(recs.dtype, np.integer):
        raise EvaluationError(
            f"recs: expected a 2-D integer array (users x ranks), got {recs.ndim}-D "
            f"{recs.dtype} array"
        )
    if recs.shape[0] != n_rows:
        raise EvaluationError(
            f"recs/relevant: expected the same number of user rows, got {recs.shape[0]} "
            f"lists and {n_rows} relevance rows"
        )
    if values and recs.size:
        lo, hi = int(recs.min()), int(recs.max())
        if lo < -1 or hi >= n_items:
            raise EvaluationError(
                f"recs: expected item codes in [0, {n_items}) or -1 for padding, got "
                f"values from {lo} to {hi}"
            )
    return recs


# --------------------------------------------------------------------------- designs
def _hits_dense(
    recs: np.ndarray, rel: sp.csr_matrix, with_gains: bool = True, scratch: dict | None = None
):
    """Per-block dense buffer (see the module docstring). Returns hits, gains, dup rows.

    Between blocks (and calls) the buffer holds no negative value; ``scratch["buffer"]``,
    when given, is reused if large enough (it is always left in that state).
    """
    n_users, k = recs.shape
    n_items = rel.shape[1]
    width = n_items + 1  # column n_items = padding sentinel, never marked relevant
    # Bound both the buffer (block x width) and the per-block temporaries (block x k).
    block = max(1, min(n_users, _BUFFER_CELLS // width, _BUFFER_CELLS // max(k, 1)))
    scratch = {} if scratch is None else scratch
    buf = scratch.get("buffer")
    if buf is None or buf.size < block * width:
        buf = scratch["buffer"] = np.zeros(block * width, dtype=np.int32)
    row_start = np.arange(block, dtype=np.int64) * width
    own = np.arange(1, block * k + 1, dtype=np.int32)  # positive "own position" markers
    hits = np.empty((n_users, k), dtype=bool)
    gains = np.empty((n_users, k), dtype=np.float64) if with_gains else None
    indptr, indices, data = rel.indptr, rel.indices, rel.data
    dup_rows = []
    for start in range(0, n_users, block):
        stop = min(n_users, start + block)
        b = stop - start
        r = recs[start:stop]
        valid = r >= 0
        cells = (np.where(valid, r, n_items) + row_start[:b, None]).ravel()
        lo, hi = int(indptr[start]), int(indptr[stop])
        rel_cells = np.repeat(row_start[:b], np.diff(indptr[start : stop + 1])) + indices[lo:hi]
        # 1. mark relevant cells with -(local position + 1)
        buf[rel_cells] = -np.arange(1, hi - lo + 1, dtype=np.int32)
        # 2. gather: negative = hit, and -value indexes the block's gains (0 -> no gain)
        marks = buf[cells]
        if with_gains:
            where = np.maximum(-marks, 0)
            hits[start:stop] = (where > 0).reshape(b, k)
            gains[start:stop] = np.concatenate(([0.0], data[lo:hi]))[where].reshape(b, k)
        else:
            hits[start:stop] = (marks < 0).reshape(b, k)
        # 3. duplicates: write own positions, read back; a loser of a repeated cell differs
        mine = own[: b * k]
        buf[cells] = mine
        clash = (buf[cells] != mine).reshape(b, k) & valid
        # 4. clear relevant cells (stale positive markers elsewhere are harmless)
        buf[rel_cells] = 0
        if clash.any():
            dup_rows.append(start + np.flatnonzero(clash.any(axis=1)))
    dups = np.concatenate(dup_rows) if dup_rows else np.empty(0, dtype=np.int64)
    return hits, gains, dups


def _hits_sorted(recs: np.ndarray, rel: sp.csr_matrix, with_gains: bool = True):
    """Blocked sorted keys + searchsorted (large catalogues). Returns hits, gains, dup rows."""
    n_users, k = recs.shape
    n_items = rel.shape[1]
    width = np.int64(n_items + 1)
    block = _SORTED_BLOCK_ROWS
    row_start = np.arange(block, dtype=np.int64) * width
    hits = np.empty((n_users, k), dtype=bool)
    gains = np.empty((n_users, k), dtype=np.float64) if with_gains else None
    indptr, indices, data = rel.indptr, rel.indices, rel.data
    dup_rows = []
    sentinel = np.iinfo(np.int64).max
    for start in range(0, n_users, block):
        stop = min(n_users, start + block)
        b = stop - start
        r = recs[start:stop]
        valid = r >= 0
        queries = (np.where(valid, r, n_items) + row_start[:b, None]).ravel()
        lo, hi = int(indptr[start]), int(indptr[stop])
        keys = np.repeat(row_start[:b], np.diff(indptr[start : stop + 1])) + indices[lo:hi]
        keys = np.append(keys, sentinel)  # canonical CSR -> keys ascending
        pos = np.searchsorted(keys, queries)
        found = keys[pos] == queries
        hits[start:stop] = found.reshape(b, k)
        if with_gains:
            block_gains = np.append(data[lo:hi], 0.0)
            gains[start:stop] = np.where(found, block_gains[pos], 0.0).reshape(b, k)
        ordered = np.sort(r, axis=1)
        clash = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
        if clash.any():
            dup_rows.append(start + np.flatnonzero(clash.any(axis=1)))
    dups = np.concatenate(dup_rows) if dup_rows else np.empty(0, dtype=np.int64)
    return hits, gains, dups
