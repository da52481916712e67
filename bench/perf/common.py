"""What every benchmark shares: timing with medians, peak memory, JSON output."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

__all__ = ["add_json_option", "emit", "time_runs", "write_json"]


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
