"""Business rules over a child model: each rule type, sources, nesting, errors."""

import numpy as np
import pytest
from omegaconf import OmegaConf

from bench.errors import ConfigError
from bench.models.base import Recommender
from bench.models.rule import BusinessRules, PopularityRecommender, SegmentRecommender
from bench.targets import build
from tests.helpers import compose_config

NAN = np.nan
D = np.array([3])  # user d: no training history, so nothing is masked


class Fixed(Recommender):
    """Scores item code + 1 + offset for everyone (item 5 best).

    It knows the catalogue (``extra_vocabulary``), so it scores item 5, which has no
    training row; a model without it could not.
    """

    family = "collaborative"
    extra_vocabulary = frozenset({"item_features"})

    def __init__(self, *, offset: float = 0.0):
        self.offset = offset

    def _fit(self, train, item_features, user_features):
        self.n_ = train.n_items

    def _score(self, users, history):
        row = np.arange(1, self.n_ + 1, dtype=np.float32) + np.float32(self.offset)
        return np.tile(row, (len(users), 1))


def wrap(small, items, people, rules, child=None, **kw):
    model = BusinessRules(model=child or Fixed(), rules=rules, **kw)
    return model.fit(small, item_features=items, user_features=people)


def test_exclude_ids_keeps_lists_full(small, items, people):
    m = wrap(small, items, people, [{"exclude": [5, 4]}])
    np.testing.assert_allclose(m.score_codes(D, None)[0][0], [1, 2, 3, NAN, NAN])
    assert m.recommend_codes(D, 3).items[0].tolist() == [2, 1, 0]  # still 3 items


def test_exclude_predicate_for_a_user_segment(small, items, people):
    m = wrap(small, items, people, [{"exclude": {"genre": "Horror"}, "for": {"gender": "F"}}])
    s = m.score_codes(np.array([0, 1]), None)[0]  # a is F, b is M
    np.testing.assert_allclose(s[0], [1, 2, NAN, 4, NAN])
    np.testing.assert_allclose(s[1], [1, 2, 3, 4, 5])


def test_include_only(small, items, people):
    m = wrap(small, items, people, [{"include_only": {"year": {"lt": 2000}}}])
    np.testing.assert_allclose(m.score_codes(D, None)[0][0], [1, 2, NAN, 4, NAN])


def test_boost_and_bury_add(small, items, people):
    m = wrap(small, items, people, [{"boost": {"genre": "Drama"}, "amount": 2.5, "mode": "add"},
                                    {"bury": [5], "amount": 1, "mode": "add"}])
    np.testing.assert_allclose(m.score_codes(D, None)[0][0], [3.5, 4.5, 3, 4, 4])


def test_multiply_moves_negative_scores_the_right_way(small, items, people):
    boost = {"boost": {"genre": "Comedy"}, "amount": 2, "mode": "multiply"}  # items 1, 4, 5
    m = wrap(small, items, people, [boost], child=Fixed(offset=-3))  # [-2, -1, 0, 1, 2]
    np.testing.assert_allclose(m.score_codes(D, None)[0][0], [-1, -1, 0, 2, 4])
    bury = {**boost, "bury": boost["boost"]}
    del bury["boost"]
    m = wrap(small, items, people, [bury], child=Fixed(offset=-3))
    np.testing.assert_allclose(m.score_codes(D, None)[0][0], [-4, -1, 0, 0.5, 1])


def test_rank_mode_moves_positions(small, items, people):
    # positions before: item 5 -> 0, 4 -> 1, 3 -> 2, 2 -> 3, 1 -> 4
    m = wrap(small, items, people, [{"boost": [1], "amount": 2, "mode": "rank"}])
    np.testing.assert_allclose(m.score_codes(D, None)[0][0], [-1.5, -3, -2, -1, 0])
    assert m.recommend_codes(D, 5).items[0].tolist() == [4, 3, 0, 2, 1]
    m = wrap(small, items, people, [{"bury": [5], "amount": 1}])  # rank is the default mode
    assert m.recommend_codes(D, 3).items[0].tolist() == [3, 4, 2]


def test_pins_go_first_in_order_and_are_labelled(small, items, people):
    m = wrap(small, items, people, [{"pin": [2, 1]}, {"exclude": [1]}])
    top = m.recommend_codes(np.array([3, 1]), 3)
    # d: pins 2 then 1 (the pin beats the exclusion), then item 5
    assert top.items[0].tolist() == [1, 0, 4]
    assert m.source_labels(top)[0].tolist() == ["rules:pin", "rules:pin", "Fixed"]
    # b saw items 1 and 2: both pins are masked, the child's list follows
    assert top.items[1].tolist() == [4, 3, 2]
    assert m.source_names() == ("Fixed", "rules:pin")


def test_nesting_keeps_child_sources(small, items, people):
    seg = SegmentRecommender(
        segments=[{"name": "women", "when": {"gender": "F"}, "show": "popular"}],
        default={"show": {"rank_by": "global"}},
    )
    inner = BusinessRules(model=seg, rules=[{"pin": [5]}])
    rules = [{"exclude": [4]}, {"pin": [3], "for": {"segment": "women"}}]
    outer = wrap(small, items, people, rules, child=inner)
    assert outer.source_names() == ("segment:women", "segment:default",
                                    "segment:women:fallback", "segment:default:fallback",
                                    "rules:pin")
    top = outer.recommend_codes(np.array([1, 3]), 3)  # b (default): seen 1, 2; d (default)
    labels = outer.source_labels(top)
    # b: inner pin 5, then global popularity of item 3 (item 4 excluded)
    assert top.items[0].tolist() == [4, 2, -1]
    assert labels[0, :2].tolist() == ["rules:pin", "segment:default"]
    assert outer.user_segments(np.array([0, 1])).tolist() == ["women", "default"]
    a = outer.recommend_codes(np.array([0]), 2)  # a (women) saw 1, 2, 3: pin 3 masked
    assert a.items[0].tolist() == [4, -1]


def test_family_and_params_come_from_the_child(small, items, people):
    m = BusinessRules(model=PopularityRecommender(), rules=[])
    assert m.family == "rule"
    assert BusinessRules(model=Fixed(), rules=[]).family == "collaborative"
    assert isinstance(m.get_params()["model"], PopularityRecommender)
    assert repr(type(m)(**m.get_params())) == repr(m)


def test_unknown_item_ids(small, items, people):
    with pytest.raises(ConfigError, match=r"rules\[0\]\.exclude\.item_id\.in: unknown value\(s\) "
                                          r"\[99\] for attribute 'item_id'; item ids must be in "
                                          r"the dataset's item vocabulary"):
        wrap(small, items, people, [{"exclude": [99, 1]}])
    with pytest.raises(ConfigError, match=r"rules\[0\]\.pin: unknown item id\(s\) \[98, 99\]"):
        wrap(small, items, people, [{"pin": [98, 1, 99]}])
    m = wrap(small, items, people, [{"exclude": [99, 5]}, {"pin": [98, 1]}],
             ignore_unknown_items=True)
    assert m.recommend_codes(D, 2).items[0].tolist() == [0, 3]
    assert m.unknown_items_ignored_ == {"BusinessRules rules[0].exclude.item_id.in": [99],
                                        "BusinessRules rules[1].pin": [98]}


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"exclude": [1], "pin": [2]}, r"rules\[0\]: expected exactly one action key"),
        ({"hide": [1]}, r"expected exactly one action key of \['exclude', 'include_only', "
                        r"'boost', 'bury', 'pin'\]"),
        ({"boost": [1], "mode": "add"}, r"rules\[0\]\.amount: expected a number for mode 'add'"),
        ({"boost": [1], "amount": 0, "mode": "multiply"}, r"expected a number > 0"),
        ({"boost": [1], "amount": 1, "mode": "power"}, r"mode: expected one of \['add', "
                                                      r"'multiply', 'rank'\]"),
        ({"exclude": [1], "amount": 2}, r"unknown key\(s\) \['amount'\] for a 'exclude' rule"),
        ({"exclude": "Horror"}, r"expected a list of item ids or an item predicate"),
        ({"pin": []}, r"rules\[0\]\.pin: expected a non-empty list of item ids"),
        ({"exclude": {"genre": "Horror"}, "for": {"mood": 1}},
         r"rules\[0\]\.for\.mood: unknown attribute 'mood'"),
    ],
)
def test_bad_rules(small, items, people, rule, message):
    with pytest.raises(ConfigError, match=message):
        wrap(small, items, people, [rule])


def test_config_composes_the_child_from_another_model_config(small, items):
    cfg = compose_config(["model=[rule_business_popular]", "tracker=none"])
    node = OmegaConf.to_container(cfg.models.rule_business_popular, resolve=True)
    assert node["model"]["_target_"] == "bench.models.rule.popular.PopularityRecommender"
    model = build(node, "models.rule_business_popular")
    assert isinstance(model.model, PopularityRecommender)
    model.fit(small, item_features=items)
    assert model.family == "rule"
    # popularity ranks items 1, 2, 3, 4; the shipped boost lifts item 3 (2001) 3 places
    assert model.recommend_codes(D, 3).items[0].tolist() == [2, 0, 1]
