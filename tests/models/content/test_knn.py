"""ContentItemKNN: neighbour truncation, block independence, scores and NaN rules."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bench.data.features import ItemFeatures
from bench.data.interactions import Interactions
from bench.errors import ConfigError
from bench.models.content import ContentItemKNN, content_neighbours
from bench.models.content.knn import top_mask

R = 1 / math.sqrt(2)
GENRES = [[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]


def unit_rows(rows):
    m = np.asarray(rows, dtype=np.float64)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return sp.csr_matrix(np.divide(m, norms, out=np.zeros_like(m), where=norms > 0))


def test_top_mask_keeps_largest_positive_ties_to_lower_columns():
    s = np.array([[0.5, 0.9, 0.5, 0.5, 0.0], [0.0, -1.0, 0.2, np.nan, 0.0]], dtype=np.float32)
    assert top_mask(s, 2).tolist() == [
        [True, True, False, False, False],
        [False, False, True, False, False],  # only one positive value
    ]
    assert top_mask(s, 3)[0].tolist() == [True, True, True, False, False]


def test_neighbours_truncated_per_item():
    # cosines: s01 = 1, s02 = s12 = s23 = 1/sqrt2, item 4 shares nothing, item 5 is empty
    sim = content_neighbours(unit_rows(GENRES), neighbours=1).toarray()
    expected = np.zeros((6, 6))
    expected[0, 1] = expected[1, 0] = 1.0
    expected[2, 0] = R  # ties with items 1 and 3: the lowest code wins
    expected[3, 2] = R
    np.testing.assert_allclose(sim, expected, atol=1e-6)
    sim2 = content_neighbours(unit_rows(GENRES), neighbours=2).toarray()
    assert np.count_nonzero(sim2, axis=1).tolist() == [2, 2, 2, 1, 0, 0]
    np.testing.assert_allclose(sim2[0], [0, 1, R, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(sim2[2], [R, R, 0, 0, 0, 0], atol=1e-6)


@pytest.mark.parametrize("block_size", [1, 3, 7, 64])
def test_blocks_give_the_same_neighbours_as_one_block(block_size):
    rng = np.random.default_rng(0)
    dense = rng.integers(0, 2, size=(40, 6)).astype(np.float64)  # many exact ties
    v = unit_rows(dense)
    one = content_neighbours(v, neighbours=5, block_size=40)
    blocked = content_neighbours(v, neighbours=5, block_size=block_size)
    assert (one != blocked).nnz == 0
    assert (np.diff(one.indptr) <= 5).all()


@pytest.mark.parametrize("budget", [10**9, 2000, 300])
def test_similarities_are_the_sparse_product_bit_for_bit_whatever_the_column_chunks(
        budget, monkeypatch):
    """Each kept similarity is exactly the float32 value ``vectors @ block.T`` gives (the
    same products summed in the same feature order), with the columns densified whole or
    in chunks of the SCORE_BLOCK_FLOATS budget."""
    import bench.models.content.knn as knn

    rng = np.random.default_rng(1)
    dense = rng.standard_normal((90, 40)) * (rng.random((90, 40)) < 0.3)  # signs, zeros
    v = sp.csr_matrix(unit_rows(dense), dtype=np.float32)
    reference = np.asarray((v @ v.toarray().T).T, dtype=np.float32)
    np.fill_diagonal(reference, 0.0)
    monkeypatch.setattr(knn, "SCORE_BLOCK_FLOATS", budget)
    sim = content_neighbours(v, neighbours=7)
    rows = np.repeat(np.arange(90), np.diff(sim.indptr))
    assert sim.nnz > 300
    assert sim.data.tobytes() == reference[rows, sim.indices].tobytes()
    assert ((reference > 0).sum(axis=1).clip(max=7) == np.diff(sim.indptr)).all()


@pytest.fixture
def small():
    feats = ItemFeatures(
        pd.Index(range(6), name="item_id"),
        np.full(6, "", dtype=object),
        np.full(6, np.nan),
        sp.csr_matrix(np.asarray(GENRES, dtype=np.float32)),
        ("g0", "g1", "g2"),
    )
    frame = pd.DataFrame(
        {"user_id": ["a", "b", "b"], "item_id": [3, 0, 3], "rating": [4.0, 5.0, 2.0]}
    )
    x = Interactions.from_frame(frame, item_ids=pd.Index(range(6)), rating_scale=(1, 5))
    return x, feats


def test_scores_sum_neighbour_similarities(small):
    x, feats = small
    m = ContentItemKNN(weights={"genres": 1.0}, neighbours=2, weighting="binary").fit(x, feats)
    users = np.array([0, 1])
    s = m._score(users, m._history_rows(users, None))
    # a = {3}: item 3's only neighbour is 2 -> score r; everything else has no evidence
    assert np.isfinite(s[0]).tolist() == [False, False, True, False, False, False]
    np.testing.assert_allclose(s[0, 2], R, atol=1e-6)
    # b = {0, 3}: 0 -> {1: 1, 2: r}, 3 -> {2: r}
    np.testing.assert_allclose(s[1, [1, 2]], [1.0, 2 * R], atol=1e-6)
    assert np.isnan(s[1, [0, 3, 4, 5]]).all()
    top = m.recommend_codes(users, 3)
    assert top.items.tolist() == [[2, -1, -1], [2, 1, -1]]


def test_rating_weighted_scores(small):
    x, feats = small
    m = ContentItemKNN(weights={"genres": 1.0}, neighbours=2, weighting="rating").fit(x, feats)
    s = m._score(np.array([1]), m._history_rows(np.array([1]), None))
    np.testing.assert_allclose(s[0, [1, 2]], [5.0, 5 * R + 2 * R], atol=1e-5)


def test_item_without_features_never_scored(small):
    x, feats = small
    m = ContentItemKNN(weights={"genres": 1.0}, neighbours=5).fit(x, feats)
    s = m._score(np.array([0, 1, -1]), m._history_rows(np.array([0, 1, -1]), None))
    assert np.isnan(s[:, 5]).all()
    assert np.isnan(s[2]).all()  # unknown user without history


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"neighbours": 0}, "neighbours"),
        ({"block_size": 0}, "block_size"),
        ({"weighting": "x"}, "weighting"),
    ],
)
def test_bad_params(small, kwargs, match):
    x, feats = small
    with pytest.raises(ConfigError, match=match):
        ContentItemKNN(**kwargs).fit(x, feats)


def test_needs_item_features(small):
    x, _ = small
    with pytest.raises(ConfigError, match="ContentItemKNN: needs item features"):
        ContentItemKNN().fit(x)
