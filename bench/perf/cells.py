"""``bench perf cells``: what one cell of each model config costs, at several data sizes.

``bench perf cells --interactions 1000000,4000000 --json costs.json``

For each size, a fresh child process composes ``experiment=spectrum_full`` (every model
config it lists, or ``--models``) on ``dataset=synthetic`` shaped like MovieLens 32M
(200,948 users, 87,585 items, 32,000,204 interactions at full size; users, items and
interactions scale together), ``split=holdout`` (20 % of each user's rows: the shape of
one fold of a user-stratified 5-fold split), one fold, one seed (``seed``, no
``seeds``), ``tracker=none``, cold start off, the report without figures. It then runs
:func:`bench.runner.run_experiment` with a cell function that **forks one process per
cell**: the data and the split are built once and shared copy-on-write, and each cell is
measured alone:

- CPU seconds of the cell (user + system, every thread, from ``wait4``'s rusage of its
  process), and per stage inside it (``fit``; ``recommend`` + ``evaluate`` +
  ``artifacts``) from :class:`~bench.perf.common.StageMeter` (``time.process_time``),
  so the figures are the work done, not how busy the machine was;
- wall seconds of the cell and of each stage;
- peak resident set size of the cell's process (``ru_maxrss``) and its growth over the
  size at the fork (what the cell adds to the shared inputs).

By default every cell runs with one thread (``--threads 1``: BLAS pools limited with
threadpoolctl, and every model key ``num_threads: 0`` set to 1), so a cell's CPU seconds
are its cost on one core. A cell is killed when it runs longer than ``--timeout`` or its
RSS exceeds ``--max-rss-gb`` (read every 0.2 s); it then counts as failed at that size,
with the limit it hit. The run's other stages (``load``: generating and validating the
data, ``split``, ``audit``, ``context``, ``reduce``) happen once in the size's process,
as on a driver, and are reported with their wall and CPU seconds.

Per model, the growth exponent of its CPU seconds (and of its memory growth) is the
slope of log(cost) over log(interactions) between the two largest sizes where it
finished. ``bench perf project --costs costs.json`` turns these figures into the wall
time of a full spectrum on N cores. The load average is printed before and after each
size. This module is a script: it prints.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.perf.common import StageMeter, add_json_option, emit, proc_kb, rss_kb

HELP = "per-cell CPU seconds and peak RSS of every spectrum_full model, at several sizes"

#: MovieLens 32M's shape: ratings, users, movies with at least one rating.
ML32M = {"n_interactions": 32_000_204, "n_users": 200_948, "n_items": 87_585}
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
#: how often the parent reads a cell process's RSS (seconds)
POLL_SECONDS = 0.2
#: stages of a cell after ``fit``: recommend, evaluate and write the per-model files
SERVE_STAGES = ("recommend", "evaluate", "artifacts")


def shape(n_interactions: int) -> dict[str, int]:
    """ml-32m's proportions at ``n_interactions`` (at least 10 users and 10 items)."""
    scale = n_interactions / ML32M["n_interactions"]
    n_users = max(10, round(ML32M["n_users"] * scale))
    n_items = max(10, round(ML32M["n_items"] * scale))
    return {"n_users": n_users, "n_items": n_items,
            "n_interactions": min(max(n_users, n_interactions), n_users * n_items)}


BASELINE = "rule_popular"
"""The spectrum's statistical baseline (``stats.baseline``): always run when ``--models``
includes it; without it, the run's first model takes its place."""


def overrides(n_interactions: int, models: list[str] | None, seed: int) -> list[str]:
    """Hydra overrides of one size's run."""
    out = [
        "experiment=spectrum_full",
        "dataset=synthetic",
        *(f"dataset.{k}={v}" for k, v in shape(n_interactions).items()),
        "split=holdout",
        "tracker=none",
        "cold_start.user=null",
        "cold_start.item=null",
        "report.figures=false",
        f"seed={seed}",
        "name=perf_cells",
    ]
    if models:
        out.append(f"model=[{','.join(models)}]")
        if BASELINE not in models:  # the experiment's baseline is not run: the first model
            out.append("stats.baseline=null")
    return out


def single_threaded(node):
    """``node`` (a model config as plain data) with every ``num_threads: 0`` set to 1."""
    if isinstance(node, dict):
        return {k: (1 if k == "num_threads" and v == 0 else single_threaded(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [single_threaded(v) for v in node]
    return node


def has_key(node, key: str) -> bool:
    """Does ``key`` occur anywhere in the nested config ``node``?"""
    if isinstance(node, dict):
        return key in node or any(has_key(v, key) for v in node.values())
    if isinstance(node, list):
        return any(has_key(v, key) for v in node)
    return False


def payload_bytes(obj, seen: set[int] | None = None) -> int:
    """Bytes of the numpy arrays (and sparse matrices, pandas objects) reachable from
    ``obj`` through dataclass fields, attributes, mappings and sequences, each counted
    once: what shipping ``obj`` to another process moves, give or take small objects."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    seen = set() if seen is None else seen
    if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes) if obj.base is None or id(obj.base) not in seen else 0
    if sp.issparse(obj):
        return sum(payload_bytes(getattr(obj, a, None), seen)
                   for a in ("data", "indices", "indptr", "row", "col"))
    if isinstance(obj, (pd.DataFrame, pd.Series, pd.Index)):
        return int(obj.memory_usage(deep=True).sum() if isinstance(obj, pd.DataFrame)
                   else obj.memory_usage(deep=True))
    if isinstance(obj, dict) or (hasattr(obj, "items") and hasattr(obj, "keys")):
        return sum(payload_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sum(payload_bytes(v, seen) for v in obj)
    fields = getattr(obj, "__dict__", None)
    if fields is None and hasattr(obj, "__slots__"):
        fields = {a: getattr(obj, a, None) for a in obj.__slots__}
    return sum(payload_bytes(v, seen) for v in (fields or {}).values())


# ---------------------------------------------------------------------- one cell, forked
def measure_cell(cell, inputs, env, threads: int) -> dict:
    """Run one cell in this (forked) process; its stage figures as plain data."""
    from threadpoolctl import threadpool_limits

    from bench.cells import run_cell
    from bench.observe import Observers
    from bench.record import ModelFailure

    meter = StageMeter(rss=True)
    env = replace(env, observers=Observers(meter))
    if threads == 1:
        inputs = replace(inputs, model_cfg=single_threaded(dict(inputs.model_cfg)))
    rss0 = rss_kb()
    with threadpool_limits(limits=threads), meter.sampling():
        out = run_cell(cell, inputs, env)
    rows = meter.rows()
    record = {"rss_start_gb": rss0 / 1e6, "stages": rows}
    if isinstance(out, ModelFailure):
        record["failure"] = out.to_json()
    return record


def _child(cell, inputs, env, threads: int, wfd: int) -> None:
    """The forked process: measure, write one JSON line to ``wfd``, exit (never return)."""
    code = 1
    try:
        record = measure_cell(cell, inputs, env, threads)
        data = json.dumps(record).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(wfd, view):]
        code = 0
    except BaseException as exc:  # report it to the parent, never unwind into its stack
        try:
            os.write(wfd, json.dumps({"crash": f"{type(exc).__name__}: {exc}"}).encode())
        except BaseException:
            pass
    finally:
        os._exit(code)


class ForkedCells:
    """A cell function (``LocalExecutor(cell_function=...)``) that runs each cell in a
    forked process and keeps one cost record per cell in :attr:`records`.

    The cell writes its files (``done.json`` last) in the forked process; the parent
    reads its output back with :func:`bench.cells.resume_cell`, so the run's reduce
    step sees the same output as from :func:`~bench.cells.run_cell`.
    """

    def __init__(self, *, threads: int, timeout: float, max_rss_gb: float,
                 seeded: dict[str, bool], threaded: dict[str, bool]):
        self.threads = threads
        self.timeout = timeout
        self.max_rss_kb = int(max_rss_gb * 1e6)
        self.seeded = seeded
        self.threaded = threaded
        self.records: list[dict] = []
        #: bytes of the arrays a distributed executor would ship for the first cell
        self.inputs_bytes: int | None = None

    def __call__(self, cell, inputs, env):
        if self.inputs_bytes is None:
            self.inputs_bytes = payload_bytes(inputs)
        sys.stdout.flush()
        sys.stderr.flush()
        rfd, wfd = os.pipe()
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child exits inside _child
            os.close(rfd)
            _child(cell, inputs, env, self.threads, wfd)
        os.close(wfd)
        data, killed = self._collect(pid, rfd, start)
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - start
        record = {
            "model": cell.model, "fold": cell.fold, "seed": cell.seed,
            "seeded": self.seeded.get(cell.model, False),
            "threaded": self.threaded.get(cell.model, False),
            "threads": self.threads, "wall_seconds": wall,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_gb": usage.ru_maxrss / 1e6,
        }
        child = {}
        if data:
            try:
                child = json.loads(data)
            except ValueError:
                child = {"crash": "unreadable record"}
        record.update(self._stages(child))
        if "rss_start_gb" in child:
            record["rss_start_gb"] = child["rss_start_gb"]
            record["rss_growth_gb"] = record["peak_rss_gb"] - child["rss_start_gb"]
        output, record["status"], record["error"] = self._output(cell, env, child, killed,
                                                                  status)
        self.records.append(record)
        print(f"[cells] {cell.model}: {record['status']}, {record['cpu_seconds']:.1f} CPU s, "
              f"{wall:.1f} s wall, peak RSS {record['peak_rss_gb']:.2f} GB"
              + (f" ({record['error']})" if record["error"] else ""), flush=True)
        return output

    def _collect(self, pid: int, rfd: int, start: float) -> tuple[bytes, str | None]:
        """Read the child's record until EOF; kill it past the time or memory limit."""
        chunks, killed = [], None
        try:
            while True:
                ready, _, _ = select.select([rfd], [], [], POLL_SECONDS)
                if ready:
                    chunk = os.read(rfd, 1 << 16)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    continue
                if time.perf_counter() - start > self.timeout:
                    killed = f"killed after the {self.timeout:g} s timeout"
                elif proc_kb(f"/proc/{pid}/status", "VmRSS") > self.max_rss_kb:
                    killed = f"killed above {self.max_rss_kb / 1e6:g} GB RSS"
                if killed:
                    os.kill(pid, signal.SIGKILL)
                    break
        finally:
            os.close(rfd)
        return b"".join(chunks), killed

    @staticmethod
    def _stages(child: dict) -> dict:
        stages = child.get("stages", {})
        fit = stages.get("fit", {})
        serve = [stages[s] for s in SERVE_STAGES if s in stages]
        return {
            "fit_seconds": fit.get("seconds"),
            "fit_cpu_seconds": fit.get("cpu_seconds"),
            "serve_seconds": sum(s["seconds"] for s in serve) if serve else None,
            "serve_cpu_seconds": sum(s["cpu_seconds"] for s in serve) if serve else None,
            "stages": {k: {f: v[f] for f in ("seconds", "cpu_seconds", "peak_rss_gb") if f in v}
                       for k, v in stages.items()},
        }

    def _output(self, cell, env, child: dict, killed: str | None, status: int):
        from bench.cells import resume_cell
        from bench.record import ModelFailure

        def failed(error: str):
            return ModelFailure(model=cell.model, fold=cell.fold, protocol=cell.protocol,
                                error=error, bad_input=False, seed=cell.seed)

        if killed:
            return failed(f"MeasurementLimit: {killed}"), "killed", killed
        if "crash" in child or status != 0:
            error = child.get("crash") or f"the cell's process exited with status {status}"
            return failed(error), "crashed", error
        if "failure" in child:
            f = child["failure"]
            return (ModelFailure(**{k: f.get(k) for k in ("model", "fold", "protocol", "error",
                                                           "bad_input", "traceback", "seed")}),
                    "failed", f["error"])
        output = resume_cell(env.out, cell, env)
        if output is None:
            return failed("the cell left no done.json"), "crashed", "no done.json"
        return output, "ok", None


# ---------------------------------------------------------------------- one size
def child_main(spec: dict) -> dict:
    """Run one size in this (fresh) process and return its figures."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from bench.executor import LocalExecutor
    from bench.observe import Observers
    from bench.runner import run_experiment
    from bench.schema import register
    from bench.seeds import seeded_paths, unresolved_models

    register()
    ov = overrides(spec["interactions"], spec["models"], spec["seed"])
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=ov)
    raw = unresolved_models(cfg)
    models = OmegaConf.to_container(cfg.models, resolve=True)
    seeded = {m: bool(seeded_paths(raw.get(m, {}))) for m in models}
    threaded = {m: has_key(node, "num_threads") for m, node in models.items()}
    cells = ForkedCells(threads=spec["threads"], timeout=spec["timeout"],
                        max_rss_gb=spec["max_rss_gb"], seeded=seeded, threaded=threaded)
    meter = StageMeter()
    load = os.getloadavg()
    t, c = time.perf_counter(), time.process_time()
    result = run_experiment(cfg, output_dir=spec["output_dir"], observers=Observers(meter),
                            executor=LocalExecutor(cell_function=cells))
    driver = {k: {f: v[f] for f in ("seconds", "cpu_seconds", "calls")}
              for k, v in meter.rows().items() if k != "plan"}
    return {
        "interactions": spec["interactions"],
        "shape": shape(spec["interactions"]),
        "models": list(models),
        "run_seconds": time.perf_counter() - t,
        "driver_cpu_seconds": time.process_time() - c,
        "driver_peak_rss_gb": rss_kb("VmHWM") / 1e6,
        "driver": driver,
        "evaluated_users": {r.model: r.n_users for r in result.models},
        "inputs_bytes": cells.inputs_bytes,
        "cells": cells.records,
        "loadavg_before": load,
        "loadavg_after": os.getloadavg(),
    }


# ---------------------------------------------------------------------- parent side
def run_size(spec: dict, timeout: float | None) -> dict:
    """One size in a fresh child process (:func:`child_main`)."""
    with tempfile.TemporaryDirectory(prefix="perf-cells-") as tmp:
        spec = {**spec, "output_dir": str(Path(tmp) / "run")}
        out_path = Path(tmp) / "size.json"
        code = (
            "import json, sys; from bench.perf.cells import child_main; "
            f"json.dump(child_main(json.loads(sys.argv[1])), open({str(out_path)!r}, 'w'))"
        )
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(spec)],
                              timeout=timeout, check=False)
        if proc.returncode != 0 or not out_path.is_file():
            raise SystemExit(f"cells: a size's process failed ({spec['interactions']:,} "
                             f"interactions, exit code {proc.returncode})")
        out = json.loads(out_path.read_text())
    out["process_wall_seconds"] = time.perf_counter() - t
    return out


def growth_exponent(points: list[tuple[float, float]]) -> float | None:
    """Slope of log(cost) over log(size) between the two largest sizes of ``points``
    (``(size, cost)`` pairs with positive cost); ``None`` with fewer than two."""
    pts = sorted((n, c) for n, c in points if n > 0 and c is not None and c > 0)
    if len(pts) < 2:
        return None
    (n0, c0), (n1, c1) = pts[-2], pts[-1]
    return math.log(c1 / c0) / math.log(n1 / n0)


#: per-cell figures the summary follows over sizes
SUMMARY_FIGURES = ("cpu_seconds", "fit_cpu_seconds", "serve_cpu_seconds", "wall_seconds",
                   "peak_rss_gb", "rss_growth_gb")


def summarise(sizes: list[dict]) -> dict[str, dict]:
    """Per model: its figures at each size where it finished, and their exponents."""
    models = list(dict.fromkeys(r["model"] for s in sizes for r in s["cells"]))
    out = {}
    for m in models:
        rows = [(s["interactions"], r) for s in sizes for r in s["cells"] if r["model"] == m]
        ok = [(n, r) for n, r in rows if r["status"] == "ok"]
        out[m] = {
            "seeded": any(r["seeded"] for _, r in rows),
            "threaded": any(r["threaded"] for _, r in rows),
            "sizes": {str(n): {"status": r["status"], "error": r["error"],
                               **{f: r.get(f) for f in SUMMARY_FIGURES}} for n, r in rows},
            "exponents": {f: growth_exponent([(n, r.get(f)) for n, r in ok])
                          for f in ("cpu_seconds", "fit_cpu_seconds", "serve_cpu_seconds",
                                    "rss_growth_gb")},
        }
    return out


def skip_list(sizes: list[dict], n: int, timeout: float, max_rss_gb: float) -> dict[str, str]:
    """Models not to run at size ``n``: those that failed at a smaller size, and those
    whose cell, projected from the sizes so far (exponent 1 from a single size, never
    below 1 for CPU), would pass the time or memory limit. :data:`BASELINE` always runs
    (it is the spectrum's statistical baseline)."""
    out = {}
    for m, v in summarise(sizes).items():
        if m == BASELINE:
            continue
        runs = sorted((int(k), r) for k, r in v["sizes"].items())
        if any(r["status"] != "ok" for _, r in runs):
            out[m] = "failed at a smaller size"
            continue
        n0, last = runs[-1]
        cpu_exp = max(1.0, v["exponents"]["cpu_seconds"] or 1.0)
        mem_exp = max(0.0, v["exponents"]["rss_growth_gb"] or 1.0)
        cpu = last["wall_seconds"] * (n / n0) ** cpu_exp
        rss = last["peak_rss_gb"] + (last["rss_growth_gb"] or 0.0) * ((n / n0) ** mem_exp - 1)
        if cpu > timeout:
            out[m] = f"projected {cpu:,.0f} s > the {timeout:g} s timeout"
        elif rss > max_rss_gb:
            out[m] = f"projected {rss:,.1f} GB > {max_rss_gb:g} GB"
    return out


def bench_cells(args) -> dict:
    spec = {"models": args.models, "seed": args.seed, "threads": args.threads,
            "timeout": args.timeout, "max_rss_gb": args.max_rss_gb}
    load = os.getloadavg()
    sizes: list[dict] = []
    skipped: dict[str, dict[str, str]] = {}
    for n in args.interactions:
        skip = skip_list(sizes, n, args.timeout, args.max_rss_gb) if sizes else {}
        models = args.models or (list(sizes[0]["models"]) if sizes else None)
        if skip:
            models = [m for m in models if m not in skip]
            skipped[str(n)] = skip
        print(f"[cells] {n:,} interactions: {shape(n)}; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
              + (f"; skipped (projected past a limit): {', '.join(skip)}" if skip else ""),
              flush=True)
        sizes.append(run_size({**spec, "models": models, "interactions": n}, None))
    return {
        "workload": "cells",
        "reference": {"name": "ml-32m", **ML32M},
        "split": "holdout (fraction 0.2 per user): one fold of a user-stratified 5-fold split",
        "threads": args.threads,
        "timeout": args.timeout,
        "max_rss_gb": args.max_rss_gb,
        "cores": os.cpu_count(),
        "loadavg_before": load,
        "loadavg_after": os.getloadavg(),
        "sizes": sizes,
        "skipped": skipped,
        "models": summarise(sizes),
    }


def _fmt(v, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def _print(out: dict) -> None:
    sizes = [s["interactions"] for s in out["sizes"]]
    print(f"\nper-cell costs, spectrum_full on ml-32m-shaped synthetic data, "
          f"{out['threads']} thread(s) per cell, one cell at a time on {out['cores']} cores")
    for s in out["sizes"]:
        sh = s["shape"]
        d = s["driver"]
        lb, la = s["loadavg_before"], s["loadavg_after"]
        print(f"  {sh['n_interactions']:,} interactions ({sh['n_users']:,} users, "
              f"{sh['n_items']:,} items): load average {lb[0]:.2f} before, {la[0]:.2f} after; "
              f"driver: " + ", ".join(f"{k} {v['seconds']:.1f} s" for k, v in d.items())
              + f"; cell inputs {(s['inputs_bytes'] or 0) / 1e6:,.0f} MB; "
              f"size process peak RSS {s['driver_peak_rss_gb']:.2f} GB")
    head = "".join(f" {f'{n / 1e6:g}M cpu s':>12s}" for n in sizes)
    print(f"\n{'model':26s}{head} {'exp':>5s} {'fit/serve exp':>14s} "
          f"{'RSS +GB (largest)':>18s} {'mem exp':>8s}")
    for m, v in out["models"].items():
        cells = []
        for n in sizes:
            r = v["sizes"].get(str(n))
            if r is None:
                cells.append(f" {'skipped':>12s}")
            elif r["status"] != "ok":
                cells.append(f" {r['status'] + '>' + _fmt(r['wall_seconds'], '.0f'):>12s}")
            else:
                cells.append(f" {_fmt(r['cpu_seconds']):>12s}")
        e = v["exponents"]
        last = [r for r in v["sizes"].values() if r["status"] == "ok"]
        growth = last[-1]["rss_growth_gb"] if last else None
        mark = ("*" if v["seeded"] else "") + ("t" if v["threaded"] else "")
        print(f"{m + ' ' + mark:26s}{''.join(cells)} {_fmt(e['cpu_seconds'], '.2f'):>5s} "
              f"{_fmt(e['fit_cpu_seconds'], '.2f'):>6s}/{_fmt(e['serve_cpu_seconds'], '.2f'):<7s} "
              f"{_fmt(growth, '.2f'):>18s} {_fmt(e['rss_growth_gb'], '.2f'):>8s}")
    print("(* seeded: one cell per training seed; t: multithreaded, measured on one thread; "
          "exponents between the two largest sizes it finished; killed>N: stopped after N s;"
          " skipped: projected past --timeout or --max-rss-gb from the smaller sizes)")


def add_arguments(q) -> None:
    q.add_argument("--interactions", type=lambda s: [int(float(x)) for x in s.split(",")],
                   default=[1_000_000, 4_000_000],
                   help="comma-separated sizes (interactions), ml-32m's proportions "
                        "(default 1000000,4000000)")
    q.add_argument("--models", type=lambda s: s.split(","), default=None,
                   help="comma-separated model configs (default: spectrum_full's); "
                        "without rule_popular the run's statistics compare against "
                        "the first one")
    q.add_argument("--threads", type=int, default=1,
                   help="threads per cell (default 1: a cell's cost on one core)")
    q.add_argument("--timeout", type=float, default=900.0,
                   help="kill a cell after this many seconds (default 900)")
    q.add_argument("--max-rss-gb", type=float, default=8.0,
                   help="kill a cell whose RSS exceeds this (default 8 GB)")
    q.add_argument("--seed", type=int, default=42)
    add_json_option(q)


def run(args, parser) -> int:
    if not args.interactions or min(args.interactions) < 100:
        parser.error("--interactions: expected sizes >= 100, e.g. 1000000,4000000")
    if args.threads < 1 or not args.timeout > 0 or not args.max_rss_gb > 0:
        parser.error("--threads, --timeout and --max-rss-gb must be positive")
    out = bench_cells(args)
    return emit(out, args.json, _print)
