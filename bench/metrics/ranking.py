"""Per-user ranking metrics over a hit matrix: pure, vectorised, never rounded.

Every function takes a hit matrix ``hits`` of shape ``(n_users, K)`` — row ``u`` is user
``u``'s recommendation list in rank order (rank ``i`` is column ``i - 1``), ``True`` (or a
value ``> 0``) where the item at that rank is relevant — and returns a float64 array of
one value per user. Padding (the list was shorter than ``K``) is simply ``False``: a
missing rank is a miss. ``n_relevant`` is ``|R|``, the number of relevant items of each
user (all of them, not only those recommended).

The definitions are those of trec_eval (``P_k``, ``recall_k``, ``ndcg_cut_k``,
``map_cut_k``, ``recip_rank`` cut at ``k``); the test suite checks them against
``pytrec_eval``. Users with ``|R| = 0`` are undefined for recall, NDCG and AP: those
functions return NaN for them (the evaluator excludes such users and counts them).

A cutoff ``k`` must satisfy ``1 <= k <= K``; anything else is a :class:`ConfigError`.

Each metric also has a vectorised form, ``<name>_columns(ranked)``, which evaluates it at
any set of cutoffs in one pass over the ranks (prefix sums read at the cutoffs) from a
:class:`RankedHits`, where the intermediates metrics share (``hits@i``) are computed once.
The public per-cutoff functions call it with one cutoff; the evaluator calls the forms the
metric registry (:mod:`bench.metrics.registry`) names, at every cutoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property, lru_cache

import numpy as np

from bench import validate
from bench.errors import ConfigError, EvaluationError
from bench.metrics import kernels

__all__ = [
    "MAP_DENOMINATORS",
    "RankedHits",
    "average_precision_at_k",
    "average_precision_columns",
    "hit_rate_at_k",
    "hit_rate_columns",
    "ndcg_at_k",
    "ndcg_columns",
    "precision_at_k",
    "precision_columns",
    "recall_at_k",
    "recall_columns",
    "reciprocal_rank_at_k",
    "reciprocal_rank_columns",
]

#: Choices for the AP denominator.
MAP_DENOMINATORS = ("relevant", "min_k_relevant")


# --------------------------------------------------------------------------- public API
def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Precision@k = hits@k / k.

    ``hits@k`` is the number of relevant items among the first ``k`` ranks. The
    denominator is always ``k``, even when the list holds fewer than ``k`` items (the
    missing ranks count as misses), as in trec_eval's ``P_k``.

    Args:
        hits: ``(n_users, K)`` bool (or numeric, ``> 0`` = hit) hit matrix.
        k: cutoff, ``1 <= k <= K``.

    Returns:
        float64 ``(n_users,)`` in ``[0, 1]``; an empty list gives 0.
    """
    return _single(hits, None, k, precision_columns)


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Recall@k = hits@k / |R|.

    The denominator is the user's total number of relevant items ``|R|`` (trec_eval
    ``recall_k``), so a user with more relevant items than ``k`` cannot reach 1.

    Args:
        hits: ``(n_users, K)`` hit matrix.
        n_relevant: ``(n_users,)`` integer ``|R|``.
        k: cutoff, ``1 <= k <= K``.

    Returns:
        float64 ``(n_users,)`` in ``[0, 1]``; NaN where ``|R| = 0``.
    """
    return _single(hits, n_relevant, k, recall_columns)


def ndcg_at_k(
    hits: np.ndarray,
    n_relevant: np.ndarray,
    k: int,
    gains: np.ndarray | None = None,
    ideal: np.ndarray | None = None,
) -> np.ndarray:
    """NDCG@k = DCG@k / IDCG@k, with DCG@k = sum_{i <= k} gain_i / log2(i + 1).

    *Binary* (``gains`` and ``ideal`` omitted): ``gain_i`` is 1 for a hit and 0 otherwise,
    and ``IDCG@k = sum_{i <= min(k, |R|)} 1 / log2(i + 1)`` (all relevant items first).

    *Graded*: ``gains`` ``(n_users, K)`` holds the gain of the item at each rank (0 for a
    miss) and ``ideal`` ``(n_users, K')`` each user's relevant gains sorted in descending
    order, zero-padded (see :func:`bench.metrics.hits.ideal_gains`); ``IDCG@k`` is the
    DCG of ``ideal`` truncated at ``k``. With gain = relevance level this is trec_eval's
    ``ndcg_cut_k``. ``ideal`` narrower than ``k`` is accepted only when its last column
    is all zeros (i.e. it is complete).

    Args:
        hits: ``(n_users, K)`` hit matrix (used for its shape in graded mode).
        n_relevant: ``(n_users,)`` integer ``|R|`` (binary IDCG).
        k: cutoff, ``1 <= k <= K``.
        gains: graded gains per rank, or None for binary.
        ideal: sorted ideal gains per user, or None for binary; give both or neither.

    Returns:
        float64 ``(n_users,)`` in ``[0, 1]``; NaN where IDCG is 0 (no relevant item).
    """
    return _single(hits, n_relevant, k, ndcg_columns, gains=gains, ideal=ideal)


def average_precision_at_k(
    hits: np.ndarray, n_relevant: np.ndarray, k: int, denominator: str = "relevant"
) -> np.ndarray:
    """AP@k = (sum over hit ranks i <= k of Precision@i) / D.

    ``Precision@i`` is ``hits@i / i``. With ``denominator="relevant"`` (default),
    ``D = |R|``: relevant items never retrieved in the top ``k`` contribute 0, exactly as
    trec_eval's ``map_cut_k``. With ``denominator="min_k_relevant"``, ``D = min(k, |R|)``,
    so a perfect top-``k`` scores 1 even when ``|R| > k``.

    Args:
        hits: ``(n_users, K)`` hit matrix.
        n_relevant: ``(n_users,)`` integer ``|R|``.
        k: cutoff, ``1 <= k <= K``.
        denominator: ``"relevant"`` or ``"min_k_relevant"``.

    Returns:
        float64 ``(n_users,)`` in ``[0, 1]``; NaN where ``|R| = 0``.
    """
    return _single(hits, n_relevant, k, average_precision_columns, map_denominator=denominator)


def reciprocal_rank_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """RR@k = 1 / (rank of the first hit) if that rank is <= k, else 0.

    trec_eval's ``recip_rank`` is the same quantity without a cutoff, i.e. ``k = K``.

    Args:
        hits: ``(n_users, K)`` hit matrix.
        k: cutoff, ``1 <= k <= K``.

    Returns:
        float64 ``(n_users,)`` in ``[0, 1]``; 0 for a list without a hit in the top ``k``.
    """
    return _single(hits, None, k, reciprocal_rank_columns)


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """HitRate@k = 1 if hits@k > 0 else 0.

    Args:
        hits: ``(n_users, K)`` hit matrix.
        k: cutoff, ``1 <= k <= K``.

    Returns:
        float64 ``(n_users,)`` of 0.0 / 1.0.
    """
    return _single(hits, None, k, hit_rate_columns)


# --------------------------------------------------------------------------- internals
@lru_cache(maxsize=8)
def _discounts(n: int) -> np.ndarray:
    """``1 / log2(i + 1)`` for ranks ``i = 1..n`` (read-only, cached)."""
    out = 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))
    out.flags.writeable = False
    return out


@lru_cache(maxsize=8)
def _ideal_binary_dcg(n: int) -> np.ndarray:
    """``[0, d1, d1 + d2, ...]``: binary IDCG for ``0..n`` relevant items (read-only)."""
    out = np.concatenate(([0.0], np.cumsum(_discounts(n))))
    out.flags.writeable = False
    return out


def _check_k(k, width: int) -> int:
    return validate.integer(
        "k", k, 1, maximum=width,
        expected=f"an integer in [1, {width}] (the hit matrix has {width} rank columns)",
    )


def _as_hits(hits) -> np.ndarray:
    hits = np.asarray(hits)
    if hits.ndim != 2:
        raise EvaluationError(f"hits: expected a 2-D array (users x ranks), got shape {hits.shape}")
    return hits if hits.dtype == np.bool_ else hits > 0


def _as_counts(n_relevant, n_users: int) -> np.ndarray:
    n_rel = np.asarray(n_relevant)
    if n_rel.shape != (n_users,):
        raise EvaluationError(
            f"n_relevant: expected shape ({n_users},) to match the hit matrix, got {n_rel.shape}"
        )
    if n_rel.size and n_rel.min() < 0:
        raise EvaluationError("n_relevant: expected counts >= 0, got a negative value")
    return n_rel.astype(np.float64, copy=False)


def _single(hits, n_relevant, k, columns, *, gains=None, ideal=None, map_denominator="relevant"):
    """One metric at one cutoff: ``columns`` (e.g. :func:`precision_columns`) at ``(k,)``."""
    hb = _as_hits(hits)
    k = _check_k(k, hb.shape[1])
    n_rel = None if n_relevant is None else _as_counts(n_relevant, hb.shape[0])
    ranked = RankedHits(hb, n_rel, (k,), gains=gains, ideal=ideal, map_denominator=map_denominator)
    return columns(ranked)[:, 0].copy()


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN where ``den == 0`` (no warning)."""
    out = np.full(np.broadcast_shapes(num.shape, den.shape), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _at_cutoffs(terms: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """``sum_{i <= k} terms[:, i - 1]`` for every cutoff ``k``: ``(n, len(ks))``.

    Sums each segment between consecutive cutoffs (``np.add.reduceat``, one pass over the
    terms), then accumulates the few segment sums.
    """
    starts = np.concatenate(([0], ks[:-1]))
    if terms.shape[0] == 0:
        return np.zeros((0, ks.size), dtype=np.float64)
    return np.cumsum(np.add.reduceat(terms, starts, axis=1), axis=1)


# --------------------------------------------------------------------------- vectorised
class RankedHits:
    """A block of hit rows read at a set of cutoffs, with the prefix sums metrics share.

    The input of every ``*_columns`` function (and of the evaluator, through the metric
    registry): each returns float64 ``(n_users, len(cutoffs))``, column ``j`` the metric
    at ``cutoffs[j]``. Shared intermediates (``hits@i`` for every rank, ``hits@k`` at the
    cutoffs) are computed once, on first use.

    Args:
        hits: bool ``(n_users, K)``; columns beyond the largest cutoff are ignored.
        n_relevant: float64 ``(n_users,)`` ``|R|``, or None (then recall, ndcg and map
            raise :class:`EvaluationError`).
        cutoffs: validated, strictly ascending, the largest ``<= K``.
        gains, ideal: graded NDCG inputs (see :func:`ndcg_at_k`), or None for binary.
        map_denominator: one of :data:`MAP_DENOMINATORS`.
        kernel: compute ``hits@k``, the binary DCG and the AP sums at the cutoffs with the
            compiled kernel (:func:`bench.metrics.kernels.cutoff_sums`: one pass over
            the ranks, the same float64 additions in the same order, so the same bits);
            the caller checked that it is available. ``hits`` must then be bool.
    """

    def __init__(
        self,
        hits: np.ndarray,
        n_relevant: np.ndarray | None,
        cutoffs: Sequence[int],
        *,
        gains: np.ndarray | None = None,
        ideal: np.ndarray | None = None,
        map_denominator: str = "relevant",
        kernel: bool = False,
    ) -> None:
        self.ks = np.asarray(cutoffs, dtype=np.int64)
        self.kmax = int(self.ks[-1])
        self.hits = hits[:, : self.kmax]
        self.n_users = self.hits.shape[0]
        self.kf = self.ks.astype(np.float64)
        self.n_relevant = n_relevant
        self.gains = gains
        self.ideal = ideal
        self.map_denominator = map_denominator
        self.kernel = kernel

    def relevant(self, metric: str) -> np.ndarray:
        """``|R|`` as a float64 column ``(n_users, 1)``; an error naming ``metric`` if absent."""
        if self.n_relevant is None:
            raise EvaluationError(f"n_relevant: required for {metric!r}")
        return self.n_relevant[:, None]

    @cached_property
    def cumulative(self) -> np.ndarray:
        """``hits@i`` for every rank ``i = 1..kmax`` (int32, exact)."""
        return np.cumsum(self.hits, axis=1, dtype=np.int32)

    @cached_property
    def count(self) -> np.ndarray:
        """``hits@k`` at every cutoff, float64 ``(n_users, len(cutoffs))``."""
        if self.kernel:
            return self._sums[0].astype(np.float64)
        return self.cumulative[:, self.ks - 1].astype(np.float64)

    @cached_property
    def binary_dcg(self) -> np.ndarray:
        """``sum_{hit ranks i <= k} 1 / log2(i + 1)`` at every cutoff (binary DCG@k)."""
        if self.kernel:
            return self._sums[1]
        return _at_cutoffs(np.multiply(self.hits, _discounts(self.kmax)), self.ks)

    @cached_property
    def precision_sums(self) -> np.ndarray:
        """``sum_{hit ranks i <= k} hits@i / i`` at every cutoff (the AP@k numerator)."""
        if self.kernel:
            return self._sums[2]
        # Precision@i = hits@i / i at each hit rank i, 0 elsewhere.
        prec_at_hit = np.zeros(self.hits.shape, dtype=np.float64)
        np.divide(self.cumulative, np.arange(1, self.kmax + 1, dtype=np.float64),
                  out=prec_at_hit, where=self.hits)
        return _at_cutoffs(prec_at_hit, self.ks)

    @cached_property
    def _sums(self) -> tuple:
        """The kernel's ``(count, binary DCG, AP sums)`` in one pass over the ranks."""
        return kernels.cutoff_sums(self.hits, self.ks, _discounts(self.kmax))


def precision_columns(r: RankedHits) -> np.ndarray:
    """:func:`precision_at_k` at every cutoff of ``r``."""
    return r.count / r.kf


def recall_columns(r: RankedHits) -> np.ndarray:
    """:func:`recall_at_k` at every cutoff of ``r``."""
    return _divide(r.count, r.relevant("recall"))


def hit_rate_columns(r: RankedHits) -> np.ndarray:
    """:func:`hit_rate_at_k` at every cutoff of ``r``."""
    return (r.count > 0).astype(np.float64)


def ndcg_columns(r: RankedHits) -> np.ndarray:
    """:func:`ndcg_at_k` at every cutoff of ``r`` (graded when ``r`` has gains)."""
    if (r.gains is None) != (r.ideal is None):
        raise ConfigError(
            "ndcg: expected both `gains` and `ideal` for graded NDCG (or neither for "
            "binary), got only one of them"
        )
    n_rel = r.relevant("ndcg")
    disc = _discounts(r.kmax)
    if r.gains is None:
        dcg = r.binary_dcg
        depth = np.minimum(r.ks[None, :], n_rel[:, 0].astype(np.int64)[:, None])
        idcg = _ideal_binary_dcg(r.kmax)[depth]
    else:
        g = np.asarray(r.gains, dtype=np.float64)
        if g.ndim != 2 or g.shape[0] != r.n_users or g.shape[1] < r.kmax:
            raise EvaluationError(
                f"gains: expected shape ({r.n_users}, >= {r.kmax}), got {g.shape}"
            )
        dcg = _at_cutoffs(g[:, : r.kmax] * disc, r.ks)
        idcg = _at_cutoffs(_ideal_dcg(r.ideal, r.n_users, r.kmax) * disc, r.ks)
    return _divide(dcg, idcg)


def average_precision_columns(r: RankedHits) -> np.ndarray:
    """:func:`average_precision_at_k` at every cutoff of ``r``."""
    if r.map_denominator not in MAP_DENOMINATORS:
        raise ConfigError(
            f"map_denominator: expected one of {list(MAP_DENOMINATORS)}, "
            f"got {r.map_denominator!r}"
        )
    n_rel = r.relevant("map")
    total = r.precision_sums
    den = n_rel if r.map_denominator == "relevant" else np.minimum(r.kf[None, :], n_rel)
    return _divide(total, den)


def reciprocal_rank_columns(r: RankedHits) -> np.ndarray:
    """:func:`reciprocal_rank_at_k` at every cutoff of ``r``."""
    first = np.argmax(r.hits, axis=1)  # index of the first True (0 when none)
    found = r.hits[np.arange(r.n_users), first]
    rank = np.where(found, first + 1, r.kmax + 1)  # kmax + 1: no hit at any cutoff
    return np.where(rank[:, None] <= r.ks[None, :], 1.0 / rank[:, None], 0.0)


def _ideal_dcg(ideal, n_users: int, kmax: int) -> np.ndarray:
    """``ideal`` as ``(n_users, kmax)``; narrower input only when provably complete."""
    ideal = np.asarray(ideal, dtype=np.float64)
    if ideal.ndim != 2 or ideal.shape[0] != n_users:
        raise EvaluationError(f"ideal: expected shape ({n_users}, K'), got {ideal.shape}")
    width = ideal.shape[1]
    if width >= kmax:
        return ideal[:, :kmax]
    if width and np.any(ideal[:, -1] != 0):
        raise EvaluationError(
            f"ideal: expected at least {kmax} columns (or a zero last column), got {width} "
            "columns that may be truncated; build it with ideal_gains(relevant, k)"
        )
    return np.pad(ideal, ((0, 0), (0, kmax - width)))
