"""The static rules' recommend_codes (global ranking minus history) equals the generic path."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bench.data.interactions import Interactions
from bench.models.rule import (
    DecayedPopularityRecommender,
    PopularityRecommender,
    RatedPopularityRecommender,
)
from tests.helpers import recommend_without


def generic(model, *args, **kwargs):
    """The generic path: scores for every item, masking, top_k (no fast path)."""
    return recommend_without(model, "_top_k_fast", *args, **kwargs)


def same(a, b):
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.scores, b.scores)  # NaN where items is -1, in both
    assert a.sources is None and b.sources is None
    np.testing.assert_array_equal(a.users, b.users)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n_users, n_items, n = 60, 40, 700
    u = rng.integers(0, n_users - 5, n)  # the last 5 users never appear in train
    i = np.minimum(rng.zipf(1.6, n), n_items - 6) - 1  # heavy ties; the last items unseen
    frame = pd.DataFrame({"user_id": u, "item_id": i, "rating": rng.integers(1, 6, n),
                          "timestamp": rng.integers(0, 10**6, n)})
    frame = frame.drop_duplicates(["user_id", "item_id"])
    return Interactions.from_frame(
        frame, rating_scale=(1, 5), user_ids=pd.Index(range(n_users)),
        item_ids=pd.Index(range(n_items)),
    )


@pytest.mark.parametrize(
    "model",
    [PopularityRecommender(), PopularityRecommender(min_count=3),
     DecayedPopularityRecommender(half_life_days=1.0), RatedPopularityRecommender()],
    ids=["count", "min_count", "decayed", "rated"],
)
def test_same_lists_as_the_generic_path(data, model):
    model.fit(data)
    assert model._top_k_fast(np.array([0]), model.seen_[[0]], 3, True) is not None  # taken
    users = np.r_[np.arange(data.n_users), -1, 3, 3]  # every user, an unknown one, repeats
    rng = np.random.default_rng(1)
    extra = sp.random(len(users), data.n_items, density=0.1, format="csr", random_state=rng)
    for k in (1, 5, 25, 60):  # 60 > n_items: padded with -1 in both
        for exclude_seen in (True, False):
            for history in (None, extra):
                kwargs = {"exclude_seen": exclude_seen, "history": history}
                fast = model.recommend_codes(users, k, batch_size=7, **kwargs)
                same(fast, generic(model, users, k, **kwargs))


def test_history_is_skipped_by_hand(small):
    # counts: item 1 (3), item 2 (2), items 3 and 4 (1 each, tie -> lower code), item 5 never
    model = PopularityRecommender().fit(small)
    codes = small.item_ids.get_indexer([1, 2, 3, 4])
    top = model.recommend_codes(np.array([0, 1, 2, -1]), 3)
    expected = np.array([[codes[3], -1, -1],  # a saw 1, 2, 3
                         [codes[2], codes[3], -1],  # b saw 1, 2
                         [codes[1], codes[2], -1],  # c saw 1, 4
                         [codes[0], codes[1], codes[2]]])  # unknown: nothing to skip
    np.testing.assert_array_equal(top.items, expected)
    np.testing.assert_array_equal(top.scores[3], [3, 2, 1])
    assert np.isnan(top.scores[0, 1:]).all()
