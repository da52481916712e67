"""The synthetic generator: determinism, sizes, no duplicates, planted structure."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from bench.data.synthetic import SyntheticDataset, generate_synthetic
from bench.errors import ConfigError
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def ds() -> SyntheticDataset:
    return generate_synthetic(n_users=2000, n_items=1000, n_interactions=60_000, seed=3)


def arrays(d):
    x = d.interactions
    return [x.users, x.items, x.ratings, x.timestamps]


def test_same_seed_same_bits():
    a = generate_synthetic(seed=11)
    b = generate_synthetic(seed=11)
    for u, v in zip(arrays(a), arrays(b), strict=True):
        assert u.dtype == v.dtype and u.tobytes() == v.tobytes()
    assert a.interactions.fingerprint() == b.interactions.fingerprint()
    assert a.user_features.equals(b.user_features)
    assert a.segment_genres.equals(b.segment_genres)
    assert (a.item_features.genres != b.item_features.genres).nnz == 0
    assert generate_synthetic(seed=12).interactions.fingerprint() != a.interactions.fingerprint()


def test_sizes_and_vocabularies(ds):
    x = ds.interactions
    assert len(x) == 60_000 and x.n_users == 2000 and x.n_items == 1000
    assert list(x.user_ids) == list(range(2000)) and list(x.item_ids) == list(range(1000))
    counts = x.user_counts()
    assert counts.min() >= 1 and counts.max() <= 1000
    assert np.array_equal(counts, ds.user_features["n_interactions"].to_numpy())
    assert ds.summary()["rows"] == 60_000 and ds.name == "synthetic"


def test_no_duplicate_pairs(ds):
    x = ds.interactions
    keys = x.users.astype(np.int64) * x.n_items + x.items
    assert np.unique(keys).size == keys.size
    assert ds.drops == {}


def test_dense_users_exercise_exact_sampling():
    # users needing most of the catalogue: every pair distinct, counts exact
    d = generate_synthetic(n_users=20, n_items=30, n_interactions=560, n_segments=2, seed=5)
    x = d.interactions
    assert len(x) == 560
    keys = x.users.astype(np.int64) * 30 + x.items
    assert np.unique(keys).size == 560 and x.user_counts().max() <= 30
    full = generate_synthetic(n_users=5, n_items=7, n_interactions=35, n_segments=1)
    assert full.interactions.to_csr().toarray().min() == 1


def test_timestamps_strictly_increase_within_a_user(ds):
    x = ds.interactions
    same = np.diff(x.users) == 0
    assert np.all(np.diff(x.timestamps)[same] > 0)
    start = 1577836800  # 2020-01-01 UTC
    assert x.timestamps.min() >= start
    assert x.timestamps.max() < start + 365 * 86400


def test_ratings_on_scale_and_implicit(ds):
    r = ds.interactions.ratings
    assert set(np.unique(r)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert ds.interactions.rating_scale == (1.0, 5.0)
    imp = generate_synthetic(n_users=50, n_items=40, n_interactions=500, implicit=True)
    assert imp.implicit and not imp.interactions.has_ratings


def test_popularity_is_power_law(ds):
    counts = np.sort(ds.interactions.item_counts())[::-1]
    share = counts[: counts.size // 10].sum() / counts.sum()
    assert share > 0.4
    flat = generate_synthetic(n_users=2000, n_items=1000, n_interactions=60_000, seed=3,
                              popularity_exponent=0.0)  # fmt: skip
    c = np.sort(flat.interactions.item_counts())[::-1]
    assert c[: c.size // 10].sum() / c.sum() < 0.25
    # the planted popularity ranks the observed counts
    top = np.argsort(ds.item_popularity)[::-1][:50]
    assert ds.interactions.item_counts()[top].mean() > 5 * counts.mean()


def test_segment_taste_is_planted(ds):
    x = ds.interactions
    seg = ds.user_features["segment"].to_numpy()
    genres = ds.item_features.genres.toarray() > 0
    pref = ds.segment_genres.to_numpy() > 0
    assert pref.shape == (4, 8) and np.all(pref.sum(axis=1) == 2)
    assert np.all(pref.sum(axis=0) <= 1)  # disjoint tastes when genres suffice
    row_seg = seg[x.users]
    taste = (genres[x.items] & pref[row_seg]).any(axis=1)
    assert np.array_equal(taste, ds.in_taste[row_seg, x.items])
    catalogue = ds.in_taste.mean(axis=1)
    for s in range(4):
        observed = taste[row_seg == s].mean()
        assert observed > catalogue[s] + 0.25, (s, observed, catalogue[s])
        # a genre-count "model" recovers each segment's preferred genres
        counts = genres[x.items[row_seg == s]].sum(axis=0) / genres.sum(axis=0)
        assert set(np.argsort(counts)[::-1][:2]) == set(np.flatnonzero(pref[s]))
    r = x.ratings
    assert r[taste].mean() - r[~taste].mean() > 1.0


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match=r"n_interactions: expected between n_users"):
        generate_synthetic(n_users=10, n_items=5, n_interactions=51)
    with pytest.raises(ConfigError, match=r"n_interactions: expected between n_users"):
        generate_synthetic(n_users=10, n_items=5, n_interactions=9)
    with pytest.raises(ConfigError, match="n_items: expected a positive integer, got 0"):
        generate_synthetic(n_items=0)
    with pytest.raises(ConfigError, match="popularity_exponent"):
        generate_synthetic(popularity_exponent=-1)
    with pytest.raises(ConfigError, match="start: expected a date"):
        generate_synthetic(start="someday")


@pytest.mark.slow  # perf: a million rows
def test_vectorised_scale():
    t = time.perf_counter()
    d = generate_synthetic(n_users=20_000, n_items=5_000, n_interactions=1_000_000, seed=1)
    elapsed = time.perf_counter() - t
    assert len(d.interactions) == 1_000_000
    assert elapsed < 15, f"1M rows took {elapsed:.1f}s"


def test_config_instantiates():
    cfg = OmegaConf.create({"seed": 4})
    cfg.dataset = OmegaConf.load(ROOT / "configs" / "dataset" / "synthetic.yaml")
    d = instantiate(cfg.dataset, n_users=100, n_items=50, n_interactions=1000)
    assert isinstance(d, SyntheticDataset) and len(d.interactions) == 1000
    direct = generate_synthetic(n_users=100, n_items=50, n_interactions=1000, seed=4)
    assert d.interactions.fingerprint() == direct.interactions.fingerprint()
