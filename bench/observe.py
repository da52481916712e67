"""Stage hooks: how the run layer tells the outside what it is doing, and for how long.

The runner and every cell announce their stages through one :class:`Observer`
(``with observer.stage("fit", model="cf_als", fold=0): ...``). Observers are how
``bench perf`` times stages, how progress is shown, and how a test can watch a run —
without patching any function.

Stages the run layer announces (``info`` keys in brackets):

* ``tracking`` [call="build"] (building and checking the tracker), ``load`` (dataset),
  ``split`` (splitter), ``audit`` — once per run, and ``audit`` again for the cold-start
  protocols' splits; ``protocols`` — the cold-start protocols' splits and relevance
  (before any cell: a protocol that shares a main fold's training rows is evaluated by
  the main cells);
* ``context`` [fold] — relevance, history and popularity shared by a fold's cells;
* ``cell`` [model, protocol, fold, and seed with training seeds] — one whole cell, around
  the stages below;
* ``fit``, ``recommend``, ``evaluate``, ``artifacts`` [model, protocol, fold] — inside a cell;
* ``tracking`` [call] — every call to the tracker (MLflow); with MLflow on its worker
  thread (:mod:`bench.tracking.background`) that is the time the run's thread spends
  handing a call over or waiting (``resolve``, ``close``), and an instant
  ``call="worker"`` [busy_seconds] at the end gives the worker's own time;
* ``reduce`` — the single step after the cells: record, statistics, report;
* ``plan`` [cells, resumed] — an instant: ``cells`` more cells are planned (the main
  split's before its first cell, each protocol's before its cells); ``resumed`` of them
  were reused from an earlier run and will not be announced as ``cell``.

A stage may nest inside another (``fit`` inside ``cell``); :class:`StageTimer` charges
each its inclusive time and also keeps exclusive ("self") time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = [
    "NULL_OBSERVER",
    "Observer",
    "Observers",
    "StageStats",
    "StageTimer",
    "TimedTracker",
    "attached",
    "default_observers",
]


@runtime_checkable
class Observer(Protocol):
    """Receives the start and end of every stage of a run."""

    def start(self, stage: str, info: Mapping[str, object]) -> None:
        """Called when ``stage`` begins."""

    def end(self, stage: str, info: Mapping[str, object], seconds: float, ok: bool) -> None:
        """Called when ``stage`` ends (``ok`` is False when it raised)."""


class Observers:
    """Fans stage events out to zero or more observers; the run layer holds one of these."""

    def __init__(self, *observers: Observer):
        self.observers = tuple(o for o in observers if o is not None)

    @contextlib.contextmanager
    def stage(self, stage: str, **info: object) -> Iterator[None]:
        """Announce ``stage`` around the ``with`` block."""
        for o in self.observers:
            o.start(stage, info)
        t = time.perf_counter()
        ok = False
        try:
            yield
            ok = True
        finally:
            seconds = time.perf_counter() - t
            for o in reversed(self.observers):
                o.end(stage, info, seconds, ok)


#: An observer set that tells no one.
NULL_OBSERVER = Observers()

#: Observers attached process-wide (:func:`attached`); runs without their own use these.
_ATTACHED: list[Observer] = []


def default_observers() -> Observers:
    """The observers a run uses when its caller passes none: those :func:`attached`."""
    return Observers(*_ATTACHED) if _ATTACHED else NULL_OBSERVER


@contextlib.contextmanager
def attached(*observers: Observer) -> Iterator[None]:
    """Attach observers to every run started inside the ``with`` block, e.g. a whole
    ``bench`` command line (``bench perf`` times the real command this way)."""
    _ATTACHED.extend(observers)
    try:
        yield
    finally:
        for o in observers:  # by identity: two observers may compare equal
            del _ATTACHED[next(i for i, a in enumerate(_ATTACHED) if a is o)]


@dataclass
class StageStats:
    """What :class:`StageTimer` measured for one stage name."""

    seconds: float = 0.0
    self_seconds: float = 0.0
    cpu_seconds: float = 0.0
    calls: int = 0


@dataclass
class StageTimer:
    """Wall, exclusive and CPU seconds per stage; ``by`` adds a breakdown by one info key.

    ``StageTimer(by="model")`` also sums each stage per model name (``per["fit"]["cf_als"]``).
    """

    by: str | None = None
    stages: dict[str, StageStats] = field(default_factory=dict)
    per: dict[str, dict[str, float]] = field(default_factory=dict)
    _stack: list[list] = field(default_factory=list, repr=False)

    def start(self, stage: str, info: Mapping[str, object]) -> None:
        self._stack.append([stage, time.process_time(), 0.0])

    def end(self, stage: str, info: Mapping[str, object], seconds: float, ok: bool) -> None:
        _, cpu0, child = self._stack.pop()
        stats = self.stages.setdefault(stage, StageStats())
        stats.seconds += seconds
        stats.self_seconds += seconds - child
        stats.cpu_seconds += time.process_time() - cpu0
        stats.calls += 1
        if self._stack:
            self._stack[-1][2] += seconds
        if self.by is not None and self.by in info:
            bucket = self.per.setdefault(stage, {})
            key = str(info[self.by])
            bucket[key] = bucket.get(key, 0.0) + seconds

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{stage: {"seconds", "self_seconds", "cpu_seconds", "calls"}}``."""
        return {s: vars(v).copy() for s, v in self.stages.items()}


class TimedTracker:
    """A tracker whose every call is announced as a ``tracking`` stage."""

    def __init__(self, inner, observers: Observers):
        self.inner = inner
        self.observers = observers

    def __getattr__(self, name: str):
        value = getattr(self.inner, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            with self.observers.stage("tracking", call=name):
                return value(*args, **kwargs)

        return call
