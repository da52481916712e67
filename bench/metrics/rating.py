"""Rating-prediction error: RMSE and MAE over (predicted, actual) test pairs.

Pure functions: arrays in, one float out, never rounded. A NaN prediction means the model
could not score that pair; it must be dealt with *before* calling these (the runner drops
and counts such pairs), so here it is an :class:`EvaluationError` saying how many.
"""

from __future__ import annotations

import numpy as np

from bench.errors import EvaluationError

__all__ = ["mae", "rmse"]


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error: ``sqrt(mean_j (predicted_j - actual_j) ** 2)``.

    Args:
        predicted: 1-D predicted ratings, one per test pair.
        actual: 1-D true ratings, same length.

    Returns:
        A float >= 0.

    Raises:
        EvaluationError: lengths differ, no pair, or a NaN / infinite value.
    """
    err = _errors(predicted, actual, "rmse")
    return float(np.sqrt(np.mean(np.square(err))))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error: ``mean_j |predicted_j - actual_j|``.

    Args:
        predicted: 1-D predicted ratings, one per test pair.
        actual: 1-D true ratings, same length.

    Returns:
        A float >= 0.

    Raises:
        EvaluationError: lengths differ, no pair, or a NaN / infinite value.
    """
    err = _errors(predicted, actual, "mae")
    return float(np.mean(np.abs(err)))


def _errors(predicted, actual, name: str) -> np.ndarray:
    pred = np.asarray(predicted, dtype=np.float64)
    true = np.asarray(actual, dtype=np.float64)
    if pred.ndim != 1 or pred.shape != true.shape:
        raise EvaluationError(
            f"{name}: expected two 1-D arrays of equal length (predicted, actual), got shapes "
            f"{pred.shape} and {true.shape}"
        )
    if pred.size == 0:
        raise EvaluationError(f"{name}: expected at least one (predicted, actual) pair, got 0")
    n_nan = int(np.isnan(pred).sum())
    if n_nan:
        raise EvaluationError(
            f"{name}: expected a prediction for every test pair, got {n_nan} NaN "
            f"prediction(s) out of {pred.size} (drop and count pairs the model cannot score)"
        )
    bad_pred = int((~np.isfinite(pred)).sum())
    bad_true = int((~np.isfinite(true)).sum())
    if bad_pred or bad_true:
        raise EvaluationError(
            f"{name}: expected finite values, got {bad_pred} infinite prediction(s) and "
            f"{bad_true} NaN/infinite true rating(s)"
        )
    return pred - true
