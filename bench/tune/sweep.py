"""Hydra multiruns (``bench -m``) you can read: names for their MLflow runs, and a
leaderboard when the last job ends.

Every job of a sweep logs to one MLflow parent, named after the sweep folder
(``<name>/<stamp>-sweep``, :func:`parent_name`); each child run adds the job's swept
values to its name (``cf_als/fold0 cf_als.factors=32``, :func:`job_label`). When every
job has run, :func:`finish_sweep` writes ``leaderboard.md``, ``leaderboard.csv`` and
``figures/leaderboard.png`` into the sweep folder and logs them to that parent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.tune.leaderboard import SweepJob, job_label, write_sweep_leaderboard

log = logging.getLogger("bench")

__all__ = ["Sweep", "finish_sweep", "job_label", "job_overrides", "parent_name", "swept_keys"]


@dataclass
class Sweep:
    """What the jobs of one multirun leave for :func:`finish_sweep`."""

    folder: Path
    name: str
    invocation: str
    tracker_cfg: dict | None
    figures: bool = True
    jobs: list[SweepJob] = field(default_factory=list)


def swept_keys(argv: Sequence[str]) -> set[str]:
    """The keys a command line sweeps over (``key=a,b``, ``key=range(...)``, ...)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    out = set()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            (override,) = parser.parse_overrides([arg])
        except HydraException:
            continue
        if override.is_sweep_override():
            out.add(override.key_or_group)
    return out


def job_overrides(task_overrides: Sequence[str], swept: set[str]) -> tuple[str, ...]:
    """The job's overrides of the swept keys only (the fixed ones name no job)."""
    return tuple(o for o in task_overrides
                 if o.lstrip("+~").partition("=")[0] in swept)


def parent_name(name: str, sweep_folder: Path) -> str:
    """``als_sweep/20250101-120000-abc123-sweep``: one parent per multirun."""
    return f"{name}/{Path(sweep_folder).name}"


def finish_sweep(sweep: Sweep, tracker=None) -> list[Path]:
    """Write the sweep's leaderboard and log it to the sweep's MLflow parent."""
    from bench.runner import INVOCATION_TAG
    from bench.tracking.factory import build_tracker

    paths = write_sweep_leaderboard(sweep.folder, sweep.jobs, sweep.name, figures=sweep.figures)
    if not paths:
        return []
    tracker = tracker or build_tracker(sweep.tracker_cfg)
    parent = tracker.find_run(INVOCATION_TAG, sweep.invocation)
    if parent is not None:
        for p in paths:
            tracker.log_artifact(parent, p, "leaderboard" if p.parent == sweep.folder
                                 else "leaderboard/figures")
    return paths
