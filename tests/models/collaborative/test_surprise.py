"""Surprise wrapper: batch scores and rankings agree with Surprise's own per-pair predict."""

import numpy as np
import pandas as pd
import pytest

from bench.config import to_container
from bench.data.interactions import Interactions
from bench.errors import ConfigError
from bench.models.collaborative import surprise as wrap
from bench.models.collaborative.surprise import (
    ALGORITHMS,
    SurpriseRecommender,
    algorithm_defaults,
    build_trainset,
)
from bench.targets import build
from tests.helpers import CONFIG_DIR, compose_config, shared_data_dir

SURPRISE_CONFIGS = sorted((CONFIG_DIR / "model").glob("cf_surprise_*.yaml"))


def ratings_data(n_users=50, n_items=40, per_user=15, seed=0, extra_rows=()) -> Interactions:
    """Low-rank ratings 1-5 with noise; ``extra_rows`` appended (user, item, rating)."""
    rng = np.random.default_rng(seed)
    pu, qi = rng.normal(size=(n_users, 2)), rng.normal(size=(n_items, 2))
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, size=per_user, replace=False):
            r = np.clip(np.round(3 + pu[u] @ qi[i] + rng.normal(scale=0.5)), 1, 5)
            rows.append((u, int(i), float(r)))
    rows.extend(extra_rows)
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    return Interactions.from_frame(frame, rating_scale=(1.0, 5.0))


def with_cold(x: Interactions) -> tuple[Interactions, int, int]:
    """``x`` plus user 999 and item 999 that exist only outside the returned train part."""
    frame = pd.concat(
        [x.to_frame(), pd.DataFrame({"user_id": [999, 0], "item_id": [0, 999], "rating": 4.0})],
        ignore_index=True,
    )
    full = Interactions.from_frame(frame, rating_scale=(1.0, 5.0))
    u, i = full.user_ids.get_loc(999), full.item_ids.get_loc(999)
    train = full.take((full.users != u) & (full.items != i))
    return train, u, i


def reference_scores(model: SurpriseRecommender, users) -> np.ndarray:
    """Per-pair ``algo.predict(u, i, clip=False)`` over the whole vocabulary, NaN where
    the item is unknown or Surprise reports the prediction impossible."""
    out = np.full((len(users), len(model.item_inner_)), np.nan)
    for r, u in enumerate(users):
        for i in np.flatnonzero(model.item_inner_ >= 0):
            p = model.algo_.predict(int(u), int(i), clip=False)
            out[r, i] = np.nan if p.details["was_impossible"] else p.est
    return out


def reference_top(model: SurpriseRecommender, users, k=10) -> np.ndarray:
    """Top-k from per-pair predictions: seen items out, float32 scores (as the base ranks),
    higher score first, ties to the lower item code."""
    scores = reference_scores(model, users).astype(np.float32)
    out = np.full((len(users), k), -1)
    for r, u in enumerate(users):
        row = scores[r].copy()
        row[model.seen_[u].indices] = np.nan
        ok = np.flatnonzero(np.isfinite(row))
        order = ok[np.lexsort((ok, -row[ok]))][:k]
        out[r, : order.size] = order
    return out


@pytest.fixture(scope="module")
def small():
    return ratings_data()


# ---------------------------------------------------------------------- trainset
def test_trainset_matches_surprise_dataset_and_keeps_row_order(small):
    from surprise import SVD, Dataset, Reader

    frame = pd.DataFrame({"u": small.users, "i": small.items, "r": small.ratings})
    theirs = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
    ours, user_codes, item_codes = build_trainset(small)
    assert ours._raw2inner_id_users == theirs._raw2inner_id_users
    assert ours._raw2inner_id_items == theirs._raw2inner_id_items
    assert dict(ours.ur) == dict(theirs.ur) and dict(ours.ir) == dict(theirs.ir)
    assert ours.rating_scale == (1.0, 5.0) and ours.n_ratings == len(small)
    # inner ids in order of first appearance; arrays map them back to codes
    assert user_codes[0] == small.users[0] and item_codes[0] == small.items[0]
    a = SVD(n_factors=5, random_state=2).fit(theirs)
    b = SurpriseRecommender(params={"n_factors": 5}, random_state=2).fit(small)
    assert np.array_equal(a.pu, b.algo_.pu) and np.array_equal(a.qi, b.algo_.qi)


def test_rating_scale_falls_back_to_observed_range():
    frame = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 1], "rating": [2.0, 4.5, 3]})
    ts, _, _ = build_trainset(Interactions.from_frame(frame))
    assert ts.rating_scale == (2.0, 4.5)


# ---------------------------------------------------------------------- ranking == predict
def test_svd_top10_equals_per_pair_predict_on_synthetic(small):
    model = SurpriseRecommender(params={"n_factors": 8}, random_state=0).fit(small)
    users = np.arange(0, 50, 3)
    top = model.recommend_codes(users, 10, batch_size=4).items
    assert np.array_equal(top, reference_top(model, users))
    s = model._score(users, None)
    assert np.allclose(s, reference_scores(model, users), rtol=0, atol=1e-5, equal_nan=True)


@pytest.mark.integration
def test_svd_top10_equals_per_pair_predict_on_ml100k():
    root = shared_data_dir()
    if root is None or not (root / "ml-100k" / "u.data").is_file():
        pytest.skip("needs BENCH_DATA_DIR with ml-100k")
    from bench.data.movielens import load_ml_100k

    x = load_ml_100k(path=root / "ml-100k").interactions
    model = SurpriseRecommender(random_state=0).fit(x)  # Surprise's default SVD
    users = np.random.default_rng(0).choice(x.n_users, 15, replace=False)
    assert np.array_equal(model.recommend_codes(users, 10).items, reference_top(model, users))


@pytest.mark.parametrize(
    ("algorithm", "params"),
    [
        ("SVDpp", {"n_factors": 4, "n_epochs": 5}),
        ("NMF", {"n_factors": 4}),
        ("NMF", {"n_factors": 4, "biased": True}),
        ("SVD", {"n_factors": 4, "biased": False}),
        ("BaselineOnly", {}),
        ("BaselineOnly", {"bsl_options": {"method": "sgd"}}),
    ],
)
def test_learned_array_scores_equal_predict(small, algorithm, params):
    model = SurpriseRecommender(algorithm=algorithm, params=params, random_state=1).fit(small)
    users = np.arange(0, 50, 5)
    ref = reference_scores(model, users)
    assert np.isfinite(ref[:, model.item_inner_ >= 0]).all()
    assert np.allclose(model.score_inner(model.user_inner_[users]), ref[:, model.item_codes_])
    assert np.array_equal(model.recommend_codes(users, 10).items, reference_top(model, users))


def test_svdpp_implicit_term_is_in_the_scores(small):
    # with y_j trained, dropping the implicit term changes the scores
    model = SurpriseRecommender(algorithm="SVDpp", params={"n_factors": 4}, random_state=1)
    model.fit(small)
    algo = model.algo_
    plain = model.global_mean_ + algo.bu[:, None] + algo.bi[None, :] + algo.pu @ algo.qi.T
    assert not np.allclose(model.score_inner(np.arange(algo.trainset.n_users)), plain)


# ---------------------------------------------------------------------- rating prediction
def test_baseline_only_hand_computed():
    # mu = 3.5; one ALS sweep without regularisation:
    # b_x = ((5-3.5) + (4-3.5))/2 = 1, b_y = 3-3.5 = -0.5, b_z = 2-3.5 = -1.5
    # b_A = ((5-3.5-1) + (3-3.5+0.5))/2 = 0.25, b_B = ((4-3.5-1) + (2-3.5+1.5))/2 = -0.25
    frame = pd.DataFrame(
        {
            "user_id": ["A", "A", "B", "B", "C"],
            "item_id": ["x", "y", "x", "z", "w"],
            "rating": [5.0, 3.0, 4.0, 2.0, 1.0],
        }
    )
    full = Interactions.from_frame(frame, rating_scale=(1.0, 5.0))
    train = full.take(np.arange(4))  # user C and item w only outside training
    bsl = {"method": "als", "n_epochs": 1, "reg_u": 0, "reg_i": 0}
    model = SurpriseRecommender(algorithm="BaselineOnly", params={"bsl_options": bsl})
    model.fit(train)
    code = {v: n for n, v in enumerate(full.user_ids)}, {v: n for n, v in enumerate(full.item_ids)}
    users = np.array([code[0]["A"], code[0]["B"], code[0]["C"], code[0]["A"]])
    items = np.array([code[1]["z"], code[1]["y"], code[1]["x"], code[1]["w"]])
    pred = model.predict_codes(users, items)
    assert np.allclose(pred[:2], [3.5 + 0.25 - 1.5, 3.5 - 0.25 - 0.5])
    assert np.isnan(pred[2:]).all()  # Surprise would say 3.5 + b_x and 3.5 + b_A
    # Surprise's raw ids are the model's codes (C has none: an unknown raw id)
    x_raw = int(model.vocabulary_.items_in([code[1]["x"]])[0])
    assert model.algo_.predict("C", x_raw).est == pytest.approx(4.5)
    s, _ = model.score_codes(np.array([code[0]["A"], code[0]["C"], -1]), None)
    assert np.allclose(s[0, [code[1]["x"], code[1]["y"], code[1]["z"]]], [4.75, 3.25, 2.25])
    assert np.isnan(s[0, code[1]["w"]]) and np.isnan(s[1:]).all()


@pytest.mark.parametrize("clip", [True, False])
def test_predict_codes_equals_surprise_predict_and_nan_when_unknown(small, clip):
    train, cold_user, cold_item = with_cold(small)
    params = {"n_factors": 6, "init_std_dev": 1.0}
    model = SurpriseRecommender(params=params, random_state=3, clip_predictions=clip).fit(train)
    rng = np.random.default_rng(1)
    users = rng.integers(0, train.n_users, 300)
    items = rng.integers(0, train.n_items, 300)
    users[:3], items[3:6] = cold_user, cold_item
    pred = model.predict_codes(users, items)
    # Surprise's raw ids are the model's codes; a code outside its vocabulary is unknown
    raw_u, raw_i = model.vocabulary_.users_in(users), model.vocabulary_.items_in(items)
    pairs = zip(raw_u.tolist(), raw_i.tolist(), strict=True)
    ref = np.array([model.algo_.predict(u, i, clip=clip).est for u, i in pairs])
    unknown = (users == cold_user) | (items == cold_item)
    assert np.isnan(pred[unknown]).all() and np.isfinite(pred[~unknown]).all()
    assert np.allclose(pred[~unknown], ref[~unknown], rtol=0, atol=1e-12)
    if not clip:
        assert (pred[~unknown] > 5).any() or (pred[~unknown] < 1).any()  # large init: outside
    s, _ = model.score_codes(np.array([cold_user, 0, -1]), None)
    assert np.isnan(s[[0, 2]]).all() and np.isnan(s[1, cold_item])
    assert np.isfinite(np.delete(s[1], cold_item)).all()


def test_knn_fallback_nan_where_impossible_and_equal_to_predict(small, monkeypatch):
    monkeypatch.setattr(wrap, "_score_batch_function", lambda: None)
    params = {"k": 40, "min_k": 19, "sim_options": {"name": "cosine"}}
    model = SurpriseRecommender(algorithm="KNNBasic", params=params).fit(small)
    users = np.arange(0, 50, 7)
    ref = reference_scores(model, users)
    s = model._score(users, None)
    assert np.isnan(ref).any() and np.isfinite(ref).any()
    assert np.allclose(s, ref, rtol=0, atol=1e-5, equal_nan=True)
    pred = model.predict_codes(np.repeat(users, 40), np.tile(np.arange(40), len(users)))
    assert np.allclose(pred, np.clip(ref.ravel(), 1, 5), equal_nan=True)


def test_neighbour_algorithms_dispatch_to_score_batch(small, monkeypatch):
    calls = []

    def fake(algo, user_inner):
        calls.append(np.array(user_inner))
        n = algo.trainset.n_items
        return user_inner[:, None] * 1000.0 + np.arange(n)[None, :]

    monkeypatch.setattr(wrap, "_score_batch_function", lambda: fake)
    model = SurpriseRecommender(algorithm="SlopeOne").fit(small)
    users = np.array([4, -1, 9])
    s = model._score(users, None)
    inner = model.user_inner_[[4, 9]]
    assert [list(c) for c in calls] == [list(inner)]
    # columns come back in item-code order through the inner -> code array
    assert np.array_equal(s[0, model.item_codes_], inner[0] * 1000.0 + np.arange(40))
    assert np.isnan(s[1]).all()
    pred = model.predict_codes(np.array([9, 4]), model.item_codes_[[2, 5]])
    assert np.allclose(pred, [5.0, 5.0])  # clipped to the scale


# ---------------------------------------------------------------------- determinism
def test_same_random_state_same_output(small):
    def run(seed, bs):
        m = SurpriseRecommender(algorithm="SVD", params={"n_factors": 5}, random_state=seed)
        return m.fit(small).recommend_codes(np.arange(50), 10, batch_size=bs)

    a, b, c = run(4, 7), run(4, 50), run(5, 50)
    assert np.array_equal(a.items, b.items) and np.array_equal(a.scores, b.scores)
    assert not np.array_equal(a.scores, c.scores)


def test_normal_predictor_seeded_batch_independent_and_distributed(small):
    model = SurpriseRecommender(algorithm="NormalPredictor", random_state=3).fit(small)
    users = np.arange(50)
    whole = model._score(users, None)
    parts = np.vstack([model._score(users[i : i + 7], None) for i in range(0, 50, 7)])
    assert np.array_equal(whole, parts)
    again = SurpriseRecommender(algorithm="NormalPredictor", random_state=3).fit(small)
    other = SurpriseRecommender(algorithm="NormalPredictor", random_state=4).fit(small)
    assert np.array_equal(whole, again._score(users, None))
    assert not np.array_equal(whole, other._score(users, None))
    known = whole[:, model.item_inner_ >= 0]
    mu, sigma = small.ratings.mean(), small.ratings.std()
    assert abs(known.mean() - mu) < 0.05 and abs(known.std() - sigma) < 0.05
    pred = model.predict_codes(np.array([2, 2]), np.array([0, 1]))
    assert np.allclose(pred, np.clip(whole[2, :2], 1, 5))


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"algorithm": "SVDD"}, "algorithm"),
        ({"params": {"n_factor": 3}}, "n_factor"),
        ({"params": {"n_factors": 0}}, "positive integer"),
        ({"params": {"lr_all": "fast"}}, "lr_all"),
        ({"params": {"biased": 1}}, "biased"),
        ({"params": {"random_state": 1}}, "top-level random_state"),
        ({"params": {"verbose": True}}, "verbose"),
        ({"params": [1]}, "mapping"),
        ({"random_state": "x"}, "random_state"),
        ({"algorithm": "KNNBasic", "params": {"sim_options": {"name": "jaccard"}}}, "jaccard"),
        ({"algorithm": "KNNBasic", "params": {"sim_options": {"userbased": True}}}, "unknown"),
        ({"algorithm": "BaselineOnly", "params": {"bsl_options": {"method": "x"}}}, "'als'"),
        ({"algorithm": "SlopeOne", "params": {"k": 3}}, "unknown parameter"),
    ],
)
def test_bad_config_raises_config_error(small, kwargs, words):
    with pytest.raises(ConfigError, match="SurpriseRecommender") as err:
        SurpriseRecommender(**kwargs).fit(small)
    assert words in str(err.value)


def test_implicit_data_is_a_config_error():
    x = Interactions.from_frame(pd.DataFrame({"user_id": [1, 2], "item_id": [1, 1]}))
    with pytest.raises(ConfigError, match="ratings"):
        SurpriseRecommender().fit(x)


def test_params_are_not_mutated(small):
    params = {"sim_options": {"name": "cosine"}}
    SurpriseRecommender(algorithm="KNNBasic", params=params).fit(small)
    assert params == {"sim_options": {"name": "cosine"}}  # Surprise adds user_based in place


# ---------------------------------------------------------------------- configs
# Surprise's effective option defaults (the constructors default them to {}).
OPTION_DEFAULTS = {
    "sim_options": {"name": "msd", "user_based": True, "min_support": 1, "shrinkage": 100},
    "bsl_options": {"method": "als", "n_epochs": 10, "reg_u": 15, "reg_i": 10},
}


def compose_model(name: str, seed: int = 13) -> dict:
    cfg = compose_config([f"+model={name}", f"+seed={seed}"], config_name=None)
    return to_container(cfg)["models"][name]


def test_one_config_per_algorithm():
    built = {compose_model(p.stem)["algorithm"] for p in SURPRISE_CONFIGS}
    assert built == set(ALGORITHMS)


@pytest.mark.parametrize("path", SURPRISE_CONFIGS, ids=[p.stem for p in SURPRISE_CONFIGS])
def test_config_spells_out_surprise_defaults_and_fits(path, small):
    raw = compose_model(path.stem)
    model = build(raw, f"models.{path.stem}")
    defaults = algorithm_defaults(model.algorithm)
    assert set(model.params) == set(defaults)
    for key, value in model.params.items():
        assert value == (OPTION_DEFAULTS[key] if key in OPTION_DEFAULTS else defaults[key]), key
    if model.algorithm in (*wrap.SEEDED, "NormalPredictor"):
        assert model.random_state == 13
    top = model.fit(small).recommend_codes(np.arange(5), 5)
    assert (top.items >= 0).all()
    assert len(model.predict_codes(small.users[:5], small.items[:5])) == 5
