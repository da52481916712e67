"""Popularity variants: hand-computed scores on the `small` fixture (cut = day 10)."""

import numpy as np
import pandas as pd
import pytest

from bench.data.interactions import Interactions
from bench.errors import ConfigError
from bench.models.rule import (
    DecayedPopularityRecommender,
    PopularityRecommender,
    RatedPopularityRecommender,
    RecentPopularityRecommender,
)


def scores(model, x):
    return model.fit(x).score_codes(np.array([0, -1]), None)[0]


def test_all_time_counts_unchanged(small):
    s = scores(PopularityRecommender(), small)
    np.testing.assert_array_equal(s[0], [3, 2, 1, 1, np.nan])
    assert np.array_equal(s[0], s[1], equal_nan=True)  # unknown users get the same list
    s2 = scores(PopularityRecommender(min_count=2), small)
    np.testing.assert_array_equal(s2[0], [3, 2, np.nan, np.nan, np.nan])


def test_recent_window_counts_only_the_last_days(small):
    # window [day 7, day 10]: item 1 never, item 2 at days 8 and 9, items 3 and 4 at day 10
    s = scores(RecentPopularityRecommender(window_days=3), small)
    np.testing.assert_array_equal(s[0], [np.nan, 2, 1, 1, np.nan])
    # the window bound is inclusive: 5 days reaches item 1's day-5 interaction
    s = scores(RecentPopularityRecommender(window_days=5), small)
    np.testing.assert_array_equal(s[0], [1, 2, 1, 1, np.nan])
    s = scores(RecentPopularityRecommender(window_days=3, min_count=2), small)
    np.testing.assert_array_equal(s[0], [np.nan, 2, np.nan, np.nan, np.nan])


def test_decay_halves_every_half_life(small):
    s = scores(DecayedPopularityRecommender(half_life_days=5), small)
    # item 1: ages 10, 8, 5 days -> 0.25 + 0.5**1.6 + 0.5; item 2: ages 2, 1
    expected = [0.25 + 0.5**1.6 + 0.5, 0.5**0.4 + 0.5**0.2, 1.0, 1.0, np.nan]
    np.testing.assert_allclose(s[0], expected, rtol=1e-6)


def test_rated_is_the_damped_mean(small):
    # global mean = (5+4+3+4+2+3+5)/7 = 26/7
    mu = 26 / 7
    s = scores(RatedPopularityRecommender(damping=2), small)
    expected = [(12 + 2 * mu) / 5, (6 + 2 * mu) / 4, (3 + 2 * mu) / 3, (5 + 2 * mu) / 3, np.nan]
    np.testing.assert_allclose(s[0], expected, rtol=1e-6)
    raw = scores(RatedPopularityRecommender(damping=0), small)
    np.testing.assert_allclose(raw[0], [4, 3, 3, 5, np.nan])
    s = scores(RatedPopularityRecommender(damping=0, min_count=2), small)
    np.testing.assert_allclose(s[0], [4, 3, np.nan, np.nan, np.nan])


def test_time_rules_need_timestamps_and_rated_needs_ratings():
    x = Interactions.from_frame(pd.DataFrame({"user_id": [1, 2], "item_id": [1, 1]}))
    for model in (RecentPopularityRecommender(), DecayedPopularityRecommender()):
        with pytest.raises(ConfigError, match="needs interaction timestamps"):
            model.fit(x)
    with pytest.raises(ConfigError, match="needs explicit ratings"):
        RatedPopularityRecommender().fit(x)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (RecentPopularityRecommender(window_days=0), "window_days: expected a number > 0"),
        (RecentPopularityRecommender(min_count=0), "min_count: expected an integer >= 1"),
        (DecayedPopularityRecommender(half_life_days=-1), "half_life_days: expected"),
        (RatedPopularityRecommender(damping=-1), "damping: expected a number >= 0"),
    ],
)
def test_bad_hyperparameters(small, model, message):
    with pytest.raises(ConfigError, match=message):
        model.fit(small)
