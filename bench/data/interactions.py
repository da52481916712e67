"""The validated, immutable table of user-item interactions every other part works on.

An :class:`Interactions` holds parallel numpy arrays (user codes, item codes, optional
ratings, optional timestamps) plus the two vocabularies that turn codes back into the
ids of the source data. Rows are kept in a canonical order (user, timestamp, item), so
equal content gives equal arrays and an equal :meth:`Interactions.fingerprint`.

The only public way in is :meth:`Interactions.from_frame`, which validates and raises a
:class:`~bench.errors.DataError` naming the source, column, row and what was expected.
Parts of a split share the vocabularies of the data they came from (see
:meth:`Interactions.take`), so a code means the same user or item in train and test and
matrices from every part have the same shape.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd
import scipy.sparse as sp

import bench.pickling  # noqa: F401  (read-only mappings pickle: cells ship splits)
from bench.errors import ConfigError, DataError
from bench.machine import map_on_cores, offload

USER, ITEM, RATING, TIMESTAMP = "user_id", "item_id", "rating", "timestamp"
DUPLICATE_POLICIES = ("error", "keep_last", "keep_first", "mean")
_HASH_ROWS = 1 << 20
"""Rows hashed per block by :meth:`Interactions.fingerprint`."""
#: fingerprints being computed, by object id: a second caller waits for the first
_hashing: dict[int, Future] = {}
_hashing_lock = threading.Lock()
BACKGROUND_HASH_ROWS = 1 << 20
"""Rows below which :func:`fingerprint_in_background` leaves hashing to the caller."""
PARALLEL_TAKE_ROWS = 1 << 20
"""Rows from which :meth:`Interactions.take` gathers its columns on two threads when a
core is free (0.40 s -> 0.26 s for 20M of 25M rows on 2 cores)."""


@dataclass(frozen=True, eq=False)
class Interactions:
    """Immutable interactions with dense vocabularies.

    Attributes:
        user_ids: vocabulary, ``user_ids[code]`` is the source id of user ``code``.
        item_ids: vocabulary for items, likewise.
        users, items: int32 codes, one per row.
        ratings: float64 per row, or ``None`` for implicit data.
        timestamps: int64 Unix seconds per row, or ``None``.
        rating_scale: ``(low, high)`` the ratings were checked against, or ``None``.
        source: where the rows came from (a file path or a name), used in messages.
        drops: rows removed by documented policies, by reason (e.g. ``duplicates_mean``).
    """

    user_ids: pd.Index
    item_ids: pd.Index
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    rating_scale: tuple[float, float] | None = None
    source: str = "<interactions>"
    drops: Mapping[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        source: str = "<frame>",
        rating_scale: tuple[float, float] | None = None,
        duplicates: str = "error",
        user_ids: pd.Index | None = None,
        item_ids: pd.Index | None = None,
        timestamp_unit: str | None = None,
    ) -> Interactions:
        """Validate a frame with columns ``user_id, item_id[, rating][, timestamp]``.

        ``timestamp`` may hold integers (Unix times), datetimes or date strings, one
        kind per column. ``timestamp_unit`` (``s``, ``ms``, ``us``, ``ns``) is the unit of
        integer times; ``None`` means seconds and refuses values that would fall after
        9999 as seconds, naming the unit they look like. Times are kept as whole Unix
        seconds (finer units are floored), between 1970 and 9999.
        ``duplicates`` says what to do with repeated (user, item) pairs: ``error``,
        ``keep_last`` / ``keep_first`` (by timestamp, then row order) or ``mean``
        (mean rating, latest timestamp). Removed rows are counted in ``drops``.
        ``user_ids`` / ``item_ids`` fix the vocabularies (ids outside them are an error);
        by default the vocabularies are the sorted distinct ids.

        Raises:
            DataError: naming ``source``, the column and the first offending data row
                (1-based, header excluded) with the value found.
        """
        check_time_unit(timestamp_unit)
        if duplicates not in DUPLICATE_POLICIES:
            raise DataError(
                f"{source}: duplicates policy: expected one of {list(DUPLICATE_POLICIES)}, "
                f"got {duplicates!r}"
            )
        missing = [c for c in (USER, ITEM) if c not in frame.columns]
        if missing:
            raise DataError(
                f"{source}: missing required column(s) {missing}; found columns "
                f"{[str(c) for c in frame.columns]}"
            )
        if len(frame) == 0:
            raise DataError(f"{source}: expected at least one interaction row, found none")
        frame = frame.reset_index(drop=True)
        uid = _check_ids(frame[USER], USER, source)
        iid = _check_ids(frame[ITEM], ITEM, source)
        ratings = None
        if RATING in frame.columns:
            ratings = _check_ratings(frame[RATING], rating_scale, source)
        timestamps = None
        if TIMESTAMP in frame.columns:
            timestamps = _check_timestamps(frame[TIMESTAMP], source, timestamp_unit)

        users, user_vocab = _encode(uid, user_ids, USER, source)
        items, item_vocab = _encode(iid, item_ids, ITEM, source)
        drops: dict[str, int] = {}
        users, items, ratings, timestamps = _resolve_duplicates(
            users, items, ratings, timestamps, duplicates, source, uid, iid, drops
        )
        order = _canonical_order(users, items, timestamps)
        return cls(
            user_ids=user_vocab,
            item_ids=item_vocab,
            users=users[order],
            items=items[order],
            ratings=None if ratings is None else ratings[order],
            timestamps=None if timestamps is None else timestamps[order],
            rating_scale=rating_scale,
            source=source,
            drops=MappingProxyType(drops),
        )

    def take(self, rows: np.ndarray, *, source: str | None = None) -> Interactions:
        """Return the given rows (indices or boolean mask) with the same vocabularies.

        Rows keep their canonical order; no validation is repeated.
        """
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        else:
            rows = np.sort(rows)
        columns = [self.users, self.items, self.ratings, self.timestamps]
        if len(rows) >= PARALLEL_TAKE_ROWS:  # numpy's gathers release the GIL
            users, items, ratings, timestamps = map_on_cores(
                lambda c: None if c is None else c[rows], columns)
        else:
            users, items, ratings, timestamps = (None if c is None else c[rows]
                                                 for c in columns)
        return Interactions(
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            users=users,
            items=items,
            ratings=ratings,
            timestamps=timestamps,
            rating_scale=self.rating_scale,
            source=source or self.source,
            drops=self.drops,
        )

    def recoded(self, user_ids: pd.Index, item_ids: pd.Index, users: np.ndarray,
                items: np.ndarray) -> Interactions:
        """The same rows under other vocabularies: ``user_ids[users[r]]`` must be the id of
        row ``r``'s user here (items likewise); ratings, times and order are kept.

        The rows name the same ids, so a fingerprint already computed here is kept rather
        than computed again (it hashes ids, not codes): a model re-coding its training rows
        (:mod:`bench.models.vocabulary`) costs no second pass over them.
        """
        out = Interactions(
            user_ids=user_ids, item_ids=item_ids, users=users, items=items,
            ratings=self.ratings, timestamps=self.timestamps,
            rating_scale=self.rating_scale, source=self.source, drops=self.drops,
        )
        kept = self.__dict__.get("_fingerprint")
        if kept is not None:
            out.keep_fingerprint(kept)
        return out

    def keep_fingerprint(self, value: str) -> None:
        """Take ``value`` as these rows' :meth:`fingerprint` without hashing them, for a
        caller that has proved it is theirs (the same rows re-coded; a cache entry whose
        file checksums match the bytes the value was computed from)."""
        # past the frozen dataclass's __setattr__, as cached_property writes its value
        self.__dict__["_fingerprint"] = str(value)

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return int(self.users.shape[0])

    @property
    def n_users(self) -> int:
        """Size of the user vocabulary (may exceed the users present in these rows)."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Size of the item vocabulary (may exceed the items present in these rows)."""
        return len(self.item_ids)

    @property
    def has_ratings(self) -> bool:
        return self.ratings is not None

    @property
    def has_timestamps(self) -> bool:
        return self.timestamps is not None

    def user_counts(self) -> np.ndarray:
        """Interactions per user code (length ``n_users``; read-only, counted once)."""
        return self._counts("_user_counts", self.users, self.n_users)

    def item_counts(self) -> np.ndarray:
        """Interactions per item code (length ``n_items``; read-only, counted once)."""
        return self._counts("_item_counts", self.items, self.n_items)

    def _counts(self, name: str, codes: np.ndarray, size: int) -> np.ndarray:
        # a run asks a 25M-row table for its counts a dozen times (splits, summaries, the
        # budget check, vocabularies): counted once and kept, as fingerprint() is
        kept = self.__dict__.get(name)
        if kept is None:
            kept = _count_codes(codes, size)
            kept.flags.writeable = False
            self.__dict__[name] = kept
        return kept

    def present_users(self) -> np.ndarray:
        """Sorted codes of users with at least one row."""
        # what np.unique(self.users) returns, by counting instead of sorting the rows
        return np.flatnonzero(self.user_counts()).astype(self.users.dtype, copy=False)

    def to_csr(self, values: str = "ones", dtype: type = np.float32) -> sp.csr_matrix:
        """Users x items sparse matrix over the full vocabularies.

        ``values``: ``"ones"`` (implicit 1 per interaction), ``"rating"`` or ``"timestamp"``.
        """
        if values == "ones":
            data = np.ones(len(self), dtype=dtype)
        elif values == "rating":
            if self.ratings is None:
                raise DataError(f"{self.source}: values='rating' asked, but there is no rating")
            data = self.ratings.astype(dtype)
        elif values == "timestamp":
            if self.timestamps is None:
                raise DataError(f"{self.source}: values='timestamp' asked, but no timestamp")
            data = self.timestamps.astype(dtype)
        else:
            raise DataError(
                f"to_csr values: expected 'ones', 'rating' or 'timestamp', got {values!r}"
            )
        # Rows are sorted by user; within a user items may be in time order, so let
        # scipy sort indices once (duplicates cannot occur: pairs are unique).
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(self.user_counts(), out=indptr[1:])
        m = sp.csr_matrix(
            (data, self.items.astype(np.int32), indptr), shape=(self.n_users, self.n_items)
        )
        m.sort_indices()
        return m

    def to_frame(self) -> pd.DataFrame:
        """The rows with source ids, in canonical order."""
        out = {USER: self.user_ids[self.users], ITEM: self.item_ids[self.items]}
        if self.ratings is not None:
            out[RATING] = self.ratings
        if self.timestamps is not None:
            out[TIMESTAMP] = self.timestamps
        return pd.DataFrame(out)

    def fingerprint(self) -> str:
        """SHA-256 of the rows' content (source ids, ratings, timestamps), hex.

        Independent of vocabulary size, so a split part hashes the same whether or not
        its vocabulary carries ids without rows. Computed once per object (the rows are
        immutable) and kept, as ``functools.cached_property`` keeps its value: a run asks
        for it several times, and at 25M rows each hash reads about 800 MB. Thread-safe:
        a caller that finds the hash under way in another thread
        (:func:`fingerprint_in_background`) waits for that result instead of hashing again.
        """
        kept = self.__dict__.get("_fingerprint")
        if kept is not None:
            return kept
        with _hashing_lock:
            kept = self.__dict__.get("_fingerprint")  # finished meanwhile
            if kept is not None:
                return kept
            pending = _hashing.get(id(self))
            mine = pending is None
            if mine:
                pending = _hashing[id(self)] = Future()
        if not mine:
            return pending.result()
        try:
            kept = self._hash()
        except BaseException as exc:
            with _hashing_lock:
                del _hashing[id(self)]
            pending.set_exception(exc)
            raise
        with _hashing_lock:  # kept before the entry goes: no caller can miss both
            self.keep_fingerprint(kept)
            del _hashing[id(self)]
        pending.set_result(kept)
        return kept

    def _hash(self) -> str:
        h = hashlib.sha256()
        uh = pd.util.hash_pandas_object(pd.Index(self.user_ids), index=False).to_numpy()
        ih = pd.util.hash_pandas_object(pd.Index(self.item_ids), index=False).to_numpy()
        # the bytes of uh[users], then of ih[items], fed in blocks (the same digest as one
        # update with all of them, without rows-long temporaries and their copies)
        for hashes, codes in ((uh, self.users), (ih, self.items)):
            for lo in range(0, len(codes), _HASH_ROWS):
                h.update(hashes[codes[lo : lo + _HASH_ROWS]])
        for arr, tag in ((self.ratings, b"r"), (self.timestamps, b"t")):
            h.update(tag)
            if arr is not None:
                h.update(np.ascontiguousarray(arr))
        return h.hexdigest()

    def __repr__(self) -> str:
        return (
            f"Interactions({len(self)} rows, {len(self.present_users())} users, "
            f"{len(np.unique(self.items))} items, source={self.source!r})"
        )


def _count_codes(codes: np.ndarray, size: int) -> np.ndarray:
    """``np.bincount(codes, minlength=size)``. Codes in order (a table's users are: rows
    are canonical) are counted from where each code's run starts, by binary search, in a
    fraction of the time (bincount first copies 25M int32 codes into int64)."""
    if size and len(codes) and codes.dtype.kind in "iu" and size < np.iinfo(codes.dtype).max \
            and codes[0] >= 0 and codes[-1] < size and bool(np.all(codes[1:] >= codes[:-1])):
        bounds = np.searchsorted(codes, np.arange(size + 1, dtype=codes.dtype))
        return np.diff(bounds).astype(np.intp, copy=False)
    return np.bincount(codes, minlength=size)


def fingerprint_in_background(tables: Iterable[Interactions]) -> bool:
    """Queue ``tables`` to be hashed (:meth:`Interactions.fingerprint`) on the background
    thread (:func:`bench.machine.offload`); whether they were queued.

    hashlib and numpy's gathers release the GIL, so on a machine with a free core the
    fingerprints of large tables are ready by the time the run records them, while the
    run's own thread splits and audits (about 0.85 s for a 25M-row split). Small tables
    (fewer than :data:`BACKGROUND_HASH_ROWS` rows in all) are left to be hashed when
    asked; so is everything when no core is free. An error in the thread is dropped: the
    caller's own call hashes again and raises it.
    """
    todo = [t for t in tables if t.__dict__.get("_fingerprint") is None]
    if sum(len(t) for t in todo) < BACKGROUND_HASH_ROWS:
        return False

    def hash_all() -> None:
        for table in todo:
            table.fingerprint()

    return offload(hash_all)


# ---------------------------------------------------------------------- validation helpers
def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _show(value: object) -> str:
    """Render a cell for a message: plain Python repr, never ``np.float64(...)``."""
    if hasattr(value, "item"):
        value = value.item()
    return repr(value)


def _check_ids(col: pd.Series, name: str, source: str) -> pd.Series:
    """Reject NaN/empty ids; turn integral floats (an artefact of NaN in CSV) into int64."""
    bad = col.isna().to_numpy()
    if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
        stripped = col.astype("string").str.strip()
        bad = bad | (stripped == "").fillna(False).to_numpy(dtype=bool)
    if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True).startswith("mixed"):
        # pandas can order 1 and "1" side by side: they would silently be two ids
        is_str = col.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        i = _first_bad(is_str != is_str[0])
        raise DataError(
            f"{source}: column '{name}': expected ids of one type, got a mix of text and "
            f"numbers; first change at data row {i + 1}: {_show(col.iloc[i])}"
        )
    if bad.any():
        i = _first_bad(bad)
        raise DataError(
            f"{source}: column '{name}' has {int(bad.sum())} missing/empty id(s); "
            f"first at data row {i + 1}: expected a non-empty id, got {_show(col.iloc[i])}"
        )
    if pd.api.types.is_float_dtype(col.dtype):
        vals = col.to_numpy()
        frac = ~np.isfinite(vals) | (vals != np.floor(vals))
        if frac.any():
            i = _first_bad(frac)
            raise DataError(
                f"{source}: column '{name}' data row {i + 1}: expected an integer or string "
                f"id, got {_show(vals[i])}"
            )
        col = col.astype(np.int64)
    elif pd.api.types.is_bool_dtype(col.dtype):
        raise DataError(f"{source}: column '{name}': expected integer or string ids, got bool")
    return col


def _check_ratings(
    col: pd.Series, scale: tuple[float, float] | None, source: str
) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col.dtype):
        raise DataError(f"{source}: column 'rating': expected numbers, got bool values")
    num = pd.to_numeric(col, errors="coerce")
    bad = num.isna().to_numpy()
    if bad.any():
        i = _first_bad(bad)
        what = "missing" if pd.isna(col.iloc[i]) else "non-numeric"
        raise DataError(
            f"{source}: column 'rating' has {int(bad.sum())} {what} value(s); first at data "
            f"row {i + 1}: expected a number, got {_show(col.iloc[i])}"
        )
    vals = num.to_numpy(dtype=np.float64)
    if not np.isfinite(vals).all():
        i = _first_bad(~np.isfinite(vals))
        raise DataError(
            f"{source}: column 'rating' data row {i + 1}: expected a finite number, "
            f"got {_show(vals[i])}"
        )
    if scale is not None:
        lo, hi = float(scale[0]), float(scale[1])
        off = (vals < lo) | (vals > hi)
        if off.any():
            i = _first_bad(off)
            raise DataError(
                f"{source}: column 'rating' has {int(off.sum())} value(s) outside the declared "
                f"scale [{lo:g}, {hi:g}]; first at data row {i + 1}: got {vals[i]:g}"
            )
    return vals


def _check_timestamps(col: pd.Series, source: str, unit: str | None = None) -> np.ndarray:
    """Unix seconds (int64) from numbers in ``unit`` (None: seconds, checked), datetimes
    or date strings; every refusal names the first offending data row and its value."""
    if pd.api.types.is_bool_dtype(col.dtype):
        raise DataError(
            f"{source}: column 'timestamp': expected Unix seconds or dates, got bool values"
        )
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        return _datetime_seconds(col, col, source)
    if pd.api.types.is_numeric_dtype(col.dtype):
        return _unix_seconds(col, source, unit)
    text = col.astype("string").str.strip()
    num = pd.to_numeric(text, errors="coerce")
    is_num = num.notna().to_numpy()
    if is_num.all():
        return _unix_seconds(num, source, unit, shown=col)
    dates = pd.Series(pd.NaT, index=col.index, dtype="datetime64[us, UTC]")
    rest = ~is_num
    dates[rest] = _parse_dates(text[rest])
    bad = rest & dates.isna().to_numpy()
    if bad.any():
        i = _first_bad(bad)
        raise DataError(
            f"{source}: column 'timestamp' has {int(bad.sum())} unparseable value(s); first at "
            f"data row {i + 1}: expected Unix seconds or a date, got {_show(col.iloc[i])}"
        )
    if is_num.any():
        n_num = int(is_num.sum())
        minority = is_num if n_num < len(is_num) - n_num else ~is_num
        if n_num == len(is_num) - n_num:  # a tie: the kind that differs from row 1
            minority = is_num != is_num[0]
        i = _first_bad(minority)
        kind = "Unix time" if is_num[i] else "date"
        raise DataError(
            f"{source}: column 'timestamp' mixes {n_num} Unix time(s) with "
            f"{len(is_num) - n_num} date(s); first {kind} at data row {i + 1}: "
            f"{_show(col.iloc[i])}. Expected one kind: write every timestamp as a date or "
            f"every one as a number"
        )
    return _datetime_seconds(dates, col, source)


#: seconds per unit of a numeric timestamp column (the dataset's ``timestamp_unit``)
TIME_UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
#: the latest time a timestamp may hold: 9999-12-31T23:59:59Z in Unix seconds
MAX_SECONDS = 253_402_300_799
_INT64_MAX = np.iinfo(np.int64).max


def check_time_unit(unit: object, where: str = "timestamp_unit") -> str | None:
    """``unit`` when it is one of :data:`TIME_UNITS` or None; else a ``DataError``."""
    if unit is None or (isinstance(unit, str) and unit in TIME_UNITS):
        return unit
    raise ConfigError(f"{where}: expected one of {list(TIME_UNITS)} or null, got {unit!r}")


def _unix_seconds(
    col: pd.Series, source: str, unit: str | None, shown: pd.Series | None = None
) -> np.ndarray:
    """Integer Unix times in ``unit`` -> seconds. ``unit=None`` means seconds, and values
    too large for seconds are refused with the unit they look like."""
    shown = col if shown is None else shown
    factor = TIME_UNITS[unit or "s"]
    exact = pd.api.types.is_signed_integer_dtype(col.dtype) or (
        pd.api.types.is_unsigned_integer_dtype(col.dtype) and int(col.max()) <= _INT64_MAX
    )
    vals = col.to_numpy(dtype=np.int64 if exact else np.float64)
    if not exact:
        bad = ~np.isfinite(vals) | (vals != np.floor(vals))
        if bad.any():
            i = _first_bad(bad)
            raise DataError(
                f"{source}: column 'timestamp' data row {i + 1}: expected integer Unix "
                f"{_UNIT_WORDS[unit or 's']} or a date, got {_show(shown.iloc[i])}"
            )
    if (vals < 0).any():
        i = _first_bad(vals < 0)
        raise DataError(
            f"{source}: column 'timestamp' data row {i + 1}: expected a non-negative "
            f"Unix time, got {_show(shown.iloc[i])}"
        )
    limit = MAX_SECONDS * factor
    over = vals > min(limit, _INT64_MAX)
    if over.any():
        i = _first_bad(over)
        top = float(vals.max())
        guess = next((u for u, f in TIME_UNITS.items()
                      if f > factor and top <= min(MAX_SECONDS * f, _INT64_MAX)), None)
        what = (f"{int(over.sum())} value(s) after 9999-12-31 as Unix "
                f"{_UNIT_WORDS[unit or 's']}; first at data row {i + 1}: "
                f"got {_show(shown.iloc[i])}")
        if unit is None and guess is not None:
            raise DataError(
                f"{source}: column 'timestamp' has {what}. They look like Unix "
                f"{_UNIT_WORDS[guess]}: set the dataset's timestamp_unit to {guess!r} "
                f"(dataset.timestamp_unit={guess}), or correct the values"
            )
        raise DataError(
            f"{source}: column 'timestamp' has {what}. Expected Unix times from 1970 to "
            f"9999 (at most {min(limit, _INT64_MAX)} in {_UNIT_WORDS[unit or 's']})"
        )
    if exact:
        return vals // factor
    return np.floor(vals / factor).astype(np.int64)


def _parse_dates(text: pd.Series) -> pd.Series:
    """Date strings -> UTC datetimes (NaT where unparseable); ISO 8601 first (fast)."""
    if len(text) == 0:
        return pd.Series([], index=text.index, dtype="datetime64[us, UTC]")
    out = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    left = out.isna().to_numpy()
    if left.any():
        out = out.astype("datetime64[us, UTC]")
        out[left] = pd.to_datetime(text[left], errors="coerce", utc=True, format="mixed")
    return out.astype("datetime64[us, UTC]")


def _datetime_seconds(parsed: pd.Series, col: pd.Series, source: str) -> np.ndarray:
    """Datetimes (naive = UTC) -> Unix seconds, floored; no nanosecond overflow after 2262."""
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = _first_bad(bad)
        raise DataError(
            f"{source}: column 'timestamp' has {int(bad.sum())} missing value(s); first at "
            f"data row {i + 1}: expected Unix seconds or a date, got {_show(col.iloc[i])}"
        )
    if parsed.dt.tz is None:
        parsed = parsed.dt.tz_localize("UTC")
    micros = parsed.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    out = np.floor_divide(micros.to_numpy().astype(np.int64), 1_000_000)
    if (out < 0).any():
        i = _first_bad(out < 0)
        raise DataError(
            f"{source}: column 'timestamp' data row {i + 1}: expected a time after 1970, "
            f"got {_show(col.iloc[i])}"
        )
    if (out > MAX_SECONDS).any():
        i = _first_bad(out > MAX_SECONDS)
        raise DataError(
            f"{source}: column 'timestamp' data row {i + 1}: expected a time up to "
            f"9999-12-31, got {_show(col.iloc[i])}"
        )
    return out


def _encode(
    ids: pd.Series, vocab: pd.Index | None, name: str, source: str
) -> tuple[np.ndarray, pd.Index]:
    if vocab is None:
        try:
            codes, uniques = pd.factorize(ids, sort=True)
        except TypeError as exc:  # mixed int/str ids cannot be ordered
            raise DataError(
                f"{source}: column '{name}': expected ids of one type, got a mix ({exc})"
            ) from None
        return codes.astype(np.int32), pd.Index(uniques, name=name)
    codes = vocab.get_indexer(ids)
    unknown = codes < 0
    if unknown.any():
        i = _first_bad(unknown)
        raise DataError(
            f"{source}: column '{name}' data row {i + 1}: id {_show(ids.iloc[i])} is not in the "
            f"vocabulary of the data this part belongs to"
        )
    return codes.astype(np.int32), vocab


def _resolve_duplicates(users, items, ratings, timestamps, policy, source, uid, iid, drops):
    n_items = int(items.max()) + 1 if len(items) else 1
    key = users.astype(np.int64) * n_items + items
    plain = np.sort(key)  # fast check first: most data has no duplicate at all
    if not (plain[1:] == plain[:-1]).any():
        return users, items, ratings, timestamps
    # order rows by pair, then by time (ties: original row order) so "last" is well defined
    order = np.lexsort(
        (np.arange(len(key)), timestamps if timestamps is not None else np.zeros(len(key)), key)
    )
    k_sorted = key[order]
    dup_next = k_sorted[1:] == k_sorted[:-1]
    if not dup_next.any():
        return users, items, ratings, timestamps
    n_dup = int(dup_next.sum())
    if policy == "error":
        first = order[1:][dup_next]
        i = int(first.min())
        raise DataError(
            f"{source}: {n_dup} duplicate (user_id, item_id) row(s) under duplicates='error'; "
            f"first at data row {i + 1}: ({_show(uid.iloc[i])}, {_show(iid.iloc[i])}). "
            f"Expected unique pairs; set the dataset's `duplicates` to keep_last, keep_first "
            f"or mean to resolve"
        )
    group_start = np.r_[True, ~dup_next]
    group_end = np.r_[~dup_next, True]
    if policy == "keep_first":
        keep = order[group_start]
    else:
        keep = order[group_end]
    out_r = None if ratings is None else ratings[keep]
    if policy == "mean" and ratings is not None:
        gid = np.cumsum(group_start) - 1
        sums = np.bincount(gid, weights=ratings[order])
        cnts = np.bincount(gid)
        out_r = sums / cnts
    keep_ts = None if timestamps is None else timestamps[keep]
    drops[f"duplicates_{policy}"] = n_dup
    return users[keep], items[keep], out_r, keep_ts


def _canonical_order(users, items, timestamps) -> np.ndarray:
    """Row order by (user, timestamp, item); pairs are unique, so the order is unique.

    Same result as ``np.lexsort((items, ts, users))``, several times faster on large
    data: one sort on a packed (user, timestamp) key, then items order the rare rows
    that share a user and a second. Falls back to ``lexsort`` if the key would overflow.
    """
    ts = timestamps if timestamps is not None else np.zeros(len(users), dtype=np.int64)
    n = len(users)
    if n < 2:
        return np.arange(n)
    t = ts.astype(np.int64) - ts.min()
    t_bits = int(t.max()).bit_length()
    u_bits = int(users.max()).bit_length()
    if t_bits + u_bits > 62:
        return np.lexsort((items, ts, users))
    packed = (users.astype(np.int64) << t_bits) | t
    order = np.argsort(packed)
    k = packed[order]
    tie = k[1:] == k[:-1]
    if tie.any():
        member = np.r_[False, tie] | np.r_[tie, False]  # rows in a group of equal keys
        rows = np.flatnonzero(member)
        group = np.cumsum(np.r_[True, ~tie])[rows]
        sub = order[rows]
        order[rows] = sub[np.lexsort((items[sub], group))]
    return order
