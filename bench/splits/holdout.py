"""Random per-user holdout: a random share of every user's rows is the test set.

Stratified by user, so every user with enough history is evaluated and every test user
also has training rows (like LensKit's ``SampleFrac`` per-user sampling).
"""

from __future__ import annotations

import numpy as np

from bench import validate
from bench.data.interactions import Interactions
from bench.splits.base import (
    Splitter,
    random_rank,
    take_per_user,
    validation_seed,
)


class RandomHoldoutSplitter(Splitter):
    """Per user, ``round(fraction x n_u)`` random rows -> test; the rest -> train.

    Args:
        fraction: share of each user's rows held out, rounded half up per user; in (0, 1).
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same split.
        min_train: rows a user keeps in train (>= 0). A user's test share is capped to
            ``n_u - min_train`` (``info["users_test_rows_capped"]``); users with no row
            to spare stay wholly in train (``info["users_too_short_kept_in_train"]``).
        validation: share of each user's training rows carved out as validation the same
            way, with its own random stream.
    """

    name = "holdout"

    def __init__(
        self,
        *,
        fraction: float = 0.2,
        seed: int = 0,
        min_train: int = 1,
        validation: float | None = None,
    ):
        self.fraction = fraction
        self.seed = seed
        self.min_train = min_train
        self.validation = validation

    def _check_params(self) -> None:
        validate.fraction("fraction", self.fraction)
        validate.seed("seed", self.seed)
        validate.integer("min_train", self.min_train, 0)

    def _validation_splitter(self, fraction: float) -> Splitter:
        return RandomHoldoutSplitter(
            fraction=fraction, seed=validation_seed(self.seed), min_train=self.min_train
        )

    def _hint(self, problem: str) -> str:
        if problem == "test":
            return (
                f"no user has a row to spare after rounding; raise {self.key('fraction')} or "
                f"lower {self.key('min_train')}"
            )
        return f"lower {self.key('fraction')}"

    def _split(self, data: Interactions) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        counts = data.user_counts()
        take = take_per_user(counts, self.fraction, self.min_train, self.info_)
        rank = random_rank(data.users, data.n_users, rng)
        test = rank < take[data.users]
        return [test.view(np.int8).copy()]
