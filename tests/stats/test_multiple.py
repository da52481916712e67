"""Holm–Bonferroni: hand cases (ties, NaN, cap), a loop reference, reject."""

import numpy as np
import pytest

from bench.errors import ConfigError
from bench.stats import holm, reject


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
