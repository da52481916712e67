"""SurpriseKFoldSplitter reproduces surprise.model_selection.KFold fold for fold."""

import numpy as np
import pandas as pd
import pytest

from bench.data.interactions import Interactions
from bench.errors import ConfigError, DataError, SplitError
from bench.splits.kfold import SurpriseKFoldSplitter, surprise_kfold_positions
from tests.splits.helpers import assert_split_invariants

surprise = pytest.importorskip("surprise")
from surprise import Dataset, Reader  # noqa: E402
from surprise.model_selection import KFold  # noqa: E402


def write_ratings(path, frame: pd.DataFrame, sep="\t", header=False) -> None:
    frame[["user_id", "item_id", "rating", "timestamp"]].to_csv(
        path, sep=sep, header=header, index=False
    )


def surprise_folds(path, n_folds, seed, sep="\t", skip=0):
    """Surprise's own folds of the file: (test pairs, training pairs in Trainset order)."""
    reader = Reader(line_format="user item rating timestamp", sep=sep, skip_lines=skip,
                    rating_scale=(1, 5))
    data = Dataset.load_from_file(str(path), reader)
    out = []
    for trainset, testset in KFold(n_splits=n_folds, random_state=seed).split(data):
        test = [(u, i) for u, i, _ in testset]
        train = [
            (trainset.to_raw_uid(u), [(trainset.to_raw_iid(i), r) for i, r in trainset.ur[u]])
            for u in trainset.all_users()
        ]
        out.append((test, train))
    return out


def our_folds(data: Interactions, splitter: SurpriseKFoldSplitter):
    """Our folds: (test pairs, training pairs regrouped the way Surprise's Trainset does)."""
    out = []
    for split, order in zip(splitter.split(data), splitter.train_rows_, strict=True):
        test = split.test
        pairs = {(str(test.user_ids[u]), str(test.item_ids[i]))
                 for u, i in zip(test.users, test.items, strict=True)}
        train = split.train
        lists: dict[str, list] = {}  # dicts keep first-appearance order, like Surprise
        for r in order:
            u, i = str(train.user_ids[train.users[r]]), str(train.item_ids[train.items[r]])
            lists.setdefault(u, []).append((i, float(train.ratings[r])))
        out.append((pairs, list(lists.items()), split))
    return out


@pytest.fixture(scope="module")
def shuffled_frame():
    """53 rows in an arbitrary file order (not the canonical user/time/item order)."""
    rng = np.random.default_rng(3)
    pairs = {(int(u), int(i)) for u, i in rng.integers(1, 12, size=(80, 2))}
    rows = [(u, i, float(rng.integers(1, 6)), int(rng.integers(0, 100))) for u, i in pairs]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return frame.sample(frac=1.0, random_state=5).reset_index(drop=True).iloc[:53]


@pytest.mark.parametrize(("n_folds", "seed"), [(5, 0), (3, 7), (2, 123)])
def test_folds_and_training_order_equal_surprise_kfold(tmp_path, shuffled_frame, n_folds, seed):
    path = tmp_path / "u.data"
    write_ratings(path, shuffled_frame)
    data = Interactions.from_frame(shuffled_frame, rating_scale=(1, 5))
    splitter = SurpriseKFoldSplitter(n_folds=n_folds, seed=seed, load_order=str(path))
    ours = our_folds(data, splitter)
    theirs = surprise_folds(path, n_folds, seed)
    for (pairs, train, split), (test, their_train) in zip(ours, theirs, strict=True):
        assert pairs == set(test) and len(pairs) == len(test)
        assert train == their_train  # same users, same first-appearance order, same lists
        assert_split_invariants(data, split)
    assert splitter.info_ == {"load_order_lines_not_in_data": 0}


@pytest.mark.parametrize(("n_folds", "seed"), [(5, 0), (3, 7)])
def test_test_sequence_is_cross_validates_prediction_order(tmp_path, shuffled_frame, n_folds,
                                                           seed):
    # cross_validate predicts fold after fold, each test set in its order: the test rows
    # sorted by test_sequence are Surprise's test pairs in order, numbered on across folds
    path = tmp_path / "u.data"
    write_ratings(path, shuffled_frame)
    data = Interactions.from_frame(shuffled_frame, rating_scale=(1, 5))
    splits = SurpriseKFoldSplitter(n_folds=n_folds, seed=seed, load_order=str(path)).split(data)
    theirs = surprise_folds(path, n_folds, seed)
    numbers = []
    for split, (test, _) in zip(splits, theirs, strict=True):
        part, seq = split.test, split.test_sequence
        assert seq is not None and seq.dtype == np.int64 and len(seq) == len(part)
        order = np.argsort(seq)
        ours = [(str(part.user_ids[part.users[r]]), str(part.item_ids[part.items[r]]))
                for r in order]
        assert ours == test
        numbers.append(np.sort(seq))
    np.testing.assert_array_equal(np.concatenate(numbers), np.arange(len(data)))


def test_fold_sizes_and_layout_hand_checked():
    # 7 rows, 3 folds: chunk sizes 3, 2, 2 of RandomState(0)'s shuffle of arange(7)
    shuffled = np.arange(7)
    np.random.RandomState(0).shuffle(shuffled)
    folds = surprise_kfold_positions(7, 3, 0)
    assert [len(test) for _, test in folds] == [3, 2, 2]
    np.testing.assert_array_equal(np.concatenate([t for _, t in folds]), shuffled)
    train1, test1 = folds[1]
    np.testing.assert_array_equal(test1, shuffled[3:5])
    np.testing.assert_array_equal(train1, np.r_[shuffled[:3], shuffled[5:]])


def test_without_load_order_the_canonical_order_is_the_load_order(tmp_path, shuffled_frame):
    data = Interactions.from_frame(shuffled_frame, rating_scale=(1, 5))
    path = tmp_path / "canonical.tsv"
    write_ratings(path, data.to_frame())  # the rows in our canonical order
    ours = our_folds(data, SurpriseKFoldSplitter(n_folds=4, seed=1))
    for (pairs, train, _), (test, their_train) in zip(ours, surprise_folds(path, 4, 1),
                                                      strict=True):
        assert pairs == set(test) and train == their_train


def test_lines_absent_from_the_data_are_skipped_and_counted(tmp_path, shuffled_frame):
    # a withdrawn user's lines stay in the file but not in the data: the folds are
    # Surprise's folds of the file without those lines
    extra = pd.DataFrame({"user_id": [999, 999], "item_id": [1, 2], "rating": [3.0, 4.0],
                          "timestamp": [5, 6]})
    full = pd.concat([shuffled_frame.iloc[:20], extra, shuffled_frame.iloc[20:]])
    write_ratings(tmp_path / "with.tsv", full)
    write_ratings(tmp_path / "without.tsv", shuffled_frame)
    data = Interactions.from_frame(shuffled_frame, rating_scale=(1, 5))
    splitter = SurpriseKFoldSplitter(n_folds=5, load_order=str(tmp_path / "with.tsv"))
    ours = our_folds(data, splitter)
    assert splitter.info_ == {"load_order_lines_not_in_data": 2}
    for (pairs, _, split), (test, _) in zip(ours, surprise_folds(tmp_path / "without.tsv", 5, 0),
                                            strict=True):
        assert pairs == set(test)
        assert split.info["load_order_lines_not_in_data"] == 2


def test_csv_with_header(tmp_path, shuffled_frame):
    write_ratings(tmp_path / "ratings.csv", shuffled_frame, sep=",", header=True)
    data = Interactions.from_frame(shuffled_frame, rating_scale=(1, 5))
    splitter = SurpriseKFoldSplitter(
        n_folds=3, load_order=str(tmp_path / "ratings.csv"), load_order_sep=",",
        load_order_header=True,
    )
    theirs = surprise_folds(tmp_path / "ratings.csv", 3, 0, sep=",", skip=1)
    for (pairs, train, _), (test, their_train) in zip(our_folds(data, splitter), theirs,
                                                      strict=True):
        assert pairs == set(test) and train == their_train


def test_bad_load_order_files(tmp_path, shuffled_frame):
    data = Interactions.from_frame(shuffled_frame, rating_scale=(1, 5))
    with pytest.raises(DataError, match="load-order file does not exist"):
        SurpriseKFoldSplitter(load_order=str(tmp_path / "nope.tsv")).split(data)
    write_ratings(tmp_path / "short.tsv", shuffled_frame.iloc[:-3])
    with pytest.raises(SplitError, match=r"3 row\(s\) of .* are not in the load-order file"):
        SurpriseKFoldSplitter(load_order=str(tmp_path / "short.tsv")).split(data)
    write_ratings(tmp_path / "dup.tsv", pd.concat([shuffled_frame, shuffled_frame.iloc[:1]]))
    with pytest.raises(DataError, match="appears on 2 lines"):
        SurpriseKFoldSplitter(load_order=str(tmp_path / "dup.tsv")).split(data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_folds": 1}, r"split\.n_folds: expected an integer >= 2, got 1"),
        ({"seed": 2**32}, r"split\.seed: expected an integer in \[0, 2\*\*32\)"),
        ({"seed": -1}, r"split\.seed: expected a non-negative integer"),
        ({"load_order": 3}, r"split\.load_order: expected a file path or null, got 3"),
        ({"load_order_sep": ""}, r"split\.load_order_sep: expected a non-empty string"),
        ({"load_order_header": "no"}, r"split\.load_order_header: expected true or false"),
        ({"validation": 0.1}, r"split\.validation: split 'surprise_kfold' has no validation"),
    ],
)
def test_bad_parameters_are_config_errors(kwargs, message, events):
    with pytest.raises(ConfigError, match=message):
        SurpriseKFoldSplitter(**kwargs).split(events)


def test_more_folds_than_rows_is_a_split_error(events):
    with pytest.raises(SplitError, match=r"lower split\.n_folds"):
        SurpriseKFoldSplitter(n_folds=len(events) + 1).split(events)
