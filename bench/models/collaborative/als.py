"""Implicit-feedback matrix factorisation (ALS) through the ``implicit`` library."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from bench.errors import ConfigError
from bench.models.collaborative.factors import LatentFactorModel


class ImplicitALS(LatentFactorModel):
    """Alternating least squares on confidence-weighted implicit feedback (Hu et al., 2008).

    Assumes interactions signal preference regardless of rating value (``confidence:
    ones``) or in proportion to it (``confidence: rating``). Scores are the dot product of
    user and item factors, computed in user batches from the learned arrays. Users
    without training interactions and items never seen in training score NaN: the
    factors carry no information about them. Always on the CPU (``use_gpu`` is fixed to
    false), with BLAS limited to one thread during fit as ``implicit`` recommends.

    Args:
        factors: latent dimensions.
        regularization: L2 penalty on the factors.
        alpha: confidence scale, ``C = 1 + alpha * value``.
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

    def _fit(self, train, item_features, user_features) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

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
            model.fit(sp.csr_matrix(matrix, dtype=np.float32), show_progress=False)
        self._store_factors(model.user_factors, model.item_factors)
