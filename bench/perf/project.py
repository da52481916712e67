"""``bench perf project``: the wall time of a full spectrum on N cores, projected from
measured per-cell costs.

``bench perf project --costs costs.json --cores 8,32,128``

``costs.json`` is what ``bench perf cells --json costs.json`` wrote (several files,
comma-separated, are merged: e.g. slow models measured again at a smaller size to get
their growth exponent; the driver's figures come from the first file). The projected run is
the full spectrum on ``--interactions`` (default ml-32m's 32,000,204; users and items in
ml-32m's proportions): every model config of the costs file, ``--folds`` folds (5), and
``--seeds`` training seeds (3) for the models that take a seed — the others run once per
fold, as :mod:`bench.seeds` plans them. The model of the run, stated so it can be argued
with:

- **A cell's time on one core** is its CPU seconds (one thread) at the largest size it
  finished, times ``(target / size) ** e``, with ``e`` its measured growth exponent
  between its two largest sizes, and never below ``--min-exponent`` (1.0): at small
  sizes fixed costs flatten the slope, and no cell reads its data in less than linear
  time. A model measured at one size only grows with ``--min-exponent``. One core per
  cell; a multithreaded model (ALS, item kNN) gets one core too, so its cells are not
  sped up by threads.
- **A cell's memory** is the size of its process at the fork (shared inputs, growing
  with the data like the cell inputs) plus its measured growth, extrapolated with the
  memory exponent (at least 0). A cell needing more than ``--memory-per-core-gb`` takes
  as many cores' worth of memory as it needs (its cores idle); a cell needing more than
  one node (``--cores-per-node`` x ``--memory-per-core-gb``) cannot run and is listed,
  not scheduled.
- **Scheduling**: cells sorted longest first, each started on the cores that free up
  first (greedy LPT list scheduling). Each cell also pays ``--cell-overhead`` seconds
  (scheduling a task, starting its process, reading its inputs).
- **Driver**: before the cells, loading the data once, and per fold the split, the
  leakage audit and the evaluation context; after them, the single reduce step
  (statistics, report), scaled with the interactions and with the number of cells.
  Their exponents are measured too, floored at 1. Loading is the synthetic generator's
  time, which stands in for reading ml-32m's CSV.
- **Object store**: every fold's cell inputs (split, context, features; their size
  measured as array bytes, growing linearly) are put once by the driver at
  ``--put-gbps``, and every node fetches every fold once at ``--network-gbps`` before
  it starts (nodes fetch in parallel).

This module is a script: it prints.
"""

from __future__ import annotations

import heapq
import json
import math
from pathlib import Path

from bench.perf.cells import ML32M, summarise
from bench.perf.common import add_json_option, emit

HELP = "wall time of a full spectrum on N cores, projected from `bench perf cells` costs"

#: driver stages before the cells, per fold (``load`` once)
PER_FOLD = ("split", "audit", "context")


def project_model(name: str, info: dict, target: int, min_exponent: float,
                  base_gb: float) -> dict:
    """One model's projected cell: CPU seconds and memory at ``target`` interactions."""
    ok = sorted((int(n), r) for n, r in info["sizes"].items() if r["status"] == "ok")
    failed = sorted((int(n), r) for n, r in info["sizes"].items() if r["status"] != "ok")
    out = {"model": name, "seeded": info["seeded"], "threaded": info["threaded"],
           "failed_at": [{"interactions": n, "error": r["error"]} for n, r in failed]}
    if not ok:
        return {**out, "projected": False}
    n0, last = ok[-1]
    measured = info["exponents"]["cpu_seconds"]
    e = max(min_exponent, measured if measured is not None else min_exponent)
    mem_measured = info["exponents"]["rss_growth_gb"]
    mem_e = max(0.0, mem_measured if mem_measured is not None else 1.0)
    ratio = target / n0
    return {
        **out,
        "projected": True,
        "from_interactions": n0,
        "measured_cpu_seconds": last["cpu_seconds"],
        "measured_exponent": measured,
        "exponent": e,
        "cpu_seconds": last["cpu_seconds"] * ratio**e,
        "memory_exponent": mem_e,
        "memory_gb": base_gb + (last["rss_growth_gb"] or 0.0) * ratio**mem_e,
    }


def affine(points: list[tuple[float, float]], target: float) -> float:
    """``a + b * target`` through the two largest of ``points`` (``b >= 0``); through the
    origin with one point: a stage with a fixed part and a part linear in the size."""
    pts = sorted((n, c) for n, c in points if c is not None)
    if not pts:
        return 0.0
    if len(pts) == 1:
        return pts[0][1] * target / pts[0][0]
    (n0, c0), (n1, c1) = pts[-2], pts[-1]
    b = max(0.0, (c1 - c0) / (n1 - n0))
    return c1 + b * (target - n1)


def driver_costs(sizes: list[dict], target: int, cells: int) -> dict[str, float]:
    """Driver stages' seconds at ``target`` (fixed + linear in the interactions); the
    reduce step's linear part also grows with the number of cells."""
    out = {}
    for stage in ("load", *PER_FOLD, "reduce"):
        points = [(s["interactions"], s["driver"].get(stage, {}).get("seconds")) for s in sizes]
        out[stage] = affine(points, target)
    last = max(sizes, key=lambda s: s["interactions"])
    fixed = affine([(s["interactions"], s["driver"]["reduce"]["seconds"]) for s in sizes], 0)
    fixed = min(fixed, out["reduce"]) if len(sizes) > 1 else 0.0
    out["reduce"] = fixed + (out["reduce"] - fixed) * cells / max(1, len(last["cells"]))
    return out


def base_memory_gb(sizes: list[dict]) -> float:
    """A cell process's own size before its model: the size process at the fork minus
    the data it holds (its cell inputs), at the smallest size measured."""
    first = min(sizes, key=lambda s: s["interactions"])
    starts = [r["rss_start_gb"] for r in first["cells"] if "rss_start_gb" in r]
    return max(0.0, min(starts, default=0.0) - (first["inputs_bytes"] or 0) / 1e9)


def schedule(cells: list[tuple[float, int]], cores: int) -> tuple[float, float]:
    """Greedy longest-first list scheduling of ``(seconds, cores needed)`` cells on
    ``cores`` cores: each cell starts when its cores (those that free up first) are all
    free. Returns the makespan and the busy core-seconds."""
    free = [0.0] * cores
    heapq.heapify(free)
    busy = 0.0
    for seconds, need in sorted(cells, key=lambda c: (-c[0], -c[1])):
        taken = [heapq.heappop(free) for _ in range(need)]
        end = max(taken) + seconds
        for _ in taken:
            heapq.heappush(free, end)
        busy += seconds * need
    return max(free), busy


def bench_project(args) -> dict:
    files = [json.loads(Path(p).read_text()) for p in args.costs]
    sizes = sorted((s for f in files for s in f["sizes"]), key=lambda s: s["interactions"])
    costs = {"models": summarise(sizes)}
    # the driver's figures from the first file (a file that measured a few slow models
    # at another size adds their growth, not driver stages)
    sizes_all = files[0]["sizes"]
    largest = max(s["interactions"] for s in sizes_all)
    target = args.interactions
    base = base_memory_gb(sizes_all)
    models = [project_model(m, info, target, args.min_exponent, base)
              for m, info in costs["models"].items()]
    node_gb = args.cores_per_node * args.memory_per_core_gb
    cells, too_big, absent = [], [], []
    for m in models:
        if not m["projected"]:
            absent.append(m["model"])
            continue
        m["cells"] = args.folds * (args.seeds if m["seeded"] else 1)
        m["cores_per_cell"] = max(1, math.ceil(m["memory_gb"] / args.memory_per_core_gb))
        if m["memory_gb"] > node_gb:
            too_big.append(m["model"])
            continue
        cells += [(m["cpu_seconds"] + args.cell_overhead, m["cores_per_cell"])] * m["cells"]
    driver = driver_costs(sizes_all, target, len(cells))
    biggest = max(sizes_all, key=lambda s: s["interactions"])
    inputs_gb = (biggest["inputs_bytes"] or 0) / 1e9 * target / largest
    before = driver["load"] + args.folds * sum(driver[s] for s in PER_FOLD)
    put = args.folds * inputs_gb / args.put_gbps
    fetch = args.folds * inputs_gb / args.network_gbps
    total_cpu = sum(s for s, _ in cells)
    held = sum(s * n for s, n in cells)
    longest = max((s for s, _ in cells), default=0.0)
    rows = []
    for cores in args.cores:
        fits = [c for c in cells if c[1] <= min(cores, args.cores_per_node)]
        makespan, busy = schedule(fits, cores)
        nodes = math.ceil(cores / args.cores_per_node)
        transfer = fetch if nodes > 1 else 0.0
        wall = before + put + transfer + makespan + driver["reduce"]
        rows.append({"cores": cores, "nodes": nodes, "driver_before_seconds": before,
                     "put_seconds": put, "fetch_seconds": transfer,
                     "cells_seconds": makespan, "cells_left_out": len(cells) - len(fits),
                     "lower_bound_seconds": max(sum(s * n for s, n in fits) / cores,
                                                max((s for s, _ in fits), default=0.0)),
                     "reduce_seconds": driver["reduce"], "wall_seconds": wall,
                     "utilisation": busy / (cores * makespan) if makespan else 0.0})
    return {
        "workload": "project",
        "costs": ",".join(map(str, args.costs)),
        "measured_sizes": [s["interactions"] for s in sizes],
        "measured_loadavg": [s["loadavg_before"][0] for s in sizes]
        + [sizes[-1]["loadavg_after"][0]],
        "target_interactions": target,
        "folds": args.folds,
        "seeds": args.seeds,
        "assumptions": {k: getattr(args, k) for k in (
            "min_exponent", "cell_overhead", "memory_per_core_gb", "cores_per_node",
            "put_gbps", "network_gbps")},
        "models": models,
        "not_measured": absent,
        "too_big_for_a_node": too_big,
        "cells": len(cells),
        "total_cpu_seconds": total_cpu,
        "total_core_seconds_held": held,
        "longest_cell_seconds": longest,
        "driver": driver,
        "inputs_gb_per_fold": inputs_gb,
        "cell_base_memory_gb": base,
        "rows": rows,
    }


def _hms(seconds: float) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _print(out: dict) -> None:
    a = out["assumptions"]
    print(f"projection from {out['costs']} (measured at "
          f"{', '.join(f'{n:,}' for n in out['measured_sizes'])} interactions; load average "
          f"{min(out['measured_loadavg']):.2f}-{max(out['measured_loadavg']):.2f}) to "
          f"{out['target_interactions']:,} interactions, {out['folds']} folds x "
          f"{out['seeds']} seeds (seeded models only): {out['cells']} cells")
    print(f"{'model':26s} {'from':>6s} {'exp':>5s} {'cells':>5s} {'cpu s / cell':>13s} "
          f"{'mem GB / cell':>13s} {'cores':>5s}")
    for m in sorted((m for m in out["models"] if m["projected"]),
                    key=lambda m: -m["cpu_seconds"]):
        mark = " (too big for a node)" if m["model"] in out["too_big_for_a_node"] else ""
        killed = (f"  [stopped at {m['failed_at'][0]['interactions'] / 1e6:g}M: "
                  f"{m['failed_at'][0]['error']}]" if m["failed_at"] else "")
        print(f"{m['model']:26s} {m['from_interactions'] / 1e6:5g}M {m['exponent']:5.2f} "
              f"{m.get('cells', 0):5d} {m['cpu_seconds']:13,.0f} {m['memory_gb']:13.1f} "
              f"{m.get('cores_per_cell', 0):5d}{mark}{killed}")
    for name in out["not_measured"]:
        print(f"{name:26s} not projected: it finished at no measured size")
    d = out["driver"]
    print(f"driver: load {d['load']:.0f} s, per fold split {d['split']:.0f} s + audit "
          f"{d['audit']:.0f} s + context {d['context']:.0f} s, reduce {d['reduce']:.0f} s; "
          f"cell inputs {out['inputs_gb_per_fold']:.2f} GB per fold; cells' CPU "
          f"{out['total_cpu_seconds'] / 3600:,.1f} core-hours ("
          f"{out['total_core_seconds_held'] / 3600:,.1f} core-hours of cores held for memory), "
          f"longest cell "
          f"{_hms(out['longest_cell_seconds'])}")
    print(f"assumptions: exponent >= {a['min_exponent']:g}, {a['cell_overhead']:g} s per cell, "
          f"{a['memory_per_core_gb']:g} GB per core, {a['cores_per_node']} cores per node, "
          f"put {a['put_gbps']:g} GB/s, network {a['network_gbps']:g} GB/s")
    print(f"\n{'cores':>5s} {'nodes':>5s} {'driver':>8s} {'objects':>8s} {'cells':>9s} "
          f"{'bound':>9s} {'reduce':>7s} {'wall':>9s} {'busy':>5s}")
    for r in out["rows"]:
        print(f"{r['cores']:5d} {r['nodes']:5d} {_hms(r['driver_before_seconds']):>8s} "
              f"{_hms(r['put_seconds'] + r['fetch_seconds']):>8s} "
              f"{_hms(r['cells_seconds']):>9s} {_hms(r['lower_bound_seconds']):>9s} "
              f"{_hms(r['reduce_seconds']):>7s} {_hms(r['wall_seconds']):>9s} "
              f"{r['utilisation']:5.0%}"
              + (f"  ({r['cells_left_out']} cells need more memory than "
                 f"{min(r['cores'], a['cores_per_node'])} cores have: left out)"
                 if r["cells_left_out"] else ""))
    print("(h:mm:ss; bound: max(cell CPU / cores, longest cell); busy: core utilisation "
          "during the cells)")


def _positive_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def add_arguments(q) -> None:
    q.add_argument("--costs", required=True,
                   type=lambda s: [Path(x) for x in s.split(",") if x.strip()],
                   help="the JSON `bench perf cells --json PATH` wrote; several, comma-"
                        "separated, are merged (e.g. slow models measured at smaller sizes)")
    q.add_argument("--cores", type=_positive_list, default=[8, 32, 128],
                   help="comma-separated core counts (default 8,32,128)")
    q.add_argument("--interactions", type=lambda s: int(float(s)),
                   default=ML32M["n_interactions"],
                   help=f"size of the projected run (default ml-32m, "
                        f"{ML32M['n_interactions']:,})")
    q.add_argument("--folds", type=int, default=5)
    q.add_argument("--seeds", type=int, default=3, help="training seeds of seeded models")
    q.add_argument("--min-exponent", type=float, default=1.0,
                   help="smallest growth exponent used (default 1: at least linear)")
    q.add_argument("--cell-overhead", type=float, default=1.0,
                   help="seconds each cell adds for scheduling and its inputs (default 1)")
    q.add_argument("--memory-per-core-gb", type=float, default=4.0)
    q.add_argument("--cores-per-node", type=int, default=32)
    q.add_argument("--put-gbps", type=float, default=1.0,
                   help="GB/s the driver puts cell inputs into the object store (default 1)")
    q.add_argument("--network-gbps", type=float, default=1.25,
                   help="GB/s a node fetches them at (default 1.25, 10 GbE)")
    add_json_option(q)


def run(args, parser) -> int:
    missing = [str(p) for p in args.costs if not p.is_file()]
    if missing or not args.costs:
        parser.error(f"--costs: no file {', '.join(missing)} (write one with "
                     f"`bench perf cells --json costs.json`)")
    if not args.cores or min(args.cores) < 1 or args.folds < 1 or args.seeds < 1:
        parser.error("--cores, --folds and --seeds must be positive")
    if min(args.memory_per_core_gb, args.put_gbps, args.network_gbps) <= 0 \
            or args.cores_per_node < 1 or args.cell_overhead < 0 or args.interactions < 1:
        parser.error("sizes, speeds and --cores-per-node must be positive")
    out = bench_project(args)
    return emit(out, args.json, _print)
