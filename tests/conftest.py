"""Fixtures and hooks for every test; plain helpers live in ``tests/helpers.py``."""

import logging
import os
from pathlib import Path

import pytest

# shared_data_dir is re-exported: test files written against ``tests.conftest`` keep working
from tests.helpers import shared_data_dir, write_ratings_csv  # noqa: F401

#: folders a test run may add to or change in the checkout (caches of Python and tools)
CACHES = frozenset({".git", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache",
                    ".venv", "venv"})
ROOT = Path(__file__).resolve().parents[1]
NEW_PATHS = pytest.StashKey[frozenset]()


def checkout_paths() -> frozenset:
    """Every file and folder of the checkout, caches left out. Folders count: git does not
    show an empty run folder under reports/, and it is still one the user did not ask for."""
    found = set()
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in CACHES and not d.endswith(".egg-info")]
        here = Path(folder).relative_to(ROOT)
        found.update(str(here / n) for n in [*dirs, *files])
    return frozenset(found)


def pytest_sessionstart(session):
    session.config.stash[NEW_PATHS] = checkout_paths()


def pytest_sessionfinish(session, exitstatus):
    """Tests write only under tmp paths: a test that leaves a file or folder in the
    checkout (reports/, mlruns/, ...) fails the session, naming it."""
    before = session.config.stash.get(NEW_PATHS, None)
    if before is None:
        return
    left = sorted(checkout_paths() - before)
    if left:
        print(f"\ntests left files in the checkout (write under tmp_path instead): {left}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
