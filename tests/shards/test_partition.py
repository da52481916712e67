"""User keys and shards: SplitMix64 as published, stable keys, a balanced partition."""

import numpy as np
import pytest

from bench.errors import DataError, ParameterError
from bench.shards.partition import mix64, shard_of, split_by_shard, user_keys
from tests.shards.helpers import int_key_ref, mix64_ref, str_key_ref


def test_mix64_is_splitmix64():
    # SplitMix64 seeded with 0: its first output is the finaliser of the golden gamma
    assert mix64(np.array([0x9E3779B97F4A7C15], dtype=np.uint64))[0] == 0xE220A8397B1DCDAF
    zs = [0, 1, 2, 12345, 2**63, 2**64 - 1, 0xDEADBEEF]
    got = mix64(np.array(zs, dtype=np.uint64))
    assert [int(v) for v in got] == [mix64_ref(z) for z in zs]


def test_integer_keys_follow_the_formula_for_any_integer_dtype():
    ids = [0, 1, -1, 7, 2**40 + 3, -(2**62)]
    expected = [int_key_ref(i) for i in ids]
    assert [int(k) for k in user_keys(np.array(ids, dtype=np.int64))] == expected
    assert [int(k) for k in user_keys(ids)] == expected
    small = np.array([0, 1, 7], dtype=np.int16)
    assert [int(k) for k in user_keys(small)] == [int_key_ref(i) for i in (0, 1, 7)]
    assert [int(k) for k in user_keys(np.array([2**63 + 5], dtype=np.uint64))] == [
        int_key_ref(2**63 + 5)]


def test_string_keys_follow_fnv1a_over_code_points():
    ids = ["", "a", "a ", "user_42", "ünïcødé", "x" * 40]
    expected = [str_key_ref(s) for s in ids]
    assert [int(k) for k in user_keys(np.array(ids))] == expected
    assert [int(k) for k in user_keys(np.array(ids, dtype=object))] == expected
    assert len(set(expected)) == len(ids)


@pytest.mark.parametrize("bad", [[1.5, 2.0], [1, "a"], [None, "a"]])
def test_ids_that_are_not_all_integers_or_all_strings_are_refused(bad):
    with pytest.raises(DataError, match="user_ids: expected integer or string ids"):
        user_keys(np.array(bad, dtype=object) if not isinstance(bad[0], float) else bad)


def test_shards_are_a_balanced_partition_that_ignores_order():
    ids = np.arange(160_000)
    keys = user_keys(ids)
    shard = shard_of(keys, 16)
    assert shard.min() == 0 and shard.max() == 15
    sizes = np.bincount(shard, minlength=16)
    assert np.all(np.abs(sizes - 10_000) < 500)  # ~5 sd of a binomial
    perm = np.random.default_rng(0).permutation(ids.size)
    assert np.array_equal(shard_of(user_keys(ids[perm]), 16), shard[perm])
    parts = split_by_shard(keys, 16)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(ids.size))
    for s, rows in enumerate(parts):
        assert np.all(shard[rows] == s) and np.all(np.diff(rows) > 0)
    assert np.all(shard_of(keys, 1) == 0)


def test_shard_count_must_be_positive():
    with pytest.raises(ParameterError, match="n_shards"):
        shard_of(user_keys([1, 2]), 0)
