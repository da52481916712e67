"""One shard's evaluation: top-k lists of its users -> per-user metrics -> a partial.

:class:`ShardEvaluator` takes blocks of a shard's users -- their ids, each model's top-k
lists and their relevant items -- evaluates them with the harness's own evaluators
(:func:`bench.metrics.evaluate_rankings`; with ``item_counts``, the per-user ARP and
novelty of :func:`bench.metrics.beyond_accuracy`) and adds the per-user values and the
item exposure to a :class:`~bench.shards.partial.ShardAccumulator`. Per-user metrics are
row-wise (a user's value depends on its own row only), so they are the same in any block
of any shard.

Columns are named ``"<model>/<metric>@<k>"``; pairs compare each ranking metric of a
candidate with a baseline. Users with no relevant item are left out, as the ranking
evaluator does (counted in ``counts["excluded"]``); the exposure of every model
(``counts["<model>/exposure"]``, rows = cutoffs, columns = items, the number of evaluated
users whose top-k list holds the item) is counted over the same users, so coverage and
Gini (:func:`bench.shards.merge.list_metrics`) describe the lists that were scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bench.errors import DataError, describe
from bench.metrics import beyond_accuracy, evaluate_rankings, n_relevant
from bench.metrics.keys import MetricKey, check_cutoffs
from bench.shards.merge import MergedSummary, list_metrics, summarize
from bench.shards.partial import ShardAccumulator, ShardPartial

__all__ = ["ShardEvaluator", "exposure_counts", "summarize_evaluation"]


def exposure_counts(recs: np.ndarray, cutoffs: Sequence[int], n_items: int) -> np.ndarray:
    """int64 ``(len(cutoffs), n_items)``: in how many lists each item is in the top ``k``
    (padding ``-1`` skipped)."""
    recs = np.asarray(recs)
    out = np.zeros((len(cutoffs), n_items), dtype=np.int64)
    for j, k in enumerate(cutoffs):
        head = recs[:, :k].ravel()
        out[j] = np.bincount(head[head >= 0], minlength=n_items)[:n_items]
    return out


class ShardEvaluator:
    """Evaluate a shard's users block by block into a mergeable partial.

    Args:
        models: model names, the keys of the ``recs`` mapping :meth:`add` receives.
        n_items: items in the vocabulary (codes ``0..n_items-1``).
        cutoffs: ascending cutoffs ``k``.
        metrics: ranking metric names (:data:`bench.metrics.RANKING_METRICS`).
        pairs: ``(baseline, candidate)`` model pairs compared on every ranking metric.
        item_counts: training interactions per item; with it, per-user ``arp@k`` and
            ``novelty@k`` are added and coverage/Gini have a catalogue.
        n_train_users: users with training history (novelty's ``N``).
        n_resamples, seed: the Poisson bootstrap (:mod:`bench.shards.weights`).
    """

    def __init__(self, models: Sequence[str], *, n_items: int, cutoffs: Sequence[int] = (10,),
                 metrics: Sequence[str] = ("ndcg", "recall"),
                 pairs: Sequence[tuple[str, str]] = (), item_counts=None,
                 n_train_users: int | None = None, n_resamples: int = 1000, seed: int = 0):
        self.models = tuple(models)
        self.cutoffs = check_cutoffs(cutoffs)
        self.metrics = tuple(metrics)
        self.n_items = int(n_items)
        self.item_counts = None if item_counts is None else np.asarray(item_counts)
        self.n_train_users = n_train_users
        keys = [str(MetricKey(m, k)) for m in self.metrics for k in self.cutoffs]
        self.ranking_keys = keys
        if self.item_counts is not None:
            keys = keys + [str(MetricKey(m, k)) for m in ("novelty", "arp") for k in self.cutoffs]
        self.keys = keys
        columns = [f"{model}/{key}" for model in self.models for key in keys]
        unknown = sorted({m for pair in pairs for m in pair} - set(self.models))
        if unknown:
            raise DataError(describe("pairs", f"names of models {list(self.models)}", unknown))
        column_pairs = [(f"{a}/{key}", f"{b}/{key}") for a, b in pairs for key in self.ranking_keys]
        shape = (len(self.cutoffs), self.n_items)
        counts = {f"{model}/exposure": shape for model in self.models}
        counts["excluded"] = (1,)
        self.accumulator = ShardAccumulator(columns, pairs=column_pairs, n_resamples=n_resamples,
                                            seed=seed, counts=counts)

    def add(self, user_ids, recs: Mapping[str, np.ndarray], relevant) -> None:
        """Evaluate one block of users (rows of ``recs[model]`` and ``relevant`` match
        ``user_ids``) and add it to the partial."""
        ids = np.asarray(user_ids)
        if not (n_relevant(relevant) > 0).any():  # nothing to evaluate in this block
            self.accumulator.add(ids[:0], {c: np.empty(0) for c in self.accumulator.columns},
                                 {"excluded": np.array([ids.size])})
            return
        values, counts, kept = {}, {}, None
        for model in self.models:
            ranking = evaluate_rankings(recs[model], relevant, self.cutoffs, self.metrics)
            if kept is None:
                kept = ranking.users
            lists = np.asarray(recs[model])[kept]
            for key in self.ranking_keys:
                values[f"{model}/{key}"] = ranking.per_user[key]
            if self.item_counts is not None:
                beyond = beyond_accuracy(lists, self.cutoffs, item_counts=self.item_counts,
                                         n_train_users=self.n_train_users)
                for key in self.keys[len(self.ranking_keys):]:
                    values[f"{model}/{key}"] = beyond.per_user[key]
            counts[f"{model}/exposure"] = exposure_counts(lists, self.cutoffs, self.n_items)
        counts["excluded"] = np.array([ids.size - kept.size])
        self.accumulator.add(ids[kept], values, counts)

    def partial(self) -> ShardPartial:
        """The shard's partial (see :class:`~bench.shards.partial.ShardPartial`)."""
        return self.accumulator.partial()


def summarize_evaluation(partial: ShardPartial, *, item_counts=None, confidence: float = 0.95
                         ) -> tuple[MergedSummary, dict[str, float]]:
    """The merged summary, plus ``{"<model>/coverage@k": ..., "<model>/gini@k": ...}``
    from the exposure counts (when ``item_counts`` is given)."""
    summary = summarize(partial, confidence=confidence)
    lists: dict[str, float] = {}
    if item_counts is not None:
        for name, exposure in partial.counts.items():
            if not name.endswith("/exposure"):
                continue
            model = name.rsplit("/", 1)[0]
            cutoffs = _cutoffs_of(partial, model)
            for metric, values in list_metrics(exposure, item_counts).items():
                for k, v in zip(cutoffs, values, strict=True):
                    lists[f"{model}/{MetricKey(metric, k)}"] = float(v)
    return summary, lists


def _cutoffs_of(partial: ShardPartial, model: str) -> list[int]:
    ks = []
    for column in partial.columns:
        owner, _, key = column.partition("/")
        if owner == model:
            k = MetricKey.parse(key).k
            if k not in ks:
                ks.append(k)
    return sorted(ks)
