"""The Surprise benchmark protocol on ml-100k: our folds and fits reproduce Surprise's own.

Surprise's reference loop (``cross_validate`` with ``KFold(n_splits=5, random_state=0)``)
is run on the shared ml-100k copy and compared with our ``surprise_kfold`` split: the test
pairs of every fold, and the RMSE of models fitted on our fold-0 training rows. Skips
without ``BENCH_DATA_DIR`` (or without ml-100k in it).
"""

import numpy as np
import pandas as pd
import pytest

from bench.data.movielens import load_ml_100k
from bench.splits.kfold import SurpriseKFoldSplitter
from tests.helpers import shared_data_dir

surprise = pytest.importorskip("surprise")
from surprise import SVD, BaselineOnly, Dataset, Reader  # noqa: E402
from surprise.model_selection import KFold  # noqa: E402

#: Reads and splits ml-100k and fits Surprise models on it: slow tier.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ml100k():
    data_dir = shared_data_dir()
    if data_dir is None or not (data_dir / "ml-100k" / "u.data").is_file():
        pytest.skip("BENCH_DATA_DIR with ml-100k/ not available")
    folder = data_dir / "ml-100k"
    data = load_ml_100k(path=folder).interactions
    splitter = SurpriseKFoldSplitter(n_folds=5, seed=0, load_order=str(folder / "u.data"))
    splits = splitter.split(data)
    reference = Dataset.load_from_file(str(folder / "u.data"), Reader("ml-100k"))
    folds = list(KFold(n_splits=5, random_state=0).split(reference))
    return splits, splitter.train_rows_, folds


def pairs(part) -> list[tuple[str, str]]:
    return list(zip(part.user_ids[part.users].astype(str), part.item_ids[part.items].astype(str),
                    strict=True))


def test_every_fold_has_surprises_test_pairs(ml100k):
    splits, train_rows, folds = ml100k
    for split, order, (trainset, testset) in zip(splits, train_rows, folds, strict=True):
        ours = pairs(split.test)
        assert set(ours) == {(u, i) for u, i, _ in testset} and len(ours) == len(testset) == 20_000
        # Surprise numbers users by first appearance in its training rows: so does our order
        train = pairs(split.train)
        first_users = list(dict.fromkeys(train[r][0] for r in order))
        assert first_users == [trainset.to_raw_uid(u) for u in trainset.all_users()]


def fit_on_our_rows(algo, split, order):
    """Fit on our training rows in ``order`` (as Surprise would read them from a file)."""
    train = split.train
    frame = pd.DataFrame({
        "user": train.user_ids[train.users[order]].astype(str),
        "item": train.item_ids[train.items[order]].astype(str),
        "rating": train.ratings[order],
    })
    return algo.fit(Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset())


def compare_fold0(make, ml100k, order=None):
    """(Surprise's fold-0 RMSE, ours, max |estimate difference|) over possible pairs."""
    splits, train_rows, folds = ml100k
    split, (trainset, testset) = splits[0], folds[0]
    theirs = {(p.uid, p.iid): p for p in make().fit(trainset).test(testset)}
    order = train_rows[0] if order is None else order
    ours = make()
    fit_on_our_rows(ours, split, order)
    test = split.test
    truth = test.ratings
    est_ours = np.array([ours.predict(u, i).est for u, i in pairs(test)])
    ref = [theirs[pair] for pair in pairs(test)]
    possible = np.array([not p.details["was_impossible"] for p in ref])
    est_ref = np.array([p.est for p in ref])
    assert possible.sum() > 19_000

    def rmse(est):
        return float(np.sqrt(np.mean((est[possible] - truth[possible]) ** 2)))

    return rmse(est_ref), rmse(est_ours), float(np.abs(est_ref - est_ours)[possible].max())


def test_baseline_only_on_our_fold0_rows_gives_surprises_rmse(ml100k):
    # ALS baselines depend on the rows only through sums: any row order reproduces them
    splits = ml100k[0]
    canonical = np.arange(len(splits[0].train))
    ref, ours, diff = compare_fold0(lambda: BaselineOnly(verbose=False), ml100k, canonical)
    assert ours == pytest.approx(ref, abs=1e-9)
    assert diff < 1e-9
    assert ref == pytest.approx(0.944651, abs=1e-6)  # measured with scikit-surprise 1.1.5


@pytest.mark.integration
def test_svd_on_our_fold0_rows_in_surprise_order_gives_surprises_rmse(ml100k):
    ref, ours, diff = compare_fold0(lambda: SVD(random_state=0), ml100k)
    assert ours == pytest.approx(ref, abs=1e-9)
    assert diff < 1e-9
    assert ref == pytest.approx(0.935470, abs=1e-6)  # measured with scikit-surprise 1.1.5
    # SGD visits ratings in training-row order: the canonical order learns another model
    canonical = np.arange(len(ml100k[0][0].train))
    _, other, _ = compare_fold0(lambda: SVD(random_state=0), ml100k, canonical)
    assert abs(other - ref) > 1e-4


@pytest.mark.integration
def test_harness_svd_with_split_train_order_reproduces_surprise(ml100k):
    # the whole path the runner takes: split.train_order -> fit -> predict_codes
    from bench.models.collaborative import SurpriseRecommender

    splits, _, folds = ml100k
    split, (trainset, testset) = splits[0], folds[0]
    assert split.train_order is not None
    theirs = {(p.uid, p.iid): p for p in SVD(random_state=0).fit(trainset).test(testset)}
    model = SurpriseRecommender(algorithm="SVD", random_state=0)
    model.fit(split.train, train_order=split.train_order)
    test = split.test
    ours = model.predict_codes(test.users, test.items)
    ref = [theirs[pair] for pair in pairs(test)]
    est_ref = np.array([p.est for p in ref])
    known = np.isfinite(ours)
    # ours is NaN exactly where the user or item never appears in training (Surprise
    # would answer with a default there)
    unseen = np.array([not (trainset.knows_user(trainset.to_inner_uid(u))
                            if u in trainset._raw2inner_id_users else False)
                       or i not in trainset._raw2inner_id_items for u, i in pairs(test)])
    assert np.array_equal(~known, unseen) and 0 < unseen.sum() < 100
    np.testing.assert_allclose(ours[known], est_ref[known], rtol=0, atol=1e-12)


# ---------------------------------------------------------------------- the published table
#: Surprise's README table for MovieLens 100k (RMSE, MAE), as printed there (3 decimals).
README_ML100K = {
    "cf_surprise_svd": (0.934, 0.737),
    "cf_surprise_svdpp": (0.919, 0.721),  # SVD++ (cache_ratings=False)
    "cf_surprise_nmf": (0.963, 0.758),
    "cf_surprise_slope_one": (0.946, 0.743),
    "cf_surprise_knn_basic": (0.980, 0.774),
    "cf_surprise_knn_means": (0.951, 0.749),
    "cf_surprise_knn_baseline": (0.931, 0.733),
    "cf_surprise_coclustering": (0.963, 0.753),
    "cf_surprise_baseline": (0.944, 0.748),
    "cf_surprise_normal": (1.518, 1.219),
}

#: Fold-level (RMSE, MAE) of Surprise's own benchmark loop on the shared ml-100k copy,
#: measured with scikit-surprise 1.1.5: np.random.seed(0), then for each algorithm
#: cross_validate(algo, Dataset.load_from_file(u.data, Reader("ml-100k")),
#: ["rmse", "mae"], KFold(random_state=0)) with SVD(random_state=0),
#: SVDpp(random_state=0, cache_ratings=False), NMF(random_state=0),
#: CoClustering(random_state=0) and the others with their defaults, NormalPredictor
#: last (the only algorithm drawing from numpy's global stream).
SURPRISE_FOLDS = {
    "cf_surprise_svd": (
        [0.935469735617, 0.927800823555, 0.930608190583, 0.931906436021, 0.946205535528],
        [0.737400865322, 0.731330867098, 0.734522190026, 0.733744105831, 0.746575238500]),
    "cf_surprise_svdpp": (
        [0.919341315682, 0.914433520688, 0.912839613841, 0.919082089136, 0.927990918341],
        [0.720249786560, 0.718768654599, 0.714986643348, 0.721865550420, 0.726928530508]),
    "cf_surprise_nmf": (
        [0.964485502362, 0.962403580068, 0.956978567414, 0.960543123539, 0.972532965361],
        [0.759197688254, 0.758137201171, 0.753583391400, 0.754369426546, 0.764767702405]),
    "cf_surprise_slope_one": (
        [0.946775800317, 0.941316844968, 0.940992035038, 0.942315085362, 0.957959857438],
        [0.743690412850, 0.739629313867, 0.740082830368, 0.740281621208, 0.753066185404]),
    "cf_surprise_knn_basic": (
        [0.984118763978, 0.975366166220, 0.976486269532, 0.975473616674, 0.987222705635],
        [0.776294818980, 0.770553936732, 0.769645758675, 0.769482002987, 0.782163115846]),
    "cf_surprise_knn_means": (
        [0.952775674324, 0.945219316439, 0.947249141643, 0.947324968239, 0.962855791652],
        [0.749503751344, 0.745260237091, 0.747077511161, 0.745741556858, 0.759706086824]),
    "cf_surprise_knn_baseline": (
        [0.931606158507, 0.925218267800, 0.927095590696, 0.927517176398, 0.941917805535],
        [0.733789799004, 0.728886728498, 0.730447486494, 0.729725338403, 0.743211099352]),
    "cf_surprise_coclustering": (
        [0.967328517989, 0.963734001559, 0.952058575804, 0.957343096087, 0.972694923816],
        [0.756516092218, 0.754863626672, 0.744512791041, 0.747997010643, 0.762194876146]),
    "cf_surprise_baseline": (
        [0.944651045971, 0.940140292637, 0.938329425395, 0.941671641310, 0.955054312404],
        [0.749144223274, 0.745894252532, 0.743705458539, 0.745778215800, 0.757342577074]),
    "cf_surprise_normal": (
        [1.514354783454, 1.519042016391, 1.523609350973, 1.509117264002, 1.523934576823],
        [1.214580124351, 1.220867075093, 1.224854039187, 1.209944714994, 1.223284052569]),
}

#: Test pairs per fold whose item is absent from the fold's training rows (no user is):
#: Surprise scores them with its default, honest exclusion leaves them out.
UNKNOWN_PAIRS = [53, 26, 41, 30, 36]

#: Neighbourhood models and SVD++ cost seconds per fold; the others well under one.
COSTLY = {"cf_surprise_knn_basic", "cf_surprise_knn_means", "cf_surprise_knn_baseline",
          "cf_surprise_svdpp"}


def test_pinned_folds_round_to_the_readme_table():
    # the pinned folds are Surprise's own: their means are the published table
    assert set(SURPRISE_FOLDS) == set(README_ML100K)
    for name, (rmse_folds, mae_folds) in SURPRISE_FOLDS.items():
        assert round(float(np.mean(rmse_folds)), 3) == README_ML100K[name][0], name
        assert round(float(np.mean(mae_folds)), 3) == README_ML100K[name][1], name


@pytest.fixture(scope="module")
def experiment():
    """``experiment=surprise_ml100k`` as the runner sees it: settings, and the five folds
    of the configured split on the shared ml-100k copy."""
    from bench.config import load_settings, to_container
    from bench.targets import build
    from tests.helpers import compose_config

    data_dir = shared_data_dir()
    if data_dir is None or not (data_dir / "ml-100k" / "u.data").is_file():
        pytest.skip("BENCH_DATA_DIR with ml-100k/ not available")
    cfg = compose_config(["experiment=surprise_ml100k", f"data_dir={data_dir}", "tracker=none"])
    settings = load_settings(to_container(cfg))
    dataset = build(settings.dataset, "dataset")
    return settings, build(settings.split, "split").split(dataset.interactions)


def run_experiment_folds(experiment, name):
    """Every fold of one model, the way a main cell fits and scores it."""
    from bench.cells import build_model, rating_metrics

    settings, splits = experiment
    out = []
    for split in splits:
        model = build_model(name, settings.models[name])
        model.fit(split.train, train_order=split.train_order)
        metrics = rating_metrics(model, split, settings.eval.unscored_ratings)
        if name not in COSTLY:
            metrics["excluded"] = rating_metrics(model, split, "exclude")
        out.append(metrics)
    return out


def check_reproduces_readme(experiment, name):
    settings = experiment[0]
    assert settings.eval.unscored_ratings == "surprise_default"
    folds = run_experiment_folds(experiment, name)
    rmse_ref, mae_ref = SURPRISE_FOLDS[name]
    np.testing.assert_allclose([m["rmse"] for m in folds], rmse_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose([m["mae"] for m in folds], mae_ref, rtol=0, atol=1e-9)
    rmse, mae = (float(np.mean([m[k] for m in folds])) for k in ("rmse", "mae"))
    assert (round(rmse, 3), round(mae, 3)) == README_ML100K[name]
    assert [m["rating_pairs_defaulted"] for m in folds] == UNKNOWN_PAIRS
    assert all(m["rating_pairs_unpredicted"] == 0 for m in folds)
    for m in folds:  # honest exclusion: the same pairs left out and counted instead
        ex = m.get("excluded")
        if ex is not None:
            assert ex["rating_pairs_unpredicted"] == m["rating_pairs_defaulted"]
            assert ex["rmse"] != m["rmse"] and ex["mae"] != m["mae"]


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(set(README_ML100K) - {"cf_surprise_svdpp"}))
def test_surprise_ml100k_reproduces_surprises_folds_and_readme(experiment, name):
    check_reproduces_readme(experiment, name)


@pytest.mark.integration
def test_surprise_ml100k_reproduces_surprises_folds_and_readme_svdpp(experiment):
    # SVD++ alone costs about a minute here (Surprise's own fit, 5 folds)
    check_reproduces_readme(experiment, "cf_surprise_svdpp")
