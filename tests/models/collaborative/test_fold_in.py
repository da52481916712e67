"""ALS fold-in: users absent from training are placed by one exact ALS user step.

The reference is ``implicit``'s own ``recalculate_user`` on a model holding the same item
factors, fed the confidences the training rows would have had.
"""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.nearest_neighbours import bm25_weight

from bench.data.interactions import Interactions
from bench.models.collaborative import ImplicitALS, ImplicitBPR
from bench.models.collaborative.factors import als_user_step
from tests.models.collaborative.cf_data import checkerboard, data_history, with_new_user_and_item


def _random_train() -> Interactions:
    rng = np.random.default_rng(0)
    rows = [(u, int(i)) for u in range(200) for i in rng.choice(100, size=15, replace=False)]
    return Interactions.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id"]))


def _history(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    """A binary CSR with one row per list of item codes (what ``_score`` receives)."""
    r = np.repeat(np.arange(len(rows)), [len(x) for x in rows])
    c = np.concatenate([np.asarray(x, dtype=np.int64) for x in rows])
    return sp.csr_matrix((np.ones(len(c), np.float32), (r, c)), shape=(len(rows), n_items))


def _reference(model: ImplicitALS, values: sp.csr_matrix) -> np.ndarray:
    """``implicit``'s ``recalculate_user`` for the rows of ``values`` (before alpha)."""
    ref = AlternatingLeastSquares(
        factors=model.item_factors_.shape[1],
        regularization=model.regularization,
        alpha=model.alpha,
        num_threads=1,
    )
    ref.item_factors = model.item_factors_
    ref.user_factors = model.user_factors_
    return ref.recalculate_user(np.arange(values.shape[0]), sp.csr_matrix(values))


HISTORIES = [[5], [1, 2, 3], list(range(10, 20)), [7, 70]]


def _rel_err(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("alpha", [1.0, 4.0])
def test_fold_in_equals_implicit_recalculate_user(alpha):
    train = _random_train()
    model = ImplicitALS(
        factors=8, regularization=0.1, alpha=alpha, iterations=5, seed=0, num_threads=1
    ).fit(train)
    hist = _history(HISTORIES, train.n_items)
    mine = model._fold_in_factors(hist)
    assert mine.dtype == np.float32 and mine.shape == (4, 8)
    assert _rel_err(mine, _reference(model, hist)) < 1e-4


def test_bm25_fold_in_weights_the_row_as_one_more_training_row():
    train = _random_train()
    model = ImplicitALS(
        factors=8, regularization=0.1, alpha=2.0, iterations=5, seed=0, num_threads=1,
        weighting="bm25", bm25_k1=1.2, bm25_b=0.8,
    ).fit(train)
    # a fold-in row equal to training user u's row gets exactly bm25_weight's row u
    users = np.array([0, 3, 17])
    weighted = bm25_weight(train.to_csr(), K1=1.2, B=0.8).tocsr()[users]
    mine = model._fold_in_factors(train.to_csr()[users])
    assert _rel_err(mine, _reference(model, weighted)) < 1e-4
    # and a short row: value (K1+1) / (K1 * (1 - B + B * len / mean_len) + 1) * idf
    hist = _history(HISTORIES, train.n_items)
    lengths = np.diff(hist.indptr)
    norm = 0.2 + 0.8 * lengths / 15.0  # every training row has 15 items
    counts = np.bincount(train.items, minlength=train.n_items)
    idf = np.log(200.0) - np.log1p(counts)
    values = hist.copy()
    values.data = 2.2 / (1.2 * np.repeat(norm, lengths) + 1.0) * idf[hist.indices]
    assert _rel_err(model._fold_in_factors(hist), _reference(model, values)) < 1e-4


def test_blocks_do_not_change_the_solution():
    train = _random_train()
    model = ImplicitALS(factors=6, iterations=3, seed=1, num_threads=1).fit(train)
    rng = np.random.default_rng(3)
    rows = [list(rng.choice(100, size=n, replace=False)) for n in (1, 2, 3, 5, 9, 10, 30, 4)]
    conf = _history(rows, train.n_items) * 3.0
    one_block = als_user_step(conf, model.item_factors_, model.regularization)
    tiny_blocks = als_user_step(conf, model.item_factors_, model.regularization, block_cells=4)
    np.testing.assert_allclose(tiny_blocks, one_block, rtol=1e-5, atol=1e-7)
    assert _rel_err(one_block, _reference(model, conf)) < 1e-4  # alpha = 1: conf as is


def test_als_user_step_negative_confidence_is_a_dislike():
    # one item, y = [2], YtY = 4, reg = 1: c = 3 -> A = 4 + 1 + 2*4 = 13, b = 3*2 = 6;
    # c = -3 -> same A, b = 0
    y = np.array([[2.0]], dtype=np.float32)
    conf = sp.csr_matrix(np.array([[3.0], [-3.0]]))
    np.testing.assert_allclose(als_user_step(conf, y, 1.0), [[6 / 13], [0.0]], rtol=1e-6)


def test_empty_history_unknown_items_and_rating_confidence_stay_nan():
    train, new_user, new_item = with_new_user_and_item(checkerboard())
    model = ImplicitALS(factors=4, iterations=3, seed=0, num_threads=1).fit(train)
    n = train.n_items
    users = np.array([new_user, new_user, new_user, -1])
    hist = _history([[], [new_item], [new_item, 0], [0]], n)  # the data's codes
    s, _ = model.score_codes(users, hist)
    assert np.isnan(s[0]).all()  # empty history
    assert np.isnan(s[1]).all()  # only an item never seen in training
    known = np.delete(np.arange(n), new_item)
    assert np.isfinite(s[2, known]).all() and np.isfinite(s[3, known]).all()
    assert np.isnan(s[2:, new_item]).all()
    # the unseen item is left out: same factors as the history without it
    np.testing.assert_array_equal(s[2], s[3])
    rated = ImplicitALS(factors=4, iterations=3, seed=0, num_threads=1, confidence="rating")
    rated.fit(train)
    assert np.isnan(rated.score_codes(users[2:], hist[2:])[0]).all()


def test_known_users_keep_their_scores_bit_for_bit():
    train, new_user, _ = with_new_user_and_item(checkerboard())
    model = ImplicitALS(factors=4, iterations=3, seed=0, num_threads=1).fit(train)
    users = np.array([0, new_user, 5, 1])
    extra = _history([[1, 3], [0, 2, 4], [], [7]], train.n_items)
    hist = data_history(train, users, extra)
    with_history = model.score_codes(users, hist)[0]
    without = model.score_codes(users, None)[0]
    known = np.array([0, 2, 3])
    inner = model.vocabulary_.users_in(users[known])
    expected = model.vocabulary_.scores_out(
        model.user_factors_[inner] @ model.item_factors_.T, np.float32(np.nan))
    np.testing.assert_array_equal(with_history[known], expected)
    np.testing.assert_array_equal(without[known], expected)
    assert np.isnan(without[1]).all() and np.isfinite(with_history[1]).any()


def test_folded_in_user_gets_its_history_neighbours():
    # rank-2 planted taste: even users like even items, odd users odd items
    train = checkerboard()
    model = ImplicitALS(factors=2, iterations=10, regularization=0.01, seed=0, num_threads=1)
    model.fit(train)
    history = Interactions.from_frame(
        pd.DataFrame({"user_id": ["new_even"] * 3 + ["new_odd"], "item_id": [0, 2, 4, 9]})
    )
    recs = model.recommend(["new_even", "new_odd", 0], k=5, history=history)
    by_user = recs.groupby("user_id")["item_id"].apply(list)
    assert len(by_user["new_even"]) == 5 and len(by_user["new_odd"]) == 5
    assert all(i % 2 == 0 and i not in (0, 2, 4) for i in by_user["new_even"])
    assert all(i % 2 == 1 and i != 9 for i in by_user["new_odd"])
    assert (recs["score"] == recs["score"]).all()  # no NaN among the ranked
    # fold-in equals the reference for this public path as well
    codes = train.item_ids.get_indexer([0, 2, 4])
    factor = model._fold_in_factors(_history([list(codes)], train.n_items))
    top = np.argsort(-(factor @ model.item_factors_.T)[0])
    assert set(train.item_ids[top[:8]]) <= set(range(0, 30, 2))


def test_bpr_still_cannot_fold_in():
    train, new_user, _ = with_new_user_and_item(checkerboard())
    model = ImplicitBPR(factors=4, iterations=3, seed=0, num_threads=1).fit(train)
    s, _ = model.score_codes(np.array([new_user]), _history([[0, 2]], train.n_items))
    assert np.isnan(s).all()
