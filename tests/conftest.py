"""Fixtures and hooks for every test; plain helpers live in ``tests/helpers.py``."""

import logging
from pathlib import Path

import pytest

# shared_data_dir is re-exported: test files written against ``tests.conftest`` keep working
from tests.helpers import shared_data_dir, write_ratings_csv  # noqa: F401


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


@pytest.fixture
def ratings_csv(tmp_path) -> Path:
    """A 60-user, 40-item ratings CSV with timestamps and two taste groups."""
    return write_ratings_csv(tmp_path / "ratings.csv")
