"""Models only ever see their training vocabulary (bench/models/vocabulary.py).

A model fitted on a split's train part, whose vocabulary also holds users and items
that only appear in test, must learn exactly what it learns from the train rows alone,
give the same lists, never receive a test-only code in ``fit``, and still serve fold-in
users from their history.
"""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bench.data.features import ItemFeatures
from bench.data.interactions import Interactions
from bench.data.synthetic import generate_synthetic
from bench.models.base import Recommender
from bench.models.collaborative import EASE, ImplicitALS, ItemKNN
from bench.models.content import ContentItemKNN, ContentProfile
from bench.models.hybrid import WeightedBlend
from bench.models.rule import PopularityRecommender
from bench.models.vocabulary import Vocabulary
from bench.testing import check_recommender

K = 10


@pytest.fixture(scope="module")
def data():
    """Synthetic data, its item features, and a train part missing 6 users and 5 items.

    ``split_train`` keeps the full vocabulary (as a split's part does); ``alone`` holds
    the same rows with only their own ids.
    """
    ds = generate_synthetic(n_users=150, n_items=80, n_interactions=3000, seed=5)
    x = ds.interactions
    counts = x.item_counts()
    test_items = np.argsort(-counts, kind="stable")[[0, 3, 7, 20, 40]]  # popular ones too
    test_users = np.arange(6)
    keep = ~np.isin(x.items, test_items) & ~np.isin(x.users, test_users)
    split_train = x.take(keep)
    alone = Interactions.from_frame(split_train.to_frame())
    return ds, x, split_train, alone, test_users, test_items


MODELS = {
    "als": lambda: ImplicitALS(factors=8, iterations=4, seed=0, num_threads=1),
    "als_bm25": lambda: ImplicitALS(factors=8, iterations=4, seed=0, num_threads=1,
                                    weighting="bm25"),
    "ease": lambda: EASE(l2=50.0),
    "item_knn": lambda: ItemKNN(K=20),
    "popularity": lambda: PopularityRecommender(),
    "content_profile": lambda: ContentProfile(min_df=1),
    "content_knn": lambda: ContentItemKNN(neighbours=10),
}
STATE = {
    "als": ("user_factors_", "item_factors_"),
    "als_bm25": ("user_factors_", "item_factors_", "bm25_idf_"),
    "ease": ("weights_",),
    "item_knn": ("similarity_",),
    "popularity": ("scores_",),
    "content_profile": ("item_matrix_", "user_mean_"),
    "content_knn": ("item_matrix_", "similarity_"),
}


def _same_lists(mine: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Equal lists: same ids, ranks and scores (``recommend`` gives object user ids)."""
    assert len(mine) > 0
    pd.testing.assert_frame_equal(mine.reset_index(drop=True), theirs.reset_index(drop=True),
                                  check_dtype=False)


def _equal(a, b) -> bool:
    if sp.issparse(a):
        return (a != b).nnz == 0 and a.shape == b.shape
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


@pytest.mark.parametrize("name", list(MODELS))
def test_same_state_and_lists_as_on_the_train_part_alone(data, name):
    ds, x, split_train, alone, _, test_items = data
    feats = ds.item_features
    a = MODELS[name]().fit(split_train, item_features=feats)
    b = MODELS[name]().fit(alone, item_features=feats)
    assert a.item_index_.equals(b.item_index_) and a.user_index_.equals(b.user_index_)
    for attr in STATE[name]:
        assert _equal(getattr(a, attr), getattr(b, attr)), attr
    # lists: the split-fitted model in the data's codes, the other by ids
    users = np.unique(split_train.users)
    top = a.recommend_codes(users, K)
    mine = a.lists_frame(top).drop(columns="source")
    theirs = b.recommend(x.user_ids[users], k=K).drop(columns="source")
    _same_lists(mine, theirs)
    if name.startswith("content"):  # the catalogue: items without training rows are scored
        assert np.isin(top.items, test_items).any()
    else:
        assert not np.isin(top.items, test_items).any()


def test_a_test_only_id_in_the_vocabulary_changed_als_before():
    """What the issue measured: the same rows with the full vocabulary gave other
    factors. Re-coding makes the split-fitted model equal to the alone-fitted one, so
    the difference exists only for a model fitted without it (``Vocabulary.build`` with
    source ``data`` keeps the full vocabulary, as before)."""
    ds = generate_synthetic(n_users=150, n_items=80, n_interactions=3000, seed=5)
    x = ds.interactions
    train = x.take(x.items != int(np.argmax(x.item_counts())))
    full = Vocabulary.build(train, sources=["data"])
    own = Vocabulary.build(train)
    assert full.n_items == x.n_items and own.n_items == x.n_items - 1
    als = ImplicitALS(factors=8, iterations=4, seed=0, num_threads=1, weighting="bm25")
    old = _OldALS(factors=8, iterations=4, seed=0, num_threads=1, weighting="bm25")
    als.fit(train)
    old.fit(train)
    users = np.unique(train.users)
    same = (als.recommend_codes(users, K).items == old.recommend_codes(users, K).items)
    assert same.mean() < 0.9  # the empty column moved the factors


class _OldALS(ImplicitALS):
    """ALS as it was fitted before: on the data's full vocabulary."""

    extra_vocabulary = frozenset({"data"})


class _Spy(Recommender):
    """Records what ``_fit`` receives; scores by popularity."""

    family = "rule"

    def _fit(self, train, item_features, user_features):
        self.seen_train_ = train
        self.seen_features_ = item_features
        self.counts_ = np.bincount(train.items, minlength=train.n_items).astype(np.float32)

    def _score(self, users, history):
        return np.tile(self.counts_, (len(users), 1))


def test_fit_never_receives_a_test_only_code(data):
    ds, x, split_train, _, test_users, test_items = data
    spy = _Spy().fit(split_train, item_features=ds.item_features)
    got = spy.seen_train_
    assert got.n_users == np.count_nonzero(split_train.user_counts()) < x.n_users - 5
    assert got.n_items == x.n_items - len(test_items)
    assert np.count_nonzero(got.user_counts()) == got.n_users  # every id has a row
    assert np.count_nonzero(got.item_counts()) == got.n_items
    assert not set(x.user_ids[test_users]) & set(got.user_ids)
    assert not set(x.item_ids[test_items]) & set(got.item_ids)
    assert spy.seen_features_.item_ids.equals(got.item_ids)  # features follow
    # same rows, same order, same values
    np.testing.assert_array_equal(got.user_ids[got.users], split_train.user_ids[split_train.users])
    np.testing.assert_array_equal(got.item_ids[got.items], split_train.item_ids[split_train.items])
    np.testing.assert_array_equal(got.timestamps, split_train.timestamps)
    # test-only users are unknown, test-only items never recommended
    top = spy.recommend_codes(np.arange(x.n_users), K)
    assert not np.isin(top.items, test_items).any()
    assert (top.items[test_users] >= 0).all()  # popularity serves unknown users


@pytest.mark.parametrize("name", ["als", "als_bm25", "ease", "item_knn", "content_profile"])
def test_fold_in_users_are_served_from_their_history(data, name):
    ds, x, split_train, alone, test_users, _ = data
    feats = ds.item_features
    a = MODELS[name]().fit(split_train, item_features=feats)
    b = MODELS[name]().fit(alone, item_features=feats)
    # the test-only users' own rows are their fold-in history (test-only items included:
    # the collaborative models cannot use them, the content model can)
    rows = np.isin(x.users, test_users)
    hist = sp.csr_matrix(
        (np.ones(rows.sum(), np.float32), (np.searchsorted(test_users, x.users[rows]),
                                           x.items[rows])),
        shape=(len(test_users), x.n_items),
    )
    top = a.recommend_codes(test_users, K, history=hist)
    assert (top.items >= 0).all()
    history = x.take(rows)
    theirs = b.recommend(x.user_ids[test_users], k=K, history=history)
    _same_lists(a.lists_frame(top).drop(columns="source"), theirs.drop(columns="source"))


def test_composite_children_keep_their_own_vocabularies(data):
    ds, x, split_train, alone, _, test_items = data
    blend = WeightedBlend(components={"cf": MODELS["als"](),
                                      "content": MODELS["content_profile"]()})
    blend.fit(split_train, item_features=ds.item_features)
    als, content = blend.components["cf"], blend.components["content"]
    assert blend.vocabulary_sources() == {"item_features"}
    assert blend.n_items == x.n_items  # the catalogue (every item has features)
    assert als.n_items == x.n_items - len(test_items)  # re-coded once more
    assert content.n_items == x.n_items
    users = np.unique(split_train.users)[:20]
    hist = split_train.to_csr()[users]
    s_als, _ = als.score_codes(users, hist)
    assert s_als.shape == (len(users), x.n_items) and np.isnan(s_als[:, test_items]).all()
    ref = ImplicitALS(factors=8, iterations=4, seed=0, num_threads=1).fit(alone)
    np.testing.assert_array_equal(als.user_factors_, ref.user_factors_)


def test_catalogue_items_the_data_cannot_name_are_never_listed():
    frame = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [10, 11, 10, 12, 11]})
    x = Interactions.from_frame(frame)
    genres = sp.csr_matrix(np.ones((4, 1), dtype=np.float32))
    feats = ItemFeatures(pd.Index([10, 11, 12, 99], name="item_id"), np.full(4, "", object),
                         np.full(4, np.nan), genres, ("g",))  # 99: in the catalogue only
    model = ContentProfile(weighting="binary", min_df=1).fit(x, feats)
    assert list(model.item_index_) == [10, 11, 12, 99]
    assert list(model.vocabulary_.unnamed_items) == [3]
    top = model.recommend_codes(np.array([0, 1, 2]), 5)
    assert set(top.items[top.items >= 0].tolist()) <= {0, 1, 2}
    assert (top.items[2, :2] == [0, 2]).all()  # user 3: the two items it has not seen
    by_id = model.recommend([3], k=5)  # ids can name it
    assert 99 in set(by_id.item_id)


def test_vocabulary_maps_and_history(data):
    _, x, split_train, _, test_users, test_items = data
    v = Vocabulary.build(split_train)
    assert (v.users_in(test_users) == -1).all() and (v.items_in(test_items) == -1).all()
    assert v.users_in(np.array([-1, x.n_users + 5])).tolist() == [-1, -1]
    inner = np.arange(v.n_items)
    back = v.items_out(inner)
    np.testing.assert_array_equal(v.items_in(back), inner)
    assert v.items_out(np.array([-1])).tolist() == [-1]
    h = sp.csr_matrix(np.ones((2, x.n_items), dtype=np.float32))
    hi = v.history_in(h)
    assert hi.shape == (2, v.n_items) and hi.nnz == 2 * v.n_items
    s = v.scores_out(np.arange(v.n_items, dtype=np.float32)[None, :], np.float32(np.nan))
    assert np.isnan(s[0, test_items]).all() and np.isfinite(np.delete(s[0], test_items)).all()


def test_the_conformance_check_catches_a_model_that_sees_everything(monkeypatch):
    check_recommender(PopularityRecommender, checks=["sees_training_vocabulary"])
    monkeypatch.setattr(Vocabulary, "compact", lambda self, train: train)
    with pytest.raises(AssertionError, match="sees_training_vocabulary"):
        check_recommender(PopularityRecommender, checks=["sees_training_vocabulary"])
