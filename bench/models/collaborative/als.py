"""Implicit-feedback matrix factorisation (ALS) through the ``implicit`` library."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from bench import validate
from bench.errors import ConfigError
from bench.models.collaborative.factors import LatentFactorModel, als_user_step


class ImplicitALS(LatentFactorModel):
    """Alternating least squares on confidence-weighted implicit feedback (Hu et al., 2008).

    Assumes interactions signal preference regardless of rating value (``confidence:
    ones``) or in proportion to it (``confidence: rating``). Scores are the dot product of
    user and item factors, computed in user batches from the learned arrays. Items never
    seen in training score NaN: the factors carry no information about them. Always on
    the CPU (``use_gpu`` is fixed to false), with BLAS limited to one thread during fit
    as ``implicit`` recommends.

    Fold-in (users absent from training, e.g. the user cold-start protocol's held-out
    users with their first n interactions as history): such a user's factors are solved
    at recommend time from its history row, exactly as ``implicit``'s
    ``recalculate_user`` / ``recommend(..., recalculate_user=True)`` would -- one ALS
    user step against the fixed item factors (see
    :func:`~bench.models.collaborative.factors.als_user_step`), batched over users. The
    history row is given the values the training rows had before ``alpha``: 1 per item
    with ``weighting: none``; with ``weighting: bm25`` the BM25 weight the row would get
    as one more training row (the training matrix's idf, user count and mean row length,
    the row's own length). History items never seen in training are left out (their
    factors carry no information). Still NaN: users with an empty history, users whose
    history holds only items never seen in training, and every fold-in user under
    ``confidence: rating`` (the history passed at recommend time carries no rating value,
    so the confidence the model was trained with cannot be reproduced). Users with
    training interactions keep their learned factors, even when given extra history.

    Args:
        factors: latent dimensions.
        regularization: L2 penalty on the factors.
        alpha: confidence scale: ``implicit`` 0.7 uses ``c_ui = alpha * value`` for the
            observed cells (``c = 1``, preference 0, for the others).
        iterations: ALS sweeps.
        confidence: ``ones`` (every interaction weighs 1) or ``rating``.
        weighting: ``none`` or ``bm25``: re-weight each user's row with Okapi BM25
            (``implicit.nearest_neighbours.bm25_weight``) before fitting, which damps
            heavy users and very popular items.
        bm25_k1, bm25_b: BM25 saturation and length-normalisation parameters.
        seed: random seed for the factor initialisation.
        num_threads: threads for fitting (0 = all cores).
    """

    family = "collaborative"

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        confidence: str = "ones",
        weighting: str = "none",
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        seed: int = 0,
        num_threads: int = 0,
    ):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.confidence = confidence
        self.weighting = weighting
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.seed = seed
        self.num_threads = num_threads

    def _check_params(self) -> None:
        validate.positive_integer("factors", self.factors)
        validate.number("regularization", self.regularization, minimum=0)
        validate.positive_number("alpha", self.alpha)
        validate.positive_integer("iterations", self.iterations)
        validate.number("bm25_k1", self.bm25_k1, minimum=0)
        validate.number("bm25_b", self.bm25_b, minimum=0, maximum=1)
        validate.seed("seed", self.seed)
        # a negative count reaches OpenMP as a huge allocation and aborts the process
        validate.integer("num_threads", self.num_threads, 0)

    def _fit(self, train, item_features, user_features) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.recommender_base import ModelFitError

        self._check_params()
        if self.confidence not in ("ones", "rating"):
            raise ConfigError(
                f"ImplicitALS confidence: expected 'ones' or 'rating', got {self.confidence!r}"
            )
        if self.confidence == "rating" and not train.has_ratings:
            raise ConfigError("ImplicitALS confidence='rating' needs ratings; the data has none")
        if self.weighting not in ("none", "bm25"):
            raise ConfigError(
                f"ImplicitALS weighting: expected 'none' or 'bm25', got {self.weighting!r}"
            )
        matrix = train.to_csr("rating" if self.confidence == "rating" else "ones")
        if self.weighting == "bm25":
            from implicit.nearest_neighbours import bm25_weight

            # what bm25_weight computes from the training matrix, kept to weight fold-in
            # rows as it would weight one more row of it
            counts = np.bincount(matrix.indices, minlength=matrix.shape[1])
            self.bm25_idf_ = np.log(float(matrix.shape[0])) - np.log1p(counts)
            self.bm25_mean_length_ = float(np.ravel(matrix.sum(axis=1)).mean())
            matrix = bm25_weight(matrix, K1=float(self.bm25_k1), B=float(self.bm25_b)).tocsr()
        with threadpool_limits(limits=1, user_api="blas"):
            model = AlternatingLeastSquares(
                factors=int(self.factors),
                regularization=float(self.regularization),
                alpha=float(self.alpha),
                iterations=int(self.iterations),
                random_state=int(self.seed),
                num_threads=int(self.num_threads),
            )
            try:
                model.fit(sp.csr_matrix(matrix, dtype=np.float32), show_progress=False)
            except ModelFitError:
                raise ConfigError(
                    f"ImplicitALS: the factors became NaN while fitting (factors={self.factors}, "
                    f"regularization={self.regularization}, alpha={self.alpha}); expected "
                    f"settings that converge: raise regularization or lower alpha"
                ) from None
        self._store_factors(model.user_factors, model.item_factors)

    def _fold_in_factors(self, history: sp.csr_matrix) -> np.ndarray | None:
        """One exact ALS user step per history row (see the class docstring)."""
        if self.confidence != "ones":
            return None
        lengths = np.diff(history.indptr)
        row_of = np.repeat(np.arange(history.shape[0]), lengths)
        values = np.ones(history.nnz, dtype=np.float64)  # the value of a training cell
        if self.weighting == "bm25":
            k1, b = float(self.bm25_k1), float(self.bm25_b)
            norm = (1.0 - b) + b * lengths / self.bm25_mean_length_
            values = values * (k1 + 1.0) / (k1 * norm[row_of] + values)
            values = values * self.bm25_idf_[history.indices]
        values = values * float(self.alpha)
        keep = self.item_mask_[history.indices]  # items seen in training
        conf = sp.csr_matrix(
            (values[keep], (row_of[keep], history.indices[keep])), shape=history.shape
        )
        factors = np.full((history.shape[0], self.item_factors_.shape[1]), np.nan, np.float32)
        placed = np.diff(conf.indptr) > 0
        if placed.any():
            factors[placed] = als_user_step(
                conf[placed], self.item_factors_, float(self.regularization)
            )
        return factors
