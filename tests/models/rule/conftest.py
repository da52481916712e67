"""Tiny hand-checkable data for the rule models."""

import numpy as np
import pandas as pd
import pytest

from bench.data.features import ItemFeatures
from bench.data.interactions import Interactions

DAY = 86_400


@pytest.fixture
def small():
    """Users a-d, items 1-5, ratings and day-stamped timestamps (day 10 is the cut).

    ====  =============================================
    user  (item, rating, day)
    ====  =============================================
    a     (1, 5, 0) (2, 4, 8) (3, 3, 10)
    b     (1, 4, 2) (2, 2, 9)
    c     (1, 3, 5) (4, 5, 10)
    d     - (only in the vocabulary: a test-only user)
    ====  =============================================
    Item 5 is in the vocabulary but never seen in training.
    """
    rows = [
        ("a", 1, 5.0, 0), ("a", 2, 4.0, 8), ("a", 3, 3.0, 10),
        ("b", 1, 4.0, 2), ("b", 2, 2.0, 9),
        ("c", 1, 3.0, 5), ("c", 4, 5.0, 10),
        ("d", 5, 1.0, 11),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    frame["timestamp"] = frame["timestamp"] * DAY
    full = Interactions.from_frame(frame, rating_scale=(1, 5))
    return full.take(full.users != full.user_ids.get_loc("d"))


@pytest.fixture
def items():
    """Genres and years of items 1-5."""
    return ItemFeatures.from_frame(pd.DataFrame({
        "item_id": [1, 2, 3, 4, 5],
        "title": ["One (1990)", "Two (1960)", "Three (2001)", "Four (1995)", "Five (2010)"],
        "genres": ["Comedy|Drama", "Drama", "Horror", "Comedy", "Horror|Comedy"],
    }))


@pytest.fixture
def people():
    """Demographics of users a-d (d has none on record)."""
    return pd.DataFrame(
        {"age": [17, 30, 61, np.nan], "gender": ["F", "M", "F", None],
         "occupation": ["student", "engineer", "retired", None]},
        index=pd.Index(["a", "b", "c", "d"], name="user_id"),
    )


def codes(x: Interactions, *ids) -> list[int]:
    return [int(x.user_ids.get_loc(i)) for i in ids]
