"""The shared machinery: parameter checks, post-conditions, empty parts, Split itself."""

import json

import numpy as np
import pandas as pd
import pytest

from bench.data.interactions import Interactions
from bench.errors import ConfigError, SplitError
from bench.splits import (
    GlobalTemporalSplitter,
    ItemColdStartSplitter,
    KFoldSplitter,
    LeaveLastNSplitter,
    RandomHoldoutSplitter,
    Split,
    Splitter,
    UserColdStartSplitter,
)
from bench.splits.base import DROPPED, TEST, TRAIN, round_half_up, time_rank


@pytest.mark.parametrize(
    ("splitter", "match"),
    [
        (
            RandomHoldoutSplitter(fraction=0),
            r"split\.fraction: expected a number in \(0, 1\), got 0",
        ),
        (RandomHoldoutSplitter(fraction=1.5), r"split\.fraction: .*got 1\.5"),
        (RandomHoldoutSplitter(fraction=True), r"split\.fraction: .*got True"),
        (RandomHoldoutSplitter(fraction=float("nan")), r"split\.fraction: .*got nan"),
        (RandomHoldoutSplitter(fraction="0.2"), r"split\.fraction: .*got '0\.2'"),
        (RandomHoldoutSplitter(seed=-1), r"split\.seed: expected a non-negative integer"),
        (RandomHoldoutSplitter(seed=1.5), r"split\.seed: .*got 1\.5"),
        (RandomHoldoutSplitter(min_train=-1), r"split\.min_train: expected an integer >= 0"),
        (GlobalTemporalSplitter(quantile=1.0), r"split\.quantile: expected a number in \(0, 1\)"),
        (GlobalTemporalSplitter(quantile=0.0), r"split\.quantile: .*got 0\.0"),
        (GlobalTemporalSplitter(date="yesterday"), r"split\.date: expected an ISO date"),
        (GlobalTemporalSplitter(date=20160101), r"split\.date: .*got 20160101"),
        (GlobalTemporalSplitter(cold_users="ignore"), r"split\.cold_users: expected one of"),
        (GlobalTemporalSplitter(validation=1.0), r"split\.validation: expected a number in"),
        (KFoldSplitter(n_folds=1), r"split\.n_folds: expected an integer >= 2, got 1"),
        (KFoldSplitter(n_folds=2.0), r"split\.n_folds: .*got 2\.0"),
        (KFoldSplitter(stratify="item"), r"split\.stratify: expected one of \['user', 'none'\]"),
        (KFoldSplitter(validation=0.1), r"split\.validation: split 'kfold' has no validation"),
        (LeaveLastNSplitter(n=-1), r"split\.n: expected an integer >= 1, got -1"),
        (LeaveLastNSplitter(n=0), r"split\.n: .*got 0"),
        (LeaveLastNSplitter(min_train=-2), r"split\.min_train: .*got -2"),
        (LeaveLastNSplitter(validation=0), r"split\.validation: .*got 0"),
        (UserColdStartSplitter(fraction=0), r"split\.fraction: .*got 0"),
        (UserColdStartSplitter(fold_in=-1), r"split\.fold_in: expected an integer >= 0"),
        (ItemColdStartSplitter(fraction=1.5), r"split\.fraction: .*got 1\.5"),
        (ItemColdStartSplitter(validation=-0.1), r"split\.validation: .*got -0\.1"),
    ],
)
def test_bad_parameters_raise_config_error_naming_the_key(splitter, match, events):
    with pytest.raises(ConfigError, match=match):
        splitter.split(events)


def test_constructor_does_no_validation():
    s = RandomHoldoutSplitter(fraction=7, seed="x")  # stored as given; checked by split()
    assert s.get_params() == {"fraction": 7, "seed": "x", "min_train": 1, "validation": None}
    assert repr(s).startswith("RandomHoldoutSplitter(fraction=7, seed='x'")


def tiny(timestamps=True, source="tiny.csv"):
    frame = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 3],
            "item_id": [10, 11, 12, 10, 13, 11],
            "timestamp": [5, 6, 7, 1, 9, 3],
        }
    )
    if not timestamps:
        frame = frame.drop(columns="timestamp")
    return Interactions.from_frame(frame, source=source)


@pytest.mark.parametrize(
    "splitter",
    [GlobalTemporalSplitter(), LeaveLastNSplitter(), UserColdStartSplitter(fold_in=1)],
    ids=["temporal", "leave_last", "user_cold_fold_in"],
)
def test_time_based_splits_need_timestamps_and_name_the_dataset(splitter):
    with pytest.raises(SplitError, match=r"tiny\.csv has no timestamps"):
        splitter.split(tiny(timestamps=False))


def test_splits_without_time_work_on_untimed_data():
    data = tiny(timestamps=False)
    for s in (
        RandomHoldoutSplitter(fraction=0.4),
        KFoldSplitter(n_folds=2),
        UserColdStartSplitter(fraction=0.4),
        ItemColdStartSplitter(fraction=0.3),
    ):
        assert len(s.split(data)[0].test) > 0


@pytest.mark.parametrize(
    ("splitter", "match"),
    [
        (
            GlobalTemporalSplitter(date="2030-01-01"),
            r"split 'temporal' \(quantile=0\.8, date='2030-01-01', cold_users='keep', fold_in=0\) "
            r"leaves no "
            r"test interaction .*set an earlier split\.date",
        ),
        (LeaveLastNSplitter(n=3), r"leaves no test interaction.*fewer than n \+ min_train = 4"),
        (RandomHoldoutSplitter(fraction=0.1), r"leaves no test interaction.*raise split\.fraction"),
        (
            KFoldSplitter(n_folds=5),
            r"split 'kfold' .* fold \d leaves no test.*lower split\.n_folds",
        ),
        (
            UserColdStartSplitter(fold_in=3, fraction=0.5),
            r"leaves no test interaction.*lower split\.fold_in",
        ),
        (GlobalTemporalSplitter(date="1970-01-01"), r"leaves no training interaction"),
        (UserColdStartSplitter(fraction=0.9), r"leaves no training interaction"),
        (
            RandomHoldoutSplitter(fraction=0.5, validation=0.01),
            r"leaves no validation interaction.*raise split\.validation",
        ),
    ],
)
def test_empty_test_or_train_is_a_split_error_saying_what_to_change(splitter, match):
    with pytest.raises(SplitError, match=match):
        splitter.split(tiny())


def test_dropping_every_cold_test_user_can_leave_no_test():
    # a rates before the cut, b only after it: b's rows are cold and dropped
    frame = pd.DataFrame(
        {"user_id": ["a", "a", "b", "b"], "item_id": [1, 2, 1, 2], "timestamp": [1, 2, 10, 11]}
    )
    data = Interactions.from_frame(frame)
    keep = GlobalTemporalSplitter(quantile=0.5).split(data)[0]
    assert keep.info["test_users_without_train"] == 1
    with pytest.raises(SplitError, match=r"leaves no test interaction.*split\.cold_users=keep"):
        GlobalTemporalSplitter(quantile=0.5, cold_users="drop").split(data)


def test_more_folds_than_rows_is_refused_before_labelling():
    with pytest.raises(SplitError, match=r"tiny\.csv has 6 rows for 1000000 folds"):
        KFoldSplitter(n_folds=1_000_000).split(tiny())


def test_quantile_cut_at_the_end_still_tests_the_latest_rows():
    split = GlobalTemporalSplitter(quantile=0.99).split(tiny())[0]
    assert split.test.timestamps.tolist() == [9]


# ---------------------------------------------------------------------- post-conditions
class Scripted(Splitter):
    """Returns whatever labels (and cut) it is given: to prove the checks catch bugs."""

    name = "scripted"
    labels_used = frozenset({TRAIN, TEST, DROPPED})

    def __init__(self, *, labels=None, cut=None, validation=None):
        self.labels = labels
        self.cut = cut
        self.validation = validation

    def _check_params(self):
        pass

    def _split(self, data):
        self.cut_ = self.cut
        return [np.asarray(self.labels, dtype=np.int8)]


def test_scripted_good_labels_pass():
    split = Scripted(labels=[0, 0, 1, 0, 1, 0]).split(tiny())[0]
    assert (len(split.train), len(split.test)) == (4, 2)


@pytest.mark.parametrize(
    ("labels", "cut", "match"),
    [
        ([0, 0, 1, 0, 1], None, r"bug: fold 0 labels have shape \(5,\)"),
        ([0, 0, 1, 0, 1, 7], None, r"bug: 1 row\(s\) of fold 0 have a label outside"),
        # data rows in canonical order: (1,10,5) (1,11,6) (1,12,7) (2,10,1) (2,13,9) (3,11,3)
        ([0, 0, 1, 0, 1, 0], 6, r"bug: 1 train row\(s\) are at or after the cut 6"),
        ([0, 0, 1, 1, 1, 0], 7, r"bug: 1 test row\(s\) are before the cut 7"),
    ],
)
def test_post_conditions_catch_splitter_bugs(labels, cut, match):
    with pytest.raises(SplitError, match=match):
        Scripted(labels=labels, cut=cut).split(tiny())


def test_dropped_rows_are_in_no_part_and_counted():
    split = Scripted(labels=[0, 0, 1, 0, 1, -1]).split(tiny())[0]
    assert len(split.train) + len(split.test) == 5
    assert split.info["test_rows_cold_users_dropped"] == 1


def test_cold_axis_leak_is_caught():
    class Leaky(ItemColdStartSplitter):
        def _split(self, data):
            return [np.array([0, 1, 1, 0, 1, 0], dtype=np.int8)]  # item 10 in train and test

    with pytest.raises(SplitError, match=r"1 test row\(s\) belong to items that also appear"):
        Leaky().split(tiny())


def test_parts_must_share_the_input_vocabularies():
    class Rebuilt(Scripted):
        def _build(self, data, labels, *args):
            split = super()._build(data, labels, *args)
            test = Interactions.from_frame(split.test.to_frame())  # fresh vocabularies
            return Split(train=split.train, test=test, name=split.name)

    with pytest.raises(SplitError, match="does not share the input's vocabularies"):
        Rebuilt(labels=[0, 0, 1, 0, 1, 0]).split(tiny())


def test_not_interactions_is_a_split_error():
    with pytest.raises(SplitError, match="expected an Interactions table, got DataFrame"):
        RandomHoldoutSplitter().split(pd.DataFrame({"a": [1]}))


# ---------------------------------------------------------------------- Split + helpers
def test_summary_is_plain_json(events):
    split = GlobalTemporalSplitter(validation=0.1).split(events)[0]
    summary = split.summary()
    json.dumps(summary)
    assert summary["cut_utc"].startswith("1970-01-01T00:00")
    assert set(summary["parts"]) == {"train", "test", "validation"}
    assert set(summary["parts"]["test"]) == {"rows", "users", "items"}
    assert summary["info"]["validation_cut"] < summary["cut"]


def test_absent_part_differs_from_empty_part(events):
    split = RandomHoldoutSplitter().split(events)[0]
    empty = split.train.take(np.array([], dtype=np.int64))
    fp = split.fingerprint
    assert Split(train=split.train, test=split.test, fold_in=empty).fingerprint != fp
    assert Split(train=split.train, test=split.test).fingerprint == fp


def test_round_half_up():
    got = round_half_up(np.array([0.4, 0.5, 1.5, 2.5, 0.2 * 5, 0.3 * 5]))
    assert got.tolist() == [0, 1, 2, 3, 1, 2]


def test_time_rank_handles_non_canonical_rows(events):
    order = np.random.default_rng(0).permutation(len(events))
    shuffled = Interactions(
        user_ids=events.user_ids,
        item_ids=events.item_ids,
        users=events.users[order],
        items=events.items[order],
        timestamps=events.timestamps[order],
    )
    assert (time_rank(shuffled) == time_rank(events)[order]).all()
