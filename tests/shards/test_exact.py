"""Exact digit sums: equal to rational arithmetic on adversarial floats, in any order."""

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.shards import exact
from tests.shards.helpers import exact_sum

ADVERSARIAL = [1e16, 1.0, -1e16, 1.0, 2.0**-1074, -(2.0**-1074), 1.7976931348623157e308,
               -1.7976931348623157e308, 3.0, 0.1, 1e-300, 2.0**53, 1.0, -(2.0**53), 0.0, -0.0]

finite = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True)


def as_fraction(digits) -> Fraction:
    return Fraction(exact.to_int(digits), 2**-exact.E0)


def test_adversarial_sums_are_exact_where_float_addition_is_not():
    x = np.array(ADVERSARIAL)
    assert as_fraction(exact.sum_digits(x)) == exact_sum(x)
    assert as_fraction(exact.sumsq_digits(x)) == sum(Fraction(v) ** 2 for v in ADVERSARIAL)
    # plain float addition gets [1e16, 1, -1e16] wrong; the digits do not
    three = np.array([1e16, 1.0, -1e16])
    assert sum(three.tolist()) == 0.0
    assert as_fraction(exact.sum_digits(three)) == 1


@settings(max_examples=100, deadline=None)
@given(st.lists(finite, max_size=60), st.randoms(use_true_random=False))
def test_sums_and_squares_equal_rational_arithmetic_in_any_order(values, rnd):
    x = np.array(values, dtype=np.float64)
    total = exact.sum_digits(x)
    assert as_fraction(total) == exact_sum(values)
    assert as_fraction(exact.sumsq_digits(x)) == sum(
        (Fraction(v) ** 2 for v in values), Fraction(0))
    shuffled = list(values)
    rnd.shuffle(shuffled)
    cut = rnd.randint(0, len(values))
    parts = exact.sum_digits(np.array(shuffled[:cut])) + exact.sum_digits(np.array(shuffled[cut:]))
    assert np.array_equal(exact.normalize(parts), total)  # canonical: equal sums, equal digits


@settings(max_examples=100, deadline=None)
@given(st.lists(finite, min_size=1, max_size=40))
def test_dense_digits_rebuild_each_value_and_stay_below_2_33(values):
    x = np.array(values)
    j0, dense = exact.dense_digits(x)
    assert np.all(np.abs(dense) < 2**33) and np.all(dense == np.round(dense))
    for u, v in enumerate(values):
        rebuilt = sum((Fraction(int(d)) * Fraction(2) ** (32 * (j0 + c) + exact.E0)
                       for c, d in enumerate(dense[u])), Fraction(0))
        assert rebuilt == Fraction(v)


def test_normalized_digits_are_canonical_and_signed_at_the_top():
    neg = exact.sum_digits(np.array([-1.5, -2.25]))
    assert np.all((neg[:-1] >= 0) & (neg[:-1] < 2**32)) and neg[-1] < 0
    assert as_fraction(neg) == Fraction(-15, 4)
    assert exact.to_int(np.zeros(exact.N_DIGITS, dtype=np.int64)) == 0
    many = exact.to_int(np.stack([neg, exact.sum_digits(np.array([3.0]))]))
    assert [Fraction(v, 2**-exact.E0) for v in many] == [Fraction(-15, 4), 3]


def test_long_columns_are_exact_across_chunks():
    x = np.full(exact.CHUNK * 2 + 5, 0.1)
    x[::3] = 1e16
    x[1::3] = -1e16
    n_big, n_neg = x[::3].size, x[1::3].size
    expected = (n_big * Fraction(1e16) - n_neg * Fraction(1e16)
                + (x.size - n_big - n_neg) * Fraction(0.1))
    assert as_fraction(exact.sum_digits(x)) == expected
