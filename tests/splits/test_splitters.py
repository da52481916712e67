"""What each splitter promises beyond the shared invariants."""

import math

import numpy as np
import pandas as pd
import pytest

from bench.data.interactions import Interactions
from bench.splits import (
    GlobalTemporalSplitter,
    ItemColdStartSplitter,
    KFoldSplitter,
    LeaveLastNSplitter,
    RandomHoldoutSplitter,
    UserColdStartSplitter,
)
from bench.splits.base import round_half_up
from tests.splits.helpers import assert_split_invariants, make_events, per_user_count


def users_of(x: Interactions) -> set[int]:
    return set(np.unique(x.users).tolist())


def items_of(x: Interactions) -> set[int]:
    return set(np.unique(x.items).tolist())


def latest_key(x: Interactions):
    """Per user: (timestamp, item code) of rows, as a frame for order comparisons."""
    return pd.DataFrame({"u": x.users, "t": x.timestamps, "i": x.items})


def users_where_precedes(earlier: Interactions, later: Interactions) -> int:
    """Assert each user's rows in ``earlier`` all come before their rows in ``later``
    (by timestamp, then item code: the canonical order); return how many users have both."""
    a = latest_key(earlier).sort_values(["t", "i"]).groupby("u").tail(1)
    b = latest_key(later).sort_values(["t", "i"]).groupby("u").head(1)
    both = a.merge(b, on="u", suffixes=("_a", "_b"))
    later_ok = (both.t_b > both.t_a) | ((both.t_b == both.t_a) & (both.i_b > both.i_a))
    assert later_ok.all(), both[~later_ok]
    return len(both)


def users_where_strictly_precedes(earlier: Interactions, later: Interactions) -> int:
    """Assert each user's rows in ``earlier`` are all at an earlier second than their rows
    in ``later`` (no same-second tie); return how many users have both."""
    a = latest_key(earlier).groupby("u").t.max()
    b = latest_key(later).groupby("u").t.min()
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    assert (both.a < both.b).all(), both[both.a >= both.b]
    return len(both)


# ---------------------------------------------------------------------- temporal
@pytest.mark.parametrize("q", [0.1, 0.5, 0.8, 0.95])
def test_temporal_quantile_cut_separates_past_from_future(q, events):
    split = GlobalTemporalSplitter(quantile=q).split(events)[0]
    ts = np.sort(events.timestamps)
    assert split.cut == ts[math.floor(q * len(ts))]
    assert (split.train.timestamps < split.cut).all()
    assert (split.test.timestamps >= split.cut).all()
    assert len(split.train) <= q * len(events) < len(split.train) + np.sum(ts == split.cut)


def test_temporal_with_distinct_times_puts_exactly_the_quantile_in_train():
    data = make_events(n_users=30, ts_range=10**9, seed=3)
    assert len(np.unique(data.timestamps)) == len(data)
    split = GlobalTemporalSplitter(quantile=0.75).split(data)[0]
    assert len(split.train) == math.floor(0.75 * len(data))


@pytest.mark.parametrize(
    ("date", "cut"),
    [("1970-01-01T00:00:20", 20), ("1970-01-01T01:00:20+01:00", 20), ("1970-01-01 00:00:19.5", 20)],
)
def test_temporal_date_cut_is_unix_seconds_utc(date, cut, events):
    split = GlobalTemporalSplitter(date=date).split(events)[0]
    assert split.cut == cut
    assert split.params["date"] == date
    assert (split.test.timestamps >= 20).all() and (split.train.timestamps < 20).all()


def test_temporal_cold_users_keep_versus_drop(events):
    keep = GlobalTemporalSplitter(quantile=0.6).split(events)[0]
    drop = GlobalTemporalSplitter(quantile=0.6, cold_users="drop").split(events)[0]
    train_users = users_of(keep.train)
    cold = [u for u in users_of(keep.test) if u not in train_users]
    assert cold, "the fixture has test users with no training row"
    assert keep.info["test_users_without_train"] == len(cold)
    assert keep.info["test_rows_cold_users_dropped"] == 0
    assert drop.fingerprint != keep.fingerprint
    assert drop.train.fingerprint() == keep.train.fingerprint()
    assert drop.info["test_users_without_train"] == 0
    assert drop.info["test_users_cold_dropped"] == len(cold)
    n_cold_rows = int(np.isin(keep.test.users, cold).sum())
    assert drop.info["test_rows_cold_users_dropped"] == n_cold_rows
    assert len(drop.test) == len(keep.test) - n_cold_rows
    assert_split_invariants(events, drop)


def test_temporal_validation_is_the_latest_training_rows(events):
    split = GlobalTemporalSplitter(quantile=0.8, validation=0.25).split(events)[0]
    plain = GlobalTemporalSplitter(quantile=0.8).split(events)[0]
    vcut = split.info["validation_cut"]
    assert split.test.fingerprint() == plain.test.fingerprint()
    assert (split.train.timestamps < vcut).all()
    assert ((split.validation.timestamps >= vcut) & (split.validation.timestamps < split.cut)).all()
    assert len(split.train) + len(split.validation) == len(plain.train)


# ---------------------------------------------------------------------- leave last n
@pytest.mark.parametrize(("n", "min_train"), [(1, 1), (2, 1), (3, 0), (2, 5)])
def test_leave_last_n_tests_each_users_latest_rows(n, min_train, events):
    split = LeaveLastNSplitter(n=n, min_train=min_train).split(events)[0]
    counts = per_user_count(events)
    test_counts = per_user_count(split.test)
    eligible = counts >= n + min_train
    assert (test_counts[eligible] == n).all()
    assert (test_counts[~eligible] == 0).all()
    assert split.info["users_too_short_kept_in_train"] == int(((counts > 0) & ~eligible).sum())
    # every test row is later (by timestamp, then item code) than every train row of its user
    assert users_where_precedes(split.train, split.test) == int((eligible & (counts > n)).sum())


def test_leave_last_ties_break_by_canonical_order():
    frame = pd.DataFrame(
        {"user_id": [1] * 4, "item_id": ["c", "a", "d", "b"], "timestamp": [5] * 4}
    )
    split = LeaveLastNSplitter(n=2).split(Interactions.from_frame(frame))[0]
    assert sorted(split.test.to_frame().item_id) == ["c", "d"]


def test_leave_last_same_on_non_canonical_rows(events):
    order = np.random.default_rng(1).permutation(len(events))
    shuffled = Interactions(
        user_ids=events.user_ids,
        item_ids=events.item_ids,
        users=events.users[order],
        items=events.items[order],
        ratings=events.ratings[order],
        timestamps=events.timestamps[order],
    )
    a = LeaveLastNSplitter(n=2).split(events)[0]
    b = LeaveLastNSplitter(n=2).split(shuffled)[0]
    assert sorted(a.test.to_frame().itertuples(index=False)) == sorted(
        b.test.to_frame().itertuples(index=False)
    )


def test_leave_last_validation_takes_the_latest_share_of_training_rows(events):
    split = LeaveLastNSplitter(n=1, validation=0.3).split(events)[0]
    plain = LeaveLastNSplitter(n=1).split(events)[0]
    assert split.test.fingerprint() == plain.test.fingerprint()
    n_train = per_user_count(plain.train)
    expected = np.minimum(round_half_up(0.3 * n_train), np.maximum(n_train - 1, 0))
    assert (per_user_count(split.validation) == expected).all()
    assert users_where_precedes(split.train, split.validation) > 0
    assert users_where_precedes(split.validation, split.test) > 0


# ---------------------------------------------------------------------- holdout
@pytest.mark.parametrize(("fraction", "min_train"), [(0.2, 1), (0.5, 1), (0.8, 2), (0.3, 0)])
def test_holdout_fraction_per_user(fraction, min_train, events):
    split = RandomHoldoutSplitter(fraction=fraction, min_train=min_train).split(events)[0]
    counts = per_user_count(events)
    want = round_half_up(fraction * counts)
    expected = np.minimum(want, np.maximum(counts - min_train, 0))
    assert (per_user_count(split.test) == expected).all()
    assert (per_user_count(split.train) >= np.minimum(counts, min_train)).all()
    assert split.info["users_too_short_kept_in_train"] == int(
        ((want > 0) & (counts <= min_train)).sum()
    )


def test_holdout_picks_rows_uniformly():
    # one user with 10 rows, fraction 0.3: over many seeds every row is tested ~30% of the time
    frame = pd.DataFrame({"user_id": [0] * 10, "item_id": range(10), "timestamp": range(10)})
    data = Interactions.from_frame(frame)
    hits = np.zeros(10)
    for seed in range(400):
        hits[RandomHoldoutSplitter(fraction=0.3, seed=seed).split(data)[0].test.items] += 1
    assert np.abs(hits / 400 - 0.3).max() < 0.1


# ---------------------------------------------------------------------- k-fold
@pytest.mark.parametrize("k", [2, 3, 5])
def test_kfold_folds_partition_the_rows_and_spread_each_user(k, events):
    splits = KFoldSplitter(n_folds=k, seed=4).split(events)
    assert len(splits) == k and [s.fold for s in splits] == list(range(k))
    assert sum(len(s.test) for s in splits) == len(events)
    keys = [set(zip(s.test.users.tolist(), s.test.items.tolist(), strict=True)) for s in splits]
    all_pairs = set(zip(events.users.tolist(), events.items.tolist(), strict=True))
    assert set().union(*keys) == all_pairs
    assert sum(len(x) for x in keys) == len(all_pairs)  # each row tested once
    for s in splits:
        assert len(s.train) + len(s.test) == len(events)
    per_fold = np.stack([per_user_count(s.test) for s in splits])  # folds x users
    assert (per_fold.max(axis=0) - per_fold.min(axis=0) <= 1).all()


def test_kfold_without_stratification_balances_fold_sizes(events):
    splits = KFoldSplitter(n_folds=4, stratify="none").split(events)
    sizes = [len(s.test) for s in splits]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == len(events)
    # ignoring users: some user is unevenly spread
    per_fold = np.stack([per_user_count(s.test) for s in splits])
    assert (per_fold.max(axis=0) - per_fold.min(axis=0) > 1).any()


def test_kfold_short_users_are_not_all_in_fold_zero():
    frame = pd.DataFrame({"user_id": range(200), "item_id": [0] * 200})
    splits = KFoldSplitter(n_folds=4).split(Interactions.from_frame(frame))
    sizes = [len(s.test) for s in splits]
    assert min(sizes) > 30


# ---------------------------------------------------------------------- user cold start
@pytest.mark.parametrize("fold_in", [0, 1, 3])
def test_user_cold_start_holds_out_whole_users(fold_in, events):
    split = UserColdStartSplitter(fraction=0.25, fold_in=fold_in, seed=5).split(events)[0]
    n_present = int((per_user_count(events) > 0).sum())
    held = users_of(split.test) | (users_of(split.fold_in) if split.fold_in else set())
    assert len(held) == int(round_half_up(0.25 * n_present)) == split.info["held_out_users"]
    assert not held & users_of(split.train)
    counts = per_user_count(events)
    if fold_in == 0:
        assert split.fold_in is None
        return
    got = per_user_count(split.fold_in)
    for u in held:  # the first fold_in rows, plus the rest of the last one's second
        ts = np.sort(events.timestamps[events.users == u])
        expected = len(ts) if len(ts) <= fold_in else int((ts <= ts[fold_in - 1]).sum())
        assert got[u] == expected >= min(fold_in, counts[u])
    left = {u for u in held if got[u] < counts[u]}
    assert split.info["held_out_users_all_fold_in"] == len(held) - len(left)
    # fold-in rows are strictly earlier in time than test rows, per user
    assert users_where_strictly_precedes(split.fold_in, split.test) == len(left)


def test_user_cold_start_validation_users_are_unseen_and_distinct(events):
    split = UserColdStartSplitter(fraction=0.2, fold_in=2, validation=0.2).split(events)[0]
    train, test, val = users_of(split.train), users_of(split.test), users_of(split.validation)
    assert val and not val & train and not val & test
    assert not users_of(split.fold_in) & train
    assert users_of(split.fold_in) & val and users_of(split.fold_in) & test
    assert split.info["validation_held_out_users"] > 0


# ---------------------------------------------------------------------- item cold start
def test_item_cold_start_test_items_never_in_train(events):
    split = ItemColdStartSplitter(fraction=0.3, seed=2).split(events)[0]
    held = items_of(split.test)
    assert held and not held & items_of(split.train)
    n_present = int((np.bincount(events.items) > 0).sum())
    assert len(held) == int(round_half_up(0.3 * n_present)) == split.info["held_out_items"]
    # every row of a held-out item is a test row
    assert len(split.test) == int(np.isin(events.items, list(held)).sum())


def test_item_cold_start_validation_items_unseen(events):
    split = ItemColdStartSplitter(fraction=0.2, validation=0.2).split(events)[0]
    val = items_of(split.validation)
    assert val and not val & items_of(split.train) and not val & items_of(split.test)
