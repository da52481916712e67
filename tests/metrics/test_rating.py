"""RMSE and MAE: hand cases and refused input."""

import math

import numpy as np
import pytest

from bench.errors import EvaluationError
from bench.metrics import mae, rmse


def test_hand_case():
    # errors = [0, 0, -2, 1] -> squared [0, 0, 4, 1], mean 5/4 ; absolute mean 3/4
    predicted = np.array([1.0, 2.0, 3.0, 5.0])
    actual = np.array([1.0, 2.0, 5.0, 4.0])
    assert rmse(predicted, actual) == pytest.approx(math.sqrt(5 / 4))
    assert mae(predicted, actual) == pytest.approx(3 / 4)


def test_perfect_and_constant_offset():
    actual = np.array([1.0, 3.5, 4.0])
    assert rmse(actual, actual) == 0.0 and mae(actual, actual) == 0.0
    # every prediction off by 0.5: both are 0.5
    assert rmse(actual + 0.5, actual) == pytest.approx(0.5)
    assert mae(actual - 0.5, actual) == pytest.approx(0.5)


def test_returns_plain_float_and_accepts_lists():
    value = rmse([4, 2], [3, 2])  # sqrt((1 + 0) / 2)
    assert type(value) is float and value == pytest.approx(math.sqrt(0.5))


@pytest.mark.parametrize("fn", [rmse, mae])
def test_nan_prediction_names_the_count(fn):
    with pytest.raises(EvaluationError, match=r"got 2 NaN prediction\(s\) out of 3"):
        fn(np.array([np.nan, 1.0, np.nan]), np.array([1.0, 2.0, 3.0]))


@pytest.mark.parametrize("fn", [rmse, mae])
def test_other_bad_input(fn):
    with pytest.raises(EvaluationError, match="equal length"):
        fn(np.array([1.0, 2.0]), np.array([1.0]))
    with pytest.raises(EvaluationError, match="at least one"):
        fn(np.array([]), np.array([]))
    with pytest.raises(EvaluationError, match="finite"):
        fn(np.array([np.inf]), np.array([1.0]))
    with pytest.raises(EvaluationError, match=r"1 NaN/infinite true rating"):
        fn(np.array([1.0]), np.array([np.nan]))
