"""What the machine offers this process: its cores, and whether one is free right now.

Work that can overlap the run's own thread (figures drawn in a worker process, the
fingerprints of a large split hashed on a thread, a slow import done ahead of need) asks
:func:`spare_core` first: on a machine whose cores are all busy it would only add its own
cost. :func:`offload` runs such work on one shared background thread.

:func:`spare_core` reads how many threads are runnable *now* (the fourth field of
``/proc/loadavg``, ``running/total``), not the one-minute load average: the run's own
multi-threaded fits (ALS on every core for most of a minute) keep that average high long
after they have finished, which hid a free core from the report step. The count is read
a few times, a millisecond apart, and the smallest kept, so one short-lived process does
not decide. Without ``/proc`` (not Linux) the one-minute load average stands in.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["busy_elsewhere", "import_early", "map_on_cores", "offload", "spare_core",
           "usable_cores", "wait_idle"]

log = logging.getLogger(__name__)

#: readings of /proc/loadavg per decision, a millisecond apart (the smallest counts)
SAMPLES = 3


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask; the CPU count elsewhere)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def busy_elsewhere() -> float | None:
    """Threads runnable right now other than the caller's (every process on the
    machine, this one's other threads included), or ``None`` when the system does not
    say (no ``/proc/loadavg``)."""
    seen = []
    for i in range(SAMPLES):
        try:
            with open("/proc/loadavg", encoding="ascii") as f:
                running = int(f.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return None
        seen.append(running - 1)  # the caller is running while it reads
        if i + 1 < SAMPLES:
            time.sleep(0.001)
    return float(max(0, min(seen)))


def spare_core() -> bool:
    """Whether one more busy thread or process would have a core to itself: two or more
    usable cores, and fewer threads runnable elsewhere than cores left beside the
    caller's (the one-minute load average below the cores less half a core, where the
    runnable count is unknown)."""
    cores = usable_cores()
    if cores < 2:
        return False
    others = busy_elsewhere()
    if others is not None:
        return others < cores - 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load figure at all: assume a free core
        return True
    return load < cores - 0.5


_lock = threading.Lock()
_idle = threading.Condition(_lock)  # notified when the backlog drops to 0
_worker: queue.SimpleQueue | None = None  # the background thread's jobs; made on first use
_backlog = 0  # jobs queued or running
_in_job = threading.local()  # .active on the background thread while it runs a job

FORK_WAIT_SECONDS = 120.0
"""How long a fork waits for the background thread's jobs before it goes ahead anyway
(with a warning): a job's lock held at the fork would stay held in the child forever."""


def offload(job: Callable[[], object]) -> bool:
    """Run ``job`` on the one background thread of this process; whether it was queued.

    For work the run would otherwise do later on its own thread and that releases the
    GIL or is worth doing early (hashing, imports). While the thread is idle, a job is
    queued only when a core is free (:func:`spare_core`); behind a running job it is
    queued without asking (the thread is this process's own load). The job's result is
    not returned and its exception only logged (debug): whoever needs the work does it
    again, or waits for it, and meets the error then.
    """
    global _worker, _backlog
    with _lock:
        if _backlog == 0 and not spare_core():
            return False
        if _worker is None:
            # a daemon: its jobs are optional work, so the process never waits for them
            # on its way out (a Ctrl-C during a first run's kernel compiling)
            _worker = queue.SimpleQueue()
            threading.Thread(target=_serve, args=(_worker,), daemon=True,
                             name="recspectrum-background").start()
        _backlog += 1
    try:
        _worker.put(job)
    except BaseException:  # e.g. Ctrl-C here: the job will not run, so it is not owed
        _job_done()
        raise
    return True


def _serve(jobs: queue.SimpleQueue) -> None:
    while True:
        _run(jobs.get())


def _run(job: Callable[[], object]) -> None:
    _in_job.active = True
    try:
        job()
    except BaseException as exc:  # whoever needs the work meets the error itself
        log.debug("background job %r failed: %s: %s", job, type(exc).__name__, exc)
    finally:
        _in_job.active = False
        _job_done()


def _job_done() -> None:
    global _backlog
    with _lock:
        _backlog -= 1
        if _backlog == 0:
            _idle.notify_all()


def wait_idle(timeout: float | None = None) -> bool:
    """Wait until the background thread has run every job queued so far (at most
    ``timeout`` seconds; ``None`` waits as long as it takes); whether it is idle.

    While a job is queued or running, :func:`offload` queues the next one without asking
    for a free core, so code (and tests) that need :func:`offload`'s idle-thread
    behaviour wait here first. Called from a background job itself it would wait for
    itself: it returns ``False`` at once there.
    """
    if getattr(_in_job, "active", False):
        return False
    with _lock:
        return _idle.wait_for(lambda: _backlog == 0, timeout=timeout)


def _drain_before_fork() -> None:
    """Before this process forks, wait until the background thread has run its jobs.

    A job holds locks while it runs (a lazily computed property's, numba's compiler
    lock while it loads kernels, a module's import lock): in a child forked meanwhile
    they stay held by a thread that does not exist there, and the child's first use of
    them waits forever (a cell process forked while ``relevant.parquet`` was being
    encoded did). A fork from a background job itself does not wait for itself.
    """
    if getattr(_in_job, "active", False):
        return
    if not wait_idle(FORK_WAIT_SECONDS):
        log.warning("forking while the background thread is still busy after %.0f s; the "
                    "child may wait for a lock that thread held", FORK_WAIT_SECONDS)


def _forget_threads_in_child() -> None:
    """In a forked child the parent's pool threads do not exist: a job handed to them
    would wait forever. Forget both pools (and their locks, which a parent thread may
    have held at the fork); the child makes its own on first use."""
    global _lock, _idle, _worker, _backlog, _pair, _pair_lock
    _lock, _worker, _backlog = threading.Lock(), None, 0
    _idle = threading.Condition(_lock)
    _pair, _pair_lock = None, threading.Lock()


def import_early(module: str) -> bool:
    """Import ``module`` on the background thread (:func:`offload`) if it is not
    imported yet; whether it was queued. For heavy modules a run will need later (numba
    for the compiled kernels, scipy.stats for the report's tests): Python's import lock
    makes the run's own import wait for this one instead of doing it twice."""
    if module in sys.modules:
        return False
    return offload(lambda: importlib.import_module(module))


_pair: ThreadPoolExecutor | None = None  # two threads for map_on_cores, made on first use
_pair_lock = threading.Lock()


def map_on_cores(function: Callable[[object], object], items: list) -> list:
    """``[function(x) for x in items]``, on two threads when a core is free.

    For a few large pieces of work that release the GIL (numpy gathers of 25M-row
    columns): the results, and their order, are those of the plain loop; an exception
    is raised as the loop would raise it (the first item's first).
    """
    global _pair
    if len(items) < 2 or not spare_core():
        return [function(x) for x in items]
    with _pair_lock:
        if _pair is None:
            _pair = ThreadPoolExecutor(2, thread_name_prefix="recspectrum-pair")
    return list(_pair.map(function, items))


if hasattr(os, "register_at_fork"):  # pragma: no branch - every POSIX Python has it
    os.register_at_fork(before=_drain_before_fork, after_in_child=_forget_threads_in_child)
