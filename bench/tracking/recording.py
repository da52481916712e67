"""A tracker that records calls where a cell runs, and their replay where the run is.

A cell on another process or machine must not need the driver's tracker (an MLflow
client, a SQLite file with one writer). It logs to a :class:`RecordingTracker` instead;
the recorded calls travel back with the cell's output, and the driver replays them onto
the real tracker with :func:`replay`, in cell order. The tracker then sees exactly the
calls a cell run in-process would have made, from one process, and a cell whose worker
died and was run again is logged once: a lost attempt returns nothing.

Run ids handed out while recording are placeholders (``recorded-1``, ...); :func:`replay`
returns what each became. A directory logged as an artifact is recorded with the files
it held at that moment, and replayed with those files only: a cell adds ``done.json``
after logging its folder, and the temporary file a killed attempt left is not an output.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("bench")

__all__ = ["RecordedCall", "RecordingTracker", "recorded_files", "replay", "replay_call"]


@dataclass(frozen=True)
class RecordedCall:
    """One tracker call: its method, the run it concerns, and its arguments."""

    method: str
    run_id: str
    args: tuple = ()
    kwargs: Mapping[str, object] | None = None
    #: ``log_artifact`` of a directory: the files (relative paths) it held when logged
    files: tuple[str, ...] | None = None


class RecordingTracker:
    """Records every call in :attr:`calls` for :func:`replay`; logs nothing itself."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []

    def check(self) -> None:
        return None

    def start_run(self, name, *, parent_id=None, tags=None) -> str:
        run_id = f"recorded-{sum(c.method == 'start_run' for c in self.calls) + 1}"
        self.calls.append(RecordedCall("start_run", run_id, (name,),
                                       {"parent_id": parent_id, "tags": dict(tags or {})}))
        return run_id

    def log_params(self, run_id, params) -> None:
        self.calls.append(RecordedCall("log_params", run_id, (dict(params),)))

    def log_metrics(self, run_id, metrics) -> None:
        self.calls.append(RecordedCall("log_metrics", run_id, (dict(metrics),)))

    def log_artifact(self, run_id, path, artifact_path=None) -> None:
        path = Path(path)
        files = recorded_files(path) if path.is_dir() else None
        self.calls.append(RecordedCall("log_artifact", run_id, (path, artifact_path),
                                       files=files))

    def end_run(self, run_id, status="FINISHED") -> None:
        self.calls.append(RecordedCall("end_run", run_id, (status,)))

    def describe(self) -> str:
        return f"recording tracker ({len(self.calls)} calls)"


def replay(calls: list[RecordedCall], tracker) -> dict[str, str]:
    """Make ``calls`` on ``tracker``, in order; returns placeholder run id -> real run id."""
    ids: dict[str, str] = {}
    for call in calls:
        new = replay_call(call, tracker, ids)
        if new is not None:
            ids[call.run_id] = new
    return ids


def replay_call(call: RecordedCall, tracker, ids: dict[str, str]) -> str | None:
    """Make one recorded call on ``tracker``, its run ids mapped through ``ids``
    (placeholder -> real id); returns the real id of a run it started, else None."""
    if call.method == "start_run":
        kwargs = dict(call.kwargs or {})
        parent = kwargs.get("parent_id")
        kwargs["parent_id"] = ids.get(parent, parent)
        return tracker.start_run(*call.args, **kwargs)
    run_id = ids.get(call.run_id, call.run_id)
    if call.method == "log_artifact":
        _log_artifact(tracker, run_id, *call.args, files=call.files)
    else:
        getattr(tracker, call.method)(run_id, *call.args)
    return None


def _log_artifact(tracker, run_id: str, path: Path, artifact_path: str | None,
                  files: tuple[str, ...] | None) -> None:
    """Log ``path`` as it was when recorded: a directory that has gained files since is
    logged through a staging copy (hard links where possible) of the recorded files."""
    if files is None or _everything(path) == files:
        tracker.log_artifact(run_id, path, artifact_path)
        return
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        stage = Path(tmp) / path.name
        for rel in files:
            source, target = path / rel, stage / rel
            if not source.is_file():
                log.warning("%s: gone before its artifact was logged", source)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:  # another filesystem: copy
                shutil.copy2(source, target)
        stage.mkdir(exist_ok=True)
        tracker.log_artifact(run_id, stage, artifact_path)


def _everything(folder: Path) -> tuple[str, ...]:
    return tuple(sorted(str(f.relative_to(folder)) for f in folder.rglob("*") if f.is_file()))


def recorded_files(folder: Path) -> tuple[str, ...]:
    """The files of ``folder`` (relative paths), without the temporary files of a write
    that was killed (``bench.atomic``'s ``.name.xxxx.tmp``: a retried cell's first
    attempt may leave one; they are never outputs)."""
    return tuple(f for f in _everything(folder)
                 if not (Path(f).name.startswith(".") and f.endswith(".tmp")))
