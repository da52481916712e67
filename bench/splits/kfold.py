"""K-fold cross-validation: every row is tested exactly once, across ``n_folds`` splits.

By default folds are stratified by user: each user's rows are shuffled and dealt
round-robin into the folds, starting at a random fold per user, so every fold holds
about ``1/n_folds`` of every user's rows (within one row) and short users do not all
land in fold 0. ``stratify="none"`` is plain random k-fold over all rows (Surprise's
``KFold``, scikit-learn's shuffled ``KFold``): fold sizes within one row of each other.
"""

from __future__ import annotations

import numpy as np

from bench.data.interactions import Interactions
from bench.errors import SplitError
from bench.splits.base import (
    Splitter,
    check_choice,
    check_int,
    check_seed,
    random_rank,
)

STRATIFY = ("user", "none")


class KFoldSplitter(Splitter):
    """``n_folds`` splits; fold ``i`` tests on its rows and trains on all the others.

    Args:
        n_folds: number of folds (>= 2).
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same folds.
        stratify: ``"user"`` (each user's rows spread evenly over the folds) or
            ``"none"`` (rows assigned to folds at random, ignoring users).
        validation: must stay null: every row is already tested in some fold.
    """

    name = "kfold"
    validation_allowed = False

    def __init__(
        self,
        *,
        n_folds: int = 5,
        seed: int = 0,
        stratify: str = "user",
        validation: float | None = None,
    ):
        self.n_folds = n_folds
        self.seed = seed
        self.stratify = stratify
        self.validation = validation

    def _check_params(self) -> None:
        check_int("n_folds", self.n_folds, 2)
        check_seed(self.seed)
        check_choice("stratify", self.stratify, STRATIFY)

    def _hint(self, problem: str) -> str:
        return "lower split.n_folds (a fold got no row; the data is too small for this many)"

    def _split(self, data: Interactions) -> list[np.ndarray]:
        k = int(self.n_folds)
        if k > len(data):
            raise SplitError(
                f"{self._describe()} leaves no test interaction in some fold: {data.source} has "
                f"{len(data)} rows for {k} folds; {self._hint('test')}"
            )
        rng = np.random.default_rng(self.seed)
        if self.stratify == "user":
            rank = random_rank(data.users, data.n_users, rng)
            offset = rng.integers(0, k, size=data.n_users)
            fold = (rank + offset[data.users]) % k
            counts = data.user_counts()
            self.info_["users_fewer_rows_than_folds"] = int(
                np.count_nonzero((counts > 0) & (counts < k))
            )
        else:  # deal a random permutation of the rows round-robin
            fold = np.empty(len(data), dtype=np.int64)
            fold[rng.permutation(len(data))] = np.arange(len(data), dtype=np.int64) % k
        fold = fold.astype(np.int8) if k <= 127 else fold
        return [(fold == i).view(np.int8) for i in range(k)]
