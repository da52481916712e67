"""ImplicitBPR: scores are implicit's own, NaN where it cannot score, reproducible."""

import numpy as np
import pytest

from bench.errors import ConfigError
from bench.models.collaborative import ImplicitBPR
from tests.models.collaborative.cf_data import with_new_user_and_item


def test_scores_match_implicits_recommend(random_ratings):
    model = ImplicitBPR(factors=8, iterations=20, seed=3).fit(random_ratings)
    users = np.arange(0, 200, 7)
    ids, scores = model.model_.recommend(
        users, model.seen_[users], N=10, filter_already_liked_items=True
    )
    top = model.recommend_codes(users, 10)
    # same scores in the same order, and the same items (continuous scores: no ties)
    np.testing.assert_allclose(top.scores, scores, rtol=1e-5, atol=1e-6)
    for row, want in zip(top.items, ids, strict=True):
        assert set(row) == set(want)
    # the factors include implicit's bias column: users' last column is 1
    assert model.user_factors_.shape[1] == 9
    assert np.all(model.user_factors_[:, -1] == 1.0)


def test_unknown_user_and_unseen_item_are_nan(checkerboard):
    train, user, item = with_new_user_and_item(checkerboard)
    model = ImplicitBPR(factors=4, iterations=5, seed=0).fit(train)
    s, _ = model.score_codes(np.array([user, 0, -1]), None)  # the data's codes
    assert np.isnan(s[0]).all() and np.isnan(s[2]).all()
    assert np.isnan(s[1, item])
    assert np.isfinite(np.delete(s[1], item)).all()
    assert model.recommend([999], k=5).empty


def test_same_seed_same_factors_bit_for_bit(random_ratings):
    a = ImplicitBPR(factors=8, iterations=10, seed=5).fit(random_ratings)
    b = ImplicitBPR(factors=8, iterations=10, seed=5).fit(random_ratings)
    c = ImplicitBPR(factors=8, iterations=10, seed=6).fit(random_ratings)
    assert np.array_equal(a.item_factors_, b.item_factors_)
    assert np.array_equal(a.user_factors_, b.user_factors_)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_learns_checkerboard(checkerboard):
    model = ImplicitBPR(factors=4, iterations=200, learning_rate=0.05, seed=0)
    top = model.fit(checkerboard).recommend_codes(np.arange(40), 5)
    items = checkerboard.item_ids.to_numpy()[top.items]
    users = checkerboard.user_ids.to_numpy()
    assert np.mean(items % 2 == users[:, None] % 2) > 0.9


@pytest.mark.parametrize(
    "kwargs, key",
    [({"factors": 0}, "factors"), ({"learning_rate": 0.0}, "learning_rate"),
     ({"regularization": -1.0}, "regularization"), ({"num_threads": -1}, "num_threads")],
)
def test_bad_hyperparameters_are_refused(checkerboard, kwargs, key):
    with pytest.raises(ConfigError, match=f"ImplicitBPR {key}"):
        ImplicitBPR(**kwargs).fit(checkerboard)
