"""Building the tracker the ``tracker`` config group names (kept apart from the protocol in
:mod:`bench.tracking.base`, which :mod:`bench.targets` reads to check a tracker's kind)."""

from __future__ import annotations

from collections.abc import Mapping

from bench.errors import ConfigError
from bench.targets import build
from bench.tracking.base import Tracker

__all__ = ["build_tracker"]


def build_tracker(cfg: Mapping[str, object] | None) -> Tracker:
    """Build the tracker of the ``tracker`` config group, a ``_target_`` node like every
    other group (``tracker=mlflow``: :class:`~bench.tracking.mlflow_tracker.MlflowTracker`,
    ``tracker=none``: :class:`NullTracker`). No node at all means MLflow with its defaults.

    Raises:
        ConfigError: the node is not a ``_target_`` node, or what it builds is not a
            :class:`Tracker`.
    """
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
