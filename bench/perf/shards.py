"""``bench perf shards``: sharded evaluation of millions of synthetic users, exact merges.

``bench perf shards --users 10000000 --shards 1,4,16`` (``--users 200000`` for a quick look)

For every shard count ``S`` the users ``0..N-1`` are hashed into ``S`` shards
(:mod:`bench.shards.partition`) and every shard runs in its own fresh child process (at
most ``--workers`` at a time, each with single-threaded BLAS). A shard never holds more
than one block of users (``--block``, 65,536): it scans the ids, keeps its own, generates
their top-k lists and relevant items from ``(--seed, user id)`` alone, evaluates them
with the harness's evaluators (:class:`bench.shards.evaluate.ShardEvaluator`: NDCG@k and
recall@k, per-user ARP@k and novelty@k, item exposure) and adds them to its partial with
``--resamples`` Poisson-bootstrap resamples. The partial is written as ``.npz``; the parent
then merges the ``S`` partials one at a time and summarizes them.

The synthetic data, per user ``u`` (``h_i`` independent 64-bit hashes of ``(seed, u)``;
``P = --items``, a prime):

- a walk through the items: position ``j`` holds item ``(a_u + j b_u) mod P`` with
  ``a_u = floor(P x^2)`` (``x`` uniform: low codes are popular) and ``b_u`` in
  ``[1, P)``, so positions hold distinct items;
- model ``A`` recommends positions ``0..k-1``; one user in eight gets a short list (the
  tail padded with ``-1``); model ``B`` recommends positions ``s_u..s_u+k-1``,
  ``s_u`` in ``{0, 1, 2}``;
- each of positions ``0..2k-1`` is relevant with probability 0.12 (users with none are
  excluded, as the evaluator does);
- training popularity ``count_i = floor(2000 / (i + 1)**0.9)`` (zero in the tail: a
  catalogue smaller than the item vocabulary), ``N = 100,000`` training users.

Reported per shard count: wall time of the whole sharded run (children, then merge),
per shard its wall and CPU seconds and peak RSS (the child's ``VmHWM`` from
``/proc/self/status``, and the same after imports, so the growth is the evaluation's),
the merge time, the size of a partial, and whether the merged results -- every mean,
standard deviation, bootstrap interval, paired t statistic and p-value, coverage and
Gini -- are identical (bit for bit) across shard counts, and the merged states equal.
``--json PATH`` writes the numbers.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.perf.common import add_json_option, emit, rss_kb

HELP = "sharded evaluation of N synthetic users: exact merges, wall time, RSS per shard"

MODELS = ("A", "B")
PAIRS = (("A", "B"),)
METRICS = ("ndcg", "recall")
N_TRAIN_USERS = 100_000
P_RELEVANT = 0.12
_SALTS = {"walk": 0x57414C4B, "start": 0x5354, "step": 0x5354455, "shift": 0x534846,
          "short": 0x53484F, "rel": 0x52454C}


def add_arguments(parser) -> None:
    parser.add_argument("--users", type=int, default=10_000_000, help="users (ids 0..N-1)")
    parser.add_argument("--shards", default="1,4,16", help="comma-separated shard counts")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--workers", type=int, default=2, help="shards run at the same time")
    parser.add_argument("--items", type=int, default=20_011, help="items (a prime)")
    parser.add_argument("--k", type=int, default=10, help="list length and cutoff")
    parser.add_argument("--block", type=int, default=1 << 16, help="users per block")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and bootstrap")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per shard")
    add_json_option(parser)


# ---------------------------------------------------------------------- synthetic data
def item_counts(n_items: int) -> np.ndarray:
    """Training interactions per item: ``floor(2000 / (i + 1)**0.9)``."""
    return np.floor(2000.0 / np.arange(1, n_items + 1) ** 0.9)


def _hash(keys: np.ndarray, seed: int, salt: int) -> np.ndarray:
    from bench.shards.partition import mix64

    return mix64(keys ^ mix64(np.array([(seed << 32) ^ salt], dtype=np.uint64))[0])


def _uniform(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(11)).astype(np.float64) / 2.0**53


def synthetic_block(ids: np.ndarray, *, n_items: int, k: int, seed: int):
    """Top-k lists of models A and B and the relevant items of the users ``ids``; every
    row depends on ``(seed, id)`` only (the module docstring gives the recipe)."""
    import scipy.sparse as sp

    from bench.shards.partition import mix64, user_keys

    keys = user_keys(ids)
    n, width = keys.size, 2 * k
    p = np.uint64(n_items)
    start = np.floor(n_items * _uniform(_hash(keys, seed, _SALTS["start"])) ** 2)
    step = _hash(keys, seed, _SALTS["step"]) % np.uint64(n_items - 1) + np.uint64(1)
    pos = np.arange(width, dtype=np.uint64)
    walk = ((start.astype(np.uint64)[:, None] + pos[None, :] * step[:, None]) % p).astype(
        np.int64)
    shift = (_hash(keys, seed, _SALTS["shift"]) % np.uint64(3)).astype(np.int64)
    recs_b = walk[np.arange(n)[:, None], shift[:, None] + np.arange(k)[None, :]]
    recs_a = walk[:, :k].copy()
    short = _hash(keys, seed, _SALTS["short"])
    is_short = short % np.uint64(8) == np.uint64(0)
    length = np.where(is_short, (short >> np.uint64(8)) % np.uint64(k), k).astype(np.int64)
    recs_a[np.arange(k)[None, :] >= length[:, None]] = -1
    rel_h = mix64(_hash(keys, seed, _SALTS["rel"])[:, None] + pos[None, :] * np.uint64(
        0x9E3779B97F4A7C15))
    relevant = _uniform(rel_h) < P_RELEVANT
    items = np.sort(np.where(relevant, walk, n_items), axis=1)
    n_rel = relevant.sum(axis=1)
    indptr = np.concatenate(([0], np.cumsum(n_rel))).astype(np.int64)
    indices = items[items < n_items]
    rel = sp.csr_matrix((np.ones(indices.size), indices, indptr), shape=(n, n_items))
    return {"A": recs_a, "B": recs_b}, rel


def shard_blocks(n_users: int, n_shards: int, shard: int, block: int):
    """The ids (int64, ascending) of ``shard``'s users in blocks of about ``block``."""
    from bench.shards.partition import shard_of, user_keys

    pending, size = [], 0
    for lo in range(0, n_users, block):
        ids = np.arange(lo, min(n_users, lo + block), dtype=np.int64)
        mine = ids[shard_of(user_keys(ids), n_shards) == shard]
        pending.append(mine)
        size += mine.size
        if size >= block:
            joined = np.concatenate(pending)
            yield joined[:block]
            pending, size = [joined[block:]], joined.size - block
    if size:
        yield np.concatenate(pending)


def evaluator(spec: dict):
    """The :class:`~bench.shards.evaluate.ShardEvaluator` of a benchmark spec."""
    from bench.shards.evaluate import ShardEvaluator

    return ShardEvaluator(MODELS, n_items=spec["items"], cutoffs=(spec["k"],), metrics=METRICS,
                          pairs=PAIRS, item_counts=item_counts(spec["items"]),
                          n_train_users=N_TRAIN_USERS, n_resamples=spec["resamples"],
                          seed=spec["seed"])


# ---------------------------------------------------------------------- child side
def child_main(spec: dict) -> dict:
    """Evaluate one shard in this (fresh) process; write its partial; return figures."""
    t0 = time.perf_counter()
    rss_start_kb = rss_kb("VmHWM")
    ev = evaluator(spec)
    generate = evaluate = 0.0
    users = 0
    for ids in shard_blocks(spec["users"], spec["shards"], spec["shard"], spec["block"]):
        t = time.perf_counter()
        recs, rel = synthetic_block(ids, n_items=spec["items"], k=spec["k"], seed=spec["seed"])
        generate += time.perf_counter() - t
        t = time.perf_counter()
        ev.add(ids, recs, rel)
        evaluate += time.perf_counter() - t
        users += ids.size
    t = time.perf_counter()
    partial = ev.partial()
    partial.save(spec["out"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "shard": spec["shard"],
        "users": users,
        "evaluated_users": partial.n_users,
        "wall_seconds": time.perf_counter() - t0,
        "generate_seconds": generate,
        "evaluate_seconds": evaluate,
        "save_seconds": time.perf_counter() - t,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": rss_kb("VmHWM") / 1e3,
        "rss_after_imports_mb": rss_start_kb / 1e3,
        "partial_bytes": partial.nbytes(),
    }


_CHILD = ("import json, sys; from bench.perf.shards import child_main; "
          "json.dump(child_main(json.loads(sys.argv[1])), open(sys.argv[2], 'w'))")
_IMPORTS = "import bench.shards.evaluate; "


def run_shards(spec: dict, n_shards: int, folder: Path, workers: int,
               timeout: float | None) -> list[dict]:
    """Run the ``n_shards`` shard children, ``workers`` at a time; their figures."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    todo = list(range(n_shards))
    running, results = [], []
    while todo or running:
        while todo and len(running) < workers:
            s = todo.pop(0)
            child = {**spec, "shards": n_shards, "shard": s,
                     "out": str(folder / f"S{n_shards}-{s}.npz")}
            out = folder / f"S{n_shards}-{s}.json"
            proc = subprocess.Popen(
                [sys.executable, "-c", _IMPORTS + _CHILD, json.dumps(child), str(out)], env=env)
            running.append((proc, out, time.perf_counter()))
        time.sleep(0.05)
        for entry in list(running):
            proc, out, started = entry
            late = timeout is not None and time.perf_counter() - started > timeout
            if proc.poll() is None and not late:
                continue
            if late or proc.returncode != 0:
                for other, _, _ in running:  # stop the siblings we started, then fail
                    other.kill()
                    other.wait()
                why = f"to finish within --timeout {timeout} s" if late else (
                    f"(exit code {proc.returncode})")
                raise SystemExit(f"shards: a shard child failed {why}")
            running.remove(entry)
            results.append(json.loads(out.read_text()))
    return sorted(results, key=lambda r: r["shard"])


def merge_folder(folder: Path, n_shards: int):
    """Load and merge the shard partials one at a time (the parent holds two at most)."""
    from bench.shards.merge import merge_partials
    from bench.shards.partial import load_partial

    merged = None
    for s in range(n_shards):
        part = load_partial(folder / f"S{n_shards}-{s}.npz")
        merged = part if merged is None else merge_partials([merged, part])
    return merged


def flat_results(summary, lists: dict) -> dict[str, float]:
    """Every number of a summary as ``{name: float}`` (for bit-for-bit comparison)."""
    out = {}
    for name, c in summary.columns.items():
        for f in ("n", "mean", "sd", "low", "high"):
            out[f"{name}.{f}"] = float(getattr(c, f))
    for (a, b), p in summary.pairs.items():
        for f in ("n", "mean_a", "mean_b", "diff", "low", "high", "t_stat", "p_t",
                  "effect_size", "rel_diff"):
            out[f"{b} - {a}.{f}"] = float(getattr(p, f))
    out.update(lists)
    return out


def same_numbers(x: dict[str, float], y: dict[str, float]) -> bool:
    """Equal keys and bit-identical values (NaN equals NaN)."""
    return x.keys() == y.keys() and all(
        x[k] == y[k] or (math.isnan(x[k]) and math.isnan(y[k])) for k in x)


def bench_shards(args) -> dict:
    from bench.shards.evaluate import summarize_evaluation

    counts = [int(s) for s in str(args.shards).split(",") if s.strip()]
    spec = {"users": args.users, "items": args.items, "k": args.k, "block": args.block,
            "resamples": args.resamples, "seed": args.seed}
    runs, reference, reference_state = [], None, None
    with tempfile.TemporaryDirectory(prefix="perf-shards-") as tmp:
        for n_shards in counts:
            folder = Path(tmp) / f"S{n_shards}"
            folder.mkdir()
            load = os.getloadavg()
            t = time.perf_counter()
            shards = run_shards(spec, n_shards, folder, args.workers, args.timeout)
            t_merge = time.perf_counter()
            merged = merge_folder(folder, n_shards)
            summary, lists = summarize_evaluation(merged, item_counts=item_counts(args.items))
            done = time.perf_counter()
            numbers = flat_results(summary, lists)
            if reference is None:
                reference, reference_state = numbers, merged
            runs.append({
                "shards": n_shards,
                "wall_seconds": done - t,
                "merge_seconds": done - t_merge,
                "shard_wall_seconds": [r["wall_seconds"] for r in shards],
                "shard_cpu_seconds": [r["cpu_seconds"] for r in shards],
                "shard_peak_rss_mb": [r["peak_rss_mb"] for r in shards],
                "shard_rss_after_imports_mb": [r["rss_after_imports_mb"] for r in shards],
                "shard_users": [r["users"] for r in shards],
                "partial_bytes": shards[0]["partial_bytes"],
                "evaluated_users": merged.n_users,
                "identical_to_first": same_numbers(numbers, reference),
                "state_equal_to_first": merged.same_as(reference_state),
                "loadavg_before": load,
                "shards_detail": shards,
            })
    return {
        "workload": "shards",
        "users": args.users,
        "items": args.items,
        "k": args.k,
        "resamples": args.resamples,
        "workers": args.workers,
        "block": args.block,
        "seed": args.seed,
        "cores": os.cpu_count(),
        "runs": runs,
        "identical": all(r["identical_to_first"] and r["state_equal_to_first"] for r in runs),
        "results": reference,
    }


def run(args, parser) -> int:
    if args.users <= 0 or args.resamples < 0 or args.workers <= 0 or args.k <= 0:
        parser.error("--users, --workers and --k must be positive, --resamples >= 0")
    if args.items < 2 * args.k or any(args.items % d == 0 for d in range(2, math.isqrt(
            args.items) + 1)):
        parser.error("--items must be a prime of at least 2 x --k (lists walk the items)")
    out = bench_shards(args)
    code = emit(out, args.json, _print)
    return code if out["identical"] else 1


def _print(out: dict) -> None:
    print(f"shards: {out['users']:,} synthetic users, {out['items']:,} items, top-{out['k']}, "
          f"models A and B, {out['resamples']} Poisson resamples, {out['workers']} shard(s) "
          f"at a time on {out['cores']} cores, blocks of {out['block']:,} users")
    print(f"{'shards':>6s} {'wall s':>8s} {'merge s':>8s} {'shard wall s (max)':>19s} "
          f"{'shard cpu s (sum)':>18s} {'peak RSS MB (max)':>18s} {'after imports':>13s} "
          f"{'partial MB':>10s} {'identical':>9s} {'load':>5s}")
    for r in out["runs"]:
        print(f"{r['shards']:6d} {r['wall_seconds']:8.1f} {r['merge_seconds']:8.2f} "
              f"{max(r['shard_wall_seconds']):19.1f} {sum(r['shard_cpu_seconds']):18.1f} "
              f"{max(r['shard_peak_rss_mb']):18.0f} "
              f"{max(r['shard_rss_after_imports_mb']):13.0f} {r['partial_bytes'] / 1e6:10.1f} "
              f"{r['identical_to_first'] and r['state_equal_to_first']!s:>9s} "
              f"{r['loadavg_before'][0]:5.1f}")
    res = out["results"]
    for key in ("A/ndcg@10", "B/ndcg@10", "B/ndcg@10 - A/ndcg@10"):
        if f"{key}.mean" in res:
            print(f"{key}: mean {res[f'{key}.mean']!r} interval [{res[f'{key}.low']!r}, "
                  f"{res[f'{key}.high']!r}]")
        elif f"{key}.diff" in res:
            print(f"{key}: diff {res[f'{key}.diff']!r} interval [{res[f'{key}.low']!r}, "
                  f"{res[f'{key}.high']!r}] t {res[f'{key}.t_stat']!r} p {res[f'{key}.p_t']!r}")
    print("identical across shard counts (every number, bit for bit):", out["identical"])
