"""The numba top-k kernel and the fused factor path give the numpy path's exact arrays."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bench.data.interactions import Interactions
from bench.models import topk
from bench.models.base import mask_history
from bench.models.topk import factor_top_k, top_k, top_k_exact, top_k_numpy


def _tie_heavy(seed: int, n_rows: int = 60, n_items: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scores = rng.integers(-3, [3, 20, 1000][seed % 3], (n_rows, n_items)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.2] = np.nan
    scores[rng.random(scores.shape) < 0.02] = -np.inf  # never ranks, like NaN
    scores[rng.random(scores.shape) < 0.01] = np.inf
    scores[0, 4:] = np.nan  # fewer finite scores than k
    scores[1, :] = -0.0
    scores[1, 7:9] = 0.0  # signed zeros tie
    scores[2, :] = np.nan  # nothing to rank
    return scores


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_equals_numpy_paths(seed, threads, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(topk, "KERNEL_MIN_CELLS", 0)
    monkeypatch.setattr(topk, "INLINE_CELLS", 1)  # exercise the threaded split too
    scores = _tie_heavy(seed)
    before = scores.copy()
    for k in (1, 3, 10, 199, 200, 500):
        items, top = top_k(scores, k, threads=threads)
        ref_items, ref_top = top_k_numpy(scores, k)
        ex_items, ex_top = top_k_exact(scores, k)
        assert np.array_equal(items, ref_items) and np.array_equal(items, ex_items), k
        assert np.array_equal(top, ref_top, equal_nan=True), k
        assert np.array_equal(top.view(np.int32), ex_top.view(np.int32)), k  # bit-identical
    assert np.array_equal(scores, before, equal_nan=True)  # input untouched
    items, top = top_k(scores[1:3], 3, threads=threads)
    assert items.tolist() == [[0, 1, 2], [-1, -1, -1]]
    assert top[0].tolist() == [0.0, 0.0, 0.0] and np.isnan(top[1]).all()


def test_kernel_hand_case(monkeypatch):
    monkeypatch.setattr(topk, "KERNEL_MIN_CELLS", 0)
    s = np.array([[1, 3, 3, np.nan, 2, 3], [np.nan, 0.5, np.nan, -np.inf, np.nan, np.nan]])
    items, scores = top_k(s.astype(np.float32), 4)
    assert items.tolist() == [[1, 2, 5, 4], [1, -1, -1, -1]]
    assert scores[0].tolist() == [3, 3, 3, 2]


def _integer_factors(seed: int, n: int, f: int) -> np.ndarray:
    # small integers: every product is exact, so any BLAS blocking gives the same
    # floats, and ties are everywhere
    return np.random.default_rng(seed).integers(-2, 3, (n, f)).astype(np.float32)


@pytest.mark.parametrize("engine", ["kernel", "numpy"])
@pytest.mark.parametrize("block_rows,threads", [(3, 2), (7, 1), (64, 2)])
def test_factor_top_k_equals_dense_reference(engine, block_rows, threads, monkeypatch):
    if engine == "kernel":
        pytest.importorskip("numba")
        monkeypatch.setattr(topk, "KERNEL_MIN_CELLS", 0)
    else:
        monkeypatch.setenv("BENCH_TOPK_ENGINE", "numpy")
    n_users, n_items = 41, 57
    uf = _integer_factors(0, n_users, 4)
    itf = _integer_factors(1, n_items, 4)
    uf[5] = np.nan  # a user that cannot be scored
    rng = np.random.default_rng(2)
    exclude = sp.random(n_users, n_items, density=0.2, format="csr", random_state=rng)
    exclude.data[:] = 1
    exclude = exclude.tolil()
    exclude[9] = 1  # a user who has seen everything
    exclude = exclude.tocsr()
    item_mask = rng.random(n_items) > 0.1
    for k in (1, 10, 57, 80):
        items, top = factor_top_k(
            uf,
            itf,
            k,
            exclude=exclude,
            item_mask=item_mask,
            block_rows=block_rows,
            threads=threads,
        )
        dense = uf @ itf.T
        dense[:, ~item_mask] = np.nan
        mask_history(dense, exclude)
        ref_items, ref_top = top_k_exact(dense, k)
        assert np.array_equal(items, ref_items), k
        assert np.array_equal(top, ref_top, equal_nan=True), k
        assert (items[5] == -1).all() and (items[9] == -1).all()
    # without exclusion: seen items may come back
    items, _ = factor_top_k(uf, itf, 5, block_rows=block_rows, threads=threads)
    assert np.array_equal(items, top_k_exact(uf @ itf.T, 5)[0])


@pytest.mark.parametrize("min_cells", [0, 1 << 30])  # kernel, numpy
def test_als_fused_path_equals_generic_path(min_cells, monkeypatch):
    from bench.models.collaborative.als import ImplicitALS

    monkeypatch.setattr(topk, "KERNEL_MIN_CELLS", min_cells)

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"user_id": rng.integers(0, 30, 300), "item_id": rng.integers(0, 40, 300)})
    frame = frame.drop_duplicates(ignore_index=True)
    train = Interactions.from_frame(frame)
    model = ImplicitALS(factors=4, iterations=2).fit(train)
    # integer factors make every score exact whichever BLAS call computes it
    model._store_factors(
        _integer_factors(5, train.n_users, 4), _integer_factors(6, train.n_items, 4)
    )
    model.item_mask_[3] = False  # an item never seen in training scores NaN
    users = np.array([0, 5, -1, 7, 29, 5])
    for exclude_seen in (True, False):
        fused = model.recommend_codes(users, 12, batch_size=4, exclude_seen=exclude_seen)
        with monkeypatch.context() as patch:  # the generic score + mask + top_k path
            patch.setattr(type(model), "_top_k_fast", lambda *a, **kw: None)
            generic = model.recommend_codes(users, 12, batch_size=4, exclude_seen=exclude_seen)
        assert np.array_equal(fused.items, generic.items)
        assert np.array_equal(fused.scores, generic.scores, equal_nan=True)
    assert (fused.items[2] == -1).all()  # unknown user: empty list
    assert 3 not in fused.items


def _skewed_case(seed: int, n_users: int, n_items: int, f: int, integer: bool):
    """Factors whose item norms span orders of magnitude (as ALS's do on Zipf data), an
    exclusion matrix, an item mask and a user that cannot be scored."""
    rng = np.random.default_rng(seed)
    if integer:  # exact products: ties everywhere, the same floats from any BLAS call
        uf = rng.integers(-2, 3, (n_users, f)).astype(np.float32)
        itf = rng.integers(-1, 2, (n_items, f)).astype(np.float32)
        itf *= rng.choice([1.0, 1.0, 2.0, 8.0, 32.0], (n_items, 1)).astype(np.float32)
    else:
        uf = rng.standard_normal((n_users, f)).astype(np.float32)
        itf = rng.standard_normal((n_items, f)).astype(np.float32)
        itf *= (10.0 ** rng.uniform(-2, 1, (n_items, 1))).astype(np.float32)
    uf[3] = np.nan
    exclude = sp.random(n_users, n_items, density=0.05, format="csr", random_state=rng)
    exclude.data[:] = 1
    item_mask = rng.random(n_items) > 0.05
    item_mask[np.argsort(-np.linalg.norm(itf, axis=1))[:3]] = False  # the largest norms
    return uf, itf, exclude, item_mask


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("block_rows,threads", [(5, 1), (16, 2)])
def test_norm_ordered_tiles_and_the_bound_keep_the_exact_lists(integer, block_rows, threads,
                                                                monkeypatch):
    """Items scored tile by tile in order of decreasing norm, blocks stopped by the
    |u| |v| bound: the arrays equal the dense reference (ties toward the lower code even
    when the lower code comes in a later tile), and some cells were really skipped."""
    pytest.importorskip("numba")
    monkeypatch.setattr(topk, "KERNEL_MIN_CELLS", 0)
    monkeypatch.setattr(topk, "TILE_CELLS", block_rows * 64)  # first tile: 64 items
    uf, itf, exclude, item_mask = _skewed_case(1, 90, 700, 6, integer)
    dense = uf @ itf.T
    dense[:, ~item_mask] = np.nan
    mask_history(dense, exclude)
    for k in (1, 5, 40):
        stats = {}
        items, top = factor_top_k(uf, itf, k, exclude=exclude, item_mask=item_mask,
                                  block_rows=block_rows, threads=threads, stats=stats)
        ref_items, ref_top = top_k_exact(dense, k)
        assert np.array_equal(items, ref_items), k
        assert np.array_equal(top.view(np.int32), ref_top.view(np.int32)), k
        assert stats["cells"] == 90 * 700
        if k <= 5:
            assert stats["skipped_cells"] > 0.2 * stats["cells"], (k, stats)
    if integer:  # the case really had ties at the k-th place
        kth = np.sort(np.nan_to_num(dense, nan=-np.inf), axis=1)[:, -5]
        assert ((dense == kth[:, None]).sum(axis=1) > 1).any()


def test_the_bound_never_skips_without_skew(monkeypatch):
    """Equal norms: no bound can exclude a tile, every cell is scored, lists exact."""
    pytest.importorskip("numba")
    monkeypatch.setattr(topk, "KERNEL_MIN_CELLS", 0)
    monkeypatch.setattr(topk, "TILE_CELLS", 8 * 64)
    rng = np.random.default_rng(2)
    uf = rng.standard_normal((40, 8)).astype(np.float32)
    itf = rng.standard_normal((500, 8)).astype(np.float32)
    itf /= np.linalg.norm(itf, axis=1, keepdims=True)
    stats = {}
    items, _ = factor_top_k(uf, itf, 10, block_rows=8, threads=1, stats=stats)
    assert stats["skipped_cells"] == 0
    assert np.array_equal(items, top_k_exact(uf @ itf.T, 10)[0])
