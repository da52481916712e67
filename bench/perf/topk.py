"""``bench perf topk``: full-ranking top-k from factors: ours vs implicit vs the matmul floor.

``bench perf topk --users 100000 --items 20000 --factors 64``

Data: a synthetic implicit-feedback matrix of ``--users`` x ``--items`` with about
``--per-user`` distinct items per user, drawn from a Zipf-like popularity (exponent 0.8)
whose ranks are shuffled over the item codes (so popular items are not the low codes).
``--source als`` (default) fits :class:`~bench.models.collaborative.als.ImplicitALS`
(``implicit``'s ALS, ``--iterations`` sweeps) on it; ``--source random`` stores random
float32 factors instead (fast, for trying things out). Every engine ranks with those same
factors and that same seen-item matrix, in one process, each round running every engine
once (``--repeats`` rounds; medians, min and max):

* (a) ``floor``: the bare product ``user_factors @ item_factors.T`` in blocks of
  ``--block-rows`` users, each block an ``sgemm`` into a reused buffer, on ``--threads``
  worker threads with BLAS pinned to one thread each (``floor_blas`` also times one
  multi-threaded BLAS call per 4096-user block; the smaller of the two is the floor);
* (b) ``implicit``: ``AlternatingLeastSquares.recommend(userids, user_items, N=k,
  filter_already_liked_items=True)`` on all users at once with the same factors (its
  C++ top-k on all cores; BLAS limited to ``--implicit-blas`` threads, default 1 as
  ``implicit`` recommends -- its default of all BLAS threads oversubscribes the cores);
* (c) ``ours``: ``model.recommend_codes(users, k, exclude_seen=True)``
  (:func:`bench.models.topk.factor_top_k`: fused, blocked product + masking + top-k,
  item tiles in order of decreasing norm, and a block stops as soon as no item left can
  enter any of its lists by the bound ``|u| |v|``; the share of score cells it never
  computed is reported as ``skipped_cells_share``).

Checks (untimed): (a) vs (c): the floor's blocks ranked with the numpy top-k
(``BENCH_TOPK_ENGINE=numpy``, the same ``sgemm`` blocks) must give identical lists on
``--check-users`` users; (b) vs (c): the share of identical rows, and for the rows that
differ, whether they differ only by near-ties (the k-th score gap below 1e-5 relative):
implicit computes its products in other batch shapes, which may round in the last bit.

Memory (skip with ``--no-memory``): each engine runs once more in a fresh process (same
options; it rebuilds the data and factors and warms the kernel up first), which reports
the engine's peak RSS above the RSS just before it ran (``/proc/self/statm`` sampled every
5 ms; BLAS and C++ buffers included; a fresh process, so no memory freed by another engine
is reused) and, in a second run, its peak traced allocation (``tracemalloc``: numpy
buffers). ``--json`` writes the numbers (``-`` prints them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp

from bench.perf.common import add_json_option, emit

HELP = "full-ranking top-k from ALS factors: ours vs implicit vs the matmul floor"


def synthetic_seen(n_users: int, n_items: int, per_user: int, seed: int) -> sp.csr_matrix:
    """Binary CSR with ~``per_user`` distinct Zipf-popular items per user (codes shuffled)."""
    rng = np.random.default_rng(seed)
    weight = 1.0 / np.arange(1, n_items + 1) ** 0.8
    rank_of = rng.permutation(n_items)  # popularity rank -> item code
    rows = np.repeat(np.arange(n_users), per_user)
    cols = rank_of[rng.choice(n_items, rows.size, p=weight / weight.sum())]
    seen = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(n_users, n_items)
    )
    seen.sum_duplicates()
    seen.data[:] = 1.0
    return seen


def build_model(args: argparse.Namespace):
    """A fitted ImplicitALS (``--source als``) or one holding random factors."""
    import pandas as pd

    from bench.data.interactions import Interactions
    from bench.models.collaborative.als import ImplicitALS

    seen = synthetic_seen(args.users, args.items, args.per_user, args.seed)
    coo = seen.tocoo()
    frame = pd.DataFrame({"user_id": coo.row, "item_id": coo.col})
    vocab_u, vocab_i = pd.Index(np.arange(args.users)), pd.Index(np.arange(args.items))
    train = Interactions.from_frame(frame, user_ids=vocab_u, item_ids=vocab_i)
    iterations = args.iterations if args.source == "als" else 1
    class FullShapeALS(ImplicitALS):
        """ALS on the generated matrix's full shape: the benchmark times users x items,
        and a Zipf tail item with no row must not shrink the model's vocabulary."""

        extra_vocabulary = frozenset({"data"})

    model = FullShapeALS(factors=args.factors, iterations=iterations, seed=args.seed)
    start = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - start
    if args.source == "random":
        rng = np.random.default_rng(args.seed)
        model._store_factors(
            rng.standard_normal((args.users, args.factors)).astype(np.float32) * 0.1,
            rng.standard_normal((args.items, args.factors)).astype(np.float32) * 0.1,
        )
    return model, fit_s


class _RssSampler:
    """Peak resident set size while running, sampled from ``/proc/self/statm``."""

    def __init__(self, every: float = 0.005):
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self._page

    def __enter__(self):
        self.start = self.peak = self.rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self.rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def _memory(fn) -> dict:
    """Peak RSS above the RSS at the start of one run of ``fn``, and its traced peak."""
    with _RssSampler() as rss:
        fn()
    tracemalloc.start()
    try:
        fn()
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {
        "peak_rss_above_start_mb": (rss.peak - rss.start) / 2**20,
        "traced_peak_mb": traced / 2**20,
    }


def _memory_in_child(argv: list[str], name: str) -> dict:
    """:func:`_memory` of engine ``name`` in a fresh process (no memory freed by others)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "bench.perf", "topk", *argv, "--memory-of", name]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"topk: memory run of {name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_topk(args: argparse.Namespace) -> dict:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from bench.models import topk

    model, fit_s = build_model(args)
    uf, itf, seen = model.user_factors_, model.item_factors_, model.seen_
    n_users, k, threads = uf.shape[0], args.k, args.threads or topk.default_threads()
    users = np.arange(n_users)
    with threadpool_limits(limits=1, user_api="blas"):  # implicit warns otherwise
        ref = AlternatingLeastSquares(factors=args.factors)
    ref.user_factors, ref.item_factors = uf, itf

    def floor() -> None:
        topk_block = args.block_rows
        item_t = itf.T
        local = threading.local()

        def share(first: int) -> None:
            buf = getattr(local, "buf", None)
            if buf is None:
                buf = local.buf = np.empty((topk_block, itf.shape[0]), dtype=np.float32)
            for start in range(first * topk_block, n_users, threads * topk_block):
                stop = min(start + topk_block, n_users)
                np.matmul(uf[start:stop], item_t, out=buf[: stop - start])

        with threadpool_limits(limits=1, user_api="blas"):
            workers = [threading.Thread(target=share, args=(t,)) for t in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()

    def floor_blas() -> None:
        buf = np.empty((4096, itf.shape[0]), dtype=np.float32)
        with threadpool_limits(limits=threads, user_api="blas"):
            for start in range(0, n_users, 4096):
                stop = min(start + 4096, n_users)
                np.matmul(uf[start:stop], itf.T, out=buf[: stop - start])

    def implicit_run():
        with threadpool_limits(limits=args.implicit_blas or None, user_api="blas"):
            return ref.recommend(users, seen, N=k, filter_already_liked_items=True)

    def ours():
        return model.recommend_codes(users, k, exclude_seen=True)

    engines = {"floor": floor, "floor_blas": floor_blas, "implicit": implicit_run, "ours": ours}
    load_before = os.getloadavg()
    model.recommend_codes(users[: topk.BLOCK_ROWS * 4], k)  # compile the kernel first
    if args.memory_of:
        return _memory(engines[args.memory_of])
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    results = {}
    for _ in range(args.repeats):  # interleaved rounds: load changes hit every engine
        for name, fn in engines.items():
            start = time.perf_counter()
            results[name] = fn()
            seconds[name].append(time.perf_counter() - start)
    timing = {
        name: {
            "seconds": s,
            "median_seconds": statistics.median(s),
            "min_seconds": min(s),
            "max_seconds": max(s),
        }
        for name, s in seconds.items()
    }
    memory = {}
    if args.memory:
        memory = {name: _memory_in_child(args.argv, name) for name in engines}

    ours_top = results["ours"]
    ids, scores = results["implicit"]
    same_rows = (ours_top.items == ids).all(axis=1)
    differ = np.flatnonzero(~same_rows)
    near_tie = 0
    if len(differ):  # the k-th scores of both lists agree to float32 rounding
        a, b = ours_top.scores[differ], scores[differ].astype(np.float32)
        gap = np.abs(a - b).max(axis=1) / np.maximum(np.abs(a).max(axis=1), 1e-30)
        near_tie = int((gap < 1e-5).sum())

    check = min(args.check_users, n_users)
    sample = np.sort(np.random.default_rng(args.seed).choice(n_users, check, replace=False))
    old_env = os.environ.get("BENCH_TOPK_ENGINE")
    os.environ["BENCH_TOPK_ENGINE"] = "numpy"
    try:  # the floor's sgemm blocks ranked by numpy: block-aligned sample of whole blocks
        n_blocks = -(-n_users // topk.BLOCK_ROWS)
        blocks = np.unique(sample // topk.BLOCK_ROWS)[: -(-check // topk.BLOCK_ROWS)]
        blocks = blocks if len(blocks) else np.arange(min(1, n_blocks))
        rows = (blocks[:, None] * topk.BLOCK_ROWS + np.arange(topk.BLOCK_ROWS)).ravel()
        rows = rows[rows < n_users]
        numpy_items = np.concatenate(
            [
                model.recommend_codes(users[s : s + topk.BLOCK_ROWS], k).items
                for s in blocks * topk.BLOCK_ROWS
            ]
        )
    finally:
        if old_env is None:
            del os.environ["BENCH_TOPK_ENGINE"]
        else:
            os.environ["BENCH_TOPK_ENGINE"] = old_env
    skip: dict = {}  # which score cells the bound let ours skip (same call, untimed)
    topk.factor_top_k(uf, itf, k, exclude=seen, item_mask=model.item_mask_, stats=skip)
    floor_s = min(timing["floor"]["median_seconds"], timing["floor_blas"]["median_seconds"])
    return {
        "users": n_users,
        "items": int(itf.shape[0]),
        "factors": int(itf.shape[1]),
        "seen_nnz": int(seen.nnz),
        "source": args.source,
        "iterations": args.iterations if args.source == "als" else 0,
        "fit_seconds": fit_s,
        "k": k,
        "threads": threads,
        "block_rows": topk.BLOCK_ROWS,
        "kernel": "numba" if topk.have_kernel() else "numpy",
        "implicit_blas_threads": args.implicit_blas,
        "load_average": load_before,
        "load_average_after": os.getloadavg(),
        "timing": timing,
        "skipped_cells_share": skip["skipped_cells"] / skip["cells"],
        "memory": memory,
        "ratio_ours_over_implicit": timing["ours"]["median_seconds"]
        / timing["implicit"]["median_seconds"],
        "ratio_ours_over_floor": timing["ours"]["median_seconds"] / floor_s,
        "check_floor_vs_ours_users": len(rows),
        "check_floor_vs_ours_identical": bool(np.array_equal(numpy_items, ours_top.items[rows])),
        "implicit_identical_rows_share": float(same_rows.mean()),
        "implicit_differing_rows": len(differ),
        "implicit_differing_rows_near_ties": near_tie,
    }


def _print(out: dict) -> None:
    print(
        f"top-{out['k']} from {out['factors']}-factor {out['source'].upper()} factors "
        f"({out['source']}, fit {out['fit_seconds']:.1f} s): {out['users']:,} users x "
        f"{out['items']:,} items, {out['seen_nnz']:,} seen; {out['threads']} threads, "
        f"blocks of {out['block_rows']} users, kernel {out['kernel']}; load average "
        + " ".join(f"{x:.2f}" for x in out["load_average"]) + " before, "
        + " ".join(f"{x:.2f}" for x in out["load_average_after"]) + " after"
    )
    floor = min(
        out["timing"]["floor"]["median_seconds"], out["timing"]["floor_blas"]["median_seconds"]
    )
    print(
        f"{'engine':12s} {'median s':>9s} {'min':>8s} {'max':>8s} {'x floor':>8s} "
        f"{'RSS+ MB':>8s} {'traced MB':>9s}"
    )
    for name, t in out["timing"].items():
        mem = out["memory"].get(name, {})
        print(
            f"{name:12s} {t['median_seconds']:9.3f} {t['min_seconds']:8.3f} "
            f"{t['max_seconds']:8.3f} {t['median_seconds'] / floor:8.2f} "
            f"{mem.get('peak_rss_above_start_mb', float('nan')):8.0f} "
            f"{mem.get('traced_peak_mb', float('nan')):9.0f}"
        )
    print(
        f"ours skipped {out['skipped_cells_share']:.1%} of the users x items score cells "
        "(item tiles no row of a block could gain from, by |u| x the tile's largest |v|)"
    )
    print(
        f"ours / implicit: {out['ratio_ours_over_implicit']:.2f} "
        f"({1 / out['ratio_ours_over_implicit']:.2f}x faster); ours / floor: "
        f"{out['ratio_ours_over_floor']:.2f}"
    )
    print(
        f"lists: floor blocks ranked by numpy == ours on {out['check_floor_vs_ours_users']:,} "
        f"users: {out['check_floor_vs_ours_identical']}; implicit == ours on "
        f"{out['implicit_identical_rows_share']:.4%} of users ({out['implicit_differing_rows']} "
        f"differ, {out['implicit_differing_rows_near_ties']} of them by near-ties only)"
    )


def add_arguments(q) -> None:
    q.add_argument("--users", type=int, default=100_000)
    q.add_argument("--items", type=int, default=20_000)
    q.add_argument("--factors", type=int, default=64)
    q.add_argument("--per-user", type=int, default=50, help="item draws per user (seen items)")
    q.add_argument("--k", type=int, default=10, help="list length")
    q.add_argument("--source", choices=("als", "random"), default="als", help="factors")
    q.add_argument("--iterations", type=int, default=5, help="ALS sweeps (--source als)")
    q.add_argument("--repeats", type=int, default=3, help="timed rounds (every engine once)")
    q.add_argument("--threads", type=int, default=0, help="worker threads (0 = all CPUs)")
    q.add_argument("--block-rows", type=int, default=0, help="users per block (0 = default)")
    q.add_argument("--implicit-blas", type=int, default=1, help="BLAS threads for implicit")
    q.add_argument("--check-users", type=int, default=5000, help="users checked against numpy")
    q.add_argument("--no-memory", dest="memory", action="store_false", help="skip memory runs")
    q.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)  # child of a memory run
    q.add_argument("--seed", type=int, default=0)
    add_json_option(q)


def _child_argv(args) -> list[str]:
    """The options of this run, for the fresh processes of the memory runs."""
    return [
        *("--users", str(args.users), "--items", str(args.items)),
        *("--factors", str(args.factors), "--per-user", str(args.per_user)),
        *("--k", str(args.k), "--source", args.source, "--iterations", str(args.iterations)),
        *("--threads", str(args.threads), "--block-rows", str(args.block_rows)),
        *("--implicit-blas", str(args.implicit_blas), "--seed", str(args.seed)),
        "--repeats",
        "1",
        "--no-memory",
    ]


def run(args, parser) -> int:
    if min(args.users, args.items, args.factors, args.k, args.repeats, args.per_user) <= 0:
        parser.error("--users, --items, --factors, --k, --repeats, --per-user must be positive")
    if args.per_user > args.items:
        parser.error("--per-user must not exceed --items")
    if min(args.block_rows, args.check_users, args.seed, args.iterations) < 0:
        parser.error("--block-rows, --check-users, --seed and --iterations must be >= 0")
    from bench.models import topk

    if args.block_rows:
        topk.BLOCK_ROWS = args.block_rows
    args.block_rows = topk.BLOCK_ROWS
    if args.threads:
        topk.default_threads = lambda: args.threads
    args.argv = _child_argv(args)
    out = bench_topk(args)
    if args.memory_of:
        print(json.dumps(out))
        return 0
    return emit(out, args.json, _print)
