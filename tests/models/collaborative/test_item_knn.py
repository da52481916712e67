"""ItemKNN: hand-computed cosine neighbours, agreement with implicit, NaN where it cannot score."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bench.data.interactions import Interactions
from bench.errors import ConfigError
from bench.models.collaborative import ItemKNN
from tests.models.collaborative.cf_data import data_history, with_new_user_and_item

R3, R6 = 1 / np.sqrt(3), 1 / np.sqrt(6)


@pytest.fixture
def tiny():
    """Items a, b, c with user columns a=(1,1,1,0), b=(1,1,0,0), c=(0,0,1,1).

    Cosine: cos(a,b) = 2/sqrt(6), cos(a,c) = 1/sqrt(6), cos(b,c) = 0.
    """
    frame = pd.DataFrame(
        {"user_id": [0, 0, 1, 1, 2, 2, 3], "item_id": ["a", "b", "a", "b", "a", "c", "c"]}
    )
    return Interactions.from_frame(frame)


def test_cosine_similarity_and_scores_by_hand(tiny):
    model = ItemKNN(similarity="cosine", K=10).fit(tiny)
    want = np.array([[1, 2 * R6, R6], [2 * R6, 1, 0], [R6, 0, 1]])
    np.testing.assert_allclose(model.similarity_.toarray(), want, rtol=1e-6)
    # user 3 has only c: a scores cos(c,a), b scores cos(c,b) = 0 (a real lowest score)
    s = model._score(np.array([3]), model.seen_[[3]])
    np.testing.assert_allclose(s[0], [R6, 0.0, 1.0], rtol=1e-6)
    top = model.recommend_codes(np.array([3]), 3)
    assert list(top.items[0]) == [0, 1, -1]  # c is seen; a before b


def test_k_keeps_each_items_strongest_neighbours(tiny):
    # K=2 keeps the item itself plus its best neighbour: row a drops c, row c keeps a
    model = ItemKNN(similarity="cosine", K=2).fit(tiny)
    sim = model.similarity_.toarray()
    assert sim[0, 2] == 0 and sim[2, 0] == pytest.approx(R6)
    # history {a}: c gets nothing through a's row; history {c}: a gets R6 through c's row
    s = model._score(np.array([-1, -1]), _rows(tiny, [["a"], ["c"]]))
    assert s[0, 2] == 0 and s[1, 0] == pytest.approx(R6)


def _rows(x: Interactions, items_per_row):
    """Binary history CSR: one row per list of item ids."""
    m = sp.lil_matrix((len(items_per_row), x.n_items), dtype=np.float32)
    for r, items in enumerate(items_per_row):
        for i in items:
            m[r, x.item_ids.get_loc(i)] = 1.0
    return m.tocsr()


@pytest.mark.parametrize("similarity", ["cosine", "bm25", "tfidf"])
@pytest.mark.parametrize("values", ["ones", "rating"])
def test_scores_match_implicits_recommend(random_ratings, similarity, values):
    model = ItemKNN(similarity=similarity, K=15, values=values).fit(random_ratings)
    users = np.arange(0, 200, 9)
    ids, scores = model.model_.recommend(users, model.values_[users], N=10)
    top = model.recommend_codes(users, 10)
    # implicit returns the same scores in the same order; ties may swap items
    np.testing.assert_allclose(top.scores, scores, rtol=1e-5, atol=1e-6)
    ours = model._score(users, model.seen_[users])
    np.testing.assert_allclose(np.take_along_axis(ours, ids, axis=1), scores, rtol=1e-5, atol=1e-6)


def test_empty_history_and_unseen_item_are_nan_fold_in_is_scored(checkerboard):
    train, user, item = with_new_user_and_item(checkerboard)
    model = ItemKNN(K=10).fit(train)
    s, _ = model.score_codes(np.array([user, 0]), data_history(train, [user, 0]))
    assert np.isnan(s[0]).all()
    assert np.isnan(s[1, item]) and np.isfinite(np.delete(s[1], item)).all()
    assert model.recommend([999], k=5).empty
    # a user absent from training with fold-in history is scored from that history
    fold_in = Interactions.from_frame(pd.DataFrame({"user_id": [999, 999], "item_id": [0, 2]}))
    recs = model.recommend([999], k=5, history=fold_in)
    assert len(recs) == 5 and not set(recs.item_id) & {0, 2}
    assert (recs.item_id % 2 == 0).all()  # even items co-occur with even items


def test_rating_weights_history_and_fold_in_gets_the_mean_rating(tiny):
    rated = Interactions.from_frame(tiny.to_frame().assign(rating=[5.0, 1, 2, 2, 4, 4, 3]))
    model = ItemKNN(K=10, values="rating").fit(rated)
    assert model.fold_in_weight_ == pytest.approx(3.0)
    # user 0: a weighs 5, b weighs 1; plus a fold-in c (weight 3)
    hist = _rows(rated, [["a", "b", "c"]])
    s = model._score(np.array([0]), hist)
    np.testing.assert_allclose(s[0], 5 * model.similarity_[0].toarray()[0]
                               + 1 * model.similarity_[1].toarray()[0]
                               + 3 * model.similarity_[2].toarray()[0], rtol=1e-6)


def test_same_input_same_similarity_whatever_the_thread_count(random_ratings):
    a = ItemKNN(similarity="bm25", K=20, num_threads=1).fit(random_ratings).similarity_
    b = ItemKNN(similarity="bm25", K=20, num_threads=0).fit(random_ratings).similarity_
    assert (a != b).nnz == 0


@pytest.mark.parametrize(
    "kwargs, key",
    [({"similarity": "jaccard"}, "similarity"), ({"K": 0}, "K"), ({"bm25_b": 2.0}, "bm25_b"),
     ({"values": "counts"}, "values")],
)
def test_bad_hyperparameters_are_refused(tiny, kwargs, key):
    with pytest.raises(ConfigError, match=f"ItemKNN {key}"):
        ItemKNN(**kwargs).fit(tiny)


def test_rating_values_need_ratings(tiny):
    with pytest.raises(ConfigError, match="needs ratings"):
        ItemKNN(values="rating").fit(tiny)
