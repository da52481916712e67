"""Popularity rules: the same list for everyone, ranked by some measure of popularity.

Four variants, one class each:

=================================  ==============================================  =========
class                              score of an item                                needs
=================================  ==============================================  =========
:class:`PopularityRecommender`     training interactions (all time)                -
:class:`RecentPopularityRecommender`  interactions in the last ``window_days``     timestamps
:class:`DecayedPopularityRecommender`  sum of ``0.5 ** (age_days / half_life_days)``  timestamps
:class:`RatedPopularityRecommender`  damped mean rating                            ratings
=================================  ==============================================  =========

Time is measured back from the **cut**: the latest training timestamp (the end of the
training data), never from the test period or the wall clock. Items without evidence
(never seen, no interaction in the window, ...) score NaN: the rule cannot rank them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bench import validate
from bench.errors import ConfigError
from bench.models.base import Recommender, ScoreGroups
from bench.models.topk import rank_rows, skip_history

SECONDS_PER_DAY = 86_400.0


class _StaticScores(Recommender):
    """A rule whose scores are one vector over items, shared by every user.

    Ranking never builds the users x items score matrix (``_top_k_fast``): every user's
    list is the global ranking (score descending, ties toward the lower item code, NaN
    never ranked) with the user's history items skipped. For a user with ``s`` history
    items the answer lies in the first ``k + s`` places of that ranking, so a batch costs
    ``k`` per user plus its history entries. The lists are identical to the generic path
    (scores, masking, :func:`~bench.models.base.top_k`; a test compares them).

    It announces its shared row through
    :meth:`~bench.models.base.Recommender.shared_score_codes` (one group, every user), so
    business rules over it rank without a block too.
    """

    family = "rule"

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.scores_, (len(users), self.scores_.shape[0])).copy()

    def _shared_scores(self, users: np.ndarray) -> ScoreGroups:
        """One row for every user, known or not; the history plays no part."""
        return ScoreGroups(np.zeros(len(users), dtype=np.int64),
                           np.asarray(self.scores_, dtype=np.float32)[None, :])

    def _top_k_fast(
        self, users: np.ndarray, history: sp.csr_matrix, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        ranking, place = self._ranking()
        if exclude_seen:
            items = skip_history(ranking, place, history, k)
        else:
            items = np.full((len(users), k), -1, dtype=np.int32)
            items[:, : min(k, ranking.shape[1])] = ranking[0, :k]
        scores = self.scores_.astype(np.float32, copy=False)
        top = np.where(items >= 0, scores[np.maximum(items, 0)], np.float32(np.nan))
        return items, top.astype(np.float32, copy=False)

    def _ranking(self) -> tuple[np.ndarray, np.ndarray]:
        """:func:`~bench.models.topk.rank_rows` of the one score row (1 x n_items each),
        computed once per fit."""
        cached = getattr(self, "_ranking_cache", None)
        if cached is not None and cached[0] is self.scores_:
            return cached[1], cached[2]
        ranking, place = rank_rows(np.asarray(self.scores_, dtype=np.float32)[None, :])
        self._ranking_cache = (self.scores_, ranking, place)
        return ranking, place


class PopularityRecommender(_StaticScores):
    """Rank items by their number of training interactions (all-time popularity).

    Assumes popularity in training predicts what users will interact with next. Scores
    every user, including users it has never seen; items with no training interaction
    have no popularity evidence and score NaN (it cannot rank new items).

    Args:
        min_count: items with fewer training interactions than this score NaN.
    """

    def __init__(self, *, min_count: int = 1):
        self.min_count = min_count

    def _fit(self, train, item_features, user_features) -> None:
        min_count = validate.integer("min_count", self.min_count, 0)
        counts = self.item_counts_.astype(np.float32)
        counts[self.item_counts_ < max(1, min_count)] = np.nan
        self.scores_ = counts


class RecentPopularityRecommender(_StaticScores):
    """Rank items by their interactions in the last ``window_days`` days of training.

    Assumes what is popular *now* predicts the near future better than all-time counts
    (trends, new releases). The window is ``[cut - window_days, cut]`` where the cut is
    the latest training timestamp. Needs timestamps. Items with fewer than
    ``min_count`` interactions inside the window score NaN, including items popular only
    before it.

    Args:
        window_days: length of the window in days (> 0).
        min_count: interactions inside the window an item needs to be ranked (>= 1).
    """

    def __init__(self, *, window_days: float = 90.0, min_count: int = 1):
        self.window_days = window_days
        self.min_count = min_count

    def _fit(self, train, item_features, user_features) -> None:
        name = type(self).__name__
        validate.positive_number("window_days", self.window_days, expected="a number > 0 (days)")
        validate.integer("min_count", self.min_count, 1)
        ts = _require_timestamps(name, train)
        self.cut_ = int(ts.max())
        inside = ts >= self.cut_ - float(self.window_days) * SECONDS_PER_DAY
        counts = np.bincount(train.items[inside], minlength=train.n_items).astype(np.float32)
        counts[counts < self.min_count] = np.nan
        self.scores_ = counts


class DecayedPopularityRecommender(_StaticScores):
    """Rank items by time-decayed interaction counts.

    Each training interaction weighs ``0.5 ** (age_days / half_life_days)``, its age
    measured back from the cut (the latest training timestamp): an interaction at the
    cut counts 1, one ``half_life_days`` older counts 0.5. Assumes recent popularity
    matters more without forgetting the past outright. Needs timestamps. Items never seen
    in training score NaN (a weight is never exactly zero otherwise; an underflow to zero
    is treated as no evidence too).

    Args:
        half_life_days: the age in days at which an interaction counts half (> 0).
    """

    def __init__(self, *, half_life_days: float = 90.0):
        self.half_life_days = half_life_days

    def _fit(self, train, item_features, user_features) -> None:
        name = type(self).__name__
        validate.positive_number("half_life_days", self.half_life_days,
                                 expected="a number > 0 (days)")
        ts = _require_timestamps(name, train)
        self.cut_ = int(ts.max())
        age_days = (self.cut_ - ts.astype(np.float64)) / SECONDS_PER_DAY
        weights = np.exp2(-age_days / float(self.half_life_days))
        scores = np.bincount(train.items, weights=weights, minlength=train.n_items)
        scores[scores <= 0] = np.nan
        self.scores_ = scores.astype(np.float32)


class RatedPopularityRecommender(_StaticScores):
    """Rank items by their damped (Bayesian) mean training rating.

    ``score = (sum of ratings + damping * global mean) / (count + damping)``: an item
    with few ratings is pulled towards the global mean of all training ratings, so one
    5-star rating does not outrank a film rated 4.5 by hundreds. Assumes ratings say how
    good an item is for everybody. Needs explicit ratings. Items with fewer than
    ``min_count`` training ratings score NaN.

    Args:
        damping: pseudo-count ``m`` of global-mean ratings added to every item (>= 0;
            0 gives the raw mean).
        min_count: ratings an item needs to be ranked (>= 1).
    """

    def __init__(self, *, damping: float = 10.0, min_count: int = 1):
        self.damping = damping
        self.min_count = min_count

    def _fit(self, train, item_features, user_features) -> None:
        name = type(self).__name__
        validate.number("damping", self.damping, minimum=0)
        validate.integer("min_count", self.min_count, 1)
        if not train.has_ratings:
            raise ConfigError(
                f"{name}: needs explicit ratings, but {train.source} has none; "
                f"use rule_popular for implicit data"
            )
        r = train.ratings.astype(np.float64)
        self.global_mean_ = float(r.mean())
        total = np.bincount(train.items, weights=r, minlength=train.n_items)
        n = np.bincount(train.items, minlength=train.n_items).astype(np.float64)
        m = float(self.damping)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = (total + m * self.global_mean_) / (n + m)
        scores[n < self.min_count] = np.nan
        self.scores_ = scores.astype(np.float32)


def _require_timestamps(name: str, train) -> np.ndarray:
    if not train.has_timestamps:
        raise ConfigError(
            f"{name}: needs interaction timestamps, but {train.source} has none; "
            f"use rule_popular for data without time"
        )
    return train.timestamps
