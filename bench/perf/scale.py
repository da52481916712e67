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
default config) on the run's training part (kept by a wrapper around the run's executor)
and records the error it refuses with, how long that took and how much
the RSS grew (EASE must refuse before it allocates its dense item x item matrices).

``--executor ray`` runs the cells as Ray tasks (``executor=ray executor.num_cpus=N``,
``--num-cpus``, default 2: a local cluster this child starts; its start-up is timed
apart). Observers cannot cross processes, so each task runs the cell with its own stage
meter and writes its figures to a file the child reads after the run
(:class:`WorkerProbe`): per cell the worker's pid, wall and CPU seconds, its stages,
the RSS at the start and end (anonymous and shared-memory parts: object-store pages a
worker reads are shared memory) and the worker's peak RSS (``ru_maxrss``); the table then
shows the workers' ``fit``/``recommend``/``evaluate`` rows (summed over cells, which
overlap in time) and one row per worker process. The parent also samples the machine's
``MemAvailable`` every 0.5 s: the drop from before the run is the footprint of every
process, Ray's object store included (and anything else the machine ran meanwhile).

The generated rows are cached (``dataset.cache_dir``, :mod:`bench.data.cache`) in
``--data-cache`` (default ``$BENCH_CACHE_DIR`` or ``~/.cache/recspectrum``; about 325 MB
at scale 1): the first run generates and validates them and writes the cache, a repeated
run reads them back (checked against their fingerprint) as a user's own data would be
read. Each run says which it did (``data cache``, ``data generated, cached`` or
``data generated``) and its own share outside fit and recommend; ``--cold-cache`` caches
in a fresh temporary folder, so ``--repeats 2 --cold-cache`` measures both in one
invocation, and ``--no-data-cache`` generates every time. Issue 19's target figure is
the cached run's.

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

from bench.perf.common import StageMeter, add_json_option, emit, proc_kb, rss_kb

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


def overrides(scale: float, split: str, models: list[str], seed: int, figures: bool,
              executor: str = "local", num_cpus: int | None = None,
              data_cache: str | None = None) -> list[str]:
    """Hydra overrides of the scale run (``executor=ray executor.num_cpus=N`` for Ray;
    ``data_cache``: the synthetic data's cache folder, ``None`` for none)."""
    sizes = shape(scale)
    if data_cache is not None and "'" in data_cache:  # run() refuses it first
        raise ValueError(f"data_cache: a folder name without a quote, got {data_cache!r}")
    cache = [f"dataset.cache_dir='{data_cache}'"] if data_cache is not None else []
    ray = ["executor=ray", f"executor.num_cpus={num_cpus}" if num_cpus else
           "executor.num_cpus=null"] if executor == "ray" else []
    return [*ray,
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
        *cache,
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
    """An executor that keeps the main split of the first cell it is given, then hands
    the cells to ``executor`` (local or Ray): the run's training rows for the cf_ease
    check, without splitting again."""

    def __init__(self, executor) -> None:
        self.executor = executor
        self.split = None

    def run(self, cells, inputs, env):
        from bench.cells import MAIN

        for cell, cell_inputs in zip(cells, inputs, strict=True):
            if self.split is None and cell.protocol == MAIN:
                self.split = cell_inputs.evaluation.split
        return self.executor.run(cells, inputs, env)


class WorkerProbe:
    """The cell function of a Ray run: runs the cell in its worker with a stage meter
    attached, and writes the worker's own figures for that cell — wall and CPU seconds,
    the stages inside the cell, the RSS at the start and at the end (anonymous and
    shared-memory parts: object-store pages a worker reads count as shared) and the
    worker's peak RSS so far (``ru_maxrss``; a worker may run several cells) — as one
    JSON file in ``folder`` (observers cannot cross processes)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __call__(self, cell, inputs, env):
        from dataclasses import replace

        from bench.atomic import atomic_write_text
        from bench.cells import run_cell
        from bench.observe import Observers

        m = meter()
        env = replace(env, observers=Observers(m))
        rss0, start = rss_kb(), resource.getrusage(resource.RUSAGE_SELF)
        t = time.perf_counter()
        with m.sampling():
            out = run_cell(cell, inputs, env)
        end = resource.getrusage(resource.RUSAGE_SELF)
        record = {
            "model": cell.model, "fold": cell.fold, "seed": cell.seed, "pid": os.getpid(),
            "wall_seconds": time.perf_counter() - t,
            "cpu_seconds": (end.ru_utime - start.ru_utime) + (end.ru_stime - start.ru_stime),
            "rss_start_gb": rss0 / 1e6, "rss_end_gb": rss_kb() / 1e6,
            "rss_anon_end_gb": rss_kb("RssAnon") / 1e6,
            "rss_shmem_end_gb": rss_kb("RssShmem") / 1e6,
            # the kernel updates the high-water mark lazily: never below the current RSS
            "worker_peak_rss_gb": max(end.ru_maxrss, rss_kb("VmHWM"), rss_kb()) / 1e6,
            "stages": m.rows(),
        }
        name = f"{cell.model}-{cell.fold}-{cell.seed}-{os.getpid()}-{time.time_ns()}.json"
        atomic_write_text(Path(self.folder) / name, json.dumps(record))
        return out


def ray_executor(cfg, folder: str):
    """The executor the composed ``executor=ray`` config names, running
    :class:`WorkerProbe` in its tasks; Ray's start-up is timed here, not in the run."""
    import ray
    from omegaconf import OmegaConf

    from bench.executor.ray import RayExecutor

    keys = OmegaConf.to_container(cfg.executor, resolve=True)
    keys.pop("kind", None)
    t = time.perf_counter()
    if keys.get("address") is None:
        ray.init(num_cpus=keys.get("num_cpus"), include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=keys["address"], log_to_driver=False)
    startup = time.perf_counter() - t
    Path(folder).mkdir(parents=True, exist_ok=True)
    return RayExecutor(**keys, cell_function=WorkerProbe(folder)), startup


def worker_figures(folder: str) -> dict:
    """The :class:`WorkerProbe` files of a run: each cell's, and per worker process."""
    cells = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
    workers: dict[str, dict] = {}
    for c in cells:
        w = workers.setdefault(str(c["pid"]), {"cells": [], "peak_rss_gb": 0.0,
                                                "cpu_seconds": 0.0})
        w["cells"].append(c["model"])
        w["peak_rss_gb"] = max(w["peak_rss_gb"], c["worker_peak_rss_gb"])
        w["cpu_seconds"] += c["cpu_seconds"]
    return {"cells": cells, "workers": workers}


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
    m = meter()
    kind = spec.get("executor", "local")
    ov = overrides(spec["scale"], spec["split"], spec["models"], spec["seed"], spec["figures"],
                   kind, spec.get("num_cpus"), spec.get("data_cache"))
    register()  # config.yaml extends the schema
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=ov)
    entry, before = cache_state(cfg)
    if spec.get("verbose"):
        logging.basicConfig(
            level=logging.INFO, format="[%(asctime)s] %(message)s", stream=sys.stderr
        )
    ray_out, startup = None, None
    if kind == "ray":
        probes = str(Path(spec["output_dir"]).parent / "workers")
        inner, startup = ray_executor(cfg, probes)
    else:
        inner = LocalExecutor()
    keeper = SplitKeeper(inner)
    with m.sampling():
        t, c = time.perf_counter(), time.process_time()
        result = run_experiment(cfg, output_dir=spec["output_dir"], observers=Observers(m),
                                executor=keeper)
        run_s, run_cpu = time.perf_counter() - t, time.process_time() - c
    hwm_run = rss_kb("VmHWM") / 1e6
    data_source = load_source(entry, before)
    stages = m.rows()
    if kind == "ray":
        ray_out = worker_figures(probes)
        stages = merge_worker_stages(stages, ray_out["cells"])
    split = keeper.split
    ease = ease_refusal(split.train) if spec["ease"] else None
    return {
        "executor": kind,
        "ray_startup_seconds": startup,
        "ray": ray_out,
        "import_seconds": t_import,
        "data_cache": spec.get("data_cache"),
        "data_source": data_source,
        "run_seconds": run_s,
        "run_cpu_seconds": run_cpu,
        "process_seconds": time.perf_counter() - t_process,
        "peak_rss_gb": hwm_run,
        "runner_timings": dict(result.timings),
        "stages": stages,
        "rows": {"train": len(split.train), "test": len(split.test)},
        "evaluated_users": {r.model: r.n_users for r in result.models},
        "metrics": {
            r.model: {k: r.metrics[k] for k in ("precision@10", "ndcg@10") if k in r.metrics}
            for r in result.models
        },
        "ease": ease,
    }


def cache_state(cfg) -> tuple[Path | None, float | None]:
    """The synthetic data's cache entry for ``cfg`` (``None`` without a cache) and the
    time its ``meta.json`` was last written (``None`` when absent)."""
    from omegaconf import OmegaConf

    from bench.data.synthetic import cache_entry

    node = OmegaConf.to_container(cfg.dataset, resolve=True)
    node.pop("_target_", None)
    cache_dir = node.pop("cache_dir", None)
    entry = cache_entry(cache_dir, **node) if cache_dir is not None else None
    return entry, _meta_time(entry)


def _meta_time(entry: Path | None) -> float | None:
    try:
        return None if entry is None else (entry / "meta.json").stat().st_mtime_ns
    except OSError:
        return None


def load_source(entry: Path | None, before: float | None) -> str:
    """Where the run's rows came from: ``cache`` (an entry there before, untouched),
    ``generated, cached`` (entry written by this run), ``generated`` (no cache, or it
    could not be written)."""
    after = _meta_time(entry)
    if entry is None or after is None:
        return "generated"
    return "cache" if after == before else "generated, cached"


def merge_worker_stages(stages: dict, cells: list[dict]) -> dict:
    """The driver's stage rows plus the workers' (``fit cf_als``, ``evaluate``, ...),
    summed over cells; the driver's ``cell`` rows (announced as cells finish, with the
    task's seconds) are replaced by the workers' own."""
    out = {k: v for k, v in stages.items() if not k.startswith("cell ")}
    for c in cells:
        for name, row in c["stages"].items():
            into = out.setdefault(name, {"seconds": 0.0, "self_seconds": 0.0,
                                         "cpu_seconds": 0.0, "calls": 0, "peak_rss_gb": 0.0})
            for f in ("seconds", "self_seconds", "cpu_seconds", "calls"):
                into[f] += row[f]
            into["peak_rss_gb"] = max(into["peak_rss_gb"], row.get("peak_rss_gb", 0.0))
    return out


# ---------------------------------------------------------------------- parent side
def mem_available_kb() -> int:
    """The machine's ``MemAvailable`` in kB (0 without ``/proc``)."""
    return proc_kb("/proc/meminfo", "MemAvailable")


class MemorySampler:
    """The lowest ``MemAvailable`` while the ``with`` block runs (read every 0.5 s)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.lowest = mem_available_kb()

    def __enter__(self) -> MemorySampler:
        import threading

        self.stop = threading.Event()

        def sample() -> None:
            while not self.stop.wait(self.interval):
                self.lowest = min(self.lowest, mem_available_kb())

        self.thread = threading.Thread(target=sample, name="perf-mem-sampler", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.lowest = min(self.lowest, mem_available_kb())

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
        available0 = mem_available_kb()
        t = time.perf_counter()
        with MemorySampler() as low:
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
    out["mem_available_before_gb"] = available0 / 1e6
    out["machine_memory_peak_gb"] = (available0 - low.lowest) / 1e6
    return out


def bench_scale(args) -> dict:
    from bench.data.cache import default_cache_dir

    spec = {
        "scale": args.scale,
        "split": args.split,
        "models": args.models,
        "seed": args.seed,
        "figures": not args.no_figures,
        "ease": not args.no_ease,
        "verbose": args.verbose,
        "output_dir": str(args.output_dir) if args.output_dir else None,
        "executor": args.executor,
        "num_cpus": args.num_cpus,
        "data_cache": None if args.no_data_cache else str(args.data_cache or default_cache_dir()),
    }
    if args.cold_cache and not args.no_data_cache:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="perf-scale-cache-") as tmp:
            spec["data_cache"] = tmp
            runs = [run_child(spec, args.timeout) for _ in range(args.repeats)]
        spec["data_cache"] = "(a fresh temporary folder)"
    else:
        runs = [run_child(spec, args.timeout) for _ in range(args.repeats)]
    for r in runs:  # each run's own share: a cached and a generating run differ
        lib = sum(v["seconds"] for k, v in r["stages"].items()
                  if k.startswith(("fit ", "recommend ")))
        r["fit_recommend_seconds"] = lib
        r["harness_share"] = 1 - lib / r["wall_seconds"]
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
        "executor": args.executor,
        "num_cpus": args.num_cpus if args.executor == "ray" else None,
        "data_cache": spec["data_cache"],
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
        f"models={','.join(out['models'])}; executor={out.get('executor', 'local')}; "
        f"{out['repeats']} run(s), each a fresh process "
        f"on {out['cores']} cores"
    )
    print(
        f"train {last['rows']['train']:,} rows, test {last['rows']['test']:,} rows; "
        f"evaluated users: {last['evaluated_users']}"
    )
    for i, r in enumerate(out["runs"], start=1):
        print(f"run {i}: data {r.get('data_source', 'generated')} (load "
              f"{r['stages']['load']['seconds']:.2f} s), wall {r['wall_seconds']:.2f} s, "
              f"outside fit and recommend {r.get('harness_share', float('nan')):.1%}")
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
        f"the models' own fit and recommend: {out['fit_recommend_seconds']:.2f} s; everything "
        f"else: {out['harness_share']:.1%} of the wall time (issue 19's target: <= 20 %)"
    )
    verdict = "met" if out["meets_targets"] else "MISSED"
    print(
        f"targets {verdict}: wall {total:.0f} s = {out['wall_vs_target']:.2f} x "
        f"{out['target_seconds']:.0f} s; peak RSS {out['peak_rss_gb']:.2f} GB = "
        f"{out['rss_vs_target']:.2f} x {out['target_rss_gb']:.0f} GB"
    )
    print(f"machine memory in use at the peak (MemAvailable drop, every process): "
          f"{last['machine_memory_peak_gb']:.2f} GB of {last['mem_available_before_gb']:.2f} "
          f"GB available before")
    if last.get("ray"):
        _print_workers(last, out["num_cpus"])
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


def _print_workers(run: dict, num_cpus: int | None) -> None:
    ray = run["ray"]
    print(f"ray: local cluster of {num_cpus} CPUs started in "
          f"{run['ray_startup_seconds']:.2f} s, then run_experiment {run['run_seconds']:.2f} s "
          f"(the rest of the child's wall: imports, shutting Ray down); "
          f"{len(ray['cells'])} cells on {len(ray['workers'])} worker processes")
    print(f"{'cell':24s} {'worker':>8s} {'wall s':>8s} {'cpu s':>8s} {'fit s':>8s} "
          f"{'RSS start':>9s} {'RSS end':>8s} {'anon':>6s} {'shm':>6s} {'worker peak GB':>14s}")
    for c in ray["cells"]:
        fit = next((v["seconds"] for k, v in c["stages"].items() if k.startswith("fit ")), 0.0)
        print(f"{c['model']:24s} {c['pid']:8d} {c['wall_seconds']:8.2f} {c['cpu_seconds']:8.2f} "
              f"{fit:8.2f} {c['rss_start_gb']:9.2f} {c['rss_end_gb']:8.2f} "
              f"{c['rss_anon_end_gb']:6.2f} {c['rss_shmem_end_gb']:6.2f} "
              f"{c['worker_peak_rss_gb']:14.2f}")


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
    q.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="run the cells in the child (local) or as Ray tasks (ray)")
    q.add_argument("--num-cpus", type=int, default=2,
                   help="CPUs of the local Ray cluster (--executor ray; default 2)")
    q.add_argument("--no-figures", action="store_true", help="report without figures")
    q.add_argument("--data-cache", type=str, default=None,
                   help="folder caching the generated rows (dataset.cache_dir; default "
                        "$BENCH_CACHE_DIR or ~/.cache/recspectrum): a repeated run reads them")
    q.add_argument("--no-data-cache", action="store_true",
                   help="generate the data in every run, keep nothing")
    q.add_argument("--cold-cache", action="store_true",
                   help="cache in a fresh temporary folder: run 1 generates, later repeats "
                        "read (both figures in one invocation)")
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
    if args.num_cpus < 1:
        parser.error("--num-cpus must be positive")
    if args.data_cache is not None and "'" in args.data_cache:
        parser.error(f"--data-cache: expected a folder name without a quote (it goes into "
                     f"a quoted Hydra override), got {args.data_cache!r}")
    if args.timeout is not None and not args.timeout > 0:
        parser.error(f"--timeout: expected a number of seconds > 0, got {args.timeout}")
    out = bench_scale(args)
    return emit(out, args.json, _print)
