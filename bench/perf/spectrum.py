"""``bench perf spectrum``: the spectrum experiment end to end, like a user runs it.

``bench perf spectrum --runs 1 --plain-runs 1 --json out.json``

Each run is a fresh Python process started by this one, timed by the wall clock from
process start to exit; its peak RSS is the child's own high-water mark (``wait4``
rusage), so runs do not blur each other's memory. Two kinds of run, in one working
folder (``--workdir``, default a new temporary folder: the MLflow store
``mlruns/mlflow.db`` and ``reports/`` land there):

- *plain*: the ``bench`` command itself (``bench experiment=spectrum`` plus
  ``--override``\\ s), untouched: the figure a user sees.
- *instrumented*: the same command in a process that attaches a stage observer
  (:class:`~bench.perf.common.StageMeter` through :func:`bench.observe.attached`; nothing
  is patched) and breaks the wall clock down by the stages the run layer announces:
  ``load`` (``load``: building the dataset), ``split`` (``split``, ``audit``,
  ``protocols``: the cold-start splits and their relevance), ``fit`` (``fit``), ``score``
  (``recommend``: scoring, masking, top-k), ``metrics`` (``context``: a fold's relevance,
  history and popularity; ``evaluate``: ranking / beyond-accuracy / rating metrics and
  segments), ``logging`` (``tracking``: building and checking the tracker, importing
  MLflow included, and every tracker call), ``report`` (``artifacts``: each cell's files;
  ``reduce``: results files, statistics, report, figures) and ``other`` (interpreter
  start, imports, Hydra, the ``cell`` stage's own bookkeeping — building the model,
  truncating lists — and the rest). Time is *exclusive*: a stage inside another (a
  tracker call inside a cell or the report) counts once, in the innermost category, so
  the categories add up to the wall clock. The run also gives the fit seconds per model
  config (inclusive, every protocol) and a detail table of inclusive seconds and calls
  per stage and per tracker method (``tracking.log_metrics``).

``--warmup`` (on by default) first runs a small untimed ``bench`` in the same folder so
the MLflow store exists (its creation, ~1-2 s of migrations, happens once per folder, not
per run).

*first* runs (``--first-runs``, default 0) are plain runs as the first ``bench`` after a
fresh install meets them: each in a new folder (the run creates its MLflow store), with
an empty numba cache (``NUMBA_CACHE_DIR``: every compiled kernel is compiled again) and
an empty matplotlib cache (``MPLCONFIGDIR``: the font list is built again). What they
do not redo is compiling Python files to bytecode, which ``pip install`` does.

MLflow works on a thread of its own (:mod:`bench.tracking.background`): the ``logging``
category is the time the run's own thread spends on the tracker (handing calls over,
waiting for run ids and, at the end, for the worker to finish), i.e. what MLflow adds to
the wall clock; the worker's own busy time, overlapped with the cells, is reported apart
(``tracking_busy_seconds``).

Targets (issue 19): <= 20 s wall from process start, warm; <= 30 s for the first run;
MLflow <= 10 % of the warm wall time. This module is a script: it prints.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.observe import attached
from bench.perf.common import StageMeter, add_json_option, emit

HELP = "the spectrum experiment end to end: load, split, fit, score, metrics, logging, report"

CATEGORIES = ("load", "split", "fit", "score", "metrics", "logging", "report", "other")
TARGET_WALL_S = 20.0
TARGET_FIRST_WALL_S = 30.0
TARGET_LOGGING_SHARE = 0.10


# ----------------------------------------------------------------------------- child
#: The run layer's stages (:mod:`bench.observe`) -> the category their exclusive time is
#: charged to; a stage not listed here (``cell``: building the model, bookkeeping) and
#: time outside any stage go to ``other``.
CATEGORY = {
    "load": "load",
    "split": "split",
    "audit": "split",
    "protocols": "split",
    "fit": "fit",
    "recommend": "score",
    "context": "metrics",
    "evaluate": "metrics",
    "tracking": "logging",
    "artifacts": "report",
    "reduce": "report",
}


def row(stage: str, info) -> str:
    """A detail row per stage, and one per tracker method (``tracking.log_metrics``)."""
    return f"tracking.{info['call']}" if stage == "tracking" and "call" in info else stage


def category(name: str) -> str:
    """The category of a meter row (``tracking.log_metrics`` -> ``logging``)."""
    return CATEGORY.get(name.split(".")[0], "other")


def meter() -> StageMeter:
    """The observer of an instrumented run: rows per stage and tracker call, fits by model."""
    return StageMeter(by="model", row=row)


def categories(m: StageMeter) -> tuple[dict[str, float], dict[str, int]]:
    """Exclusive seconds and calls per category, ``other`` left out (the caller computes
    it against its wall clock): each stage's time minus its children's, so a tracker
    call inside a cell counts once, as ``logging``, and the categories add up."""
    seconds = dict.fromkeys((c for c in CATEGORIES if c != "other"), 0.0)
    calls = dict.fromkeys(seconds, 0)
    for name, stats in m.stages.items():
        c = category(name)
        if c != "other":
            seconds[c] += stats.self_seconds
            calls[c] += stats.calls
    return seconds, calls


class _WorkerSeconds:
    """Catches the background tracker's busy seconds, announced when it closes."""

    busy: float | None = None

    def start(self, stage, info) -> None:
        return None

    def end(self, stage, info, seconds, ok) -> None:
        if stage == "tracking" and info.get("call") == "worker":
            self.busy = float(info["busy_seconds"])


def child_main(out_path: str, argv: list[str]) -> int:
    """Run ``bench *argv`` in this process with a stage meter attached; write the figures
    as JSON."""
    t0 = time.perf_counter()
    import bench.cli as cli

    t_import = time.perf_counter() - t0
    m, worker = meter(), _WorkerSeconds()
    with attached(m, worker):
        code = cli.main(argv)
    total = time.perf_counter() - t0
    import resource

    seconds, calls = categories(m)
    fits = m.per.get("fit", {})
    out = {
        "exit_code": code,
        "child_seconds": total,
        "import_cli_seconds": t_import,
        "seconds": seconds,
        "calls": calls,
        "detail_seconds": {k: v.seconds for k, v in m.stages.items()},
        "detail_calls": {k: v.calls for k, v in m.stages.items()},
        "fit_seconds_by_model": dict(sorted(fits.items(), key=lambda kv: -kv[1])),
        "child_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tracking_busy_seconds": worker.busy,
    }
    Path(out_path).write_text(json.dumps(out, indent=2) + "\n")
    return code


# ---------------------------------------------------------------------------- parent
def _bench_command() -> list[str]:
    script = Path(sys.executable).with_name("bench")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from bench.cli import entry; entry()"]


def _spawn(cmd: list[str], workdir: Path, log_name: str, env: dict | None = None) -> dict:
    """Run ``cmd`` in ``workdir``; wall seconds from spawn to exit and the child's rusage."""
    out_path, err_path = workdir / f"{log_name}.out", workdir / f"{log_name}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux: KiB
        "exit_code": proc.returncode,
        "load_average": os.getloadavg(),
    }


def _overrides(args) -> list[str]:
    return [f"experiment={args.experiment}", *args.override]


def bench_spectrum(args) -> dict:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="perf-spectrum-"))
    workdir.mkdir(parents=True, exist_ok=True)
    argv = _overrides(args)
    out: dict = {
        "experiment": args.experiment,
        "argv": argv,
        "workdir": str(workdir),
        "load_average_before": os.getloadavg(),
        "plain": [],
        "instrumented": [],
        "first": [],
    }
    for i in range(args.first_runs):
        out["first"].append(_first_run(argv, workdir / f"first{i}"))
    if args.warmup:
        warm = _spawn([*_bench_command(), "~experiment", "model=[rule_popular]",
                       "report.figures=false"], workdir, "warmup")
        out["warmup"] = warm
    for i in range(args.plain_runs):
        run = _spawn([*_bench_command(), *argv], workdir, f"plain{i}")
        out["plain"].append(run)
        if run["exit_code"] != 0:
            raise SystemExit(f"spectrum: plain run failed (see {workdir}/plain{i}.err)")
    for i in range(args.runs):
        result = workdir / f"instrumented{i}.json"
        code = (
            "import sys; from bench.perf.spectrum import child_main; "
            "sys.exit(child_main(sys.argv[1], sys.argv[2:]))"
        )
        name = f"instrumented{i}"
        run = _spawn([sys.executable, "-c", code, str(result), *argv], workdir, name)
        if run["exit_code"] != 0 or not result.is_file():
            raise SystemExit(f"spectrum: instrumented run failed (see {workdir}/{name}.err)")
        child = json.loads(result.read_text())
        seconds = dict(child["seconds"])
        seconds["other"] = run["wall_seconds"] - sum(seconds.values())
        run.update(child)
        run["seconds"] = seconds
        run["startup_seconds"] = run["wall_seconds"] - child["child_seconds"]
        out["instrumented"].append(run)
    out["load_average_after"] = os.getloadavg()
    _summarise(out)
    return out


def _first_run(argv: list[str], folder: Path) -> dict:
    """A plain run as the first after a fresh install: a new folder (the run creates the
    MLflow store), empty numba and matplotlib caches."""
    folder.mkdir(parents=True)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(folder / "numba-cache"),
           "MPLCONFIGDIR": str(folder / "matplotlib")}
    run = _spawn([*_bench_command(), *argv], folder, "first", env)
    if run["exit_code"] != 0:
        raise SystemExit(f"spectrum: first run failed (see {folder}/first.err)")
    run["numba_cache_files"] = sum(1 for _ in (folder / "numba-cache").rglob("*.nbi"))
    return run


def _summarise(out: dict) -> None:
    def med(values):
        return statistics.median(values) if values else None

    summary: dict = {}
    for kind in ("plain", "instrumented", "first"):
        runs = out.get(kind)
        if runs:
            walls = [r["wall_seconds"] for r in runs]
            summary[kind] = {
                "median_wall_seconds": med(walls),
                "min_wall_seconds": min(walls),
                "max_wall_seconds": max(walls),
                "median_peak_rss_mb": med([r["peak_rss_mb"] for r in runs]),
            }
    runs = out["instrumented"]
    if runs:
        cats = {c: med([r["seconds"][c] for r in runs]) for c in CATEGORIES}
        wall = summary["instrumented"]["median_wall_seconds"]
        summary["median_seconds"] = cats
        summary["logging_share"] = cats["logging"] / wall
        busy = [r["tracking_busy_seconds"] for r in runs
                if r.get("tracking_busy_seconds") is not None]
        summary["tracking_busy_seconds"] = med(busy)
        summary["tracking_busy_share"] = med(busy) / wall if busy else None
    warm = summary.get("plain") or summary.get("instrumented")
    if warm:
        summary["meets_wall_target"] = warm["median_wall_seconds"] <= TARGET_WALL_S
    if "first" in summary:
        summary["meets_first_wall_target"] = (
            summary["first"]["median_wall_seconds"] <= TARGET_FIRST_WALL_S)
    if "logging_share" in summary:
        summary["meets_logging_target"] = summary["logging_share"] <= TARGET_LOGGING_SHARE
    out["summary"] = summary


def _print_table(out: dict) -> None:
    s = out["summary"]
    la = out["load_average_before"]
    print(f"spectrum benchmark: bench {' '.join(out['argv'])} (workdir {out['workdir']}); "
          f"load average before {la[0]:.2f}, after {out['load_average_after'][0]:.2f}")
    print(f"{'run':14s} {'wall s':>8s} {'min':>8s} {'max':>8s} {'peak RSS MB':>12s}  runs")
    for kind in ("plain", "instrumented", "first"):
        if kind in s:
            k = s[kind]
            print(f"{kind:14s} {k['median_wall_seconds']:8.2f} {k['min_wall_seconds']:8.2f} "
                  f"{k['max_wall_seconds']:8.2f} {k['median_peak_rss_mb']:12.0f}  "
                  f"{len(out[kind])}")
    if "median_seconds" in s:
        cats = s["median_seconds"]
        wall = s["instrumented"]["median_wall_seconds"]
        print(f"\n{'stage (instrumented, median)':30s} {'seconds':>8s} {'share':>7s}")
        for c in CATEGORIES:
            print(f"{c:30s} {cats[c]:8.2f} {cats[c] / wall:7.1%}")
        print(f"{'total (wall)':30s} {wall:8.2f}")
        last = out["instrumented"][-1]
        fits = ", ".join(f"{m} {v:.2f}" for m, v in list(last["fit_seconds_by_model"].items())[:6])
        print(f"slowest fits (last run, s, every protocol): {fits}")
        det = last["detail_seconds"]
        print("detail (last run, inclusive s): " + ", ".join(
            f"{k} {v:.2f} ({last['detail_calls'][k]}x)" for k, v in sorted(det.items())))
        print(f"process start to first line of the child: {last['startup_seconds']:.2f} s")
        if s.get("tracking_busy_seconds") is not None:
            print(f"MLflow worker thread busy (overlapped with the run): "
                  f"{s['tracking_busy_seconds']:.2f} s ({s['tracking_busy_share']:.1%} of "
                  f"the wall time); on the run's own thread: {cats['logging']:.2f} s")
    print()
    warm = s.get("plain") or s.get("instrumented")
    if warm:
        verdict = "meets" if s["meets_wall_target"] else "misses"
        print(f"target <= {TARGET_WALL_S:.0f} s wall (warm): {verdict} "
              f"({warm['median_wall_seconds']:.1f} s)")
    if "first" in s:
        verdict = "meets" if s["meets_first_wall_target"] else "misses"
        print(f"target <= {TARGET_FIRST_WALL_S:.0f} s wall (first run after install): "
              f"{verdict} ({s['first']['median_wall_seconds']:.1f} s)")
    if "logging_share" in s:
        verdict = "meets" if s["meets_logging_target"] else "misses"
        print(f"target MLflow <= {TARGET_LOGGING_SHARE:.0%} of the wall time: {verdict} "
              f"({s['logging_share']:.1%} on the run's thread)")


def add_arguments(p) -> None:
    p.add_argument("--experiment", default="spectrum", help="experiment config (default spectrum)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="extra bench override (repeatable), e.g. --override tracker=none")
    p.add_argument("--runs", type=int, default=1, help="instrumented runs (default 1)")
    p.add_argument("--plain-runs", type=int, default=1, help="plain `bench` runs (default 1)")
    p.add_argument("--first-runs", type=int, default=0,
                   help="plain runs as the first after a fresh install: new folder and MLflow "
                        "store, empty numba and matplotlib caches (default 0)")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="skip the untimed run that creates the MLflow store")
    p.add_argument("--workdir", default=None, help="working folder (default: a new temp folder)")
    add_json_option(p)


def run(args, parser) -> int:
    counts = (args.runs, args.plain_runs, args.first_runs)
    if min(counts) < 0 or sum(counts) == 0:
        parser.error("--runs, --plain-runs and --first-runs must be >= 0, and not all 0")
    out = bench_spectrum(args)
    return emit(out, args.json, _print_table)
