"""Leave-last-n-out: each user's latest interactions are the test set.

The classic sequential protocol ("predict what the user did next"). A user's rows are
ordered by time. Users too short to give ``n`` rows and keep ``min_train`` stay wholly
in train and are counted.

**Ties.** Rows of one user with the same timestamp have no order (MovieLens stamps many
ratings of a session with the same second: on ml-100k, 415 of 943 users have two or
more rows at their latest second). Breaking them by item id, as this splitter once did,
held out the highest id, and ids are not random: on ml-100k (n = 1) the held-out item of
those users had 104 ratings on average against 165 for a tied item drawn at random. Two
documented rules, chosen with ``ties``:

``random`` (default)
    same-second rows are ordered at random, seeded by ``seed``: exactly ``n`` rows per
    eligible user, and which tied row is held out is unbiased (every tied row equally
    likely). A tied row may stay in train at the same second as a test row.
``group``
    the whole same-second group that straddles the boundary goes to test, so a user's
    training rows are all strictly earlier than its test rows; a user then gives ``n``
    or more rows (``info["users_test_rows_tie_extended"]``). A user whose rows before
    that group number fewer than ``min_train`` stays wholly in train.
"""

from __future__ import annotations

import numpy as np

from bench import validate
from bench.data.interactions import Interactions
from bench.errors import SplitError
from bench.splits.base import (
    Splitter,
    is_canonical,
    shuffled_time_rank,
    take_per_user,
    time_rank,
    validation_seed,
)

TIES = ("random", "group")


class LeaveLastNSplitter(Splitter):
    """Per user, the last ``n`` rows by time -> test; the rest -> train.

    Args:
        n: rows per user held out (>= 1).
        min_train: rows a user must keep in train (>= 0); users with fewer than
            ``n + min_train`` rows stay wholly in train
            (``info["users_too_short_kept_in_train"]``).
        ties: how same-second rows at the boundary are split: ``random`` (a seeded
            random order among them) or ``group`` (the whole tie group to test); see
            the module docstring.
        seed: seed of the random order among tied rows (``ties: random``).
        validation: share of each user's training rows carved out as validation by the
            same protocol: the user's latest ``validation x n_u`` training rows (rounded
            half up, keeping ``min_train``), ties split by the same rule.
    """

    name = "leave_last_n"

    def __init__(self, *, n: int = 1, min_train: int = 1, ties: str = "random", seed: int = 0,
                 validation: float | None = None):
        self.n = n
        self.min_train = min_train
        self.ties = ties
        self.seed = seed
        self.validation = validation

    def _check_params(self) -> None:
        validate.integer("n", self.n, 1)
        validate.integer("min_train", self.min_train, 0)
        validate.one_of("ties", self.ties, TIES)
        validate.seed("seed", self.seed)

    def _validation_splitter(self, fraction: float) -> Splitter:
        return _LatestShareSplitter(fraction=fraction, min_train=self.min_train, ties=self.ties,
                                    seed=validation_seed(self.seed))

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
        take = np.where(eligible, self.n, 0)
        test = latest_rows(data, take, self.ties, self.seed, self.min_train, self.info_)
        return [test.view(np.int8).copy()]


class _LatestShareSplitter(Splitter):
    """Per user, the latest ``fraction x n_u`` rows (half up, keeping ``min_train``) -> test.

    The validation carve of :class:`LeaveLastNSplitter`, with its tie rule.
    """

    name = "leave_last_n"

    def __init__(self, *, fraction: float = 0.1, min_train: int = 1, ties: str = "random",
                 seed: int = 0):
        self.fraction = fraction
        self.min_train = min_train
        self.ties = ties
        self.seed = seed

    def _check_params(self) -> None:
        validate.fraction("validation", self.fraction)
        validate.integer("min_train", self.min_train, 0)

    def _split(self, data: Interactions) -> list[np.ndarray]:
        _require_timestamps(self.name, data)
        counts = data.user_counts()
        take = take_per_user(counts, self.fraction, self.min_train, self.info_)
        test = latest_rows(data, take, self.ties, self.seed, self.min_train, self.info_)
        return [test.view(np.int8).copy()]


def latest_rows(
    data: Interactions, take: np.ndarray, ties: str, seed: int, min_train: int, info: dict
) -> np.ndarray:
    """Boolean mask of each user's latest ``take[user]`` rows under the tie rule ``ties``.

    ``random``: same-second rows in a random order seeded by ``seed`` (exactly
    ``take[user]`` rows). ``group``: every row at or after the timestamp of the user's
    ``take``-th latest row (at least ``take[user]`` rows); a user left with fewer than
    ``min_train`` earlier rows gives none. Records in ``info`` the users whose test rows
    a tie group extended (``users_test_rows_tie_extended``) and the users kept wholly in
    train because of one (``users_tie_group_kept_in_train``), for ``group``.
    """
    counts = data.user_counts()
    take_row = take[data.users]
    if ties == "random":
        rank = _shuffled_rank(data, np.random.default_rng(seed))
        return (counts[data.users] - rank) <= take_row
    from_end = counts[data.users] - time_rank(data)  # 1 for the latest row
    boundary = np.full(len(counts), np.iinfo(np.int64).max, dtype=np.int64)
    at = (from_end == take_row) & (take_row > 0)
    boundary[data.users[at]] = data.timestamps[at]
    test = data.timestamps >= boundary[data.users]
    n_test = np.bincount(data.users[test], minlength=len(counts))
    short = (n_test > 0) & (counts - n_test < min_train)
    test &= ~short[data.users]
    info["users_test_rows_tie_extended"] = int(np.count_nonzero((n_test > take) & ~short))
    info["users_tie_group_kept_in_train"] = int(np.count_nonzero(short))
    return test


def _shuffled_rank(data: Interactions, rng: np.random.Generator) -> np.ndarray:
    """:func:`~bench.splits.base.shuffled_time_rank` drawn over the rows in canonical
    order, so the split depends on the rows' content and the seed, not on the order the
    rows come in."""
    if is_canonical(data):
        return shuffled_time_rank(data, rng)
    order = np.lexsort((data.items, data.timestamps, data.users))
    canonical = Interactions(
        user_ids=data.user_ids, item_ids=data.item_ids, users=data.users[order],
        items=data.items[order], timestamps=data.timestamps[order],
    )
    rank = np.empty(len(data), dtype=np.int64)
    rank[order] = shuffled_time_rank(canonical, rng)
    return rank


def _require_timestamps(name: str, data: Interactions) -> None:
    if not data.has_timestamps:
        raise SplitError(
            f"split '{name}': {data.source} has no timestamps; the last rows of a user are "
            f"defined by time (choose a split that needs none, e.g. split=holdout)"
        )
