"""Bayesian Personalized Ranking matrix factorisation through the ``implicit`` library."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from bench import validate
from bench.errors import ParameterError
from bench.models.collaborative.factors import LatentFactorModel


class ImplicitBPR(LatentFactorModel):
    """Matrix factorisation trained on the pairwise BPR loss (Rendle et al., 2009).

    Assumes every training interaction is a positive signal (rating values are ignored:
    ``implicit`` treats any non-zero as "liked") and that an item a user has not touched is
    less preferred than one they have. Negatives are drawn by ``implicit`` in proportion
    to item popularity (it samples a random training interaction's item) and, with
    ``verify_negative_samples``, re-drawn when the user already has the item.

    ``implicit`` appends one column to the factors: the user's last column is fixed to 1
    and the item's last column is the learned item bias, so ``user_factors @
    item_factors.T`` -- the score computed here in user batches, exactly what
    ``implicit``'s own ``recommend`` ranks by -- includes the bias.

    Cannot score: users without training interactions (their factors were never
    trained; ``implicit`` would rank them by item bias alone) and items never seen in
    training (zero factors) -- both NaN. Always on the CPU, BLAS limited to one thread
    during fit.

    Determinism: ``implicit`` runs SGD "hogwild" across threads (unsynchronised updates)
    and seeds one random stream per thread, so with ``num_threads`` other than 1 the
    factors change from run to run and with the core count; ``num_threads=1`` gives the
    same factors bit for bit for the same seed.

    Args:
        factors: latent dimensions (the bias column comes on top).
        learning_rate: SGD step size.
        regularization: L2 penalty applied in each SGD step.
        iterations: epochs; each draws as many (user, positive, negative) triples as
            there are training interactions.
        verify_negative_samples: skip sampled negatives the user actually has.
        seed: random seed for the initial factors and the samplers.
        num_threads: SGD threads; 1 for reproducible results, 0 = all cores.
    """

    family = "collaborative"

    def __init__(
        self,
        *,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        verify_negative_samples: bool = True,
        seed: int = 0,
        num_threads: int = 1,
    ):
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.verify_negative_samples = verify_negative_samples
        self.seed = seed
        self.num_threads = num_threads

    def _check_params(self) -> None:
        validate.positive_integer("factors", self.factors)
        validate.positive_integer("iterations", self.iterations)
        validate.positive_number("learning_rate", self.learning_rate)
        validate.number("regularization", self.regularization, minimum=0)
        validate.integer("num_threads", self.num_threads, 0)
        validate.seed("seed", self.seed)
        validate.boolean("verify_negative_samples", self.verify_negative_samples)

    def reproducible_fit(self) -> bool:
        """Only with one SGD thread (see Determinism above)."""
        return super().reproducible_fit() and self.num_threads == 1

    def _fit(self, train, item_features, user_features) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking
        from implicit.recommender_base import ModelFitError

        self._check_params()
        matrix = sp.csr_matrix(self.seen_, dtype=np.float32)
        with threadpool_limits(limits=1, user_api="blas"):
            model = BayesianPersonalizedRanking(
                factors=int(self.factors),
                learning_rate=float(self.learning_rate),
                regularization=float(self.regularization),
                iterations=int(self.iterations),
                verify_negative_samples=bool(self.verify_negative_samples),
                random_state=int(self.seed),
                num_threads=int(self.num_threads),
            )
            try:
                model.fit(matrix, show_progress=False)
            except ModelFitError:  # SGD diverged: the step is too large for this data
                raise ParameterError(
                    "learning_rate", "a step small enough for SGD to converge (the factors "
                    "became NaN)", self.learning_rate) from None
        self.model_ = model
        self._store_factors(model.user_factors, model.item_factors)
