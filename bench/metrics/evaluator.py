"""The vectorised ranking evaluator: lists + relevance -> per-user metrics at every cutoff.

:func:`evaluate_rankings` builds the hit matrix once at the largest cutoff (see
:mod:`bench.metrics.hits`), then evaluates every requested metric at every cutoff from it
(see :mod:`bench.metrics.ranking`), in blocks of users so temporary memory stays bounded.
Users with no relevant item are excluded and counted; users with short or empty lists are
evaluated, their missing ranks being misses.

Which metrics exist, and how each is computed at every cutoff, comes from the registry
(:mod:`bench.metrics.registry`). Metric keys are ``"<metric>@<k>"``
(:class:`~bench.metrics.keys.MetricKey`; :func:`metric_key` and :func:`mlflow_key` are
shorthands for its formatter and its MLflow form, ``"ndcg@10"`` -> ``"ndcg_at_10"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from bench.errors import ConfigError, EvaluationError
from bench.metrics import kernels
from bench.metrics.hits import (
    as_relevance,
    hit_matrix_block,
    hit_matrix_rows,
    ideal_gains_csr,
    row_block,
)
from bench.metrics.keys import MetricKey, check_cutoffs
from bench.metrics.ranking import MAP_DENOMINATORS, RankedHits
from bench.metrics.registry import METRICS, RANKING_METRICS

__all__ = [
    "RANKING_METRICS", "RankingEvaluation", "evaluate_rankings", "metric_key", "mlflow_key",
]

#: Users per block (hit matrix + metrics); bounds temporary memory and keeps it in cache.
_BLOCK_ROWS = 8_192
#: Users per block when the kernels run: their temporaries are a bool hit matrix and a few
#: columns per cutoff, so larger blocks cost little memory and save per-block overhead.
_KERNEL_BLOCK_ROWS = 32_768


@dataclass(frozen=True, eq=False)
class RankingEvaluation:
    """Per-user ranking metrics of one set of recommendation lists.

    Attributes:
        per_user: ``{"ndcg@10": float64 array, ...}``, one value per *evaluated* user, in
            the order of ``users``; keys ordered metric by metric, cutoffs ascending.
        users: int64 row indices (into ``recs`` / ``relevant``) of the evaluated users.
        n_relevant: int64 ``|R|`` of the evaluated users (all > 0).
        n_excluded: users excluded because they had no relevant item.
    """

    per_user: dict[str, np.ndarray]
    users: np.ndarray
    n_relevant: np.ndarray
    n_excluded: int

    def mean(self) -> dict[str, float]:
        """Macro average over the evaluated users, per metric key (never rounded)."""
        return {key: float(np.mean(values)) for key, values in self.per_user.items()}


def metric_key(name: str, k: int) -> str:
    """``metric_key("ndcg", 10) == "ndcg@10"`` (``str(MetricKey(name, k))``)."""
    return str(MetricKey(name, k))


def mlflow_key(key: str) -> str:
    """A metric key MLflow accepts: ``"ndcg@10"`` -> ``"ndcg_at_10"``.

    ``MetricKey.parse(key).mlflow``: ``@`` becomes ``_at_`` and ``+`` becomes ``plus``
    (``"ndcg@10.21+"`` -> ``"ndcg_at_10.21plus"``); any other character MLflow refuses
    (it allows letters, digits, ``_ - . /`` and space) becomes ``_``. Segment suffixes
    after a ``.`` are kept.
    """
    return MetricKey.parse(key).mlflow


def evaluate_rankings(
    recs: np.ndarray,
    relevant: sp.spmatrix | sp.sparray,
    cutoffs: Sequence[int] = (10,),
    metrics: Sequence[str] = RANKING_METRICS,
    *,
    graded: bool = False,
    map_denominator: str = "relevant",
) -> RankingEvaluation:
    """Evaluate top-k lists against relevance: per-user metrics at every cutoff.

    Args:
        recs: ``(n_users, K)`` int32/int64 item codes in rank order, ``-1`` = padding.
            Only the first ``max(cutoffs)`` columns are read (and checked for repeats).
        relevant: sparse ``(n_users, n_items)``; row ``u`` holds user ``u``'s relevant
            items, values = gains (1.0 binary; e.g. the rating for graded NDCG).
        cutoffs: strictly ascending positive integers, the largest ``<= K``.
        metrics: ranking metric names
            (:data:`~bench.metrics.registry.RANKING_METRICS`).
        graded: NDCG with the stored values as gains (trec_eval ``ndcg_cut`` with
            relevance levels); otherwise every relevant item has gain 1. Only NDCG uses
            the gains.
        map_denominator: ``"relevant"`` (AP / ``|R|``, trec_eval) or ``"min_k_relevant"``.

    Returns:
        A :class:`RankingEvaluation` over the users with at least one relevant item.

    Raises:
        ConfigError: bad cutoffs, metric names, ``map_denominator`` or ``graded``.
        EvaluationError: malformed inputs (see :func:`~bench.metrics.hits.hit_matrix`),
            or no user has any relevant item.
    """
    ks = check_cutoffs(cutoffs)
    names = _check_metrics(metrics)
    if map_denominator not in MAP_DENOMINATORS:
        raise ConfigError(
            f"eval.map_denominator: expected one of {list(MAP_DENOMINATORS)}, "
            f"got {map_denominator!r}"
        )
    if not isinstance(graded, bool | np.bool_):
        raise ConfigError(f"eval.graded: expected true or false, got {graded!r}")
    recs = np.asarray(recs)
    if recs.ndim != 2:
        raise EvaluationError(f"recs: expected a 2-D array (users x ranks), got shape {recs.shape}")
    if ks[-1] > recs.shape[1]:
        raise ConfigError(
            f"eval.cutoffs: expected values <= {recs.shape[1]} (the length of the "
            f"recommendation lists), got {list(ks)}"
        )
    rel = as_relevance(relevant)
    if rel.shape[0] != recs.shape[0]:
        raise EvaluationError(
            f"recs/relevant: expected the same number of user rows, got {recs.shape[0]} "
            f"lists and {rel.shape[0]} relevance rows"
        )
    n_rel_all = np.diff(rel.indptr).astype(np.int64)
    users = np.flatnonzero(n_rel_all > 0).astype(np.int64)
    if users.size == 0:
        raise EvaluationError(
            "test set has no relevant item for any user; check the relevance threshold "
            f"(eval.relevance_threshold) and the split (got {recs.shape[0]} users, every "
            "relevant set empty)"
        )
    n_excluded = int(recs.shape[0] - users.size)
    graded_ndcg = bool(graded) and "ndcg" in names
    recs = recs[:, : ks[-1]]
    kernel = kernels.use_kernels(recs.shape[0] * ks[-1])

    # Blocks of users, end to end: hit matrix (once, at the largest cutoff), then every
    # metric at every cutoff. Temporary memory is bounded by the block, not by n_users.
    per_user = {metric_key(m, k): np.empty(users.size, dtype=np.float64) for m in names for k in ks}
    scratch: dict = {}
    done = 0
    block_rows = _KERNEL_BLOCK_ROWS if kernel else _BLOCK_ROWS
    for start in range(0, recs.shape[0], block_rows):
        stop = min(recs.shape[0], start + block_rows)
        block_rel = row_block(rel, start, stop) if graded_ndcg or not kernel else None
        if kernel:
            hits, gains = hit_matrix_rows(recs, rel, start, stop, with_gains=graded_ndcg,
                                          scratch=scratch)
        else:
            hits, gains = hit_matrix_block(recs[start:stop], block_rel, with_gains=graded_ndcg,
                                           row_offset=start, scratch=scratch)
        ideal = ideal_gains_csr(block_rel, ks[-1]) if graded_ndcg else None
        keep = n_rel_all[start:stop] > 0
        n_keep = int(keep.sum())
        if n_keep == 0:
            continue
        if n_keep < keep.size:
            hits = hits[keep]
            if graded_ndcg:
                gains, ideal = gains[keep], ideal[keep]
        ranked = RankedHits(
            hits,
            n_rel_all[start:stop][keep].astype(np.float64),
            ks,
            gains=gains,
            ideal=ideal,
            map_denominator=map_denominator,
            kernel=kernel,
        )
        for m in names:
            table = METRICS[m].columns(ranked)
            for j, k in enumerate(ks):
                per_user[metric_key(m, k)][done : done + n_keep] = table[:, j]
        done += n_keep
    return RankingEvaluation(
        per_user=per_user, users=users, n_relevant=n_rel_all[users], n_excluded=n_excluded
    )


def _check_metrics(metrics) -> tuple[str, ...]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    names = list(dict.fromkeys(metrics))  # keep order, drop repeats
    unknown = [m for m in names if m not in RANKING_METRICS]
    if unknown or not names:
        raise ConfigError(
            f"eval.metrics: expected names from {list(RANKING_METRICS)}, got {list(metrics)!r}"
            + (f" (unknown: {unknown})" if unknown else "")
        )
    return tuple(names)
