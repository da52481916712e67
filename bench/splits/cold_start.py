"""Cold-start splits: held-out users or items that the training data never mentions.

* :class:`UserColdStartSplitter` holds out a random share of the users. A model meets
  them only at recommend time, optionally with their first ``fold_in`` interactions as
  history (``Split.fold_in``); the rest of their rows are the test set. It is not
  temporal across users (the training rows of other users may be later than the
  tested ones; the leakage audit says so): the temporal user cold start is
  :class:`~bench.splits.temporal.GlobalTemporalSplitter` with ``cold_users="only"``.
* :class:`ItemColdStartSplitter` holds out a random share of the items: every row of a
  held-out item is a test row, so only models that can score unseen items (content,
  hybrids) can recommend them.

The base class checks after every split that no test, validation or fold-in row
belongs to a user (item) that also appears in train.
"""

from __future__ import annotations

import numpy as np

from bench import validate
from bench.data.interactions import Interactions
from bench.errors import SplitError
from bench.splits.base import (
    FOLD_IN,
    TEST,
    TRAIN,
    Splitter,
    first_n_by_time,
    pick_fraction,
    validation_seed,
)


class UserColdStartSplitter(Splitter):
    """A random share of users held out: their first ``fold_in`` rows -> fold-in, the rest -> test.

    Args:
        fraction: share of the users (with at least one row) held out, rounded half up,
            at least one; in (0, 1).
        fold_in: how many of a held-out user's first rows by time are given to the
            model as history at recommend time (>= 0; needs timestamps when > 0). When
            the last of them shares its second with later rows, the whole same-second
            group is history (:func:`~bench.splits.base.first_n_by_time`), so history is
            strictly earlier than every tested row of the user. Held-out users left with
            nothing to test are counted (``info["held_out_users_all_fold_in"]``).
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same split.
        validation: share of the training users held out as validation users the same
            way (their fold-in rows join ``Split.fold_in``), with its own random stream.
    """

    name = "user_cold_start"
    labels_used = frozenset({TRAIN, TEST, FOLD_IN})
    cold_axis = "user"

    def __init__(
        self,
        *,
        fraction: float = 0.2,
        fold_in: int = 0,
        seed: int = 0,
        validation: float | None = None,
    ):
        self.fraction = fraction
        self.fold_in = fold_in
        self.seed = seed
        self.validation = validation

    def _check_params(self) -> None:
        validate.fraction("fraction", self.fraction)
        validate.integer("fold_in", self.fold_in, 0)
        validate.seed("seed", self.seed)

    def _validation_splitter(self, fraction: float) -> Splitter:
        return UserColdStartSplitter(
            fraction=fraction, fold_in=self.fold_in, seed=validation_seed(self.seed)
        )

    def _hint(self, problem: str) -> str:
        if problem == "test":
            return (
                f"every held-out user has at most fold_in={self.fold_in} rows; lower "
                f"{self.key('fold_in')} or raise {self.key('fraction')}"
            )
        return f"lower {self.key('fraction')} (every user was held out)"

    def _split(self, data: Interactions) -> list[np.ndarray]:
        if self.fold_in > 0 and not data.has_timestamps:
            raise SplitError(
                f"split '{self.name}': {data.source} has no timestamps; a user's first "
                f"fold_in={self.fold_in} rows are defined by time (set {self.key('fold_in')}=0)"
            )
        rng = np.random.default_rng(self.seed)
        counts = data.user_counts()
        held = pick_fraction(counts, self.fraction, rng)
        held_rows = held[data.users]
        labels = held_rows.view(np.int8).copy()  # held-out -> TEST, others -> TRAIN
        if self.fold_in > 0:  # whole same-second groups: history strictly before test
            labels[first_n_by_time(data, held_rows, self.fold_in)] = FOLD_IN
        self.info_["held_out_users"] = int(np.count_nonzero(held))
        tested = np.bincount(data.users[labels == TEST], minlength=data.n_users)
        self.info_["held_out_users_all_fold_in"] = int(np.count_nonzero(held & (tested == 0)))
        return [labels]


class ItemColdStartSplitter(Splitter):
    """A random share of items held out: every row of those items -> test; the rest -> train.

    Args:
        fraction: share of the items (with at least one row) held out, rounded half up,
            at least one; in (0, 1).
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same split.
        validation: share of the training items held out as validation items the same
            way, with its own random stream.
    """

    name = "item_cold_start"
    cold_axis = "item"

    def __init__(self, *, fraction: float = 0.2, seed: int = 0, validation: float | None = None):
        self.fraction = fraction
        self.seed = seed
        self.validation = validation

    def _check_params(self) -> None:
        validate.fraction("fraction", self.fraction)
        validate.seed("seed", self.seed)

    def _validation_splitter(self, fraction: float) -> Splitter:
        return ItemColdStartSplitter(fraction=fraction, seed=validation_seed(self.seed))

    def _hint(self, problem: str) -> str:
        if problem == "test":
            return f"raise {self.key('fraction')}"
        return f"lower {self.key('fraction')} (every item was held out)"

    def _split(self, data: Interactions) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        held = pick_fraction(data.item_counts(), self.fraction, rng)
        self.info_["held_out_items"] = int(np.count_nonzero(held))
        return [held[data.items].view(np.int8).copy()]
