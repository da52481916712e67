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
from decimal import Context, Decimal
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
from bench.data.interactions import (
    ITEM,
    RATING,
    TIMESTAMP,
    USER,
    Interactions,
    check_time_unit,
)
from bench.data.loaders import dataset_loader
from bench.data.paths import as_path, is_dir, is_file
from bench.errors import ConfigError, DataError

log = logging.getLogger(__name__)

CANONICAL = (USER, ITEM, RATING, TIMESTAMP)
PARQUET_SUFFIXES = (".parquet", ".pq")
# Strings pyarrow reads as null in numeric columns; the line locator treats them alike.
_NULL_TOKENS = frozenset({"", "na", "n/a", "nan", "-nan", "null", "none", "#n/a", "<na>"})
_SEP_NAMES = {"\t": "tab", ",": "comma", "|": "'|'", ";": "';'", "::": "'::'", " ": "space"}
#: a whole number without leading zeros, optionally written with a zero fraction (``17.0``)
_INTEGRAL_ID = re.compile(r"^-?(0|[1-9][0-9]*)(\.0*)?$")
#: any decimal number (``007``, ``1.50``, ``1e3``): ids compared by value for the spelling check
_NUMERIC_ID = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,4})?$")


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
            if not -(2**63) <= int(v) < 2**63:
                return "an integer within 64 bits"
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
    timestamp_unit: str | None = None,
    genre_sep: str = "|",
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
            ``"%d/%m/%Y %H:%M"``); ``None`` accepts Unix times or ISO dates.
        timestamp_unit: unit of numeric timestamps: ``s``, ``ms``, ``us`` or ``ns``;
            ``None`` means seconds, and a column whose values would fall after 9999 as
            seconds is refused with the unit it looks like.
        genre_sep: the separator between the genres of one item in the items file.

    Ids follow :func:`normalise_ids`: spaces around them are removed; ids that are all
    whole numbers (``1``, ``1.0``) become integers; otherwise they stay text, so
    ``"007"`` is never silently turned into ``7``, and two spellings of one number are
    refused.

    Raises:
        ConfigError: a bad ``columns`` mapping or ``rating_scale``.
        DataError: a missing, empty or malformed file, or a mapped column absent.
    """
    path = as_path(path, "load_table path")
    mapping = _check_mapping(columns)
    scale = _check_scale(rating_scale)
    check_time_unit(timestamp_unit, "load_table timestamp_unit")
    genre_sep = _check_genre_sep(genre_sep)
    if implicit:
        mapping.pop(RATING, None)
    if not is_file(path):
        raise DataError(
            f"{path.resolve()}: the interactions file does not exist"
            + ("" if is_dir(path.parent) else f" (nor does its folder {path.parent.resolve()})")
        )
    frame = _read_table(path, mapping, sep, as_text=(TIMESTAMP,) if timestamp_format else ())
    frame = frame.rename(columns={src: canon for canon, src in mapping.items()})
    frame = frame[[c for c in CANONICAL if c in mapping]]
    frame, drops = exclusion_drops(frame, exclude_users, source=str(path))
    source = str(path) + _after_exclusion(drops)
    if timestamp_format is not None and TIMESTAMP in frame.columns:
        frame[TIMESTAMP] = _parse_timestamps(frame[TIMESTAMP], timestamp_format, source)
    inter = Interactions.from_frame(frame, source=source, rating_scale=scale,
                                    duplicates=duplicates, timestamp_unit=timestamp_unit)
    features = None
    sources = [str(path)]
    if items_path is not None:
        ipath = as_path(items_path, "load_table items_path")
        features = _read_items(ipath, mapping[ITEM], sep, inter.item_ids, genre_sep)
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
        i = table.schema.get_field_index(col)
        table = table.set_column(i, col, normalise_ids(table.column(col), canon, col, path))
    _check_no_repeated_header(table, mapping, path)
    return table.to_pandas()


def _column_name(canon: str, name: str) -> str:
    return f"'{canon}'" + (f" (file column '{name}')" if name != canon else "")


def normalise_ids(
    col: pa.ChunkedArray | pa.Array, canon: str, name: str, path: Path
) -> pa.ChunkedArray | pa.Array:
    """The id rule for text ids read from a file (docs/user-guide.md, "Datasets").

    Surrounding spaces are removed. An id may not spell a missing value (``NaN``, ``NA``,
    empty) nor hold a control character (NUL, tab, line break). When every id is a
    whole number without leading zeros (``17``, ``17.0``), the column becomes integers,
    so ``1`` and ``1.0`` are one id. Otherwise ids stay text (``007`` is never ``7``),
    and two spellings of the same number (``7`` and ``007``, ``1.5`` and ``1.50``) are
    refused rather than silently read as two users or items. The checks run on the
    distinct ids, not on every row.
    """
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return col
    ids = _DistinctIds(col, _column_name(canon, name), path)
    ids.check_no_null_tokens()
    ids.check_no_control_characters()
    as_int = ids.as_integers()
    if as_int is not None:
        return as_int
    ids.check_one_spelling_per_number()
    return ids.rows()


class _DistinctIds:
    """A text id column as its distinct (trimmed) words and each row's word code."""

    def __init__(self, col: pa.ChunkedArray | pa.Array, where: str, path: Path):
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        enc = arr.dictionary_encode()
        self.words = pc.utf8_trim_whitespace(enc.dictionary)
        self.codes = enc.indices
        self.where, self.path = where, path

    def rows_with(self, flagged: np.ndarray) -> np.ndarray:
        """Rows whose word is flagged (a boolean mask over the words)."""
        value_set = pa.array(np.flatnonzero(flagged), type=self.codes.type)
        hit = pc.fill_null(pc.is_in(self.codes, value_set=value_set), False)
        return np.flatnonzero(hit.to_numpy(zero_copy_only=False))

    def flag(self, mask: pa.Array) -> np.ndarray:
        return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)

    def first_row(self, word: str) -> int:
        return int(self.rows_with(self.flag(pc.equal(self.words, word)))[0])

    def word_at(self, row: int) -> str:
        """The (trimmed) id written on data row ``row`` (0-based)."""
        return self.words[int(self.codes[int(row)].as_py())].as_py()

    def check_no_null_tokens(self) -> None:
        """Ids spelling a missing value ("NaN", "NA", ...): read as text so that "007"
        survives, a ``NaN`` written by pandas would otherwise be one more user "NaN"."""
        tokens = pa.array(sorted(_NULL_TOKENS))
        bad = self.flag(pc.is_in(pc.utf8_lower(self.words), value_set=tokens))
        if bad.any():
            rows = self.rows_with(bad)
            raise DataError(
                f"{self.path}: column {self.where} has {len(rows)} missing/empty id(s); first "
                f"at data row {rows[0] + 1}: expected a non-empty id, got "
                f"{self.word_at(rows[0])!r}"
            )

    def check_no_control_characters(self) -> None:
        bad = self.flag(pc.match_substring_regex(self.words, r"[\x00-\x1f\x7f]"))
        if bad.any():
            rows = self.rows_with(bad)
            raise DataError(
                f"{self.path}: column {self.where} has {len(rows)} id(s) with a control "
                f"character (NUL, tab, line break); first at data row {rows[0] + 1}: got "
                f"{self.word_at(rows[0])!r}; expected "
                f"printable ids: clean the file's ids"
            )

    def as_integers(self) -> pa.Array | None:
        """The rows as int64 when every id is a whole number without leading zeros."""
        if not len(self.words):
            return None
        if not pc.all(pc.match_substring_regex(self.words, _INTEGRAL_ID.pattern)).as_py():
            return None
        try:
            values = pc.cast(pc.replace_substring_regex(self.words, r"\.0*$", ""), pa.int64())
        except pa.ArrowInvalid:  # beyond int64: kept as text, checked for spellings
            return None
        return pc.take(values, self.codes)

    def check_one_spelling_per_number(self) -> None:
        """Refuse two different texts that spell one number (``7``/``007``, ``1``/``1.0``)."""
        numeric = self.flag(pc.match_substring_regex(self.words, _NUMERIC_ID.pattern))
        if not numeric.any():
            return
        seen: dict[Decimal, str] = {}
        for text in pc.unique(pc.filter(self.words, pa.array(numeric))).to_pylist():
            value = Decimal(text)  # exact; normalised without rounding to 28 digits
            value = value.normalize(Context(prec=len(text) + 2)) if value else Decimal(0)
            other = seen.setdefault(value, text)
            if other != text:
                (ra, ta), (rb, tb) = sorted((self.first_row(t), t) for t in (other, text))
                raise DataError(
                    f"{self.path}: column {self.where}: ids {ta!r} (data row {ra + 1}) and "
                    f"{tb!r} (data row {rb + 1}) are the same number written two ways, so they "
                    f"would be two different ids; expected one spelling per id: write every "
                    f"id the same way"
                )

    def rows(self) -> pa.Array:
        return pc.take(self.words, self.codes)


def _check_no_repeated_header(table: pa.Table, mapping: Mapping[str, str], path: Path) -> None:
    """Refuse data rows that repeat the header (files concatenated with their headers),
    which would otherwise become a user and an item named after the columns. Runs on
    the normalised id columns (trimmed text; a header word keeps a column text)."""
    hit = None
    for canon in (USER, ITEM):
        col = table.column(mapping[canon])
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            return
        same = pc.fill_null(pc.equal(col, mapping[canon]), False)
        hit = same if hit is None else pc.and_(hit, same)
    n = pc.sum(hit).as_py() or 0
    if n:
        i = int(np.flatnonzero(hit.to_numpy(zero_copy_only=False))[0])
        raise DataError(
            f"{path}: data row {i + 1} repeats the header line ({n} such row(s), e.g. "
            f"user {mapping[USER]!r}, item {mapping[ITEM]!r}); expected data rows only: "
            f"remove the repeated header lines (were files joined with their headers?)"
        )


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


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds (messages show ``1``, not ``np.int64(1)``)."""
    return value.item() if hasattr(value, "item") else value


def _check_genre_sep(sep: object) -> str:
    if not isinstance(sep, str) or not sep or sep.strip() != sep:
        raise ConfigError(
            f"load_table genre_sep: expected a non-blank separator such as '|', got {sep!r}"
        )
    return sep


#: separators an items file's genres are often written with instead of the declared one
_OTHER_GENRE_SEPS = ("|", ",", ";")


def _read_items(
    path: Path, item_col: str, sep: str | None, item_ids: pd.Index, genre_sep: str = "|"
) -> ItemFeatures:
    """The items file (``items_path``): one row per item, matched to the interactions'
    items by id (same id rule); genres are ``genre_sep``-separated."""
    if not is_file(path):
        raise DataError(f"{path.resolve()}: the items file (items_path) does not exist")
    table = _read_items_table(path, item_col, sep)
    key = item_col if item_col in table.column_names else ITEM
    if key not in table.column_names:
        raise DataError(
            f"{path}: missing the item column {item_col!r} (or 'item_id'); found columns "
            f"{table.column_names}"
        )
    ids = normalise_ids(table.column(key), ITEM, key, path)
    frame = table.to_pandas()
    frame = frame.drop(columns=[c for c in (item_col, ITEM) if c in frame.columns])
    frame.insert(0, ITEM, _item_ids_like(ids.to_pandas(), item_ids, key, path))
    _check_unique_items(frame[ITEM], key, path)
    if "year" in frame.columns:
        _check_years(frame["year"], path)
    if "genres" in frame.columns:
        _check_genre_sep_used(frame["genres"], genre_sep, path)
    known = item_ids.isin(frame[ITEM]).sum()
    if not known:
        raise DataError(
            f"{path}: none of the {len(frame)} item ids in column {key!r} is an item of the "
            f"interactions (e.g. {_plain(frame[ITEM].iloc[0])!r} here, "
            f"{_plain(item_ids[0])!r} there); expected the same ids: is the item column or "
            f"the file right?"
        )
    if known < len(item_ids):
        log.info("%s: %d of %d interaction items have no row in the items file",
                 path, len(item_ids) - known, len(item_ids))
    return ItemFeatures.from_frame(frame, source=str(path), genre_sep=genre_sep).align(item_ids)


def _read_items_table(path: Path, item_col: str, sep: str | None) -> pa.Table:
    if _is_parquet(path):
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None
        if table.num_rows == 0:
            raise DataError(f"{path}: the table has columns but no data rows")
        return table
    sep = sep or _default_sep(path)
    check_has_rows(path, header=True)
    found = read_header(path, sep=sep)
    wanted = list(dict.fromkeys(c for c in found if c in (item_col, ITEM, "title", "year",
                                                            "genres")))
    if len(wanted) < len([c for c in found if c in wanted]):
        raise DataError(f"{path}: a column is named twice in the header {found}")
    types = {c: pa.string() for c in wanted}
    try:
        table = _arrow_read(path, wanted, types, sep, True, "utf-8", True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        problem = locate_problem(path, names=wanted, types=types, sep=sep, header=True)
        raise DataError(problem or f"{path}: cannot be parsed ({_first_line(exc)})") from None
    return table.select(wanted)


def _item_ids_like(ids: pd.Series, item_ids: pd.Index, key: str, path: Path) -> pd.Series:
    """The items file's ids in the interactions' id type (integers or text)."""
    if not pd.api.types.is_integer_dtype(item_ids.dtype):
        return ids.astype(str)
    if pd.api.types.is_integer_dtype(ids.dtype):
        return ids.astype(np.int64)
    num = ids if pd.api.types.is_numeric_dtype(ids.dtype) else pd.to_numeric(ids, errors="coerce")
    bad = (num.isna() | (num != np.floor(num))).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: column {key!r} data row {i + 1}: expected an integer item id like "
            f"the interactions', got {ids.iloc[i]!r}"
        )
    return num.astype(np.int64)


def _check_unique_items(ids: pd.Series, key: str, path: Path) -> None:
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(ids.to_numpy() == ids.to_numpy()[np.flatnonzero(dup)[0]])
        raise DataError(
            f"{path}: column {key!r}: item {_plain(ids.iloc[rows[0]])!r} is on data rows "
            f"{rows[0] + 1} and {rows[1] + 1} ({int(ids.duplicated().sum())} repeated id(s) "
            f"in all); expected one row per item: keep one row for each"
        )


def _check_years(years: pd.Series, path: Path) -> None:
    text = years.astype("string").str.strip()
    given = text.notna() & ~text.str.lower().isin(list(_NULL_TOKENS))
    num = pd.to_numeric(text.where(given), errors="coerce")
    bad = (given & (num.isna() | (num != np.floor(num)))).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: column 'year' data row {i + 1}: expected a whole year such as 1995 "
            f"(or an empty field), got {years.iloc[i]!r}"
        )


def _check_genre_sep_used(genres: pd.Series, genre_sep: str, path: Path) -> None:
    """Refuse genres that are all written with another separator than ``genre_sep``
    (``Action;Comedy`` would silently be one genre named 'Action;Comedy')."""
    text = genres.dropna().astype(str)
    if text.str.contains(genre_sep, regex=False).any():
        return
    for other in _OTHER_GENRE_SEPS:
        if other == genre_sep:
            continue
        hit = text.str.contains(other, regex=False).to_numpy()
        if hit.any():
            i = int(np.flatnonzero(hit)[0])
            raise DataError(
                f"{path}: column 'genres': no value is separated by {genre_sep!r}, but data "
                f"row {text.index[i] + 1} has {text.iloc[i]!r}; expected "
                f"{genre_sep!r}-separated genres: set dataset.genre_sep={other!r} "
                f"(or rewrite the genres)"
            )
