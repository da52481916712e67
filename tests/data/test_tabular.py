"""The generic table loader: formats, mapping, separators and messages."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from bench.data.tabular import load_table
from bench.errors import ConfigError, DataError
from tests.helpers import RATINGS_COLUMNS as MAP
from tests.helpers import ROOT

ROWS = pd.DataFrame(
    {"user": [1, 1, 2, 3], "item": [10, 11, 10, 12], "stars": [4.0, 3.5, 5.0, 1.0],
     "ts": [100, 200, 150, 50]}
)  # fmt: skip


def test_conftest_ratings_csv(ratings_csv):
    ds = load_table(path=ratings_csv, columns=MAP, rating_scale=[1, 5])
    x = ds.interactions
    assert len(x) == 60 * 12 and x.n_users == 60 and x.n_items == 40
    assert ds.name == "ratings" and not ds.implicit
    assert ds.sources == (str(ratings_csv),)
    assert x.rating_scale == (1.0, 5.0)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet"])
def test_formats_by_suffix(tmp_path, suffix):
    path = tmp_path / f"events{suffix}"
    if suffix == ".parquet":
        ROWS.to_parquet(path)
    else:
        text = ROWS.to_csv(index=False, sep="\t" if ".tsv" in suffix else ",")
        if suffix.endswith(".gz"):
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)
    ds = load_table(path=path, columns=MAP, name="ev")
    assert ds.name == "ev"
    out = ds.interactions.to_frame().sort_values(["user_id", "item_id"]).reset_index(drop=True)
    expect = ROWS.rename(columns={v: k for k, v in MAP.items()})
    pd.testing.assert_frame_equal(out, expect.sort_values(["user_id", "item_id"])
                                  .reset_index(drop=True), check_dtype=False)  # fmt: skip


def test_explicit_separator(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text(ROWS.to_csv(index=False, sep=";"))
    assert len(load_table(path=path, columns=MAP, sep=";").interactions) == 4


def test_wrong_separator_suggests_sep(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(ROWS.to_csv(index=False, sep=";"))
    with pytest.raises(DataError) as info:
        load_table(path=path, columns=MAP)
    msg = str(info.value)
    assert str(path) in msg and "Only one column was found" in msg and "sep=';'" in msg


def test_missing_mapped_column_lists_columns_found(tmp_path):
    path = tmp_path / "x.csv"
    ROWS.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['rating'\]; found columns "
                       r"\['user', 'item', 'stars', 'ts'\]"):  # fmt: skip
        load_table(path=path, columns={**MAP, "rating": "rating"})
    pq = tmp_path / "x.parquet"
    ROWS.to_parquet(pq)
    with pytest.raises(DataError, match=r"missing column\(s\) \['when'\]; found columns"):
        load_table(path=pq, columns={**MAP, "timestamp": "when"})


def test_unmapped_optional_columns_and_implicit(tmp_path):
    path = tmp_path / "x.csv"
    ROWS.to_csv(path, index=False)
    ds = load_table(path=path, columns={"user_id": "user", "item_id": "item", "rating": None})
    assert ds.implicit and not ds.interactions.has_ratings and not ds.interactions.has_timestamps
    ds = load_table(path=path, columns=MAP, implicit=True)
    assert ds.implicit and not ds.interactions.has_ratings and ds.interactions.has_timestamps


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ("", r"x.csv: the file is empty"),
        ("\n\n", r"x.csv: the file is empty"),
        ("user,item,stars,ts\n", r"x.csv: the file has a header line but no data rows"),
        ("user,item,stars,ts\n1,2,3,4\n1,3,4\n", r"x.csv, line 3: expected 4 comma-separated "
         r"fields, got 3"),
        ("user,item,stars,ts\n1,2,3,4\n\n1,3,4,5,6\n", r"x.csv, line 4: expected 4"),
    ],
)  # fmt: skip
def test_empty_header_only_and_malformed_files(tmp_path, content, pattern):
    path = tmp_path / "x.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=pattern):
        load_table(path=path, columns=MAP)


def test_bad_values_reported_by_the_validator_with_the_file(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("user,item,stars,ts\n1,2,4,10\n1,3,lots,11\n")
    with pytest.raises(DataError, match=r"x.csv: column 'rating' .*non-numeric.*data row 2"):
        load_table(path=path, columns=MAP)
    path.write_text("user,item,stars,ts\n1,2,4,10\n1,3,9,11\n")
    with pytest.raises(DataError, match=r"x.csv: column 'rating' .*outside.*\[1, 5\]"):
        load_table(path=path, columns=MAP, rating_scale=[1, 5])
    path.write_text("user,item,stars,ts\n1,2,4,10\n,3,4,11\n")
    with pytest.raises(DataError, match=r"x.csv: column 'user_id' .*data row 2"):
        load_table(path=path, columns=MAP)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope.csv: the interactions file does not exist"):
        load_table(path=tmp_path / "nope.csv", columns=MAP)


def test_ids_keep_leading_zeros_as_text(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("user,item\n007,a1\n008,a2\n000,a1\n")
    x = load_table(path=path, columns={"user_id": "user", "item_id": "item"}).interactions
    assert sorted(x.user_ids) == ["000", "007", "008"]
    # '7' next to '007' would be a second user for one number: refused (issue 15)
    path.write_text("user,item\n007,a1\n7,a2\n0,a1\n")
    with pytest.raises(DataError, match=r"ids '007' \(data row 1\) and '7' \(data row 2\) "
                       r"are the same number written two ways"):
        load_table(path=path, columns={"user_id": "user", "item_id": "item"})
    path.write_text("user,item\n7,1\n0,2\n-3,1\n")
    x = load_table(path=path, columns={"user_id": "user", "item_id": "item"}).interactions
    assert x.user_ids.dtype == np.int64 and x.item_ids.dtype == np.int64


def test_timestamp_format(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("user,item,when\n1,2,02/01/1970 00:00\n1,3,01/01/1970 00:01\n")
    cols = {"user_id": "user", "item_id": "item", "timestamp": "when"}
    x = load_table(path=path, columns=cols, timestamp_format="%d/%m/%Y %H:%M").interactions
    assert sorted(x.timestamps.tolist()) == [60, 86400]
    path.write_text("user,item,when\n1,2,02/01/1970 00:00\n1,3,1970-01-01\n")
    with pytest.raises(DataError, match=r"not matching timestamp_format.*data row 2"):
        load_table(path=path, columns=cols, timestamp_format="%d/%m/%Y %H:%M")


def test_items_path(tmp_path):
    path = tmp_path / "x.csv"
    ROWS.to_csv(path, index=False)
    items = tmp_path / "items.csv"
    items.write_text('item,title,genres\n10,"Heat, the film (1995)",Action|Crime\n12,Up (2009),'
                     "Animation\n99,Unrated,Drama\n")  # fmt: skip
    ds = load_table(path=path, columns=MAP, items_path=items)
    f = ds.item_features
    assert list(f.item_ids) == [10, 11, 12]
    assert f.titles.tolist() == ["Heat, the film (1995)", "", "Up (2009)"]
    assert np.isnan(f.years[1]) and f.years[0] == 1995
    assert f.genre_names == ("Action", "Animation", "Crime", "Drama")
    assert ds.sources == (str(path), str(items))


def test_bad_mapping_and_scale_are_config_errors(tmp_path):
    path = tmp_path / "x.csv"
    ROWS.to_csv(path, index=False)
    with pytest.raises(ConfigError, match=r"unknown canonical name\(s\) \['stars'\]"):
        load_table(path=path, columns={"user_id": "user", "item_id": "item", "stars": "stars"})
    with pytest.raises(ConfigError, match=r"required key\(s\) \['item_id'\] not mapped"):
        load_table(path=path, columns={"user_id": "user"})
    with pytest.raises(ConfigError, match="low < high"):
        load_table(path=path, columns=MAP, rating_scale=[5, 1])


def test_csv_config_instantiates(tmp_path):
    path = tmp_path / "x.csv"
    ROWS.rename(columns={v: k for k, v in MAP.items()}).to_csv(path, index=False)
    node = OmegaConf.load(ROOT / "configs" / "dataset" / "csv.yaml")
    node.path = str(path)
    ds = instantiate(node)
    assert len(ds.interactions) == 4 and ds.name == "x"
