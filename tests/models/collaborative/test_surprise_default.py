"""Surprise's default for pairs a model cannot score: ``predict_like_surprise`` equals
Surprise's own ``predict`` for every pair, while ``predict_codes`` keeps NaN; and the
evaluation applies it only under ``eval.unscored_ratings: surprise_default``."""

import numpy as np
import pandas as pd
import pytest

from bench.cells import EXCLUDE, SURPRISE_DEFAULT, rating_metrics
from bench.data.interactions import Interactions
from bench.errors import ConfigError
from bench.models.base import Recommender
from bench.models.collaborative.surprise import SurpriseRecommender
from bench.splits.base import Split
from tests.models.collaborative.test_surprise import ratings_data, with_cold

#: (algorithm, params): every algorithm, both branches of ``biased``, and a KNNBasic that
#: finds some known pairs impossible (too few positive neighbours).
CASES = [
    ("SVD", {"n_factors": 4}),
    ("SVD", {"n_factors": 4, "biased": False}),
    ("SVDpp", {"n_factors": 4, "n_epochs": 5}),
    ("NMF", {"n_factors": 4}),
    ("NMF", {"n_factors": 4, "biased": True}),
    ("BaselineOnly", {}),
    ("KNNBasic", {}),
    ("KNNBasic", {"k": 40, "min_k": 19, "sim_options": {"name": "cosine"}}),
    ("KNNWithMeans", {}),
    ("KNNBaseline", {}),
    ("SlopeOne", {}),
    ("CoClustering", {}),
]


@pytest.fixture(scope="module")
def cold():
    """(train, cold user code, cold item code): both absent from train."""
    return with_cold(ratings_data())


def pairs_with_unknowns(train, cold_user, cold_item, n=400, seed=1):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, train.n_users, n)
    items = rng.integers(0, train.n_items, n)
    users[:5], items[5:10] = cold_user, cold_item
    users[10], items[10] = cold_user, cold_item  # both unknown
    return users, items


@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize(("algorithm", "params"), CASES)
def test_predict_like_surprise_equals_surprise_predict_for_every_pair(cold, algorithm, params,
                                                                      clip):
    train, cold_user, cold_item = cold
    model = SurpriseRecommender(algorithm=algorithm, params=params, random_state=0,
                                clip_predictions=clip).fit(train)
    users, items = pairs_with_unknowns(train, cold_user, cold_item)
    ours = model.predict_like_surprise(users, items)
    # Surprise's own answer, default included (raw ids are our codes)
    theirs = [model.algo_.predict(u, i, clip=clip) for u, i in
              zip(users.tolist(), items.tolist(), strict=True)]
    np.testing.assert_allclose(ours, [p.est for p in theirs], rtol=0, atol=1e-12)
    # the model itself still says "cannot score" where Surprise gave its default
    raw = model.predict_codes(users, items)
    unknown = (users == cold_user) | (items == cold_item)
    impossible = np.array([p.details["was_impossible"] for p in theirs])
    assert np.isnan(raw[unknown]).all()
    if params.get("min_k", 1) > 1:  # the case that exercises "not enough neighbours"
        assert (impossible & ~unknown).sum() > 10
    assert np.array_equal(np.isnan(raw), unknown | impossible)
    # precomputed predict_codes gives the same answer and is not modified
    before = raw.copy()
    again = model.predict_like_surprise(users, items, predicted=raw)
    assert np.array_equal(again, ours) and np.array_equal(raw, before, equal_nan=True)


def test_defaults_per_algorithm_are_the_documented_ones(cold):
    # unknown user, known item: mu + b_i for the baseline family, mu for the others
    train, cold_user, _ = cold
    item = np.array([3])
    user = np.array([cold_user])
    expected_bias = {"SVD", "SVDpp", "BaselineOnly", "KNNBaseline"}
    for algorithm in ("SVD", "SVDpp", "BaselineOnly", "KNNBaseline", "NMF", "KNNBasic",
                      "KNNWithMeans", "SlopeOne", "CoClustering"):
        params = {"n_epochs": 2} if algorithm == "SVDpp" else {}
        model = SurpriseRecommender(algorithm=algorithm, params=params,
                                    clip_predictions=False).fit(train)
        mu = model.algo_.trainset.global_mean
        inner = model.algo_.trainset.to_inner_iid(3)
        want = mu + model.algo_.bi[inner] if algorithm in expected_bias else mu
        assert model.predict_like_surprise(user, item)[0] == pytest.approx(want, abs=1e-12)
        assert np.isnan(model.predict_codes(user, item)[0])


def test_normal_predictor_with_sequence_draws_surprises_seeded_stream(cold):
    train, cold_user, cold_item = cold
    model = SurpriseRecommender(algorithm="NormalPredictor", random_state=7).fit(train)
    users, items = pairs_with_unknowns(train, cold_user, cold_item, n=60)
    # these pairs are the second "fold": predictions 100..159 of the run, in this order
    order = np.random.default_rng(2).permutation(60)
    sequence = np.empty(60, dtype=np.int64)
    sequence[order] = 100 + np.arange(60)
    ours = model.predict_like_surprise(users, items, sequence=sequence)
    # Surprise's benchmark: np.random.seed, then one predict per pair, fold after fold
    state = np.random.get_state()  # noqa: NPY002 (Surprise uses the global stream)
    try:
        np.random.seed(7)  # noqa: NPY002
        for _ in range(100):  # the first fold's predictions
            model.algo_.predict(0, 0)
        theirs = np.empty(60)
        for j in order:
            theirs[j] = model.algo_.predict(int(users[j]), int(items[j])).est
    finally:
        np.random.set_state(state)  # noqa: NPY002
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert np.isfinite(ours).all()
    # without a sequence: the hashed draws of predict_codes, now for unknown pairs too
    hashed = model.predict_like_surprise(users, items)
    raw = model.predict_codes(users, items)
    known = np.isfinite(raw)
    assert np.isfinite(hashed).all() and not known.all()
    assert np.array_equal(hashed[known], raw[known])
    with pytest.raises(ConfigError, match="sequence: expected one non-negative integer"):
        model.predict_like_surprise(users, items, sequence=sequence[:-1])


def first_codes_cold(x):
    """``x`` plus user -1 and item -1, the lowest ids (codes 0), absent from the returned
    train part: every other data code is one more than the model's code for it."""
    frame = pd.concat(
        [x.to_frame(), pd.DataFrame({"user_id": [-1, 0], "item_id": [0, -1], "rating": 4.0})],
        ignore_index=True,
    )
    full = Interactions.from_frame(frame, rating_scale=(1.0, 5.0))
    train = full.take((full.users != 0) & (full.items != 0))
    return train, 0, 0


@pytest.mark.parametrize("algorithm", ["SVD", "BaselineOnly", "KNNBaseline", "NormalPredictor"])
def test_defaults_use_the_models_codes_when_they_differ_from_the_datas(algorithm):
    # the data's codes are not the model's (its training vocabulary): the known side's
    # bias must be the one of the same user or item, not of the data code's namesake
    train, cold_user, cold_item = first_codes_cold(ratings_data())
    model = SurpriseRecommender(algorithm=algorithm, clip_predictions=False).fit(train)
    assert not model.vocabulary_.is_identity
    users, items = pairs_with_unknowns(train, cold_user, cold_item, n=200)
    ours = model.predict_like_surprise(users, items)
    vocab = model.vocabulary_
    # raw ids of the Surprise trainset are the model's codes; -1 is unknown to it too
    theirs = np.array([model.algo_.predict(u, i, clip=False).est for u, i in zip(
        vocab.users_in(users).tolist(), vocab.items_in(items).tolist(), strict=True)])
    if algorithm == "NormalPredictor":  # hashed draws: equal to predict_codes where known
        raw = model.predict_codes(users, items)
        known = np.isfinite(raw)
        assert np.array_equal(ours[known], raw[known]) and np.isfinite(ours).all()
        return
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------- the evaluation
def split_of(train, test, sequence=None) -> Split:
    return Split(train=train, test=test, name="t", test_sequence=sequence)


class _Pairs:
    """A test part with what ``rating_metrics`` reads: codes and ratings of the pairs."""

    has_ratings = True

    def __init__(self, users, items, ratings):
        self.users, self.items, self.ratings = users, items, ratings


def test_rating_metrics_exclude_or_surprise_default(cold):
    train, cold_user, cold_item = cold
    model = SurpriseRecommender(algorithm="SVD", params={"n_factors": 4}).fit(train)
    users, items = pairs_with_unknowns(train, cold_user, cold_item, n=200)
    truth = np.random.default_rng(3).integers(1, 6, 200).astype(np.float64)
    split = split_of(train, _Pairs(users, items, truth))
    excl = rating_metrics(model, split, EXCLUDE)
    dflt = rating_metrics(model, split, SURPRISE_DEFAULT)
    est = model.predict_like_surprise(users, items)
    ok = np.isfinite(model.predict_codes(users, items))
    n = int(((users == cold_user) | (items == cold_item)).sum())
    assert (~ok).sum() == n >= 11
    # honest exclusion: the unknown pairs are left out and counted
    assert excl["rating_pairs_unpredicted"] == n and "rating_pairs_defaulted" not in excl
    assert excl["rmse"] == pytest.approx(np.sqrt(np.mean((est[ok] - truth[ok]) ** 2)), abs=1e-12)
    assert excl["mae"] == pytest.approx(np.mean(np.abs(est[ok] - truth[ok])), abs=1e-12)
    # Surprise's default: every pair scored, the defaulted ones counted
    assert dflt["rating_pairs_unpredicted"] == 0 and dflt["rating_pairs_defaulted"] == n
    assert dflt["rmse"] == pytest.approx(np.sqrt(np.mean((est - truth) ** 2)), abs=1e-12)
    assert dflt["mae"] == pytest.approx(np.mean(np.abs(est - truth)), abs=1e-12)
    assert abs(dflt["rmse"] - excl["rmse"]) > 1e-6
    # without unknown pairs both ways give the same numbers
    known = split_of(train, _Pairs(users[ok], items[ok], truth[ok]))
    a, b = rating_metrics(model, known, EXCLUDE), rating_metrics(model, known, SURPRISE_DEFAULT)
    assert a["rmse"] == b["rmse"] and a["mae"] == b["mae"] and b["rating_pairs_defaulted"] == 0


class _RatingStub(Recommender):
    """A rating predictor that is not a Surprise model."""

    family = "collaborative"
    predicts_ratings = True

    def _fit(self, train, item_features, user_features):
        self.mean_ = float(np.mean(train.ratings))

    def _score(self, users, history):
        return np.zeros((len(users), 1), dtype=np.float32)

    def predict_codes(self, users, items):
        return np.full(len(users), self.mean_)


def test_surprise_default_refuses_other_rating_models(cold):
    train = cold[0]
    model = _RatingStub().fit(train)
    split = split_of(train, train)
    assert rating_metrics(model, split, EXCLUDE)["rating_pairs_unpredicted"] == 0
    with pytest.raises(ConfigError, match=r"eval\.unscored_ratings: .*_RatingStub.*exclude"):
        rating_metrics(model, split, SURPRISE_DEFAULT)
