"""Item-item co-occurrence: "people who consumed what you consumed also consumed ..."."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from bench.errors import ConfigError
from bench.models.base import Recommender

#: The values ``similarity`` accepts.
SIMILARITIES = ("count", "cosine")


class Cooccurrence(Recommender):
    """Scores an item by how often training users consumed it together with the history.

    Fitting counts, for every pair of items, the training users who have both:
    ``C = B.T @ B`` over the binary user x item training matrix ``B``, with the diagonal
    removed and pairs shared by fewer than ``min_count`` users dropped. With ``cosine``
    each count is divided by ``sqrt(n_j * n_i)`` (the items' user counts), so that
    blockbusters do not co-occur with everything. A user's score for item ``i`` is
    ``sum_j h_j S[j, i]`` over the items ``j`` of their history ``h``: one sparse product
    per batch of users, no loop over users.

    Scores any user with a history, including fold-in users absent from training. Cannot
    score users with an empty history (NaN row) or items never seen in training (NaN
    column). An item that co-occurs with nothing in the history scores 0, a real (lowest)
    score.

    Args:
        similarity: ``count`` (raw co-occurrence counts) or ``cosine`` (counts divided by
            the geometric mean of the two items' user counts).
        min_count: co-occurrences below this are dropped (an integer >= 1); larger values
            keep only well-supported pairs.
    """

    family = "collaborative"

    def __init__(self, *, similarity: str = "cosine", min_count: int = 1):
        self.similarity = similarity
        self.min_count = min_count

    def _check_params(self) -> None:
        name = type(self).__name__
        if self.similarity not in SIMILARITIES:
            raise ConfigError(
                f"{name} similarity: expected one of {list(SIMILARITIES)}, "
                f"got {self.similarity!r}"
            )
        m = self.min_count
        if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 1:
            raise ConfigError(f"{name} min_count: expected an integer >= 1, got {m!r}")

    def _fit(self, train, item_features, user_features) -> None:
        self._check_params()
        binary = train.to_csr("ones", dtype=np.float32)
        binary.data[:] = 1.0  # a repeated (user, item) row still counts once
        counts = sp.csr_matrix(binary.T @ binary, dtype=np.float64)
        counts.setdiag(0.0)
        counts.data[counts.data < self.min_count] = 0.0
        counts.eliminate_zeros()
        if self.similarity == "cosine":
            norm = np.sqrt(np.asarray(binary.sum(axis=0), dtype=np.float64).ravel())
            inverse = sp.diags(np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0))
            counts = sp.csr_matrix(inverse @ counts @ inverse)
        self.similarity_ = counts
        self.item_mask_ = self.known_items()

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        weights = sp.csr_matrix(history, dtype=np.float64)
        weights.data[:] = 1.0
        scores = np.asarray((weights @ self.similarity_).todense(), dtype=np.float32)
        scores[np.diff(history.indptr) == 0] = np.nan
        scores[:, ~self.item_mask_] = np.nan
        return scores
