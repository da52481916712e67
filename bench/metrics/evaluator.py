"""The vectorised ranking evaluator: lists + relevance -> per-user metrics at every cutoff.

:func:`evaluate_rankings` builds the hit matrix once at the largest cutoff (see
:mod:`bench.metrics.hits`), then evaluates every requested metric at every cutoff from it
(see :mod:`bench.metrics.ranking`), in blocks of users so temporary memory stays bounded.
Users with no relevant item are excluded and counted; users with short or empty lists are
evaluated, their missing ranks being misses.

Metric keys are ``"<metric>@<k>"`` (:func:`metric_key`); :func:`mlflow_key` turns them
into keys MLflow accepts (``"ndcg@10"`` -> ``"ndcg_at_10"``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import scipy.sparse as sp

from bench import validate
from bench.errors import ConfigError, EvaluationError
from bench.metrics.hits import _as_csr, _hit_matrix, _ideal_gains, _row_block
from bench.metrics.ranking import MAP_DENOMINATORS, RANKING_METRICS, _metric_table

__all__ = ["RankingEvaluation", "evaluate_rankings", "metric_key", "mlflow_key"]

#: Users per block (hit matrix + metrics); bounds temporary memory and keeps it in cache.
_BLOCK_ROWS = 8_192


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
    """``metric_key("ndcg", 10) == "ndcg@10"``."""
    if not isinstance(name, str) or not name or "@" in name:
        raise ConfigError(f"metric name: expected a non-empty name without '@', got {name!r}")
    return f"{name}@{validate.positive_integer('metric cutoff', k)}"


_MLFLOW_UNSAFE = re.compile(r"[^0-9A-Za-z_\-. /]")


def mlflow_key(key: str) -> str:
    """A metric key MLflow accepts: ``"ndcg@10"`` -> ``"ndcg_at_10"``.

    ``@`` becomes ``_at_`` and ``+`` becomes ``plus`` (``"ndcg@10.21+"`` ->
    ``"ndcg_at_10.21plus"``); any other character MLflow refuses (it allows letters,
    digits, ``_ - . /`` and space) becomes ``_``. Segment suffixes after a ``.`` are kept.
    """
    if not isinstance(key, str) or not key:
        raise ConfigError(f"metric key: expected a non-empty string, got {key!r}")
    return _MLFLOW_UNSAFE.sub("_", key.replace("@", "_at_").replace("+", "plus"))


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
        metrics: names from ``precision, recall, ndcg, map, mrr, hit_rate``.
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
    ks = _check_cutoffs(cutoffs)
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
    rel = _as_csr(relevant)
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

    # Blocks of users, end to end: hit matrix (once, at the largest cutoff), then every
    # metric at every cutoff. Temporary memory is bounded by the block, not by n_users.
    per_user = {metric_key(m, k): np.empty(users.size, dtype=np.float64) for m in names for k in ks}
    scratch: dict = {}
    done = 0
    for start in range(0, recs.shape[0], _BLOCK_ROWS):
        stop = min(recs.shape[0], start + _BLOCK_ROWS)
        block_rel = _row_block(rel, start, stop)
        hits, gains = _hit_matrix(
            recs[start:stop], block_rel, with_gains=graded_ndcg, row_offset=start, scratch=scratch
        )
        ideal = _ideal_gains(block_rel, ks[-1]) if graded_ndcg else None
        keep = n_rel_all[start:stop] > 0
        n_keep = int(keep.sum())
        if n_keep == 0:
            continue
        if n_keep < keep.size:
            hits = hits[keep]
            if graded_ndcg:
                gains, ideal = gains[keep], ideal[keep]
        table = _metric_table(
            hits,
            n_rel_all[start:stop][keep].astype(np.float64),
            ks,
            names,
            gains=gains,
            ideal=ideal,
            map_denominator=map_denominator,
        )
        for m in names:
            for j, k in enumerate(ks):
                per_user[metric_key(m, k)][done : done + n_keep] = table[m][:, j]
        done += n_keep
    return RankingEvaluation(
        per_user=per_user, users=users, n_relevant=n_rel_all[users], n_excluded=n_excluded
    )


def _check_cutoffs(cutoffs) -> tuple[int, ...]:
    if isinstance(cutoffs, int | np.integer) and not isinstance(cutoffs, bool):
        cutoffs = (cutoffs,)
    try:
        values = list(cutoffs)
    except TypeError:
        values = None
    ok = (
        values is not None
        and len(values) > 0
        and all(isinstance(k, int | np.integer) and not isinstance(k, bool) for k in values)
        and all(k > 0 for k in values)
        and all(b > a for a, b in pairwise(values))
    )
    if not ok:
        shown = values if values is not None else cutoffs
        raise ConfigError(
            f"eval.cutoffs: expected strictly ascending positive integers, got {shown!r}"
        )
    return tuple(int(k) for k in values)


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
