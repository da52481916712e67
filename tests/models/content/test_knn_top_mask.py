"""top_mask: the fast tie-breaking equals the plain cumulative-sum rule, bit for bit."""

import numpy as np

from bench.models.content.knn import top_mask


def reference_top_mask(sims, k):
    """The rule spelled out: the k largest positive values, ties toward lower columns."""
    s = np.where(sims > 0, sims, 0).astype(np.float32)
    k = min(int(k), s.shape[1])
    out = np.zeros(s.shape, dtype=bool)
    if k <= 0:
        return out
    for i, row in enumerate(s):
        order = np.lexsort((np.arange(row.size), -row))  # value descending, column ascending
        keep = order[:k]
        out[i, keep[row[keep] > 0]] = True
    return out


def test_hand_case_ties_go_to_lower_columns():
    sims = np.array([[0.5, 0.2, 0.5, 0.5, -1.0, 0.9],
                     [0.0, 0.0, 0.1, 0.0, 0.0, 0.0]], dtype=np.float32)
    got = top_mask(sims, 3)
    assert got[0].tolist() == [True, False, True, False, False, True]  # 0.9, then 0.5 x2
    assert got[1].tolist() == [False, False, True, False, False, False]  # zeros never kept


def test_random_tied_matrices_match_the_reference():
    rng = np.random.default_rng(7)
    for _ in range(150):
        shape = (int(rng.integers(1, 12)), int(rng.integers(1, 30)))
        sims = rng.integers(-2, 4, size=shape).astype(np.float32) / 4  # many ties
        if rng.random() < 0.3:
            sims[rng.random(shape) < 0.1] = np.nan
        k = int(rng.integers(0, shape[1] + 3))
        np.testing.assert_array_equal(top_mask(sims, k), reference_top_mask(sims, k))


def _neighbours_by_mask(vectors, k):
    """content_neighbours as it was built before the top-k kernel: with top_mask."""
    import scipy.sparse as sp

    v = sp.csr_matrix(vectors, dtype=np.float32)
    sims = np.ascontiguousarray((v @ v.toarray().T).T)
    np.fill_diagonal(sims, 0.0)
    r, c = np.nonzero(top_mask(sims, k))
    out = sp.csr_matrix((sims[r, c], (r, c)), shape=sims.shape, dtype=np.float32)
    out.sort_indices()
    return out


def test_content_neighbours_pick_what_top_mask_picks():
    """Kernel and numpy paths of top-k (big and small blocks) give the masked matrix."""
    import scipy.sparse as sp

    from bench.models.content.knn import content_neighbours, shared_neighbours

    rng = np.random.default_rng(3)
    n = 700  # 700 x 700 cells: the top-k kernel's size; block_size=16 the numpy path
    dense = (rng.random((n, 12)) < 0.25).astype(np.float32)  # genre-like: many equal cosines
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    vectors = sp.csr_matrix(np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0))
    for k in (1, 10, 50):
        want = _neighbours_by_mask(vectors, k)
        for block in (None, 16):
            got = content_neighbours(vectors, k, block)
            for a, b in ((got.indptr, want.indptr), (got.indices, want.indices),
                         (got.data, want.data)):
                np.testing.assert_array_equal(a, b)
        shared = shared_neighbours(vectors, k)
        again = shared_neighbours(vectors.copy(), k)
        assert shared is not again
        np.testing.assert_array_equal(again.data, want.data)
        np.testing.assert_array_equal(again.indices, want.indices)
