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
