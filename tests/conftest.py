"""Shared fixtures: a small synthetic-like interaction table and a runnable config."""

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """BENCH_DATA_DIR, made absolute, when set and present (integration tests skip otherwise).

    Absolute because integration tests change into a temporary directory, where a
    relative BENCH_DATA_DIR (``../shared/datasets``) would point nowhere.
    """
    value = os.environ.get("BENCH_DATA_DIR")
    return Path(value).resolve() if value and Path(value).is_dir() else None


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects
def pytest_collection_modifyitems(items):
    """Every integration test is also slow, so ``-m "not slow"`` never reads real MovieLens."""
    for item in items:
        if item.get_closest_marker("integration") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _restore_logging():
    """Undo the logging set-up a Hydra run leaves behind (handlers on pytest's captured,
    later closed, streams), so later tests that log do not depend on test order."""
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in ("bench", "hydra"))]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    yield
    for lg, handlers, level, propagate in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


def write_ratings_csv(path: Path) -> Path:
    """Write a 60-user, 40-item ratings CSV with timestamps and two taste groups."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        items = rng.choice([i for i in range(40) if i % 2 == u % 2], size=12, replace=False)
        for j, i in enumerate(items):
            rows.append((u, int(i), float(rng.integers(3, 6)), 1_000_000 + u * 100 + j * 1000))
    pd.DataFrame(rows, columns=["user", "item", "stars", "ts"]).to_csv(path, index=False)
    return path


@pytest.fixture
def ratings_csv(tmp_path) -> Path:
    """A 60-user, 40-item ratings CSV with timestamps and two taste groups."""
    return write_ratings_csv(tmp_path / "ratings.csv")
