"""Global temporal split: one cut in time for everybody; the future is the test set.

Every row at or after the cut goes to test, every row before it to train, so no model
sees an interaction newer than the ones it is evaluated on. The cut is either a date or
the time quantile of all rows. Test users with no row before the cut are the cold-start
segment: kept by default, or dropped (counted, never silently) with ``cold_users="drop"``.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from bench import validate
from bench.data.interactions import Interactions
from bench.errors import ParameterError, SplitError
from bench.splits.base import (
    DROPPED,
    TEST,
    TRAIN,
    Splitter,
)

COLD_USERS = ("keep", "drop")


class GlobalTemporalSplitter(Splitter):
    """Rows at or after a global cut in time -> test; rows before it -> train.

    Args:
        quantile: where the cut falls when ``date`` is not set: the timestamp of the row
            at position ``floor(quantile x rows)`` in time order, so at most a
            ``quantile`` share of the rows is older than the cut (ties at the cut go to
            test). In (0, 1).
        date: the cut as an ISO date or datetime (UTC unless it carries an offset);
            wins over ``quantile`` when set.
        cold_users: ``"keep"`` leaves test users with no training row in test (the
            cold-start segment); ``"drop"`` removes their test rows, counted in
            ``info["test_rows_cold_users_dropped"]`` and ``info["test_users_cold_dropped"]``.
        validation: share of the training rows carved out as validation by the same
            protocol: the latest ``validation`` share of the training rows (a second cut
            at the ``1 - validation`` quantile of the training rows, ``info["validation_cut"]``).
    """

    name = "temporal"
    labels_used = frozenset({TRAIN, TEST, DROPPED})

    def __init__(
        self,
        *,
        quantile: float = 0.8,
        date: str | dt.date | None = None,
        cold_users: str = "keep",
        validation: float | None = None,
    ):
        self.quantile = quantile
        self.date = date
        self.cold_users = cold_users
        self.validation = validation

    def _check_params(self) -> None:
        validate.fraction("quantile", self.quantile)
        validate.one_of("cold_users", self.cold_users, COLD_USERS)
        if self.date is not None:
            _date_seconds(self.date)

    def _validation_splitter(self, fraction: float) -> Splitter:
        return GlobalTemporalSplitter(quantile=1.0 - fraction, cold_users=self.cold_users)

    def _hint(self, problem: str) -> str:
        if problem == "test":
            hint = f"set an earlier {self.key('date')} or lower {self.key('quantile')}"
            if self.cold_users == "drop":
                hint += f", or keep cold users ({self.key('cold_users')}=keep)"
            return hint
        return (
            f"set a later {self.key('date')} or raise {self.key('quantile')} (many rows may "
            "share the timestamp at the cut)"
        )

    def _split(self, data: Interactions) -> list[np.ndarray]:
        if not data.has_timestamps:
            raise SplitError(
                f"split '{self.name}': {data.source} has no timestamps; a temporal split needs "
                f"a 'timestamp' column (choose a split that does not, e.g. split=holdout)"
            )
        ts = data.timestamps
        cut = self._cut(ts)
        test = ts >= cut
        labels = test.view(np.int8).copy()  # False -> TRAIN (0), True -> TEST (1)
        if self.cold_users == "drop":
            has_train = np.bincount(data.users[~test], minlength=data.n_users) > 0
            cold = test & ~has_train[data.users]
            labels[cold] = DROPPED
            self.info_["test_users_cold_dropped"] = int(
                np.count_nonzero(np.bincount(data.users[cold], minlength=data.n_users))
            )
        self.cut_ = cut
        return [labels]

    def _cut(self, ts: np.ndarray) -> int:
        if self.date is not None:
            return _date_seconds(self.date)
        k = min(len(ts) - 1, math.floor(self.quantile * len(ts) + 1e-9))
        return int(np.partition(ts, k)[k])


def _date_seconds(value: object) -> int:
    """Unix seconds of an ISO date/datetime (UTC when naive), rounded up to the second."""
    try:
        if isinstance(value, bool) or not isinstance(value, str | dt.date):
            raise TypeError
        stamp = pd.Timestamp(value)
        if pd.isna(stamp):
            raise ValueError
    except (TypeError, ValueError):
        raise ParameterError(
            "date", "an ISO date such as '2016-01-01' (UTC unless it carries an offset) or null",
            value,
        ) from None
    if stamp.tz is None:
        stamp = stamp.tz_localize("UTC")
    micros = stamp.as_unit("us").asm8.view("i8")  # microseconds since 1970: no overflow after 2262
    return -(-int(micros) // 1_000_000)  # ceil: a row at 12:00:00 is not before 12:00:00.5
