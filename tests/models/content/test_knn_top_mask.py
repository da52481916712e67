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
