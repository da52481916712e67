"""Leakage audit of a split: does the training data know something the test should not?

:func:`audit_split` measures, for one :class:`~bench.splits.base.Split`, the ways an
offline estimate can be flattered by information from the test period or the test rows
themselves, and the properties of the test set a reader must know to interpret it:

* **time** (needs timestamps): training rows not strictly earlier than the earliest test
  interaction (``future_train_rows``), test users for whom some training row is not
  strictly earlier than their own first test interaction (``users_with_future_train``),
  a test user's own training rows not strictly earlier than that first test interaction
  (``own_future_rows``), and fold-in rows not strictly earlier than the same user's
  first test interaction (``fold_in_own_future_rows``). A global temporal split has all
  of them at 0; a random holdout or a leave-last-out split does not: the model is
  trained on interactions that happened after the ones it is asked to predict.

  **The tie rule.** Timestamps have a resolution (a second for MovieLens), so "earlier"
  means strictly earlier: a row at the *same second* as a tested interaction cannot be
  shown to precede it, and counts as a future row. Each count has a ``*_tied`` part
  holding those same-second rows, so a reader can tell "trained on next week" from "same
  second". Splitters avoid them by putting a whole same-second group on one side
  (:func:`bench.splits.base.first_n_by_time`; a global cut sends every row at the cut's
  second to test).
* **duplicates**: ``(user, item)`` pairs present both in train and in test (or in the
  fold-in history and in test): the answer is in the input.
* **new items** (warnings, not leaks: they are what item cold start is): distinct test
  items with no training row, and test items first seen anywhere at or after the cut.

Everything is one pass of vectorised numpy/scipy work per part (``bincount``,
``minimum.at``, one sparse element-wise product), so it runs on splits of tens of
millions of rows. Counts are ints, shares floats; nothing is rounded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.data.interactions import Interactions
from bench.splits.base import Split

_NEVER = np.iinfo(np.int64).max
KERNEL_MIN_ROWS = 1_000_000
"""Rows (both parts) from which shared pairs are counted by the compiled kernel; smaller
splits never import numba nor compile."""


@dataclass(frozen=True)
class LeakageAudit:
    """What :func:`audit_split` found in one split (see the module docstring).

    Time fields are ``None`` when the split has no timestamps. ``cut`` here is the
    earliest test timestamp (not ``Split.cut``, which only temporal splits have).

    Attributes:
        name, fold: the split's name and fold.
        train_rows, test_rows, test_users: sizes the shares are relative to.
        has_timestamps: whether every part carries timestamps (time checks ran).
        protocol: what the split is evaluated for: ``main`` (the configured split) or a
            cold-start protocol (``user_cold_start``, ``item_cold_start``).
        cut: earliest test interaction (Unix seconds), or ``None``.
        future_train_rows: training rows at or after ``cut`` (not strictly earlier).
        future_train_rows_tied: those of them at the same second as ``cut``.
        future_train_share: ``future_train_rows / train_rows``.
        users_with_future_train: test users for whom at least one training row (of any
            user) is at or after their own earliest test interaction.
        users_with_future_train_share: of ``test_users``.
        own_future_rows: training rows of a test user at or after that user's own
            earliest test interaction.
        own_future_rows_tied: those of them at the same second.
        fold_in_own_future_rows: fold-in rows of a test user at or after that user's own
            earliest test interaction (``None`` without a fold-in part or timestamps).
        fold_in_own_future_rows_tied: those of them at the same second.
        test_items_new: distinct test items with no training row.
        test_rows_new_items: test rows of those items.
        test_items_first_seen_after_cut: distinct test items whose first interaction in
            any part (train, validation, fold-in, test) is at or after ``cut`` (a warning
            only when there is no time leak: otherwise ``cut`` is no real cut).
        test_rows_items_first_seen_after_cut: test rows of those items.
        duplicate_pairs: distinct ``(user, item)`` pairs present in train and in test.
        fold_in_test_duplicate_pairs: the same for fold-in and test (``None`` without a
            fold-in part).
    """

    name: str
    fold: int
    protocol: str
    train_rows: int
    test_rows: int
    test_users: int
    has_timestamps: bool
    cut: int | None
    future_train_rows: int | None
    future_train_rows_tied: int | None
    future_train_share: float | None
    users_with_future_train: int | None
    users_with_future_train_share: float | None
    own_future_rows: int | None
    own_future_rows_tied: int | None
    fold_in_own_future_rows: int | None
    fold_in_own_future_rows_tied: int | None
    test_items_new: int
    test_rows_new_items: int
    test_items_first_seen_after_cut: int | None
    test_rows_items_first_seen_after_cut: int | None
    duplicate_pairs: int
    fold_in_test_duplicate_pairs: int | None

    @property
    def leaks(self) -> list[str]:
        """Findings that count as leakage, one human-readable line each (empty: none)."""
        out = []
        if self.future_train_rows:
            out.append(
                f"{self.future_train_rows:,} training interactions "
                f"({_pct(self.future_train_share)} of {self.train_rows:,}) are not earlier "
                f"than the earliest test interaction ({_iso(self.cut)}; "
                f"{_tied(self.future_train_rows_tied)}); "
                f"{self.users_with_future_train:,} of {self.test_users:,} test users "
                f"({_pct(self.users_with_future_train_share)}) have training data at or after "
                f"their own first test interaction, {self.own_future_rows:,} training rows "
                f"being their own ({_tied(self.own_future_rows_tied)}): the model sees the "
                f"future (split '{self.name}' is not a global temporal split, as random "
                "holdout, k-fold, leave-last-out and random cold-start splits are not; use "
                "a temporal split for a time-faithful estimate)"
            )
        if self.fold_in_own_future_rows:
            out.append(
                f"{self.fold_in_own_future_rows:,} fold-in interactions are not earlier than "
                f"the same user's first test interaction "
                f"({_tied(self.fold_in_own_future_rows_tied)}): the history given at "
                "recommend time comes from the test period"
            )
        if self.duplicate_pairs:
            out.append(
                f"{self.duplicate_pairs:,} (user, item) pairs are in both train and test: "
                "the model is trained on answers it is then tested on (and seen-item "
                "masking removes them from every list)"
            )
        if self.fold_in_test_duplicate_pairs:
            out.append(
                f"{self.fold_in_test_duplicate_pairs:,} (user, item) pairs are in both the "
                "fold-in history and test: the history given at recommend time holds the "
                "answers"
            )
        return out

    @property
    def warnings(self) -> list[str]:
        """Other findings worth knowing when reading the numbers (not leakage)."""
        out = []
        if not self.has_timestamps:
            out.append(
                "the split has no timestamps: the audit could not check whether training "
                "data is later than test data"
            )
        if self.test_items_new:
            out.append(
                f"{self.test_items_new:,} distinct test items ({self.test_rows_new_items:,} "
                f"test rows, {_pct(_share(self.test_rows_new_items, self.test_rows))}) have "
                "no training row: only models that can score new items (content-based) can "
                "rank them"
            )
        if self.test_items_first_seen_after_cut and not self.future_train_rows:
            # (after a random or leave-last-out split the earliest test interaction is
            # no cut at all, and "new since then" would count nearly every item)
            out.append(
                f"{self.test_items_first_seen_after_cut:,} distinct test items "
                f"({self.test_rows_items_first_seen_after_cut:,} test rows) first appear at "
                f"or after the earliest test interaction ({_iso(self.cut)}): items new since "
                "the cut"
            )
        return out

    def to_dict(self) -> dict[str, object]:
        """Plain-Python (JSON-safe) fields plus ``leaks`` and ``warnings``."""
        out = asdict(self)
        out["leaks"] = self.leaks
        out["warnings"] = self.warnings
        return out


def audit_split(split: Split, protocol: str = "main") -> LeakageAudit:
    """Audit one split for leakage (see :class:`LeakageAudit` for the fields).

    ``protocol`` names what the split is evaluated for (recorded, not interpreted).
    """
    train, test, fold_in = split.train, split.test, split.fold_in
    n_users, n_items = len(train.user_ids), len(train.item_ids)
    # the parts' kept counts (Interactions.user_counts, item_counts): the run asks for
    # them again later, and a 20M-row part is counted once
    test_users = int(np.count_nonzero(test.user_counts()))

    in_train_item = train.item_counts()[:n_items] > 0
    new_rows = ~in_train_item[test.items]
    test_items_new = int(np.count_nonzero(np.bincount(test.items[new_rows], minlength=n_items)))

    fields: dict[str, object] = {
        "name": split.name,
        "fold": int(split.fold),
        "protocol": protocol,
        "train_rows": len(train),
        "test_rows": len(test),
        "test_users": test_users,
        "test_items_new": test_items_new,
        "test_rows_new_items": int(np.count_nonzero(new_rows)),
        "duplicate_pairs": _shared_pairs(train, test, n_users, n_items),
        "fold_in_test_duplicate_pairs": (
            None if fold_in is None else _shared_pairs(fold_in, test, n_users, n_items)
        ),
    }
    has_time = all(p.timestamps is not None for p in split.parts().values())
    fields["has_timestamps"] = has_time
    fields.update(_time_fields(split, n_users, n_items, test_users) if has_time else {
        "cut": None,
        "future_train_rows": None,
        "future_train_rows_tied": None,
        "future_train_share": None,
        "users_with_future_train": None,
        "users_with_future_train_share": None,
        "own_future_rows": None,
        "own_future_rows_tied": None,
        "fold_in_own_future_rows": None,
        "fold_in_own_future_rows_tied": None,
        "test_items_first_seen_after_cut": None,
        "test_rows_items_first_seen_after_cut": None,
    })
    return LeakageAudit(**fields)


def _time_fields(split: Split, n_users: int, n_items: int, test_users: int) -> dict:
    train, test, fold_in = split.train, split.test, split.fold_in
    if len(test) == 0:
        none = None if fold_in is None else 0
        return {
            "cut": None, "future_train_rows": 0, "future_train_rows_tied": 0,
            "future_train_share": 0.0, "users_with_future_train": 0,
            "users_with_future_train_share": 0.0, "own_future_rows": 0,
            "own_future_rows_tied": 0, "fold_in_own_future_rows": none,
            "fold_in_own_future_rows_tied": none,
            "test_items_first_seen_after_cut": 0, "test_rows_items_first_seen_after_cut": 0,
        }
    first_test = np.full(n_users, _NEVER, dtype=np.int64)  # per user; _NEVER = no test row
    np.minimum.at(first_test, test.users, test.timestamps)
    cut = int(test.timestamps.min())
    t_train = train.timestamps
    future = int(np.count_nonzero(t_train >= cut))
    last_train = int(t_train.max()) if len(train) else None
    is_test_user = first_test != _NEVER
    users_future = 0 if last_train is None else int(
        np.count_nonzero(is_test_user & (first_test <= last_train))
    )
    own_first = first_test[train.users]
    fold_in_future = fold_in_tied = None
    if fold_in is not None:
        fold_first = first_test[fold_in.users]
        fold_in_future = int(np.count_nonzero(fold_in.timestamps >= fold_first))
        fold_in_tied = int(np.count_nonzero(fold_in.timestamps == fold_first))
    first_seen = np.full(n_items, _NEVER, dtype=np.int64)
    for part in split.parts().values():
        np.minimum.at(first_seen, part.items, part.timestamps)
    late_rows = first_seen[test.items] >= cut
    late_items = int(np.count_nonzero(np.bincount(test.items[late_rows], minlength=n_items)))
    return {
        "cut": cut,
        "future_train_rows": future,
        "future_train_rows_tied": int(np.count_nonzero(t_train == cut)),
        "future_train_share": _share(future, len(train)),
        "users_with_future_train": users_future,
        "users_with_future_train_share": _share(users_future, test_users),
        "own_future_rows": int(np.count_nonzero(t_train >= own_first)),
        "own_future_rows_tied": int(np.count_nonzero(t_train == own_first)),
        "fold_in_own_future_rows": fold_in_future,
        "fold_in_own_future_rows_tied": fold_in_tied,
        "test_items_first_seen_after_cut": late_items,
        "test_rows_items_first_seen_after_cut": int(np.count_nonzero(late_rows)),
    }


def _shared_pairs(a: Interactions, b: Interactions, n_users: int, n_items: int) -> int:
    """Distinct (user, item) pairs present in both ``a`` and ``b``.

    From :data:`KERNEL_MIN_ROWS` rows, parts whose rows are grouped by user (as every
    part of a split is: canonical order) are counted by the compiled
    :func:`bench.splits.compiled.shared_pairs` in one pass over the rows; otherwise (and
    without numba) by multiplying the two parts' 0/1 pair matrices. Both count the same
    thing, the distinct pairs in both parts."""
    if len(a) == 0 or len(b) == 0:
        return 0
    kernel = _kernel() if len(a) + len(b) >= KERNEL_MIN_ROWS else None
    if kernel is not None and _grouped(a) and _grouped(b):
        return int(kernel(_starts(a, n_users), a.items, _starts(b, n_users), b.items,
                          n_items))
    ma = _pair_matrix(a, n_users, n_items)
    mb = _pair_matrix(b, n_users, n_items)
    return int(ma.multiply(mb).count_nonzero())


def _kernel():
    """:func:`bench.splits.compiled.shared_pairs`, or ``None`` when numba is not importable."""
    try:
        from bench.splits.compiled import shared_pairs
    except ImportError:  # pragma: no cover - numba is a core dependency
        return None
    return shared_pairs


def _grouped(x: Interactions) -> bool:
    """Are ``x``'s rows grouped by user (user codes never decrease)?"""
    return bool(np.all(x.users[1:] >= x.users[:-1]))


def _starts(x: Interactions, n_users: int) -> np.ndarray:
    """Where each user's rows start (and, last, where they end) in ``x``'s rows."""
    starts = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(x.user_counts()[:n_users], out=starts[1:])
    return starts


def _pair_matrix(x: Interactions, n_users: int, n_items: int) -> sp.csr_matrix:
    m = sp.csr_matrix(
        (np.ones(len(x), dtype=np.int8), (x.users, x.items)), shape=(n_users, n_items)
    )
    m.data[:] = 1  # a pair repeated within one part still counts once
    return m


def _share(count: int, total: int) -> float:
    return float(count) / total if total else 0.0


def _tied(count: int | None) -> str:
    return f"{count or 0:,} at the same second"


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{100.0 * share:.1f}%"


def _iso(seconds: int | None) -> str:
    if seconds is None:
        return "n/a"
    return pd.Timestamp(int(seconds), unit="s", tz="UTC").isoformat()
