"""What the machine offers this process: its cores, and whether one is free right now.

Work that can overlap the run's own thread (figures drawn in a worker process, the
fingerprints of a large split hashed on a thread) asks :func:`spare_core` first: on a
machine whose cores are all busy it would only add its own cost.

:func:`spare_core` reads how many threads are runnable *now* (the fourth field of
``/proc/loadavg``, ``running/total``), not the one-minute load average: the run's own
multi-threaded fits (ALS on every core for most of a minute) keep that average high long
after they have finished, which hid a free core from the report step. The count is read
a few times, a millisecond apart, and the smallest kept, so one short-lived process does
not decide. Without ``/proc`` (not Linux) the one-minute load average stands in.
"""

from __future__ import annotations

import os
import time

__all__ = ["busy_elsewhere", "spare_core", "usable_cores"]

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
