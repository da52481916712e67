"""Paired comparison of two models on the same users: difference, bootstrap CI, tests, effect.

``a`` (the baseline) and ``b`` (the candidate) hold per-user values aligned row by row (same
users, same order), shape ``(n,)`` or ``(n, m)`` for ``m`` metrics. Per column, rows where
either value is NaN are dropped; ``n`` counts the rows kept. On the kept rows, with
``d_u = b_u - a_u`` (positive = the candidate is higher):

- ``mean_a``, ``mean_b``: the two means; ``diff = mean(d)``; ``rel_diff = diff / mean_a``
  (NaN when ``mean_a == 0``);
- ``low``, ``high``: percentile-bootstrap interval of ``mean(d)``, resampling users with the
  machinery of :mod:`bench.stats.bootstrap` (all columns share the user indices; a row
  dropped from a column is a NaN cell of ``d``, ignored as there);
- ``t_stat``, ``p_t``: paired t-test, two-sided, ``t = mean(d) / (sd(d) / sqrt(n))`` with
  ``sd`` over ``n - 1`` degrees of freedom and ``p = 2 * T_{n-1}.sf(|t|)``; the same values as
  ``scipy.stats.ttest_rel(b, a)`` on the kept rows;
- ``w_stat``, ``p_wilcoxon``: Wilcoxon signed-rank test, two-sided, exactly
  ``scipy.stats.wilcoxon(b, a, zero_method="wilcox")`` on the kept rows (scipy's defaults
  otherwise: no continuity correction, ``method="auto"``: exact null distribution up to 50
  rows without ties or zeros, else the normal approximation, or a complete permutation test
  up to 13 rows). ``zero_method="wilcox"`` drops the users whose difference is exactly 0
  before ranking -- the classic test; in top-k metrics many users score 0 under both
  models and carry no evidence about the sign of the difference;
- ``effect_size``: Cohen's ``d_z = mean(d) / sd(d)`` (``sd`` with ``ddof=1``);
- ``sd``: ``sd(d)`` itself (``ddof=1``), what a t interval of ``diff`` at any level and the
  minimum detectable effect need (:mod:`bench.stats.multiple`, :mod:`bench.stats.power`).

The bootstrap interval is the unadjusted percentile interval of one difference. A report
that prints an interval next to a (Holm-corrected) verdict prints the paired t interval
at the level of the difference's Holm step instead
(:func:`bench.stats.multiple.holm_t_intervals`), so interval and verdict never disagree.

Edge cases (no scipy warning escapes):

- ``n < 2``: the tests and the effect size are NaN (nothing to estimate a spread from);
  ``n == 0`` also gives NaN means, difference and interval;
- all differences exactly 0 (``n >= 2``): ``diff = 0``, ``t_stat = 0``, ``w_stat = 0``,
  ``p_t = p_wilcoxon = 1.0``, ``effect_size = 0``, interval ``(0, 0)``;
- a constant non-zero difference (every ``d_u`` equal, so ``sd = 0``): ``t_stat`` and
  ``effect_size`` are ``+inf`` or ``-inf`` with the sign of ``diff`` and ``p_t = 0.0`` (the
  limit of a vanishing spread); the Wilcoxon test is scipy's (all ranks tied). Constancy is
  detected exactly (``max(d) == min(d)``), not by a rounded ``sd``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import special

from bench.errors import describe
from bench.stats.bootstrap import (
    as_matrix,
    check_resampling,
    column_means,
    percentile_interval,
    squeeze,
)

__all__ = ["WILCOXON_ZERO_METHOD", "PairedComparison", "paired_comparison"]

WILCOXON_ZERO_METHOD = "wilcox"
"""How the Wilcoxon test treats zero differences: dropped before ranking."""


@dataclass(frozen=True)
class PairedComparison:
    """Candidate ``b`` against baseline ``a`` on the same users, per column.

    Array fields have shape ``(m,)`` for ``(n, m)`` input and are Python scalars for 1-D
    input. Formulas and edge cases are in the module docstring.

    Attributes:
        n: rows kept (both values present).
        mean_a: baseline mean over the kept rows.
        mean_b: candidate mean over the kept rows.
        diff: mean of ``d = b - a``.
        low: lower bound of the percentile-bootstrap interval of ``diff``.
        high: upper bound of that interval.
        t_stat: paired t statistic.
        p_t: two-sided p-value of the paired t-test.
        w_stat: Wilcoxon statistic ``min(R+, R-)``.
        p_wilcoxon: two-sided p-value of the Wilcoxon signed-rank test.
        effect_size: Cohen's ``d_z = mean(d) / sd(d, ddof=1)``.
        sd: ``sd(d, ddof=1)`` (NaN for fewer than 2 rows; 0 for a constant difference).
        rel_diff: ``diff / mean_a`` (NaN when ``mean_a == 0``).
        n_resamples: bootstrap resamples.
        confidence: nominal coverage of the interval.
        seed: seed of the resampling.
    """

    n: np.ndarray | int
    mean_a: np.ndarray | float
    mean_b: np.ndarray | float
    diff: np.ndarray | float
    low: np.ndarray | float
    high: np.ndarray | float
    t_stat: np.ndarray | float
    p_t: np.ndarray | float
    w_stat: np.ndarray | float
    p_wilcoxon: np.ndarray | float
    effect_size: np.ndarray | float
    rel_diff: np.ndarray | float
    sd: np.ndarray | float
    n_resamples: int
    confidence: float
    seed: int


def paired_comparison(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Compare candidate ``b`` with baseline ``a`` user by user (``d = b - a``).

    Args:
        a: baseline per-user values, ``(n,)`` or ``(n, m)``; NaN = no value.
        b: candidate per-user values, same shape and row order as ``a``.
        n_resamples: bootstrap resamples (a positive integer).
        confidence: nominal coverage of the interval, in ``(0, 1)``.
        seed: non-negative integer seed of the resampling.

    Returns:
        A :class:`PairedComparison`.

    Raises:
        ConfigError: ``n_resamples``, ``confidence`` or ``seed`` is invalid.
        ValueError: ``a`` and ``b`` differ in shape, are not 1-D or 2-D, or hold an infinity.
    """
    check_resampling(n_resamples, confidence, seed)
    base, one_d = as_matrix(a, "a")
    cand, _ = as_matrix(b, "b")
    if base.shape != cand.shape:
        raise ValueError(
            describe(
                "paired_comparison", "a and b of the same shape", f"{base.shape} and {cand.shape}"
            )
        )
    kept = ~(np.isnan(base) | np.isnan(cand))
    count = kept.sum(axis=0)
    d = np.where(kept, cand - base, 0.0)
    mean_a = column_means(np.where(kept, base, 0.0), kept)
    mean_b = column_means(np.where(kept, cand, 0.0), kept)
    diff = column_means(d, kept)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_diff = np.where(mean_a != 0, diff / mean_a, np.nan)
    low, high = percentile_interval(d, kept, n_resamples, confidence, seed)
    t_stat, p_t, effect, sd = _t_test(d, kept, count, diff)
    w_stat, p_w = _wilcoxon(d, kept, count)
    return PairedComparison(
        n=squeeze(count.astype(np.int64), one_d),
        mean_a=squeeze(mean_a, one_d),
        mean_b=squeeze(mean_b, one_d),
        diff=squeeze(diff, one_d),
        low=squeeze(low, one_d),
        high=squeeze(high, one_d),
        t_stat=squeeze(t_stat, one_d),
        p_t=squeeze(p_t, one_d),
        w_stat=squeeze(w_stat, one_d),
        p_wilcoxon=squeeze(p_w, one_d),
        effect_size=squeeze(effect, one_d),
        rel_diff=squeeze(rel_diff, one_d),
        sd=squeeze(sd, one_d),
        n_resamples=int(n_resamples),
        confidence=float(confidence),
        seed=int(seed),
    )


def _t_test(d, kept, count, diff):
    """Paired t statistic, two-sided p, Cohen's d_z and sd(d) per column, vectorised.

    Follows scipy's ``ttest_1samp`` arithmetic (mean, second central moment scaled by
    ``n / (n - 1)``, Student t survival function) so the values agree with ``ttest_rel``.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = np.where(kept, d - diff, 0.0)
        var = (centred**2).sum(axis=0) / count * (count / (count - 1.0))
        sd = np.sqrt(var)
        t_stat = diff / np.sqrt(var / count)
        effect = diff / sd
    p_t = 2.0 * special.stdtr(count - 1.0, -np.abs(t_stat))
    top = np.where(kept, d, -np.inf).max(axis=0, initial=-np.inf)
    bottom = np.where(kept, d, np.inf).min(axis=0, initial=np.inf)
    constant = (count >= 2) & (top == bottom)
    zero = constant & (top == 0)
    moving = constant & ~zero
    signed_inf = np.copysign(np.inf, diff)
    t_stat = np.where(zero, 0.0, np.where(moving, signed_inf, t_stat))
    effect = np.where(zero, 0.0, np.where(moving, signed_inf, effect))
    p_t = np.where(zero, 1.0, np.where(moving, 0.0, p_t))
    sd = np.where(constant, 0.0, sd)
    small = count < 2
    t_stat[small] = p_t[small] = effect[small] = sd[small] = np.nan
    return t_stat, p_t, effect, sd


def _wilcoxon(d, kept, count):
    """Wilcoxon signed-rank statistic and two-sided p, one scipy call per column.

    One call per column (m is small) keeps scipy's per-sample choice of method: with
    ``axis``, scipy picks the exact or permutation test from the ties of the whole batch.
    """
    from scipy import stats  # 1.6-1.8 s to import: only when a test runs, not with bench.stats

    m = d.shape[1]
    w_stat = np.full(m, np.nan)
    p_w = np.full(m, np.nan)
    for col in range(m):
        if count[col] < 2:
            continue
        column = d[kept[:, col], col]
        if not column.any():  # every difference is 0: no evidence either way
            w_stat[col], p_w[col] = 0.0, 1.0
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            result = stats.wilcoxon(column, zero_method=WILCOXON_ZERO_METHOD)
        w_stat[col], p_w[col] = float(result.statistic), float(result.pvalue)
    return w_stat, p_w
