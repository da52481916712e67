"""``bench perf surprise``: Surprise SVD ranking, vectorised vs per-pair ``predict``.

``surprise`` fits Surprise's SVD (its default hyperparameters) on all of MovieLens 100K
(``--path``, default ``$BENCH_DATA_DIR/ml-100k``) and times top-``--k`` lists for a
sample of ``--users`` users two ways: :class:`SurpriseRecommender` ranking from the
learned arrays in batches (``recommend_codes``: scores, seen-item masking and top-k;
median of ``--repeats``, with the scoring share shown apart), and the per-pair way, calling
``algo.predict(u, i, clip=False)`` for every (user, item) and sorting each user's row
(one run). It prints both times, the ratio and whether the lists are identical (same
tie rule: float32 scores, higher first, then lower item code). Both run with ``--threads`` BLAS
threads (default 1). ``--json`` without a path prints the numbers as JSON instead of the table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.errors import ConfigError
from bench.perf.common import add_json_option, emit, time_runs

HELP = "Surprise SVD ranking: learned arrays vs per-pair predict"


def bench_surprise(args: argparse.Namespace) -> dict:
    import os

    from bench.data.movielens import load_ml_100k
    from bench.models.collaborative.surprise import SurpriseRecommender

    path = args.path
    if path is None:
        root = os.environ.get("BENCH_DATA_DIR")
        if not root:
            raise ConfigError("surprise: expected --path to ml-100k or BENCH_DATA_DIR set, "
                              "got neither")
        path = Path(root) / "ml-100k"
    x = load_ml_100k(path=path).interactions
    start = time.perf_counter()
    model = SurpriseRecommender(algorithm="SVD", random_state=args.seed).fit(x)
    fit_s = time.perf_counter() - start
    n = min(args.users, x.n_users)
    users = np.sort(np.random.default_rng(args.seed).choice(x.n_users, n, replace=False))
    from threadpoolctl import threadpool_limits

    limits = None if args.threads == 0 else args.threads
    with threadpool_limits(limits=limits, user_api="blas"):
        timing, top = time_runs(lambda: model.recommend_codes(users, args.k), args.repeats)
        score_timing, _ = time_runs(lambda: model._score(users, None), args.repeats)

    def per_pair() -> np.ndarray:
        algo, known = model.algo_, np.flatnonzero(model.item_inner_ >= 0).tolist()
        out = np.full((n, args.k), -1, dtype=np.int64)
        for r, u in enumerate(users.tolist()):  # the per-pair way, deliberately
            row = np.full(model.n_items, np.nan, dtype=np.float32)
            row[known] = [algo.predict(u, i, clip=False).est for i in known]
            row[model.seen_[u].indices] = np.nan
            ok = np.flatnonzero(np.isfinite(row))
            best = ok[np.lexsort((ok, -row[ok]))][: args.k]
            out[r, : best.size] = best
        return out

    with threadpool_limits(limits=limits, user_api="blas"):
        pair_timing, ref = time_runs(per_pair, 1)
    return {
        "dataset": str(path),
        "ratings": len(x),
        "items": int((model.item_inner_ >= 0).sum()),
        "users": n,
        "k": args.k,
        "blas_threads": args.threads,
        "fit_seconds": fit_s,
        "vectorised": timing,
        "vectorised_scores_only": score_timing,
        "per_pair_predict": pair_timing,
        "speedup": pair_timing["median_seconds"] / timing["median_seconds"],
        "identical": bool(np.array_equal(top.items, ref)),
    }


def _print_surprise(out: dict) -> None:
    print(
        f"Surprise SVD top-{out['k']} on {out['dataset']} ({out['ratings']:,} ratings, "
        f"{out['items']:,} items), {out['users']} users; fit {out['fit_seconds']:.2f} s; "
        f"BLAS threads: {out['blas_threads'] or 'library default'}"
    )
    vec, pair = out["vectorised"], out["per_pair_predict"]
    print(f"{'way':28s} {'wall s':>9s}  runs (median)")
    runs = len(vec["seconds"])
    print(f"{'vectorised (learned arrays)':28s} {vec['median_seconds']:9.4f}  {runs}")
    only = out["vectorised_scores_only"]["median_seconds"]
    print(f"{'  of which scores (_score)':28s} {only:9.4f}  {runs}")
    print(f"{'per-pair algo.predict':28s} {pair['median_seconds']:9.4f}  1")
    alone = pair["median_seconds"] / only
    print(
        f"speed-up: {out['speedup']:,.0f}x (scoring alone: {alone:,.0f}x); "
        f"identical lists: {out['identical']}"
    )


def add_arguments(q) -> None:
    q.add_argument("--users", type=int, default=100, help="sampled users")
    q.add_argument("--k", type=int, default=10, help="list length")
    q.add_argument("--path", type=Path, default=None, help="ml-100k folder")
    q.add_argument("--repeats", type=int, default=20, help="runs of the vectorised way")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS threads for both ways (default 1: a per-core comparison; 0 = library "
        "default, which collapses when the machine is oversubscribed)",
    )
    add_json_option(q)


def run(args, parser) -> int:
    if args.users <= 0 or args.k <= 0 or args.repeats <= 0:
        parser.error("--users, --k and --repeats must be positive")
    if args.seed < 0:
        parser.error(f"--seed: expected an integer >= 0, got {args.seed}")
    out = bench_surprise(args)
    return emit(out, args.json, _print_surprise)
