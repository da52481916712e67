"""The metric registry: one definition per metric, and every list of metrics derived from it.

A :class:`Metric` says what a metric is called, what kind it is (ranking, beyond-accuracy,
rating), which function computes it (whose docstring states the formula, the denominator
and the edge cases), whether it has a cutoff, which way is better, a one-line summary for
the evaluation card, and whether reports draw it as a metric@k curve. From
:data:`METRICS` come:

* the names ``eval.metrics`` accepts and the evaluator computes (:data:`RANKING_METRICS`,
  each through its vectorised ``columns`` form);
* the metric@k curves (:data:`CURVE_METRICS`);
* which way the gate, the report and the ladder read a difference (:func:`direction`);
* the card's metric definitions (:func:`definitions`);
* the beyond-accuracy and rating names (:data:`BEYOND_METRICS`, :data:`RATING_METRICS`).

Adding a ranking metric is one entry in :data:`DEFINITIONS` plus its function pair in
:mod:`bench.metrics.ranking` (the documented ``<name>_at_k`` and its vectorised
``<name>_columns``) and its hand-computed tests; ``tests/metrics/test_registry.py`` checks
that each registered metric is documented, evaluated and tested.

Which way is better: the accuracy metrics, coverage, novelty, ILD and personalisation
are higher-is-better. ARP and Gini are *lower*-is-better: both measure popularity bias
(ARP the mean training popularity of what is recommended, Gini the concentration of
exposure on few items), and a recommender that reaches into the long tail lowers them.
RMSE and MAE are errors: lower is better.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import bench.metrics.beyond as beyond
import bench.metrics.ranking as ranking
import bench.metrics.rating as rating
from bench.errors import ConfigError, describe
from bench.metrics.keys import MetricKey

__all__ = [
    "BEYOND",
    "BEYOND_METRICS",
    "CURVE_METRICS",
    "DEFINITIONS",
    "KINDS",
    "METRICS",
    "RANKING",
    "RANKING_METRICS",
    "RATING",
    "RATING_METRICS",
    "Metric",
    "check_key",
    "definitions",
    "direction",
    "higher_is_better",
    "metric",
    "names",
]

#: Kinds of metric: over ranked lists and relevance; over the lists alone; over ratings.
RANKING = "ranking"
BEYOND = "beyond-accuracy"
RATING = "rating"
KINDS = (RANKING, BEYOND, RATING)


@dataclass(frozen=True)
class Metric:
    """One metric's definition.

    Attributes:
        name: the name in keys and configs (``ndcg`` in ``ndcg@10``).
        kind: :data:`RANKING`, :data:`BEYOND` or :data:`RATING`.
        function: the public function computing it; its docstring is the definition.
        summary: one line for the evaluation card (the formula in brief).
        higher_is_better: which way an improvement goes.
        cutoff: whether the metric is taken at a cutoff ``k`` (keys ``name@k``).
        curve: drawn as a metric@k curve (k = 1..``report.curve_k``) in reports.
        per_user: one value per user (averaged over users) rather than one value per set
            of lists (coverage, Gini, personalisation: no per-user values, no CI).
        columns: ranking metrics only: the vectorised form,
            ``columns(RankedHits) -> (n_users, n_cutoffs)``, the evaluator calls.
    """

    name: str
    kind: str
    function: Callable
    summary: str
    higher_is_better: bool
    cutoff: bool = True
    curve: bool = False
    per_user: bool = True
    columns: Callable[[ranking.RankedHits], object] | None = None

    def __post_init__(self) -> None:
        MetricKey(self.name)  # a valid key name
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if (self.kind == RANKING) != (self.columns is not None):
            raise ValueError(f"{self.name}: ranking metrics, and only they, have `columns`")

    def key(self, k: int | None = None, segment: str | None = None) -> MetricKey:
        """This metric's key at cutoff ``k`` over ``segment`` (``ndcg.key(10) -> ndcg@10``)."""
        return MetricKey(self.name, k, segment)

    @property
    def sign(self) -> int:
        """+1 when higher is better, -1 when lower is: ``sign x difference > 0`` is better."""
        return 1 if self.higher_is_better else -1


#: Every metric, in report and card order.
DEFINITIONS: tuple[Metric, ...] = (
    # ---- ranking (accuracy): per user, at a cutoff, trec_eval-compatible
    Metric("precision", RANKING, ranking.precision_at_k,
           "hits@k / k (k even when the list is shorter)",
           higher_is_better=True, curve=True, columns=ranking.precision_columns),
    Metric("recall", RANKING, ranking.recall_at_k,
           "hits@k / |R|",
           higher_is_better=True, curve=True, columns=ranking.recall_columns),
    Metric("ndcg", RANKING, ranking.ndcg_at_k,
           "DCG@k / IDCG@k; DCG = sum_i gain_i / log2(i + 1); binary gain unless graded",
           higher_is_better=True, curve=True, columns=ranking.ndcg_columns),
    Metric("map", RANKING, ranking.average_precision_at_k,
           "sum over hit ranks i <= k of precision@i, / |R| (or min(k, |R|))",
           higher_is_better=True, columns=ranking.average_precision_columns),
    Metric("mrr", RANKING, ranking.reciprocal_rank_at_k,
           "1 / rank of the first hit within k, else 0",
           higher_is_better=True, columns=ranking.reciprocal_rank_columns),
    Metric("hit_rate", RANKING, ranking.hit_rate_at_k,
           "1 if hits@k > 0 else 0",
           higher_is_better=True, columns=ranking.hit_rate_columns),
    # ---- beyond accuracy: over the lists (and training popularity / item features)
    Metric("coverage", BEYOND, beyond.coverage_at_k,
           "distinct recommended training-catalogue items / training-catalogue items",
           higher_is_better=True, per_user=False),
    Metric("novelty", BEYOND, beyond.novelty_at_k,
           "mean -log2(max(count_i, 1) / training users) over recommended items",
           higher_is_better=True),
    Metric("ild", BEYOND, beyond.ild_at_k,
           "mean pairwise (1 - cosine) of genre vectors within a list",
           higher_is_better=True),
    Metric("arp", BEYOND, beyond.arp_at_k,
           "mean training interaction count of recommended items",
           higher_is_better=False),
    Metric("gini", BEYOND, beyond.gini_at_k,
           "Gini coefficient of exposure counts over the training catalogue",
           higher_is_better=False, per_user=False),
    Metric("personalisation", BEYOND, beyond.personalisation_at_k,
           "1 - mean pairwise cosine similarity between users' lists",
           higher_is_better=True, per_user=False),
    # ---- rating prediction: over (predicted, actual) test pairs, no cutoff
    Metric("rmse", RATING, rating.rmse,
           "sqrt(mean (predicted - rating)^2) over predictable test pairs",
           higher_is_better=False, cutoff=False, per_user=False),
    Metric("mae", RATING, rating.mae,
           "mean |predicted - rating| over predictable test pairs",
           higher_is_better=False, cutoff=False, per_user=False),
)

#: ``{name: Metric}``, read-only, in :data:`DEFINITIONS` order.
METRICS: Mapping[str, Metric] = MappingProxyType({m.name: m for m in DEFINITIONS})
if len(METRICS) != len(DEFINITIONS):
    raise ValueError("metric registry: duplicate metric names")


def names(kind: str | None = None) -> tuple[str, ...]:
    """Registered metric names (of one kind), in registry order."""
    return tuple(m.name for m in DEFINITIONS if kind is None or m.kind == kind)


#: The ranking metrics: the names ``eval.metrics`` accepts and the evaluator computes.
RANKING_METRICS = names(RANKING)
#: The beyond-accuracy metrics every run reports (ILD only with item features).
BEYOND_METRICS = names(BEYOND)
#: The rating-prediction metrics of rating models.
RATING_METRICS = names(RATING)
#: Metrics drawn as metric@k curves.
CURVE_METRICS = tuple(m.name for m in DEFINITIONS if m.curve)


def metric(name: str, where: str | None = None) -> Metric:
    """The definition of ``name``.

    Raises:
        ConfigError: an unknown name, naming ``where`` (a config key) when given.
    """
    found = METRICS.get(name) if isinstance(name, str) else None
    if found is None:
        raise ConfigError(describe(where or "metric", f"one of {list(METRICS)}", repr(name)))
    return found


def check_key(key: str | MetricKey, where: str | None = None) -> MetricKey:
    """A key of a registered metric, with a cutoff exactly when the metric takes one.

    ``check_key("ndcg@10.hist_1-5")`` passes; ``"ndcg"``, ``"rmse@10"``, ``"foo@10"`` and
    ``"ndcg@x"`` raise.

    Raises:
        ConfigError: one line starting with ``where`` (or "metric key") naming the key.
    """
    parsed = key if isinstance(key, MetricKey) else MetricKey.parse(key, where)
    what = where or "metric key"
    found = METRICS.get(parsed.metric)
    if found is None:
        raise ConfigError(describe(what, f"a key of one of the metrics {list(METRICS)}",
                                   repr(str(key))))
    if found.cutoff != (parsed.k is not None):
        shape = f"'{found.name}@<k>'" if found.cutoff else f"'{found.name}' (no cutoff)"
        raise ConfigError(describe(what, shape, repr(str(key))))
    return parsed


def direction(key: str | MetricKey) -> int:
    """+1 if higher values of the key's metric are better, -1 if lower are.

    Accepts a key (``"arp@10.hist_1-5"``) or a bare metric name (``"rmse"``).

    Raises:
        ConfigError: the key does not parse or names no registered metric.
    """
    parsed = key if isinstance(key, MetricKey) else MetricKey.parse(key)
    return metric(parsed.metric).sign


def higher_is_better(key: str | MetricKey) -> bool:
    """Whether higher values of the key's metric are better (see :func:`direction`)."""
    return direction(key) > 0


def definitions() -> dict[str, str]:
    """``{name: one-line summary}`` of every metric, for the evaluation card."""
    return {m.name: m.summary for m in DEFINITIONS}
