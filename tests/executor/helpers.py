"""Helpers of the Ray tests: skipping (or failing in CI) without Ray, and a cell function
that records each attempt and SIGKILLs its worker on the first attempt of one chosen cell
(deterministic: no timing, no sleeping)."""

from __future__ import annotations

import importlib.util
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.cells import run_cell

#: ``1``: a Ray test that would skip fails instead (``.ci/run`` sets it).
REQUIRE = "BENCH_REQUIRE_RAY_TESTS"


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``, or fail when the environment requires the Ray tests."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} ({REQUIRE}=1: the Ray tests must run here)", pytrace=False)
    pytest.skip(reason)


def require_ray() -> None:
    """Skip (or fail, in CI) when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        skip_or_fail("ray is not installed (pip install -e '.[ray]')")


@dataclass(frozen=True)
class KillOnce:
    """Runs the cell; on the first attempt of ``victim`` (a ``Cell.label``), the worker
    kills itself with SIGKILL after the cell wrote its files and before it returns —
    the worst moment: the folder is complete but the driver never hears of it.

    Every attempt leaves ``<marker>/<label with / as ~>.<attempt>.<pid>``."""

    marker: Path
    victim: str

    def __call__(self, cell, inputs, env):
        name = cell.label.replace("/", "~")
        attempt = len(list(self.marker.glob(f"{name}.*")))
        (self.marker / f"{name}.{attempt}.{os.getpid()}").touch()
        out = run_cell(cell, inputs, env)
        if cell.label == self.victim and attempt == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        return out


def attempts(marker: Path) -> dict[str, list[int]]:
    """Cell label -> pids of its attempts, in attempt order."""
    out: dict[str, list[tuple[int, int]]] = {}
    for f in marker.iterdir():
        name, attempt, pid = f.name.rsplit(".", 2)
        out.setdefault(name.replace("~", "/"), []).append((int(attempt), int(pid)))
    return {k: [pid for _, pid in sorted(v)] for k, v in out.items()}


@dataclass(frozen=True)
class DiskFull:
    """Every cell fails as a full disk would make it fail (an ``OSError`` ENOSPC)."""

    path: Path

    def __call__(self, cell, inputs, env):
        import errno

        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
