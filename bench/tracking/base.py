"""The tracker protocol the runner logs through, and the factory behind ``tracker=``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from bench.errors import ConfigError


@runtime_checkable
class Tracker(Protocol):
    """Where runs, params, metrics and artifacts go.

    Runs form a two-level tree: one parent per invocation, one child per (model, fold).
    Every method takes the run id returned by :meth:`start_run`.
    """

    def check(self) -> None:
        """Fail early (``TrackingError``) when the backend cannot be reached."""

    def start_run(
        self, name: str, *, parent_id: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str: ...

    def find_run(self, tag: str, value: str) -> str | None:
        """The run carrying ``tag=value``, if any (lets a sweep share one parent run)."""

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

    def find_run(self, tag, value):
        return None

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


def build_tracker(cfg: Mapping[str, object] | None) -> Tracker:
    """Build the tracker of the ``tracker`` config group, a ``_target_`` node like every
    other group (``tracker=mlflow``: :class:`~bench.tracking.mlflow_tracker.MlflowTracker`,
    ``tracker=none``: :class:`NullTracker`). No node at all means MLflow with its defaults.

    Raises:
        ConfigError: the node is not a ``_target_`` node, or what it builds is not a
            :class:`Tracker`.
    """
    from bench.config import build

    if not cfg:
        from bench.tracking.mlflow_tracker import MlflowTracker

        return MlflowTracker()
    tracker = build(cfg, "tracker")
    if not isinstance(tracker, Tracker):
        raise ConfigError(
            f"tracker._target_: expected a Tracker (e.g. bench.tracking.base.NullTracker), "
            f"got {type(tracker).__name__}"
        )
    return tracker
