"""The tracker protocol the runner logs through, and the factory behind ``tracker=``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class Tracker(Protocol):
    """Where runs, params, metrics and artifacts go.

    Runs form a tree: one parent per invocation, one child per (model, fold); a sweep
    adds a level above (one parent per sweep, one child per job: bench.tune.sweep).
    Every method takes the run id returned by :meth:`start_run`.
    """

    def check(self) -> None:
        """Fail early (``TrackingError``) when the backend cannot be reached."""

    def start_run(
        self, name: str, *, parent_id: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str: ...

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None: ...

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None: ...

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None: ...

    def end_run(self, run_id: str, status: str = "FINISHED") -> None: ...

    def describe(self) -> str:
        """One line saying where the runs went (shown at the end of a run)."""


class NullTracker:
    """Logs nothing (``tracker=none``)."""

    def check(self) -> None:
        return None

    def start_run(self, name, *, parent_id=None, tags=None) -> str:
        return f"none-{name}"

    def log_params(self, run_id, params) -> None:
        return None

    def log_metrics(self, run_id, metrics) -> None:
        return None

    def log_artifact(self, run_id, path, artifact_path=None) -> None:
        return None

    def end_run(self, run_id, status="FINISHED") -> None:
        return None

    def describe(self) -> str:
        return "tracking disabled (tracker=none)"


def settled_run_id(tracker, run_id: str | None) -> str | None:
    """The store's id of run ``run_id``: a tracker that hands out placeholders before the
    store has made the run (:mod:`bench.tracking.background`) is waited for; any other
    tracker's ids are final."""
    resolve = getattr(tracker, "resolve", None)
    return run_id if resolve is None else resolve(run_id)
