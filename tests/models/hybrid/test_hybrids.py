"""Hybrids on hand-made score tables: blend arithmetic, switching tiers, cascade, sources."""

import numpy as np
import pandas as pd
import pytest

from bench.data.interactions import Interactions
from bench.errors import ConfigError
from bench.models.base import Recommender
from bench.models.hybrid import CascadeHybrid, SwitchingHybrid, WeightedBlend
from bench.models.hybrid.normalise import minmax, rank, zscore

NAN = np.nan


class Table(Recommender):
    """Test double: fixed scores per user code (rows) and item code (columns)."""

    def __init__(self, *, table=None):
        self.table = table

    def _fit(self, train, item_features, user_features):
        self.table_ = np.asarray(self.table, dtype=np.float32)

    def _score(self, users, history):
        return self.table_[users].copy()


@pytest.fixture
def train():
    # users a, b, c; items 0..4; a has seen item 4, b has 3 interactions, c has 1 (items 3)
    frame = pd.DataFrame(
        {"user_id": ["a", "b", "b", "b", "c"], "item_id": [4, 0, 1, 2, 3]}
    )
    return Interactions.from_frame(frame)


def test_normalisers_by_hand():
    s = np.array([[1.0, 3.0, NAN, 2.0], [5.0, 5.0, NAN, NAN]], dtype=np.float32)
    np.testing.assert_allclose(minmax(s)[0], [0.0, 1.0, NAN, 0.5])
    np.testing.assert_allclose(minmax(s)[1], [1.0, 1.0, NAN, NAN])
    z = zscore(s)
    std = np.std([1.0, 3.0, 2.0])
    np.testing.assert_allclose(z[0], [-1 / std, 1 / std, NAN, 0.0], rtol=1e-6)
    np.testing.assert_allclose(z[1], [0.0, 0.0, NAN, NAN])
    np.testing.assert_allclose(rank(s)[0], [1 - 2 / 3, 1.0, NAN, 1 - 1 / 3], rtol=1e-6)
    # ties broken toward the lower item code: item 0 ranks first
    np.testing.assert_allclose(rank(s)[1], [1.0, 0.5, NAN, NAN])


def test_blend_minmax_weighted_by_hand(train):
    # codes: users a=0, b=1, c=2; items 0..4
    x = [[4.0, 2.0, 0.0, NAN, 9.0]] * 3
    y = [[0.0, 1.0, 2.0, 4.0, 9.0]] * 3
    blend = WeightedBlend(
        components={"x": Table(table=x), "y": Table(table=y)}, weights={"x": 3.0, "y": 1.0}
    ).fit(train)
    s, src = blend._score_sources(np.array([0]), blend._history_rows(np.array([0]), None))
    # user a: item 4 is history (masked before normalising)
    # x norm over {4,2,0} -> [1, .5, 0, nan]; y norm over {0,1,2,4} -> [0, .25, .5, 1]
    # item 3: only y scores -> renormalised to full weight: 1 * 1 * (4/1) = 4
    np.testing.assert_allclose(s[0], [3.0, 1.75, 0.5, 4.0, NAN])
    names = blend.source_names()
    assert names == ("x", "y")
    assert [names[c] for c in src[0, :4]] == ["x", "x", "y", "y"]
    top = blend.recommend(["a"], k=3)
    assert top["item_id"].tolist() == [3, 0, 1]
    assert top["source"].tolist() == ["y", "x", "x"]


def test_blend_nan_policy_and_bad_weights(train):
    x = [[4.0, NAN, 1.0, 2.0, 0.0]] * 3
    y = [[1.0, 1.0, 2.0, 3.0, 0.0]] * 3
    b = WeightedBlend(components={"x": Table(table=x), "y": Table(table=y)}, missing="nan")
    s = b.fit(train)._score(np.array([1]), b._history_rows(np.array([1]), None))
    assert np.isnan(s[0, 1]) and np.isfinite(s[0, 3])
    with pytest.raises(ConfigError, match=r"weights: expected one weight per component"):
        WeightedBlend(components={"x": Table(table=x), "y": Table(table=y)},
                      weights={"x": 1.0}).fit(train)
    with pytest.raises(ConfigError, match=r"normalisation: expected one of"):
        WeightedBlend(components={"x": Table(table=x), "y": Table(table=y)},
                      normalisation="softmax").fit(train)


def test_switching_by_history_with_fill(train):
    rules = [[5.0, 4.0, 3.0, 2.0, 1.0]] * 3
    cf = [[NAN, 1.0, 2.0, NAN, NAN]] * 3  # cannot score items 0, 3, 4
    h = SwitchingHybrid(
        components={"cf": Table(table=cf), "rules": Table(table=rules)},
        min_history={"cf": 2},
    ).fit(train)
    top = h.recommend(["a", "b", "c"], k=5)
    got = {u: list(zip(g["item_id"], g["source"], strict=True))
           for u, g in top.groupby("user_id")}
    # b has 3 interactions (items 0,1,2 seen): cf applies but only scores seen items,
    # so rules serve b's unseen items 3, 4
    assert got["b"] == [(3, "rules"), (4, "rules")]
    # a and c have 1 interaction: below cf's minimum -> rules only
    assert got["a"] == [(0, "rules"), (1, "rules"), (2, "rules"), (3, "rules")]
    assert got["c"] == [(0, "rules"), (1, "rules"), (2, "rules"), (4, "rules")]


def test_switching_tiers_stack_and_no_fill(train):
    rules = [[5.0, 4.0, 3.0, 2.0, 1.0]] * 3
    cf = [[NAN, 1.0, 2.0, 9.0, 9.0]] * 3
    h = SwitchingHybrid(components={"cf": Table(table=cf), "rules": Table(table=rules)}).fit(train)
    top = h.recommend(["a"], k=5)  # a saw item 4
    assert top["item_id"].tolist() == [3, 2, 1, 0]
    assert top["source"].tolist() == ["cf", "cf", "cf", "rules"]
    h2 = SwitchingHybrid(components={"cf": Table(table=cf), "rules": Table(table=rules)},
                         fill=False).fit(train)
    assert h2.recommend(["a"], k=5)["item_id"].tolist() == [3, 2, 1]
    with pytest.raises(ConfigError, match=r"min_history: unknown component"):
        SwitchingHybrid(components={"cf": Table(table=cf), "r": Table(table=rules)},
                        min_history={"als": 3}).fit(train)


def test_cascade_reranks_candidates_only(train):
    cand = [[5.0, 4.0, 3.0, 2.0, 1.0]] * 3
    rer = [[0.1, NAN, 0.9, 0.5, 0.7]] * 3
    c = CascadeHybrid(components={"candidates": Table(table=cand), "reranker": Table(table=rer)},
                      n_candidates=3).fit(train)
    top = c.recommend(["a"], k=5)  # a saw 4; candidates 0, 1, 2
    assert top["item_id"].tolist() == [2, 0, 1]
    assert top["source"].tolist() == ["reranker", "reranker", "candidates"]
    c2 = CascadeHybrid(components={"candidates": Table(table=cand), "reranker": Table(table=rer)},
                       n_candidates=3, keep_unscored=False).fit(train)
    assert c2.recommend(["a"], k=5)["item_id"].tolist() == [2, 0]
    with pytest.raises(ConfigError, match=r"missing \['reranker'\]"):
        CascadeHybrid(
            components={"candidates": Table(table=cand), "x": Table(table=rer)}
        ).fit(train)


def test_nested_composites_keep_source_labels(train):
    rules = [[5.0, 4.0, 3.0, 2.0, 1.0]] * 3
    cf = [[NAN, 1.0, 2.0, 9.0, 9.0]] * 3
    inner = SwitchingHybrid(components={"cf": Table(table=cf), "rules": Table(table=rules)})
    outer = WeightedBlend(components={"switch": inner, "pop": Table(table=rules)},
                          weights={"switch": 1.0, "pop": 0.0})
    outer.fit(train)
    assert outer.source_names() == ("switch/cf", "switch/rules", "pop")
    top = outer.recommend(["a"], k=4)
    assert top["source"].tolist() == ["switch/cf", "switch/cf", "switch/cf", "switch/rules"]
    params = outer.get_params()
    assert set(params) == {"components", "weights", "normalisation", "missing"}


def test_components_must_be_models(train):
    with pytest.raises(ConfigError, match=r"components.x: expected a model"):
        WeightedBlend(components={"x": {"a": 1}, "y": Table(table=[[1.0] * 5] * 3)}).fit(train)


def _generic_top(model, users, k):
    """The generic path: the full score block, history masked, then top-k."""
    from bench.models.base import mask_history, top_k

    hist = model._history_rows(users, None)
    scores, sources = model._score_sources(users, hist)
    scores = np.asarray(scores, dtype=np.float32)
    mask_history(scores, hist)
    items, top = top_k(scores, k)
    picked = np.take_along_axis(sources, np.maximum(items, 0), axis=1)
    return items, top, np.where(items >= 0, picked, 0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fill", [True, False])
def test_switching_top_k_path_equals_full_rank(seed, fill):
    """Per-tier top-k + merge gives the lists, scores and sources of the full rank."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 30
    users = np.repeat(np.arange(n_users), rng.integers(1, 8, n_users))
    frame = pd.DataFrame({"user_id": users, "item_id": rng.integers(0, n_items, len(users))})
    frame = frame.drop_duplicates()
    train = Interactions.from_frame(frame)
    tables = []
    for t in range(3):
        tab = rng.integers(0, 4, (n_users, n_items)).astype(np.float32)  # many ties
        tab[rng.random(tab.shape) < 0.3 + 0.2 * t] = NAN
        if t == 1 and seed % 2:
            tab[rng.random(tab.shape) < 0.05] = -np.inf
            tab[rng.random(tab.shape) < 0.05] = np.inf
        tab[rng.random(n_users) < 0.1] = NAN  # rows a tier cannot score at all
        tables.append(tab[:, : len(train.item_ids)][: len(train.user_ids)])
    model = SwitchingHybrid(
        components={"a": Table(table=tables[0]), "b": Table(table=tables[1]),
                    "c": Table(table=tables[2])},
        min_history={"a": 3}, max_history={"b": 5}, fill=fill,
    ).fit(train)
    codes = np.arange(len(train.user_ids))
    for k in (1, 3, 7, len(train.item_ids)):
        hist = model._history_rows(codes, None)
        fast = model._top_k_sources(codes, hist, k, True)
        for got, want in zip(fast, _generic_top(model, codes, k), strict=True):
            np.testing.assert_array_equal(got, want)
        top = model.recommend_codes(codes, k)
        np.testing.assert_array_equal(top.items, fast[0])
        np.testing.assert_array_equal(top.sources, fast[2])
