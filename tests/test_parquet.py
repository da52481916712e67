"""bench.parquet: text columns dictionary-encoded, numbers not; the frame reads back equal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench import parquet


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    n = 500
    return pd.DataFrame({
        "model": np.where(rng.random(n) < 0.5, "cf_als", "rule_popular").astype(object),
        "user_id": np.arange(n) * 3,
        "ndcg@10": rng.random(n),
        "segment": pd.Categorical(rng.choice(["a", "b"], n)),
        "served": rng.random(n) < 0.9,
        "label": pd.array(rng.choice(["x", "y"], n), dtype="string"),
    })


def _dictionary_encoded(path) -> dict[str, bool]:
    meta = pq.ParquetFile(path).metadata
    group = meta.row_group(0)
    return {group.column(i).path_in_schema: any("DICTIONARY" in e
                                                for e in group.column(i).encodings)
            for i in range(group.num_columns)}


def test_a_frame_reads_back_equal_with_only_text_columns_dictionary_encoded(tmp_path):
    frame = _frame()
    path = parquet.write_frame(frame, tmp_path / "t.parquet")
    back = pd.read_parquet(path)
    before = pd.read_parquet(_default(frame, tmp_path))
    assert back.equals(before) and list(back.dtypes) == list(before.dtypes)
    assert parquet.text_columns(frame) == ["model", "segment", "label"]
    assert _dictionary_encoded(path) == {"model": True, "user_id": False, "ndcg@10": False,
                                         "segment": True, "served": False, "label": True}
    assert parquet.frame_bytes(frame) == path.read_bytes()


def _default(frame, tmp_path):
    """The file pandas writes with Arrow's defaults (a dictionary for every column)."""
    path = tmp_path / "default.parquet"
    frame.to_parquet(path, index=False)
    return path


def test_an_arrow_table_keeps_its_string_columns_dictionary_encoded(tmp_path):
    table = pa.table({"user_id": np.arange(6), "score": np.linspace(0, 1, 6),
                      "source": pa.array(["a", "b", "a", "a", "b", "a"])})
    path = parquet.write_table(table, tmp_path / "t.parquet")
    assert pq.read_table(path).equals(table)
    assert _dictionary_encoded(path) == {"user_id": False, "score": False, "source": True}
