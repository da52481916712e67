"""A tracker that makes its calls on one worker thread, so a run does not wait for MLflow.

Building an MLflow client (importing MLflow, opening the store, checking the experiment)
takes 1-2 s, and each logged run, batch or folder takes milliseconds more. None of it needs
the run to wait: :class:`BackgroundTracker` takes each call, hands it to one worker
thread, and returns at once. The worker builds and checks the real tracker first, then
makes the calls in the order they came, so the store sees exactly what a tracker called
in line would have made. While cells fit (BLAS, OpenMP and numba release the GIL), the
worker's Python work runs on another core.

Run ids handed out are placeholders (``pending-1``, ...) until the worker has started the
run; every later call may use either. :meth:`BackgroundTracker.resolve` waits for the real
id of one run, :meth:`BackgroundTracker.flush` for every call so far.

Errors are not lost: the first error the worker meets (a store it cannot reach, a full
disk) is raised on the run's thread by the next call, by :meth:`~BackgroundTracker.flush`
or by :meth:`~BackgroundTracker.resolve` — as a :class:`~bench.errors.TrackingError`
unless it is already one line (a ``BenchError``, a full disk) — and stops the run (a cell
does not record it as a model failure); the calls after it are dropped.

An artifact is logged as it was when the call was made: the call takes a snapshot (hard
links in a temporary folder, copies across filesystems) that the worker logs and then
removes, while the run goes on writing (a cell adds ``done.json`` after logging its folder;
the temporary file of a write in progress is never an output).

``busy_seconds`` is the worker's own time (building the tracker and every call);
``waited_seconds`` the time the run's thread spent waiting for it.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from bench.errors import BenchError, TrackingError, storage_error
from bench.tracking.recording import RecordedCall, recorded_files, replay_call

__all__ = ["BackgroundTracker", "in_background"]

_STOP = object()


class BackgroundTracker:
    """Wraps ``tracker``; every call is made by one worker thread, in order.

    Args:
        tracker: the real tracker (an :class:`~bench.tracking.mlflow_tracker.MlflowTracker`).
        check_here: run ``tracker.check()`` on the caller's thread, before anything else
            (a server: an unreachable one must fail before any training); otherwise the
            worker checks first and a failure is raised by the next call.
    """

    def __init__(self, tracker, *, check_here: bool = False):
        self.tracker = tracker
        self.check_here = check_here
        self.busy_seconds = 0.0
        self.waited_seconds = 0.0
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._ids: dict[str, str] = {}
        self._done = threading.Condition()
        self._error: BaseException | None = None
        self._raised = False
        self._started = 0
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the run's side
    def check(self) -> None:
        """Start the worker (checking the store here first when ``check_here``)."""
        if self._thread is not None:
            self._raise()
            return
        if self.check_here:
            self.tracker.check()
        self._thread = threading.Thread(target=self._work, args=(not self.check_here,),
                                        name="bench-tracker", daemon=True)
        self._thread.start()

    def start_run(self, name, *, parent_id=None, tags=None) -> str:
        self._started += 1
        run_id = f"pending-{self._started}"
        self._put(RecordedCall("start_run", run_id, (name,),
                               {"parent_id": parent_id, "tags": dict(tags or {})}))
        return run_id

    def log_params(self, run_id, params) -> None:
        self._put(RecordedCall("log_params", run_id, (dict(params),)))

    def log_metrics(self, run_id, metrics) -> None:
        self._put(RecordedCall("log_metrics", run_id, (dict(metrics),)))

    def log_artifact(self, run_id, path, artifact_path=None) -> None:
        path = Path(path)
        call = RecordedCall("log_artifact", run_id, (path, artifact_path))
        if not self._working():
            self._put(call)
            return
        self._raise()
        # the worker logs a snapshot taken now (hard links where the filesystem allows):
        # the run goes on writing in that folder (done.json, a temporary file) meanwhile
        stage = Path(tempfile.mkdtemp(prefix="bench-artifact-"))
        try:
            _snapshot(path, stage / path.name)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        self._calls.put((replace(call, args=(stage / path.name, artifact_path)), stage))

    def end_run(self, run_id, status="FINISHED") -> None:
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):
            status = "KILLED"  # ended on the way out of a Ctrl-C (the worker cannot see it)
        self._put(RecordedCall("end_run", run_id, (status,)))

    def describe(self) -> str:
        return self.tracker.describe()

    def resolve(self, run_id: str | None) -> str | None:
        """The real id of ``run_id`` (waiting until the worker has started that run); ids
        that are not placeholders of this tracker come back as they are."""
        if run_id is None or not str(run_id).startswith("pending-") or self._thread is None:
            return run_id
        t = time.perf_counter()
        with self._done:
            self._done.wait_for(lambda: run_id in self._ids or self._error is not None
                                or not self._thread.is_alive())
        self.waited_seconds += time.perf_counter() - t
        self._raise()
        return self._ids.get(run_id, run_id)

    def flush(self) -> None:
        """Wait until every call made so far has been made on the real tracker; raise the
        worker's error, if any."""
        if self._thread is None:
            return
        token = threading.Event()
        t = time.perf_counter()
        self._calls.put(token)
        while not token.wait(0.1):
            if not self._thread.is_alive():
                break
        self.waited_seconds += time.perf_counter() - t
        self._raise()

    def close(self) -> None:
        """Flush, then stop the worker (calls after this are made in line)."""
        try:
            self.flush()
        finally:
            if self._thread is not None and self._thread.is_alive():
                self._calls.put(_STOP)
                self._thread.join()

    def _working(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _put(self, call: RecordedCall) -> None:
        self._raise()
        if not self._working():
            self._apply(call)  # not started (no check yet) or closed: in line
            return
        self._calls.put((call, None))

    def _raise(self) -> None:
        if self._error is not None and not self._raised:
            self._raised = True  # once: the run's clean-up may still call us
            raise _stopping(self._error)

    # ------------------------------------------------------------------ the worker
    def _work(self, check: bool) -> None:
        if check:
            self._timed(self.tracker.check)
        while True:
            item = self._calls.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            call, stage = item
            if self._error is None:
                self._timed(self._apply, call)
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)

    def _timed(self, fn, *args) -> None:
        t = time.perf_counter()
        try:
            fn(*args)
        except BaseException as exc:  # handed to the run's thread
            with self._done:
                self._error = exc
                self._done.notify_all()
        finally:
            self.busy_seconds += time.perf_counter() - t

    def _apply(self, call: RecordedCall) -> None:
        new = replay_call(call, self.tracker, self._ids)
        if new is not None:
            with self._done:
                self._ids[call.run_id] = new
                self._done.notify_all()



def _snapshot(path: Path, target: Path) -> None:
    """``target``: ``path`` as it is now (a file, or a folder's files without the
    temporary files of a write in progress), hard-linked where possible, else copied."""
    if not path.is_dir():
        _link_or_copy(path, target)
        return
    target.mkdir()
    for rel in recorded_files(path):
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(path / rel, target / rel)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed: copy
        shutil.copy2(source, target)


def _stopping(exc: BaseException) -> BaseException:
    """What the run's thread raises for the worker's error: the error itself when it
    already says what to do (a :class:`~bench.errors.BenchError`, a full or read-only
    disk, Ctrl-C), else a :class:`~bench.errors.TrackingError` naming it. Either stops the
    run: a cell does not record it as its own failure."""
    if (isinstance(exc, BenchError) or not isinstance(exc, Exception)
            or storage_error(exc) is not None):
        return exc
    first = str(exc).splitlines()[0] if str(exc) else ""
    return TrackingError(
        f"tracker: the tracking store refused a write ({type(exc).__name__}: {first}); the "
        f"run stopped, its files so far are in the run folder; fix the store or run with "
        f"tracker=none")


def in_background(tracker):
    """``tracker`` behind a :class:`BackgroundTracker` when it is an MLflow tracker (a
    server's is checked on the caller's thread, a local store's by the worker); any other
    tracker as it is."""
    from bench.tracking.mlflow_tracker import MlflowServerTracker, MlflowTracker

    if not isinstance(tracker, MlflowTracker):
        return tracker
    uri = str(tracker.tracking_uri or "")
    remote = isinstance(tracker, MlflowServerTracker) or (uri and not uri.startswith("sqlite:"))
    return BackgroundTracker(tracker, check_here=bool(remote))
