"""Most-popular items: the same ranking for everyone."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bench.models.base import Recommender


class PopularityRecommender(Recommender):
    """Rank items by their number of training interactions (all-time popularity).

    Assumes popularity in training predicts what users will interact with next. Scores
    every user, including users it has never seen; items with no training interaction
    have no popularity evidence and score NaN (it cannot rank new items).

    Args:
        min_count: items with fewer training interactions than this score NaN.
    """

    family = "rule"

    def __init__(self, *, min_count: int = 1):
        self.min_count = min_count

    def _fit(self, train, item_features, user_features) -> None:
        counts = self.item_counts_.astype(np.float32)
        counts[self.item_counts_ < max(1, self.min_count)] = np.nan
        self.scores_ = counts

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.scores_, (len(users), self.scores_.shape[0])).copy()
