"""Percentile-bootstrap confidence intervals for per-user means.

A metric's headline value is the mean over users of a per-user value ``v_u``. To say how
sure that mean is, users are resampled with replacement (the user is the unit of
resampling: each user's value stays intact) and the mean is recomputed on every resample.

Formulas, for ``n`` users, ``B = n_resamples`` and confidence ``c``:

- resample ``b`` draws ``n`` user indices uniformly with replacement; ``k_bu`` is how many
  times user ``u`` was drawn (``sum_u k_bu = n``);
- the resampled mean of a column is ``mean_b = sum_u k_bu v_u / sum_u k_bu 1[v_u finite]``,
  computed for all resamples at once as the products ``K @ V`` and ``K @ F`` (``K`` the
  ``B x n`` count matrix, ``V`` the values with NaN set to 0, ``F`` the finite mask;
  ``K @ F`` only for columns with a NaN, the others divide by ``n``), in chunks of
  ``max(1, 2**22 // n)`` resamples so memory stays bounded (about 32 MB per chunk). Each
  product's sum is added in user order by a compiled kernel, not by BLAS, whose order
  (and so the last bits) changes with the number of columns and of threads;
- ``low`` and ``high`` are the ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles of the ``B``
  resampled means (``numpy.quantile``, ``method="linear"``), clipped into
  ``[min, max]`` of the column's finite values (which they lie in mathematically; the clip
  only removes rounding, so a constant column gets exactly ``(v, v)``); the sample ``mean``
  is clipped the same way.

Several columns (metrics) are resampled with the *same* user indices, so their intervals
come from one resampling and may be compared or combined. The indices depend only on
``(n, n_resamples, seed)``: a column's interval does not change when other columns are added.

NaN ("this user has no value for this metric") is ignored per column: a resample's mean is
over the finite cells it drew. A resample that drew no finite cell of a column is left out
of that column's quantiles. A column with no finite value gets a NaN mean and interval;
a column with exactly one finite value ``v`` gets ``(v, v)``. Infinite values are refused.

Same seed, same input -> bit-identical output (``numpy.random.default_rng(seed)``).
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bench import validate
from bench.errors import describe
from bench.machine import map_on_cores

__all__ = ["BootstrapCI", "bootstrap_means", "warm_kernels"]

_CHUNK_CELLS = 2**22
"""Upper bound on the cells of one chunk of the resample-count matrix (32 MB as float64)."""

_KEEP_CELLS = 2**28
"""Upper bound on the cells of the count matrices kept between calls (one byte each: 256 MB).
A report draws one matrix for all its evaluated users and one per segment of them, and
asks for each several times: at ml-25m scale (84,000 users x 1,000 resamples, 84 MB, and
as much again for the history segments) 128 MB evicted them in turn, and every matrix was
drawn three times."""

_KEEP_MAX_COUNT = np.iinfo(np.uint8).max
"""Counts are kept as uint8; a matrix with a larger count (a handful of users resampled
many times) is drawn again at every call instead."""

KERNEL_MIN_CELLS = 2**22
"""Cells of ``K`` (users x resamples) from which the compiled kernel counts the draws (4,194
users at 1,000 resamples: a report's segments too); smaller matrices are counted by a
row-wise bincount."""

PARALLEL_MIN_PRODUCTS = 2**25
"""Products (users x resamples x columns) from which a kept ``K``'s sums are shared
between two threads when a core is free (33.6M: a column of 33,554 users at 1,000
resamples); below it a second thread would cost more than it saves."""

_kept_counts: OrderedDict[tuple[int, int, int, int], tuple[np.ndarray, ...]] = OrderedDict()
_kept_lock = threading.Lock()


@dataclass(frozen=True)
class BootstrapCI:
    """Percentile-bootstrap interval of per-column means.

    Array fields have shape ``(m,)`` for ``(n, m)`` input and are Python scalars for 1-D input.

    Attributes:
        mean: the plain sample mean over each column's finite cells (not the bootstrap mean).
        low: lower bound, the ``(1 - confidence) / 2`` quantile of the resampled means.
        high: upper bound, the ``(1 + confidence) / 2`` quantile of the resampled means.
        n: number of finite cells per column.
        n_resamples: number of bootstrap resamples.
        confidence: the nominal coverage, e.g. 0.95.
        seed: the seed of ``numpy.random.default_rng`` that drew the resamples.
    """

    mean: np.ndarray | float
    low: np.ndarray | float
    high: np.ndarray | float
    n: np.ndarray | int
    n_resamples: int
    confidence: float
    seed: int


def bootstrap_means(
    values: np.ndarray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapCI:
    """Percentile-bootstrap confidence interval of the mean of each column of ``values``.

    Args:
        values: per-user values, shape ``(n,)`` or ``(n, m)`` (rows = users, columns =
            metrics or anything resampled with the same users). NaN = no value, ignored
            per column.
        n_resamples: number of resamples ``B`` (a positive integer).
        confidence: nominal coverage ``c`` in ``(0, 1)``.
        seed: non-negative integer seed of ``numpy.random.default_rng``.

    Returns:
        A :class:`BootstrapCI`; see the module docstring for formulas and edge cases.

    Raises:
        ParameterError: ``n_resamples``, ``confidence`` or ``seed`` is invalid.
        ValueError: ``values`` is not 1-D or 2-D, or holds an infinite value.
    """
    check_resampling(n_resamples, confidence, seed)
    matrix, one_d = as_matrix(values, "values")
    finite = ~np.isnan(matrix)
    counts = finite.sum(axis=0)
    filled = np.where(finite, matrix, 0.0)
    mean = column_means(filled, finite)
    low, high = percentile_interval(filled, finite, n_resamples, confidence, seed)
    return BootstrapCI(
        mean=squeeze(mean, one_d),
        low=squeeze(low, one_d),
        high=squeeze(high, one_d),
        n=squeeze(counts.astype(np.int64), one_d),
        n_resamples=int(n_resamples),
        confidence=float(confidence),
        seed=int(seed),
    )


def check_resampling(n_resamples: object, confidence: object, seed: object) -> None:
    """Raise :class:`~bench.errors.ParameterError` (naming the argument) unless the three
    resampling settings are valid."""
    validate.positive_integer("n_resamples", n_resamples)
    validate.fraction("confidence", confidence, expected="a number strictly between 0 and 1")
    validate.seed("seed", seed)


def as_matrix(values: object, name: str) -> tuple[np.ndarray, bool]:
    """``values`` as a float64 ``(n, m)`` matrix, and whether it was 1-D; refuse infinities."""
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim not in (1, 2):
        raise ValueError(describe(name, "a 1-D or 2-D array", f"shape {matrix.shape}"))
    if np.isinf(matrix).any():
        raise ValueError(
            describe(name, "finite values or NaN", f"{int(np.isinf(matrix).sum())} infinite")
        )
    one_d = matrix.ndim == 1
    return (matrix[:, None] if one_d else matrix), one_d


def squeeze(array: np.ndarray, one_d: bool):
    """The single element as a Python scalar for 1-D input, else the array itself."""
    return array[0].item() if one_d else array


def column_means(filled: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Mean of each column over its finite cells (NaN if none), clipped into the column's
    ``[min, max]`` so rounding cannot put it outside (a constant column gives its value)."""
    counts = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / counts
    return np.clip(mean, *_value_range(filled, finite))


def _value_range(filled: np.ndarray, finite: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column min and max over finite cells (+inf and -inf for a column with none)."""
    lowest = np.where(finite, filled, np.inf).min(axis=0, initial=np.inf)
    highest = np.where(finite, filled, -np.inf).max(axis=0, initial=-np.inf)
    return lowest, highest


def percentile_interval(
    filled: np.ndarray, finite: np.ndarray, n_resamples: int, confidence: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap ``(low, high)`` of the column means of ``filled`` (NaN set to 0).

    ``finite`` marks the cells that count. Columns with no finite cell get NaN.
    """
    n, m = filled.shape
    low = np.full(m, np.nan)
    high = np.full(m, np.nan)
    has_value = finite.any(axis=0)
    if n == 0 or not has_value.any():
        return low, high
    means = resampled_means(filled, finite, n_resamples, seed)
    alpha = (1.0 - float(confidence)) / 2.0
    levels = [alpha, 1.0 - alpha]
    if np.isnan(means).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column: NaN
            bounds = np.nanquantile(means, levels, axis=0, method="linear")
    else:
        bounds = np.quantile(means, levels, axis=0, method="linear")
    lo_value, hi_value = _value_range(filled, finite)
    low[has_value] = np.clip(bounds[0], lo_value, hi_value)[has_value]
    high[has_value] = np.clip(bounds[1], lo_value, hi_value)[has_value]
    return low, high


def resampled_means(
    filled: np.ndarray, finite: np.ndarray, n_resamples: int, seed: int
) -> np.ndarray:
    """``(n_resamples, m)`` bootstrap means of the columns of ``filled`` over finite cells.

    Row ``b`` is ``(K_b @ filled) / (K_b @ finite)`` for the count vector ``K_b`` of
    resample ``b``; NaN where resample ``b`` drew no finite cell of the column. The
    products are :func:`bench.stats.compiled.resample_sums`, which adds in user order:
    a column's means do not depend on the other columns or on the machine's threads.
    When ``K`` is kept and the products are large, its chunks are shared between two
    threads if a core is free (each sum is still added by one thread, in the same order).
    """
    from bench.stats.compiled import resample_sums

    n, m = filled.shape
    partial = ~finite.all(axis=0)  # columns that need their own denominator
    columns = np.ascontiguousarray(
        np.hstack([filled, finite[:, partial]]) if partial.any() else filled,
        dtype=np.float64,
    )
    sums = np.empty((n_resamples, columns.shape[1]))
    kept = kept_counts(n, n_resamples, seed)
    chunks = kept if kept is not None else _draw_counts(n, n_resamples, seed)
    if kept is not None and n * n_resamples * columns.shape[1] >= PARALLEL_MIN_PRODUCTS:
        starts = np.cumsum([0] + [c.shape[0] for c in kept])
        half = len(kept) // 2

        def add_up(part: range) -> None:
            for i in part:
                resample_sums(kept[i], columns, sums[starts[i] : starts[i + 1]])

        map_on_cores(add_up, [range(0, half), range(half, len(kept))])
    else:
        start = 0
        for counts in chunks:
            size = counts.shape[0]
            resample_sums(counts, columns, sums[start : start + size])
            start += size
    denominators = np.full((n_resamples, m), float(n))
    denominators[:, partial] = sums[:, m:]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = sums[:, :m] / denominators
    out[~np.isfinite(out)] = np.nan
    return out


def resample_counts(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """The count matrix ``K`` of the resamples, in chunks of ``max(1, 2**22 // n)`` rows.

    Each chunk is a ``(size, n)`` array (uint8 when kept, else float64), row ``b``
    counting how often resample ``b`` drew each user: :func:`kept_counts` when ``K`` is
    kept, else drawn chunk by chunk.
    """
    kept = kept_counts(n, n_resamples, seed)
    yield from (kept if kept is not None else _draw_counts(n, n_resamples, seed))


def kept_counts(n: int, n_resamples: int, seed: int) -> tuple[np.ndarray, ...] | None:
    """``K``'s chunks as read-only uint8 arrays, drawn on the first call; ``None`` when
    ``K`` is not kept.

    ``K`` depends only on ``(n, n_resamples, seed)``: a report asks for it once per
    metric table and comparison (~25 times in the default run) with the same three
    numbers, so it is drawn once per process and kept, one byte per cell (counts are
    small integers), when it holds at most ``_KEEP_CELLS`` cells and no count above
    ``_KEEP_MAX_COUNT``; otherwise the caller draws it chunk by chunk at every use. A kept
    chunk holds the same integers in the same shapes as a drawn one, so the sums and
    means do not change by a bit.
    """
    key = (int(n), int(n_resamples), int(seed), max(1, _CHUNK_CELLS // n))
    with _kept_lock:
        kept = _kept_counts.get(key)
        if kept is not None:
            _kept_counts.move_to_end(key)
            return kept
    if n * n_resamples > _KEEP_CELLS:
        return None
    chunks = []
    for counts in _draw_counts(n, n_resamples, seed, compact=True):
        if counts is None:
            return None
        counts.flags.writeable = False
        chunks.append(counts)
    kept = tuple(chunks)
    with _kept_lock:
        _kept_counts[key] = kept
        while sum(n * r for n, r, _, _ in _kept_counts) > _KEEP_CELLS:
            _kept_counts.popitem(last=False)
    return kept


def _draw_counts(
    n: int, n_resamples: int, seed: int, compact: bool = False
) -> Iterator[np.ndarray | None]:
    """The chunks of ``K``, drawn: float64 views of one buffer that the next chunk
    overwrites, or (``compact``) a new uint8 array per chunk, and ``None`` in its place
    once a count exceeds ``_KEEP_MAX_COUNT`` (the caller then stops: ``K`` is not kept).

    From :data:`KERNEL_MIN_CELLS` cells the rows are counted by the compiled
    :func:`bench.stats.compiled.count_rows` (about 3x faster than a row-wise bincount at
    84,000 users, and straight into one byte per cell); the counts are the same integers
    either way.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n)
    buffer = None if compact else np.empty((chunk, n))
    kernel = _count_kernel() if n * n_resamples >= KERNEL_MIN_CELLS else None
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        picks = rng.integers(0, n, size=(size, n), dtype=np.int64)
        counts = np.empty((size, n), dtype=np.uint8) if compact else buffer[:size]
        if kernel is not None:
            top = kernel(picks, counts)
        else:
            top = 0
            for row in range(size):  # a row-wise bincount stays in cache: 3x faster than one
                row_counts = np.bincount(picks[row], minlength=n)
                top = max(top, int(row_counts.max(initial=0)))
                counts[row] = row_counts
        if compact and top > _KEEP_MAX_COUNT:
            yield None
            return
        yield counts


def warm_kernels() -> None:
    """Load the compiled kernels every report calls (from numba's disk cache, or compile
    them on a fresh install), on tiny inputs of the types the bootstrap passes. A run
    calls this on its background thread (:func:`bench.machine.offload`), so its report
    does not wait for them (0.3 s with the cache, 1.2 s without)."""
    from bench.stats.compiled import count_rows, resample_sums

    picks = np.zeros((1, 2), dtype=np.int64)
    for dtype in (np.uint8, np.float64):  # kept and freshly drawn count matrices
        counts = np.zeros((1, 2), dtype=dtype)
        count_rows(picks, counts)
        for m in (1, 2):  # the one-column and the many-column kernel
            resample_sums(counts, np.zeros((2, m)), np.empty((1, m)))


def _count_kernel():
    """:func:`bench.stats.compiled.count_rows`, or ``None`` when numba is not importable."""
    try:
        from bench.stats.compiled import count_rows
    except ImportError:  # pragma: no cover - numba is a core dependency
        return None
    return count_rows
