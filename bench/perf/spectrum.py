"""``bench perf spectrum``: the spectrum experiment end to end, like a user runs it.

``bench perf spectrum --runs 1 --plain-runs 1 --json out.json``

Each run is a fresh Python process started by this one, timed by the wall clock from
process start to exit; its peak RSS is the child's own high-water mark (``wait4``
rusage), so runs do not blur each other's memory. Two kinds of run, in one working
folder (``--workdir``, default a new temporary folder: the MLflow store
``mlruns/mlflow.db`` and ``reports/`` land there):

- *plain*: the ``bench`` command itself (``bench experiment=spectrum`` plus
  ``--override``\\ s), untouched: the figure a user sees.
- *instrumented*: the same command in a process that first wraps a few functions with
  timers (nothing in the runner is edited), and breaks the wall clock down into
  ``load`` (building the dataset), ``split`` (splitters, cold-start splits, leakage
  audit), ``fit`` (``Recommender.fit``), ``score`` (``recommend_codes``: scoring,
  masking, top-k), ``metrics`` (test relevance, ranking / beyond-accuracy / rating
  metrics), ``logging`` (building the tracker, importing MLflow included, and every
  tracker call), ``report`` (results files, report and figures) and ``other`` (interpreter
  start, imports, Hydra, the rest). Time is *exclusive*: a timed call inside another
  (a hybrid fitting its parts, a tracker call inside a report) counts once, in the
  innermost category, so the categories add up to the wall clock.

``--warmup`` (on by default) first runs a small untimed ``bench`` in the same folder so
the MLflow store exists (its creation, ~1-2 s of migrations, happens once per folder, not
per run). Targets (issue 6): <= 30 s wall from process start, MLflow logging <= 10 % of
it. This module is a script: it prints.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from bench.perf.common import add_json_option, emit

HELP = "the spectrum experiment end to end: load, split, fit, score, metrics, logging, report"

CATEGORIES = ("load", "split", "fit", "score", "metrics", "logging", "report", "other")
TARGET_WALL_S = 30.0
TARGET_LOGGING_SHARE = 0.10


# ----------------------------------------------------------------------------- child
class StageMeter:
    """Exclusive wall time per category over nested timed calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter = Counter()
        self.detail: dict[str, float] = defaultdict(float)  # inclusive, not summed
        self.detail_calls: Counter = Counter()
        self._stack: list[list] = []  # [category, seconds spent in nested timed calls]

    def wrap(self, category: str, fn, detail: str | None = None):
        meter = self

        def timed(*args, **kwargs):
            start = time.perf_counter()
            meter._stack.append([category, 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                _, nested = meter._stack.pop()
                meter.seconds[category] += elapsed - nested
                meter.calls[category] += 1
                if meter._stack:
                    meter._stack[-1][1] += elapsed
                if detail is not None:
                    meter.detail[detail] += elapsed
                    meter.detail_calls[detail] += 1

        timed.__wrapped__ = fn
        timed.__name__ = getattr(fn, "__name__", "timed")
        timed.__doc__ = getattr(fn, "__doc__", None)
        return timed


class _TimedTracker:
    """Proxy: every method call of the wrapped tracker is timed as ``logging``."""

    def __init__(self, inner, meter: StageMeter):
        self._inner = inner
        self._meter = meter

    def __getattr__(self, name):
        value = getattr(self._inner, name)
        if callable(value):
            return self._meter.wrap("logging", value, detail=f"tracker.{name}")
        return value


def _instrument(meter: StageMeter) -> None:
    """Wrap the runner's stages with timers (module attributes only; no file edited)."""
    import bench.evaluation as evaluation
    import bench.protocols as protocols
    import bench.reporting.figures as figures
    import bench.reporting.report as report
    import bench.reporting.summary as summary
    import bench.runner as runner
    import bench.splits.cold_start as cold_start
    from bench.models.base import Recommender

    build = runner.build

    def timed_build(node, where):
        category = {"dataset": "load", "split": "split"}.get(where)
        if category is None:
            return build(node, where)
        obj = meter.wrap(category, build)(node, where)
        if where == "split" and hasattr(obj, "split"):
            obj.split = meter.wrap("split", obj.split)
        return obj

    runner.build = timed_build
    runner._audit = meter.wrap("split", runner._audit)
    for cls in (cold_start.UserColdStartSplitter, cold_start.ItemColdStartSplitter):
        cls.split = meter.wrap("split", cls.split)

    build_tracker = runner.build_tracker
    runner.build_tracker = meter.wrap(
        "logging", lambda cfg: _TimedTracker(build_tracker(cfg), meter), detail="build_tracker"
    )

    runner.FoldContext.build = meter.wrap("metrics", runner.FoldContext.build)
    runner.evaluate_lists = meter.wrap("metrics", runner.evaluate_lists)
    runner._rating_metrics = meter.wrap("metrics", runner._rating_metrics)
    protocols.relevance = meter.wrap("metrics", protocols.relevance)
    protocols.evaluate_rankings = meter.wrap("metrics", protocols.evaluate_rankings)
    evaluation.evaluate_rankings = meter.wrap(
        "metrics", evaluation.evaluate_rankings, detail="evaluate_rankings"
    )

    summary.write_results = meter.wrap("report", summary.write_results, detail="write_results")
    report.write_report = meter.wrap("report", report.write_report, detail="write_report")
    figures.save_figure = meter.wrap("report", figures.save_figure, detail="save_figure")

    fit_by_model: dict[str, float] = defaultdict(float)

    def wrap_model_class(cls) -> None:
        for name, category in (("fit", "fit"), ("recommend_codes", "score")):
            fn = cls.__dict__.get(name)
            if fn is None or getattr(fn, "_perf_timed", False):
                continue
            timed = meter.wrap(category, fn)
            if name == "fit":
                timed = _fit_by_model(timed, fit_by_model, meter)
            timed._perf_timed = True
            setattr(cls, name, timed)

    def all_subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from all_subclasses(sub)

    wrap_model_class(Recommender)
    for sub in list(all_subclasses(Recommender)):
        wrap_model_class(sub)
    previous = Recommender.__dict__.get("__init_subclass__")

    def init_subclass(cls, **kwargs):  # models are imported while the config is built
        if previous is not None:
            previous.__func__(cls, **kwargs)
        wrap_model_class(cls)

    Recommender.__init_subclass__ = classmethod(init_subclass)
    meter.fit_by_model = fit_by_model


def _fit_by_model(timed, fit_by_model: dict, meter: StageMeter):
    """Also record each outermost ``fit`` per model class (inclusive seconds)."""

    def fit(self, *args, **kwargs):
        outer = not any(cat == "fit" for cat, _ in meter._stack)
        start = time.perf_counter()
        try:
            return timed(self, *args, **kwargs)
        finally:
            if outer:
                fit_by_model[type(self).__name__] += time.perf_counter() - start

    return fit


def child_main(out_path: str, argv: list[str]) -> int:
    """Run ``bench *argv`` in this process with stage timers; write the figures as JSON."""
    t0 = time.perf_counter()
    meter = StageMeter()
    import bench.cli as cli

    t_import = time.perf_counter() - t0
    _instrument(meter)
    t_instrument = time.perf_counter() - t0 - t_import
    code = cli.main(argv)
    total = time.perf_counter() - t0
    import resource

    out = {
        "exit_code": code,
        "child_seconds": total,
        "import_cli_seconds": t_import,
        "instrument_seconds": t_instrument,
        "seconds": {c: meter.seconds.get(c, 0.0) for c in CATEGORIES if c != "other"},
        "calls": dict(meter.calls),
        "detail_seconds": dict(meter.detail),
        "detail_calls": dict(meter.detail_calls),
        "fit_seconds_by_model": dict(sorted(meter.fit_by_model.items(), key=lambda kv: -kv[1])),
        "child_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    Path(out_path).write_text(json.dumps(out, indent=2) + "\n")
    return code


# ---------------------------------------------------------------------------- parent
def _bench_command() -> list[str]:
    script = Path(sys.executable).with_name("bench")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from bench.cli import entry; entry()"]


def _spawn(cmd: list[str], workdir: Path, log_name: str) -> dict:
    """Run ``cmd`` in ``workdir``; wall seconds from spawn to exit and the child's rusage."""
    out_path, err_path = workdir / f"{log_name}.out", workdir / f"{log_name}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=err)
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
    }
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


def _summarise(out: dict) -> None:
    def med(values):
        return statistics.median(values) if values else None

    summary: dict = {}
    for kind in ("plain", "instrumented"):
        runs = out[kind]
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
    wall = (summary.get("plain") or summary.get("instrumented"))["median_wall_seconds"]
    summary["meets_wall_target"] = wall <= TARGET_WALL_S
    if "logging_share" in summary:
        summary["meets_logging_target"] = summary["logging_share"] <= TARGET_LOGGING_SHARE
    out["summary"] = summary


def _print_table(out: dict) -> None:
    s = out["summary"]
    la = out["load_average_before"]
    print(f"spectrum benchmark: bench {' '.join(out['argv'])} (workdir {out['workdir']}); "
          f"load average before {la[0]:.2f}, after {out['load_average_after'][0]:.2f}")
    print(f"{'run':14s} {'wall s':>8s} {'min':>8s} {'max':>8s} {'peak RSS MB':>12s}  runs")
    for kind in ("plain", "instrumented"):
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
    wall = (s.get("plain") or s["instrumented"])["median_wall_seconds"]
    verdict = "meets" if s["meets_wall_target"] else "misses"
    print(f"\ntarget <= {TARGET_WALL_S:.0f} s wall: {verdict} ({wall:.1f} s)", end="")
    if "logging_share" in s:
        verdict = "meets" if s["meets_logging_target"] else "misses"
        print(f"; MLflow logging <= {TARGET_LOGGING_SHARE:.0%}: {verdict} "
              f"({s['logging_share']:.1%})")
    else:
        print()


def add_arguments(p) -> None:
    p.add_argument("--experiment", default="spectrum", help="experiment config (default spectrum)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="extra bench override (repeatable), e.g. --override tracker=none")
    p.add_argument("--runs", type=int, default=1, help="instrumented runs (default 1)")
    p.add_argument("--plain-runs", type=int, default=1, help="plain `bench` runs (default 1)")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="skip the untimed run that creates the MLflow store")
    p.add_argument("--workdir", default=None, help="working folder (default: a new temp folder)")
    add_json_option(p)


def run(args, parser) -> int:
    if args.runs < 0 or args.plain_runs < 0 or args.runs + args.plain_runs == 0:
        parser.error("--runs and --plain-runs must be >= 0, and not both 0")
    out = bench_spectrum(args)
    return emit(out, args.json, _print_table)
