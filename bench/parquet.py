"""How the harness writes its Parquet files (per-user tables, top-k lists, relevance).

Arrow tries a dictionary for every column by default. The harness's tables are mostly
numbers that barely repeat (per-user metrics, scores, ids), where building and then
abandoning a dictionary costs more than the write itself: a per-user table of 84,430
users x 60 metrics takes 0.32 s with dictionaries and 0.07 s without (and is smaller).
So only text columns (model, family, segment and source labels) are dictionary-encoded.
The encoding is the file's business: ``pandas.read_parquet`` gives back the same frame.
All writes are atomic (:mod:`bench.atomic`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.atomic import atomic_write

__all__ = ["frame_bytes", "text_columns", "write_frame", "write_table"]


def text_columns(data: pd.DataFrame | pa.Table) -> list[str]:
    """The columns worth a dictionary: text (object, string or category columns of a
    frame; string or dictionary columns of an Arrow table)."""
    if isinstance(data, pa.Table):
        return [f.name for f in data.schema
                if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                or pa.types.is_dictionary(f.type)]
    return [str(c) for c, dtype in data.dtypes.items()
            if pd.api.types.is_object_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype | pd.StringDtype)]


def write_frame(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` (without its index) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: frame.to_parquet(
        tmp, index=False, use_dictionary=text_columns(frame)))


def write_table(table: pa.Table, path: str | os.PathLike[str]) -> Path:
    """Write an Arrow ``table`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: pq.write_table(
        table, tmp, use_dictionary=text_columns(table)))


def frame_bytes(frame: pd.DataFrame) -> bytes:
    """The Parquet file :func:`write_frame` would write, as bytes."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, use_dictionary=text_columns(frame))
    return buffer.getvalue()
