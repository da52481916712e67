"""A tracker that keeps everything in memory, for tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class MemoryRun:
    name: str
    parent_id: str | None
    tags: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    status: str = "RUNNING"


class MemoryTracker:
    """Records runs in ``self.runs`` (id -> :class:`MemoryRun`); artifacts by relative path."""

    def __init__(self) -> None:
        self.runs: dict[str, MemoryRun] = {}
        self._ids = itertools.count(1)

    def check(self) -> None:
        return None

    def start_run(self, name, *, parent_id=None, tags=None) -> str:
        run_id = f"mem-{next(self._ids)}"
        self.runs[run_id] = MemoryRun(name, parent_id, dict(tags or {}))
        return run_id

    def log_params(self, run_id, params) -> None:
        run = self.runs[run_id]
        for key, value in params.items():
            if key in run.params and run.params[key] != str(value):
                raise ValueError(f"param {key!r} already logged with another value")
            run.params[key] = str(value)

    def log_metrics(self, run_id, metrics) -> None:
        self.runs[run_id].metrics.update({k: float(v) for k, v in metrics.items()})

    def log_artifact(self, run_id, path, artifact_path=None) -> None:
        path = Path(path)
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            rel = f.name if f == path else str(f.relative_to(path))
            key = f"{artifact_path}/{rel}" if artifact_path else rel
            self.runs[run_id].artifacts[key] = f.read_bytes()

    def end_run(self, run_id, status="FINISHED") -> None:
        self.runs[run_id].status = status

    def children(self, parent_id: str) -> list[MemoryRun]:
        return [r for r in self.runs.values() if r.parent_id == parent_id]

    def describe(self) -> str:
        return f"in-memory tracker ({len(self.runs)} runs)"
