"""The hit matrix: hand cases, both designs agree, duplicates and bad input are rejected."""

import numpy as np
import pytest
import scipy.sparse as sp

import bench.metrics.hits as hits_module
from bench.errors import EvaluationError
from bench.metrics import hit_matrix, ideal_gains, n_relevant


def csr(rows, n_items):
    """rows: list of {item: gain} per user."""
    r = [u for u, row in enumerate(rows) for _ in row]
    c = [i for row in rows for i in row]
    d = [g for row in rows for g in row.values()]
    return sp.csr_matrix((np.array(d, dtype=float), (r, c)), shape=(len(rows), n_items))


def test_hand_case_hits_and_gains():
    recs = np.array([[3, 1, -1], [0, 2, 4], [-1, -1, -1]])
    rel = csr([{1: 2.0, 5: 1.0}, {4: 3.0}, {0: 1.0}], n_items=6)
    hits, gains = hit_matrix(recs, rel)
    np.testing.assert_array_equal(
        hits, [[False, True, False], [False, False, True], [False, False, False]]
    )
    np.testing.assert_array_equal(gains, [[0, 2, 0], [0, 0, 3], [0, 0, 0]])
    assert hits.dtype == np.bool_ and gains.dtype == np.float64


def test_padding_never_hits_even_next_to_item_zero_or_last_item():
    # -1 must not wrap to the previous row's last item or match item 0
    recs = np.array([[4, -1], [-1, 0]], dtype=np.int32)
    rel = csr([{4: 1.0}, {4: 1.0, 0: 1.0}], n_items=5)
    hits, _ = hit_matrix(recs, rel)
    np.testing.assert_array_equal(hits, [[True, False], [False, True]])


def test_duplicate_item_in_a_list_is_an_error():
    recs = np.array([[1, 2, 3], [5, 4, 5]])
    rel = csr([{1: 1.0}, {4: 1.0}], n_items=6)
    with pytest.raises(EvaluationError, match=r"1 list\(s\).*row 1 repeats item code\(s\) \[5\]"):
        hit_matrix(recs, rel)


def test_repeated_padding_is_not_a_duplicate():
    recs = np.array([[2, -1, -1, -1]])
    hits, _ = hit_matrix(recs, csr([{2: 1.0}], n_items=3))
    assert hits.tolist() == [[True, False, False, False]]


@pytest.mark.parametrize(
    ("recs", "match"),
    [
        (np.array([[0, 7]]), r"item codes in \[0, 6\)"),
        (np.array([[0, -2]]), r"got values from -2"),
        (np.array([[0.0, 1.0]]), "integer"),
        (np.array([0, 1]), "2-D"),
        (np.array([[0, 1], [2, 3]]), "same number of user rows"),
    ],
)
def test_bad_recs(recs, match):
    with pytest.raises(EvaluationError, match=match):
        hit_matrix(recs, csr([{1: 1.0}], n_items=6))


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_non_positive_or_non_finite_gains_are_rejected(bad):
    rel = sp.csr_matrix((np.array([1.0, bad]), np.array([0, 1]), np.array([0, 2])), shape=(1, 3))
    with pytest.raises(EvaluationError, match=r"finite positive gains.*got 1 entries"):
        hit_matrix(np.array([[0, 1]]), rel)


def test_relevant_must_be_sparse():
    with pytest.raises(EvaluationError, match=r"scipy\.sparse"):
        hit_matrix(np.array([[0]]), np.ones((1, 1)))


def test_other_sparse_formats_and_duplicate_entries_are_accepted():
    # COO with a repeated (0, 2) entry: summed to a gain of 2, counted once
    rel = sp.coo_array(
        (np.array([1.0, 1.0, 1.0]), (np.array([0, 0, 0]), np.array([2, 2, 0]))), shape=(1, 4)
    )
    hits, gains = hit_matrix(np.array([[2, 1, 0]]), rel)
    assert hits.tolist() == [[True, False, True]]
    assert gains.tolist() == [[2.0, 0.0, 1.0]]
    assert n_relevant(rel).tolist() == [2]


def test_empty_inputs():
    hits, gains = hit_matrix(np.zeros((0, 5), dtype=np.int64), sp.csr_matrix((0, 3)))
    assert hits.shape == (0, 5) and gains.shape == (0, 5)


def random_case(rng, n_users, n_items, k, dup_rows=()):
    recs = np.stack([rng.permutation(n_items)[:k] for _ in range(n_users)])
    lengths = rng.integers(0, k + 1, n_users)
    recs[np.arange(k)[None, :] >= lengths[:, None]] = -1
    for row in dup_rows:
        recs[row, :2] = [1, 1]
    dense = rng.random((n_users, n_items)) < 0.1
    gains = rng.integers(1, 6, (n_users, n_items)).astype(float)
    return recs, sp.csr_matrix(np.where(dense, gains, 0.0))


def reference(recs, rel):
    dense = rel.toarray()
    gains = np.where(recs >= 0, dense[np.arange(len(recs))[:, None], recs], 0.0)
    return gains > 0, gains


@pytest.mark.parametrize("cells", [64, 1000, 1 << 23])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_and_sorted_designs_agree_with_a_reference(monkeypatch, cells, seed):
    # small buffers force many blocks (and the sorted design when a block is too narrow)
    monkeypatch.setattr(hits_module, "_BUFFER_CELLS", cells)
    monkeypatch.setattr(hits_module, "_SORTED_BLOCK_ROWS", 7)
    rng = np.random.default_rng(seed)
    recs, rel = random_case(rng, n_users=97, n_items=40, k=12)
    exp_hits, exp_gains = reference(recs, rel)
    rel = hits_module._as_csr(rel)
    for design in (hits_module._hits_dense, hits_module._hits_sorted):
        hits, gains, dups = design(recs, rel)
        np.testing.assert_array_equal(hits, exp_hits)
        np.testing.assert_array_equal(gains, exp_gains)
        assert dups.size == 0
        hits_only, no_gains, _ = design(recs, rel, False)  # the evaluator's binary path
        np.testing.assert_array_equal(hits_only, exp_hits)
        assert no_gains is None
    hits, gains = hit_matrix(recs, rel)
    np.testing.assert_array_equal(gains, exp_gains)


@pytest.mark.parametrize("cells", [64, 1 << 23])
def test_both_designs_find_every_duplicate_row(monkeypatch, cells):
    monkeypatch.setattr(hits_module, "_BUFFER_CELLS", cells)
    monkeypatch.setattr(hits_module, "_SORTED_BLOCK_ROWS", 5)
    rng = np.random.default_rng(3)
    recs, rel = random_case(rng, n_users=30, n_items=20, k=6, dup_rows=(0, 4, 5, 29))
    rel = hits_module._as_csr(rel)
    for design in (hits_module._hits_dense, hits_module._hits_sorted):
        _, _, dups = design(recs, rel)
        assert sorted(dups.tolist()) == [0, 4, 5, 29]
    with pytest.raises(EvaluationError, match=r"4 list\(s\).*row 0 repeats item code\(s\) \[1\]"):
        hit_matrix(recs, rel)


def test_ideal_gains():
    # row 0 gains {1: 1, 2: 3, 4: 2} -> sorted [3, 2, 1]; row 1 none; row 2 {0: 5}
    rel = csr([{1: 1.0, 2: 3.0, 4: 2.0}, {}, {0: 5.0}], n_items=5)
    np.testing.assert_array_equal(ideal_gains(rel, 4), [[3, 2, 1, 0], [0, 0, 0, 0], [5, 0, 0, 0]])
    np.testing.assert_array_equal(ideal_gains(rel, 2), [[3, 2], [0, 0], [5, 0]])
    assert ideal_gains(rel, 0).shape == (3, 0)
    with pytest.raises(EvaluationError, match="k >= 0"):
        ideal_gains(rel, -1)


def test_n_relevant():
    rel = csr([{1: 1.0, 2: 3.0}, {}, {0: 5.0}], n_items=3)
    assert n_relevant(rel).tolist() == [2, 0, 1]
