"""``bench perf scale``: the harness end to end on an ml-25m-shaped synthetic dataset.

``bench perf scale`` (``--scale 0.1`` for a quick iteration)

``scale`` runs :func:`bench.runner.run_experiment` in a fresh child process on
``dataset=synthetic`` shaped like MovieLens 25M times ``--scale`` (162,541 users,
59,047 items, 25,000,095 interactions at 1.0; users, items and interactions all scale),
with ``split=temporal_warm``, ``model=[rule_popular,cf_als]``, ``tracker=none``, cold
start off and the report on (the config is composed with Hydra's compose API, as
``tests/test_experiments.py`` does). ``--repeats`` runs, each in its own child.

Measured in the child, per stage the run layer announces (:mod:`bench.observe`; one
:class:`~bench.perf.common.StageMeter` is passed to the run as its observer, nothing is
patched): wall, exclusive and CPU seconds and the peak resident set size (RSS) while the
stage ran. Rows: ``tracking`` (building the tracker, and every tracker call), ``load``
(generating and validating the synthetic data), ``split``, ``audit``, ``context``
(relevance and history of the evaluated users), ``cell <model>`` (one model's whole
cell), inside it ``fit <model>``, ``recommend <model>``, ``evaluate`` (metrics,
segments) and ``artifacts`` (per-model files), and ``reduce`` (results.json, statistics,
report.md, figures). A sampler thread reads ``VmRSS`` from ``/proc/self/status`` every
20 ms and charges each sample to every stage open at that moment; the whole-run peak is
the kernel's high-water mark ``VmHWM``, cross-checked by the parent with
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (each run is a fresh child, so that figure is
its own). The share of the wall time that is not the models' own fit and recommend is
printed (issue 19's target: <= 20 %). After the run the child fits ``cf_ease`` (its
default config) on the run's training part (kept by the cell function the run's
executor calls) and records the error it refuses with, how long that took and how much
the RSS grew (EASE must refuse before it allocates its dense item x item matrices).

Targets (issue 6): the run completes within 10 minutes and 8 GB peak RSS on 2 cores.
Timings depend on what else runs on the machine: the load average is printed with the
figures. ``--json PATH`` writes the numbers (``--json`` alone prints JSON instead of the
table).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.perf.common import StageMeter, add_json_option, emit, rss_kb

HELP = "ml-25m-shaped synthetic run end to end: wall time and peak RSS per stage"

#: MovieLens 25M's shape: ratings, users, movies that have at least one rating.
ML25M = {"n_interactions": 25_000_095, "n_users": 162_541, "n_items": 59_047}
TARGET_SECONDS = 600.0
TARGET_RSS_GB = 8.0
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def shape(scale: float) -> dict[str, int]:
    """The synthetic dataset's sizes at ``scale`` x ml-25m (at least 10 users, 10 items)."""
    n_users = max(10, round(ML25M["n_users"] * scale))
    n_items = max(10, round(ML25M["n_items"] * scale))
    n_interactions = min(max(n_users, round(ML25M["n_interactions"] * scale)), n_users * n_items)
    return {"n_users": n_users, "n_items": n_items, "n_interactions": n_interactions}


def overrides(scale: float, split: str, models: list[str], seed: int, figures: bool) -> list[str]:
    """Hydra overrides of the scale run."""
    sizes = shape(scale)
    return [
        "~experiment",
        "dataset=synthetic",
        *(f"dataset.{k}={v}" for k, v in sizes.items()),
        f"split={split}",
        f"model=[{','.join(models)}]",
        "tracker=none",
        "cold_start.user=null",
        "cold_start.item=null",
        f"report.figures={'true' if figures else 'false'}",
        f"seed={seed}",
        "name=perf_scale",
    ]


# ---------------------------------------------------------------------- child side
#: stages charged to one row per model config (``fit cf_als``); the others, one row each
PER_MODEL = ("cell", "fit", "recommend")


def row(stage: str, info) -> str:
    """The table row a stage is charged to: ``fit cf_als``, or the stage's name."""
    return f"{stage} {info['model']}" if stage in PER_MODEL and "model" in info else stage


def meter() -> StageMeter:
    """The observer of a scale run: wall, CPU and peak RSS per row."""
    return StageMeter(row=row, rss=True)


class SplitKeeper:
    """A cell function that keeps the main split of the first cell it runs, then runs the
    cell as usual (``LocalExecutor(cell_function=keeper)``): the run's training rows for
    the cf_ease check, without splitting again."""

    def __init__(self) -> None:
        self.split = None

    def __call__(self, cell, inputs, env):
        from bench.cells import MAIN, run_cell

        if self.split is None and cell.protocol == MAIN:
            self.split = inputs.evaluation.split
        return run_cell(cell, inputs, env)


def ease_refusal(train) -> dict:
    """Fit ``cf_ease`` (its config's defaults) on ``train``: it must refuse, and early."""
    from hydra import compose, initialize_config_dir

    from bench.errors import ConfigError
    from bench.schema import register
    from bench.targets import build

    register()  # config.yaml extends the schema
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["~experiment", "model=[cf_ease]", "tracker=none"])
    import numpy as np
    from omegaconf import OmegaConf

    from bench.models.collaborative.ease import BYTES_PER_PAIR

    node = OmegaConf.to_container(cfg.models.cf_ease, resolve=True)
    n = int(np.count_nonzero(np.bincount(train.items, minlength=train.n_items)))
    need_gib = BYTES_PER_PAIR * n * n / 1024**3
    out = {"items": n, "need_gib": need_gib, "max_memory_gb": node.get("max_memory_gb")}
    out["expected_refusal"] = need_gib > float(out["max_memory_gb"])
    if not out["expected_refusal"]:  # it would fit: nothing to show, and slow to run
        return {**out, "ran": False}
    model = build(node, "models.cf_ease")
    rss0, hwm0 = rss_kb(), rss_kb("VmHWM")
    t = time.perf_counter()
    try:
        model.fit(train)
    except ConfigError as exc:
        message, refused = str(exc), True
    else:
        message, refused = "", False
    return {
        **out,
        "ran": True,
        "refused": refused,
        "message": message,
        "seconds": time.perf_counter() - t,
        "rss_growth_gb": (rss_kb() - rss0) / 1e6,
        "hwm_growth_gb": (rss_kb("VmHWM") - hwm0) / 1e6,
    }


def child_main(spec: dict) -> dict:
    """Run one scale experiment in this (fresh) process and return its figures."""
    t_process = time.perf_counter()
    import logging

    from hydra import compose, initialize_config_dir

    from bench.executor import LocalExecutor
    from bench.observe import Observers
    from bench.runner import run_experiment
    from bench.schema import register

    t_import = time.perf_counter() - t_process
    m, keeper = meter(), SplitKeeper()
    ov = overrides(spec["scale"], spec["split"], spec["models"], spec["seed"], spec["figures"])
    register()  # config.yaml extends the schema
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=ov)
    if spec.get("verbose"):
        logging.basicConfig(
            level=logging.INFO, format="[%(asctime)s] %(message)s", stream=sys.stderr
        )
    with m.sampling():
        t, c = time.perf_counter(), time.process_time()
        result = run_experiment(cfg, output_dir=spec["output_dir"], observers=Observers(m),
                                executor=LocalExecutor(cell_function=keeper))
        run_s, run_cpu = time.perf_counter() - t, time.process_time() - c
    hwm_run = rss_kb("VmHWM") / 1e6
    split = keeper.split
    ease = ease_refusal(split.train) if spec["ease"] else None
    return {
        "import_seconds": t_import,
        "run_seconds": run_s,
        "run_cpu_seconds": run_cpu,
        "process_seconds": time.perf_counter() - t_process,
        "peak_rss_gb": hwm_run,
        "runner_timings": dict(result.timings),
        "stages": m.rows(),
        "rows": {"train": len(split.train), "test": len(split.test)},
        "evaluated_users": {r.model: r.n_users for r in result.models},
        "metrics": {
            r.model: {k: r.metrics[k] for k in ("precision@10", "ndcg@10") if k in r.metrics}
            for r in result.models
        },
        "ease": ease,
    }


# ---------------------------------------------------------------------- parent side
def run_child(spec: dict, timeout: float | None) -> dict:
    """One fresh child process running :func:`child_main`; adds the parent's view."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="perf-scale-") as tmp:
        spec = {**spec, "output_dir": spec.get("output_dir") or str(Path(tmp) / "run")}
        out_path = Path(tmp) / "child.json"
        code = (
            "import json, sys; from bench.perf.scale import child_main; "
            f"json.dump(child_main(json.loads(sys.argv[1])), open({str(out_path)!r}, 'w'))"
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = os.getloadavg()
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", code, json.dumps(spec)], timeout=timeout, check=False
        )
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"scale: the child process failed (exit code {proc.returncode})")
        out = json.loads(out_path.read_text())
    out["process_wall_seconds"] = wall
    # the target is the run: leave out the cf_ease check that follows it in the child
    ease = out.get("ease") or {}
    out["wall_seconds"] = wall - ease.get("seconds", 0.0)
    out["child_cpu_seconds"] = (after.ru_utime - before.ru_utime) + (
        after.ru_stime - before.ru_stime
    )
    # ru_maxrss (kB on Linux) is the largest child so far; every run is a fresh child
    # and the parent allocates little, so a rise above earlier runs is this run's peak
    out["maxrss_children_gb"] = after.ru_maxrss / 1e6
    out["loadavg_before"] = load
    out["loadavg_after"] = os.getloadavg()
    return out


def bench_scale(args) -> dict:
    spec = {
        "scale": args.scale,
        "split": args.split,
        "models": args.models,
        "seed": args.seed,
        "figures": not args.no_figures,
        "ease": not args.no_ease,
        "verbose": args.verbose,
        "output_dir": str(args.output_dir) if args.output_dir else None,
    }
    runs = [run_child(spec, args.timeout) for _ in range(args.repeats)]
    walls = [r["wall_seconds"] for r in runs]
    peaks = [r["peak_rss_gb"] for r in runs]
    stage_names = list(dict.fromkeys(s for r in runs for s in r["stages"]))
    stages = {}
    for s in stage_names:
        secs = [r["stages"][s]["seconds"] for r in runs if s in r["stages"]]
        stages[s] = {
            "median_seconds": statistics.median(secs),
            "min_seconds": min(secs),
            "max_seconds": max(secs),
            "median_self_seconds": statistics.median(
                r["stages"][s]["self_seconds"] for r in runs if s in r["stages"]
            ),
            "median_cpu_seconds": statistics.median(
                r["stages"][s]["cpu_seconds"] for r in runs if s in r["stages"]
            ),
            "peak_rss_gb": max(r["stages"][s]["peak_rss_gb"] for r in runs if s in r["stages"]),
            "rss_before_gb": runs[-1]["stages"].get(s, {}).get("rss_before_gb"),
        }
    median_wall = statistics.median(walls)
    library = sum(v["median_seconds"] for k, v in stages.items()
                  if k.startswith(("fit ", "recommend ")))
    return {
        "workload": "scale",
        "scale": args.scale,
        "shape": shape(args.scale),
        "split": args.split,
        "models": args.models,
        "repeats": args.repeats,
        "cores": os.cpu_count(),
        "median_wall_seconds": median_wall,
        "min_wall_seconds": min(walls),
        "max_wall_seconds": max(walls),
        "peak_rss_gb": max(peaks),
        "target_seconds": TARGET_SECONDS,
        "target_rss_gb": TARGET_RSS_GB,
        "wall_vs_target": median_wall / TARGET_SECONDS,
        "rss_vs_target": max(peaks) / TARGET_RSS_GB,
        "meets_targets": median_wall <= TARGET_SECONDS and max(peaks) <= TARGET_RSS_GB,
        "stages": stages,
        "fit_recommend_seconds": library,
        "harness_share": 1 - library / median_wall,
        "runs": runs,
    }


def _print(out: dict) -> None:
    sh = out["shape"]
    last = out["runs"][-1]
    print(
        f"scale {out['scale']:g} x ml-25m: {sh['n_interactions']:,} interactions, "
        f"{sh['n_users']:,} users, {sh['n_items']:,} items; split={out['split']}, "
        f"models={','.join(out['models'])}; {out['repeats']} run(s), each a fresh process "
        f"on {out['cores']} cores"
    )
    print(
        f"train {last['rows']['train']:,} rows, test {last['rows']['test']:,} rows; "
        f"evaluated users: {last['evaluated_users']}"
    )
    loads = [r["loadavg_before"][0] for r in out["runs"]] + [out["runs"][-1]["loadavg_after"][0]]
    print(f"load average (1 min) seen: {min(loads):.2f}-{max(loads):.2f}")
    total = out["median_wall_seconds"]
    print(
        f"{'stage':32s} {'median s':>9s} {'self s':>8s} {'min':>8s} {'max':>8s} "
        f"{'cpu s':>8s} {'share':>6s} {'peak RSS GB':>11s}"
    )
    for name, s in out["stages"].items():
        print(
            f"{name:32s} {s['median_seconds']:9.2f} {s['median_self_seconds']:8.2f} "
            f"{s['min_seconds']:8.2f} "
            f"{s['max_seconds']:8.2f} {s['median_cpu_seconds']:8.2f} "
            f"{s['median_seconds'] / total:6.1%} {s['peak_rss_gb']:11.2f}"
        )
    print(
        f"{'whole child process':32s} {total:9.2f} {'':8s} {out['min_wall_seconds']:8.2f} "
        f"{out['max_wall_seconds']:8.2f} {last['child_cpu_seconds']:8.2f} {1:6.1%} "
        f"{out['peak_rss_gb']:11.2f}"
    )
    print(
        f"(stages nest: fit, recommend, evaluate, artifacts inside cell; tracking inside "
        f"the others; imports took {last['import_seconds']:.2f} s; getrusage children maxrss "
        f"{last['maxrss_children_gb']:.2f} GB)"
    )
    print(
        f"outside the models' own fit and recommend ({out['fit_recommend_seconds']:.2f} s): "
        f"{out['harness_share']:.1%} of the wall time"
    )
    verdict = "met" if out["meets_targets"] else "MISSED"
    print(
        f"targets {verdict}: wall {total:.0f} s = {out['wall_vs_target']:.2f} x "
        f"{out['target_seconds']:.0f} s; peak RSS {out['peak_rss_gb']:.2f} GB = "
        f"{out['rss_vs_target']:.2f} x {out['target_rss_gb']:.0f} GB"
    )
    ease = last.get("ease")
    if ease and not ease["ran"]:
        print(
            f"cf_ease not run: {ease['items']:,} training items need about "
            f"{ease['need_gib']:.1f} GiB, within max_memory_gb={ease['max_memory_gb']}"
        )
    elif ease:
        state = "refused" if ease["refused"] else "DID NOT refuse"
        print(
            f"cf_ease {state} ({ease['items']:,} training items, about {ease['need_gib']:.0f} "
            f"GiB needed) after {ease['seconds']:.2f} s, RSS +{ease['rss_growth_gb']:.2f} GB "
            f"(high-water mark +{ease['hwm_growth_gb']:.2f} GB): {ease['message']}"
        )


def add_arguments(q) -> None:
    q.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="size relative to ml-25m (users, items and interactions; default 1)",
    )
    q.add_argument("--repeats", type=int, default=1, help="runs, each in a fresh process")
    q.add_argument("--split", default="temporal_warm", choices=["temporal_warm", "temporal"])
    q.add_argument(
        "--models",
        type=lambda s: s.split(","),
        default=["rule_popular", "cf_als"],
        help="comma-separated model configs (default rule_popular,cf_als)",
    )
    q.add_argument("--seed", type=int, default=42)
    q.add_argument("--no-figures", action="store_true", help="report without figures")
    q.add_argument("--no-ease", action="store_true", help="skip the cf_ease refusal check")
    q.add_argument("--timeout", type=float, default=None, help="kill a run after this many s")
    q.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="keep the run's report here (default: a temporary folder)",
    )
    q.add_argument("--verbose", action="store_true", help="show the harness's log lines")
    add_json_option(q)


def run(args, parser) -> int:
    if not args.scale > 0 or args.repeats <= 0:
        parser.error("--scale and --repeats must be positive")
    if args.timeout is not None and not args.timeout > 0:
        parser.error(f"--timeout: expected a number of seconds > 0, got {args.timeout}")
    out = bench_scale(args)
    return emit(out, args.json, _print)
