"""What every benchmark shares: timing with medians, the stage meter, JSON output."""

from __future__ import annotations

import contextlib
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.observe import StageStats, StageTimer

__all__ = [
    "SAMPLE_SECONDS",
    "RssStats",
    "StageMeter",
    "add_json_option",
    "emit",
    "rss_kb",
    "time_runs",
    "write_json",
]

#: how often :meth:`StageMeter.sampling` reads the resident set size
SAMPLE_SECONDS = 0.02


def time_runs(fn, repeats: int) -> tuple[dict, object]:
    """Run ``fn`` ``repeats`` times: wall and CPU seconds of each run, and the last result."""
    wall, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    timing = {
        "seconds": wall,
        "cpu_seconds": cpu,
        "median_seconds": statistics.median(wall),
        "median_cpu_seconds": statistics.median(cpu),
    }
    return timing, result


def write_json(out: dict, path: str | Path | None) -> None:
    """Write ``out`` as JSON to ``path`` (``"-"`` = standard output, ``None`` = nowhere)."""
    if path is None:
        return
    text = json.dumps(out, indent=2, default=float) + "\n"
    if str(path) == "-":
        print(text, end="")
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


def add_json_option(parser) -> None:
    """The ``--json [PATH]`` option every workload shares."""
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        help="print JSON instead of the table, or write it to the given path",
    )


def emit(out: dict, json_path: str | Path | None, print_table) -> int:
    """Show a workload's result: the table (``print_table(out)``) and/or its JSON."""
    if str(json_path) != "-":
        print_table(out)
    write_json(out, json_path)
    return 0


# ---------------------------------------------------------------------------- stage meter
def proc_kb(path: str, field: str) -> int:
    """The kB value of line ``field:`` of a ``/proc`` file (``/proc/self/status``,
    ``/proc/meminfo``, ``/proc/<pid>/status``); 0 when the file or the line is not there."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(field: str = "VmRSS") -> int:
    """This process's resident set size in kB (``VmHWM``: its high-water mark); 0 when
    ``/proc`` is not there."""
    return proc_kb("/proc/self/status", field)


@dataclass
class RssStats:
    """Resident set size around one row of a :class:`StageMeter` (GB = 10^6 kB)."""

    peak_gb: float = 0.0
    before_gb: float = 0.0  # at the first start
    after_gb: float = 0.0  # at the last end


class StageMeter(StageTimer):
    """The stage meter of ``bench perf``: a :class:`~bench.observe.StageTimer` (wall,
    exclusive and CPU seconds, calls, a breakdown ``by`` one info key) whose rows may be
    named from the stage's info, and which can also follow the resident set size.

    Attach it to a run (``observers=Observers(meter)`` or :func:`bench.observe.attached`);
    it patches nothing.

    Args:
        by: as :class:`~bench.observe.StageTimer` (``"model"``: ``per[row][model]``).
        row: ``row(stage, info) -> name`` of the row a stage is charged to (default: the
            stage's own name), e.g. ``"fit cf_als"`` or ``"tracking.log_metrics"``.
        rss: also record, per row, the RSS before, after and at its peak
            (:attr:`rss`). The peak is read at each start and end and, inside
            :meth:`sampling`, every ``interval`` seconds by a thread; a sample counts
            for every row open at that moment, so an enclosing stage sees its
            children's peaks.
    """

    def __init__(self, by: str | None = None, *,
                 row: Callable[[str, Mapping[str, object]], str] | None = None,
                 rss: bool = False, interval: float = SAMPLE_SECONDS):
        super().__init__(by=by)
        self.row = row
        self.follow_rss = rss
        self.interval = interval
        self.rss: dict[str, RssStats] = {}
        self.open: list[list] = []  # [row, kB before, peak kB] of each open stage
        self.lock = threading.Lock()

    def name(self, stage: str, info: Mapping[str, object]) -> str:
        """The row ``stage`` is charged to."""
        return self.row(stage, info) if self.row is not None else stage

    def start(self, stage: str, info: Mapping[str, object]) -> None:
        name = self.name(stage, info)
        self.stages.setdefault(name, StageStats())  # rows in the order stages first start
        if self.follow_rss:
            now = rss_kb()
            with self.lock:
                self.open.append([name, now, now])
        super().start(name, info)

    def end(self, stage: str, info: Mapping[str, object], seconds: float, ok: bool) -> None:
        name = self.name(stage, info)
        super().end(name, info, seconds, ok)
        if not self.follow_rss:
            return
        now = rss_kb()
        with self.lock:
            _, before, peak = self.open.pop()
            peak = max(peak, now)
            for entry in self.open:  # the enclosing stages saw this peak too
                entry[2] = max(entry[2], peak)
        stats = self.rss.get(name)
        if stats is None:
            stats = self.rss[name] = RssStats(before_gb=before / 1e6)
        stats.peak_gb = max(stats.peak_gb, peak / 1e6)
        stats.after_gb = now / 1e6

    @contextlib.contextmanager
    def sampling(self) -> Iterator[StageMeter]:
        """Sample the RSS every ``interval`` seconds in a thread while the block runs."""
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(self.interval):
                now = rss_kb()
                with self.lock:
                    for entry in self.open:
                        entry[2] = max(entry[2], now)

        thread = threading.Thread(target=sample, name="perf-rss-sampler", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

    def rows(self) -> dict[str, dict[str, float]]:
        """``{row: {"seconds", "self_seconds", "cpu_seconds", "calls"}}``, plus
        ``"peak_rss_gb"``, ``"rss_before_gb"`` and ``"rss_after_gb"`` when following RSS."""
        out = self.as_dict()
        for name, r in self.rss.items():
            out[name].update(peak_rss_gb=r.peak_gb, rss_before_gb=r.before_gb,
                             rss_after_gb=r.after_gb)
        return out
