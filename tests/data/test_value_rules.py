"""The rules for timestamps, ids and side files of a user's table (issue 15, points 7-8).

The refusals are rows of the bad-input catalogue (``tests/test_bad_input.py``); these
tests pin what is accepted and what it becomes: units, dates after 2262, one id for two
spellings, spaces, items files and exclusion lists in the same id rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.data.interactions import MAX_SECONDS, Interactions
from bench.data.tabular import load_table
from bench.errors import ConfigError, DataError
from tests.helpers import RATINGS_COLUMNS as MAP

H = "user,item,stars,ts\n"
IMPLICIT = {"user_id": "user", "item_id": "item"}


def table(tmp_path, text: str, name: str = "x.csv", **kw):
    path = tmp_path / name
    path.write_text(text)
    return load_table(path=path, columns=kw.pop("columns", MAP), **kw)


def frame_of(ds) -> pd.DataFrame:
    return ds.interactions.to_frame()


# ---------------------------------------------------------------------- timestamps
@pytest.mark.parametrize(("unit", "scale"), [("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_timestamp_unit_converts_to_whole_seconds(tmp_path, unit, scale):
    seconds = [1_600_000_000, 1_600_000_007]
    rows = "".join(f"1,{i},4,{s * scale + scale - 1}\n" for i, s in enumerate(seconds))
    ds = table(tmp_path, H + rows, timestamp_unit=unit)
    assert frame_of(ds)["timestamp"].tolist() == seconds  # floored, exact for ns


def test_nanoseconds_keep_int64_precision_before_flooring(tmp_path):
    # 2**53 < these values: a float64 detour would round them to another second
    ns = [1_600_000_000_999_999_999, 1_600_000_001_000_000_000]
    ds = table(tmp_path, H + f"1,1,4,{ns[0]}\n1,2,4,{ns[1]}\n", timestamp_unit="ns")
    assert frame_of(ds)["timestamp"].tolist() == [1_600_000_000, 1_600_000_001]


def test_seconds_up_to_9999_are_accepted_and_one_more_is_not(tmp_path):
    ds = table(tmp_path, H + f"1,1,4,{MAX_SECONDS}\n1,2,4,0\n")
    assert frame_of(ds)["timestamp"].tolist() == [0, MAX_SECONDS]
    with pytest.raises(DataError, match=r"data row 1: got 253402300800\. They look like Unix "
                       r"milliseconds"):
        table(tmp_path, H + f"1,1,4,{MAX_SECONDS + 1}\n1,2,4,0\n")


def test_explicit_seconds_refuse_without_a_unit_hint(tmp_path):
    with pytest.raises(DataError) as info:
        table(tmp_path, H + "1,1,4,1600000000000\n", timestamp_unit="s")
    assert "Expected Unix times from 1970 to 9999" in str(info.value)
    assert "look like" not in str(info.value)


def test_dates_after_2262_load(tmp_path):
    """pandas' nanosecond range ends in 2262; dates after it used to crash the loader."""
    ds = table(tmp_path, H + "1,1,4,2300-01-01\n1,2,4,2020-01-01T00:00:01Z\n")
    assert frame_of(ds)["timestamp"].tolist() == [1_577_836_801, 10_413_792_000]
    x = Interactions.from_frame(pd.DataFrame({
        "user_id": [1], "item_id": [1], "timestamp": pd.to_datetime(["9999-12-31 23:59:59"])}))
    assert x.timestamps.tolist() == [MAX_SECONDS]


def test_mixed_kinds_name_the_minority_and_a_tie_names_what_differs_from_row_1(tmp_path):
    with pytest.raises(DataError, match=r"mixes 1 Unix time\(s\) with 2 date\(s\); first Unix "
                       r"time at data row 2: '1600000000'"):
        table(tmp_path, H + "1,1,4,2020-01-01\n1,2,4,1600000000\n1,3,4,2020-01-02\n")
    with pytest.raises(DataError, match=r"mixes 1 Unix time\(s\) with 1 date\(s\); first date "
                       r"at data row 2"):
        table(tmp_path, H + "1,1,4,1600000000\n1,2,4,2020-01-02\n")


def test_unparseable_rows_are_named_among_numbers_and_dates(tmp_path):
    with pytest.raises(DataError, match=r"has 2 unparseable value\(s\); first at data row 3: "
                       r"expected Unix seconds or a date, got 'x'"):
        table(tmp_path, H + "1,1,4,5\n1,2,4,6\n1,3,4,x\n1,4,4,7\n1,5,4,y\n")


def test_parquet_uint64_beyond_int64_is_refused_not_wrapped(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"user": [1, 1], "item": [1, 2], "stars": [4.0, 4.0],
                             "ts": pa.array([5, 2**63 + 5], pa.uint64())}), path)
    with pytest.raises(DataError, match=r"data row 2: got 9223372036854775813\. Expected"):
        load_table(path=path, columns=MAP)


def test_timestamp_unit_must_be_known():
    with pytest.raises(ConfigError, match=r"timestamp_unit: expected one of \['s', 'ms', 'us', "
                       r"'ns'\] or null, got 'h'"):
        Interactions.from_frame(pd.DataFrame({"user_id": [1], "item_id": [1]}),
                                timestamp_unit="h")


def test_movielens_style_int64_overflow_names_the_line(tmp_path):
    from bench.data.tabular import read_delimited

    path = tmp_path / "u.data"
    path.write_text("1\t2\t3\t5\n1\t3\t3\t99999999999999999999\n")
    with pytest.raises(DataError, match=r"u\.data, line 2, field 'timestamp': expected an "
                       r"integer within 64 bits, got '99999999999999999999'"):
        read_delimited(path, names=["u", "i", "r", "timestamp"],
                       types={"u": pa.int64(), "i": pa.int64(), "r": pa.float64(),
                              "timestamp": pa.int64()}, sep="\t", header=False, quoting=False)


# ---------------------------------------------------------------------- ids
def test_one_and_one_point_zero_are_one_user(tmp_path):
    ds = table(tmp_path, H + "1,10,4,5\n1.0,11,4,6\n2.00,10,4,7\n")
    x = ds.interactions
    assert x.user_ids.dtype == np.int64 and x.user_ids.tolist() == [1, 2]
    assert frame_of(ds)["user_id"].tolist() == [1, 1, 2]


def test_spaces_around_ids_are_removed(tmp_path):
    ds = table(tmp_path, "user,item\n 1 ,a\n1, b \nu2 ,b\n", columns=IMPLICIT)
    x = ds.interactions
    assert x.user_ids.tolist() == ["1", "u2"] and x.item_ids.tolist() == ["a", "b"]
    assert len(x) == 3 and x.n_users == 2
    # so ' 1 ,a' and '1, a ' are one (user, item) pair: a duplicate, not two rows
    with pytest.raises(DataError, match=r"1 duplicate \(user_id, item_id\) row"):
        table(tmp_path, "user,item\n 1 ,a\n1, a \nu2 ,b\n", columns=IMPLICIT)


def test_text_ids_with_numbers_spelled_once_are_kept_as_written(tmp_path):
    ds = table(tmp_path, "user,item\n007,1.5\n008,2.25\nu9,x\n", columns=IMPLICIT)
    assert ds.interactions.user_ids.tolist() == ["007", "008", "u9"]
    assert ds.interactions.item_ids.tolist() == ["1.5", "2.25", "x"]


@pytest.mark.parametrize(("a", "b"), [("1.5", "1.50"), ("+1", "1"), ("1e3", "1000"),
                                      ("00", "-0.0"), ("0.1e1", "01")])
def test_two_spellings_of_one_number_in_text_ids_are_refused(tmp_path, a, b):
    with pytest.raises(DataError, match=r"are the same number written two ways"):
        table(tmp_path, f"user,item\n{a},x\n{b},y\nu,z\n", columns=IMPLICIT)


def test_ids_beyond_int64_stay_exact_text(tmp_path):
    big = "123456789012345678901234567890"
    ds = table(tmp_path, f"user,item\n{big},1\n{big[:-1]}1,2\n", columns=IMPLICIT)
    assert sorted(ds.interactions.user_ids) == sorted([big, big[:-1] + "1"])


def test_a_repeated_header_is_refused_even_without_other_typed_columns(tmp_path):
    with pytest.raises(DataError, match=r"data row 2 repeats the header line"):
        table(tmp_path, "user,item\n1,2\nuser,item\n3,4\n", columns=IMPLICIT)
    # a user who happens to be called 'user' with a normal item is not a header
    ds = table(tmp_path, "user,item\nuser,2\nbob,item\n", columns=IMPLICIT)
    assert ds.interactions.user_ids.tolist() == ["bob", "user"]


# ---------------------------------------------------------------------- items file
def items_case(tmp_path, ratings: str, items: str, **kw):
    (tmp_path / "items.csv").write_text(items)
    return table(tmp_path, ratings, columns=IMPLICIT, items_path=tmp_path / "items.csv", **kw)


def test_items_ids_follow_the_interactions_rule(tmp_path):
    ds = items_case(tmp_path, "user,item\n1,10\n1,11\n", "item,title\n 10.0 ,Heat\n11,Up\n")
    assert ds.item_features.titles.tolist() == ["Heat", "Up"]
    ds = items_case(tmp_path, "user,item\n1,a\n1,b\n", "item,title\n a ,Heat\nb,Up\n")
    assert ds.item_features.titles.tolist() == ["Heat", "Up"]


def test_other_genre_separator_when_declared(tmp_path):
    ds = items_case(tmp_path, "user,item\n1,1\n1,2\n", 'item,genres\n1,"Action, Crime"\n2,Drama\n',
                    genre_sep=",")
    assert ds.item_features.genre_names == ("Action", "Crime", "Drama")


def test_single_genres_without_any_separator_are_fine(tmp_path):
    ds = items_case(tmp_path, "user,item\n1,1\n1,2\n", "item,genres\n1,Drama\n2,Sci-Fi/Fantasy\n")
    assert ds.item_features.genre_names == ("Drama", "Sci-Fi/Fantasy")


def test_items_partly_matching_are_aligned_with_empty_rows(tmp_path):
    ds = items_case(tmp_path, "user,item\n1,1\n1,2\n", "item,year\n1,1995\n3,\n")
    f = ds.item_features
    assert f.years[0] == 1995 and np.isnan(f.years[1])


def test_items_header_naming_a_column_twice_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"a column is named twice"):
        items_case(tmp_path, "user,item\n1,1\n", "item,title,title\n1,a,b\n")
