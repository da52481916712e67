"""A cache of generated interaction rows, so a later run reads them instead of making them.

Generating and validating ml-25m-sized synthetic data (25M rows) takes longer than
reading its arrays back. :func:`write_rows` keeps the validated rows of an
:class:`~bench.data.interactions.Interactions` in one folder per *entry*; :func:`read_rows`
gives them back when, and only when, the entry was written for exactly the same
parameters and its rows still have the content they were written with.

An entry is the folder ``<cache_dir>/<kind>/<kind>-<key>/`` (``key``: the first 32 hex
digits of the SHA-256 of the entry's parameters as canonical JSON, with
:data:`FORMAT`). It holds one ``.npy`` file per column (``users``, ``items`` as int32;
``ratings`` as int8 when every rating is a whole number in its range, else float64;
``timestamps`` as uint32 seconds after the earliest when they fit, else int64) and
``meta.json``, written last: the parameters in full, the row count, each file's dtype,
the earliest timestamp, the rows' :meth:`~bench.data.interactions.Interactions.fingerprint`
(SHA-256 of their content), the SHA-256 of each file's data bytes and of the two
vocabularies. Reading checks, before anything is returned: the format, the parameters
(equal, not just the key), each file's dtype and length, each file's bytes and the
vocabularies against their checksums. Anything else — a missing or truncated file,
other parameters, a changed byte — is a miss (logged), and the caller makes the rows
again and overwrites the entry. Rows that pass are the bytes the fingerprint was
computed from, so the kept fingerprint becomes theirs (a run records it anyway): the
check reads the 325 MB of an ml-25m-sized entry once instead of hashing 800 MB of
expanded rows (about 0.2 s against 0.7 s). An entry written before the files had
checksums is checked by hashing its rows, as then.

Files are read with ``allow_pickle=False``, mapped copy-on-write (``users`` and ``items``
stay mapped: the cache's files must not be truncated in place while a run uses them,
and :func:`write_rows` only ever replaces them), and written atomically
(:mod:`bench.atomic`).
A cache that cannot be written (read-only, disk full) is logged and skipped: the run
goes on with the rows it made. Clear the cache by deleting its folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from bench.atomic import atomic_write, write_json
from bench.data.interactions import Interactions

log = logging.getLogger("bench")

__all__ = ["FORMAT", "default_cache_dir", "entry_folder", "read_rows", "write_rows"]

FORMAT = 1
"""The layout of an entry; part of its key, so a new layout never reads an old entry."""

META = "meta.json"
_INT8_RATINGS = (-128.0, 127.0)


def default_cache_dir() -> Path:
    """``$BENCH_CACHE_DIR``, else ``~/.cache/recspectrum``."""
    env = os.environ.get("BENCH_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "recspectrum"


def _canonical(kind: str, params: Mapping[str, object]) -> dict:
    return json.loads(json.dumps({"format": FORMAT, "kind": kind, "params": dict(params)},
                                 sort_keys=True))


def entry_folder(cache_dir: str | os.PathLike[str], kind: str,
                 params: Mapping[str, object]) -> Path:
    """The folder of the entry for ``kind`` (e.g. ``synthetic``) and ``params`` (JSON
    values: every argument that changes the rows)."""
    text = json.dumps(_canonical(kind, params), sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()[:32]
    return Path(cache_dir) / kind / f"{kind}-{key}"


def write_rows(cache_dir: str | os.PathLike[str], kind: str, params: Mapping[str, object],
               rows: Interactions) -> Path | None:
    """Keep ``rows`` (validated) as the entry of ``params``; its folder, or ``None`` when
    it could not be written (logged)."""
    folder = entry_folder(cache_dir, kind, params)
    arrays = {"users": rows.users.astype(np.int32, copy=False),
              "items": rows.items.astype(np.int32, copy=False)}
    base = None
    if rows.ratings is not None:
        arrays["ratings"] = _compact_ratings(rows.ratings)
    if rows.timestamps is not None:
        arrays["timestamps"], base = _compact_times(rows.timestamps)
    meta = {**_canonical(kind, params), "rows": len(rows), "fingerprint": rows.fingerprint(),
            "dtypes": {k: str(v.dtype) for k, v in arrays.items()}, "timestamp_base": base,
            "drops": dict(rows.drops),
            "sha256": {k: _data_sha256(v) for k, v in arrays.items()},
            "vocabulary_sha256": _vocabulary_sha256(rows.user_ids, rows.item_ids)}
    try:
        (folder / META).unlink(missing_ok=True)  # the entry is incomplete until meta.json
        for name, array in arrays.items():
            atomic_write(folder / f"{name}.npy", lambda tmp, a=array: _save(tmp, a))
        write_json(folder / META, meta)
    except OSError as exc:
        log.warning("data cache: could not keep the %s rows in %s (%s); going on without",
                    kind, folder, exc)
        return None
    log.info("data cache: %s rows kept in %s", kind, folder)
    return folder


def read_rows(cache_dir: str | os.PathLike[str], kind: str, params: Mapping[str, object], *,
              user_ids: pd.Index, item_ids: pd.Index, source: str,
              rating_scale: tuple[float, float] | None) -> Interactions | None:
    """The rows kept for ``params``, checked (see the module docstring), or ``None``."""
    folder = entry_folder(cache_dir, kind, params)
    meta_path = folder / META
    if not meta_path.is_file():
        return None
    try:
        rows = _read_checked(folder, meta_path, kind, params, user_ids, item_ids, source,
                             rating_scale)
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError) as exc:
        log.warning("data cache: entry %s unreadable (%s); making the rows again", folder, exc)
        return None
    if rows is None:
        log.warning("data cache: entry %s does not hold what its meta.json says; making the "
                    "rows again", folder)
    else:
        log.info("data cache: %s rows read from %s", kind, folder)
    return rows


def _read_checked(folder: Path, meta_path: Path, kind: str, params: Mapping[str, object],
                  user_ids: pd.Index, item_ids: pd.Index, source: str,
                  rating_scale: tuple[float, float] | None) -> Interactions | None:
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    want = _canonical(kind, params)
    if any(meta.get(k) != v for k, v in want.items()):
        return None
    n, dtypes = int(meta["rows"]), meta["dtypes"]
    arrays = {}
    for name, dtype in dtypes.items():
        # mapped copy-on-write: the file's pages are read in place (several times faster
        # than a copy into fresh memory at 25M rows), and the array behaves as a private
        # in-memory one; a plain ndarray view, so it pickles as one
        array = np.asarray(np.load(folder / f"{name}.npy", mmap_mode="c", allow_pickle=False))
        if array.shape != (n,) or str(array.dtype) != dtype:
            return None
        arrays[name] = array
    sums = meta.get("sha256")
    if sums is not None:  # the files' bytes as written, under the vocabularies written
        if set(sums) != set(arrays) or meta.get("vocabulary_sha256") != _vocabulary_sha256(
                user_ids, item_ids):
            return None
        if any(_data_sha256(arrays[name]) != sums[name] for name in arrays):
            return None
    users, items = arrays["users"], arrays["items"]
    if n and (users.min() < 0 or users.max() >= len(user_ids) or items.min() < 0
              or items.max() >= len(item_ids)):
        return None
    ratings = arrays.get("ratings")
    times = arrays.get("timestamps")
    if times is not None:  # seconds after the earliest, back to Unix seconds in one pass
        times = np.add(times, np.int64(meta["timestamp_base"] or 0), dtype=np.int64)
    rows = Interactions(
        user_ids=user_ids, item_ids=item_ids, users=users, items=items,
        ratings=None if ratings is None else ratings.astype(np.float64),
        timestamps=times,
        rating_scale=rating_scale, source=source,
        drops=MappingProxyType({str(k): int(v) for k, v in meta["drops"].items()}),
    )
    if sums is None:  # an entry written before files had checksums: hash the rows
        return rows if rows.fingerprint() == meta["fingerprint"] else None
    # the same bytes under the same vocabularies: the rows are those the fingerprint was
    # computed from, so it is kept on them as their own (a run asks for it anyway)
    rows.keep_fingerprint(meta["fingerprint"])
    return rows


def _data_sha256(array: np.ndarray) -> str:
    """SHA-256 (hex) of an array's data bytes, as saved and as mapped back."""
    return hashlib.sha256(memoryview(np.ascontiguousarray(array)).cast("B")).hexdigest()


def _vocabulary_sha256(user_ids: pd.Index, item_ids: pd.Index) -> str:
    """SHA-256 (hex) of the two vocabularies' ids (pandas' stable hashes of them)."""
    h = hashlib.sha256()
    for ids in (user_ids, item_ids):
        h.update(pd.util.hash_pandas_object(pd.Index(ids), index=False).to_numpy())
        h.update(b";")
    return h.hexdigest()


def _save(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object: np.save would add ".npy" to a name
        np.save(fh, array, allow_pickle=False)


def _compact_ratings(ratings: np.ndarray) -> np.ndarray:
    """int8 when that gives back every rating exactly, else the float64 ratings."""
    lo, hi = _INT8_RATINGS
    if len(ratings) and ratings.min() >= lo and ratings.max() <= hi:
        small = ratings.astype(np.int8)
        if np.array_equal(small.astype(np.float64), ratings):
            return small
    return ratings.astype(np.float64, copy=False)


def _compact_times(times: np.ndarray) -> tuple[np.ndarray, int | None]:
    """uint32 seconds after the earliest time when they fit, else int64 as they are."""
    if len(times):
        base = int(times.min())
        if int(times.max()) - base <= np.iinfo(np.uint32).max:
            return (times - base).astype(np.uint32), base
    return times.astype(np.int64, copy=False), None
