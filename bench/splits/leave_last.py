"""Leave-last-n-out: each user's latest interactions are the test set.

The classic sequential protocol ("predict what the user did next"). A user's rows are
ordered by time, ties broken by the canonical order (item code), so the split is
deterministic. Users too short to give ``n`` rows and keep ``min_train`` stay wholly in
train and are counted.
"""

from __future__ import annotations

import numpy as np

from bench import validate
from bench.data.interactions import Interactions
from bench.errors import SplitError
from bench.splits.base import Splitter, take_per_user, time_rank


class LeaveLastNSplitter(Splitter):
    """Per user, the last ``n`` rows by time -> test; the rest -> train.

    Args:
        n: rows per user held out (>= 1).
        min_train: rows a user must keep in train (>= 0); users with fewer than
            ``n + min_train`` rows stay wholly in train
            (``info["users_too_short_kept_in_train"]``).
        validation: share of each user's training rows carved out as validation by the
            same protocol: the user's latest ``validation x n_u`` training rows (rounded
            half up, keeping ``min_train``).
    """

    name = "leave_last_n"

    def __init__(self, *, n: int = 1, min_train: int = 1, validation: float | None = None):
        self.n = n
        self.min_train = min_train
        self.validation = validation

    def _check_params(self) -> None:
        validate.integer("n", self.n, 1)
        validate.integer("min_train", self.min_train, 0)

    def _validation_splitter(self, fraction: float) -> Splitter:
        return _LatestShareSplitter(fraction=fraction, min_train=self.min_train)

    def _hint(self, problem: str) -> str:
        if problem == "test":
            return (
                f"every user has fewer than n + min_train = {self.n + self.min_train} rows; "
                f"lower {self.key('n')} or {self.key('min_train')}"
            )
        return "raise split.min_train"

    def _split(self, data: Interactions) -> list[np.ndarray]:
        _require_timestamps(self.name, data)
        counts = data.user_counts()
        eligible = counts >= self.n + self.min_train
        self.info_["users_too_short_kept_in_train"] = int(
            np.count_nonzero((counts > 0) & ~eligible)
        )
        from_end = counts[data.users] - time_rank(data)  # 1 for the latest row
        test = eligible[data.users] & (from_end <= self.n)
        return [test.view(np.int8).copy()]


class _LatestShareSplitter(Splitter):
    """Per user, the latest ``fraction x n_u`` rows (half up, keeping ``min_train``) -> test.

    The validation carve of :class:`LeaveLastNSplitter`.
    """

    name = "leave_last_n"

    def __init__(self, *, fraction: float = 0.1, min_train: int = 1):
        self.fraction = fraction
        self.min_train = min_train

    def _check_params(self) -> None:
        validate.fraction("validation", self.fraction)
        validate.integer("min_train", self.min_train, 0)

    def _split(self, data: Interactions) -> list[np.ndarray]:
        _require_timestamps(self.name, data)
        counts = data.user_counts()
        take = take_per_user(counts, self.fraction, self.min_train, self.info_)
        from_end = counts[data.users] - time_rank(data)
        test = from_end <= take[data.users]
        return [test.view(np.int8).copy()]


def _require_timestamps(name: str, data: Interactions) -> None:
    if not data.has_timestamps:
        raise SplitError(
            f"split '{name}': {data.source} has no timestamps; the last rows of a user are "
            f"defined by time (choose a split that needs none, e.g. split=holdout)"
        )
