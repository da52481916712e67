"""Beyond-accuracy metrics: hand-computed cases (arithmetic in comments), edge cases,
textbook properties, and a cross-check against slow per-user / per-pair references."""

import math
from itertools import combinations

import numpy as np
import pytest
import scipy.sparse as sp

from bench.errors import ConfigError, EvaluationError
from bench.metrics import beyond
from bench.metrics.beyond import (
    BeyondEvaluation,
    arp_at_k,
    beyond_accuracy,
    coverage_at_k,
    gini_at_k,
    ild_at_k,
    novelty_at_k,
    personalisation_at_k,
)

SQRT2 = math.sqrt(2.0)

# ------------------------------------------------------------------ a small world
# 5 items, training counts [4, 2, 1, 0, 1], N = 4 training users.
# shares p = max(count, 1) / 4 = [1, .5, .25, .25, .25]   (item 3 unseen -> treated as 1 user)
# self-information -log2 p     = [0, 1, 2, 2, 2]
COUNTS = np.array([4, 2, 1, 0, 1], dtype=np.float32)
N_TRAIN = 4
RECS = np.array(
    [
        [0, 1, -1],  # user 0: items 0, 1 (short list)
        [2, 3, 4],  # user 1: items 2, 3 (unseen in training), 4
        [-1, -1, -1],  # user 2: empty list
    ]
)


def test_novelty_hand_computed():
    # @3: u0 (0 + 1) / 2 = 0.5 ; u1 (2 + 2 + 2) / 3 = 2 ; u2 empty -> NaN
    np.testing.assert_allclose(novelty_at_k(RECS, COUNTS, N_TRAIN, 3), [0.5, 2.0, np.nan])
    # @1: u0 item 0 -> 0 ; u1 item 2 -> 2
    np.testing.assert_allclose(novelty_at_k(RECS, COUNTS, N_TRAIN, 1), [0.0, 2.0, np.nan])


def test_arp_hand_computed():
    # @3: u0 (4 + 2) / 2 = 3 ; u1 (1 + 0 + 1) / 3 = 2/3 ; u2 NaN
    np.testing.assert_allclose(arp_at_k(RECS, COUNTS, 3), [3.0, 2 / 3, np.nan])
    # @2: u0 3 ; u1 (1 + 0) / 2 = 0.5
    np.testing.assert_allclose(arp_at_k(RECS, COUNTS, 2), [3.0, 0.5, np.nan])


def test_coverage_hand_computed():
    # catalogue C = items with count > 0 = {0, 1, 2, 4}, |C| = 4
    # @3: recommended {0, 1, 2, 3, 4}; item 3 is outside C -> {0, 1, 2, 4} -> 4/4
    assert coverage_at_k(RECS, COUNTS, 3) == pytest.approx(1.0)
    # @1: recommended {0, 2} -> 2/4
    assert coverage_at_k(RECS, COUNTS, 1) == pytest.approx(0.5)


def test_gini_hand_computed():
    # @3: exposure over C = {0, 1, 2, 4} is [1, 1, 1, 1] (item 3 ignored) -> equal -> 0
    assert gini_at_k(RECS, COUNTS, 3) == pytest.approx(0.0)
    # @1: exposure [1, 0, 1, 0] -> sorted [0, 0, 1, 1], n = 4, sum = 2,
    # coefficients 2j - n - 1 = [-3, -1, 1, 3] -> (1 + 3) / (4 * 2) = 0.5
    assert gini_at_k(RECS, COUNTS, 1) == pytest.approx(0.5)
    # one item takes all exposure: lists {0} {0} {0} over |C| = 4 -> (n - 1) / n = 3/4
    assert gini_at_k(np.array([[0], [0], [0]]), COUNTS, 1) == pytest.approx(0.75)
    # exposure [2, 1, 0, 0] (items 0, 1 from lists {0,1}, {0}) sorted [0, 0, 1, 2], sum 3:
    # (-3*0 - 1*0 + 1*1 + 3*2) / (4 * 3) = 7/12
    assert gini_at_k(np.array([[0, 1], [0, -1]]), COUNTS, 2) == pytest.approx(7 / 12)


def test_personalisation_hand_computed():
    # L_a = {0, 1}, L_b = {1, 2}, L_c = {0, 1, 2}; user d has an empty list (left out)
    # cos(a, b) = 1 / sqrt(2 * 2) = 0.5 ; cos(a, c) = cos(b, c) = 2 / sqrt(2 * 3)
    # mean = (0.5 + 4 / sqrt(6)) / 3 ; personalisation = 1 - mean = 0.28900...
    recs = np.array([[0, 1, -1], [2, 1, -1], [0, 2, 1], [-1, -1, -1]])
    expected = 1.0 - (0.5 + 4.0 / math.sqrt(6.0)) / 3.0
    assert personalisation_at_k(recs, 3) == pytest.approx(expected)
    # @1: lists {0}, {2}, {0}: cos = 0, 1, 0 -> mean 1/3 -> 2/3
    assert personalisation_at_k(recs, 1) == pytest.approx(2 / 3)


# ILD features: item 4 points the same way as item 0; item 2 has no feature at all
FEATURES = sp.csr_matrix(
    np.array(
        [
            [1.0, 0.0, 0.0],  # item 0
            [1.0, 1.0, 0.0],  # item 1
            [0.0, 0.0, 0.0],  # item 2 (all zero -> left out of the pairs)
            [0.0, 1.0, 0.0],  # item 3
            [2.0, 0.0, 0.0],  # item 4
        ]
    )
)
ILD_RECS = np.array([[0, 1, 2, 3], [0, 4, -1, -1], [2, 0, -1, -1], [1, -1, 3, -1]])


def test_ild_hand_computed():
    # u0 @4: usable {0, 1, 3}; cos(0,1) = 1/sqrt2, cos(0,3) = 0, cos(1,3) = 1/sqrt2
    #   distances 1 - 1/sqrt2, 1, 1 - 1/sqrt2 -> mean (3 - sqrt2) / 3 = 0.52860...
    # u1: items 0 and 4 are parallel -> 1 - 1 = 0
    # u2: item 2 has no features -> one usable item -> NaN
    # u3: items 1, 3 (padding between them is skipped) -> 1 - 1/sqrt2
    expected = [(3 - SQRT2) / 3, 0.0, np.nan, 1 - 1 / SQRT2]
    np.testing.assert_allclose(ild_at_k(ILD_RECS, FEATURES, 4), expected, atol=1e-12)
    # @2: u0 {0, 1} -> 1 - 1/sqrt2 ; u1 0 ; u2 NaN ; u3 {1} -> NaN
    expected = [1 - 1 / SQRT2, 0.0, np.nan, np.nan]
    np.testing.assert_allclose(ild_at_k(ILD_RECS, FEATURES, 2), expected, atol=1e-12)
    # @1: one item -> no pair -> NaN everywhere
    assert np.isnan(ild_at_k(ILD_RECS, FEATURES, 1)).all()


def test_ild_dense_features_and_signed_features():
    # a dense array is accepted and gives the same values
    np.testing.assert_allclose(
        ild_at_k(ILD_RECS, FEATURES.toarray(), 4), ild_at_k(ILD_RECS, FEATURES, 4), atol=1e-12
    )
    # opposite vectors: cos = -1 -> distance 2
    signed = np.array([[1.0, 0.0], [-3.0, 0.0]])
    np.testing.assert_allclose(ild_at_k(np.array([[0, 1]]), signed, 2), [2.0])


# ------------------------------------------------------------------ edge cases
def test_k_larger_than_the_lists_reads_every_column():
    for k in (3, 10):
        np.testing.assert_allclose(novelty_at_k(RECS, COUNTS, N_TRAIN, k), [0.5, 2.0, np.nan])
        np.testing.assert_allclose(arp_at_k(RECS, COUNTS, k), [3.0, 2 / 3, np.nan])
        assert coverage_at_k(RECS, COUNTS, k) == pytest.approx(1.0)


def test_single_user_and_all_empty_lists():
    one = np.array([[0, 1]])
    # a single user: per-user values defined, personalisation has no pair -> NaN
    np.testing.assert_allclose(novelty_at_k(one, COUNTS, N_TRAIN, 2), [0.5])
    assert math.isnan(personalisation_at_k(one, 2))
    # no recommendation at all: coverage 0, Gini and personalisation undefined
    empty = np.full((3, 2), -1)
    assert coverage_at_k(empty, COUNTS, 2) == 0.0
    assert math.isnan(gini_at_k(empty, COUNTS, 2))
    assert math.isnan(personalisation_at_k(empty, 2))
    assert np.isnan(arp_at_k(empty, COUNTS, 2)).all()
    # zero users
    none = np.zeros((0, 2), dtype=np.int64)
    assert novelty_at_k(none, COUNTS, N_TRAIN, 2).shape == (0,)
    assert math.isnan(gini_at_k(none, COUNTS, 2))


def test_only_unseen_items_recommended():
    # item 3 is outside the catalogue: no catalogue exposure -> coverage 0, Gini NaN;
    # its novelty is that of an item seen by one user: -log2(1/4) = 2
    recs = np.array([[3], [3]])
    assert coverage_at_k(recs, COUNTS, 1) == 0.0
    assert math.isnan(gini_at_k(recs, COUNTS, 1))
    np.testing.assert_allclose(novelty_at_k(recs, COUNTS, N_TRAIN, 1), [2.0, 2.0])


def test_empty_catalogue_gives_nan_coverage():
    assert math.isnan(coverage_at_k(np.array([[0]]), np.zeros(2), 1))


# ------------------------------------------------------------------ textbook properties
def test_personalisation_identical_and_disjoint_lists():
    same = np.tile([3, 1, 4], (5, 1))
    assert personalisation_at_k(same, 3) == pytest.approx(0.0, abs=1e-12)
    disjoint = np.arange(12).reshape(4, 3)
    assert personalisation_at_k(disjoint, 3) == pytest.approx(1.0)


def test_gini_uniform_and_coverage_full():
    # 6 catalogue items, each recommended exactly twice -> Gini 0, coverage 1
    counts = np.ones(6)
    recs = np.array([[0, 1, 2], [3, 4, 5], [5, 0, 1], [2, 3, 4]])
    assert gini_at_k(recs, counts, 3) == pytest.approx(0.0, abs=1e-12)
    assert coverage_at_k(recs, counts, 3) == pytest.approx(1.0)


def test_novelty_bounds():
    # most popular possible item (count = N) -> 0 bits; unseen or count 1 -> log2 N bits
    counts = np.array([8, 1, 0])
    np.testing.assert_allclose(novelty_at_k(np.array([[0], [1], [2]]), counts, 8, 1), [0, 3, 3])


# ------------------------------------------------------------------ driver
def test_driver_keys_values_and_order():
    ev = beyond_accuracy(
        ILD_RECS, (1, 4), item_counts=COUNTS, n_train_users=N_TRAIN, item_features=FEATURES
    )
    assert isinstance(ev, BeyondEvaluation)
    assert list(ev.per_user) == ["novelty@1", "novelty@4", "arp@1", "arp@4", "ild@1", "ild@4"]
    assert list(ev.aggregate) == [
        "coverage@1",
        "coverage@4",
        "gini@1",
        "gini@4",
        "personalisation@1",
        "personalisation@4",
    ]
    for k in (1, 4):
        np.testing.assert_allclose(
            ev.per_user[f"novelty@{k}"], novelty_at_k(ILD_RECS, COUNTS, N_TRAIN, k)
        )
        np.testing.assert_allclose(ev.per_user[f"arp@{k}"], arp_at_k(ILD_RECS, COUNTS, k))
        np.testing.assert_allclose(ev.per_user[f"ild@{k}"], ild_at_k(ILD_RECS, FEATURES, k))
        assert ev.aggregate[f"coverage@{k}"] == coverage_at_k(ILD_RECS, COUNTS, k)
        assert ev.aggregate[f"gini@{k}"] == pytest.approx(gini_at_k(ILD_RECS, COUNTS, k))
        assert ev.aggregate[f"personalisation@{k}"] == pytest.approx(
            personalisation_at_k(ILD_RECS, k)
        )
    # @4: item sets {0,1,2,3} {0,4} {0,2} {1,3} cover C = {0,1,2,4} -> 1.0
    assert ev.aggregate["coverage@4"] == pytest.approx(1.0)
    # @1: lists {0} {0} {2} {1} -> exposure over C [2, 1, 1, 0] -> sorted [0, 1, 1, 2], sum 4:
    # (-3*0 - 1*1 + 1*1 + 3*2) / (4 * 4) = 6/16
    assert ev.aggregate["gini@1"] == pytest.approx(6 / 16)


def test_driver_without_features_has_no_ild_and_mean_skips_nan():
    ev = beyond_accuracy(RECS, (3,), item_counts=COUNTS, n_train_users=N_TRAIN)
    assert list(ev.per_user) == ["novelty@3", "arp@3"]
    # novelty [0.5, 2, NaN] -> mean over defined users (0.5 + 2) / 2 = 1.25
    assert ev.mean() == pytest.approx({"novelty@3": 1.25, "arp@3": (3 + 2 / 3) / 2})
    assert ev.n_undefined() == {"novelty@3": 1, "arp@3": 1}
    all_empty = beyond_accuracy(np.full((2, 1), -1), (1,), item_counts=COUNTS, n_train_users=4)
    assert math.isnan(all_empty.mean()["novelty@1"])


def test_blocks_give_the_same_result(monkeypatch):
    recs, counts, n_train, feats = _random_world(np.random.default_rng(3), n_users=50)
    kw = {"item_counts": counts, "n_train_users": n_train, "item_features": feats}
    whole = beyond_accuracy(recs, (2, 5, 12), **kw)
    monkeypatch.setattr(beyond, "_BLOCK_ROWS", 7)
    blocked = beyond_accuracy(recs, (2, 5, 12), **kw)
    for key, values in whole.per_user.items():
        np.testing.assert_allclose(blocked.per_user[key], values, rtol=1e-12, atol=1e-12)
    for key, value in whole.aggregate.items():
        assert blocked.aggregate[key] == pytest.approx(value, rel=1e-12, abs=1e-12)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("recs", "match"),
    [
        (np.array([0, 1]), "2-D integer array"),
        (np.array([[0.0, 1.0]]), "2-D integer array"),
        (np.array([[0, 5]]), r"below 5 .*from 0 to 5"),
        (np.array([[0, -2]]), r"from -2 to 0"),
        (np.array([[0, 1], [2, 2]]), r"repeated items .*row 1 repeats item code\(s\) \[2\]"),
    ],
)
def test_bad_recs(recs, match):
    with pytest.raises(EvaluationError, match=match):
        beyond_accuracy(recs, (1, 2), item_counts=COUNTS, n_train_users=N_TRAIN)


def test_padding_may_repeat():
    np.testing.assert_allclose(arp_at_k(np.array([[-1, 0, -1, -1]]), COUNTS, 4), [4.0])


@pytest.mark.parametrize(
    ("counts", "n_train", "match"),
    [
        (np.array([1.0, -1.0, 0, 0, 0]), 4, "finite counts >= 0, got 1"),
        (np.array([1.0, np.nan, 0, 0, 0]), 4, "finite counts >= 0"),
        (np.ones((5, 1)), 4, "1-D array"),
        (COUNTS, 0, "n_train_users: expected a positive integer"),
        (COUNTS, True, "n_train_users: expected a positive integer"),
        (COUNTS, 3, "at most n_train_users = 3 .*got a count of 4"),
    ],
)
def test_bad_counts(counts, n_train, match):
    with pytest.raises(EvaluationError, match=match):
        beyond_accuracy(RECS, (1,), item_counts=counts, n_train_users=n_train)


def test_bad_features():
    with pytest.raises(EvaluationError, match=r"expected 5 rows .*got 4"):
        beyond_accuracy(RECS, (1,), item_counts=COUNTS, n_train_users=4, item_features=FEATURES[:4])
    bad = FEATURES.copy()
    bad.data[0] = np.inf
    with pytest.raises(EvaluationError, match="finite values, got 1"):
        ild_at_k(RECS, bad, 2)
    with pytest.raises(EvaluationError, match=r"2-D scipy\.sparse matrix or array"):
        ild_at_k(RECS, np.ones(5), 2)


def test_bad_cutoffs():
    kw = {"item_counts": COUNTS, "n_train_users": N_TRAIN}
    with pytest.raises(ConfigError, match="strictly ascending positive integers"):
        beyond_accuracy(RECS, (2, 1), **kw)
    with pytest.raises(ConfigError, match=r"values <= 3 .*got \[1, 4\]"):
        beyond_accuracy(RECS, (1, 4), **kw)
    for k in (0, -1, True, 2.0):
        with pytest.raises(ConfigError, match="k: expected a positive integer"):
            arp_at_k(RECS, COUNTS, k)


# ------------------------------------------------------------------ cross-check
def _random_world(rng, n_users=300, n_items=60, width=12, n_features=8):
    """Random lists (distinct items, padding anywhere, some empty), counts with zeros,
    non-negative integer features with some all-zero rows."""
    recs = np.stack([rng.permutation(n_items)[:width] for _ in range(n_users)])
    recs[rng.random((n_users, width)) < 0.15] = -1  # holes anywhere
    recs[rng.random(n_users) < 0.05] = -1  # empty lists
    counts = rng.integers(0, 30, n_items).astype(np.float64)
    counts[rng.random(n_items) < 0.1] = 0
    feats = rng.integers(0, 3, (n_items, n_features)).astype(np.float64)
    feats[rng.random(n_items) < 0.1] = 0.0
    return recs, counts, 40, sp.csr_matrix(feats)


def _lists(recs, k):
    return [[int(i) for i in row[:k] if i >= 0] for row in recs]


def _ref_novelty(recs, counts, n_train, k):
    out = []
    for items in _lists(recs, k):
        vals = [-math.log2(max(counts[i], 1) / n_train) for i in items]
        out.append(sum(vals) / len(vals) if vals else math.nan)
    return np.array(out)


def _ref_arp(recs, counts, k):
    return np.array([np.mean(counts[items]) if items else math.nan for items in _lists(recs, k)])


def _ref_ild(recs, feats, k):
    dense = feats.toarray()
    out = []
    for items in _lists(recs, k):
        usable = [i for i in items if np.any(dense[i] != 0)]
        dists = [
            1 - dense[i] @ dense[j] / (np.linalg.norm(dense[i]) * np.linalg.norm(dense[j]))
            for i, j in combinations(usable, 2)
        ]
        out.append(np.mean(dists) if dists else math.nan)
    return np.array(out)


def _ref_coverage(recs, counts, k):
    catalogue = {i for i in range(len(counts)) if counts[i] > 0}
    shown = {i for items in _lists(recs, k) for i in items}
    return len(shown & catalogue) / len(catalogue)


def _ref_gini(recs, counts, k):
    exposure = dict.fromkeys((i for i in range(len(counts)) if counts[i] > 0), 0)
    for items in _lists(recs, k):
        for i in items:
            if i in exposure:
                exposure[i] += 1
    x = sorted(exposure.values())
    n = len(x)
    return sum((2 * j - n - 1) * xj for j, xj in enumerate(x, start=1)) / (n * sum(x))


def _ref_personalisation(recs, k):
    sets = [set(items) for items in _lists(recs, k) if items]
    sims = [len(a & b) / math.sqrt(len(a) * len(b)) for a, b in combinations(sets, 2)]
    return 1 - float(np.mean(sims))


@pytest.mark.parametrize("n_features", [8, 40])  # dense (<= 32 columns) and sparse ILD paths
def test_cross_check_against_slow_references(n_features):
    rng = np.random.default_rng(n_features)
    recs, counts, n_train, feats = _random_world(rng, n_features=n_features)
    ks = (1, 3, 12)
    ev = beyond_accuracy(recs, ks, item_counts=counts, n_train_users=n_train, item_features=feats)
    for k in ks:
        ref_nov = _ref_novelty(recs, counts, n_train, k)
        np.testing.assert_allclose(ev.per_user[f"novelty@{k}"], ref_nov, rtol=1e-12)
        np.testing.assert_allclose(novelty_at_k(recs, counts, n_train, k), ref_nov, rtol=1e-12)
        ref_arp = _ref_arp(recs, counts, k)
        np.testing.assert_allclose(ev.per_user[f"arp@{k}"], ref_arp, rtol=1e-12)
        np.testing.assert_allclose(arp_at_k(recs, counts, k), ref_arp, rtol=1e-12)
        ref_ild = _ref_ild(recs, feats, k)
        np.testing.assert_allclose(ev.per_user[f"ild@{k}"], ref_ild, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ild_at_k(recs, feats, k), ref_ild, rtol=1e-9, atol=1e-12)
        for name, value, ref in [
            ("coverage", coverage_at_k(recs, counts, k), _ref_coverage(recs, counts, k)),
            ("gini", gini_at_k(recs, counts, k), _ref_gini(recs, counts, k)),
            ("personalisation", personalisation_at_k(recs, k), _ref_personalisation(recs, k)),
        ]:
            np.testing.assert_allclose(ev.aggregate[f"{name}@{k}"], ref, rtol=1e-10)
            np.testing.assert_allclose(value, ref, rtol=1e-10)
    # the random lists really exercise the edge cases
    assert np.isnan(ev.per_user["novelty@12"]).any()
    assert np.isnan(ev.per_user["ild@3"]).sum() > np.isnan(ev.per_user["ild@12"]).sum()
