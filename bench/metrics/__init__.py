"""Metrics: ranking functions, the hit matrix, the evaluator, beyond-accuracy, rating errors.

Definitions (trec_eval-compatible) are in each function's docstring and in docs/metrics.md;
the registry (:mod:`bench.metrics.registry`) lists every metric once, and :class:`MetricKey`
names every recorded number (``ndcg@10.hist_1-5``).
"""

from bench.metrics.beyond import (
    BeyondEvaluation,
    arp_at_k,
    beyond_accuracy,
    coverage_at_k,
    gini_at_k,
    ild_at_k,
    novelty_at_k,
    personalisation_at_k,
)
from bench.metrics.evaluator import RankingEvaluation, evaluate_rankings, metric_key, mlflow_key
from bench.metrics.hits import hit_matrix, ideal_gains, n_relevant
from bench.metrics.keys import MetricKey
from bench.metrics.ranking import (
    MAP_DENOMINATORS,
    average_precision_at_k,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank_at_k,
)
from bench.metrics.rating import mae, rmse
from bench.metrics.registry import CURVE_METRICS, METRICS, RANKING_METRICS, Metric

__all__ = [
    "CURVE_METRICS",
    "MAP_DENOMINATORS",
    "METRICS",
    "RANKING_METRICS",
    "BeyondEvaluation",
    "Metric",
    "MetricKey",
    "RankingEvaluation",
    "arp_at_k",
    "average_precision_at_k",
    "beyond_accuracy",
    "coverage_at_k",
    "evaluate_rankings",
    "gini_at_k",
    "hit_matrix",
    "hit_rate_at_k",
    "ideal_gains",
    "ild_at_k",
    "mae",
    "metric_key",
    "mlflow_key",
    "n_relevant",
    "ndcg_at_k",
    "novelty_at_k",
    "personalisation_at_k",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank_at_k",
    "rmse",
]
