"""Leakage audit: exact counts on tiny splits, checked by hand and by a brute-force oracle."""

import json

import numpy as np
import pandas as pd
import pytest

from bench.data.interactions import Interactions
from bench.splits import GlobalTemporalSplitter, LeaveLastNSplitter, RandomHoldoutSplitter
from bench.splits.audit import LeakageAudit, audit_split
from bench.splits.base import Split
from tests.splits.helpers import make_events


def _tiny() -> Interactions:
    """Four users; leave-last-1 tests a:3@30, b:5@40, c:6@36, d:7@50."""
    rows = [
        ("a", 1, 10), ("a", 2, 20), ("a", 3, 30),
        ("b", 1, 5), ("b", 4, 15), ("b", 5, 40),
        ("c", 2, 35), ("c", 6, 36),
        ("d", 3, 12), ("d", 7, 50),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Interactions.from_frame(frame)


def test_leave_last_out_leaks_with_hand_counted_figures():
    split = LeaveLastNSplitter(n=1).split(_tiny())[0]
    audit = audit_split(split)
    # train: a1@10 a2@20 b1@5 b4@15 c2@35 d3@12; test: a3@30 b5@40 c6@36 d7@50
    assert audit.train_rows == 6 and audit.test_rows == 4 and audit.test_users == 4
    assert audit.cut == 30
    assert audit.future_train_rows == 1  # c2@35 > 30
    assert audit.future_train_share == 1 / 6
    # latest training row is 35: only a (first test 30) has training data after it
    assert audit.users_with_future_train == 1
    assert audit.users_with_future_train_share == 1 / 4
    assert audit.own_future_rows == 0  # leave-last-out: own training rows come first
    assert audit.fold_in_own_future_rows is None
    # items 5, 6, 7 have no training row; item 3 has one (d@12)
    assert audit.test_items_new == 3 and audit.test_rows_new_items == 3
    # first seen anywhere: 3@12, 5@40, 6@36, 7@50; >= 30 -> 5, 6, 7
    assert audit.test_items_first_seen_after_cut == 3
    assert audit.test_rows_items_first_seen_after_cut == 3
    assert audit.duplicate_pairs == 0 and audit.fold_in_test_duplicate_pairs is None
    assert len(audit.leaks) == 1
    assert audit.leaks[0].startswith("1 training interactions (16.7% of 6)")
    assert "1 of 4 test users" in audit.leaks[0] and "sees the future" in audit.leaks[0]
    # "first seen after the cut" is no warning here: with a time leak there is no real cut
    assert len(audit.warnings) == 1 and "3 distinct test items" in audit.warnings[0]


def test_global_temporal_split_has_no_time_leak():
    data = make_events(seed=3)
    for splitter in (GlobalTemporalSplitter(quantile=0.7),
                     GlobalTemporalSplitter(quantile=0.8, cold_users="drop")):
        split = splitter.split(data)[0]
        audit = audit_split(split)
        assert audit.future_train_rows == 0
        assert audit.users_with_future_train == 0
        assert audit.own_future_rows == 0
        assert audit.duplicate_pairs == 0
        assert audit.leaks == []
        assert audit.cut >= split.cut
        assert (audit.test_items_first_seen_after_cut > 0) == any(
            "first appear" in line for line in audit.warnings
        )


def _oracle(split: Split) -> dict:
    """The time and pair figures by plain Python loops over rows (independent of numpy).

    A row is in the future unless it is strictly earlier (same-second rows count)."""
    train = list(zip(split.train.users, split.train.items, split.train.timestamps, strict=True))
    test = list(zip(split.test.users, split.test.items, split.test.timestamps, strict=True))
    first = {}
    for u, _, t in test:
        first[u] = min(first.get(u, t), t)
    cut = min(first.values())
    last_train = max(t for _, _, t in train)
    train_items = {i for _, i, _ in train}
    seen = {}
    for _, i, t in train + test:
        seen[i] = min(seen.get(i, t), t)
    return {
        "cut": cut,
        "future_train_rows": sum(t >= cut for _, _, t in train),
        "future_train_rows_tied": sum(t == cut for _, _, t in train),
        "users_with_future_train": sum(f <= last_train for f in first.values()),
        "own_future_rows": sum(u in first and t >= first[u] for u, _, t in train),
        "own_future_rows_tied": sum(u in first and t == first[u] for u, _, t in train),
        "test_items_new": len({i for _, i, _ in test} - train_items),
        "test_rows_new_items": sum(i not in train_items for _, i, _ in test),
        "test_items_first_seen_after_cut": len({i for _, i, _ in test if seen[i] >= cut}),
        "test_rows_items_first_seen_after_cut": sum(seen[i] >= cut for _, i, _ in test),
        "duplicate_pairs": len({(u, i) for u, i, _ in train} & {(u, i) for u, i, _ in test}),
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_random_holdout_leaks_exactly_as_the_oracle_counts(seed):
    split = RandomHoldoutSplitter(fraction=0.3, seed=seed).split(make_events(seed=seed))[0]
    audit = audit_split(split)
    expected = _oracle(split)
    assert {k: getattr(audit, k) for k in expected} == expected
    assert audit.future_train_rows > 0 and audit.own_future_rows > 0
    assert audit.leaks and "sees the future" in audit.leaks[0]


def test_hand_built_split_with_duplicates_and_no_timestamps():
    frame = pd.DataFrame({"user_id": ["a", "a", "b", "b", "c"], "item_id": [1, 2, 1, 3, 2]})
    data = Interactions.from_frame(frame)
    # rows in code order: a1 a2 b1 b3 c2; a2 is both in train and test, c2 in fold-in and test
    split = Split(
        train=data.take(np.array([0, 1, 2])),
        test=data.take(np.array([1, 3, 4])),
        fold_in=data.take(np.array([4])),
        name="hand",
    )
    audit = audit_split(split)
    assert not audit.has_timestamps
    assert audit.cut is None and audit.future_train_rows is None
    assert audit.users_with_future_train is None and audit.own_future_rows is None
    assert audit.test_items_first_seen_after_cut is None
    assert audit.duplicate_pairs == 1
    assert audit.fold_in_test_duplicate_pairs == 1
    assert audit.test_items_new == 1 and audit.test_rows_new_items == 1  # item 3
    assert len(audit.leaks) == 2
    assert audit.leaks[0].startswith("1 (user, item) pairs are in both train and test")
    assert "fold-in history and test" in audit.leaks[1]
    assert "no timestamps" in audit.warnings[0]
    d = audit.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["leaks"] == audit.leaks and d["duplicate_pairs"] == 1


def test_fold_in_rows_from_the_test_period_are_a_leak():
    data = _tiny()
    # user c's fold-in row c2@35 given for a test row c6@36 is fine; d's fold-in d7@50
    # after its test row d3@12 is the test period leaking into the history
    users = data.users
    codes = {name: data.user_ids.get_loc(name) for name in "abcd"}
    is_c = users == codes["c"]
    is_d = users == codes["d"]
    order = np.flatnonzero(is_c | is_d)  # c2@35 c6@36 d3@12 d7@50 (canonical order)
    split = Split(
        train=data.take(np.flatnonzero(~(is_c | is_d))),
        test=data.take(order[[1, 2]]),
        fold_in=data.take(order[[0, 3]]),
        name="hand",
    )
    audit = audit_split(split)
    assert audit.fold_in_own_future_rows == 1
    assert audit.fold_in_test_duplicate_pairs == 0
    assert audit.cut == 12 and audit.future_train_rows == 4  # all but a1@10, b1@5
    assert any("fold-in interactions are not earlier" in line for line in audit.leaks)


def test_audit_is_a_frozen_dataclass():
    audit = audit_split(LeaveLastNSplitter(n=1).split(_tiny())[0])
    assert isinstance(audit, LeakageAudit)
    with pytest.raises(AttributeError):
        audit.duplicate_pairs = 3


def test_planted_future_and_same_second_rows_are_counted_exactly():
    # test: a@30 (a's first), b@40. train: x@10 (fine), x@30 (same second as the earliest
    # test row), a@30 (a's own, same second as a's first test), x@35 (later), b@45 (b's own,
    # later than b's first test). fold-in: a@29 (fine), b@40 (same second), b@41 (later)
    rows = [
        ("x", 1, 10), ("x", 2, 30), ("a", 3, 30), ("x", 4, 35), ("b", 5, 45),
        ("a", 6, 30), ("b", 7, 40),
        ("a", 8, 29), ("b", 9, 40), ("b", 10, 41),
    ]  # fmt: skip
    data = Interactions.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id",
                                                               "timestamp"]))
    frame = data.to_frame()
    pick = lambda items: data.take(np.flatnonzero(frame["item_id"].isin(items).to_numpy()))  # noqa: E731
    split = Split(train=pick([1, 2, 3, 4, 5]), test=pick([6, 7]), fold_in=pick([8, 9, 10]),
                  name="planted")
    audit = audit_split(split, protocol="user_cold_start")
    assert audit.protocol == "user_cold_start" and audit.cut == 30
    assert audit.future_train_rows == 4  # x@30 a@30 x@35 b@45: not strictly before 30
    assert audit.future_train_rows_tied == 2  # x@30 a@30
    assert audit.own_future_rows == 2  # a@30 (>= a's 30), b@45 (>= b's 40)
    assert audit.own_future_rows_tied == 1  # a@30
    assert audit.users_with_future_train == 2  # last train 45 >= 30 and >= 40
    assert audit.fold_in_own_future_rows == 2  # b@40, b@41
    assert audit.fold_in_own_future_rows_tied == 1  # b@40
    assert "4 training interactions" in audit.leaks[0] and "2 at the same second" in audit.leaks[0]
    assert "2 fold-in interactions are not earlier" in audit.leaks[1]
    assert "1 at the same second" in audit.leaks[1]


def test_a_split_with_only_same_second_ties_is_still_a_leak():
    rows = [("a", 1, 10), ("b", 2, 20), ("a", 3, 20), ("b", 4, 30)]
    data = Interactions.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id",
                                                               "timestamp"]))
    # train a1@10 b2@20, test a3@20 b4@30: b2 shares the second of a's first test row
    split = Split(train=data.take(np.array([0, 2])), test=data.take(np.array([1, 3])),
                  name="tied")
    audit = audit_split(split)
    assert audit.future_train_rows == audit.future_train_rows_tied == 1
    assert audit.own_future_rows == 0 and audit.users_with_future_train == 1
    assert audit.leaks and "1 at the same second" in audit.leaks[0]
