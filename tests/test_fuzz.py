"""Property-based fuzzing (Hypothesis) of the table loader and the metric functions.

The loader must either load a file or raise :class:`~bench.errors.DataError` (exit 2 at
the command line) — never another exception. The metrics, on any valid input, must not
raise and must stay in their documented ranges.
"""

from __future__ import annotations

import gzip
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.data.tabular import load_table
from bench.errors import DataError
from bench.metrics.beyond import beyond_accuracy
from bench.metrics.evaluator import RANKING_METRICS, evaluate_rankings
from tests.helpers import RATINGS_COLUMNS as COLUMNS

# BENCH_FUZZ_EXAMPLES=2000 for a long local hunt; the default keeps the file at ~2 s.
FUZZ = settings(max_examples=int(os.environ.get("BENCH_FUZZ_EXAMPLES", "40")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _load(content: bytes, suffix: str = ".csv", **kwargs):
    """Load ``content`` as a file; return the Dataset, or None after a DataError."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(content)
        try:
            return load_table(path=path, columns=COLUMNS, **kwargs)
        except DataError as exc:
            assert str(exc), "a DataError must carry a message"
            assert "fuzz" in str(exc), f"the message must name the file: {exc}"
            return None


def _check_loaded(ds, scale=None) -> None:
    frame = ds.interactions.to_frame()
    assert len(frame) > 0
    assert not frame["user_id"].isna().any() and not frame["item_id"].isna().any()
    assert not frame.duplicated(["user_id", "item_id"]).any()
    if "rating" in frame:
        r = frame["rating"].to_numpy(dtype=float)
        assert np.isfinite(r).all()
        if scale is not None:
            assert ((r >= scale[0]) & (r <= scale[1])).all()
    if "timestamp" in frame:
        assert (frame["timestamp"].to_numpy() >= 0).all()


# ---------------------------------------------------------------------- loader: raw bytes
@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_load_or_raise_data_error(content):
    ds = _load(content)
    if ds is not None:
        _check_loaded(ds)


@FUZZ
@given(st.binary(max_size=200), st.booleans())
def test_random_gzip_and_parquet_bytes_load_or_raise_data_error(content, compress):
    ds = _load(gzip.compress(content) if compress else content, suffix=".csv.gz")
    if ds is not None:
        _check_loaded(ds)
    ds = _load(b"PAR1" + content, suffix=".parquet")
    if ds is not None:
        _check_loaded(ds)


# ---------------------------------------------------------------------- loader: near-valid rows
BAD = ["", " ", "NaN", "nan", "NA", "null", "x", "é", '"', "inf", "-inf", "1e400", "-1",
       "99999999999999999999", "2020-13-45", "1960-01-01"]
BAD_FIELD = st.sampled_from(BAD)


def _mostly(*valid: str) -> st.SearchStrategy[str]:
    """A valid value about 9 times in 10, else one from ``BAD`` (so some files load)."""
    return st.one_of(*[st.sampled_from(valid)] * 9, BAD_FIELD)


USERS = _mostly("1", "2", "3", "007", "u1")
ITEMS = _mostly("10", "11", "12", "13", "a")
RATINGS = _mostly("1", "2.5", "3", "4", "5", "5.0", "0", "6")
STAMPS = _mostly("0", "5", "100", "1000000000", "2020-01-01", "2021-06-01T10:00:00Z", "-5")
ROW = st.one_of(
    st.tuples(USERS, ITEMS, RATINGS, STAMPS).map(list),
    st.tuples(USERS, ITEMS, RATINGS, STAMPS).map(list),
    st.lists(st.text(alphabet="0123456789.-e,;\t\"x ", max_size=6), min_size=1, max_size=5),
)


@FUZZ
@given(
    st.lists(ROW, min_size=0, max_size=8),
    st.sampled_from([",", ",", ";", "\t"]),
    st.sampled_from(["user,item,stars,ts", "user,item,stars,ts", "usr,item,stars,ts", ""]),
    st.sampled_from(["error", "keep_last", "keep_first", "mean"]),
    st.sampled_from([None, (1.0, 5.0)]),
)
def test_random_rows_load_or_raise_data_error(rows, sep, header, duplicates, scale):
    lines = ([header.replace(",", sep)] if header else []) + [sep.join(r) for r in rows]
    ds = _load(("\n".join(lines) + "\n").encode(), duplicates=duplicates, rating_scale=scale)
    if ds is not None:
        _check_loaded(ds, scale)
        assert len(ds.interactions) <= len(rows)


# ---------------------------------------------------------------------- metrics
@st.composite
def ranking_inputs(draw):
    n_users = draw(st.integers(1, 12))
    n_items = draw(st.integers(1, 15))
    k_max = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    recs = np.full((n_users, k_max), -1, dtype=np.int64)
    for u in range(n_users):
        length = int(rng.integers(0, min(k_max, n_items) + 1))
        recs[u, :length] = rng.choice(n_items, size=length, replace=False)
    cutoffs = sorted(set(draw(st.lists(st.integers(1, k_max), min_size=1, max_size=3))))
    return rng, recs, n_items, cutoffs


@FUZZ
@given(ranking_inputs(), st.booleans(), st.sampled_from(["relevant", "min_k_relevant"]))
def test_evaluate_rankings_values_in_unit_interval(inputs, graded, denominator):
    rng, recs, n_items, cutoffs = inputs
    n_users = recs.shape[0]
    dense = rng.random((n_users, n_items)) < 0.3
    dense[rng.integers(n_users), rng.integers(n_items)] = True  # someone has a relevant item
    gains = np.where(dense, rng.integers(1, 6, size=dense.shape), 0).astype(float)
    relevant = sp.csr_matrix(gains)
    ev = evaluate_rankings(recs, relevant, cutoffs, RANKING_METRICS, graded=graded,
                           map_denominator=denominator)
    with_relevant = np.flatnonzero(dense.any(axis=1))
    assert ev.users.tolist() == with_relevant.tolist()
    assert ev.n_excluded == n_users - len(with_relevant)
    assert set(ev.per_user) == {f"{m}@{k}" for m in RANKING_METRICS for k in cutoffs}
    for key, values in ev.per_user.items():
        assert values.shape == (len(with_relevant),), key
        assert np.isfinite(values).all(), key
        assert ((values >= -1e-12) & (values <= 1 + 1e-12)).all(), (key, values)
    for k in cutoffs:  # a hit anywhere in the top k <=> hit_rate 1 <=> mrr > 0
        assert np.array_equal(ev.per_user[f"hit_rate@{k}"] > 0, ev.per_user[f"mrr@{k}"] > 0)


@FUZZ
@given(ranking_inputs(), st.integers(1, 30), st.booleans())
def test_beyond_accuracy_values_in_range(inputs, n_train_users, with_features):
    rng, recs, n_items, cutoffs = inputs
    counts = rng.integers(0, n_train_users + 1, size=n_items)
    features = None
    if with_features:
        features = sp.csr_matrix((rng.random((n_items, 4)) < 0.4).astype(float))
    ev = beyond_accuracy(recs, cutoffs, item_counts=counts, n_train_users=n_train_users,
                         item_features=features)
    bounds = {"novelty": (0.0, math.log2(n_train_users)), "arp": (0.0, float(n_train_users)),
              "ild": (0.0, 1.0)}
    for key, values in ev.per_user.items():
        lo, hi = bounds[key.split("@")[0]]
        assert values.shape == (recs.shape[0],), key
        v = values[~np.isnan(values)]
        assert ((v >= lo - 1e-9) & (v <= hi + 1e-9)).all(), (key, values)
    for k in cutoffs:  # NaN exactly for empty lists
        empty = (recs[:, :k] < 0).all(axis=1)
        assert np.array_equal(np.isnan(ev.per_user[f"novelty@{k}"]), empty)
    for key, value in ev.aggregate.items():
        assert math.isnan(value) or -1e-9 <= value <= 1 + 1e-9, (key, value)
