"""ALS: a second fit on the same matrix and settings reuses the first, bit for bit."""

import numpy as np
import pandas as pd

from bench.data.interactions import Interactions
from bench.models.collaborative import als as als_module
from bench.models.collaborative.als import ImplicitALS


def _train(seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"user_id": rng.integers(0, 60, 600), "item_id": rng.integers(0, 40, 600)})
    return Interactions.from_frame(frame.drop_duplicates())


def test_same_matrix_and_settings_share_one_fit(monkeypatch):
    monkeypatch.setattr(als_module, "_fits", type(als_module._fits)())
    calls = []
    real = als_module.shared_factors

    def counting(matrix, settings, fit):
        return real(matrix, settings, lambda x: calls.append(1) or fit(x))

    monkeypatch.setattr(als_module, "shared_factors", counting)
    a = ImplicitALS(factors=8, iterations=3, num_threads=1).fit(_train(0))
    b = ImplicitALS(factors=8, iterations=3, num_threads=1).fit(_train(0))
    assert len(calls) == 1
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    assert a.user_factors_ is not b.user_factors_  # copies: no shared mutable state
    ImplicitALS(factors=8, iterations=4, num_threads=1).fit(_train(0))  # other settings
    ImplicitALS(factors=8, iterations=3, num_threads=1).fit(_train(1))  # other data
    assert len(calls) == 3
    monkeypatch.setattr(als_module, "_fits", type(als_module._fits)())
    fresh = ImplicitALS(factors=8, iterations=3, num_threads=1).fit(_train(0))
    np.testing.assert_array_equal(fresh.item_factors_, a.item_factors_)  # deterministic
