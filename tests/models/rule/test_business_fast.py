"""Business rules over a child with shared scores: the group path equals the generic one.

The group path (``BusinessRules._top_k_sources``: one rewritten row per group of users,
ranked once, history skipped) must give the generic path's lists, scores and sources bit
for bit, and never score a whole batch.
"""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bench.data.features import ItemFeatures
from bench.data.synthetic import generate_synthetic
from bench.models.base import Recommender, ScoreGroups
from bench.models.rule import (
    BusinessRules,
    DecayedPopularityRecommender,
    PopularityRecommender,
    RandomRecommender,
    RatedPopularityRecommender,
    RecentPopularityRecommender,
    business,
)
from bench.models.topk import rank_rows, skip_history, top_k
from tests.helpers import recommend_without, with_demographics

N_USERS, N_ITEMS = 300, 160
TEST_ONLY_USERS = 20  # users 0-19 have no training row: unknown to the models
TEST_ONLY_ITEMS = 8  # the last items have no training row (known to the rules only)


@pytest.fixture(scope="module")
def data():
    """MovieLens-like data: ratings, timestamps, genres, years and demographics."""
    ds = generate_synthetic(n_users=N_USERS, n_items=N_ITEMS, n_interactions=6000,
                            n_genres=6, seed=3)
    inter = ds.interactions
    rng = np.random.default_rng(4)
    f = ds.item_features
    years = rng.integers(1930, 2021, N_ITEMS).astype(np.float64)
    years[rng.random(N_ITEMS) < 0.05] = np.nan  # a few unknown years
    items = ItemFeatures(item_ids=f.item_ids, titles=f.titles, years=years, genres=f.genres,
                         genre_names=("Action", "Comedy", "Drama", "Horror", "Romance",
                                      "War"))
    people = with_demographics(ds.user_features)
    keep = (inter.users >= TEST_ONLY_USERS) & (inter.items < N_ITEMS - TEST_ONLY_ITEMS)
    train = inter.take(keep)
    # fold-in rows for some users, unknown ones among them, over the data's items
    users = np.r_[np.arange(N_USERS), -1, 25, 25]  # every user, an unknown code, repeats
    fold = sp.random(len(users), N_ITEMS, density=0.04, format="csr", random_state=rng)
    fold = fold.multiply(rng.random(len(users))[:, None] < 0.3).tocsr()  # some rows only
    fold.eliminate_zeros()
    return train, items, people, users, fold


RULES = {
    "exclude": [{"exclude": [3, 5, 8]},
                {"exclude": {"genre": "Horror"}, "for": {"gender": "F"}}],
    "include_only": [{"include_only": {"year": {"gte": 1970}}, "for": {"age_band": "<18"}},
                     {"include_only": {"genre": ["Comedy", "Drama"]}}],
    "add": [{"boost": {"genre": "Comedy"}, "amount": 7, "mode": "add"},
            {"bury": {"popularity": {"lt": 20}}, "amount": 3.5, "mode": "add",
             "for": {"occupation": "student"}}],
    "multiply": [{"boost": {"year": {"gte": 2000}}, "amount": 1.7, "mode": "multiply"},
                 {"bury": {"genre": "War"}, "amount": 2.5, "mode": "multiply",
                  "for": {"activity_band": "light"}}],
    "rank": [{"boost": {"year": {"gte": 2000}}, "amount": 3, "mode": "rank"},
             {"bury": {"popularity": {"lt": 20}}, "amount": 50, "mode": "rank",
              "for": {"activity_band": "none"}},
             {"boost": [7, 9], "amount": 0, "mode": "rank", "for": {"gender": "M"}}],
    "pins": [{"pin": [12, 150, 2]},  # 150: no training row, still pinned
             {"pin": [40, 12], "for": {"age_band": "55+"}},
             {"exclude": [12, 40]}],  # pins beat exclusions
    "shipped": [{"exclude": {"year": {"lt": 1950}}},
                {"boost": {"year": {"gte": 2000}}, "amount": 3, "mode": "rank"},
                {"bury": {"popularity": {"lt": 20}}, "amount": 50, "mode": "rank",
                 "for": {"activity_band": "none"}}],
    "everything": [{"exclude": {"genre": "Horror"}, "for": {"gender": "F"}},
                   {"boost": {"genre": "Comedy"}, "amount": 0.5, "mode": "add"},
                   {"bury": {"genre": "War"}, "amount": 2, "mode": "multiply",
                    "for": {"age_band": "<18"}},
                   {"boost": {"year": {"gte": 1990}}, "amount": 10, "mode": "rank",
                    "for": {"occupation": "artist"}},
                   {"pin": [60], "for": {"activity_band": "heavy"}},
                   {"include_only": {"popularity": {"gte": 2}}, "for": {"gender": "M"}}],
    # a short catalogue after exclusions: k beyond what is left
    "few_left": [{"include_only": {"item_id": [1, 2, 3, 4, 5, 6, 150]}},
                 {"pin": [100]}],
}

CHILDREN = {
    "popular": lambda: PopularityRecommender(),
    "min_count": lambda: PopularityRecommender(min_count=15),
    "recent": lambda: RecentPopularityRecommender(window_days=60),
    "decay": lambda: DecayedPopularityRecommender(half_life_days=20),
    "rated": lambda: RatedPopularityRecommender(),
}


def fit(data, rules, child):
    train, items, people, _, _ = data
    model = BusinessRules(model=child, rules=rules)
    return model.fit(train, item_features=items, user_features=people)


def generic(model, *args, **kwargs):
    """The generic path: the batch's score block, masking, top_k (no group path)."""
    return recommend_without(model, "_top_k_sources", *args, **kwargs)


def same(a, b):
    np.testing.assert_array_equal(a.items, b.items)
    assert a.scores.tobytes() == b.scores.tobytes()  # bit for bit: NaN, -0.0 and all
    np.testing.assert_array_equal(a.sources, b.sources)
    assert a.source_names == b.source_names


def check_all(model, data, ks=(1, 10, 40, 400)):
    users, fold = data[3], data[4]
    for k in ks:  # 400 > the catalogue: padded in both
        for exclude_seen in (True, False):
            for history in (None, fold):
                kwargs = {"exclude_seen": exclude_seen, "history": history}
                for batch_size in (None, 64):
                    fast = model.recommend_codes(users, k, batch_size=batch_size, **kwargs)
                    same(fast, generic(model, users, k, batch_size=batch_size, **kwargs))


@pytest.mark.parametrize("rules", list(RULES), ids=list(RULES))
def test_group_path_equals_generic_path(data, rules):
    model = fit(data, RULES[rules], PopularityRecommender())
    hist = model._history_rows(np.arange(100), None)
    assert model._top_k_sources(np.arange(100), hist, 10, True) is not None  # taken
    check_all(model, data)


@pytest.mark.parametrize("child", list(CHILDREN), ids=list(CHILDREN))
def test_every_static_child(data, child):
    model = fit(data, RULES["everything"], CHILDREN[child]())
    check_all(model, data, ks=(10, 400))


def test_nested_business_rules(data):
    inner = BusinessRules(model=PopularityRecommender(), rules=RULES["rank"] + RULES["pins"])
    model = fit(data, RULES["exclude"] + [{"pin": [2, 77], "for": {"gender": "F"}}], inner)
    hist = model._history_rows(np.arange(100), None)
    assert model._top_k_sources(np.arange(100), hist, 10, True) is not None  # taken
    check_all(model, data, ks=(10, 400))


def test_a_batch_is_never_scored_as_a_block(data, monkeypatch):
    """No (batch, n_items) array: neither the child nor the rules score the batch."""
    model = fit(data, RULES["everything"], PopularityRecommender())
    users, fold = data[3], data[4]
    expected = generic(model, users, 10, history=fold)
    rewritten = []
    rewrite = BusinessRules._rewrite

    def spy(self, scores, sources, rows):
        rewritten.append(len(rows))
        return rewrite(self, scores, sources, rows)

    def refuse(*args, **kwargs):
        raise AssertionError("the batch was scored as a block")

    monkeypatch.setattr(BusinessRules, "_rewrite", spy)
    monkeypatch.setattr(BusinessRules, "_score_sources", refuse)
    monkeypatch.setattr(Recommender, "score_codes", refuse)
    top = model.recommend_codes(users, 10, history=fold)
    same(top, expected)
    assert rewritten and max(rewritten) <= 16 < len(users)  # a few group rows, not a batch
    assert len(rewritten) == 1  # one batch, one rewrite of its groups


def test_too_many_groups_take_the_generic_path(data, monkeypatch):
    model = fit(data, RULES["everything"], PopularityRecommender())
    users, fold = data[3], data[4]
    codes = model.vocabulary_.users_in(users)  # the model's codes
    hist = model._history_rows(codes, None)
    n_groups = model._shared_scores(codes).scores.shape[0]
    assert 1 < n_groups <= business.MAX_GROUPS
    assert model._top_k_sources(codes, hist, 10, True) is not None
    monkeypatch.setattr(business, "MAX_GROUPS", n_groups - 1)
    assert model._top_k_sources(codes, hist, 10, True) is None
    fast = model.recommend_codes(users, 10, history=fold)  # generic path throughout
    monkeypatch.undo()
    same(fast, model.recommend_codes(users, 10, history=fold))
    # a quarter of the batch: 3 users cannot hold 2 groups of the group path
    two = np.array([model.vocabulary_.users_in(np.array([30]))[0], -1, -1])
    assert model._shared_scores(two) is None


def test_a_child_without_shared_scores_takes_the_generic_path(data):
    model = fit(data, RULES["rank"], RandomRecommender(seed=1))
    assert model.model.shared_score_codes(np.arange(5)) is None
    assert model._top_k_sources(np.arange(5), model._history_rows(np.arange(5), None), 3,
                                True) is None


def test_shared_scores_are_the_score_rows(data):
    """Each user's row of ``score_codes`` is its group's row of ``shared_score_codes``."""
    model = fit(data, RULES["everything"], PopularityRecommender())
    users, fold = data[3], data[4]
    shared = model.shared_score_codes(users)
    scores, sources = model.score_codes(users, fold)
    assert isinstance(shared, ScoreGroups)
    assert shared.scores.shape[0] == len(np.unique(shared.group)) > 2
    assert shared.scores[shared.group].tobytes() == scores.tobytes()
    np.testing.assert_array_equal(shared.sources[shared.group], sources)


def test_rank_rows_and_skip_history_by_hand():
    scores = np.array([[1, 3, np.nan, 3, -np.inf, np.inf, -0.0, 0.0],
                       [np.nan] * 8], dtype=np.float32)
    ranking, place = rank_rows(scores)
    assert ranking[0].tolist() == [5, 1, 3, 0, 6, 7, -1, -1]  # -0.0 ties 0.0: lower code
    assert ranking[1].tolist() == [-1] * 8
    assert place[0].tolist() == [3, 1, -1, 2, -1, 0, 4, 5]
    hist = sp.csr_matrix(np.array([[0, 1, 1, 0, 1, 0, 0, 0],   # group 0 saw 1, 2, 4
                                   [1, 0, 0, 0, 0, 0, 0, 0],   # group 1: nothing ranks
                                   [0, 0, 0, 0, 0, 1, 1, 1]]))  # group 0 saw 5, 6, 7
    out = skip_history(ranking, place, hist, 4, np.array([0, 1, 0]))
    assert out.tolist() == [[5, 3, 0, 6], [-1] * 4, [1, 3, 0, -1]]
    # what top_k gives on the masked block
    block = scores[[0, 1, 0]].copy()
    block[hist.toarray() > 0] = np.nan
    np.testing.assert_array_equal(out, top_k(block, 4)[0])


def test_score_groups_top_k_reports_top_k_scores():
    """Scores as top_k reports them: -0.0 becomes 0.0, NaN past the ranked items."""
    groups = ScoreGroups(np.array([1, 0, 1]),
                         np.array([[-0.0, 2, np.nan], [5, np.nan, -1]], dtype=np.float32),
                         np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16))
    items, top, sources = groups.top_k(None, 3, True)
    assert items.tolist() == [[0, 2, -1], [1, 0, -1], [0, 2, -1]]
    block = groups.scores[groups.group]
    ref_items, ref_top = top_k(block, 3)
    np.testing.assert_array_equal(items, ref_items)
    assert top.tobytes() == ref_top.tobytes()
    assert np.signbit(top[1, 1]) == np.False_  # -0.0 reported as +0.0
    assert sources.tolist() == [[4, 6, 0], [2, 1, 0], [4, 6, 0]]


def test_static_child_announces_one_group(data):
    train = data[0]
    child = PopularityRecommender().fit(train)
    shared = child.shared_score_codes(np.array([0, 5, -1]))
    assert shared.group.tolist() == [0, 0, 0]
    scores, _ = child.score_codes(np.array([0]), None)
    assert shared.scores.tobytes() == scores.tobytes()
    assert shared.sources is None
    assert pd.isna(scores[0, -1])  # an item without a training row: NaN, as in score_codes
