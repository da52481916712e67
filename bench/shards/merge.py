"""Merge shard partials, and turn the merged state into means, tests and intervals.

:func:`merge_partials` adds the integer state of several :class:`ShardPartial` (exact
digit sums, counts, weight totals, count arrays) and takes the min / max of the extremes.
Integer addition is associative and commutative, so the merged state -- and everything
:func:`summarize` computes from it -- is the same for every sharding of the users, bit
for bit; one shard is the single-process evaluation.

:func:`summarize` computes from the exact integers, rounding once where it can
(``K = 2**-E0``, ``S`` the integer of a digit sum, :mod:`bench.shards.exact`):

- ``mean = S1 / (n K)``: correctly rounded (Python's integer true division);
- ``var = (n S2 K - S1**2) / (n (n - 1) K**2)`` (``ddof = 1``), an exact rational, so no
  cancellation: a constant column has variance exactly 0;
- paired t-test on ``d = b - a`` (users where both are finite):
  ``t**2 = S1**2 (n - 1) / (n S2 K - S1**2)``, ``t = sign(S1) sqrt(t**2)``,
  ``p = 2 T_{n-1}(-|t|)``; Cohen's ``d_z = t / sqrt(n)``. The edge cases follow
  :mod:`bench.stats.paired`: ``n < 2`` -> NaN; all differences 0 -> ``t = 0``, ``p = 1``;
  a constant non-zero difference -> ``t = +-inf``, ``p = 0``. ``rel_diff = S1_d / S1_a``
  (NaN when ``S1_a = 0``).
- Poisson bootstrap: resample ``r``'s mean is ``S_r / (W_r K)`` (``W_r`` the weight total,
  NaN when 0), correctly rounded; the interval is the ``(1 - c) / 2`` and ``(1 + c) / 2``
  quantiles (``numpy.quantile``, ``method="linear"``) of the finite resampled means,
  clipped into ``[min, max]`` of the column as :mod:`bench.stats.bootstrap` does.

On ordinary data these agree with :func:`numpy.mean`,
:func:`bench.stats.paired_comparison` and ``scipy.stats.ttest_rel`` to rounding (those add
floats in their own order, so they can be off by more on adversarial columns mixing 1e16
and 1.0); the tests check that, and that the merge equals the single shard exactly.

:func:`list_metrics` gives coverage and Gini from merged exposure counts with the
arithmetic of :func:`bench.metrics.beyond_accuracy`, so they equal its single-process
values bit for bit.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import special

from bench import validate
from bench.errors import DataError, describe
from bench.shards import exact
from bench.shards.partial import ShardPartial

__all__ = ["ColumnSummary", "MergedSummary", "PairSummary", "list_metrics", "merge_partials",
           "stat_row", "summarize"]

_SCALE = -exact.E0  # sum = S * 2**-_SCALE


@dataclass(frozen=True)
class ColumnSummary:
    """One column over the merged users: ``n`` finite values, their ``mean``, standard
    deviation ``sd`` (``ddof = 1``), and the Poisson-bootstrap interval ``(low, high)``."""

    n: int
    mean: float
    sd: float
    low: float
    high: float


@dataclass(frozen=True)
class PairSummary:
    """Candidate ``b`` against baseline ``a`` on the ``n`` users where both are finite
    (the fields of :class:`bench.stats.PairedComparison` that merge; no Wilcoxon)."""

    n: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    t_stat: float
    p_t: float
    effect_size: float
    rel_diff: float


@dataclass(frozen=True)
class MergedSummary:
    """Everything :func:`summarize` computes from one (merged) partial."""

    n_users: int
    columns: dict[str, ColumnSummary]
    pairs: dict[tuple[str, str], PairSummary]
    n_resamples: int
    confidence: float
    seed: int

    def means(self) -> dict[str, float]:
        """``{column: mean}``."""
        return {name: c.mean for name, c in self.columns.items()}


def merge_partials(partials: Iterable[ShardPartial]) -> ShardPartial:
    """The partial of the union of the (disjoint) users of ``partials``.

    Raises:
        DataError: no partial, or partials of different columns, pairs, resamples, seed
            or count arrays.
    """
    partials = list(partials)
    if not partials:
        raise DataError(describe("partials", "at least one shard partial", "none"))
    first = partials[0]
    for i, p in enumerate(partials[1:], start=1):
        if p.layout() != first.layout():
            raise DataError(describe(
                f"partials[{i}]", f"the layout of partials[0] {first.layout()[:4]}",
                p.layout()[:4]))
    sums = {f: sum(getattr(p, f) for p in partials) for f in
            ("count", "sums", "sumsq", "boot_sums", "boot_weights")}
    for f in ("sums", "sumsq", "boot_sums"):
        exact.normalize(sums[f])
    return ShardPartial(
        columns=first.columns, pairs=first.pairs, n_users=sum(p.n_users for p in partials),
        lowest=np.min([p.lowest for p in partials], axis=0),
        highest=np.max([p.highest for p in partials], axis=0),
        n_resamples=first.n_resamples, seed=first.seed,
        counts={k: sum(p.counts[k] for p in partials) for k in first.counts},
        **sums,
    )


def summarize(partial: ShardPartial, *, confidence: float = 0.95) -> MergedSummary:
    """Means, standard deviations, paired t-tests and bootstrap intervals (module doc)."""
    if not (validate.is_number(confidence) and 0.0 < confidence < 1.0):
        raise DataError(describe("confidence", "a number in (0, 1)", repr(confidence)))
    confidence = float(confidence)
    s = partial
    m = len(s.columns)
    s1 = exact.to_int(s.sums)
    s2 = exact.to_int(s.sumsq)
    low, high = _intervals(s, confidence)
    columns = {}
    for c, name in enumerate(s.columns):
        n = int(s.count[c])
        columns[name] = ColumnSummary(n=n, mean=_mean(s1[c], n), sd=_sd(s1[c], s2[c], n),
                                      low=float(low[c]), high=float(high[c]))
    pairs = {}
    for i, (a, b) in enumerate(s.pairs):
        row = m + i
        n = int(s.count[row])
        sd_, sa, sb = s1[row], s1[m + len(s.pairs) + 2 * i], s1[m + len(s.pairs) + 2 * i + 1]
        t_stat, p_t, effect = _t_test(sd_, s2[row], n)
        pairs[(a, b)] = PairSummary(
            n=n, mean_a=_mean(sa, n), mean_b=_mean(sb, n), diff=_mean(sd_, n),
            low=float(low[row]), high=float(high[row]), t_stat=t_stat, p_t=p_t, effect_size=effect,
            rel_diff=_ratio(sd_, sa) if sa else math.nan)
    return MergedSummary(n_users=s.n_users, columns=columns, pairs=pairs,
                         n_resamples=s.n_resamples, confidence=confidence, seed=s.seed)


def _mean(total: int, n: int) -> float:
    return total / (n << _SCALE) if n else math.nan


def _var_numerator(s1: int, s2: int, n: int) -> int:
    """``n S2 K - S1**2`` (``>= 0``): ``var = this / (n (n - 1) K**2)``."""
    return (n * s2 << _SCALE) - s1 * s1


def _ratio(num: int, den: int) -> float:
    """``num / den`` correctly rounded; +-inf beyond the float range (``den != 0``)."""
    try:
        return num / den
    except OverflowError:
        return math.inf if (num > 0) == (den > 0) else -math.inf


def _sqrt(value: Fraction) -> float:
    """``sqrt(value)`` of a non-negative rational, also when ``value`` itself is beyond
    the float range: ``sqrt(value / 4**k) * 2**k``, both factors exact or rounded once."""
    if value == 0:
        return 0.0
    k = (value.numerator.bit_length() - value.denominator.bit_length()) // 2
    scaled = value / Fraction(2) ** (2 * k)  # in [1/2, 4): no overflow, no underflow
    try:
        return math.ldexp(math.sqrt(float(scaled)), k)
    except OverflowError:  # a spread beyond the float range (values near +-1.8e308)
        return math.inf


def _sd(s1: int, s2: int, n: int) -> float:
    if n < 2:
        return math.nan
    return _sqrt(Fraction(_var_numerator(s1, s2, n), n * (n - 1) << 2 * _SCALE))


def _t_test(s1: int, s2: int, n: int) -> tuple[float, float, float]:
    if n < 2:
        return math.nan, math.nan, math.nan
    spread = _var_numerator(s1, s2, n)
    if spread == 0:  # every difference equal, exactly
        if s1 == 0:
            return 0.0, 1.0, 0.0
        signed = math.inf if s1 > 0 else -math.inf
        return signed, 0.0, signed
    t_squared = Fraction(s1 * s1 * (n - 1), spread)
    sign = 1.0 if s1 > 0 else -1.0  # s1 is a big int: never through float()
    t = sign * _sqrt(t_squared)
    effect = sign * _sqrt(t_squared / n)
    p = float(2.0 * special.stdtr(n - 1.0, -abs(t)))
    return t, p, effect


def _intervals(s: ShardPartial, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of the resampled means of every column and pair (NaN if none)."""
    n_stat = len(s.stat_names)
    low = np.full(n_stat, np.nan)
    high = np.full(n_stat, np.nan)
    if not s.n_resamples:
        return low, high
    totals = exact.to_int(s.boot_sums)
    means = np.array([[_mean(totals[r][c], int(s.boot_weights[r, c])) for c in range(n_stat)]
                      for r in range(s.n_resamples)])
    alpha = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column with no finite mean: NaN
        bounds = np.nanquantile(means, [alpha, 1.0 - alpha], axis=0, method="linear")
    has = s.count[:n_stat] > 0
    low[has] = np.clip(bounds[0], s.lowest, s.highest)[has]
    high[has] = np.clip(bounds[1], s.lowest, s.highest)[has]
    return low, high


def list_metrics(exposure: np.ndarray, item_counts) -> dict[str, np.ndarray]:
    """Coverage and Gini per cutoff from exposure counts (rows: cutoffs, columns: items).

    The catalogue is the items with ``item_counts > 0``; the formulas and the arithmetic
    are those of :mod:`bench.metrics.beyond` (coverage = recommended catalogue items /
    catalogue size; Gini over the sorted exposure of every catalogue item), so merged
    exposure gives the single-process values exactly.
    """
    exposure = np.atleast_2d(np.asarray(exposure))
    counts = np.asarray(item_counts, dtype=np.float64)
    if exposure.shape[1] != counts.size:
        raise DataError(describe("exposure", f"{counts.size} columns (one per item)",
                                 f"shape {exposure.shape}"))
    catalogue = counts > 0
    n_cat = int(catalogue.sum())
    x = exposure[:, catalogue].astype(np.float64)
    n_k = x.shape[0]
    coverage = (x > 0).sum(axis=1) / n_cat if n_cat else np.full(n_k, np.nan)
    gini = np.full(n_k, np.nan)
    if n_cat:
        xs = np.sort(x, axis=1)
        coef = 2.0 * np.arange(1, n_cat + 1) - n_cat - 1.0
        total = xs.sum(axis=1)
        np.divide(xs @ coef, n_cat * total, out=gini, where=total > 0)
    return {"coverage": coverage, "gini": gini}


def stat_row(partial: ShardPartial, name: str) -> int:
    """Row of a column or of a pair's ``"b - a"`` in the partial's per-statistic arrays."""
    names = partial.stat_names
    if name not in names:
        raise DataError(describe("name", f"one of {list(names)}", repr(name)))
    return names.index(name)

