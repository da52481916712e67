"""Segment targeting on the `small` fixture (users a-d, items 1-5; see conftest)."""

import numpy as np
import pytest

from bench.errors import ConfigError
from bench.models.rule import SegmentRecommender

NAN = np.nan
ALL = np.array([0, 1, 2, 3, -1])  # a, b, c, d (no history), an unknown user


def fit(small, items, people, **kw):
    return SegmentRecommender(**kw).fit(small, item_features=items, user_features=people)


def test_assignment_first_match_wins_and_default(small, items, people):
    m = fit(small, items, people,
            segments=[{"name": "women", "when": {"gender": "F"}, "show": "popular"},
                      {"name": "young", "when": {"age_band": "<18"}, "show": "popular"}],
            default={"show": {"rank_by": "global"}})
    # a is female and young: the first segment wins
    assert m.user_segments(ALL).tolist() == ["women", "default", "women", "default", "default"]
    assert m.segment_sizes_ == {"women": 2, "young": 0, "default": 1}


def test_segment_popularity_with_global_tie_break(small, items, people):
    m = fit(small, items, people,
            segments=[{"name": "women", "when": {"gender": "F"}, "show": "popular"}],
            default={"show": {"rank_by": "global"}})
    s, src = m.score_codes(ALL, None)
    # women = a + c: item 1 twice, items 2, 3, 4 once; ties broken by global count / (3 + 1)
    np.testing.assert_allclose(s[0], [2.75, 1.5, 1.25, 1.25, NAN])
    np.testing.assert_allclose(s[1], [3, 2, 1, 1, NAN])  # default: global popularity
    assert np.array_equal(s[4], s[1], equal_nan=True)  # unknown user -> default
    names = m.source_names()
    assert [names[c] for c in src[:, 0]] == ["segment:women", "segment:default",
                                             "segment:women", "segment:default",
                                             "segment:default"]
    top = m.recommend_codes(np.array([2]), 3)  # c saw items 1 and 4
    assert top.items[0].tolist() == [1, 2, -1]


def test_popular_in_favourite_genre_and_explicit_fallback(small, items, people):
    show = {"popular_in": "favourite_genre", "rank_by": "global"}
    m = fit(small, items, people, segments=[], default={"show": show})
    s = m.score_codes(ALL, None)[0]
    np.testing.assert_allclose(s[0], [3, 2, NAN, NAN, NAN])  # a: Drama = items 1, 2
    np.testing.assert_allclose(s[2], [3, NAN, NAN, 1, NAN])  # c: Comedy = 1, 4 (5 unseen)
    assert np.isnan(s[3]).all() and np.isnan(s[4]).all()  # no favourite genre: nothing
    m = fit(small, items, people, segments=[], default={"show": show, "fallback": "global"})
    s, src = m.score_codes(ALL, None)
    np.testing.assert_allclose(s[3], [3, 2, 1, 1, NAN])
    assert m.source_names()[src[3, 0]] == "segment:default:fallback"
    assert m.source_names()[src[0, 0]] == "segment:default"


def test_empty_segment_is_nan_unless_fallback_declared(small, items, people):
    segs = [{"name": "newcomers", "when": {"activity_band": "none"}, "show": "popular"}]
    m = fit(small, items, people, segments=segs, default={"show": "popular"})
    assert m.user_segments(ALL)[3:].tolist() == ["newcomers", "newcomers"]
    assert (m.recommend_codes(np.array([3, -1]), 3).items == -1).all()
    segs[0]["fallback"] = "global"
    m = fit(small, items, people, segments=segs, default={"show": "popular"})
    assert m.recommend_codes(np.array([3]), 3).items[0].tolist() == [0, 1, 2]


def test_item_filter_and_window(small, items, people):
    m = fit(small, items, people, segments=[],
            default={"show": {"rank_by": "global", "filter": {"year": {"gte": 1995}}}})
    np.testing.assert_allclose(m.score_codes(ALL[:1], None)[0][0], [NAN, NAN, 1, 1, NAN])
    # last 3 days (>= day 7): item 2 twice, items 3 and 4 once; tie = windowed count / 3
    m = fit(small, items, people, segments=[], default={"show": {"window_days": 3}})
    np.testing.assert_allclose(m.score_codes(ALL[:1], None)[0][0],
                               [NAN, 2 + 2 / 3, 1 + 1 / 3, 1 + 1 / 3, NAN], rtol=1e-6)


def test_demographics_missing_is_a_clear_error(small, items):
    model = SegmentRecommender(segments=[{"name": "m", "when": {"gender": "M"},
                                          "show": "popular"}], default={"show": "popular"})
    with pytest.raises(ConfigError, match=r"segments\[0\]\.when\.gender: attribute 'gender' "
                                          r"is not available: this dataset has no user "
                                          r"demographics"):
        model.fit(small, item_features=items)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"segments": [{"name": "x", "when": {"activity": {"lt": 5}}}]},
         r"segments\[0\]: missing 'show'"),
        ({"segments": [{"name": "default", "show": "popular"}]},
         r"segments\[0\]\.name: expected a unique non-empty name other than 'default'"),
        ({"segments": [{"name": "x", "show": "popular", "colour": 1}]},
         r"segments\[0\]: unknown key\(s\) \['colour'\]"),
        ({"segments": [{"name": "x", "show": {"rank_by": "hype"}}]},
         r"segments\[0\]\.show\.rank_by: expected one of \['segment', 'global'\]"),
        ({"segments": [{"name": "x", "show": {"popular_in": "mood"}}]},
         r"popular_in: expected one of \['favourite_genre'\]"),
        ({"segments": [{"name": "x", "show": "popular", "fallback": "random"}]},
         r"fallback: expected null or 'global'"),
        ({"segments": [{"name": "x", "when": {"activity_band": "huge"}, "show": "popular"}]},
         r"unknown value\(s\) \['huge'\] for attribute 'activity_band'; expected one of "
         r"\['none', 'light', 'medium', 'heavy'\]"),
        ({"segments": [{"name": "x", "when": {"mood": "happy"}, "show": "popular"}]},
         r"unknown attribute 'mood'; expected one of \['activity', 'activity_band', 'age'"),
        ({"segments": [{"name": "x", "when": {}, "show": {"filter": {"genre": "Jazz"}}}]},
         r"segments\[0\]\.show\.filter\.genre\.eq: unknown value\(s\) \['Jazz'\]"),
        ({"segments": [], "default": "popular"}, r"default: expected a mapping \{show"),
    ],
)
def test_bad_segment_configs(small, items, people, kw, message):
    kw.setdefault("default", {"show": "popular"})
    with pytest.raises(ConfigError, match=message):
        fit(small, items, people, **kw)
