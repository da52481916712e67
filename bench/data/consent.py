"""Removing users who withdrew consent, before anything else reads their rows.

An exclusion file lists user ids, either one per line (blank lines and ``#`` comments
ignored, also after an id) or as a CSV with a ``user_id`` column. Loaders call
:func:`exclusion_drops` on the raw table, before validation, so a withdrawn user's rows
never reach a vocabulary, a split, a model or a fingerprint. The number of rows removed
and of distinct users they belonged to are recorded in ``Dataset.drops`` as
``excluded_users`` and ``excluded_user_ids``.

Ids are matched in the data's own id type: when the data's user ids are integers, every
listed id must be an integer (``42`` or ``42.0``), otherwise the file is refused rather
than silently matching nobody; when they are strings, ids are compared as text. A
list none of whose ids is a user of the data is refused too (a wrong file or a wrong id
format would otherwise remove nobody without a word); ids the data lacks among others
that match are normal and only counted in the log.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.paths import as_path, is_file
from bench.errors import DataError

log = logging.getLogger(__name__)

USER_COLUMN = "user_id"


def read_exclusion_file(path: str | Path) -> list[tuple[int, str]]:
    """Return ``(line number, id)`` for every id listed in ``path`` (ids as text).

    Raises:
        DataError: the file is missing or unreadable, a CSV has no ``user_id`` column,
            or a line holds more than one id.
    """
    path = as_path(path, "exclude_users")
    if not is_file(path):
        raise DataError(
            f"{path.resolve()}: exclusion file (exclude_users) does not exist; expected a "
            f"file with one user id per line or a CSV with a '{USER_COLUMN}' column"
        )
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: exclusion file cannot be read as UTF-8 text ({exc})") from None
    content = [(i, line.split("#", 1)[0].strip()) for i, line in enumerate(lines, start=1)]
    content = [(i, text) for i, text in content if text]
    if not content:
        return []
    first = content[0][1]
    if "," in first or first == USER_COLUMN:
        return _read_csv_ids(path, content)
    out = []
    for lineno, text in content:
        if "," in text or len(text.split()) != 1:
            raise DataError(f"{path}, line {lineno}: expected one user id per line, got {text!r}")
        out.append((lineno, text))
    return out


def _read_csv_ids(path: Path, content: list[tuple[int, str]]) -> list[tuple[int, str]]:
    rows = list(csv.reader([text for _, text in content]))
    header = [h.strip() for h in rows[0]]
    if USER_COLUMN not in header:
        raise DataError(
            f"{path}: exclusion CSV has no '{USER_COLUMN}' column; found columns {header}"
        )
    pos = header.index(USER_COLUMN)
    out = []
    for (lineno, text), fields in zip(content[1:], rows[1:], strict=True):
        if len(fields) != len(header):
            raise DataError(
                f"{path}, line {lineno}: expected {len(header)} comma-separated fields, "
                f"got {len(fields)}: {text!r}"
            )
        value = fields[pos].strip()
        if value:
            out.append((lineno, value))
    return out


def _as_data_type(
    listed: list[tuple[int, str]], ids: pd.Series, path: Path
) -> tuple[np.ndarray | list, bool]:
    """Convert listed ids to the data's id type; ``True`` when compared as text."""
    if pd.api.types.is_integer_dtype(ids.dtype) or pd.api.types.is_float_dtype(ids.dtype):
        out = []
        for lineno, text in listed:
            try:
                value = float(text)
            except ValueError:
                value = float("nan")
            if not np.isfinite(value) or value != np.floor(value):
                raise DataError(
                    f"{path}, line {lineno}: expected an integer user id (the data's user ids "
                    f"are integers), got {text!r}"
                )
            out.append(int(text) if text.lstrip("-").isdigit() else int(value))
        return np.asarray(out, dtype=np.int64), False
    return [text for _, text in listed], True


def _example(ids: pd.Series) -> object:
    value = ids.iloc[0]
    return value.item() if hasattr(value, "item") else value


def apply_exclusions(
    frame: pd.DataFrame,
    exclude_users: str | Path | None,
    *,
    source: str,
    column: str = USER_COLUMN,
) -> tuple[pd.DataFrame, int]:
    """Remove the rows of the users listed in ``exclude_users``.

    Returns the remaining rows and how many were removed (``frame`` unchanged and ``0``
    when ``exclude_users`` is ``None``). ``source`` names the data in messages.
    """
    remaining, rows, _ = _exclude(frame, exclude_users, source=source, column=column)
    return remaining, rows


def exclusion_drops(
    frame: pd.DataFrame,
    exclude_users: str | Path | None,
    *,
    source: str,
    column: str = USER_COLUMN,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Like :func:`apply_exclusions`, returning the counts for ``Dataset.drops``.

    The dict is empty when ``exclude_users`` is ``None``; otherwise it has
    ``excluded_users`` (rows removed) and ``excluded_user_ids`` (distinct users among
    them), both possibly 0.
    """
    if exclude_users is None:
        return frame, {}
    remaining, rows, users = _exclude(frame, exclude_users, source=source, column=column,
                                      require_match=True)
    return remaining, {"excluded_users": rows, "excluded_user_ids": users}


def _exclude(
    frame: pd.DataFrame,
    exclude_users: str | Path | None,
    *,
    source: str,
    column: str,
    require_match: bool = False,
) -> tuple[pd.DataFrame, int, int]:
    if exclude_users is None:
        return frame, 0, 0
    path = as_path(exclude_users, "exclude_users")
    listed = read_exclusion_file(path)
    if column not in frame.columns:
        raise DataError(
            f"{source}: cannot apply {path}: no '{column}' column; found columns "
            f"{[str(c) for c in frame.columns]}"
        )
    if not listed or len(frame) == 0:
        log.info("%s: exclusion file %s lists no user id", source, path)
        return frame, 0, 0
    ids = frame[column]
    wanted, as_text = _as_data_type(listed, ids, path)
    if as_text:
        mask = ids.astype(str).str.strip().isin(wanted).to_numpy(dtype=bool)
    else:
        mask = ids.isin(wanted).to_numpy()
    rows = int(mask.sum())
    users = int(ids[mask].nunique()) if rows else 0
    n_listed = len(set(map(str, wanted)))
    log.info(
        "%s: removed %d row(s) of %d excluded user(s) listed in %s (%d listed id(s) not in "
        "the data)",
        source,
        rows,
        users,
        path,
        n_listed - users,
    )
    if not rows and require_match:
        shown = wanted[0] if as_text else int(wanted[0])
        raise DataError(
            f"{path}: none of the {n_listed} user id(s) listed to exclude is a user of "
            f"{source} (e.g. listed {shown!r}, data has {_example(ids)!r}); expected ids "
            f"as the data writes them: check the file belongs to this dataset (if those "
            f"users were already removed from the data, drop exclude_users)"
        )
    if not rows:
        return frame, 0, 0
    return frame.loc[~mask].reset_index(drop=True), rows, users
