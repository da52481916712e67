"""Item cold-start: content models rank items never seen in training; ALS cannot."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bench.data.features import ItemFeatures
from bench.data.interactions import Interactions
from bench.models.collaborative import ImplicitALS
from bench.models.content import ContentItemKNN, ContentProfile
from bench.splits.cold_start import ItemColdStartSplitter


@pytest.fixture
def parity_split():
    """30 users, 20 items; even users rate 6 even items, odd users 6 odd items (all 5 stars).

    Item genres are the parity, so every item of a user's parity has the same vector.
    A fifth of the items is held out by the item cold-start splitter.
    """
    rng = np.random.default_rng(0)
    rows = []
    for u in range(30):
        for i in rng.choice(np.arange(u % 2, 20, 2), size=6, replace=False):
            rows.append((u, int(i), 5.0))
    x = Interactions.from_frame(
        pd.DataFrame(rows, columns=["user_id", "item_id", "rating"]), rating_scale=(1, 5)
    )
    genres = np.zeros((20, 2), dtype=np.float32)
    genres[np.arange(20), np.arange(20) % 2] = 1.0
    feats = ItemFeatures(
        pd.Index(range(20), name="item_id"), np.full(20, "", dtype=object), np.full(20, np.nan),
        sp.csr_matrix(genres), ("even", "odd"),
    )  # fmt: skip
    split = ItemColdStartSplitter(fraction=0.2, seed=0).split(x)[0]
    return split, feats


@pytest.mark.parametrize("model", [ContentProfile(), ContentItemKNN(neighbours=19)])
def test_content_ranks_held_out_items_als_cannot(parity_split, model):
    split, feats = parity_split
    held = np.flatnonzero(split.test.item_counts() > 0)
    assert len(held) == 4 and split.train.item_counts()[held].sum() == 0
    users = np.intersect1d(split.test.present_users(), split.train.present_users())
    test_csr = split.test.to_csr()

    model.fit(split.train, feats)
    s = model._score(users, model._history_rows(users, None))
    assert np.isfinite(s[:, held]).any(axis=0).all()  # every held-out item gets scores
    top = model.recommend_codes(users, 10)
    for row, u in enumerate(users):  # each user's held-out items are in their list
        wanted = test_csr[u].indices
        assert set(wanted) <= set(top.items[row].tolist())
        liked = top.items[row][top.scores[row] > 0.5]  # cosine 1 for the user's parity
        assert set(wanted) <= set(liked.tolist()) and (liked % 2 == u % 2).all()

    als = ImplicitALS(factors=2, iterations=3, seed=0, num_threads=1).fit(split.train)
    s_als, _ = als.score_codes(users, split.train.to_csr()[users])
    assert np.isnan(s_als[:, held]).all()
    top_als = als.recommend_codes(users, 10)
    assert not np.isin(top_als.items, held).any()
