"""EASE inverts in float32: close to the float64 closed form."""

import numpy as np
import pandas as pd

from bench.data.interactions import Interactions
from bench.models.collaborative import EASE, ease


def test_spd_inverse_float32_stays_float32_and_close_to_float64():
    rng = np.random.default_rng(1)
    x = (rng.random((200, 60)) < 0.1).astype(np.float64)
    a = x.T @ x + 20.0 * np.eye(60)
    want = np.linalg.inv(a)
    got = ease.spd_inverse(a.astype(np.float32), block=16)
    assert got.dtype == np.float32
    assert np.array_equal(got, got.T)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def test_weights_match_a_float64_closed_form():
    rng = np.random.default_rng(3)
    users, items = rng.integers(0, 80, 1500), rng.integers(0, 50, 1500)
    frame = pd.DataFrame({"user_id": users, "item_id": items,
                          "rating": rng.integers(1, 6, 1500).astype(float)})
    frame = frame.drop_duplicates(["user_id", "item_id"])
    model = EASE(l2=50.0, implicit=False).fit(Interactions.from_frame(frame))
    assert model.weights_.dtype == np.float32 and model.weights_.flags.c_contiguous
    x = model.values_.toarray()[:, model.items_].astype(np.float64)
    p = np.linalg.inv(x.T @ x + 50.0 * np.eye(x.shape[1]))
    want = -p / np.diag(p)[None, :]
    np.fill_diagonal(want, 0.0)
    np.testing.assert_allclose(model.weights_, want, rtol=1e-4, atol=1e-6)
