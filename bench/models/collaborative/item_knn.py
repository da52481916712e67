"""Item-item nearest neighbours through ``implicit.nearest_neighbours``."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from bench import validate
from bench.errors import ConfigError
from bench.models.base import Recommender

SIMILARITIES = ("cosine", "bm25", "tfidf")
VALUES = ("ones", "rating")


class ItemKNN(Recommender):
    """Item-based k-nearest-neighbours: score = history @ item-item similarity.

    Assumes a user will like items that co-occur, across training users, with the items
    already in their history. ``implicit`` learns a sparse item x item similarity matrix
    ``S`` that keeps each item's ``K`` most similar items (``cosine`` on the user vectors,
    ``tfidf`` = cosine after TF-IDF weighting, ``bm25`` = dot product after Okapi BM25
    weighting). The score of item ``i`` for a user with history row ``h`` is ``sum_j h_j
    S[j, i]``, exactly what ``implicit``'s ``recommend`` ranks by; it is computed here as
    one sparse product per user batch. An item sharing no neighbour with the history
    scores 0 (a real, lowest score).

    ``values``: with ``ones`` every interaction weighs 1, for fitting and in the history;
    with ``rating`` the rating is the weight in both. A history item with no training
    rating (fold-in history arrives without values) then weighs the mean training rating,
    ``fold_in_weight_``, a documented constant rather than a guess per user.

    Scores any user with a non-empty history, including fold-in users absent from
    training. Cannot score: users with no history at all (NaN row) and items never seen
    in training (no similarity; NaN column).

    Args:
        similarity: ``cosine``, ``bm25`` or ``tfidf``.
        K: neighbours kept per item.
        bm25_k1: BM25 saturation (``bm25`` only).
        bm25_b: BM25 length normalisation (``bm25`` only).
        values: ``ones`` or ``rating`` (see above).
        num_threads: threads for the similarity computation (0 = all cores); every item's
            neighbour list is computed independently, so the result does not depend on it.
    """

    family = "collaborative"

    def __init__(
        self,
        *,
        similarity: str = "cosine",
        K: int = 50,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        values: str = "ones",
        num_threads: int = 0,
    ):
        self.similarity = similarity
        self.K = K
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.values = values
        self.num_threads = num_threads

    def _check_params(self, train) -> None:
        name = type(self).__name__
        validate.one_of("similarity", self.similarity, SIMILARITIES)
        validate.positive_integer("K", self.K)
        validate.number("bm25_k1", self.bm25_k1, minimum=0)
        validate.number("bm25_b", self.bm25_b, minimum=0, maximum=1,
                        expected="a number in [0, 1]")
        check_values(name, self.values, train)
        validate.integer("num_threads", self.num_threads, 0)

    def _fit(self, train, item_features, user_features) -> None:
        from implicit.nearest_neighbours import (
            BM25Recommender,
            CosineRecommender,
            TFIDFRecommender,
        )
        from implicit.utils import ParameterWarning

        self._check_params(train)
        matrix = train.to_csr(self.values, dtype=np.float32)
        if self.similarity == "cosine":
            model = CosineRecommender(K=int(self.K), num_threads=int(self.num_threads))
        elif self.similarity == "tfidf":
            model = TFIDFRecommender(K=int(self.K), num_threads=int(self.num_threads))
        else:
            model = BM25Recommender(
                K=int(self.K),
                K1=float(self.bm25_k1),
                B=float(self.bm25_b),
                num_threads=int(self.num_threads),
            )
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            # implicit re-weights through COO internally and then warns about its own input
            warnings.simplefilter("ignore", ParameterWarning)
            model.fit(matrix, show_progress=False)
        self.model_ = model
        self.similarity_ = sp.csr_matrix(model.similarity, dtype=np.float64)
        self.values_ = matrix
        self.fold_in_weight_ = float(matrix.data.mean()) if self.values == "rating" else 1.0
        self.item_mask_ = self.known_items()

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        if self.values == "ones":
            weights = sp.csr_matrix(history, dtype=np.float64)
        else:
            weights = weighted_history(users, history, self.values_, self.fold_in_weight_)
        scores = np.asarray((weights @ self.similarity_).todense(), dtype=np.float32)
        scores[np.diff(history.indptr) == 0] = np.nan
        scores[:, ~self.item_mask_] = np.nan
        return scores


def check_values(name: str, values: str, train) -> None:
    """Refuse an unknown ``values`` option, or ``rating`` on data without ratings."""
    if values not in VALUES:
        raise ConfigError(f"{name} values: expected one of {list(VALUES)}, got {values!r}")
    if values == "rating" and not train.has_ratings:
        raise ConfigError(f"{name} values='rating' needs ratings; the data has none")


def weighted_history(
    users: np.ndarray, history: sp.csr_matrix, values: sp.csr_matrix, fill: float
) -> sp.csr_matrix:
    """History rows weighted by the training values; other history items weigh ``fill``.

    ``history`` is the binary batch history (training rows plus fold-in); ``values`` the
    users x items training matrix the model was fitted on. A history cell that is also a
    training interaction takes its training value, any other one (fold-in) ``fill``.
    """
    history = sp.csr_matrix(history, dtype=np.float64)
    history.data[:] = 1.0
    known = np.asarray(users) >= 0
    if not known.any():
        return history * fill
    rows = values[np.where(known, users, 0)]
    rows = sp.diags(known.astype(np.float64)) @ rows
    trained = sp.csr_matrix(rows.multiply(history), dtype=np.float64)
    trained.eliminate_zeros()
    covered = trained.copy()
    covered.data[:] = 1.0
    extra = history - covered
    extra.eliminate_zeros()
    return sp.csr_matrix(trained + extra * fill)
