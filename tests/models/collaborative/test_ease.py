"""EASE: the closed form on a hand-computed 3x3 case, the memory refusal, NaN rules."""

import numpy as np
import pandas as pd
import pytest

from bench.data.interactions import Interactions
from bench.errors import ConfigError
from bench.models.collaborative import EASE, ease
from tests.models.collaborative import cf_data
from tests.models.collaborative.cf_data import data_history, with_new_user_and_item


@pytest.fixture
def two_users():
    """u0 has a, b; u1 has b, c. With l2 = 1: X^T X + I = [[2,1,0],[1,3,1],[0,1,2]]."""
    frame = pd.DataFrame({"user_id": [0, 0, 1, 1], "item_id": ["a", "b", "b", "c"],
                          "rating": [4.0, 2.0, 1.0, 3.0]})
    return Interactions.from_frame(frame)


def test_weights_match_the_hand_computed_closed_form(two_users):
    # P = inv([[2,1,0],[1,3,1],[0,1,2]]) = [[5,-2,1],[-2,4,-2],[1,-2,5]] / 8 (det 8), and
    # B_ij = -P_ij / P_jj off the diagonal, 0 on it.
    model = EASE(l2=1.0).fit(two_users)
    want = np.array([[0.0, 0.5, -0.2], [0.4, 0.0, 0.4], [-0.2, 0.5, 0.0]])
    np.testing.assert_allclose(model.weights_, want, atol=1e-7)
    # u0's history {a, b}: scores = B[a] + B[b] = [0.4, 0.5, 0.2]
    s = model._score(np.array([0]), model.seen_[[0]])
    np.testing.assert_allclose(s[0], [0.4, 0.5, 0.2], atol=1e-7)
    top = model.recommend_codes(np.array([0, 1]), 2)
    assert list(top.items[0]) == [2, -1] and list(top.items[1]) == [0, -1]
    assert top.scores[1, 0] == pytest.approx(-0.2 + 0.4)  # u1 {b, c} -> a: B[b,a] + B[c,a]


def test_ratings_variant_is_the_same_formula_on_rating_values(two_users):
    model = EASE(l2=2.0, implicit=False).fit(two_users)
    x = np.array([[4.0, 2.0, 0.0], [0.0, 1.0, 3.0]])
    p = np.linalg.inv(x.T @ x + 2.0 * np.eye(3))
    want = np.eye(3) - p / np.diag(p)[None, :]
    np.testing.assert_allclose(model.weights_, want, atol=1e-6)
    s = model._score(np.array([0]), model.seen_[[0]])
    np.testing.assert_allclose(s[0], x[0] @ want, rtol=1e-5)


def test_refuses_a_catalogue_too_large_before_allocating(two_users, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("inverted the Gram matrix despite the memory limit")

    monkeypatch.setattr(ease, "spd_inverse", boom)
    with pytest.raises(ConfigError) as err:
        EASE(max_memory_gb=1e-7).fit(two_users)
    msg = str(err.value)
    assert "3 training items" in msg  # the item count
    assert "GiB" in msg and "(3 x 3 pairs at up to 24 bytes)" in msg  # the estimate
    assert "max_memory_gb=1e-07" in msg  # the knob
    assert "minimum item count" in msg  # the way out


def test_memory_estimate_is_24_bytes_per_item_pair():
    # 10,000 items -> 24 x 1e8 bytes = 2.2 GiB: fits under 4, refused under 2
    n = 10_000
    frame = pd.DataFrame({"user_id": np.zeros(n, dtype=int), "item_id": np.arange(n)})
    with pytest.raises(ConfigError, match=r"10000 training items need about 2\.2 GiB"):
        EASE(max_memory_gb=2.0).fit(Interactions.from_frame(frame))


def test_empty_history_and_unseen_item_are_nan_fold_in_is_scored():
    train, user, item = with_new_user_and_item(cf_data.checkerboard())
    model = EASE(l2=10.0).fit(train)
    assert model.weights_.shape == (30, 30)  # only items seen in training
    s, _ = model.score_codes(np.array([user, 0]), data_history(train, [user, 0]))
    assert np.isnan(s[0]).all()
    assert np.isnan(s[1, item]) and np.isfinite(np.delete(s[1], item)).all()
    assert model.recommend([999], k=5).empty
    fold_in = Interactions.from_frame(pd.DataFrame({"user_id": [999] * 3, "item_id": [0, 2, 4]}))
    recs = model.recommend([999], k=5, history=fold_in)
    assert len(recs) == 5 and (recs.item_id % 2 == 0).all()


@pytest.mark.parametrize(
    "kwargs, key",
    [({"l2": 0.0}, "l2"), ({"max_memory_gb": -1}, "max_memory_gb"),
     ({"implicit": "yes"}, "implicit")],
)
def test_bad_hyperparameters_are_refused(two_users, kwargs, key):
    with pytest.raises(ConfigError, match=f"EASE {key}"):
        EASE(**kwargs).fit(two_users)


def test_spd_inverse_in_place_across_blocks():
    rng = np.random.default_rng(0)
    x = rng.random((40, 11))
    a = x.T @ x + 0.5 * np.eye(11)
    want = np.linalg.inv(a)
    got = ease.spd_inverse(a.copy(), block=4)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert np.array_equal(got, got.T)
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        ease.spd_inverse(-np.eye(3))


def test_weights_do_not_depend_on_the_blas_thread_count():
    # OpenBLAS's blocked Cholesky rounds differently with 1 and 2 threads on a catalogue
    # this size; EASE inverts with one thread, so a cell gives the same lists wherever it
    # runs (executor=local on all cores, executor=ray pinned to its CPUs)
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    n_users, n_items = 400, 1500
    users = np.repeat(np.arange(n_users), 40)
    items = rng.integers(0, n_items, len(users))
    frame = pd.DataFrame({"user_id": users, "item_id": items}).drop_duplicates()
    data = Interactions.from_frame(frame)
    weights = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="blas"):
            weights.append(EASE(l2=50.0).fit(data).weights_)
    assert weights[0].shape == (data.n_items, data.n_items)
    np.testing.assert_array_equal(weights[0], weights[1])
