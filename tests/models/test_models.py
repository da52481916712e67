"""The three foundation models: known answers on small data, NaN where they cannot score."""

import numpy as np
import pandas as pd
import pytest

from bench.data.interactions import Interactions
from bench.models.collaborative import ImplicitALS
from bench.models.rule import PopularityRecommender, RandomRecommender


@pytest.fixture
def checkerboard():
    """Two user groups with disjoint tastes: even users like even items, odd users odd."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        liked = [i for i in range(30) if i % 2 == u % 2]
        for i in rng.choice(liked, size=10, replace=False):
            rows.append((u, int(i)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    return Interactions.from_frame(frame)


def test_popularity_scores_counts_and_nan_for_unseen_items():
    x = Interactions.from_frame(pd.DataFrame({"user_id": [1, 2, 2, 3], "item_id": [7, 7, 8, 7]}))
    train = x.take(np.array([0, 1, 2]))  # vocabulary keeps item 8 and 7
    model = PopularityRecommender().fit(train)
    s, _ = model.score_codes(np.array([0]), None)
    assert s.shape == (1, 2)
    assert s[0, 0] == 2.0 and s[0, 1] == 1.0
    model2 = PopularityRecommender().fit(x.take(np.array([0, 1, 3])))  # item 8 unseen
    assert model2.n_items == 1  # item 8 is not in its vocabulary
    assert np.isnan(model2.score_codes(np.array([0]), None)[0][0, 1])


def test_random_is_seeded_and_batch_independent(checkerboard):
    a = RandomRecommender(seed=1).fit(checkerboard)
    b = RandomRecommender(seed=1).fit(checkerboard)
    c = RandomRecommender(seed=2).fit(checkerboard)
    users = np.arange(40)
    ta = a.recommend_codes(users, 5, batch_size=7).items
    assert (ta == b.recommend_codes(users, 5, batch_size=40).items).all()
    assert not (ta == c.recommend_codes(users, 5).items).all()
    one = a.recommend_codes(users[[3]], 5).items
    assert (one[0] == ta[3]).all()


def test_random_scores_roughly_uniform(checkerboard):
    model = RandomRecommender(seed=0).fit(checkerboard)
    s = model._score(np.arange(40), None)
    assert s.min() >= 0.0 and s.max() < 1.0
    assert abs(float(s.mean()) - 0.5) < 0.05


def test_random_scores_are_the_documented_hash(checkerboard):
    """score = mix64(mix64(seed * golden + 1) ^ (user * n_items + item)) >> 40, over 2**24,
    computed here by hand for a few cells and compared bit for bit (the in-place hash)."""
    from bench.models.rule.random import GOLDEN, mix64

    model = RandomRecommender(seed=7).fit(checkerboard)
    users = np.array([0, 5, 39, -1])
    s = model._score(users, None)
    n = np.uint64(s.shape[1])
    with np.errstate(over="ignore"):
        base = mix64(np.uint64(7) * GOLDEN + np.uint64(1))
        for row, u in enumerate(users):
            for item in (0, 3, s.shape[1] - 1):
                x = mix64(base ^ (np.int64(u).astype(np.uint64) * n + np.uint64(item)))
                want = np.float32(int(x >> np.uint64(40))) / np.float32(1 << 24)
                assert s[row, item].tobytes() == want.tobytes()


def test_als_recovers_checkerboard(checkerboard):
    # rank-2 structure; each user has exactly 5 unseen liked items, so top-5 = those
    model = ImplicitALS(factors=2, iterations=10, regularization=0.01, seed=0, num_threads=1)
    top = model.fit(checkerboard).recommend_codes(np.arange(40), 5)
    items = checkerboard.item_ids.to_numpy()[top.items]
    users = checkerboard.user_ids.to_numpy()
    same_parity = (items % 2) == (users[:, None] % 2)
    assert same_parity.all()


def test_als_unknown_user_and_unseen_item_are_nan(checkerboard):
    frame = checkerboard.to_frame()
    x = Interactions.from_frame(
        pd.concat([frame, pd.DataFrame({"user_id": [99], "item_id": [99]})], ignore_index=True)
    )
    train = x.take(np.flatnonzero(x.users != x.user_ids.get_loc(99)))
    model = ImplicitALS(factors=4, iterations=3, seed=0, num_threads=1).fit(train)
    s, _ = model.score_codes(np.array([x.user_ids.get_loc(99), 0]), None)
    assert np.isnan(s[0]).all()
    assert np.isnan(s[1, x.item_ids.get_loc(99)])
    assert np.isfinite(s[1, x.item_ids.get_loc(0)])


def test_als_same_seed_same_factors(checkerboard):
    a = ImplicitALS(factors=4, iterations=3, seed=5, num_threads=1).fit(checkerboard)
    b = ImplicitALS(factors=4, iterations=3, seed=5, num_threads=1).fit(checkerboard)
    assert np.array_equal(a.user_factors_, b.user_factors_)
