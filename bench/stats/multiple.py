"""Multiple-comparison control: Holm–Bonferroni adjusted p-values.

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
"""

from __future__ import annotations

import numpy as np

from bench import validate
from bench.errors import describe

__all__ = ["holm", "reject"]


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
