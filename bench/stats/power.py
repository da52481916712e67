"""Power of the paired t-test and the minimum detectable effect (MDE).

A comparison that finds "no significant difference" says little unless the test could
have seen a difference of the size that matters. For the two-sided paired t-test at level
``a`` on ``n`` paired users whose differences have standard deviation ``sd``:

- the critical value is ``c = t_{n-1, 1-a/2}``;
- a true mean difference ``delta`` gives the test statistic a non-central t distribution
  with ``n - 1`` degrees of freedom and non-centrality ``lambda = delta * sqrt(n) / sd``;
- the power is ``P(|T'| > c) = 1 - F(c; lambda) + F(-c; lambda)`` (``F`` the non-central t
  CDF, ``scipy.stats.nct``; the lower tail, which underflows to NaN far from the centre,
  counts as 0 there);
- the **minimum detectable effect** at power ``1 - beta`` is the ``delta >= 0`` at which the
  power equals ``1 - beta``: ``lambda`` is found by bracketing root search
  (:func:`scipy.optimize.brentq`; power increases with ``lambda``), then
  ``delta = lambda * sd / sqrt(n)``. It is about ``(c + t_{n-1, 1-beta}) * sd / sqrt(n)``.

The report plugs in the observed ``sd`` of the paired differences and the level at which
the comparison is tested in its Holm family: ``alpha / m`` for a family of ``m`` tests
(Holm's first step, i.e. Bonferroni). Holm rejects every hypothesis Bonferroni rejects, so
an effect of the reported size is detected with at least the stated power whatever the
other hypotheses of the family are; the MDE is a safe (slightly pessimistic) figure.

Edge cases: ``n < 2`` or a NaN ``sd`` give NaN; ``sd == 0`` (a constant difference) gives
0 (any non-zero constant difference is detected).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from bench import validate

__all__ = ["min_detectable_effect", "t_test_power"]


def t_test_power(effect, sd, n, alpha: float) -> np.ndarray | float:
    """Power of the two-sided paired t-test at level ``alpha`` for a true mean ``effect``.

    Args:
        effect: true mean paired difference(s).
        sd: standard deviation(s) of the paired differences (``ddof=1``).
        n: number(s) of paired users.
        alpha: the test's level, strictly between 0 and 1.

    Returns:
        ``P(reject)``, broadcast over the arguments (a float for scalar input).
    """
    validate.fraction("alpha", alpha, expected="a number strictly between 0 and 1")
    effect, sd, n = (np.asarray(x, dtype=np.float64) for x in (effect, sd, n))
    df = n - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        c = special.stdtrit(df, 1.0 - alpha / 2.0)
        nc = np.abs(effect) * np.sqrt(n) / sd
        power = _two_sided(df, nc, c)
    power = np.where(sd == 0, np.where(effect == 0, alpha, 1.0), power)
    power = np.where(n < 2, np.nan, power)
    return power.item() if power.ndim == 0 else power


def min_detectable_effect(sd, n, alpha: float, power: float = 0.8) -> np.ndarray | float:
    """The smallest true mean difference the paired t-test detects with ``power``.

    Args:
        sd: standard deviation(s) of the paired differences (``ddof=1``).
        n: number(s) of paired users.
        alpha: the level the difference is tested at (e.g. ``alpha / m`` in a Holm family
            of ``m``), strictly between 0 and 1.
        power: the wanted power, strictly between ``alpha`` and 1 (default 0.8).

    Returns:
        The MDE, ``>= 0``, broadcast over ``sd`` and ``n`` (a float for scalar input);
        NaN where ``n < 2`` or ``sd`` is NaN, 0 where ``sd == 0``.
    """
    from scipy.optimize import brentq

    validate.fraction("alpha", alpha, expected="a number strictly between 0 and 1")
    validate.fraction("power", power, expected="a number strictly between 0 and 1")
    sd, n = np.broadcast_arrays(np.asarray(sd, dtype=np.float64),
                                np.asarray(n, dtype=np.float64))
    out = np.full(sd.shape, np.nan)
    for idx in np.ndindex(sd.shape):
        s, k = float(sd[idx]), float(n[idx])
        if not (k >= 2 and np.isfinite(s) and s >= 0):
            continue
        if s == 0:
            out[idx] = 0.0
            continue
        df = k - 1.0
        c = float(special.stdtrit(df, 1.0 - alpha / 2.0))

        def gap(nc, df=df, c=c):
            return float(_two_sided(df, nc, c)) - power

        top = c + abs(float(special.stdtrit(df, power))) + 1.0
        for _ in range(60):  # widen until the bracket holds the root
            if not gap(top) < 0:
                break
            top *= 2.0
        try:
            nc = brentq(gap, 0.0, top, xtol=1e-10) if gap(0.0) < 0 else 0.0
        except ValueError:  # a NaN from the distribution: no number rather than a wrong one
            continue
        out[idx] = nc * s / np.sqrt(k)
    return out.item() if out.ndim == 0 else out


def _two_sided(df, nc, c):
    """``P(|T'| > c)`` for the non-central t ``T'`` (df, nc); a NaN lower tail counts as 0."""
    from scipy import stats  # slow to import: only when a power is computed

    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        upper = stats.nct.sf(c, df, nc)
        lower = np.nan_to_num(stats.nct.cdf(-c, df, nc), nan=0.0)
    return upper + lower
