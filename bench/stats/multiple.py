"""Multiple-comparison control: Holm–Bonferroni adjusted p-values, and intervals that agree.

Comparing many models on many metrics and segments runs many tests; at level ``alpha``
some will look significant by chance. Holm's step-down procedure controls the family-wise
error rate (the chance of at least one false rejection) at ``alpha`` under any dependence
between the tests, and is uniformly more powerful than plain Bonferroni.

For the ``m`` non-NaN p-values sorted ascending, ``p_(1) <= ... <= p_(m)``:

    adj_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j))

The running maximum makes the adjusted values monotone in the raw ones; tied raw
p-values get equal adjusted values. A hypothesis is rejected when ``adj <= alpha``, which
is Holm's rule "reject ``H_(1..k)`` for the largest ``k`` with
``p_(j) <= alpha / (m - j + 1)`` for all ``j <= k``".

NaN (no test could be run) stays NaN and is not counted in ``m``. The family is the whole
array, whatever its shape (it is flattened and the shape restored).

**Intervals that agree with Holm's verdicts** (:func:`holm_levels`,
:func:`holm_t_intervals`). An unadjusted 95% interval printed next to a Holm verdict can
exclude 0 while the verdict says "not significant" (and Bonferroni intervals at
``1 - alpha/m`` can include 0 while Holm rejects). Instead, each difference gets the paired
t interval at the level of its Holm step. With the ``m`` p-values sorted ascending and
``r`` hypotheses rejected:

- the ``i``-th (``i <= r``, rejected) gets level ``1 - alpha / (m - i + 1)``;
- every non-rejected one gets level ``1 - alpha / (m - r)``;

and the interval at level ``1 - g`` is ``diff ± t_{n-1, 1-g/2} · sd / sqrt(n)``.

*Claim: each interval excludes 0 exactly when Holm rejects its hypothesis.* For a paired
t-test, the interval at level ``1 - g`` excludes 0 iff ``|t| > t_{n-1, 1-g/2}`` iff
``p < g`` (``p = 2 T_{n-1}.sf(|t|)`` is decreasing in ``|t|``). If ``H_(i)`` is rejected,
Holm's rule gives ``p_(i) <= alpha / (m - i + 1) = g_i``, so its interval excludes 0
(``p_(i) = g_i`` exactly puts 0 on the boundary: see below). If it is not rejected, Holm
stopped at step ``r + 1`` because ``p_(r+1) > alpha / (m - r)``; every non-rejected
``p_(j)`` (``j >= r + 1``) is at least ``p_(r+1)``, so ``p_(j) > alpha / (m - r) = g`` and its
interval contains 0. Tied p-values are rejected together (if ``p_(r+1) = p_(r)`` then
``p_(r+1) <= alpha/(m-r+1) < alpha/(m-r)``), so the order among ties does not matter.

In floating point the t quantile and the p-value are computed by different routines, so
the two sides of ``p < g`` can disagree when ``p`` is within rounding of ``g`` (and at
``p = g`` exactly, where Holm rejects and the closed interval touches 0).
:func:`holm_t_intervals` settles those boundary cases in the verdict's favour: the bound
nearest 0 is moved to 0 (not rejected) or to the smallest float past 0 (rejected). A
Hypothesis property test (``tests/stats/test_multiple.py``) checks the claim on the
computed values.

What the intervals are not: they are not simultaneous ``1 - alpha`` intervals (the
Bonferroni intervals at ``1 - alpha/m`` are, but they contradict Holm's later
rejections). Each has the marginal level it is labelled with; as a set they agree with
Holm's decisions, which control the family-wise error rate at ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from bench import validate
from bench.errors import describe

__all__ = ["HolmIntervals", "holm", "holm_levels", "holm_t_intervals", "reject"]


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values of one family (the whole array).

    Args:
        p_values: raw p-values in ``[0, 1]``, any shape; NaN = no test.

    Returns:
        float64 array of the same shape: adjusted p-values, NaN where the input was NaN.

    Raises:
        ValueError: a value outside ``[0, 1]`` (NaN aside).
    """
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.ravel()
    present = ~np.isnan(flat)
    values = flat[present]
    if ((values < 0) | (values > 1)).any():
        raise ValueError(
            describe(
                "holm: p_values",
                "values in [0, 1] or NaN",
                f"{int(((values < 0) | (values > 1)).sum())} outside",
            )
        )
    m = values.size
    order = np.argsort(values, kind="stable")
    scaled = (m - np.arange(m)) * values[order]
    adjusted_sorted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    out = np.full(flat.shape, np.nan)
    out[present] = adjusted
    return out.reshape(p.shape)


def reject(p_adjusted: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Boolean array: ``True`` where ``p_adjusted <= alpha`` (NaN never rejects).

    Raises:
        ParameterError: ``alpha`` is not strictly between 0 and 1.
    """
    validate.fraction("alpha", alpha, expected="a number strictly between 0 and 1")
    p = np.asarray(p_adjusted, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return p <= alpha


def holm_levels(p_values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """The confidence level of each hypothesis's Holm step (see the module docstring).

    Args:
        p_values: raw p-values of one family, any shape; NaN = no test.
        alpha: the family-wise error rate, strictly between 0 and 1.

    Returns:
        float64 array of the same shape: ``1 - alpha / (m - i + 1)`` for the ``i``-th
        smallest p-value when it is rejected, ``1 - alpha / (m - r)`` for every
        non-rejected one (``r`` rejections), NaN where the p-value is NaN.
    """
    validate.fraction("alpha", alpha, expected="a number strictly between 0 and 1")
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.ravel()
    present = ~np.isnan(flat)
    values = flat[present]
    m = values.size
    rejected = reject(holm(values), alpha)
    r = int(rejected.sum())
    order = np.argsort(values, kind="stable")
    levels_sorted = np.empty(m)
    steps = np.arange(1, r + 1)
    levels_sorted[:r] = 1.0 - alpha / (m - steps + 1)
    if r < m:
        levels_sorted[r:] = 1.0 - alpha / (m - r)
    levels = np.empty(m)
    levels[order] = levels_sorted
    # the sorted position of a rejected hypothesis is among the first r (ties share p and
    # verdict), so assigning by sorted position matches the verdict of each hypothesis
    out = np.full(flat.shape, np.nan)
    out[present] = levels
    return out.reshape(p.shape)


@dataclass(frozen=True)
class HolmIntervals:
    """Holm's verdicts on a family of paired t-tests, with the intervals that agree.

    Attributes (arrays of the input shape):
        p_adjusted: Holm-adjusted p-values (:func:`holm`).
        rejected: ``p_adjusted <= alpha`` (the verdict "significant").
        level: confidence level of each interval (:func:`holm_levels`).
        low, high: the paired t interval of ``diff`` at ``level``; it excludes 0 exactly
            when ``rejected`` (NaN where the p-value is NaN).
    """

    p_adjusted: np.ndarray
    rejected: np.ndarray
    level: np.ndarray
    low: np.ndarray
    high: np.ndarray


def holm_t_intervals(diff, sd, n, p_values, alpha: float = 0.05) -> HolmIntervals:
    """Holm's step-down verdicts on paired t-tests and the paired t interval of each
    difference at the level of its Holm step (module docstring: formulas and the proof
    that an interval excludes 0 exactly when its hypothesis is rejected).

    Args:
        diff: mean paired differences, one per hypothesis (any shape, the same for all).
        sd: standard deviations of the paired differences (``ddof=1``); 0 for a constant
            difference, whose interval is the single point ``diff``.
        n: paired rows behind each difference.
        p_values: the paired t-tests' two-sided p-values (NaN = no test, not counted).
        alpha: the family-wise error rate, strictly between 0 and 1.
    """
    diff = np.asarray(diff, dtype=np.float64)
    sd = np.asarray(sd, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = holm(p)
    rejected = reject(adjusted, alpha)
    level = holm_levels(p, alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        quantile = special.stdtrit(n - 1.0, 1.0 - (1.0 - level) / 2.0)
        half = np.where(sd == 0, 0.0, quantile * sd / np.sqrt(n))
    low, high = diff - half, diff + half
    # boundary cases within rounding (see the module docstring): the verdict decides
    tested = np.isfinite(low) & np.isfinite(high)
    with np.errstate(invalid="ignore"):
        excludes = (low > 0) | (high < 0)
    too_wide = tested & rejected & ~excludes  # 0 on (or within rounding of) a bound
    too_narrow = tested & ~rejected & excludes
    up = diff > 0
    low = np.where(too_wide & up, np.nextafter(0.0, 1.0), low)
    high = np.where(too_wide & ~up, np.nextafter(0.0, -1.0), high)
    low = np.where(too_narrow & (low > 0), 0.0, low)
    high = np.where(too_narrow & (high < 0), 0.0, high)
    untested = np.isnan(p)
    low = np.where(untested, np.nan, low)
    high = np.where(untested, np.nan, high)
    return HolmIntervals(p_adjusted=adjusted, rejected=rejected, level=level, low=low,
                         high=high)
