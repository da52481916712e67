"""The shared recommend path: masking, top-k order, padding, batching, unknown users."""

import numpy as np
import pandas as pd
import pytest

from bench.data.interactions import Interactions
from bench.errors import ConfigError, NotFittedError
from bench.models.base import Recommender, top_k
from bench.models.rule import PopularityRecommender


class FixedScores(Recommender):
    """Scores come from a fixed table: item code + 1 (so higher codes rank first)."""

    def __init__(self, *, nan_items: tuple = ()):
        self.nan_items = nan_items

    def _fit(self, train, item_features, user_features):
        self.n_ = train.n_items

    def _score(self, users, history):
        s = np.tile(np.arange(1, self.n_ + 1, dtype=np.float32), (len(users), 1))
        s[:, list(self.nan_items)] = np.nan
        return s


@pytest.fixture
def tiny():
    # users a, b, c; items 10..14. a saw 10, 11; b saw 14; c saw 12.
    frame = pd.DataFrame(
        {"user_id": ["a", "a", "b", "c"], "item_id": [10, 11, 14, 12], "rating": [5, 4, 3, 5.0]}
    )
    frame = pd.concat(
        [frame, pd.DataFrame({"user_id": ["c"], "item_id": [13], "rating": [1.0]})],
        ignore_index=True,
    )
    return Interactions.from_frame(frame, rating_scale=(1, 5))


def test_top_k_orders_by_score_then_lower_code():
    s = np.array([[1, 3, 3, np.nan, 2, 3]], dtype=np.float32)
    items, scores = top_k(s, 4)
    assert items.tolist() == [[1, 2, 5, 4]]
    assert scores.tolist() == [[3, 3, 3, 2]]


def test_top_k_pads_when_too_few_scores():
    s = np.array([[np.nan, 0.5, np.nan]], dtype=np.float32)
    items, scores = top_k(s, 3)
    assert items.tolist() == [[1, -1, -1]]
    assert np.isnan(scores[0, 1:]).all()


def test_top_k_matches_full_sort_on_random_ties():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 4, size=(50, 40)).astype(np.float32)
    s[rng.random(s.shape) < 0.2] = np.nan
    items, _ = top_k(s.copy(), 7)
    key = np.where(np.isnan(s), -np.inf, s)
    ref = np.lexsort((np.broadcast_to(np.arange(40), s.shape), -key), axis=1)[:, :7]
    ref_scores = np.take_along_axis(key, ref, axis=1)
    ref[np.isneginf(ref_scores)] = -1
    assert (items == ref).all()


def test_recommend_masks_seen_items_and_orders(tiny):
    model = FixedScores().fit(tiny)
    rec = model.recommend(["a", "b"], k=3)
    got = rec.groupby("user_id")["item_id"].apply(list).to_dict()
    # item codes 0..4 = ids 10..14; score = code + 1; a saw 10, 11; b saw 14
    assert got == {"a": [14, 13, 12], "b": [13, 12, 11]}
    assert rec["rank"].tolist() == [1, 2, 3, 1, 2, 3]
    assert set(rec["source"]) == {"FixedScores"}


def test_recommend_short_lists_are_padded_not_filled(tiny):
    model = FixedScores(nan_items=(0, 1, 2)).fit(tiny)
    top = model.recommend_codes(np.array([0]), 4)  # user a: 3 items NaN, 10/11 seen anyway
    assert top.items.tolist() == [[4, 3, -1, -1]]
    assert top.lengths.tolist() == [2]


def test_batching_does_not_change_results(tiny):
    model = FixedScores().fit(tiny)
    users = np.array([0, 1, 2, 0, 2])
    one = model.recommend_codes(users, 3, batch_size=1)
    all_ = model.recommend_codes(users, 3, batch_size=100)
    assert (one.items == all_.items).all()


def test_unknown_user_gets_popular_list_without_masking(tiny):
    model = PopularityRecommender().fit(tiny)
    rec = model.recommend(["zz"], k=10)
    # every training item once, ties broken toward lower id; 5 items in training
    assert rec["item_id"].tolist() == [10, 11, 12, 13, 14]


def test_fold_in_history_is_masked(tiny):
    model = PopularityRecommender().fit(tiny)
    hist = Interactions.from_frame(pd.DataFrame({"user_id": ["new"], "item_id": [10]}))
    rec = model.recommend(["new"], k=10, history=hist)
    assert 10 not in rec["item_id"].tolist()
    assert len(rec) == 4


def test_recommend_before_fit_raises():
    with pytest.raises(NotFittedError, match="before fit"):
        PopularityRecommender().recommend(["a"], k=5)


@pytest.mark.parametrize("k", [0, -3])
def test_k_must_be_positive(tiny, k):
    model = PopularityRecommender().fit(tiny)
    with pytest.raises(ConfigError, match="positive integer"):
        model.recommend(["a"], k=k)


def test_get_params_reflects_constructor():
    assert PopularityRecommender(min_count=3).get_params() == {"min_count": 3}


@pytest.mark.parametrize("seed", range(6))
def test_fast_top_k_equals_exact_key_path(seed):
    from bench.models.base import top_k, top_k_exact

    rng = np.random.default_rng(seed)
    n_rows, n_items = 40, 300
    # few distinct values -> many ties at the k-th place; some NaN; some short rows
    scores = rng.integers(0, [3, 20, 1000][seed % 3], (n_rows, n_items)).astype(np.float32)
    scores[rng.random((n_rows, n_items)) < 0.2] = np.nan
    scores[0, 5:] = np.nan  # fewer finite scores than k
    scores[1, :] = -0.0
    scores[1, 7:9] = 0.0  # signed zeros compare equal: ties, lower code first
    for k in (1, 5, 10, 299, 300):
        fast_items, fast_top = top_k(scores, k)
        items, top = top_k_exact(scores, k)
        assert np.array_equal(fast_items, items), k
        assert np.array_equal(fast_top, top, equal_nan=True), k
    items, _ = top_k(scores[1:2], 3)
    assert items.tolist() == [[0, 1, 2]]
    # rows without ties take the fast path and agree too
    distinct = rng.permutation(n_rows * n_items).reshape(n_rows, n_items).astype(np.float32)
    assert np.array_equal(top_k(distinct, 10)[0], top_k_exact(distinct, 10)[0])
