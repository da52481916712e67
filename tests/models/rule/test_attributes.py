"""User and item attributes derived from the `small` fixture."""

import numpy as np
import pytest

from bench.errors import ConfigError
from bench.models.rule.attributes import (
    activity_band,
    age_band,
    check_thresholds,
    item_attributes,
    user_attributes,
    user_table,
)


def test_age_bands_edges():
    bands = age_band(np.array([5, 17, 18, 24, 25, 34, 35, 44, 45, 54, 55, 90, np.nan]))
    assert bands.tolist() == ["<18", "<18", "18-24", "18-24", "25-34", "25-34", "35-44",
                              "35-44", "45-54", "45-54", "55+", "55+", None]


def test_activity_bands_thresholds():
    got = activity_band(np.array([0, 1, 2, 3, 4, 10]), (2, 4)).tolist()
    assert got == ["none", "light", "medium", "medium", "heavy", "heavy"]
    with pytest.raises(ConfigError, match=r"activity_thresholds: expected two integers"):
        check_thresholds("X", [5, 5])


def test_user_attributes_hand_computed(small, items, people):
    f = user_attributes(small, items, people, activity_thresholds=(2, 3))
    assert f["activity"].tolist() == [3, 2, 2, 0]
    assert f["activity_band"].tolist() == ["heavy", "medium", "medium", "none"]
    assert f["age_band"].iloc[:3].tolist() == ["<18", "25-34", "55+"]
    assert f.iloc[3][["age", "age_band", "gender", "occupation", "favourite_genre"]].isna().all()
    assert f["gender"].iloc[:3].tolist() == ["F", "M", "F"]
    assert f["occupation"].iloc[:3].tolist() == ["student", "engineer", "retired"]
    # a: Comedy 1 (item 1), Drama 2 (items 1, 2), Horror 1 -> Drama
    # b: Comedy 1, Drama 2 -> Drama; c: Comedy 2 (items 1, 4), Drama 1 -> Comedy
    assert f["favourite_genre"].iloc[:3].tolist() == ["Drama", "Drama", "Comedy"]
    # last interactions: a day 10, b day 9, c day 10; the cut is day 10
    np.testing.assert_allclose(f["recency_days"], [0, 1, 0, np.nan])
    np.testing.assert_allclose(f["mean_rating"], [4, 3, 4, np.nan])


def test_favourite_genre_ties_go_to_the_first_genre(small, items):
    # b's items 1 (Comedy|Drama) and 2 (Drama) -> Drama 2; drop item 2 and it is a tie
    x = small.take(~((small.users == 1) & (small.items == 1)))
    f = user_attributes(x, items)
    assert f["favourite_genre"].iloc[1] == "Comedy"  # tie Comedy 1, Drama 1 -> alphabetical


def test_missing_sources_drop_columns(small):
    f = user_attributes(small)
    assert set(f.columns) == {"activity", "activity_band", "recency_days", "mean_rating"}
    table = user_table(f)
    assert "demographics" in table.unavailable["gender"]
    assert table.unavailable["favourite_genre"] == "the item features have no genres"
    # the unknown-user row: no history
    assert table.numbers["activity"][-1] == 0
    assert table.categories["activity_band"][-1] == "none"


def test_item_attributes(small, items):
    t = item_attributes(small.item_ids, items, small.item_counts())
    assert t.numbers["popularity"].tolist() == [3, 2, 1, 1, 0]
    assert t.numbers["year"].tolist() == [1990, 1960, 2001, 1995, 2010]
    matrix, names = t.sets["genre"]
    assert names == ("Comedy", "Drama", "Horror")
    assert matrix.toarray().tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [1, 0, 1]]
    bare = item_attributes(small.item_ids, None, small.item_counts())
    assert "genre" in bare.unavailable and "year" in bare.unavailable
