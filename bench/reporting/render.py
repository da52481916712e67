"""Drawing the report's figures, shared between this process and one worker process.

Importing matplotlib and drawing six PNGs takes seconds of one core, and the statistics of
the report take seconds of one core too; when another core is free
(:func:`bench.machine.spare_core`) the figures can overlap with them.
:class:`FigureRenderer` starts a worker process when it is created (a fresh interpreter
running this module, never a fork: the run process may have threads, and a fork copies
their locks); the worker imports matplotlib while the caller computes statistics, then
asks for figure jobs one at a time. The caller submits each job
(:meth:`~FigureRenderer.submit`) as soon as its frame is ready and, once its own work is
done, calls :meth:`~FigureRenderer.finish`, which draws here whatever the worker has not
taken yet and waits for the rest. Whoever draws a figure, the bytes are the same (same
builder, same house style).

Errors behave as when everything is drawn in one process:

- a builder's ``ValueError`` (an empty or degenerate frame) is a logged warning and the
  figure is skipped;
- any other exception in the worker: the job is drawn again here, so the exception (or a
  success, if it depended on the worker) is the same as without a worker;
- the worker dying, or sending nothing for :data:`WORKER_TIMEOUT` seconds: a logged warning,
  the worker is killed, and its unfinished jobs are drawn here;
- Ctrl-C or any exception in the caller: the worker is killed and reaped before the
  exception goes on (``with FigureRenderer() as r:``). A worker whose parent vanished sees
  its input close and exits after the figure it is drawing.

The wire format is length-prefixed messages over the worker's stdin and stdout: a JSON
header, and for a job its frame as an Arrow IPC stream (no pickle: nothing that reads a
message can run code from it). A job whose frame or options do not fit that format is
drawn in the caller. Both sides are this module, of the same checkout (the worker is
pointed at it through ``PYTHONPATH``).
"""

from __future__ import annotations

import io
import json
import logging
import os
import queue
import struct
import subprocess
import sys
import threading
import traceback
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from bench import machine

log = logging.getLogger("bench")

__all__ = ["WORKER_TIMEOUT", "FigureJob", "FigureRenderer", "draw"]

WORKER_TIMEOUT = 300.0
"""Seconds the caller waits for the worker's next figure before giving up on it."""

_LENGTH = struct.Struct("<Q")  # bytes of the message that follows
_HEAD = struct.Struct("<I")  # bytes of a message's JSON header


@dataclass(frozen=True)
class FigureJob:
    """One figure: ``figures.<builder>(frame, **kwargs)`` saved at ``path``."""

    name: str
    builder: str
    frame: object
    path: Path
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Outcome:
    name: str
    path: Path | None = None  # the written PNG
    skipped: str | None = None  # the builder's ValueError: a warning, no figure
    error: str | None = None  # any other exception's traceback: drawn again by the caller
    warnings: tuple[str, ...] = ()

    def message(self) -> bytes:
        return _pack({"name": self.name, "path": None if self.path is None else str(self.path),
                      "skipped": self.skipped, "error": self.error,
                      "warnings": list(self.warnings)})

    @classmethod
    def from_header(cls, header: dict) -> _Outcome:
        path = header["path"]
        return cls(header["name"], None if path is None else Path(path), header["skipped"],
                   header["error"], tuple(header["warnings"]))


def draw(job: FigureJob) -> Path | None:
    """Build and save one figure in this process; ``None`` (and a warning) when skipped."""
    from bench.reporting import figures

    try:
        fig = getattr(figures, job.builder)(job.frame, **job.kwargs)
    except ValueError as exc:  # an empty or degenerate frame: say so, keep the report
        log.warning("figure %s skipped: %s", job.name, exc)
        return None
    return figures.save_figure(fig, job.path)


# --------------------------------------------------------------------------- caller side


class FigureRenderer:
    """Draws :class:`FigureJob` s, in a worker process when there is a core for it.

    ``worker=None`` uses a worker when a core is free
    (:func:`bench.machine.spare_core`); ``False`` draws everything here (in
    :meth:`finish`); ``True`` always tries one. A worker that cannot be started
    is a logged warning, and everything is drawn here. The figures are the same bytes
    either way.
    """

    def __init__(self, *, worker: bool | None = None, timeout: float = WORKER_TIMEOUT,
                 command: list[str] | None = None) -> None:
        self._timeout = timeout
        self._lock = threading.Lock()
        self._pending: deque[FigureJob] = deque()  # for the worker or for here
        self._local: list[FigureJob] = []  # only for here: not representable on the wire
        self._messages: dict[str, bytes] = {}  # each pending job, encoded for the worker
        self._order: list[str] = []  # job names as submitted
        self.from_worker: list[str] = []  #: the figures the worker wrote, as they came
        self._sent: dict[str, FigureJob] = {}  # taken by the worker, outcome not yet read
        self._outcomes: queue.Queue[_Outcome | None] = queue.Queue()
        self._worker_waiting = False
        self._asked = threading.Event()  # the worker has imported and asked for work
        self._closed = False
        self._proc: subprocess.Popen | None = None
        if worker is None:
            worker = machine.spare_core()
        if worker and not sys.executable:  # an embedded interpreter: nothing to start
            worker = False
        if worker:
            self._start(command or [sys.executable, "-m", __name__])

    # -- lifecycle

    def _start(self, command: list[str]) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the checkout this module is from
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            self._proc = subprocess.Popen(command, stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, env=env)
        except OSError as exc:
            log.warning("figure worker not started (%s); drawing the figures here", exc)
            return
        threading.Thread(target=self._listen, args=(self._proc.stdout,),
                         name="figure-worker-reader", daemon=True).start()

    def __enter__(self) -> FigureRenderer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker (killed if still running) and reap it. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with self._lock:
            self._closed = True
        try:
            proc.stdin.close()
        except OSError:
            pass
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    @property
    def worker(self) -> subprocess.Popen | None:
        """The running worker process, if any (``None`` once closed)."""
        return self._proc

    def wait_for_worker(self, timeout: float) -> bool:
        """Block until the worker is ready for work (or ``timeout`` s); whether it is."""
        return self._proc is not None and self._asked.wait(timeout)

    # -- work

    def submit(self, job: FigureJob) -> None:
        """Queue ``job``; a waiting worker takes it at once."""
        message = None
        if self._proc is not None:
            try:
                message = _job_message(job)
            except Exception as exc:  # an option that is not JSON, a column Arrow rejects
                log.debug("figure %s is drawn here: %s", job.name, exc)
        with self._lock:
            self._order.append(job.name)
            if message is None:
                self._local.append(job)
                return
            self._messages[job.name] = message
            if self._proc is not None and self._worker_waiting:
                self._worker_waiting = False
                self._send_locked(job)
            else:
                self._pending.append(job)

    def finish(self) -> dict[str, Path]:
        """Draw the jobs the worker has not taken here, wait for the others; close.

        Returns the written figures by job name, in submission order of the jobs.
        """
        written: dict[str, Path] = {}
        try:
            for job in self._local:
                self._keep(written, job.name, draw(job))
            while True:
                with self._lock:
                    if not self._pending:
                        self._closed = True
                        if self._worker_waiting and self._proc is not None:
                            self._worker_waiting = False
                            self._send_locked(None)
                        break
                    job = self._pending.pop()  # the last-submitted: the worker takes the first
                self._keep(written, job.name, draw(job))
            self._collect(written)
        finally:
            self.close()
        return {n: written[n] for n in self._order if n in written}

    # -- internals

    def _keep(self, written: dict[str, Path], name: str, path: Path | None) -> None:
        if path is not None:
            written[name] = path

    def _send_locked(self, job: FigureJob | None) -> None:
        """Send one job (``None``: no more) to the worker; caller holds the lock."""
        try:
            if self._proc is None:
                raise OSError("figure worker stopped")
            _write(self._proc.stdin, _STOP if job is None else self._messages[job.name])
        except (OSError, ValueError):  # the worker is gone (ValueError: pipe closed here):
            # its jobs are drawn here, by finish() or _collect()
            if job is not None:
                self._pending.append(job)
            return
        if job is not None:
            self._sent[job.name] = job

    def _listen(self, stream: BinaryIO) -> None:
        """Reader thread: outcomes into the queue, answer each request for work."""
        while True:
            try:
                raw = _read_raw(stream)
                header = None if raw is None else _unpack(raw)[0]
                msg = None if header is None or "want" in header else _Outcome.from_header(header)
            except Exception:  # a broken pipe or message: the worker is treated as dead
                raw = header = msg = None
            if header is None:
                self._outcomes.put(None)
                return
            if msg is None:  # a request for work
                self._asked.set()
                with self._lock:
                    if self._pending:
                        self._send_locked(self._pending.popleft())
                    elif self._closed:
                        self._send_locked(None)
                    else:
                        self._worker_waiting = True
            else:
                self._outcomes.put(msg)

    def _collect(self, written: dict[str, Path]) -> None:
        """Wait for the worker's outcomes; draw here whatever it did not finish."""
        while True:
            with self._lock:
                if not self._sent:  # and a job the worker could not be sent: drawn here
                    left, self._pending = list(self._pending), deque()
                    break
            try:
                outcome = self._outcomes.get(timeout=self._timeout)
                why = "stopped"
            except queue.Empty:
                outcome, why = None, f"sent nothing for {self._timeout:g} s"
            if outcome is None:  # the worker ended (or hung) with jobs outstanding
                proc = self._proc
                self.close()
                log.warning("figure worker %s (exit code %s); drawing its figures here",
                            why, None if proc is None else proc.returncode)
                with self._lock:
                    left = [*self._sent.values(), *self._pending]
                    self._sent, self._pending = {}, deque()
                break
            with self._lock:
                job = self._sent.pop(outcome.name)
            for text in outcome.warnings:
                log.warning("figure %s: %s", outcome.name, text)
            if outcome.skipped is not None:
                log.warning("figure %s skipped: %s", outcome.name, outcome.skipped)
            elif outcome.error is not None:  # draw it here: the same exception as without
                log.debug("figure %s failed in the worker:\n%s", outcome.name, outcome.error)
                self._keep(written, job.name, draw(job))
            else:
                written[outcome.name] = outcome.path
                self.from_worker.append(outcome.name)
        for job in left:
            self._keep(written, job.name, draw(job))


# --------------------------------------------------------------------------- the wire


def _pack(header: dict, payload: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return _HEAD.pack(len(head)) + head + payload


def _unpack(message: bytes) -> tuple[dict, bytes]:
    (n,) = _HEAD.unpack_from(message)
    return json.loads(message[_HEAD.size:_HEAD.size + n]), message[_HEAD.size + n:]


_WANT_MSG = _pack({"want": True})  # worker -> caller: ready for the next job
_STOP = _pack({"stop": True})  # caller -> worker: no more jobs


def _job_message(job: FigureJob) -> bytes:
    """A job as a JSON header plus its frame as an Arrow IPC stream."""
    import pyarrow as pa

    frame = job.frame
    table = pa.Table.from_pandas(frame)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    header = {"name": job.name, "builder": job.builder, "path": str(job.path),
              "kwargs": job.kwargs,
              # object columns come back as strings: the builder sees what it was given
              "object_columns": [str(c) for c in frame.columns if frame[c].dtype == object]}
    return _pack(header, sink.getvalue().to_pybytes())


def _job_from(header: dict, payload: bytes) -> FigureJob:
    import pyarrow as pa

    frame = pa.ipc.open_stream(io.BytesIO(payload)).read_all().to_pandas()
    frame = frame.astype({c: object for c in header["object_columns"]})
    return FigureJob(header["name"], header["builder"], frame, Path(header["path"]),
                     header["kwargs"])


def _write(stream: BinaryIO, message: bytes) -> None:
    stream.write(_LENGTH.pack(len(message)) + message)
    stream.flush()


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_raw(stream: BinaryIO) -> bytes | None:
    """One message; ``None`` at end of stream."""
    head = _read_exact(stream, _LENGTH.size)
    if head is None:
        return None
    return _read_exact(stream, _LENGTH.unpack(head)[0])


# --------------------------------------------------------------------------- worker side


def _run_job(job: FigureJob) -> _Outcome:
    """Draw one job in the worker; every exception becomes part of the outcome."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            from bench.reporting import figures

            fig = getattr(figures, job.builder)(job.frame, **job.kwargs)
            path = figures.save_figure(fig, job.path)
            outcome = _Outcome(job.name, path=path)
        except ValueError as exc:
            outcome = _Outcome(job.name, skipped=str(exc))
        except Exception:
            outcome = _Outcome(job.name, error=traceback.format_exc())
    texts = tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    return _Outcome(outcome.name, outcome.path, outcome.skipped, outcome.error, texts)


def _serve(inp: BinaryIO, out: BinaryIO, run: Callable[[FigureJob], _Outcome]) -> None:
    """The worker loop: import, then ask for a job, draw it, answer, until told to stop."""
    raw: queue.Queue[bytes | None] = queue.Queue()

    def pump() -> None:  # keep the caller's writes from blocking while we import
        while True:
            try:
                msg = _read_raw(inp)
            except OSError:
                msg = None
            raw.put(msg)
            if msg is None:
                return

    threading.Thread(target=pump, daemon=True).start()
    from bench.reporting import figures  # noqa: F401 - the slow import, done up front

    while True:
        _write(out, _WANT_MSG)
        msg = raw.get()
        if msg is None:
            return
        header, payload = _unpack(msg)
        if "stop" in header:
            return
        _write(out, run(_job_from(header, payload)).message())


def worker_main() -> int:
    """The worker process: serve figure jobs on stdin/stdout until stdin says stop."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but the protocol may reach the caller's pipe
    try:
        _serve(sys.stdin.buffer, out, _run_job)
    except (KeyboardInterrupt, BrokenPipeError):  # the caller is stopping or gone
        return 1
    return 0


if __name__ == "__main__":
    # run from the module's importable name: one copy of its classes, not __main__'s too
    from bench.reporting.render import worker_main

    sys.exit(worker_main())
