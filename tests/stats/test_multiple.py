"""Holm–Bonferroni: hand cases (ties, NaN, cap), a loop reference, reject; the intervals
at each Holm step's level exclude 0 exactly when Holm rejects (a Hypothesis property)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.errors import ConfigError
from bench.stats import holm, holm_levels, holm_t_intervals, paired_comparison, reject


def test_hand_computed_family_of_four():
    # sorted: 0.005 (#3), 0.01 (#0), 0.03 (#2), 0.04 (#1); m = 4
    # scaled by m - j + 1 = 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04
    # running maximum: 0.02, 0.03, 0.06, 0.06 -> back in input order:
    adjusted = holm(np.array([0.01, 0.04, 0.03, 0.005]))
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    assert reject(adjusted).tolist() == [True, False, False, True]
    # Holm's rule directly: 0.005 <= 0.05/4 and 0.01 <= 0.05/3 reject; 0.03 > 0.05/2 stops.


def test_ties_get_equal_adjusted_values():
    # sorted 0.02, 0.02, 0.5 scaled by 3, 2, 1: 0.06, 0.04, 0.5 -> max: 0.06, 0.06, 0.5
    adjusted = holm(np.array([0.5, 0.02, 0.02]))
    np.testing.assert_allclose(adjusted, [0.5, 0.06, 0.06], rtol=1e-12)


def test_capped_at_one():
    # 0.6 * 2 = 1.2 -> 1; 0.7 * 1 = 0.7 -> running max 1.2 -> 1
    assert holm(np.array([0.7, 0.6])).tolist() == [1.0, 1.0]


def test_nan_stays_nan_and_is_not_counted_shape_kept():
    # family {0.01, 0.04, 0.03}, m = 3: sorted 0.01, 0.03, 0.04 scaled 0.03, 0.06, 0.04
    # running max 0.03, 0.06, 0.06
    p = np.array([[0.01, np.nan], [0.04, 0.03]])
    adjusted = holm(p)
    assert adjusted.shape == (2, 2)
    assert np.isnan(adjusted[0, 1])
    np.testing.assert_allclose(adjusted[[0, 1, 1], [0, 0, 1]], [0.03, 0.06, 0.06], rtol=1e-12)
    assert reject(adjusted).tolist() == [[True, False], [False, False]]


def test_degenerate_families():
    assert holm(np.array([0.02])).tolist() == [0.02]
    assert holm(np.array([])).shape == (0,)
    assert np.isnan(holm(np.array([np.nan, np.nan]))).all()
    assert holm(0.3).shape == ()


def reference_holm(p):
    """Textbook loop: adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)), j = 1..m."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    m = len(p)
    out = [0.0] * m
    running = 0.0
    for j, i in enumerate(order, start=1):
        running = max(running, min(1.0, (m - j + 1) * p[i]))
        out[i] = running
    return out


def test_matches_a_loop_reference_and_bounds():
    rng = np.random.default_rng(3)
    p = np.round(rng.random(60) ** 3, 3)  # many small values and ties
    adjusted = holm(p)
    np.testing.assert_allclose(adjusted, reference_holm(p.tolist()), rtol=1e-12)
    assert (adjusted >= p).all()
    assert (adjusted <= np.minimum(1.0, 60 * p)).all()  # never worse than Bonferroni
    order = np.argsort(p, kind="stable")
    assert (np.diff(adjusted[order]) >= 0).all()  # monotone in the raw p-values


def test_reject_is_inclusive_and_nan_never_rejects():
    assert reject(np.array([0.05, 0.0500001, np.nan, 0.0])).tolist() == [True, False, False, True]
    assert reject(np.array([0.009, 0.011]), alpha=0.01).tolist() == [True, False]


def test_invalid_input():
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        holm(np.array([0.2, 1.5]))
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        holm(np.array([-0.1]))
    with pytest.raises(ConfigError, match=r"^alpha: expected a number strictly between"):
        reject(np.array([0.1]), alpha=0.0)


# ---------------------------------------------------------------- intervals that agree with Holm
def test_holm_levels_hand_computed():
    # sorted 0.005 (#3), 0.01 (#0) rejected at steps 1, 2 (alpha/4, alpha/3); then r = 2, so
    # the two others get 1 - alpha/(m - r) = 1 - 0.05/2
    levels = holm_levels(np.array([0.01, 0.04, 0.03, 0.005]), 0.05)
    np.testing.assert_allclose(levels, [1 - 0.05 / 3, 1 - 0.05 / 2, 1 - 0.05 / 2, 1 - 0.05 / 4],
                               rtol=1e-15)
    # nothing rejected: everyone at 1 - alpha/m (Bonferroni); NaN is not counted in m
    levels = holm_levels(np.array([0.5, np.nan, 0.2]), 0.05)
    assert np.isnan(levels[1])
    np.testing.assert_allclose(levels[[0, 2]], [1 - 0.05 / 2] * 2, rtol=1e-15)
    # everything rejected: the last one is tested at alpha itself
    np.testing.assert_allclose(holm_levels(np.array([0.001, 0.002]), 0.05),
                               [1 - 0.05 / 2, 1 - 0.05], rtol=1e-15)


def _t_rows(diffs):
    """(diff, sd, n, p) of paired t-tests on each row of ``diffs`` (users along axis 1)."""
    from scipy import stats as sps

    n = diffs.shape[1]
    mean = diffs.mean(axis=1)
    sd = diffs.std(axis=1, ddof=1)
    p = sps.ttest_1samp(diffs, 0.0, axis=1).pvalue
    return mean, sd, np.full(len(mean), n), p


def test_holm_t_interval_is_the_t_interval_at_its_level():
    rng = np.random.default_rng(0)
    diffs = rng.normal([[0.0], [0.3], [0.05]], 1.0, size=(3, 80))
    diff, sd, n, p = _t_rows(diffs)
    got = holm_t_intervals(diff, sd, n, p, 0.05)
    from scipy import stats as sps

    for j in range(3):
        low, high = sps.t.interval(got.level[j], n[j] - 1, loc=diff[j], scale=sd[j] / np.sqrt(80))
        assert got.low[j] == pytest.approx(low, rel=1e-10)
        assert got.high[j] == pytest.approx(high, rel=1e-10)
    assert got.rejected.tolist() == reject(holm(p), 0.05).tolist()


@settings(max_examples=200, deadline=None)
@given(
    effects=st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=12),
    n=st.integers(2, 60),
    alpha=st.sampled_from([0.01, 0.05, 0.1, 0.2]),
    seed=st.integers(0, 2**32 - 1),
    constant=st.booleans(),
)
def test_holm_interval_excludes_zero_exactly_when_holm_rejects(effects, n, alpha, seed,
                                                              constant):
    rng = np.random.default_rng(seed)
    diffs = np.asarray(effects)[:, None] + rng.normal(0, 1, size=(len(effects), n))
    if constant:  # sd = 0 rows: a constant difference (p = 0) or all zeros (p = 1)
        diffs[0] = effects[0]
    diff, sd, count, p = _paired_t(diffs)
    got = holm_t_intervals(diff, sd, count, p, alpha)
    excludes = (got.low > 0) | (got.high < 0)
    assert excludes.tolist() == got.rejected.tolist()
    assert got.rejected.tolist() == reject(holm(p), alpha).tolist()
    assert (got.low <= diff).all() and (diff <= got.high).all()


def _paired_t(diffs):
    """The paired t-test of each row as bench.stats.paired_comparison computes it (its own
    t-test code, which the paired tests check against scipy), without the bootstrap and
    Wilcoxon it does not need here."""
    res = paired_comparison(np.zeros((diffs.shape[1], 1)), diffs[:1].T, n_resamples=1)
    assert res.n[0] == diffs.shape[1]
    from scipy import special

    n = diffs.shape[1]
    diff = diffs.mean(axis=1)
    sd = diffs.std(axis=1, ddof=1)
    constant = diffs.max(axis=1) == diffs.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * special.stdtr(n - 1, -np.abs(diff / (sd / np.sqrt(n))))
    p = np.where(constant, np.where(diff == 0, 1.0, 0.0), p)
    sd = np.where(constant, 0.0, sd)
    # the first row through paired_comparison itself: the same numbers
    assert res.p_t[0] == pytest.approx(p[0], rel=1e-9, abs=1e-300)
    assert res.sd[0] == pytest.approx(sd[0], rel=1e-9, abs=1e-300)
    return diff, sd, np.full(len(diff), n), p


@pytest.mark.parametrize("m", [1, 3, 7])
def test_boundary_p_exactly_at_the_holm_level_still_agrees(m):
    # p equal to alpha / m: Holm rejects (<=) while the closed interval would touch 0
    from scipy import special

    alpha, n, sd = 0.05, 30, 1.0
    t = -special.stdtrit(n - 1, alpha / m / 2)
    diff = t * sd / np.sqrt(n)
    p = np.full(m, alpha / m)
    got = holm_t_intervals(np.full(m, diff), np.full(m, sd), np.full(m, n), p, alpha)
    assert got.rejected.all()
    assert (got.low > 0).all()
    p_above = np.full(m, np.nextafter(alpha / m, 1.0))
    got = holm_t_intervals(np.full(m, diff), np.full(m, sd), np.full(m, n), p_above, alpha)
    assert not got.rejected.any()
    assert ((got.low <= 0) & (got.high >= 0)).all()


def test_untested_rows_get_no_interval():
    got = holm_t_intervals([0.1, 0.2], [np.nan, 0.5], [1, 40], [np.nan, 0.01], 0.05)
    assert np.isnan([got.low[0], got.high[0], got.level[0]]).all()
    assert got.rejected.tolist() == [False, True] and got.level[1] == pytest.approx(0.95)
