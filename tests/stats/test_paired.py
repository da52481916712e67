"""paired_comparison: agreement with scipy, a hand case, planted lift, edge cases."""

import math

import numpy as np
import pytest
from scipy import stats

from bench.errors import ConfigError
from bench.stats import WILCOXON_ZERO_METHOD, PairedComparison, paired_comparison


def test_tests_equal_scipy_on_the_kept_rows_of_every_column():
    rng = np.random.default_rng(7)
    n = 400
    a = rng.random((n, 4))
    b = a + 0.03 + rng.normal(0.0, 0.2, size=(n, 4))
    b[:, 1] = np.round(b[:, 1], 1)  # ties and exact zero differences after rounding a too
    a[:, 1] = np.round(a[:, 1], 1)
    a[rng.random((n, 4)) < 0.15] = np.nan
    b[rng.random((n, 4)) < 0.15] = np.nan
    a[40:, 3] = np.nan  # column 3 keeps at most 40 rows: scipy's exact Wilcoxon branch
    result = paired_comparison(a, b, seed=1)
    for col in range(4):
        kept = ~np.isnan(a[:, col]) & ~np.isnan(b[:, col])
        t = stats.ttest_rel(b[kept, col], a[kept, col])
        w = stats.wilcoxon(b[kept, col], a[kept, col], zero_method="wilcox")
        assert result.n[col] == kept.sum()
        assert math.isclose(result.t_stat[col], t.statistic, rel_tol=1e-12)
        assert math.isclose(result.p_t[col], t.pvalue, rel_tol=1e-12)
        assert math.isclose(result.w_stat[col], w.statistic, rel_tol=1e-12)
        assert math.isclose(result.p_wilcoxon[col], w.pvalue, rel_tol=1e-12)
        assert math.isclose(result.mean_a[col], a[kept, col].mean(), rel_tol=1e-12)
        assert math.isclose(result.mean_b[col], b[kept, col].mean(), rel_tol=1e-12)
        d = b[kept, col] - a[kept, col]
        assert math.isclose(result.diff[col], d.mean(), rel_tol=1e-12)
        assert math.isclose(result.effect_size[col], d.mean() / d.std(ddof=1), rel_tol=1e-12)
    assert WILCOXON_ZERO_METHOD == "wilcox"
    assert result.n[3] <= 40


def test_hand_computed_case():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([2.0, 2.0, 5.0, 4.5])
    # d = [1, 0, 2, 0.5]; mean 0.875; squared deviations 0.015625 + 0.765625 + 1.265625
    # + 0.140625 = 2.1875; sd = sqrt(2.1875 / 3); t = 0.875 / (sd / 2); d_z = 0.875 / sd.
    # Wilcoxon ("wilcox"): drop the 0; |d| = 1, 2, 0.5 rank 2, 3, 1, all positive: R+ = 6,
    # R- = 0, W = 0; two-sided p = 2 * P(R+ >= 6) = 2 * 1/8 = 0.25.
    r = paired_comparison(a, b)
    sd = math.sqrt(2.1875 / 3)
    assert isinstance(r, PairedComparison)
    assert (r.n, r.mean_a, r.mean_b, r.diff) == (4, 2.5, 3.375, 0.875)
    assert math.isclose(r.t_stat, 0.875 / (sd / 2), rel_tol=1e-12)
    assert math.isclose(r.p_t, 2 * stats.t.sf(0.875 / (sd / 2), df=3), rel_tol=1e-12)
    assert math.isclose(r.effect_size, 0.875 / sd, rel_tol=1e-12)
    assert math.isclose(r.rel_diff, 0.875 / 2.5, rel_tol=1e-12)
    assert r.w_stat == 0.0
    assert math.isclose(r.p_wilcoxon, 0.25, rel_tol=1e-12)
    assert 0.0 <= r.low <= 0.875 <= r.high <= 2.0


def test_planted_lift_is_found_with_the_right_sign():
    rng = np.random.default_rng(21)
    a = rng.beta(2.0, 5.0, size=500)
    b = a + 0.05 + rng.normal(0.0, 0.1, size=500)
    r = paired_comparison(a, b, seed=3)
    print(
        f"planted lift 0.05: diff {r.diff:.4f}, CI [{r.low:.4f}, {r.high:.4f}], "
        f"p_t {r.p_t:.2e}, p_w {r.p_wilcoxon:.2e}, d_z {r.effect_size:.3f}"
    )
    assert abs(r.diff - 0.05) < 0.01
    assert 0.0 < r.low < 0.05 < r.high
    assert r.p_t < 1e-3 and r.p_wilcoxon < 1e-3
    assert r.t_stat > 0 and r.effect_size > 0 and r.rel_diff > 0
    swapped = paired_comparison(b, a, seed=3)  # baseline and candidate exchanged
    assert swapped.diff == -r.diff and swapped.t_stat == -r.t_stat
    assert swapped.high < 0


def test_no_lift_interval_contains_zero():
    rng = np.random.default_rng(22)
    a = rng.beta(2.0, 5.0, size=500)
    b = a + rng.normal(0.0, 0.1, size=500)
    r = paired_comparison(a, b, seed=3)
    assert r.low < 0.0 < r.high
    assert r.p_t > 0.05


@pytest.mark.filterwarnings("error")
def test_all_differences_zero():
    a = np.array([0.2, 0.0, 0.5, 0.5])
    r = paired_comparison(a, a.copy())
    assert (r.diff, r.low, r.high, r.t_stat, r.w_stat) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert (r.p_t, r.p_wilcoxon, r.effect_size) == (1.0, 1.0, 0.0)


@pytest.mark.filterwarnings("error")
def test_constant_nonzero_difference():
    const_a = np.zeros(7)
    const_b = np.full(7, 0.25)
    r = paired_comparison(const_a, const_b)
    assert (r.diff, r.low, r.high) == (0.25, 0.25, 0.25)
    assert r.t_stat == math.inf and r.effect_size == math.inf and r.p_t == 0.0
    # Wilcoxon: 7 tied positive ranks (4 each): R+ = 28, W = 0; scipy's permutation test.
    assert r.w_stat == 0.0
    assert math.isclose(r.p_wilcoxon, 2 / 2**7, rel_tol=1e-12)
    down = paired_comparison(const_b, const_a)
    assert down.t_stat == -math.inf and down.effect_size == -math.inf and down.p_t == 0.0


@pytest.mark.filterwarnings("error")
def test_fewer_than_two_rows():
    one = paired_comparison(np.array([0.2, np.nan]), np.array([0.5, 0.1]))
    assert one.n == 1 and math.isclose(one.diff, 0.3, rel_tol=1e-12)
    assert (one.low, one.high) == (one.diff, one.diff)
    for value in (one.t_stat, one.p_t, one.w_stat, one.p_wilcoxon, one.effect_size):
        assert math.isnan(value)
    zero_rows = paired_comparison(np.array([np.nan]), np.array([1.0]))
    assert zero_rows.n == 0
    for value in (zero_rows.mean_a, zero_rows.diff, zero_rows.low, zero_rows.p_t):
        assert math.isnan(value)


def test_rows_with_a_nan_on_either_side_are_dropped_per_column():
    a = np.array([[1.0, 1.0], [np.nan, 2.0], [3.0, 3.0], [0.0, np.nan]])
    b = np.array([[2.0, np.nan], [9.0, 4.0], [4.0, 6.0], [0.0, 1.0]])
    r = paired_comparison(a, b)
    assert r.n.tolist() == [3, 2]
    assert r.mean_a.tolist() == [4.0 / 3.0, 2.5]
    assert r.mean_b.tolist() == [2.0, 5.0]
    assert np.allclose(r.diff, [2.0 / 3.0, 2.5])


def test_relative_difference_is_nan_when_the_baseline_mean_is_zero():
    r = paired_comparison(np.zeros(3), np.array([0.0, 0.5, 1.0]))
    assert math.isnan(r.rel_diff) and r.diff == 0.5


def test_same_seed_same_output_other_seed_other_interval():
    rng = np.random.default_rng(0)
    a, b = rng.random((200, 3)), rng.random((200, 3))
    first, again = paired_comparison(a, b, seed=4), paired_comparison(a, b, seed=4)
    other = paired_comparison(a, b, seed=5)
    for field in ("low", "high", "p_t", "p_wilcoxon", "diff"):
        np.testing.assert_array_equal(getattr(first, field), getattr(again, field))
    assert not np.array_equal(first.low, other.low)
    np.testing.assert_array_equal(first.p_t, other.p_t)


def test_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        paired_comparison(np.zeros(3), np.zeros(4))
    with pytest.raises(ConfigError, match=r"^n_resamples: expected a positive integer, got -5"):
        paired_comparison(np.zeros(3), np.zeros(3), n_resamples=-5)


def test_importing_the_report_layer_does_not_import_scipy_stats():
    """scipy.stats costs 1.6-1.8 s to import: only a Wilcoxon test loads it."""
    import subprocess
    import sys

    code = ("import sys, bench.runner, bench.reporting.analysis, bench.stats.paired; "
            "sys.exit('scipy.stats' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
