"""The reduce step: after every cell has run, turn the run into its outputs, once.

:func:`reduce_run` writes the run record and the per-user tables
(:func:`bench.reporting.summary.write_results`), builds the report with its statistics
and figures from the folder alone (:func:`bench.reporting.report.write_report`), logs
them to the MLflow parent run, lets a caller add its own verdict (``bench check``'s gate
through ``on_result``), and closes the parent run — FAILED when any cell failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from bench.record import RunResult
from bench.reporting.report import write_report
from bench.reporting.summary import write_results

log = logging.getLogger("bench")

__all__ = ["reduce_run"]


def reduce_run(result: RunResult, tracker, parent: str | None,
               on_result: Callable[[RunResult, object, str | None], list[Path]] | None = None,
               ) -> None:
    """Write the record, the report and the figures; log them; close the parent run.

    The parent run is closed whatever happens here (FAILED when a cell failed or this
    step raised), so no tracking run is left RUNNING.
    """
    status = "FAILED"
    try:
        _write_and_log(result, tracker, parent, on_result)
        if result.failures:
            log.error("%d model run(s) failed: %s", len(result.failures),
                      "; ".join(f"{f.model} ({f.where}): {f.error}" for f in result.failures))
        else:
            status = "FINISHED"
    finally:
        tracker.end_run(parent, status)


def _write_and_log(result: RunResult, tracker, parent: str | None, on_result) -> None:
    out = result.output_dir
    paths = write_results(result)
    t = time.perf_counter()
    paths += write_report(out)
    result.timings["report_s"] = time.perf_counter() - t
    for p in paths:
        tracker.log_artifact(parent, p, f"report/{result.run_name}")
    if (out / "figures").is_dir():
        tracker.log_artifact(parent, out / "figures", f"report/{result.run_name}/figures")
    if on_result is not None:
        for p in on_result(result, tracker, parent):
            tracker.log_artifact(parent, p, f"report/{result.run_name}")
