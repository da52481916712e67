"""Global temporal split: one cut in time for everybody; the future is the test set.

Every row at or after the cut goes to test, every row before it to train, so no model
sees an interaction newer than the ones it is evaluated on. The cut is either a date or
the time quantile of all rows. Test users with no row before the cut are the cold-start
segment: kept by default, dropped (counted, never silently) with ``cold_users="drop"``,
or the only users tested with ``cold_users="only"`` (the temporal user cold start).

**Temporal given-n** (``fold_in=n``): each test user's first ``n`` rows at or after the
cut are not tested but given to the model at recommend time as history (``FOLD_IN``);
only their later rows are tested. A user new at the cut is then evaluated with ``n``
interactions of history, and a returning user with their training rows plus ``n``. The
tie rule: when the ``n``-th row shares its second with later rows, the whole same-second
group is history (:func:`~bench.splits.base.first_n_by_time`), so every fold-in row is
strictly earlier in time than every row tested for that user, and every training row is
strictly earlier than the cut.
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
    FOLD_IN,
    TEST,
    TRAIN,
    Splitter,
    first_n_by_time,
)

COLD_USERS = ("keep", "drop", "only")


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
            ``info["test_rows_cold_users_dropped"]`` and ``info["test_users_cold_dropped"]``;
            ``"only"`` keeps them and removes the test rows of users who have training
            rows instead (``info["test_rows_warm_users_dropped"]``,
            ``info["test_users_warm_dropped"]``): a temporal user cold start.
        fold_in: temporal given-n: each test user's first ``fold_in`` rows at or after the
            cut (by time, the whole same-second group of the last one included) are
            history given at recommend time (``Split.fold_in``), the later rows are tested.
            ``0`` = none. Users left with nothing to test are counted
            (``info["test_users_all_fold_in"]``), as are the rows the tie rule added
            (``info["fold_in_rows_tied_beyond_n"]``).
        validation: share of the training rows carved out as validation by the same
            protocol: the latest ``validation`` share of the training rows (a second cut
            at the ``1 - validation`` quantile of the training rows, ``info["validation_cut"]``),
            with the same ``cold_users`` and ``fold_in`` (its fold-in rows join
            ``Split.fold_in``).
    """

    name = "temporal"
    labels_used = frozenset({TRAIN, TEST, DROPPED, FOLD_IN})

    def __init__(
        self,
        *,
        quantile: float = 0.8,
        date: str | dt.date | None = None,
        cold_users: str = "keep",
        fold_in: int = 0,
        validation: float | None = None,
    ):
        self.quantile = quantile
        self.date = date
        self.cold_users = cold_users
        self.fold_in = fold_in
        self.validation = validation

    def _check_params(self) -> None:
        validate.fraction("quantile", self.quantile)
        validate.one_of("cold_users", self.cold_users, COLD_USERS)
        validate.integer("fold_in", self.fold_in, 0)
        if self.date is not None:
            _date_seconds(self.date)

    def _validation_splitter(self, fraction: float) -> Splitter:
        return GlobalTemporalSplitter(quantile=1.0 - fraction, cold_users=self.cold_users,
                                      fold_in=self.fold_in)

    def _hint(self, problem: str) -> str:
        if problem == "test":
            hint = f"set an earlier {self.key('date')} or lower {self.key('quantile')}"
            if self.cold_users != "keep":
                hint += f", or keep every user ({self.key('cold_users')}=keep)"
            if self.fold_in:
                hint += f", or lower {self.key('fold_in')}"
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
        has_train = np.zeros(data.n_users, dtype=bool)  # a scatter: no int64 copy
        has_train[data.users[~test]] = True
        cold = test & ~has_train[data.users]
        dropped = {"drop": cold, "only": test & ~cold}.get(self.cold_users)
        info = self.info_
        info["test_rows_cold_users_dropped"] = 0
        if dropped is not None:
            labels[dropped] = DROPPED
            which = "cold" if self.cold_users == "drop" else "warm"
            info[f"test_rows_{which}_users_dropped"] = int(np.count_nonzero(dropped))
            info[f"test_users_{which}_dropped"] = _n_users(data, dropped)
        if self.fold_in > 0:
            tested = labels == TEST
            history = first_n_by_time(data, tested, self.fold_in)
            labels[history] = FOLD_IN
            per_user = np.bincount(data.users[tested], minlength=data.n_users)
            info["fold_in_rows"] = int(np.count_nonzero(history))
            info["fold_in_rows_tied_beyond_n"] = info["fold_in_rows"] - int(
                np.minimum(per_user, self.fold_in).sum()
            )
            left = np.bincount(data.users[labels == TEST], minlength=data.n_users)
            info["test_users_all_fold_in"] = int(np.count_nonzero((per_user > 0) & (left == 0)))
        self.cut_ = cut
        return [labels]

    def _cut(self, ts: np.ndarray) -> int:
        if self.date is not None:
            return _date_seconds(self.date)
        k = min(len(ts) - 1, math.floor(self.quantile * len(ts) + 1e-9))
        return int(np.partition(ts, k)[k])


def _n_users(data: Interactions, rows: np.ndarray) -> int:
    """Distinct users among the rows of the boolean mask ``rows``."""
    return int(np.count_nonzero(np.bincount(data.users[rows], minlength=data.n_users)))


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
