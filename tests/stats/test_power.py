"""Power of the paired t-test and the minimum detectable effect (MDE).

Hand and reference checks, then a simulation: at a planted effect equal to the MDE the
report states (from a pilot sample's observed sd, at Holm's first-step level alpha/m), the
Holm-corrected paired t-test detects it in about 80% of simulated datasets.
"""

import numpy as np
import pytest
from scipy import special
from scipy import stats as sps

from bench.errors import ConfigError
from bench.stats import holm, min_detectable_effect, reject, t_test_power


def test_power_at_the_mde_is_the_requested_power():
    for sd, n, alpha in ((1.0, 30, 0.05), (0.3, 300, 0.01), (0.2, 4, 0.002), (2.0, 1000, 1e-4)):
        mde = min_detectable_effect(sd, n, alpha)
        assert t_test_power(mde, sd, n, alpha) == pytest.approx(0.8, abs=1e-8)
        assert t_test_power(mde, sd, n, alpha, ) == pytest.approx(
            t_test_power(-mde, sd, n, alpha), abs=1e-12)  # two-sided: symmetric
        # the textbook approximation (c + t_{power}) sd / sqrt(n) is close for large n
        approx = (sps.t.ppf(1 - alpha / 2, n - 1) + sps.t.ppf(0.8, n - 1)) * sd / np.sqrt(n)
        assert mde == pytest.approx(approx, rel=0.02 if n >= 30 else 0.2)


def test_power_matches_the_noncentral_t_by_hand():
    # n = 25, sd = 1, effect 0.5: lambda = 2.5, c = t_{24, 0.975}
    c = special.stdtrit(24, 0.975)
    by_hand = sps.nct.sf(c, 24, 2.5) + sps.nct.cdf(-c, 24, 2.5)
    assert t_test_power(0.5, 1.0, 25, 0.05) == pytest.approx(by_hand, rel=1e-12)
    assert t_test_power(0.0, 1.0, 25, 0.05) == pytest.approx(0.05, rel=1e-9)  # the size


def test_mde_shapes_and_edge_cases():
    got = min_detectable_effect(np.array([1.0, 1.0, 0.0, np.nan, 1.0]),
                                np.array([100, 400, 10, 50, 1]), 0.05)
    assert got[1] == pytest.approx(got[0] / 2, rel=0.01)  # about 1 / sqrt(n)
    assert got[2] == 0.0  # a constant difference is always detected
    assert np.isnan(got[3]) and np.isnan(got[4])
    assert min_detectable_effect(1.0, 50, 0.01) > min_detectable_effect(1.0, 50, 0.05)
    assert min_detectable_effect(1.0, 50, 0.05, power=0.9) > min_detectable_effect(1.0, 50, 0.05)
    with pytest.raises(ConfigError, match="power"):
        min_detectable_effect(1.0, 50, 0.05, power=1.0)


def _simulate(draw, n, m, alpha, reps, seed):
    """``reps`` simulated families of ``m`` paired comparisons of ``n`` users; comparison 0
    has a planted lift equal to the MDE of the population's sd (level alpha / m, power
    0.8), the ``m - 1`` others none.

    Returns ``(mde, rate, reported)``: the planted MDE, the share of families in which
    Holm's paired t-test detects comparison 0, and the MDE the report would state from
    each family's observed sd of comparison 0 (one per family).
    ``draw(rng, shape)`` gives centred per-user differences (mean 0)."""
    rng = np.random.default_rng(seed)
    sd = float(draw(rng, (1_000_000,)).std(ddof=1))  # the population sd, to 0.1%
    mde = float(min_detectable_effect(sd, n, alpha / m))
    d = draw(rng, (reps, m, n))
    d[:, 0, :] += mde
    mean = d.mean(axis=2)
    sds = d.std(axis=2, ddof=1)
    p = 2 * special.stdtr(n - 1, -np.abs(mean / (sds / np.sqrt(n))))
    detected = np.array([reject(holm(row), alpha)[0] for row in p])
    reported = min_detectable_effect(sds[:200, 0], n, alpha / m)  # 200: root searches
    return mde, detected.mean(), reported


def _ndcg_like(rng, shape):
    """Per-user differences shaped like top-10 metrics: half exactly 0 (both models miss),
    the rest skewed (a gain of one hit is larger than most losses), centred to mean 0."""
    zero = rng.random(shape) < 0.5
    spread = rng.exponential(0.25, shape) - rng.exponential(0.15, shape)
    d = np.where(zero, 0.0, spread)
    return d - 0.05  # E[d] = 0.5 * (0.25 - 0.15) = 0.05


@pytest.mark.parametrize(("name", "draw", "n", "m", "skew"), [
    ("normal, n = 300, 5 comparisons", lambda rng, s: rng.normal(0, 0.3, s), 300, 5, 0.0),
    ("normal, n = 23, 5 comparisons", lambda rng, s: rng.normal(0, 0.3, s), 23, 5, 0.0),
    ("ndcg-like, n = 300, 5 comparisons", _ndcg_like, 300, 5, 0.06),
    pytest.param("ndcg-like, n = 300, 39 comparisons", _ndcg_like, 300, 39, 0.06,
                 marks=pytest.mark.slow),
])
def test_detection_rate_at_the_mde_is_80_percent(name, draw, n, m, skew):
    reps = 2000
    mde, rate, reported = _simulate(draw, n, m, alpha=0.05, reps=reps, seed=11)
    se = np.sqrt(0.8 * 0.2 / reps)
    spread = np.quantile(reported, [0.1, 0.9]) / mde - 1
    print(f"{name}: MDE {mde:.4f}, detected in {rate:.3f} of {reps} datasets "
          f"(80% +- {3 * se:.3f}); the report's MDE from each dataset's own sd: mean "
          f"{reported.mean() / mde - 1:+.1%} of it, 80% within [{spread[0]:+.1%}, "
          f"{spread[1]:+.1%}]")
    # Holm is at least as powerful as the Bonferroni level the MDE assumes, so the rate
    # may sit a little above 0.8 (the other m - 1 hypotheses are null: very little). The
    # MDE is normal theory: for skewed per-user differences (``skew``) the t-test's real
    # power at the MDE is a few points higher, never lower, at these sizes
    assert -3 * se <= rate - 0.8 <= 3 * se + 0.01 + skew, (name, mde, rate)
    # the MDE the report states (plug-in sd) is about unbiased; its spread is the sd's
    assert abs(reported.mean() / mde - 1) < (0.02 if n >= 100 else 0.06)
