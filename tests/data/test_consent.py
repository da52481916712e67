"""Exclusion files: formats, id matching, errors, and removal before validation."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.data.consent import apply_exclusions, exclusion_drops, read_exclusion_file
from bench.data.tabular import load_table
from bench.errors import DataError

SRC = "ratings.csv"


def table(ids) -> pd.DataFrame:
    return pd.DataFrame({"user_id": ids, "item_id": range(len(ids))})


def write(tmp_path, text: str, name: str = "withdrawn.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_none_is_a_no_op():
    df = table([1, 2])
    out, n = apply_exclusions(df, None, source=SRC)
    assert out is df and n == 0
    assert exclusion_drops(df, None, source=SRC) == (df, {})


def test_one_id_per_line_with_comments_and_blanks(tmp_path):
    path = write(tmp_path, "# withdrawn 2024\n\n3\n  5  # asked by email\n7\n")
    assert read_exclusion_file(path) == [(3, "3"), (4, "5"), (5, "7")]
    out, n = apply_exclusions(table([1, 3, 3, 5, 6]), path, source=SRC)
    assert n == 3
    assert out["user_id"].tolist() == [1, 6]
    assert out.index.tolist() == [0, 1]


def test_csv_with_user_id_column(tmp_path):
    path = write(tmp_path, "date,user_id,reason\n2024-01-02,2,email\n2024-02-01,4,form\n",
                 "consent.csv")  # fmt: skip
    out, drops = exclusion_drops(table([1, 2, 2, 4, 9]), path, source=SRC)
    assert out["user_id"].tolist() == [1, 9]
    assert drops == {"excluded_users": 3, "excluded_user_ids": 2}


def test_string_ids_compared_as_text(tmp_path):
    path = write(tmp_path, "u007\nu9\n")
    out, n = apply_exclusions(table(["u007", "u7", "u9", "u9"]), path, source=SRC)
    assert n == 3 and out["user_id"].tolist() == ["u7"]


def test_integer_data_accepts_integral_text(tmp_path):
    path = write(tmp_path, "42.0\n007\n")
    out, n = apply_exclusions(table([42, 7, 8]), path, source=SRC)
    assert n == 2 and out["user_id"].tolist() == [8]


def test_integer_data_refuses_non_integer_ids(tmp_path):
    path = write(tmp_path, "1\n\nu2\n")
    with pytest.raises(DataError, match=r"withdrawn.txt, line 3: expected an integer user id"):
        apply_exclusions(table([1, 2]), path, source=SRC)


def test_listed_ids_partly_absent_from_data_remove_the_others(tmp_path):
    path = write(tmp_path, "100\n2\n")
    out, drops = exclusion_drops(table([1, 2]), path, source=SRC)
    assert out["user_id"].tolist() == [1]
    assert drops == {"excluded_users": 1, "excluded_user_ids": 1}


def test_a_list_that_matches_nobody_is_refused(tmp_path):
    """Issue 15: a deletion list matching no user (a wrong file, ids written another way)
    used to remove nobody without a word."""
    path = write(tmp_path, "100\n101\n")
    with pytest.raises(DataError, match=r"withdrawn\.txt: none of the 2 user id\(s\) listed "
                       r"to exclude is a user of .*\(e\.g\. listed 100, data has 1\)"):
        exclusion_drops(table([1, 2]), path, source=SRC)
    # tags (apply_exclusions) may lack the listed users: that stays a no-op
    assert apply_exclusions(table([1, 2]), path, source=SRC)[1] == 0


def test_empty_exclusion_file_removes_nothing(tmp_path):
    path = write(tmp_path, "# nobody yet\n")
    assert apply_exclusions(table([1]), path, source=SRC)[1] == 0


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"nope.txt: exclusion file \(exclude_users\) does not"):
        apply_exclusions(table([1]), tmp_path / "nope.txt", source=SRC)


def test_csv_without_user_id_column(tmp_path):
    path = write(tmp_path, "user,reason\n1,x\n")
    with pytest.raises(DataError, match=r"no 'user_id' column; found columns \['user', 'reason'\]"):
        apply_exclusions(table([1]), path, source=SRC)


def test_two_ids_on_a_line(tmp_path):
    path = write(tmp_path, "1\n2 3\n")
    with pytest.raises(DataError, match="line 2: expected one user id per line"):
        read_exclusion_file(path)


def test_rows_removed_before_validation_and_counted(tmp_path):
    # user 9's rows are invalid (rating 99, a duplicate pair): excluding them must
    # succeed, which proves they never reach the validator.
    data = tmp_path / "r.csv"
    data.write_text("u,i,r\n1,1,4\n9,1,99\n9,1,99\n2,2,5\n", encoding="utf-8")
    path = write(tmp_path, "9\n")
    ds = load_table(path=data, columns={"user_id": "u", "item_id": "i", "rating": "r"},
                    rating_scale=[1, 5], exclude_users=path)  # fmt: skip
    assert len(ds.interactions) == 2
    assert 9 not in set(ds.interactions.user_ids)
    assert ds.drops["excluded_users"] == 2
    assert ds.drops["excluded_user_ids"] == 1
    with pytest.raises(DataError, match="outside the declared scale"):
        load_table(path=data, columns={"user_id": "u", "item_id": "i", "rating": "r"},
                   rating_scale=[1, 5], duplicates="keep_last")  # fmt: skip
