"""Shared fixtures: a small synthetic-like interaction table and a runnable config."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """BENCH_DATA_DIR when set and present (integration tests skip otherwise)."""
    value = os.environ.get("BENCH_DATA_DIR")
    return Path(value) if value and Path(value).is_dir() else None


@pytest.fixture
def ratings_csv(tmp_path) -> Path:
    """A 60-user, 40-item ratings CSV with timestamps and two taste groups."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        items = rng.choice([i for i in range(40) if i % 2 == u % 2], size=12, replace=False)
        for j, i in enumerate(items):
            rows.append((u, int(i), float(rng.integers(3, 6)), 1_000_000 + u * 100 + j * 1000))
    path = tmp_path / "ratings.csv"
    pd.DataFrame(rows, columns=["user", "item", "stars", "ts"]).to_csv(path, index=False)
    return path
