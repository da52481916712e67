"""What latent-factor models share: keeping the learned arrays and scoring from them."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bench.models.base import Recommender


class LatentFactorModel(Recommender):
    """Base of models that score ``user_factors_ @ item_factors_.T`` (ALS, BPR).

    Subclasses fit their library model and hand its arrays to :meth:`_store_factors`.
    Users without training interactions and items never seen in training score NaN: the
    factors carry no information about them.
    """

    family = "collaborative"

    def _store_factors(self, user_factors, item_factors) -> None:
        self.user_factors_ = np.ascontiguousarray(user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(item_factors, dtype=np.float32)
        self.item_mask_ = self.known_items()

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        known = self.known_users(users)
        scores = np.full((len(users), self.item_factors_.shape[0]), np.nan, dtype=np.float32)
        if known.any():
            scores[known] = self.user_factors_[users[known]] @ self.item_factors_.T
        scores[:, ~self.item_mask_] = np.nan
        return scores
