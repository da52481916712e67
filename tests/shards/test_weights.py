"""Poisson(1) weights: the published recipe, the distribution, independence of sharding."""

from fractions import Fraction
from math import factorial

import numpy as np
import pytest
from scipy import stats

from bench.shards.partial import BLOCK_ROWS
from bench.shards.partition import user_keys
from bench.shards.weights import (
    LOOKUP,
    MAX_WEIGHT,
    THRESHOLDS,
    fill_weights,
    poisson_weights,
    stream_keys,
)
from tests.shards.helpers import weight_ref


def test_thresholds_are_the_rounded_poisson_distribution_function():
    e_inv = sum(Fraction((-1) ** k, factorial(k)) for k in range(60))  # e**-1 to ~1e-80
    expected, cdf = [], Fraction(0)
    for k in range(30):
        cdf += e_inv / factorial(k)
        t = round(cdf * 2**32)
        if t >= 2**32:
            break
        expected.append(t)
    assert THRESHOLDS.tolist() == expected
    assert MAX_WEIGHT == 12


def test_lookup_table_agrees_with_the_thresholds():
    x = np.random.default_rng(0).integers(0, 2**32, size=200_000, dtype=np.uint64)
    x = np.concatenate([x, THRESHOLDS.astype(np.uint64), THRESHOLDS.astype(np.uint64) - 1])
    direct = np.searchsorted(THRESHOLDS.astype(np.uint64), x, side="right")
    looked = LOOKUP[(x >> np.uint64(16)).astype(np.int64)].astype(np.int64)
    unambiguous = looked != 255
    assert np.array_equal(looked[unambiguous], direct[unambiguous])
    assert (LOOKUP == 255).sum() == 8  # buckets a threshold splits


@pytest.mark.parametrize("n_resamples", [1, 2, 7])
def test_weights_follow_the_recipe_one_scalar_at_a_time(n_resamples):
    ids = [0, 5, -3, 2**40]
    keys = user_keys(ids)
    got = poisson_weights(keys, n_resamples, seed=11)
    expected = [[weight_ref(int(k), r, 11) for k in keys] for r in range(n_resamples)]
    assert got.tolist() == expected


def test_both_byte_orders_give_the_same_weights(monkeypatch):
    from bench.shards import weights

    streams = stream_keys(user_keys(np.arange(3000)), 4)
    fast = fill_weights(streams, np.empty((37, streams.size), dtype=np.uint8))
    monkeypatch.setattr(weights, "_LITTLE", False)
    slow = fill_weights(streams, np.empty((37, streams.size), dtype=np.uint8))
    assert np.array_equal(fast, slow)


def test_weights_are_poisson_one_and_independent():
    w = poisson_weights(user_keys(np.arange(10_000)), 100, seed=3).astype(np.int64)
    freq = np.bincount(w.ravel(), minlength=MAX_WEIGHT + 1)
    pmf = stats.poisson.pmf(np.arange(6), 1.0)
    observed = np.append(freq[:5], freq[5:].sum())
    expected = np.append(pmf[:5], 1 - pmf[:5].sum()) * w.size
    assert stats.chisquare(observed, expected).pvalue > 1e-4
    assert abs(w.mean() - 1.0) < 0.005 and abs(w.var() - 1.0) < 0.01  # sd 0.001 and 0.0017
    lag_r = np.corrcoef(w[:-1].ravel(), w[1:].ravel())[0, 1]  # resample r vs r + 1
    lag_u = np.corrcoef(w[:, :-1].ravel(), w[:, 1:].ravel())[0, 1]  # user u vs u + 1
    assert abs(lag_r) < 0.01 and abs(lag_u) < 0.01  # sd 0.001


def test_a_users_weights_do_not_depend_on_the_other_users_or_their_order():
    keys = user_keys(np.arange(1000))
    full = poisson_weights(keys, 50, seed=9)
    pick = np.random.default_rng(1).permutation(1000)[:137]
    assert np.array_equal(poisson_weights(keys[pick], 50, seed=9), full[:, pick])
    assert np.array_equal(poisson_weights(keys, 49, seed=9), full[:49])  # prefix of resamples
    assert not np.array_equal(poisson_weights(keys, 50, seed=10), full)


def test_block_size_keeps_the_float64_products_exact():
    # an entry of W @ D: at most BLOCK_ROWS users x weight <= MAX_WEIGHT x digit < 2**33
    assert BLOCK_ROWS * MAX_WEIGHT * 2**33 < 2**53
