"""``bench perf metrics``: the ranking evaluator against pytrec_eval on synthetic lists.

``bench perf metrics --users 100000 --k 100 --items 20000 --compare``

``metrics`` times :func:`bench.metrics.evaluate_rankings` (hit matrix + precision, recall,
NDCG, MAP, MRR and hit rate at every cutoff) on synthetic top-k lists: median of
``--repeats`` runs, reported as users per second. ``--compare`` also times pytrec_eval on
the same input (``P``, ``recall``, ``ndcg_cut``, ``map_cut``, ``success`` at the same
cutoffs, and ``recip_rank``), separately for building its input dicts and for evaluating,
and prints the largest difference between the two engines' mean values as a sanity
check. ``--json PATH`` writes the numbers. This module is a script: it prints.

Synthetic input (``metrics``): relevant items drawn from a Zipf-like popularity (mean ``--relevant``
per user, binary gains); lists are distinct items from the popular head of the
catalogue; about 5% of users get a short list (padded with ``-1``), 1% an empty one, and
2% have no relevant item (the evaluator excludes and counts them).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from bench.metrics import evaluate_rankings, metric_key
from bench.perf.common import time_runs

DEFAULT_CUTOFFS = (1, 5, 10, 20, 50, 100)
# our metric name -> pytrec_eval measure (cut at k) ; recip_rank has no cutoff.
_TREC_NAMES = {
    "precision": "P",
    "recall": "recall",
    "ndcg": "ndcg_cut",
    "map": "map_cut",
    "hit_rate": "success",
}


def synthetic_rankings(
    n_users: int, k: int, n_items: int, *, mean_relevant: float = 15.0, seed: int = 0
) -> tuple[np.ndarray, sp.csr_matrix]:
    """Deterministic synthetic ``(recs, relevant)`` for benchmarking (see module docstring)."""
    if not 0 < k <= n_items:
        raise SystemExit(f"--k: expected 1 <= k <= --items ({n_items}), got {k}")
    rng = np.random.default_rng(seed)
    head = min(n_items, max(2 * k, n_items // 10))
    steps = np.arange(1, head)
    steps = steps[np.gcd(steps, head) == 1] if head > 1 else np.array([1])
    # a + b*j mod head with gcd(b, head) = 1 visits distinct items: a distinct list per user.
    start = rng.integers(0, head, n_users)[:, None]
    step = rng.choice(steps, n_users)[:, None]
    recs = ((start + step * np.arange(k)) % head).astype(np.int32)
    lengths = np.full(n_users, k)
    u = rng.random(n_users)
    lengths[u < 0.05] = rng.integers(1, k, int((u < 0.05).sum())) if k > 1 else 1
    lengths[u < 0.01] = 0
    recs[np.arange(k)[None, :] >= lengths[:, None]] = -1

    counts = rng.poisson(mean_relevant, n_users)
    counts[rng.random(n_users) < 0.02] = 0  # users without a relevant test item (excluded)
    rows = np.repeat(np.arange(n_users), counts)
    weight = 1.0 / np.arange(1, n_items + 1) ** 0.8
    cols = rng.choice(n_items, size=rows.size, p=weight / weight.sum())
    relevant = sp.csr_matrix(
        (np.ones(rows.size), (rows, cols)), shape=(n_users, n_items), dtype=np.float64
    )
    relevant.sum_duplicates()
    relevant.data[:] = 1.0
    return recs, relevant


def _trec_inputs(recs: np.ndarray, relevant: sp.csr_matrix) -> tuple[dict, dict]:
    """qrels and run dicts; score = K - rank keeps the list order (distinct scores)."""
    k = recs.shape[1]
    qrels: dict[str, dict[str, int]] = {}
    coo = relevant.tocoo()
    for user, item in zip(coo.row.tolist(), coo.col.tolist(), strict=True):
        qrels.setdefault(str(user), {})[str(item)] = 1
    run: dict[str, dict[str, float]] = {}
    for user, row in enumerate(recs.tolist()):
        docs = {str(item): float(k - rank) for rank, item in enumerate(row) if item >= 0}
        if docs:
            run[str(user)] = docs
    return qrels, run


def bench_metrics(args: argparse.Namespace) -> dict:
    cutoffs = tuple(c for c in args.cutoffs if c <= args.k) or (args.k,)
    recs, relevant = synthetic_rankings(
        args.users, args.k, args.items, seed=args.seed, mean_relevant=args.relevant
    )
    metrics = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")

    def ours():
        return evaluate_rankings(recs, relevant, cutoffs, metrics)

    evaluate_rankings(recs[:100], relevant[:100], cutoffs, metrics)  # warm-up
    timing, ev = time_runs(ours, args.repeats)
    timing["users_per_second"] = args.users / timing["median_seconds"]
    out = {
        "users": args.users,
        "k": args.k,
        "items": args.items,
        "relevant_entries": relevant.nnz,
        "cutoffs": list(cutoffs),
        "repeats": args.repeats,
        "evaluated_users": int(ev.users.size),
        "excluded_users": ev.n_excluded,
        "recspectrum": timing,
    }
    if args.compare:
        import pytrec_eval

        start = time.perf_counter()
        qrels, run = _trec_inputs(recs, relevant)
        build_s = time.perf_counter() - start
        cut = ",".join(str(c) for c in cutoffs)
        measures = {f"{m}.{cut}" for m in _TREC_NAMES.values()} | {"recip_rank"}

        def theirs():  # building the evaluator (it indexes the qrels) counts as evaluating
            return pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)

        trec, res = time_runs(theirs, args.compare_repeats)
        trec["build_dicts_seconds"] = build_s
        trec["users_per_second"] = args.users / trec["median_seconds"]
        trec["users_per_second_incl_dicts"] = args.users / (trec["median_seconds"] + build_s)
        trec["max_abs_mean_difference"] = _max_mean_difference(ev, res, cutoffs, args.k)
        out["pytrec_eval"] = trec
    return out


def _max_mean_difference(ev, res: dict, cutoffs, k: int) -> float:
    """Largest |our mean - pytrec_eval mean| over every metric (users absent from its
    results, i.e. with an empty list, score 0 there)."""
    names = [str(u) for u in ev.users.tolist()]
    worst = 0.0
    pairs = [(metric_key(m, c), f"{t}_{c}") for m, t in _TREC_NAMES.items() for c in cutoffs]
    if k in cutoffs:  # recip_rank has no cutoff: it equals MRR@k only at the full length
        pairs.append((metric_key("mrr", k), "recip_rank"))
    for ours, theirs in pairs:
        values = np.array([res[u][theirs] if u in res else 0.0 for u in names])
        worst = max(worst, abs(float(np.mean(values)) - float(np.mean(ev.per_user[ours]))))
    return worst


def _print_table(out: dict) -> None:
    print(
        f"metrics benchmark: {out['users']:,} users x top-{out['k']}, {out['items']:,} items, "
        f"{out['relevant_entries']:,} relevant entries, cutoffs {out['cutoffs']} "
        f"({out['evaluated_users']:,} evaluated, {out['excluded_users']:,} without relevant "
        "items)"
    )
    ours = out["recspectrum"]
    rows = [
        (
            "recspectrum evaluate_rankings",
            ours["median_seconds"],
            ours["median_cpu_seconds"],
            len(ours["seconds"]),
        )
    ]
    if "pytrec_eval" in out:
        t = out["pytrec_eval"]
        rows.append(
            (
                "pytrec_eval evaluate",
                t["median_seconds"],
                t["median_cpu_seconds"],
                len(t["seconds"]),
            )
        )
        rows.append(
            (
                "pytrec_eval + building its dicts",
                t["median_seconds"] + t["build_dicts_seconds"],
                None,
                None,
            )
        )
    print(f"{'engine':32s} {'wall s':>8s} {'cpu s':>8s} {'users/s':>12s}  runs (median)")
    for name, wall, cpu, runs in rows:
        cpu_s = f"{cpu:8.3f}" if cpu is not None else f"{'':8s}"
        print(f"{name:32s} {wall:8.3f} {cpu_s} {out['users'] / wall:12,.0f}  {runs or ''}")
    if "pytrec_eval" in out:
        speedup = out["pytrec_eval"]["median_seconds"] / ours["median_seconds"]
        print(
            f"speed-up over pytrec_eval evaluate: {speedup:,.1f}x; largest difference of "
            f"means: {out['pytrec_eval']['max_abs_mean_difference']:.2e}"
        )


HELP = "the ranking evaluator vs pytrec_eval on synthetic top-k lists"


def add_arguments(p) -> None:
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--k", type=int, default=100, help="list length")
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--relevant", type=float, default=15.0, help="mean relevant items per user")
    p.add_argument(
        "--cutoffs",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=DEFAULT_CUTOFFS,
        help="comma-separated (default 1,5,10,20,50,100)",
    )
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare", action="store_true", help="also time pytrec_eval")
    p.add_argument(
        "--compare-repeats", type=int, default=1, help="pytrec_eval repeats (slow; default 1)"
    )
    p.add_argument("--json", type=Path, default=None, help="write the results here")


def run(args, parser) -> int:
    if args.users <= 0 or args.items <= 0 or args.repeats <= 0 or args.compare_repeats <= 0:
        parser.error("--users, --items, --repeats and --compare-repeats must be positive")
    out = bench_metrics(args)
    _print_table(out)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0

