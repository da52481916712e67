"""bootstrap_means: hand cases, a naive reference, NaN policy, coverage, determinism."""

import re

import numpy as np
import pytest

import bench.stats.bootstrap as bootstrap_module
from bench.errors import ConfigError
from bench.stats import BootstrapCI, bootstrap_means


def naive_interval(values, n_resamples, confidence, seed):
    """Reference: draw all (B, n) indices at once, nanmean each resample, take quantiles."""
    n = values.shape[0]
    picks = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    means = np.nanmean(values[picks], axis=1)  # (B, m)
    alpha = (1 - confidence) / 2
    return np.nanquantile(means, [alpha, 1 - alpha], axis=0, method="linear")


def test_matches_a_naive_resampling_with_the_same_indices():
    rng = np.random.default_rng(5)
    values = rng.exponential(1.0, size=(40, 3))
    values[rng.random(values.shape) < 0.2] = np.nan
    ci = bootstrap_means(values, n_resamples=300, confidence=0.9, seed=11)
    low, high = naive_interval(values, 300, 0.9, 11)
    np.testing.assert_allclose(ci.low, low, rtol=1e-12)
    np.testing.assert_allclose(ci.high, high, rtol=1e-12)
    np.testing.assert_allclose(ci.mean, np.nanmean(values, axis=0), rtol=1e-14)
    assert ci.n.tolist() == (~np.isnan(values)).sum(axis=0).tolist()
    assert (ci.n_resamples, ci.confidence, ci.seed) == (300, 0.9, 11)


def test_chunking_does_not_change_the_result(monkeypatch):
    values = np.random.default_rng(2).random((9, 2))
    whole = bootstrap_means(values, n_resamples=50, seed=3)
    monkeypatch.setattr(bootstrap_module, "_CHUNK_CELLS", 9 * 4)  # 13 chunks of <= 4 resamples
    chunked = bootstrap_means(values, n_resamples=50, seed=3)
    np.testing.assert_array_equal(chunked.low, whole.low)
    np.testing.assert_array_equal(chunked.high, whole.high)


def test_a_column_does_not_depend_on_its_neighbours():
    rng = np.random.default_rng(4)
    values = rng.random((30, 3))
    alone = bootstrap_means(values[:, 1], seed=8)
    together = bootstrap_means(values, seed=8)
    assert alone.low == together.low[1]
    assert alone.high == together.high[1]


def test_two_point_sample_hand_case():
    # n = 2, values {0, 1}: a resampled mean is 0, 0.5 or 1 with probability 1/4, 1/2, 1/4.
    # 95%: the 2.5% and 97.5% quantiles are 0 and 1. 40%: the 30% and 70% quantiles both
    # fall in the 0.5 mass (which spans cumulative probability 0.25..0.75).
    wide = bootstrap_means(np.array([0.0, 1.0]), confidence=0.95)
    assert (wide.mean, wide.low, wide.high, wide.n) == (0.5, 0.0, 1.0, 2)
    narrow = bootstrap_means(np.array([0.0, 1.0]), confidence=0.4)
    assert (narrow.low, narrow.high) == (0.5, 0.5)


def test_nan_cells_are_ignored_per_column():
    values = np.array([[1.0, np.nan], [2.0, 4.0], [np.nan, np.nan], [6.0, 4.0]])
    ci = bootstrap_means(values)
    assert ci.mean.tolist() == [3.0, 4.0]  # (1 + 2 + 6) / 3 and (4 + 4) / 2
    assert ci.n.tolist() == [3, 2]
    assert (ci.low[1], ci.high[1]) == (4.0, 4.0)  # a constant column: exactly (v, v)
    assert 1.0 <= ci.low[0] < 3.0 < ci.high[0] <= 6.0


def test_edge_cases_single_value_all_nan_empty():
    one = bootstrap_means(np.array([0.7]))
    assert (one.mean, one.low, one.high, one.n) == (0.7, 0.7, 0.7, 1)
    lonely = bootstrap_means(np.array([np.nan, 0.3, np.nan, np.nan]))
    assert (lonely.mean, lonely.low, lonely.high, lonely.n) == (0.3, 0.3, 0.3, 1)
    constant = bootstrap_means(np.full(7, 0.1))  # 7 * 0.1 / 7 rounds below 0.1 unclipped
    assert (constant.mean, constant.low, constant.high) == (0.1, 0.1, 0.1)
    none = bootstrap_means(np.array([[np.nan, 1.0], [np.nan, 3.0]]))
    assert np.isnan([none.mean[0], none.low[0], none.high[0]]).all()
    assert none.n.tolist() == [0, 2]
    assert none.mean[1] == 2.0
    empty = bootstrap_means(np.array([]))
    assert np.isnan([empty.mean, empty.low, empty.high]).all() and empty.n == 0


def test_one_d_input_gives_python_scalars_two_d_gives_arrays():
    one = bootstrap_means(np.arange(5.0))
    assert isinstance(one, BootstrapCI)
    assert all(isinstance(x, float) for x in (one.mean, one.low, one.high))
    assert isinstance(one.n, int)
    two = bootstrap_means(np.arange(10.0).reshape(5, 2))
    assert two.low.shape == two.high.shape == two.mean.shape == two.n.shape == (2,)


def test_same_seed_same_output_other_seed_other_interval():
    values = np.random.default_rng(0).exponential(size=(100, 4))
    first = bootstrap_means(values, seed=1)
    again = bootstrap_means(values, seed=1)
    other = bootstrap_means(values, seed=2)
    np.testing.assert_array_equal(first.low, again.low)
    np.testing.assert_array_equal(first.high, again.high)
    assert not np.array_equal(first.low, other.low)
    np.testing.assert_array_equal(first.mean, other.mean)  # the sample mean is not resampled


@pytest.mark.parametrize(
    ("kind", "true_mean"), [("exponential", 0.2), ("bernoulli", 0.3), ("bernoulli_nan", 0.3)]
)
def test_coverage_of_the_95_percent_interval(kind, true_mean):
    # 1000 independent trials of n = 200 users as the 1000 columns of one call.
    rng = np.random.default_rng({"exponential": 10, "bernoulli": 11, "bernoulli_nan": 12}[kind])
    if kind == "exponential":
        values = rng.exponential(true_mean, size=(200, 1000))
    else:
        values = (rng.random((200, 1000)) < true_mean).astype(float)
        if kind == "bernoulli_nan":  # a fifth of users have no value, missing at random
            values[rng.random(values.shape) < 0.2] = np.nan
    ci = bootstrap_means(values, n_resamples=1000, confidence=0.95, seed=0)
    rate = float(np.mean((ci.low <= true_mean) & (true_mean <= ci.high)))
    print(f"{kind}: 95% bootstrap CI covered the true mean in {rate:.3f} of 1000 trials")
    assert 0.93 <= rate <= 0.97


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_resamples": 0}, "n_resamples: expected a positive integer, got 0"),
        ({"n_resamples": 10.0}, "n_resamples: expected a positive integer, got 10.0"),
        ({"n_resamples": True}, "n_resamples"),
        ({"confidence": 1.0}, "confidence: expected a number strictly between 0 and 1"),
        ({"confidence": 0}, "confidence"),
        ({"confidence": "0.9"}, "confidence"),
        ({"seed": -1}, "seed: expected a non-negative integer, got -1"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_invalid_settings_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        bootstrap_means(np.arange(3.0), **kwargs)


def test_numpy_integers_are_accepted():
    ci = bootstrap_means(np.arange(4.0), n_resamples=np.int64(20), seed=np.int32(1))
    assert ci.n_resamples == 20 and ci.seed == 1


def test_bad_arrays_raise_value_error():
    with pytest.raises(ValueError, match="1-D or 2-D"):
        bootstrap_means(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="infinite"):
        bootstrap_means(np.array([1.0, np.inf]))


def test_kept_resamples_give_the_numbers_of_a_fresh_draw(monkeypatch):
    """The count matrix is drawn once per (n, n_resamples, seed) and reused bit for bit."""
    values = np.random.default_rng(5).random((40, 3))
    values[3, 1] = np.nan
    monkeypatch.setattr(bootstrap_module, "_kept_counts", type(bootstrap_module._kept_counts)())
    first = bootstrap_means(values, n_resamples=200, seed=6)
    assert len(bootstrap_module._kept_counts) == 1
    again = bootstrap_means(values[::-1].copy(), n_resamples=200, seed=6)  # reuses the draw
    monkeypatch.setattr(bootstrap_module, "_KEEP_CELLS", 0)  # nothing kept: drawn afresh
    monkeypatch.setattr(bootstrap_module, "_kept_counts", type(bootstrap_module._kept_counts)())
    fresh = bootstrap_means(values, n_resamples=200, seed=6)
    fresh_again = bootstrap_means(values[::-1].copy(), n_resamples=200, seed=6)
    assert not bootstrap_module._kept_counts
    for a, b in ((first, fresh), (again, fresh_again)):
        np.testing.assert_array_equal(a.low, b.low)
        np.testing.assert_array_equal(a.high, b.high)


def test_kept_counts_are_one_byte_per_cell_and_reused_bit_for_bit(monkeypatch):
    """Kept in several chunks as uint8, turned back into the float64 numbers drawn; a
    matrix with a count above the uint8 range is not kept (drawn afresh each call)."""
    values = np.random.default_rng(8).random((50, 2))
    values[7, 0] = np.nan
    monkeypatch.setattr(bootstrap_module, "_CHUNK_CELLS", 50 * 16)  # 16 resamples a chunk
    monkeypatch.setattr(bootstrap_module, "_kept_counts", type(bootstrap_module._kept_counts)())
    first = bootstrap_means(values, n_resamples=100, seed=3)
    (kept,) = bootstrap_module._kept_counts.values()
    assert [c.shape for c in kept] == [(16, 50)] * 6 + [(4, 50)]
    assert all(c.dtype == np.uint8 and not c.flags.writeable for c in kept)
    assert all((c.sum(axis=1) == 50).all() for c in kept)  # each resample draws n users
    again = bootstrap_means(values, n_resamples=100, seed=3)
    monkeypatch.setattr(bootstrap_module, "_KEEP_MAX_COUNT", 1)  # every draw repeats a user
    monkeypatch.setattr(bootstrap_module, "_kept_counts", type(bootstrap_module._kept_counts)())
    fresh = bootstrap_means(values, n_resamples=100, seed=3)
    assert not bootstrap_module._kept_counts
    for ci in (again, fresh):
        np.testing.assert_array_equal(ci.low, first.low)
        np.testing.assert_array_equal(ci.high, first.high)
    assert not np.array_equal(first.low, first.high)


def test_a_report_at_ml25m_scale_keeps_all_its_count_matrices(monkeypatch):
    """A report draws one matrix for all evaluated users and one per history segment
    (their sizes sum to the users'): at ml-25m scale (84,430 evaluated users, 1,000
    resamples) both must fit in what is kept, or the matrices evict each other and each
    is drawn again at every use. Checked with the same arithmetic on small numbers: the
    limit scaled down by 1,000 users x 1,000 resamples."""
    assert 2 * 84_430 * 1000 <= bootstrap_module._KEEP_CELLS
    drawn = []
    real = bootstrap_module._draw_counts

    def spy(n, n_resamples, seed, compact=False):
        drawn.append(n)
        return real(n, n_resamples, seed, compact)

    monkeypatch.setattr(bootstrap_module, "_draw_counts", spy)
    monkeypatch.setattr(bootstrap_module, "_kept_counts", type(bootstrap_module._kept_counts)())
    monkeypatch.setattr(bootstrap_module, "_KEEP_CELLS", bootstrap_module._KEEP_CELLS // 1000)
    users = 84  # 84,430 / 1,000: the segments below sum to it
    segments = [2, 13, 25, 44]
    values = np.random.default_rng(2).random((users, 2))
    for _ in range(3):  # headline, baseline comparison, ladder: all users, then segments
        bootstrap_means(values, n_resamples=1000, seed=0)
        for size in segments:
            bootstrap_means(values[:size], n_resamples=1000, seed=0)
    assert sorted(drawn) == sorted([users, *segments])


def test_the_compiled_row_count_equals_a_row_wise_bincount():
    from bench.stats.compiled import count_rows

    rng = np.random.default_rng(11)
    picks = rng.integers(0, 37, size=(9, 37), dtype=np.int64)
    out = np.full((9, 37), 5.0)  # stale numbers: the kernel starts from zero
    top = count_rows(picks, out)
    want = np.stack([np.bincount(row, minlength=37) for row in picks]).astype(np.float64)
    np.testing.assert_array_equal(out, want)
    assert out.sum() == picks.size
    assert top == want.max()
    compact = np.full((9, 37), 7, dtype=np.uint8)
    assert count_rows(picks, compact) == top
    np.testing.assert_array_equal(compact, want)


def test_a_count_above_one_byte_is_reported_not_wrapped_silently():
    """A uint8 count matrix cannot hold 256: the kernel's largest count says so, and such
    a matrix is not kept (it is drawn as float64 at every use)."""
    from bench.stats.compiled import count_rows

    picks = np.zeros((1, 300), dtype=np.int64)  # user 0 drawn 300 times
    out = np.empty((1, 300), dtype=np.uint8)
    assert count_rows(picks, out) > 255


@pytest.mark.parametrize("n", [1, 7, 300])
def test_counts_drawn_with_and_without_the_kernel_are_identical(monkeypatch, n):
    """The kernel only counts faster: the matrix K, and every interval, are the same."""
    values = np.random.default_rng(4).random((n, 3))
    monkeypatch.setattr(bootstrap_module, "_kept_counts", type(bootstrap_module._kept_counts)())
    monkeypatch.setattr(bootstrap_module, "KERNEL_MIN_CELLS", 1)
    with_kernel = [c.copy() for c in bootstrap_module._draw_counts(n, 250, 9)]
    ci_kernel = bootstrap_means(values, n_resamples=250, seed=9)
    monkeypatch.setattr(bootstrap_module, "_kept_counts", type(bootstrap_module._kept_counts)())
    monkeypatch.setattr(bootstrap_module, "KERNEL_MIN_CELLS", 10**18)
    without = [c.copy() for c in bootstrap_module._draw_counts(n, 250, 9)]
    ci_plain = bootstrap_means(values, n_resamples=250, seed=9)
    assert len(with_kernel) == len(without) > 0
    for a, b in zip(with_kernel, without, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ci_kernel.low, ci_plain.low)
    np.testing.assert_array_equal(ci_kernel.high, ci_plain.high)


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
@pytest.mark.parametrize("m", [1, 3])
def test_the_compiled_sums_add_in_user_order(dtype, m):
    """Every sum equals a plain left-to-right loop over the users, bit for bit, for kept
    (uint8) and freshly drawn (float64) counts, across the kernel's blocks of resamples
    (70 rows: 8 blocks of 8 plus 6, or one block of 64 plus 6)."""
    from bench.stats.compiled import resample_sums

    rng = np.random.default_rng(12)
    counts = rng.integers(0, 4, size=(70, 301)).astype(dtype)
    values = rng.random((301, m)) * 10.0 ** rng.integers(-8, 8, size=(301, m))
    out = np.full((70, m), np.nan)
    resample_sums(counts, values, out)
    want = np.zeros((70, m))
    for b in range(70):
        for j in range(m):
            total = 0.0
            for u in range(301):
                total += float(counts[b, u]) * float(values[u, j])
            want[b, j] = total
    np.testing.assert_array_equal(out, want)


def test_a_column_does_not_depend_on_its_neighbours_at_report_size():
    """At a report's size (thousands of users), where a BLAS product sums one column in
    another order than several, a column's interval is still the same bit for bit alone,
    beside others, and beside a column with NaN (which adds a denominator)."""
    rng = np.random.default_rng(6)
    values = rng.random((5000, 4))
    values[rng.random(5000) < 0.1, 3] = np.nan
    alone = bootstrap_means(values[:, 0], n_resamples=200, seed=1)
    pair = bootstrap_means(values[:, :2], n_resamples=200, seed=1)
    everything = bootstrap_means(values, n_resamples=200, seed=1)
    assert alone.low == pair.low[0] == everything.low[0]
    assert alone.high == pair.high[0] == everything.high[0]
    np.testing.assert_array_equal(pair.low, everything.low[:2])
    np.testing.assert_array_equal(pair.high, everything.high[:2])


def test_two_threads_give_the_sums_of_one(monkeypatch):
    """A kept K's chunks shared between two threads: the same intervals bit for bit."""
    import bench.machine as machine

    values = np.random.default_rng(9).random((3000, 3))
    values[::7, 2] = np.nan
    monkeypatch.setattr(bootstrap_module, "_kept_counts", type(bootstrap_module._kept_counts)())
    monkeypatch.setattr(bootstrap_module, "_CHUNK_CELLS", 3000 * 16)  # 13 chunks
    monkeypatch.setattr(machine, "spare_core", lambda: False)
    one = bootstrap_means(values, n_resamples=200, seed=4)
    ran_on = set()
    real = machine.map_on_cores

    def spy(function, items):
        ran_on.add(len(items))
        return real(function, items)

    monkeypatch.setattr(bootstrap_module, "map_on_cores", spy)
    monkeypatch.setattr(bootstrap_module, "PARALLEL_MIN_PRODUCTS", 1)
    monkeypatch.setattr(machine, "spare_core", lambda: True)
    two = bootstrap_means(values, n_resamples=200, seed=4)
    assert ran_on == {2}
    np.testing.assert_array_equal(one.low, two.low)
    np.testing.assert_array_equal(one.high, two.high)


def test_warming_the_kernels_loads_every_signature_the_bootstrap_uses():
    """After warm_kernels, an interval on kept (uint8) and drawn (float64) counts, one
    column and several, dispatches to an already loaded kernel: nothing is compiled."""
    from bench.stats import compiled

    bootstrap_module.warm_kernels()
    kernels = (compiled.count_rows, compiled._sums_one_column, compiled._sums_many_columns)
    before = [len(k.signatures) for k in kernels]
    assert all(before)
    values = np.random.default_rng(1).random((5000, 2))
    values[::9, 1] = np.nan
    for keep in (True, False):
        if not keep:
            bootstrap_module._kept_counts.clear()
        limit = bootstrap_module._KEEP_CELLS if keep else 0
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(bootstrap_module, "_KEEP_CELLS", limit)
            bootstrap_means(values, n_resamples=1000, seed=3)
            bootstrap_means(values[:, 0], n_resamples=1000, seed=3)
    assert [len(k.signatures) for k in kernels] == before
