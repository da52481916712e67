"""The generator's guided inverse-CDF search returns exactly what searchsorted returns."""

import hashlib

import numpy as np
import pytest

from bench.data import synthetic
from bench.data.synthetic import CdfGuide


def segment_cdfs(rng, n_segments, n_items, exponent):
    w = (rng.permutation(n_items) + 1.0) ** -exponent
    w = w[None, :] * np.where(rng.random((n_segments, n_items)) < 0.3, 6.0, 1.0)
    cdf = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    return (cdf + np.arange(n_segments)[:, None]).ravel()


@pytest.mark.parametrize(
    "n_segments, n_items, exponent, table",
    [(4, 3000, 1.0, True), (3, 500, 6.0, True), (1, 100, 0.0, True),
     (1, 7, 0.0, False), (5000, 20, 1.0, False)],  # too few cells for a table: searchsorted
)  # fmt: skip
def test_guide_equals_searchsorted(n_segments, n_items, exponent, table):
    rng = np.random.default_rng(n_items)
    cdf = segment_cdfs(rng, n_segments, n_items, exponent)
    guide = CdfGuide(cdf, n_segments)
    assert (guide.table is not None) == table
    q = rng.integers(0, n_segments, 200_000) + rng.random(200_000)
    # and the awkward points: grid points, the CDF's own values, just below them
    q = np.r_[q, cdf[:-1], np.nextafter(cdf[:-1], -np.inf), np.arange(n_segments) + 0.0]
    np.testing.assert_array_equal(guide.search(q), np.searchsorted(cdf, q, side="right"))


def test_guide_falls_back_after_its_steps(monkeypatch):
    # one step only: most queries finish with the binary search, still exact
    monkeypatch.setattr(synthetic, "GUIDE_STEPS", 1)
    rng = np.random.default_rng(0)
    cdf = segment_cdfs(rng, 2, 4000, 2.0)
    q = rng.integers(0, 2, 50_000) + rng.random(50_000)
    np.testing.assert_array_equal(
        CdfGuide(cdf, 2).search(q), np.searchsorted(cdf, q, side="right")
    )


def digest(d):
    x = d.interactions
    arrays = (x.users, x.items, x.ratings, x.timestamps)
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()


# digests of the data the generator produced before its speed-ups (guide table, rounds
# in chunks, in-place ratings): the same seed must keep giving the same bits
PINNED = [({"seed": 0}, "ac80946641bff2dd"),
          ({"n_users": 3000, "n_items": 800, "n_interactions": 150_000, "seed": 9,
            "n_segments": 3}, "a861f75d59f78ea1")]


@pytest.mark.parametrize("kwargs, expected", PINNED)
def test_same_bits_as_before_the_speed_ups(kwargs, expected, monkeypatch):
    assert digest(synthetic.generate_synthetic(**kwargs))[:16] == expected
    monkeypatch.setattr(synthetic, "ROUND_DRAWS", 5_000)  # many chunks per round
    assert digest(synthetic.generate_synthetic(**kwargs))[:16] == expected


@pytest.mark.parametrize("kwargs, expected", PINNED)
def test_compiled_rounds_give_the_same_bits(kwargs, expected, monkeypatch):
    # the kernels (marker array per user, linear merge of the taken keys) on small data
    monkeypatch.setattr(synthetic, "KERNEL_MIN_ROWS", 0)
    calls = []
    real = synthetic._sampling_round

    def spy(*args, **kw):
        calls.append(args[-1] if len(args) > 8 else kw.get("scratch"))
        return real(*args, **kw)

    monkeypatch.setattr(synthetic, "_sampling_round", spy)
    assert digest(synthetic.generate_synthetic(**kwargs))[:16] == expected
    assert calls and all(c is not None for c in calls)  # the kernel ran every round
    monkeypatch.setattr(synthetic, "ROUND_DRAWS", 5_000)  # many chunks per round
    assert digest(synthetic.generate_synthetic(**kwargs))[:16] == expected


def test_merge_sorted_is_the_sorted_union():
    from bench.data.compiled import merge_sorted

    rng = np.random.default_rng(3)
    keys = rng.choice(10**6, 5_000, replace=False).astype(np.int64)
    for cut in (0, 1, 2_500, 5_000):
        a, b = np.sort(keys[:cut]), np.sort(keys[cut:])
        np.testing.assert_array_equal(merge_sorted(a, b), np.sort(keys))
