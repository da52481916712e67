"""score_batch reproduces Surprise's own estimate() for every (user, item) pair."""

import numpy as np
import pandas as pd
import pytest

surprise = pytest.importorskip("surprise")

from surprise import (  # noqa: E402
    SVD,
    CoClustering,
    Dataset,
    KNNBaseline,
    KNNBasic,
    KNNWithMeans,
    KNNWithZScore,
    Reader,
    SlopeOne,
)
from surprise.prediction_algorithms.predictions import PredictionImpossible  # noqa: E402

from bench.errors import ConfigError  # noqa: E402
from bench.models.collaborative.surprise_neighbours import score_batch  # noqa: E402


def trainset_of(rows):
    frame = pd.DataFrame(rows, columns=["u", "i", "r"])
    return Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()


@pytest.fixture(scope="module")
def random_trainset():
    """60 users x 40 items, ~30% dense, integer ratings (so similarities tie often)."""
    rng = np.random.default_rng(1)
    rows = [
        (f"u{u}", f"i{i}", float(rng.integers(1, 6)))
        for u in range(60)
        for i in range(40)
        if rng.random() < 0.3
    ]
    order = rng.permutation(len(rows))  # rating lists in a non-sorted order
    return trainset_of([rows[j] for j in order])


def reference(algo) -> np.ndarray:
    """Surprise's estimate for every inner pair; NaN where it raises PredictionImpossible."""
    ts = algo.trainset
    out = np.full((ts.n_users, ts.n_items), np.nan)
    for u in range(ts.n_users):
        for i in range(ts.n_items):
            try:
                est = algo.estimate(u, i)
            except PredictionImpossible:
                continue
            out[u, i] = est[0] if isinstance(est, tuple) else est
    return out


def assert_same(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.dtype == np.float64 and ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours[~np.isnan(ref)], ref[~np.isnan(ref)], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", [KNNBasic, KNNWithMeans, KNNBaseline], ids=lambda c: c.__name__)
@pytest.mark.parametrize("user_based", [True, False], ids=["user", "item"])
@pytest.mark.parametrize(
    ("sim", "k", "min_k"),
    [("msd", 40, 1), ("msd", 3, 1), ("cosine", 5, 2), ("pearson_baseline", 1, 1)],
)
def test_knn_matches_estimate_for_every_pair(random_trainset, cls, user_based, sim, k, min_k):
    algo = cls(k=k, min_k=min_k, sim_options={"name": sim, "user_based": user_based},
               verbose=False).fit(random_trainset)
    ref = reference(algo)
    users = np.random.default_rng(0).permutation(random_trainset.n_users)  # any order
    assert_same(score_batch(algo, users), ref[users])
    assert_same(score_batch(algo, users[:7]), ref[users[:7]])  # any batch


def test_knn_basic_is_nan_where_too_few_neighbours(random_trainset):
    algo = KNNBasic(k=8, min_k=8, sim_options={"name": "pearson"}, verbose=False)
    algo.fit(random_trainset)
    ref = reference(algo)
    assert 0 < np.isnan(ref).sum() < ref.size  # both cases occur
    assert_same(score_batch(algo, np.arange(random_trainset.n_users)), ref)


@pytest.mark.parametrize("cls", [SlopeOne, CoClustering], ids=lambda c: c.__name__)
def test_slope_one_and_coclustering_match_estimate(random_trainset, cls):
    algo = cls(random_state=0) if cls is CoClustering else cls()
    algo.fit(random_trainset)
    assert_same(score_batch(algo, np.arange(random_trainset.n_users)), reference(algo))


@pytest.mark.parametrize(("first", "expected"), [("v1", 1.0), ("v2", 5.0)])
def test_tie_at_kth_neighbour_keeps_the_first_in_the_rating_list(first, expected):
    # u, v1 and v2 agree exactly on items a and b, so msd gives sim(u, v1) = sim(u, v2) =
    # 1 / (0 + 1) = 1. With k = 1 only one of them predicts item c: heapq.nlargest keeps
    # the rater listed first in ir[c] (v1 rated c as 1, v2 as 5).
    second = "v2" if first == "v1" else "v1"
    c_rating = {"v1": 1.0, "v2": 5.0}
    rows = [("u", "a", 3.0), ("u", "b", 4.0)]
    for v in (first, second):
        rows += [(v, "a", 3.0), (v, "b", 4.0), (v, "c", c_rating[v])]
    ts = trainset_of(rows)
    algo = KNNBasic(k=1, sim_options={"name": "msd"}, verbose=False).fit(ts)
    u, c = ts.to_inner_uid("u"), ts.to_inner_iid("c")
    assert algo.estimate(u, c)[0] == expected
    assert score_batch(algo, np.array([u]))[0, c] == expected


def test_knn_with_means_hand_computed():
    # user-based, k large: est(u, c) = mean_u + sum sim (r_vc - mean_v) / sum sim.
    # u: a=2, b=4 (mean 3); v: a=2, b=4, c=5 (mean 11/3); msd(u, v) = 0 -> sim 1;
    # w: a=4, b=2, c=1 (mean 7/3); msd = (4 + 4) / 2 = 4 -> sim 1/5.
    rows = [("u", "a", 2.0), ("u", "b", 4.0), ("v", "a", 2.0), ("v", "b", 4.0),
            ("v", "c", 5.0), ("w", "a", 4.0), ("w", "b", 2.0), ("w", "c", 1.0)]
    ts = trainset_of(rows)
    algo = KNNWithMeans(sim_options={"name": "msd"}, verbose=False).fit(ts)
    expected = 3 + (1 * (5 - 11 / 3) + 0.2 * (1 - 7 / 3)) / 1.2
    u, c = ts.to_inner_uid("u"), ts.to_inner_iid("c")
    assert score_batch(algo, np.array([u]))[0, c] == pytest.approx(expected, abs=1e-12)


def test_slope_one_hand_computed():
    # dev(b, a) = mean over users of r_b - r_a = ((3 - 5) + (2 - 2)) / 2 = -1;
    # w rated only a (4): est(w, b) = mean_w + dev(b, a) = 4 - 1 = 3.
    rows = [("u", "a", 5.0), ("u", "b", 3.0), ("v", "a", 2.0), ("v", "b", 2.0), ("w", "a", 4.0)]
    ts = trainset_of(rows)
    algo = SlopeOne().fit(ts)
    w, b = ts.to_inner_uid("w"), ts.to_inner_iid("b")
    assert score_batch(algo, np.array([w]))[0, b] == pytest.approx(3.0, abs=1e-12)


def test_unsupported_algorithm_is_a_config_error(random_trainset):
    for algo in (SVD(n_epochs=1, random_state=0), KNNWithZScore(verbose=False)):
        algo.fit(random_trainset)
        with pytest.raises(ConfigError, match=r"score_batch: algorithm: expected one of .*got "):
            score_batch(algo, np.array([0]))


def test_ids_outside_the_trainset_are_rejected(random_trainset):
    algo = SlopeOne().fit(random_trainset)
    with pytest.raises(ValueError, match=r"inner ids in \[0, 60\), got 60"):
        score_batch(algo, np.array([0, 60]))
    assert score_batch(algo, np.array([], dtype=np.int64)).shape == (0, random_trainset.n_items)


def test_refit_invalidates_the_cache(random_trainset):
    algo = KNNBaseline(sim_options={"user_based": False}, verbose=False).fit(random_trainset)
    score_batch(algo, np.arange(5))
    other = trainset_of([("x", "p", 1.0), ("x", "q", 5.0), ("y", "p", 2.0), ("y", "q", 4.0)])
    algo.fit(other)
    assert_same(score_batch(algo, np.arange(2)), reference(algo))
