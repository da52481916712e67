"""rec_cooc's own tests: recspectrum's conformance kit in one line, plus a hand-checked case."""

import numpy as np
import pandas as pd
from bench.data.interactions import Interactions
from bench.testing import check_recommender

from rec_cooc import Cooccurrence


def test_cooccurrence_conforms():
    check_recommender(Cooccurrence, params={"similarity": "cosine"}, personalised=True)


def test_counts_items_consumed_together():
    # u1 and u2 both have a and b, u3 has a and c: after a, b (2 users) beats c (1 user)
    train = Interactions.from_frame(pd.DataFrame({
        "user_id": ["u1", "u1", "u2", "u2", "u3", "u3", "u4"],
        "item_id": ["a", "b", "a", "b", "a", "c", "a"],
    }))
    model = Cooccurrence(similarity="count").fit(train)
    recs = model.recommend(["u4"], k=3)
    assert recs["item_id"].tolist() == ["b", "c"]
    np.testing.assert_array_equal(recs["score"].to_numpy(), np.float32([2.0, 1.0]))
