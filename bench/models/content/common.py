"""What the content models share: feature checks, item vectors and history weights."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bench.errors import ConfigError
from bench.models.base import Recommender
from bench.models.content.vectors import build_item_vectors, check_vector_params

WEIGHTINGS = ("centred", "rating", "binary")


class ContentModel(Recommender):
    """Base of the content rung: builds item vectors and per-user history weights in ``fit``.

    Subclasses set the hyperparameters ``weights``, ``min_df``, ``year_bin`` and
    ``weighting`` in their constructor, call :meth:`_fit_content` from ``_fit`` and
    :meth:`history_weights` from ``_score``.
    """

    family = "content"
    #: the catalogue: items with features but no training row are scored from them
    extra_vocabulary = frozenset({"item_features"})

    def _fit_content(self, train, item_features) -> None:
        owner = type(self).__name__
        if item_features is None:
            raise ConfigError(
                f"{owner}: needs item features (genres, titles, years or tags), but the dataset "
                f"has none; use a dataset that provides them (e.g. movielens_small, ml_100k, "
                f"ml_latest_small, synthetic)"
            )
        check_vector_params(owner, self.weights, self.min_df, self.year_bin)
        if self.weighting not in WEIGHTINGS:
            raise ConfigError(
                f"{owner} weighting: expected one of {list(WEIGHTINGS)}, got {self.weighting!r}"
            )
        vectors = build_item_vectors(
            item_features, weights=self.weights, min_df=int(self.min_df),
            year_bin=int(self.year_bin),
        )  # fmt: skip
        if not vectors.has_vector.any():
            raise ConfigError(
                f"{owner}: no item has a non-empty vector with weights {self.weights!r}; the "
                f"dataset's item features lack every weighted block"
            )
        self.vectors_ = vectors
        self.item_matrix_ = vectors.matrix
        self.item_mask_ = vectors.has_vector
        self.uses_ratings_ = bool(train.has_ratings and self.weighting != "binary")
        if self.uses_ratings_:
            ratings = train.to_csr("rating", dtype=np.float64)
            ratings.sort_indices()
            self.ratings_ = ratings
            sums = np.asarray(ratings.sum(axis=1)).ravel()
            self.user_mean_ = np.divide(
                sums, self.user_counts_, out=np.zeros_like(sums), where=self.user_counts_ > 0
            )

    def history_weights(self, users: np.ndarray, history: sp.csr_matrix) -> sp.csr_matrix:
        """Weight of each history entry: CSR with the structure of ``history`` (float32).

        ``binary``: every entry 1. ``rating``: the user's training rating of the item.
        ``centred``: that rating minus the user's mean training rating. A row falls back
        to binary weights (every entry 1) when (a) the data has no rating, (b) any of its
        history entries has no training rating (fold-in history, or users unknown to
        training), or (c) with ``centred``, every centred weight is 0 (all the user's
        ratings are equal, including a single rating): centring then removes all
        information, and the history is read as equally liked.
        """
        h = sp.csr_matrix(history, dtype=np.float32, copy=True)
        h.sort_indices()
        h.sum_duplicates()
        h.data[:] = 1.0
        if not self.uses_ratings_ or h.nnz == 0:
            return h
        n_items = h.shape[1]
        rows = np.repeat(np.arange(h.shape[0]), np.diff(h.indptr))
        known = users >= 0
        safe = np.where(known, users, 0)
        r = self.ratings_[safe]
        r_rows = np.repeat(np.arange(r.shape[0]), np.diff(r.indptr))
        r_keep = known[r_rows]
        r_keys = r_rows[r_keep].astype(np.int64) * n_items + r.indices[r_keep]
        r_vals = r.data[r_keep]
        h_keys = rows.astype(np.int64) * n_items + h.indices
        pos = np.searchsorted(r_keys, h_keys)
        pos_c = np.minimum(pos, max(len(r_keys) - 1, 0))
        rated = (pos < len(r_keys)) & (r_keys[pos_c] == h_keys) if len(r_keys) else pos < 0
        values = np.where(rated, r_vals[pos_c] if len(r_vals) else 0.0, 0.0)
        if self.weighting == "centred":
            values = values - self.user_mean_[safe][rows]
        binary = np.bincount(rows[~rated], minlength=h.shape[0]) > 0
        if self.weighting == "centred":
            mass = np.bincount(rows, weights=np.abs(values), minlength=h.shape[0])
            binary |= mass <= 1e-12
        h.data = np.where(binary[rows], 1.0, values).astype(np.float32)
        return h
