"""``bench perf suite``: every performance target in one command, one JSON.

``bench perf suite --json perf.json``

Runs the workloads the targets are stated on, each with its own defaults (the commands
the docs quote), and writes one JSON that can be compared across commits:

=========  ======================================================  ===========================
workload   figure the stopping rule watches                        targets checked
=========  ======================================================  ===========================
spectrum   wall seconds of a plain ``bench`` (warm store)          <= 20 s warm; <= 30 s first
                                                                   run; MLflow <= 10 %
metrics    users per second, 100k users x top-100, P/R/NDCG/MAP@10 >= 2M users/s; >= 100x
                                                                   pytrec_eval
topk       our seconds / implicit's (1 BLAS thread)                 >= 3x implicit; <= 1.2x
                                                                   the GEMM floor
scale      wall seconds of the ml-25m-shaped run                   harness <= 20 %; <= 3 GB
=========  ======================================================  ===========================

**Stable figures.** A workload is run in rounds (each round is the workload's own
benchmark with its own repeats). After ``--min-rounds`` rounds the suite stops as soon
as the relative spread of the watched figure, ``(max - min) / median`` over the rounds so
far, is at most ``--spread``; otherwise it runs another round, up to ``--max-rounds``. A
workload that ends above the spread is marked ``"stable": false`` and the table says so:
its figures are then as loud as the machine was. Each target is judged on the median over
the rounds of its own figure. The 1-minute load average is recorded before and after
every round and for the whole suite.

``--quick`` runs every workload at a toy size (seconds, for trying the command out; its
targets are not meaningful and are reported as such). ``--only a,b`` runs a subset.
This module is a script: it prints.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.perf.common import add_json_option, emit

HELP = "every performance target in one run, repeated until stable, one JSON"


@dataclass(frozen=True)
class Target:
    """One target: ``figure(out)`` compared with ``limit`` (``at_most`` or at least)."""

    name: str
    figure: Callable[[dict], float]
    limit: float
    at_most: bool

    def judge(self, values: list[float]) -> dict:
        value = statistics.median(values)
        met = value <= self.limit if self.at_most else value >= self.limit
        return {"value": value, "limit": self.limit,
                "direction": "at most" if self.at_most else "at least", "met": bool(met)}


@dataclass(frozen=True)
class Workload:
    """A workload of the suite: its module, arguments, watched figure and targets."""

    name: str
    module: str
    function: str
    argv: tuple[str, ...]
    quick_argv: tuple[str, ...]
    watch: str
    figure: Callable[[dict], float]
    targets: tuple[Target, ...] = field(default_factory=tuple)


def _spectrum_wall(out: dict) -> float:
    return out["summary"]["plain"]["median_wall_seconds"]


def _spectrum_first(out: dict) -> float:
    return out["summary"]["first"]["median_wall_seconds"]


def _spectrum_logging(out: dict) -> float:
    return out["summary"]["logging_share"]


def _metrics_rate(out: dict) -> float:
    return out["recspectrum"]["users_per_second"]


def _metrics_speedup(out: dict) -> float:
    return out["pytrec_eval"]["speedup"]


def _topk_implicit(out: dict) -> float:
    return out["ratio_ours_over_implicit"]


def _topk_floor(out: dict) -> float:
    return out["ratio_ours_over_floor"]


def _scale_wall(out: dict) -> float:
    return out["median_wall_seconds"]


def _scale_share(out: dict) -> float:
    return out["harness_share"]


def _scale_rss(out: dict) -> float:
    return out["peak_rss_gb"]


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "spectrum", "bench.perf.spectrum", "bench_spectrum",
        argv=("--runs", "1", "--plain-runs", "1", "--first-runs", "1"),
        quick_argv=("--experiment", "ci", "--runs", "1", "--plain-runs", "1", "--first-runs", "1",
                    "--override", "report.figures=false"),
        watch="plain wall seconds", figure=_spectrum_wall,
        targets=(Target("default run wall seconds (warm)", _spectrum_wall, 20.0, True),
                 Target("first run after install, wall seconds", _spectrum_first, 30.0, True),
                 Target("MLflow share of the wall time", _spectrum_logging, 0.10, True)),
    ),
    Workload(
        "metrics", "bench.perf.metrics", "bench_metrics",
        argv=("--compare",),
        quick_argv=("--users", "2000", "--items", "500", "--repeats", "2", "--compare"),
        watch="users per second", figure=_metrics_rate,
        targets=(Target("users per second", _metrics_rate, 2e6, False),
                 Target("speed-up over pytrec_eval", _metrics_speedup, 100.0, False)),
    ),
    Workload(
        "topk", "bench.perf.topk", "bench_topk",
        argv=("--no-memory",),
        quick_argv=("--users", "2000", "--items", "500", "--factors", "16",
                    "--source", "random", "--repeats", "2", "--no-memory"),
        watch="ours / implicit", figure=_topk_implicit,
        targets=(Target("our seconds / implicit's", _topk_implicit, 1 / 3, True),
                 Target("our seconds / the GEMM floor", _topk_floor, 1.2, True)),
    ),
    Workload(
        "scale", "bench.perf.scale", "bench_scale",
        argv=(),
        quick_argv=("--scale", "0.002", "--no-figures", "--no-ease"),
        watch="wall seconds", figure=_scale_wall,
        targets=(Target("share outside the models' fit and recommend", _scale_share, 0.20,
                        True),
                 Target("peak RSS GB", _scale_rss, 3.0, True)),
    ),
)


def relative_spread(values: list[float]) -> float:
    """``(max - min) / median`` of ``values``; 0 for one value, inf for a zero median."""
    if len(values) < 2:
        return 0.0
    mid = statistics.median(values)
    if mid == 0:
        return 0.0 if max(values) == min(values) else float("inf")
    return (max(values) - min(values)) / abs(mid)


def run_until_stable(once: Callable[[], dict], figure: Callable[[dict], float], *,
                     min_rounds: int, max_rounds: int, spread: float) -> dict:
    """Call ``once`` in rounds until ``figure`` over the rounds spreads by <= ``spread``.

    At least ``min_rounds`` and at most ``max_rounds`` rounds. Returns the rounds' outputs,
    the watched values, their median and relative spread, and whether it settled.
    """
    rounds, values = [], []
    while True:
        before = os.getloadavg()[0]
        start = time.perf_counter()
        out = once()
        rounds.append({"seconds": time.perf_counter() - start, "load_average_before": before,
                       "load_average_after": os.getloadavg()[0], "out": out})
        values.append(float(figure(out)))
        settled = len(values) >= min_rounds and relative_spread(values) <= spread
        if settled or len(values) >= max_rounds:
            break
    return {"values": values, "median": statistics.median(values),
            "spread": relative_spread(values), "stable": bool(settled), "rounds": rounds}


def _machine() -> dict:
    import numpy as np

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=False, cwd=Path(__file__).parent).stdout.strip() or None
    except OSError:
        commit = None
    return {"commit": commit, "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(), "numpy": np.__version__,
            "cpus": os.cpu_count(), "platform": platform.platform()}


def _workload_args(workload: Workload, quick: bool) -> argparse.Namespace:
    module = importlib.import_module(workload.module)
    parser = argparse.ArgumentParser(prog=f"bench perf {workload.name}")
    module.add_arguments(parser)
    args = parser.parse_args(list(workload.quick_argv if quick else workload.argv))
    if workload.name == "topk":  # what topk.run sets up before it times
        from bench.models import topk

        args.block_rows = topk.BLOCK_ROWS
        args.argv = []
    return args


def bench_suite(args) -> dict:
    chosen = [w for w in WORKLOADS if w.name in args.only]
    out: dict = {"machine": _machine(), "quick": args.quick,
                 "stopping": {"min_rounds": args.min_rounds, "max_rounds": args.max_rounds,
                              "spread": args.spread},
                 "load_average_before": os.getloadavg(), "workloads": {}}
    for workload in chosen:
        module = importlib.import_module(workload.module)
        fn = getattr(module, workload.function)
        wargs = _workload_args(workload, args.quick)
        print(f"[suite] {workload.name}: bench perf {workload.name} "
              f"{' '.join(workload.quick_argv if args.quick else workload.argv)}", flush=True)
        result = run_until_stable(lambda fn=fn, wargs=wargs: fn(wargs), workload.figure,
                                  min_rounds=args.min_rounds, max_rounds=args.max_rounds,
                                  spread=args.spread)
        result["watch"] = workload.watch
        result["argv"] = list(workload.quick_argv if args.quick else workload.argv)
        result["targets"] = {
            t.name: t.judge([t.figure(r["out"]) for r in result["rounds"]])
            for t in workload.targets
        }
        out["workloads"][workload.name] = result
    out["load_average_after"] = os.getloadavg()
    judged = [t for w in out["workloads"].values() for t in w["targets"].values()]
    out["all_targets_met"] = bool(judged) and all(t["met"] for t in judged) and not args.quick
    out["all_stable"] = all(w["stable"] for w in out["workloads"].values())
    return out


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _print(out: dict) -> None:
    m = out["machine"]
    print(f"\nperf suite at {m['commit'] or 'an unknown commit'} on {m['cpus']} CPUs, "
          f"{m['date']}; load average before {out['load_average_before'][0]:.2f}, after "
          f"{out['load_average_after'][0]:.2f}" + (" (QUICK: toy sizes)" if out["quick"] else ""))
    print(f"{'workload':10s} {'watched figure':28s} {'median':>10s} {'spread':>7s} "
          f"{'rounds':>6s}  stable")
    for name, w in out["workloads"].items():
        print(f"{name:10s} {w['watch']:28s} {_fmt(w['median']):>10s} {w['spread']:7.1%} "
              f"{len(w['values']):6d}  {'yes' if w['stable'] else 'NO (figures are noisy)'}")
    print(f"\n{'target':48s} {'value':>10s} {'limit':>18s}  verdict")
    for name, w in out["workloads"].items():
        for tname, t in w["targets"].items():
            verdict = "n/a (quick)" if out["quick"] else ("met" if t["met"] else "MISSED")
            print(f"{name + ': ' + tname:48s} {_fmt(t['value']):>10s} "
                  f"{t['direction'] + ' ' + _fmt(t['limit']):>18s}  {verdict}")


def add_arguments(p) -> None:
    names = [w.name for w in WORKLOADS]
    p.add_argument("--only", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                   default=names, help=f"comma-separated subset of {','.join(names)}")
    p.add_argument("--min-rounds", type=int, default=2, help="rounds before stopping (2)")
    p.add_argument("--max-rounds", type=int, default=4, help="rounds at most (4)")
    p.add_argument("--spread", type=float, default=0.10,
                   help="stop when (max - min) / median of the watched figure is at most "
                        "this (0.10)")
    p.add_argument("--quick", action="store_true", help="toy sizes, to try the command out")
    add_json_option(p)


def run(args, parser) -> int:
    unknown = sorted(set(args.only) - {w.name for w in WORKLOADS})
    if unknown or not args.only:
        parser.error(f"--only: expected some of {[w.name for w in WORKLOADS]}, got {args.only}")
    if not 1 <= args.min_rounds <= args.max_rounds:
        parser.error("--min-rounds and --max-rounds: need 1 <= min-rounds <= max-rounds")
    if not args.spread >= 0:
        parser.error("--spread must be >= 0")
    out = bench_suite(args)
    return emit(out, args.json, _print)
