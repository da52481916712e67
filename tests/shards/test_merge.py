"""Merged shards equal the single shard bit for bit; the numbers equal exact arithmetic."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special
from scipy import stats as sstats

from bench.errors import DataError
from bench.shards.merge import list_metrics, merge_partials, stat_row, summarize
from bench.shards.partial import ShardAccumulator, load_partial
from bench.shards.partition import split_by_shard, user_keys
from bench.shards.weights import poisson_weights
from bench.stats import bootstrap_means, paired_comparison
from tests.shards.helpers import exact_mean, exact_sum, same_float, same_summary


def sharded(ids, values, n_shards, *, pairs=(), n_resamples=50, seed=1, shuffle=None,
            pieces=1, counts=None):
    """Partial of every shard (users optionally shuffled and fed in pieces), merged."""
    names = list(values)
    shape = None if counts is None else {"c": counts.shape[1:]}
    parts = []
    for rows in split_by_shard(user_keys(ids), n_shards):
        if shuffle is not None:
            rows = shuffle.permutation(rows)
        acc = ShardAccumulator(names, pairs=pairs, n_resamples=n_resamples, seed=seed,
                               counts=shape)
        for piece in np.array_split(rows, pieces):
            extra = None if counts is None else {"c": counts[piece].sum(axis=0)}
            acc.add(ids[piece], {k: v[piece] for k, v in values.items()}, extra)
        parts.append(acc.partial())
    return merge_partials(parts)


def adversarial(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random(n)
    a[::7] = 1e16
    a[1::7] = -1e16
    a[2::11] = 2.0**-1074
    b = a + rng.normal(0.01, 0.1, n)
    b[3::13] = np.nan
    c = rng.choice([1e16, 1.0, -1e16, 3.0], size=n)
    return np.arange(n) * 3 + 1, {"a": a, "b": b, "c": c}


@pytest.mark.parametrize("n_shards", [3, 16])
def test_merged_shards_equal_one_shard_bit_for_bit_on_adversarial_floats(n_shards):
    ids, values = adversarial()
    one = sharded(ids, values, 1, pairs=[("a", "b"), ("a", "c")])
    many = sharded(ids, values, n_shards, pairs=[("a", "b"), ("a", "c")],
                   shuffle=np.random.default_rng(n_shards), pieces=3)
    assert many.same_as(one)
    assert same_summary(summarize(many), summarize(one))


def test_means_and_sd_are_the_exact_values_rounded_once():
    ids, values = adversarial()
    s = summarize(sharded(ids, values, 5, pairs=[("a", "c")]))
    for name, v in values.items():
        kept = v[~np.isnan(v)]
        assert s.columns[name].n == kept.size
        assert same_float(s.columns[name].mean, exact_mean(kept))
        total = exact_sum(kept)
        var = (sum(Fraction(x) ** 2 for x in kept.tolist()) - total**2 / kept.size) / (
            kept.size - 1)
        assert s.columns[name].sd == math.sqrt(float(var))
    # plain float addition of the same column is off by far more than rounding
    c = values["c"]
    assert abs(float(np.sum(c)) / c.size - s.columns["c"].mean) > 1e-3


def test_paired_t_test_equals_exact_formula_and_scipy_on_benign_data():
    rng = np.random.default_rng(4)
    a = rng.random(800)
    b = a + rng.normal(0.02, 0.1, 800)
    b[::9] = np.nan
    ids = np.arange(800)
    s = summarize(sharded(ids, {"a": a, "b": b}, 4, pairs=[("a", "b")]))
    p = s.pairs[("a", "b")]
    kept = ~np.isnan(b)
    d = b[kept] - a[kept]
    ref = sstats.ttest_rel(b[kept], a[kept])
    assert p.n == kept.sum()
    assert math.isclose(p.t_stat, ref.statistic, rel_tol=1e-10)
    assert math.isclose(p.p_t, ref.pvalue, rel_tol=1e-8)
    assert math.isclose(p.effect_size, d.mean() / d.std(ddof=1), rel_tol=1e-10)
    # and exactly the exact formula, rounded as documented
    s1 = exact_sum(d)
    s2 = sum(Fraction(x) ** 2 for x in d.tolist())
    n = d.size
    t2 = s1 * s1 * (n - 1) / (n * s2 - s1 * s1)
    assert p.t_stat == math.sqrt(float(t2))
    assert p.p_t == float(2.0 * special.stdtr(n - 1.0, -p.t_stat))
    assert same_float(p.diff, exact_mean(d))
    assert same_float(p.mean_a, exact_mean(a[kept]))
    assert p.rel_diff == float(s1 / exact_sum(a[kept]))
    pc = paired_comparison(a, b, n_resamples=10)
    assert math.isclose(p.diff, pc.diff, rel_tol=1e-12)


def test_bootstrap_interval_is_the_quantile_of_exact_resampled_means():
    ids = np.array([10, 11, 12, 13, 14, 15, 16, 17])
    v = np.array([0.1, 1e16, 0.3, -1e16, 0.5, 1.0, np.nan, 0.25])
    s = summarize(sharded(ids, {"v": v}, 3, n_resamples=40, seed=5), confidence=0.9)
    w = poisson_weights(user_keys(ids), 40, seed=5).astype(int)
    means = []
    for r in range(40):
        num = sum(int(w[r, u]) * Fraction(v[u]) for u in range(8) if not math.isnan(v[u]))
        den = sum(int(w[r, u]) for u in range(8) if not math.isnan(v[u]))
        means.append(float(num / den) if den else math.nan)
    q = np.nanquantile(np.array(means), [0.05, 0.95], method="linear")
    lo, hi = np.nanmin(v), np.nanmax(v)
    assert s.columns["v"].low == float(np.clip(q[0], lo, hi))
    assert s.columns["v"].high == float(np.clip(q[1], lo, hi))


def test_hand_computed_small_case():
    ids = np.array([1, 2, 3])
    a = np.array([1.0, 2.0, 4.0])
    b = np.array([2.0, 2.0, 7.0])  # d = 1, 0, 3
    s = summarize(sharded(ids, {"a": a, "b": b}, 2, pairs=[("a", "b")], n_resamples=0))
    assert s.columns["a"].mean == 7 / 3 and s.columns["a"].sd == math.sqrt(7 / 3)
    p = s.pairs[("a", "b")]
    assert (p.n, p.mean_a, p.mean_b, p.diff) == (3, 7 / 3, 11 / 3, 4 / 3)
    # sd(d) = sqrt(7/3); t = (4/3) / (sqrt(7/3) / sqrt(3)) = 4 / sqrt(7)
    assert math.isclose(p.t_stat, 4 / math.sqrt(7), rel_tol=1e-15)
    assert math.isclose(p.effect_size, 4 / math.sqrt(21), rel_tol=1e-15)
    assert p.rel_diff == 4 / 7
    assert math.isnan(p.low) and math.isnan(s.columns["a"].high)  # no resamples


def test_edge_cases_follow_the_paired_module():
    ids = np.arange(4)
    base = np.array([0.5, 0.25, 1.0, 0.0])
    values = {"a": base, "same": base.copy(), "up": base + 0.5,
              "none": np.full(4, np.nan), "one": np.array([np.nan, 0.75, np.nan, np.nan])}
    s = summarize(sharded(ids, values, 3, pairs=[("a", "same"), ("a", "up"), ("a", "one")]))
    zero, const, single = s.pairs[("a", "same")], s.pairs[("a", "up")], s.pairs[("a", "one")]
    assert (zero.t_stat, zero.p_t, zero.effect_size, zero.low, zero.high) == (0, 1, 0, 0, 0)
    assert (const.t_stat, const.p_t, const.effect_size) == (math.inf, 0.0, math.inf)
    assert const.low == const.high == 0.5
    assert single.n == 1 and all(math.isnan(x) for x in (single.t_stat, single.p_t))
    none = s.columns["none"]
    assert none.n == 0 and all(math.isnan(x) for x in (none.mean, none.sd, none.low, none.high))
    one = s.columns["one"]
    assert (one.mean, one.low, one.high) == (0.75, 0.75, 0.75) and math.isnan(one.sd)


def test_poisson_interval_is_close_to_the_multinomial_one():
    rng = np.random.default_rng(2)
    v = rng.beta(0.5, 2.0, 3000)
    s = summarize(sharded(np.arange(3000), {"v": v}, 2, n_resamples=600)).columns["v"]
    m = bootstrap_means(v, n_resamples=600, seed=0)
    assert abs((s.high - s.low) / (m.high - m.low) - 1) < 0.15
    assert abs(s.low - m.low) < 0.1 * (m.high - m.low)


def test_counts_merge_and_list_metrics_follow_beyond():
    ids = np.arange(50)
    exposure = np.random.default_rng(0).integers(0, 3, size=(50, 1, 8))
    merged = sharded(ids, {"v": np.ones(50)}, 4, counts=exposure)
    assert np.array_equal(merged.counts["c"], exposure.sum(axis=0))
    x = np.array([[0, 3, 1, 0, 0]])
    out = list_metrics(x, item_counts=[1, 1, 1, 1, 0])  # item 4 is outside the catalogue
    assert out["coverage"].tolist() == [0.5]
    # sorted exposure 0, 0, 1, 3: sum_j (2j - n - 1) x_j / (n sum x) = (1*1 + 3*3) / (4*4)
    assert out["gini"].tolist() == [10 / 16]


def test_save_and_load_round_trip(tmp_path):
    ids, values = adversarial(300)
    part = sharded(ids, values, 1, pairs=[("a", "b")], counts=np.ones((300, 2, 3), int))
    again = load_partial(part.save(tmp_path / "p.npz"))
    assert again.same_as(part) and again.pairs == (("a", "b"),)
    assert stat_row(again, "b - a") == 3
    with pytest.raises(DataError, match="a shard partial"):
        load_partial(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="a shard partial"):
        load_partial(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(DataError, match="KeyError"):
        load_partial(tmp_path / "other.npz")


def test_refusals():
    acc = ShardAccumulator(["a"], n_resamples=3)
    with pytest.raises(DataError, match="finite values or NaN"):
        acc.add([1, 2], {"a": np.array([1.0, np.inf])})
    with pytest.raises(DataError, match="one array per column"):
        acc.add([1], {"b": np.array([1.0])})
    with pytest.raises(DataError, match="pairs"):
        ShardAccumulator(["a"], pairs=[("a", "z")])
    other = ShardAccumulator(["a"], n_resamples=4).partial()
    with pytest.raises(DataError, match="partials\\[1\\]"):
        merge_partials([acc.partial(), other])
    with pytest.raises(DataError, match="at least one"):
        merge_partials([])
    with pytest.raises(DataError, match="confidence"):
        summarize(acc.partial(), confidence=1.0)


values_strategy = st.lists(
    st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300,
                        max_value=1e300), st.sampled_from([1e16, -1e16, 1.0, np.nan])),
    min_size=1, max_size=40)


@settings(max_examples=25, deadline=None)
@given(values_strategy, values_strategy, st.integers(1, 9), st.integers(0, 2**32))
def test_any_sharding_and_order_give_the_same_numbers(xs, ys, n_shards, seed):
    n = min(len(xs), len(ys))
    ids = np.arange(n) * 17
    values = {"x": np.array(xs[:n]), "y": np.array(ys[:n])}
    one = sharded(ids, values, 1, pairs=[("x", "y")], n_resamples=20, seed=seed)
    many = sharded(ids, values, n_shards, pairs=[("x", "y")], n_resamples=20, seed=seed,
                   shuffle=np.random.default_rng(seed), pieces=2)
    assert many.same_as(one)
    assert same_summary(summarize(many), summarize(one))
    for name, v in values.items():
        assert same_float(summarize(one).columns[name].mean, exact_mean(v))


def test_pair_differences_beyond_the_float_range_are_refused():
    acc = ShardAccumulator(["a", "b"], pairs=[("a", "b")], n_resamples=0)
    with pytest.raises(DataError, match="finite differences"):
        acc.add([1], {"a": np.array([-1.7e308]), "b": np.array([1.7e308])})
    wide = ShardAccumulator(["a"], n_resamples=0)
    wide.add([1, 2], {"a": np.array([-1.7e308, 1.7e308])})
    assert summarize(wide.partial()).columns["a"].sd == math.inf  # sqrt(2) * 1.7e308
