"""Scoring one model's lists on one split: accuracy, segments, beyond-accuracy, metric@k.

:class:`FoldContext` holds what every model on a split shares (relevance, who is
evaluated, training popularity, item features, history lengths), built once per split;
:func:`evaluate_lists` turns a model's :class:`~bench.models.base.TopK` into the mean
metrics, the per-user table (the input of every statistic, segment and CI gate) and the
metric@k curves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.config import EvalSettings
from bench.data.dataset import Dataset
from bench.errors import EvaluationError
from bench.metrics import evaluate_rankings
from bench.metrics.beyond import beyond_accuracy
from bench.metrics.keys import NEW_ITEMS, MetricKey, history_segment, rule_segment
from bench.metrics.registry import CURVE_METRICS
from bench.metrics.segments import history_buckets, new_item_relevance
from bench.parquet import frame_bytes
from bench.splits.base import Split

__all__ = [
    "CURVE_METRICS",
    "FoldContext",
    "ListEvaluation",
    "accuracy_keys",
    "evaluate_lists",
    "recommends_unseen",
    "relevance",
    "segment_metrics",
    "served_means",
    "served_users",
    "unserved_to_nan",
]

def relevance(split: Split, settings: EvalSettings) -> tuple[sp.csr_matrix, np.ndarray, int]:
    """Relevant test items per user (CSR over the full vocabularies) and who is evaluated.

    A test interaction is relevant when its rating is at least the threshold (every
    test interaction when the threshold is null or the data has no rating). Returns the
    matrix, the codes of users with at least one relevant item, and the number of
    users with any test interaction.
    """
    test = split.test
    keep = np.ones(len(test), dtype=bool)
    if settings.relevance_threshold is not None and test.has_ratings:
        keep = test.ratings >= settings.relevance_threshold
    gains = test.ratings if (settings.graded and test.has_ratings) else np.ones(len(test))
    rel = sp.csr_matrix(
        (gains[keep].astype(np.float64), (test.users[keep], test.items[keep])),
        shape=(test.n_users, test.n_items),
    )
    rel.sort_indices()
    n_test_users = len(test.present_users())
    users = np.flatnonzero(np.diff(rel.indptr) > 0)
    if len(users) == 0:
        thr = settings.relevance_threshold
        raise EvaluationError(
            f"split '{split.name}' fold {split.fold}: the test set has {len(test)} rows but no "
            f"relevant item (rating >= {thr}); lower eval.relevance_threshold or set it to null"
        )
    return rel, users, n_test_users


@dataclass(frozen=True, eq=False)
class FoldContext:
    """What every model evaluated on one split (or one fold-in level) shares.

    Attributes:
        split: the split.
        relevant: CSR (all users x items) of relevant test items.
        users: codes of the evaluated users (at least one relevant item).
        n_test_users: users with any test row (evaluated or not).
        history: optional CSR (rows aligned with ``users``) of fold-in rows given to models.
        history_len: per evaluated user, training rows + fold-in rows.
        item_counts: training interactions per item code.
        n_train_users: users with at least one training row.
        genres: genre multi-hot CSR aligned to the item codes, or ``None``.
        new_relevant: ``relevant`` restricted to items never seen in training, or ``None``.
    """

    split: Split
    relevant: sp.csr_matrix
    users: np.ndarray
    n_test_users: int
    history: sp.csr_matrix | None
    history_len: np.ndarray
    item_counts: np.ndarray
    n_train_users: int
    genres: sp.csr_matrix | None
    new_relevant: sp.csr_matrix | None

    @classmethod
    def build(
        cls,
        split: Split,
        dataset: Dataset,
        settings: EvalSettings,
        history: sp.csr_matrix | None = None,
        relevance_data: tuple[sp.csr_matrix, np.ndarray, int] | None = None,
    ) -> FoldContext:
        """Build from a split; ``history`` (rows = evaluated users) defaults to its fold-in."""
        relevant, users, n_test = relevance_data or relevance(split, settings)
        train = split.train
        if history is None and split.fold_in is not None and len(split.fold_in):
            history = split.fold_in.to_csr()[users]
        item_counts = train.item_counts()  # counted once per part, shared (read-only)
        user_counts = train.user_counts()
        hist_len = user_counts[users].astype(np.int64)
        if history is not None:
            hist_len = hist_len + np.diff(history.indptr)
        genres = None
        if dataset.item_features is not None and dataset.item_features.genres.shape[1] > 0:
            genres = dataset.item_features.align(train.item_ids).genres.tocsr()
        new_rel = None
        if settings.new_items:
            new_rel = new_item_relevance(relevant, item_counts)
            if new_rel.nnz == 0:
                new_rel = None
        return cls(
            split=split, relevant=relevant, users=users, n_test_users=n_test,
            history=history, history_len=hist_len, item_counts=item_counts,
            n_train_users=int((user_counts > 0).sum()), genres=genres, new_relevant=new_rel,
        )

    def relevant_frame(self) -> pd.DataFrame:
        """The evaluated users' relevant test pairs by id, with their ratings when rated.

        Every model's ``relevant.parquet`` artifact is this frame (kept only as the
        encoded :attr:`relevant_parquet`: the frame is 80 MB at the ml-25m shape); ratings
        are read by code from the test CSR, with no join on ids.
        """
        test = self.split.test
        rel = self.relevant[self.users].tocoo()
        frame = pd.DataFrame({"user_id": test.user_ids[self.users[rel.row]],
                              "item_id": test.item_ids[rel.col]})
        if test.has_ratings:
            ratings = test.to_csr("rating", dtype=np.float64)[self.users]
            frame["rating"] = np.asarray(ratings[rel.row, rel.col]).ravel()
        return frame

    @cached_property
    def relevant_parquet(self) -> bytes:
        """:meth:`relevant_frame` as the bytes of its Parquet file, encoded once per split:
        every model's cell writes the same ``relevant.parquet``."""
        return frame_bytes(self.relevant_frame())

    @property
    def n_new_relevant(self) -> int:
        """Relevant (user, item) pairs of evaluated users whose item is new."""
        return 0 if self.new_relevant is None else int(self.new_relevant[self.users].nnz)


@dataclass(frozen=True, eq=False)
class ListEvaluation:
    """Result of :func:`evaluate_lists`.

    Attributes:
        metrics: mean of every metric over evaluated users (accuracy at every cutoff,
            beyond-accuracy per-user means and list-set aggregates).
        per_user: one row per evaluated user: ``user_id``, ``n_relevant``, ``history``
            (length), ``history_bucket``, every accuracy metric, the same metrics against
            new items only (``<key>.new_items``, NaN for users without a new relevant
            item) and the per-user beyond-accuracy metrics (NaN for empty lists).
        curves: ``{"ndcg": array of means at k = 1..curve_k, ...}``.
        n_excluded: test users without a relevant item.
    """

    metrics: dict[str, float]
    per_user: pd.DataFrame
    curves: dict[str, np.ndarray]
    n_excluded: int


def evaluate_lists(
    items: np.ndarray, ctx: FoldContext, settings: EvalSettings, curve_k: int = 0
) -> ListEvaluation:
    """Every metric of one model's lists (``items``: codes, rows aligned with ``ctx.users``).

    ``items`` may be longer than ``settings.k_max`` (to draw metric@k curves up to
    ``curve_k``); the metrics at the configured cutoffs read only the first ``k_max``
    columns.
    """
    rel = ctx.relevant[ctx.users]
    kw = {"graded": settings.graded, "map_denominator": settings.map_denominator}
    ev = evaluate_rankings(items, rel, cutoffs=settings.cutoffs, metrics=settings.metrics, **kw)
    served = served_users(items[ev.users])
    per_user_values = unserved_to_nan(ev.per_user, served)
    metrics = served_means(per_user_values, served)
    uid = ctx.split.test.user_ids
    per_user = pd.DataFrame({
        "user_id": uid[ctx.users[ev.users]],
        "n_relevant": ev.n_relevant,
        "history": ctx.history_len[ev.users],
        "history_bucket": history_buckets(ctx.history_len[ev.users], settings.history_edges),
    })
    for key, values in per_user_values.items():
        per_user[key] = values

    if ctx.new_relevant is not None:
        # a model whose lists hold no item unseen in training cannot serve new items at
        # all: its new-item metrics are n/a (NaN), not a structural 0
        recommends_new = recommends_unseen(items[ev.users], ctx.item_counts)
        new_rel = ctx.new_relevant[ctx.users][ev.users]
        rows = np.flatnonzero(np.diff(new_rel.indptr) > 0)
        per_user[str(MetricKey("n_relevant", segment=NEW_ITEMS))] = np.diff(new_rel.indptr)
        if rows.size:
            ev_new = evaluate_rankings(
                items[ev.users][rows], new_rel[rows], cutoffs=settings.cutoffs,
                metrics=settings.metrics, **kw,
            )
            able = served[rows] & recommends_new
            for key, values in unserved_to_nan(ev_new.per_user, able).items():
                col = np.full(len(per_user), np.nan)
                col[rows] = values
                per_user[str(MetricKey.parse(key).over(NEW_ITEMS))] = col

    lists = items[ev.users][:, : settings.k_max]
    beyond = beyond_accuracy(
        lists, settings.cutoffs, item_counts=ctx.item_counts,
        n_train_users=ctx.n_train_users, item_features=ctx.genres,
    )
    for key, values in beyond.per_user.items():
        per_user[key] = values
        finite = values[np.isfinite(values)]
        metrics[key] = float(finite.mean()) if finite.size else float("nan")
    metrics.update(beyond.aggregate)

    curves: dict[str, np.ndarray] = {}
    if curve_k > 0:
        width = min(curve_k, items.shape[1])
        ks = list(range(1, width + 1))
        names = [m for m in CURVE_METRICS if m in settings.metrics] or list(CURVE_METRICS)
        ev_k = evaluate_rankings(items[:, :width], rel, cutoffs=ks, metrics=names, **kw)
        means = served_means(ev_k.per_user, served)
        curves = {m: np.array([means[str(MetricKey(m, k))] for k in ks]) for m in names}
    return ListEvaluation(
        metrics=metrics, per_user=per_user, curves=curves,
        n_excluded=ev.n_excluded + (ctx.n_test_users - len(ctx.users)),
    )


def served_users(items: np.ndarray) -> np.ndarray:
    """Bool per list row: the model recommended at least one item (``-1`` is padding).

    A model that can score no item for a user (NaN everywhere: an unknown user it cannot
    fold in, an item-less content profile) returns an empty list. That user was **not
    served**: their metrics are "n/a" (NaN), not 0, and they are counted
    (``n_users_empty_list``), so "cannot serve" never reads as "serves badly".
    """
    return np.asarray(items >= 0).any(axis=1)


def recommends_unseen(items: np.ndarray, train_item_counts: np.ndarray) -> bool:
    """Does any list hold an item with no training row? ``-1`` (padding) is skipped.

    A model that never recommends such an item (a collaborative model knows only trained
    items) cannot serve new items: its metrics against new items are "n/a", not 0.
    """
    listed = items[items >= 0]
    return bool(listed.size) and bool((train_item_counts[listed] == 0).any())


def unserved_to_nan(per_user: dict[str, np.ndarray],
                    served: np.ndarray) -> dict[str, np.ndarray]:
    """``per_user`` with NaN for the users not served (a copy only where needed)."""
    if served.all():
        return dict(per_user)
    out = {}
    for key, values in per_user.items():
        values = np.array(values, dtype=np.float64)
        values[~served] = np.nan
        out[key] = values
    return out


def served_means(per_user: dict[str, np.ndarray], served: np.ndarray) -> dict[str, float]:
    """Mean of each per-user array over the served users; NaN when nobody was served.

    With every user served this is ``np.mean`` of the whole array, exactly as before.
    """
    if served.all():
        return {key: float(np.mean(values)) for key, values in per_user.items()}
    if not served.any():
        return {key: float("nan") for key in per_user}
    return {key: float(np.mean(np.asarray(values)[served])) for key, values in per_user.items()}


def accuracy_keys(settings: EvalSettings) -> list[str]:
    """The ranking-metric keys a run evaluates: ``["precision@1", ..., "hit_rate@20"]``."""
    return [str(MetricKey(m, k)) for m in settings.metrics for k in settings.cutoffs]


def segment_metrics(per_user: pd.DataFrame, keys: list[str]) -> dict[str, float]:
    """Means per history bucket, rule segment and new items, keyed ``<metric>.<segment>``.

    Keys: ``ndcg@10.hist_1-5``, ``ndcg@10.seg_<label>``, ``ndcg@10.new_items``, plus
    ``users.<segment>`` with the number of users in the segment.
    """
    out: dict[str, float] = {}
    parsed = [MetricKey.parse(key) for key in keys]
    users = MetricKey("users")
    for col, segment in (("history_bucket", history_segment), ("segment", rule_segment)):
        if col not in per_user:
            continue
        for label, group in per_user.groupby(col, sort=False, observed=True):
            out[str(users.over(segment(label)))] = float(len(group))
            for key in parsed:
                out[str(key.over(segment(label)))] = float(group[str(key)].mean())
    new_cols = [str(k.over(NEW_ITEMS)) for k in parsed if str(k.over(NEW_ITEMS)) in per_user]
    if new_cols:
        has = per_user[str(MetricKey("n_relevant", segment=NEW_ITEMS))] > 0
        out[str(users.over(NEW_ITEMS))] = float(has.sum())
        for new in new_cols:
            out[new] = float(per_user.loc[has, new].mean())
    return out
