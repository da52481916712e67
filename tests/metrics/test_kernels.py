"""The evaluator's compiled kernels give the numpy code's output bit for bit.

Every comparison here is on bytes (``tobytes``), not within a tolerance: the kernels
exist to be faster, never to change a per-user value.
"""

import numpy as np
import pytest
import scipy.sparse as sp

import bench.metrics.evaluator as evaluator_module
import bench.metrics.hits as hits_module
from bench.errors import EvaluationError
from bench.metrics import compiled, evaluate_rankings, kernels
from bench.metrics.hits import as_relevance, hit_matrix_rows
from bench.metrics.ranking import (
    RankedHits,
    average_precision_columns,
    ndcg_columns,
    precision_columns,
)

pytestmark = pytest.mark.skipif(kernels.kernels() is None, reason="numba is not available")


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("length", [1, 2, 7, 8, 9, 10, 16, 17, 129, 130, 131, 257, 300, 1000])
def test_segment_sum_adds_in_numpy_reduceat_order(length):
    # terms of very different sizes, so another order of additions changes the last bits
    rng = np.random.default_rng(length)
    terms = rng.random((200, length)) * 10.0 ** rng.integers(-8, 9, (200, length))
    expected = np.add.reduceat(terms, [0], axis=1)[:, 0]
    got = np.array([compiled.segment_sum(row, 0, length) for row in terms])
    assert same_bits(got, expected)
    if length >= 9:  # the order matters on these inputs: a plain loop differs somewhere
        plain = np.array([sum(row[1:], row[0]) for row in terms])
        assert not same_bits(plain, expected)


@pytest.mark.parametrize("density", [0.0, 0.02, 0.2, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("seed", range(4))
def test_cutoff_sums_equal_the_numpy_form(density, seed):
    rng = np.random.default_rng(seed)
    width = int(rng.integers(1, 400))  # up to 400 ranks: segments past numpy's 128 blocks
    hits = rng.random((500, width)) < density
    cutoffs = np.unique(np.append(rng.integers(1, width + 1, 5), width))
    n_rel = rng.integers(1, width + 3, 500).astype(np.float64)
    numpy_form = RankedHits(hits, n_rel, cutoffs)
    kernel_form = RankedHits(hits, n_rel, cutoffs, kernel=True)
    assert same_bits(kernel_form.count, numpy_form.count)
    assert same_bits(kernel_form.binary_dcg, numpy_form.binary_dcg)
    assert same_bits(kernel_form.precision_sums, numpy_form.precision_sums)
    for columns in (precision_columns, ndcg_columns, average_precision_columns):
        assert same_bits(columns(kernel_form), columns(numpy_form))
    if density == 0.5:  # many hits: the term-by-term path ran and gave non-trivial sums
        assert (np.diff(numpy_form.count, prepend=0, axis=1) > 2).any()
        assert numpy_form.binary_dcg.max() > 1


def random_case(rng, n_users, n_items, k):
    recs = np.stack([rng.permutation(n_items)[:k] for _ in range(n_users)])
    lengths = rng.integers(0, k + 1, n_users)
    recs[np.arange(k)[None, :] >= lengths[:, None]] = -1
    dense = rng.random((n_users, n_items)) < 0.3
    gains = rng.integers(1, 6, (n_users, n_items)).astype(float)
    return recs, as_relevance(sp.csr_matrix(np.where(dense, gains, 0.0)))


@pytest.mark.parametrize("with_gains", [True, False])
def test_hit_kernel_equals_the_dense_design_block_by_block(with_gains):
    rng = np.random.default_rng(5)
    recs, rel = random_case(rng, n_users=300, n_items=50, k=20)
    expected_hits, expected_gains, dups = hits_module._hits_dense(recs, rel, with_gains)
    assert dups.size == 0 and expected_hits.sum() > 100
    scratch = {}  # one scratch for every block: stamps go on, the markers are never cleared
    for start, stop in ((0, 7), (7, 8), (8, 150), (150, 300)):
        hits, gains = hit_matrix_rows(recs, rel, start, stop, with_gains=with_gains,
                                      scratch=scratch)
        assert same_bits(hits, expected_hits[start:stop])
        if with_gains:
            assert same_bits(gains, expected_gains[start:stop])
        else:
            assert gains is None


def test_hit_kernel_reports_repeats_and_codes_as_the_numpy_designs():
    rng = np.random.default_rng(6)
    recs, rel = random_case(rng, n_users=40, n_items=30, k=8)
    recs[[12, 30], :3] = [[4, 9, 4], [2, 2, -1]]
    with pytest.raises(EvaluationError) as numpy_error:
        hits_module.hit_matrix_block(recs[10:], rel[10:], with_gains=False, row_offset=10)
    with pytest.raises(EvaluationError) as kernel_error:
        hit_matrix_rows(recs, rel, 10, 40, with_gains=False, scratch={})
    assert str(kernel_error.value) == str(numpy_error.value)
    assert "2 list(s) (first: row 12 repeats item code(s) [4])" in str(kernel_error.value)
    recs[33, 5] = 30  # out of range wins over the repeats, as in the numpy designs
    with pytest.raises(EvaluationError, match=r"got values from -1 to 30"):
        hit_matrix_rows(recs, rel, 10, 40, with_gains=False, scratch={})
    recs[33, 5] = -3
    with pytest.raises(EvaluationError, match=r"got values from -3 to"):
        hit_matrix_rows(recs, rel, 10, 40, with_gains=True, scratch={})


@pytest.mark.parametrize("graded", [False, True])
@pytest.mark.parametrize("denominator", ["relevant", "min_k_relevant"])
def test_evaluator_kernel_path_equals_the_numpy_path(monkeypatch, graded, denominator):
    rng = np.random.default_rng(7)
    recs, rel = random_case(rng, n_users=900, n_items=60, k=40)
    rel = rel.tolil()
    rel[100:140] = 0  # users without a relevant item, some blocks partly excluded
    rel = sp.csr_matrix(rel)
    rel.eliminate_zeros()
    monkeypatch.setattr(evaluator_module, "_BLOCK_ROWS", 128)
    monkeypatch.setattr(evaluator_module, "_KERNEL_BLOCK_ROWS", 256)
    args = (recs, rel, (1, 3, 10, 11, 40))

    def run(engine: str):
        if engine == "numpy":
            monkeypatch.setenv("BENCH_METRICS_ENGINE", "numpy")
        else:
            monkeypatch.delenv("BENCH_METRICS_ENGINE", raising=False)
            monkeypatch.setattr(kernels, "MIN_CELLS", 0)
        return evaluate_rankings(*args, graded=graded, map_denominator=denominator)

    calls = []
    real = kernels.cutoff_sums
    monkeypatch.setattr(kernels, "cutoff_sums", lambda *a: calls.append(1) or real(*a))
    numpy_ev = run("numpy")
    assert calls == []
    kernel_ev = run("kernel")
    assert len(calls) == -(-900 // 256)  # every block went through the kernel
    assert kernel_ev.n_excluded == numpy_ev.n_excluded == 40
    assert same_bits(kernel_ev.users, numpy_ev.users)
    assert list(kernel_ev.per_user) == list(numpy_ev.per_user)
    for key, values in numpy_ev.per_user.items():
        assert same_bits(kernel_ev.per_user[key], values), key
    assert 0 < numpy_ev.mean()["ndcg@40"] < 1


def test_small_evaluations_stay_on_numpy(monkeypatch):
    assert not kernels.use_kernels(kernels.MIN_CELLS - 1)
    assert kernels.use_kernels(kernels.MIN_CELLS)
    monkeypatch.setenv("BENCH_METRICS_ENGINE", "numpy")
    assert kernels.kernels() is None
    assert not kernels.use_kernels(10**9)
