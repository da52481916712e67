"""The validating constructor, duplicate policies, fingerprints, to_csr and take."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bench.data.interactions as interactions_module
from bench import machine
from bench.data.interactions import MAX_SECONDS, Interactions
from bench.errors import DataError

SRC = "/data/ratings.csv"


def frame(**cols) -> pd.DataFrame:
    base = {"user_id": [1, 1, 2, 3], "item_id": [10, 11, 10, 12]}
    base.update(cols)
    return pd.DataFrame(base)


def build(df: pd.DataFrame, **kw) -> Interactions:
    return Interactions.from_frame(df, source=SRC, **kw)


def raises(df: pd.DataFrame, *patterns: str, **kw) -> str:
    with pytest.raises(DataError) as info:
        build(df, **kw)
    msg = str(info.value)
    assert msg.startswith(SRC), msg
    for p in patterns:
        assert re.search(p, msg), f"{p!r} not in {msg!r}"
    return msg


# ---------------------------------------------------------------------- bad input
def test_missing_required_column_names_it_and_the_columns_found():
    df = pd.DataFrame({"user": [1], "item_id": [2]})
    raises(
        df, r"missing required column\(s\) \['user_id'\]", r"found columns \['user', 'item_id'\]"
    )


def test_no_rows():
    raises(pd.DataFrame({"user_id": [], "item_id": []}), "at least one interaction row")


@pytest.mark.parametrize("bad", [np.nan, None])
def test_nan_user_id_names_column_and_row(bad):
    df = frame(user_id=[1, bad, 2, 3])
    raises(df, "column 'user_id'", "1 missing/empty id", "data row 2")


def test_empty_string_item_id():
    df = frame(item_id=["a", "b", "  ", "c"])
    raises(df, "column 'item_id'", "data row 3", "non-empty id")


def test_fractional_and_infinite_float_ids():
    raises(frame(user_id=[1.0, 2.5, 3.0, 4.0]), "'user_id' data row 2", "2.5")
    raises(frame(item_id=[1.0, np.inf, 3.0, 4.0]), "'item_id' data row 2", "inf")


def test_integral_float_ids_become_integers():
    x = build(frame(user_id=[1.0, 1.0, 2.0, 3.0]))
    assert x.user_ids.dtype == np.int64
    assert list(x.user_ids) == [1, 2, 3]


def test_mixed_id_types():
    raises(frame(user_id=[1, "a", 2, 3]), "ids of one type", "data row 2", "'a'")
    raises(frame(item_id=["10", 10, 11, 12]), "ids of one type", "data row 2")


def test_non_numeric_rating():
    raises(frame(rating=[4.0, "five", 3.0, 1.0]), "column 'rating'", "non-numeric", "data row 2",
           "'five'")  # fmt: skip


def test_missing_rating():
    raises(frame(rating=[4.0, 3.0, None, 1.0]), "column 'rating'", "missing", "data row 3")


def test_bool_rating_is_not_a_number():
    raises(frame(rating=[True, False, True, True]), "column 'rating'", "bool")


def test_rating_outside_scale():
    raises(
        frame(rating=[4.0, 6.0, 0.0, 1.0]),
        r"2 value\(s\) outside the declared scale \[1, 5\]",
        "data row 2",
        "got 6",
        rating_scale=(1, 5),
    )


def test_unparseable_timestamp():
    raises(
        frame(timestamp=["2020-01-01", "yesterday", "2020-01-03", "2020-01-04"]),
        "column 'timestamp'",
        "unparseable",
        "data row 2",
        "'yesterday'",
    )


def test_fractional_or_negative_unix_timestamp():
    raises(frame(timestamp=[1.0, 2.5, 3.0, 4.0]), "'timestamp' data row 2", "Unix seconds")
    raises(frame(timestamp=[1, -5, 3, 4]), "'timestamp' data row 2", "non-negative")


def test_bool_timestamp_is_refused_not_recursed():
    raises(frame(timestamp=[True, False, True, False]), "column 'timestamp'", "bool")


def test_timestamps_accept_dates_and_datetimes():
    a = build(
        frame(timestamp=["1970-01-01T00:00:10Z", "1970-01-01 00:00:20", "1970-01-01", "1970-01-02"])
    )
    assert sorted(a.timestamps.tolist()) == [0, 10, 20, 86400]
    assert sorted(build(frame(timestamp=["10", "20", "30", "40"])).timestamps) == [10, 20, 30, 40]
    b = build(frame(timestamp=pd.to_datetime([10, 20, 30, 40], unit="s")))
    assert sorted(b.timestamps.tolist()) == [10, 20, 30, 40]


def test_unknown_duplicate_policy():
    raises(frame(), "duplicates policy", "keep_last", duplicates="drop")


# ---------------------------------------------------------------------- duplicates
DUP = pd.DataFrame(
    {
        "user_id": [1, 1, 1, 2, 2],
        "item_id": [5, 5, 5, 5, 6],
        "rating": [1.0, 5.0, 3.0, 4.0, 2.0],
        "timestamp": [100, 300, 200, 50, 60],
    }
)


def test_duplicates_error_names_count_row_and_pair():
    raises(DUP, r"2 duplicate \(user_id, item_id\) row\(s\)", "duplicates='error'",
           r"data row \d: \(1, 5\)", "keep_last, keep_first or mean")  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "rating", "timestamp"),
    [("keep_last", 5.0, 300), ("keep_first", 1.0, 100), ("mean", 3.0, 300)],
)
def test_duplicate_policies(policy, rating, timestamp):
    x = build(DUP, duplicates=policy)
    assert len(x) == 3
    assert dict(x.drops) == {f"duplicates_{policy}": 2}
    out = x.to_frame().set_index(["user_id", "item_id"])
    assert out.loc[(1, 5), "rating"] == rating
    assert out.loc[(1, 5), "timestamp"] == timestamp
    assert out.loc[(2, 6), "rating"] == 2.0


def test_keep_last_without_timestamps_uses_row_order():
    df = DUP.drop(columns="timestamp")
    assert build(df, duplicates="keep_last").to_frame()["rating"].tolist()[0] == 3.0
    assert build(df, duplicates="keep_first").to_frame()["rating"].tolist()[0] == 1.0


# ---------------------------------------------------------------------- fingerprints
FULL = pd.DataFrame(
    {
        "user_id": [3, 1, 2, 1, 2],
        "item_id": ["b", "a", "a", "c", "c"],
        "rating": [4.0, 3.0, 5.0, 1.0, 2.0],
        "timestamp": [5, 4, 3, 2, 1],
    }
)


def test_fingerprint_is_stable_and_order_independent():
    a = build(FULL)
    b = build(FULL.sample(frac=1.0, random_state=3))
    assert a.fingerprint() == b.fingerprint() == build(FULL.copy()).fingerprint()
    assert re.fullmatch(r"[0-9a-f]{64}", a.fingerprint())


def test_fingerprint_changes_with_content():
    base = build(FULL).fingerprint()
    for col, value in (("rating", 4.5), ("timestamp", 9), ("item_id", "z"), ("user_id", 7)):
        changed = FULL.copy()
        changed.loc[0, col] = value
        assert build(changed).fingerprint() != base, col
    assert build(FULL.drop(columns="rating")).fingerprint() != base


def test_fingerprint_independent_of_vocabulary_size():
    x = build(FULL)
    rows = np.flatnonzero(x.to_frame()["user_id"].to_numpy() != 3)
    part = x.take(rows)
    alone = build(FULL[FULL.user_id != 3])
    assert part.n_users == 3 and alone.n_users == 2
    assert part.fingerprint() == alone.fingerprint()


def test_fingerprint_is_kept_and_equals_a_fresh_hash(monkeypatch):
    x = build(FULL)
    first = x.fingerprint()
    # a second call reads the kept value: hashing again would go through sha256
    monkeypatch.setattr(interactions_module.hashlib, "sha256", None)
    assert x.fingerprint() == first
    monkeypatch.undo()
    # an equal object (its own first call) hashes to the same value; take() starts afresh
    assert build(FULL.copy()).fingerprint() == first
    part = x.take(np.arange(3))
    assert part.fingerprint() != first
    assert part.fingerprint() == build(part.to_frame()).fingerprint()


def test_two_threads_asking_at_once_hash_once(monkeypatch):
    """The run's thread may ask for a fingerprint the background thread is computing:
    it waits for that result instead of reading the rows a second time."""
    import threading
    import time

    x = build(FULL)
    real = Interactions._hash
    calls = []

    def slow_hash(self):
        calls.append(threading.current_thread().name)
        time.sleep(0.2)  # long enough for the second caller to arrive meanwhile
        return real(self)

    monkeypatch.setattr(Interactions, "_hash", slow_hash)
    got = {}
    first = threading.Thread(target=lambda: got.setdefault("thread", x.fingerprint()))
    first.start()
    time.sleep(0.05)
    got["caller"] = x.fingerprint()
    first.join()
    assert len(calls) == 1
    assert got["thread"] == got["caller"] == build(FULL.copy()).fingerprint()


def test_a_failed_hash_raises_for_every_waiting_caller_and_is_not_kept(monkeypatch):
    x = build(FULL)

    def broken(self):
        raise OSError("disk gone")

    monkeypatch.setattr(Interactions, "_hash", broken)
    with pytest.raises(OSError, match="disk gone"):
        x.fingerprint()
    monkeypatch.undo()
    assert x.fingerprint() == build(FULL.copy()).fingerprint()  # tried afresh


def _big(n_rows: int) -> Interactions:
    rng = np.random.default_rng(5)
    pairs = rng.choice(4_000 * 1_000, size=n_rows, replace=False)
    return build(pd.DataFrame({"user_id": pairs // 1_000, "item_id": pairs % 1_000,
                               "timestamp": rng.integers(0, 10**9, n_rows)}))


def test_background_hashing_gives_the_same_fingerprints(monkeypatch):
    monkeypatch.setattr(machine, "spare_core", lambda: True)
    monkeypatch.setattr(interactions_module, "BACKGROUND_HASH_ROWS", 1_000)
    tables = [_big(3_000), _big(2_000).take(np.arange(1_500))]
    want = [build(t.to_frame()).fingerprint() for t in tables]
    assert interactions_module.fingerprint_in_background(tables) is True
    assert [t.fingerprint() for t in tables] == want  # waits for the thread, or hashes
    # already hashed: nothing left to queue
    assert interactions_module.fingerprint_in_background(tables) is False


def test_no_background_hashing_for_small_tables_or_without_a_free_core(monkeypatch):
    monkeypatch.setattr(machine, "spare_core", lambda: True)
    small = build(FULL)  # below BACKGROUND_HASH_ROWS
    assert interactions_module.fingerprint_in_background([small]) is False
    assert "_fingerprint" not in small.__dict__
    monkeypatch.setattr(interactions_module, "BACKGROUND_HASH_ROWS", 1)
    monkeypatch.setattr(machine, "spare_core", lambda: False)
    # behind a job still running (an earlier test's) the thread queues without asking
    assert machine.wait_idle(60)
    assert interactions_module.fingerprint_in_background([small]) is False


def test_present_users_are_the_sorted_unique_codes():
    x = build(FULL)
    part = x.take(np.flatnonzero(x.users != x.users[0]))  # a user without rows
    for data in (x, part, x.take(np.arange(0))):
        got = data.present_users()
        want = np.unique(data.users)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert part.present_users().size == x.present_users().size - 1


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(1, 5), st.integers(0, 10**9)),
        min_size=1,
        max_size=60,
        unique_by=lambda r: (r[0], r[1]),
    ),
    st.randoms(use_true_random=False),
)
def test_property_rows_kept_canonical_and_order_free(rows, rnd):
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    x = build(df)
    assert len(x) == len(df)
    shuffled = df.iloc[rnd.sample(range(len(df)), len(df))]
    assert build(shuffled).fingerprint() == x.fingerprint()
    # canonical order: by user, then time, then item
    expected = np.lexsort((x.items, x.timestamps, x.users))
    assert np.array_equal(expected, np.arange(len(x)))
    back = x.to_frame().sort_values(["user_id", "item_id"]).reset_index(drop=True)
    expect = df.sort_values(["user_id", "item_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expect, check_dtype=False)


# ---------------------------------------------------------------------- matrices, take
def test_to_csr_ones_rating_timestamp():
    x = build(FULL)
    ones = x.to_csr()
    assert ones.shape == (3, 3) and ones.nnz == 5 and ones.dtype == np.float32
    r = x.to_csr("rating").toarray()
    u, i = x.user_ids.get_loc(2), x.item_ids.get_loc("a")
    assert r[u, i] == 5.0
    t = x.to_csr("timestamp", dtype=np.float64).toarray()
    assert t[x.user_ids.get_loc(3), x.item_ids.get_loc("b")] == 5
    assert np.all(np.diff(ones.indices[ones.indptr[0] : ones.indptr[1]]) > 0)


def test_to_csr_errors():
    x = build(FULL.drop(columns=["rating"]))
    with pytest.raises(DataError, match="no rating"):
        x.to_csr("rating")
    with pytest.raises(DataError, match="'ones', 'rating' or 'timestamp'"):
        x.to_csr("clicks")


def test_take_shares_vocabularies():
    x = build(FULL)
    by_mask = x.take(x.users == 0)
    by_index = x.take(np.flatnonzero(x.users == 0)[::-1])
    assert by_mask.user_ids is x.user_ids and by_mask.item_ids is x.item_ids
    assert len(by_mask) == len(by_index) == 2
    assert by_mask.fingerprint() == by_index.fingerprint()
    assert by_mask.to_csr().shape == x.to_csr().shape
    assert by_mask.source == SRC and x.take([0], source="test").source == "test"


def test_fixed_vocabulary_rejects_unknown_ids():
    vocab = pd.Index([1, 2, 3], name="user_id")
    x = build(frame(), user_ids=vocab)
    assert x.user_ids.equals(vocab)
    with pytest.raises(DataError, match="'user_id' data row 4: id 9 is not in the vocabulary"):
        build(frame(user_id=[1, 1, 2, 9]), user_ids=vocab)


def test_canonical_order_with_ties_and_huge_timestamps():
    # shared seconds are ordered by item; the latest time allowed (year 9999) sorts right
    for scale in (1, MAX_SECONDS // 2):
        df = pd.DataFrame(
            {
                "user_id": [2, 1, 1, 1, 2, 1],
                "item_id": [5, 9, 3, 7, 4, 1],
                "timestamp": np.array([1, 2, 2, 0, 1, 2], dtype=np.int64) * scale,
            }
        )
        out = build(df).to_frame()
        assert out["user_id"].tolist() == [1, 1, 1, 1, 2, 2]
        assert out["item_id"].tolist() == [7, 1, 3, 9, 4, 5]
    # keys too wide to pack (only with > 2**24 users now that times end in 9999) fall
    # back to lexsort: same order
    users = np.array([2, 1, 1, 1, 2, 1]) << 30
    items = np.array([5, 9, 3, 7, 4, 1])
    ts = np.array([1, 2, 2, 0, 1, 2], dtype=np.int64) * (MAX_SECONDS // 2)
    order = interactions_module._canonical_order(users, items, ts)
    assert order.tolist() == np.lexsort((items, ts, users)).tolist()


def test_counts_are_counted_once_and_read_only():
    x = build(frame(user_id=["b", "a", "b", "c"], item_id=[1, 2, 2, 1],
                    timestamp=[3, 2, 1, 4]))
    users = x.user_counts()
    np.testing.assert_array_equal(users, np.bincount(x.users, minlength=x.n_users))
    np.testing.assert_array_equal(x.item_counts(), np.bincount(x.items, minlength=x.n_items))
    assert x.user_counts() is users  # kept, not counted again
    with pytest.raises(ValueError):
        users[0] = 7  # shared by every caller: nobody may change it
    part = x.take(np.array([0, 1]))
    np.testing.assert_array_equal(part.user_counts(), np.bincount(part.users,
                                                                  minlength=x.n_users))


def test_fingerprint_in_blocks_is_the_one_update_digest(monkeypatch):
    import hashlib

    rng = np.random.default_rng(3)
    x = build(frame(user_id=rng.integers(0, 40, 300).astype(str), item_id=np.arange(300),
                    rating=rng.integers(1, 6, 300).astype(float),
                    timestamp=rng.integers(0, 10**6, 300)))
    h = hashlib.sha256()  # the digest as one update per column, written out
    uh = pd.util.hash_pandas_object(pd.Index(x.user_ids), index=False).to_numpy()
    ih = pd.util.hash_pandas_object(pd.Index(x.item_ids), index=False).to_numpy()
    h.update(uh[x.users].tobytes())
    h.update(ih[x.items].tobytes())
    h.update(b"r" + x.ratings.tobytes() + b"t" + x.timestamps.tobytes())
    monkeypatch.setattr(interactions_module, "_HASH_ROWS", 7)  # many blocks
    assert x.fingerprint() == h.hexdigest()


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint16])
def test_counting_codes_in_order_equals_bincount(dtype):
    rng = np.random.default_rng(1)
    for n, size in ((1, 1), (10, 3), (500, 40), (500, 1000)):
        codes = np.sort(rng.integers(0, size, n)).astype(dtype)
        expected = np.bincount(codes, minlength=size)
        got = interactions_module._count_codes(codes, size)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    unordered = rng.integers(0, 30, 200).astype(dtype)  # falls back to bincount
    np.testing.assert_array_equal(interactions_module._count_codes(unordered, 30),
                                  np.bincount(unordered, minlength=30))


def test_a_large_take_on_two_threads_equals_the_plain_one(monkeypatch):
    monkeypatch.setattr(machine, "spare_core", lambda: True)
    x = _big(5_000)
    rows = np.flatnonzero(np.random.default_rng(1).random(len(x)) < 0.7)
    monkeypatch.setattr(interactions_module, "PARALLEL_TAKE_ROWS", 10)
    two = x.take(rows)
    monkeypatch.setattr(interactions_module, "PARALLEL_TAKE_ROWS", 10**12)
    one = x.take(rows)
    for name in ("users", "items", "timestamps"):
        np.testing.assert_array_equal(getattr(two, name), getattr(one, name))
    assert two.ratings is None and one.ratings is None
    assert two.fingerprint() == one.fingerprint()
