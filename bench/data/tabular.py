"""Generic interaction tables (CSV, TSV, gzip, Parquet) and the strict file reader under them.

:func:`load_table` reads any user-item table whose columns are named in a mapping from
the canonical names (``user_id``, ``item_id``, ``rating``, ``timestamp``) to the file's
own names. :func:`read_delimited` is the reader every loader in ``bench.data`` shares:
pyarrow parses on the fast path; when pyarrow refuses a file, or a required field comes
out empty, the file is scanned once more in Python to name the exact line and field.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bench.data.consent import exclusion_drops
from bench.data.dataset import Dataset
from bench.data.features import ItemFeatures
from bench.data.interactions import ITEM, RATING, TIMESTAMP, USER, Interactions
from bench.data.loaders import dataset_loader
from bench.errors import ConfigError, DataError

log = logging.getLogger(__name__)

CANONICAL = (USER, ITEM, RATING, TIMESTAMP)
PARQUET_SUFFIXES = (".parquet", ".pq")
# Strings pyarrow reads as null in numeric columns; the line locator treats them alike.
_NULL_TOKENS = frozenset({"", "na", "n/a", "nan", "-nan", "null", "none", "#n/a", "<na>"})
_SEP_NAMES = {"\t": "tab", ",": "comma", "|": "'|'", ";": "';'", "::": "'::'", " ": "space"}
_INT_ID = re.compile(r"^-?(0|[1-9][0-9]*)$")


# ====================================================================== shared file reading
def sep_name(sep: str) -> str:
    """Human name of a separator for messages ("tab", "comma", "'::'")."""
    return _SEP_NAMES.get(sep, repr(sep))


@contextmanager
def open_text(path: Path, encoding: str = "utf-8") -> Iterator[io.TextIOBase]:
    """Open a text file, transparently decompressing ``.gz``."""
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding=encoding, newline="") as fh:
            yield fh
    else:
        with open(path, encoding=encoding, newline="") as fh:
            yield fh


def check_has_rows(path: Path, *, header: bool, encoding: str = "utf-8") -> None:
    """Raise ``DataError`` when ``path`` is empty, blank, or (with ``header``) header-only."""
    try:
        with open_text(path, encoding) as fh:
            seen = 0
            for line in fh:
                if line.strip():
                    seen += 1
                    if seen > int(header):
                        return
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as {encoding} text ({exc})") from None
    if seen == 0:
        raise DataError(f"{path}: the file is empty; expected data rows")
    raise DataError(f"{path}: the file has a header line but no data rows")


def read_delimited(
    path: Path,
    *,
    names: Sequence[str],
    types: Mapping[str, pa.DataType],
    sep: str,
    header: bool,
    encoding: str = "utf-8",
    quoting: bool = True,
    required: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a delimited file whose columns are exactly ``names`` (in order).

    With ``header`` the first line must name the columns ``names`` (in any order);
    otherwise ``names`` are given to the columns in file order. ``types`` fixes the
    arrow type of some columns. ``required`` columns may not have empty fields. A
    multi-character ``sep`` (MovieLens 1M's ``::``) is supported for unquoted files.

    Raises:
        DataError: naming ``path`` and, for malformed content, the line (1-based,
            counting the header) and field.
    """
    check_has_rows(path, header=header, encoding=encoding)
    if header:
        found = read_header(path, sep=sep, encoding=encoding)
        missing = [n for n in names if n not in found]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {missing}; found columns {found}"
                + _sep_hint(found, sep)
            )
    try:
        table = _arrow_read(path, names, types, sep, header, encoding, quoting)
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        problem = locate_problem(
            path,
            names=names,
            types=types,
            sep=sep,
            header=header,
            encoding=encoding,
            quoting=quoting,
            required=required,
        )
        raise DataError(problem or f"{path}: cannot be parsed ({_first_line(exc)})") from None
    if header:
        table = table.select(list(names))
    for name in required:
        if table.column(name).null_count:
            problem = locate_problem(
                path,
                names=names,
                types=types,
                sep=sep,
                header=header,
                encoding=encoding,
                quoting=quoting,
                required=required,
            )
            raise DataError(problem or f"{path}: column '{name}' has empty values")
    return table.to_pandas()


def read_header(path: Path, *, sep: str, encoding: str = "utf-8") -> list[str]:
    """The column names on the first non-blank line of ``path``."""
    with open_text(path, encoding) as fh:
        for line in fh:
            line = line.removeprefix("\ufeff")  # a UTF-8 byte-order mark (Excel exports)
            if line.strip():
                if len(sep) == 1:
                    return [c.strip() for c in next(csv.reader([line], delimiter=sep))]
                return [c.strip() for c in line.rstrip("\r\n").split(sep)]
    return []


def _arrow_read(path, names, types, sep, header, encoding, quoting) -> pa.Table:
    read_opts = pacsv.ReadOptions(
        column_names=None if header else list(names),
        encoding=encoding,
        block_size=1 << 24,
    )
    parse_sep = sep
    source: Path | io.BytesIO = path
    if len(sep) > 1:
        # pyarrow only splits on one byte. The files using '::' are unquoted and their
        # numeric tables never contain a tab, so the separator is rewritten in memory.
        raw = path.read_bytes() if path.suffix != ".gz" else gzip.decompress(path.read_bytes())
        if b"\t" in raw:
            raise DataError(f"{path}: expected {sep_name(sep)}-separated fields, found a tab")
        source, parse_sep = io.BytesIO(raw.replace(sep.encode(), b"\t")), "\t"
    parse_opts = pacsv.ParseOptions(
        delimiter=parse_sep, quote_char='"' if quoting else False, newlines_in_values=False
    )
    conv_opts = pacsv.ConvertOptions(
        column_types=dict(types),
        include_columns=list(names) if header else None,
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    return pacsv.read_csv(
        source, read_options=read_opts, parse_options=parse_opts, convert_options=conv_opts
    )


def locate_problem(
    path: Path,
    *,
    names: Sequence[str],
    types: Mapping[str, pa.DataType],
    sep: str,
    header: bool,
    encoding: str = "utf-8",
    quoting: bool = True,
    required: Sequence[str] = (),
) -> str | None:
    """Scan ``path`` line by line; describe the first malformed line, or return ``None``.

    Slow on purpose (pure Python): only called after the fast reader refused the file.
    """
    n = len(names)
    positions = list(range(n))
    try:
        with open_text(path, encoding) as fh:
            rows = _split_lines(fh, sep, quoting)
            if header:
                for _lineno, fields in rows:
                    if fields:
                        found = [f.strip() for f in fields]
                        positions = [found.index(c) for c in names if c in found]
                        n = len(found)
                        break
                else:  # pragma: no cover - check_has_rows ran before
                    return None
            for lineno, fields in rows:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # blank lines are skipped by the fast reader too
                if len(fields) != n:
                    hint = " (is the separator right?)" if len(fields) == 1 else ""
                    return (
                        f"{path}, line {lineno}: expected {n} {sep_name(sep)}-separated "
                        f"fields, got {len(fields)}{hint}: {_clip(sep.join(fields))!r}"
                    )
                for name, pos in zip(names, positions, strict=False):
                    value = fields[pos]
                    bad = _bad_value(value, types.get(name), name in required)
                    if bad:
                        return (
                            f"{path}, line {lineno}, field '{name}': expected {bad}, got {value!r}"
                        )
    except UnicodeDecodeError as exc:
        return f"{path}: cannot be decoded as {encoding} ({exc})"
    return None


def _split_lines(fh, sep: str, quoting: bool) -> Iterator[tuple[int, list[str]]]:
    if quoting and len(sep) == 1:
        reader = csv.reader(fh, delimiter=sep, quotechar='"')
        for fields in reader:
            yield reader.line_num, fields
    else:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            yield lineno, (line.split(sep) if line else [])


def _bad_value(value: str, typ: pa.DataType | None, required: bool) -> str | None:
    v = value.strip()
    if v.lower() in _NULL_TOKENS:
        if required or (typ is not None and not pa.types.is_string(typ)):
            return "a value" if typ is None or pa.types.is_string(typ) else _type_word(typ)
        return None
    if typ is None or pa.types.is_string(typ):
        return None
    try:
        if pa.types.is_integer(typ):
            int(v)
        elif pa.types.is_floating(typ):
            if not math.isfinite(float(v)):
                return _type_word(typ)
    except ValueError:
        return _type_word(typ)
    return None


def _type_word(typ: pa.DataType) -> str:
    if pa.types.is_integer(typ):
        return "an integer"
    if pa.types.is_floating(typ):
        return "a number"
    return str(typ)


def _clip(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _sep_hint(found: Sequence[str], sep: str) -> str:
    if len(found) != 1:
        return ""
    cell = found[0]
    for cand in ("\t", ",", ";", "|", "::", " "):
        if cand != sep and cand in cell:
            return (
                f". Only one column was found, so the separator looks wrong: the header "
                f"contains {sep_name(cand)}; set sep={cand!r}"
            )
    return f". Only one column was found: is sep={sep!r} the file's separator?"


# ====================================================================== generic tables
@dataset_loader
def load_table(
    *,
    path: str | Path,
    columns: Mapping[str, str | None],
    sep: str | None = None,
    rating_scale: Sequence[float] | None = None,
    duplicates: str = "error",
    exclude_users: str | Path | None = None,
    items_path: str | Path | None = None,
    name: str | None = None,
    implicit: bool = False,
    timestamp_format: str | None = None,
) -> Dataset:
    """Load a user-item table from CSV/TSV (optionally ``.gz``) or Parquet.

    Args:
        path: the interactions file; the format follows the suffix (``.parquet``/``.pq``
            is Parquet, anything else delimited text, ``.gz`` decompressed).
        columns: canonical name -> the file's column, e.g.
            ``{"user_id": "userId", "item_id": "movieId", "rating": "rating"}``.
            ``user_id`` and ``item_id`` are required; ``rating`` and ``timestamp`` are
            optional (omit them or map them to ``None``).
        sep: field separator; ``None`` means tab for ``.tsv``/``.tab`` files, comma
            otherwise.
        rating_scale: ``[low, high]`` every rating must lie in, or ``None`` (unchecked).
        duplicates: repeated (user, item) pairs: ``error``, ``keep_last``,
            ``keep_first`` or ``mean``.
        exclude_users: file of user ids to remove before anything else (see
            :mod:`bench.data.consent`).
        items_path: optional item table (same format rules) with the item column named
            as in the interactions file (or ``item_id``) and any of ``title``, ``year``,
            ``genres`` (``|``-separated).
        name: the dataset's name; defaults to the file name without suffixes.
        implicit: ignore any rating column; every interaction counts as relevant.
        timestamp_format: ``strftime`` format of the timestamp column (e.g.
            ``"%d/%m/%Y %H:%M"``); ``None`` accepts Unix seconds or ISO dates.

    Ids that all look like integers (no leading zeros) become integers; otherwise they
    stay strings, so ``"007"`` is never silently turned into ``7``.

    Raises:
        ConfigError: a bad ``columns`` mapping or ``rating_scale``.
        DataError: a missing, empty or malformed file, or a mapped column absent.
    """
    path = Path(path).expanduser()
    mapping = _check_mapping(columns)
    scale = _check_scale(rating_scale)
    if implicit:
        mapping.pop(RATING, None)
    if not path.is_file():
        raise DataError(
            f"{path.resolve()}: the interactions file does not exist"
            + ("" if path.parent.is_dir() else f" (nor does its folder {path.parent.resolve()})")
        )
    frame = _read_table(path, mapping, sep, as_text=(TIMESTAMP,) if timestamp_format else ())
    frame = frame.rename(columns={src: canon for canon, src in mapping.items()})
    frame = frame[[c for c in CANONICAL if c in mapping]]
    frame, drops = exclusion_drops(frame, exclude_users, source=str(path))
    source = str(path) + _after_exclusion(drops)
    if timestamp_format is not None and TIMESTAMP in frame.columns:
        frame[TIMESTAMP] = _parse_timestamps(frame[TIMESTAMP], timestamp_format, source)
    inter = Interactions.from_frame(frame, source=source, rating_scale=scale, duplicates=duplicates)
    features = None
    sources = [str(path)]
    if items_path is not None:
        ipath = Path(items_path).expanduser()
        features = _read_items(ipath, mapping[ITEM], sep, inter.item_ids)
        sources.append(str(ipath))
    return Dataset(
        name=name or path.name.split(".")[0],
        interactions=inter,
        item_features=features,
        implicit=implicit or RATING not in mapping,
        drops={**inter.drops, **drops},
        sources=tuple(sources),
    )


def _check_mapping(columns: Mapping[str, str | None]) -> dict[str, str]:
    if not isinstance(columns, Mapping):
        raise ConfigError(
            f"load_table columns: expected a mapping canonical name -> file column, e.g. "
            f"{{user_id: userId, item_id: movieId}}, got {columns!r}"
        )
    unknown = sorted(set(columns) - set(CANONICAL))
    if unknown:
        raise ConfigError(
            f"load_table columns: unknown canonical name(s) {unknown}; expected some of "
            f"{list(CANONICAL)}"
        )
    mapping = {k: str(v) for k, v in columns.items() if v is not None and str(v) != ""}
    absent = [c for c in (USER, ITEM) if c not in mapping]
    if absent:
        raise ConfigError(f"load_table columns: required key(s) {absent} not mapped")
    sources = list(mapping.values())
    if len(set(sources)) != len(sources):
        raise ConfigError(f"load_table columns: a file column is mapped twice: {mapping}")
    return mapping


def _check_scale(scale: Sequence[float] | None) -> tuple[float, float] | None:
    if scale is None:
        return None
    try:
        lo, hi = (float(x) for x in scale)
    except (TypeError, ValueError):
        raise ConfigError(
            f"load_table rating_scale: expected [low, high] or null, got {scale!r}"
        ) from None
    if not lo < hi:
        raise ConfigError(f"load_table rating_scale: expected low < high, got [{lo:g}, {hi:g}]")
    return lo, hi


def _default_sep(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    return "\t" if {".tsv", ".tab"} & set(suffixes) else ","


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def _read_table(
    path: Path, mapping: Mapping[str, str], sep: str | None, as_text: Sequence[str] = ()
) -> pd.DataFrame:
    """Read the mapped columns; ids as strings first, ``as_text`` columns kept as text."""
    wanted = list(mapping.values())
    if _is_parquet(path):
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None
        missing = [c for c in wanted if c not in schema.names]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; found columns {schema.names}")
        table = pq.read_table(path, columns=wanted)
        if table.num_rows == 0:
            raise DataError(f"{path}: the table has columns but no data rows")
    else:
        sep = sep or _default_sep(path)
        check_has_rows(path, header=True)
        found = read_header(path, sep=sep)
        missing = [c for c in wanted if c not in found]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {missing}; found columns {found}"
                + _sep_hint(found, sep)
            )
        id_types = {mapping[c]: pa.string() for c in (USER, ITEM, *as_text) if c in mapping}
        try:
            table = _arrow_read(path, wanted, id_types, sep, True, "utf-8", True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            problem = locate_problem(path, names=wanted, types=id_types, sep=sep, header=True)
            raise DataError(problem or f"{path}: cannot be parsed ({_first_line(exc)})") from None
        table = table.select(wanted)
    for canon in (USER, ITEM):
        col = mapping[canon]
        _check_no_null_token_ids(table.column(col), canon, col, path)
        i = table.schema.get_field_index(col)
        table = table.set_column(i, col, _ids_as_ints_if_possible(table.column(col)))
    return table.to_pandas()


def _check_no_null_token_ids(col: pa.ChunkedArray, canon: str, name: str, path: Path) -> None:
    """Refuse ids that spell a missing value ("NaN", "NA", "null", ...).

    Ids are read as text so that "007" survives; without this check a ``NaN`` written by
    pandas for a missing id would silently become one more user or item called "NaN".
    """
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return
    folded = pc.utf8_lower(pc.utf8_trim_whitespace(col))
    bad = pc.fill_null(pc.is_in(folded, value_set=pa.array(sorted(_NULL_TOKENS))), False)
    n = pc.sum(bad).as_py() or 0
    if n:
        i = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
        where = f"'{canon}'" + (f" (file column '{name}')" if name != canon else "")
        raise DataError(
            f"{path}: column {where} has {n} missing/empty id(s); first at data row {i + 1}: "
            f"expected a non-empty id, got {col[i].as_py()!r}"
        )


def _ids_as_ints_if_possible(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Turn a string id column into int64 when every id is a plain integer."""
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        return col
    if col.null_count or len(col) == 0:
        return col
    if not pc.all(pc.match_substring_regex(col, _INT_ID.pattern)).as_py():
        return col
    try:
        return pc.cast(col, pa.int64())
    except pa.ArrowInvalid:  # beyond int64: keep as strings
        return col


def _after_exclusion(drops: Mapping[str, int]) -> str:
    n = drops.get("excluded_users", 0)
    return f" (data rows counted after removing {n} excluded row(s))" if n else ""


def _parse_timestamps(col: pd.Series, fmt: str, source: str) -> pd.Series:
    parsed = pd.to_datetime(col.astype("string"), format=fmt, errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: column 'timestamp' has {int(bad.sum())} value(s) not matching "
            f"timestamp_format {fmt!r}; first at data row {i + 1}: got {col.iloc[i]!r}"
        )
    return parsed


def _read_items(path: Path, item_col: str, sep: str | None, item_ids: pd.Index) -> ItemFeatures:
    if not path.is_file():
        raise DataError(f"{path.resolve()}: the items file (items_path) does not exist")
    if _is_parquet(path):
        frame = pq.read_table(path).to_pandas()
        if len(frame) == 0:
            raise DataError(f"{path}: the table has columns but no data rows")
    else:
        sep = sep or _default_sep(path)
        check_has_rows(path, header=True)
        found = read_header(path, sep=sep)
        wanted = [c for c in found if c in (item_col, ITEM, "title", "year", "genres")]
        types = {c: pa.string() for c in wanted if c != "year"}
        try:
            table = _arrow_read(path, wanted, types, sep, True, "utf-8", True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            problem = locate_problem(path, names=wanted, types=types, sep=sep, header=True)
            raise DataError(problem or f"{path}: cannot be parsed ({_first_line(exc)})") from None
        frame = table.to_pandas()
    key = item_col if item_col in frame.columns else ITEM
    if key not in frame.columns:
        raise DataError(
            f"{path}: missing the item column {item_col!r} (or 'item_id'); found columns "
            f"{[str(c) for c in frame.columns]}"
        )
    frame = frame.rename(columns={key: ITEM})
    ids = frame[ITEM]
    if pd.api.types.is_integer_dtype(item_ids.dtype):
        ids = pd.to_numeric(ids, errors="coerce")
        if ids.isna().any():
            i = int(np.flatnonzero(ids.isna().to_numpy())[0])
            raise DataError(
                f"{path}: column {key!r} data row {i + 1}: expected an integer item id like "
                f"the interactions', got {frame[ITEM].iloc[i]!r}"
            )
        ids = ids.astype(np.int64)
    else:
        ids = ids.astype(str)
    frame[ITEM] = ids
    return ItemFeatures.from_frame(frame, source=str(path)).align(item_ids)
