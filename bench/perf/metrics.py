"""``bench perf metrics``: the ranking evaluator against pytrec_eval (and ranx) on top-k lists.

``bench perf metrics --users 100000 --items 20000 --compare``
``bench perf metrics --dataset movielens_small --model cf_als --tile 150 --compare``

``metrics`` times :func:`bench.metrics.evaluate_rankings` on top-``--k`` lists (default
top-100) for ``--metrics`` at ``--cutoffs`` (default: the issue's precision, recall,
NDCG and MAP at 10): median of ``--repeats`` runs after one untimed warm-up call (whose
time, which includes loading or compiling the evaluator's kernels, is reported), as users
per second, with the peak memory of one call (numpy allocations seen by ``tracemalloc``,
and the growth of the process high-water RSS after resetting it, see
:func:`_peak_rss_growth`). Each run alternates with the **memory-bandwidth floor** of
the same input (:func:`input_reader`: one streaming read of every input byte the
evaluator needs), so the ratio of the two medians says how far the evaluator is from
merely reading its input. The load average is recorded before and after.
``--compare`` also times pytrec_eval on the same input (the same measures cut at the same
cutoffs; ``recip_rank`` for MRR, ``success`` for hit rate), separately for building its
input dicts and for evaluating, and ranx when it is installed (its numba kernels are
compiled on a warm-up call first; its input is built from the same dicts); each engine's
largest difference from ours over the per-metric means is printed as a sanity check.
``--json PATH`` writes the numbers. This module is a script: it prints.

Inputs (``--dataset``):

- ``synthetic`` (default): ``--users`` x ``--items``; relevant items drawn from a Zipf-like
  popularity (mean ``--relevant`` per user, binary gains); lists are distinct items from
  the popular head of the catalogue; about 5% of users get a short list (padded with
  ``-1``), 1% an empty one, and 2% have no relevant item (the evaluator excludes and
  counts them).
- ``movielens_small``: real lists and relevance. The embedded MovieLens small data is
  split with the random per-user holdout (``configs/split/holdout.yaml``, seed
  ``--seed``), ``--model`` (a ``configs/model`` name, default ``rule_popular``; e.g.
  ``cf_als``) is fitted on the training part and recommends top-``--k`` to every user
  (seen items excluded); relevant = test ratings >= 4. ``--tile N`` repeats those users
  ``N`` times (distinct rows, same lists) to time it at scale.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from bench.errors import ConfigError
from bench.metrics import evaluate_rankings, metric_key
from bench.perf.common import add_json_option, emit, rss_kb, time_runs

DEFAULT_CUTOFFS = (10,)
DEFAULT_METRICS = ("precision", "recall", "ndcg", "map")
# our metric name -> pytrec_eval measure (cut at k) ; recip_rank has no cutoff.
_TREC_NAMES = {
    "precision": "P",
    "recall": "recall",
    "ndcg": "ndcg_cut",
    "map": "map_cut",
    "hit_rate": "success",
}
# our metric name -> ranx metric (``name@k``)
_RANX_NAMES = {
    "precision": "precision",
    "recall": "recall",
    "ndcg": "ndcg",
    "map": "map",
    "mrr": "mrr",
    "hit_rate": "hit_rate",
}


def synthetic_rankings(
    n_users: int, k: int, n_items: int, *, mean_relevant: float = 15.0, seed: int = 0
) -> tuple[np.ndarray, sp.csr_matrix]:
    """Deterministic synthetic ``(recs, relevant)`` for benchmarking (see module docstring)."""
    if not 0 < k <= n_items:
        raise ConfigError(f"--k: expected 1 <= k <= --items ({n_items}), got {k}")
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


def movielens_rankings(
    model_name: str, k: int, *, seed: int = 0, tile: int = 1
) -> tuple[np.ndarray, sp.csr_matrix]:
    """Real ``(recs, relevant)``: ``model_name`` on movielens_small (see module docstring)."""
    import yaml

    from bench.cli import config_dir
    from bench.config import eval_settings
    from bench.data.movielens import load_movielens_small
    from bench.evaluation import relevance
    from bench.targets import build

    cdir = config_dir()

    def node(path: Path) -> dict:
        raw = yaml.safe_load(path.read_text())
        raw.pop("defaults", None)
        return {key: (seed if value == "${seed}" else value) for key, value in raw.items()}

    model_path = cdir / "model" / f"{model_name}.yaml"
    if not model_path.is_file():
        raise ConfigError(f"--model: expected a model config name, got {model_name!r} "
                          f"(no {model_path})")
    dataset = load_movielens_small()
    split = build(node(cdir / "split" / "holdout.yaml"), "split").split(dataset.interactions)[0]
    model = build(node(model_path), f"models.{model_name}")
    model.fit(split.train, item_features=dataset.item_features,
              user_features=dataset.user_features)
    rel, _, _ = relevance(split, eval_settings(None))
    users = np.arange(rel.shape[0])
    recs = model.recommend_codes(users, k).items.astype(np.int32)
    if tile > 1:
        recs = np.tile(recs, (tile, 1))
        rel = sp.vstack([rel] * tile, format="csr")
    return recs, rel


def _peak_rss_growth(fn) -> tuple[float | None, object]:
    """(MiB the process high-water RSS grew while ``fn`` ran, its result).

    The high-water mark is reset first (``/proc/self/clear_refs``, Linux), so this is the
    peak of ``fn`` over the RSS before it, whatever ran earlier. ``None`` where the kernel
    does not allow the reset.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = rss_kb()
    except OSError:
        return None, fn()
    result = fn()
    return (rss_kb("VmHWM") - before) / 1024, result


def _tracemalloc_peak(fn) -> float:
    """Peak MiB of Python/numpy allocations while ``fn`` runs (tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def bench_metrics(args: argparse.Namespace) -> dict:
    if args.dataset == "movielens_small":
        recs, relevant = movielens_rankings(args.model, args.k, seed=args.seed, tile=args.tile)
    else:
        recs, relevant = synthetic_rankings(
            args.users, args.k, args.items, seed=args.seed, mean_relevant=args.relevant
        )
    n_users, n_items = relevant.shape
    cutoffs = tuple(c for c in args.cutoffs if c <= recs.shape[1]) or (recs.shape[1],)
    metrics = tuple(args.metrics)

    def ours():
        return evaluate_rankings(recs, relevant, cutoffs, metrics)

    load_before = os.getloadavg()
    start = time.perf_counter()
    ours()  # warm-up: the first call loads (or compiles) the evaluator's kernels
    first_s = time.perf_counter() - start
    read_once = input_reader(recs, relevant, max(cutoffs))
    read_once()
    # ours and the floor interleaved (A, B, A, B...): a change of load hits both
    timing, floor, ev = _interleaved(ours, read_once, args.repeats)
    timing["first_call_seconds"] = first_s
    timing["users_per_second"] = n_users / timing["median_seconds"]
    timing["peak_tracemalloc_mb"] = _tracemalloc_peak(ours)
    timing["peak_rss_growth_mb"] = _peak_rss_growth(ours)[0]
    floor["bytes"] = read_once.bytes
    floor["gb_per_second"] = read_once.bytes / floor["median_seconds"] / 1e9
    floor["ours_over_floor"] = timing["median_seconds"] / floor["median_seconds"]
    out = {
        "dataset": args.dataset,
        "model": args.model if args.dataset == "movielens_small" else None,
        "users": n_users,
        "k": int(recs.shape[1]),
        "items": n_items,
        "relevant_entries": relevant.nnz,
        "metrics": list(metrics),
        "cutoffs": list(cutoffs),
        "repeats": args.repeats,
        "evaluated_users": int(ev.users.size),
        "excluded_users": ev.n_excluded,
        "load_average": load_before,
        "recspectrum": timing,
        "read_floor": floor,
    }
    if args.compare:
        import pytrec_eval

        start = time.perf_counter()
        qrels, run = _trec_inputs(recs, relevant)
        build_s = time.perf_counter() - start
        cut = ",".join(str(c) for c in cutoffs)
        measures = {f"{_TREC_NAMES[m]}.{cut}" for m in metrics if m in _TREC_NAMES}
        if "mrr" in metrics:
            measures.add("recip_rank")

        def theirs():  # building the evaluator (it indexes the qrels) counts as evaluating
            return pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)

        trec, res = time_runs(theirs, args.compare_repeats)
        trec["peak_rss_growth_mb"] = _peak_rss_growth(theirs)[0]
        trec["build_dicts_seconds"] = build_s
        trec["users_per_second"] = n_users / trec["median_seconds"]
        trec["users_per_second_incl_dicts"] = n_users / (trec["median_seconds"] + build_s)
        trec["speedup"] = trec["median_seconds"] / timing["median_seconds"]
        trec["max_abs_mean_difference"] = _max_mean_difference(
            ev, _trec_means(res, ev, metrics, cutoffs, recs.shape[1])
        )
        out["pytrec_eval"] = trec
        ranx_out = None
        if args.ranx:
            ranx_out = _bench_ranx(qrels, run, ev, metrics, cutoffs, timing, n_users, args)
        if ranx_out is not None:
            out["ranx"] = ranx_out
    out["load_average_after"] = os.getloadavg()
    return out


def input_reader(recs: np.ndarray, relevant, kmax: int):
    """A function reading once every input byte the evaluator must read: the first
    ``kmax`` columns of ``recs`` and the relevance CSR (``indptr``, ``indices`` and the
    gains, which it checks). Its time is the memory-bandwidth floor of an evaluation: a
    streaming pass (one SIMD reduction per array) over contiguous copies made beforehand,
    so only the bytes the evaluator needs are read, at the machine's read bandwidth.
    ``reader.bytes`` is how many."""
    rel = relevant.tocsr()
    arrays = (np.ascontiguousarray(recs[:, :kmax]), rel.indptr, rel.indices, rel.data)

    def reader() -> float:
        return sum(float(np.maximum.reduce(a, axis=None)) for a in arrays if a.size)

    reader.bytes = sum(a.nbytes for a in arrays)
    return reader


def _interleaved(fn, other, repeats: int) -> tuple[dict, dict, object]:
    """Time ``fn`` and ``other`` alternately ``repeats`` times each: (fn's timing,
    other's timing, fn's last result), as :func:`~bench.perf.common.time_runs`."""
    a_runs, b_runs, result = [], [], None
    for _ in range(repeats):
        a, result = time_runs(fn, 1)
        b, _ = time_runs(other, 1)
        a_runs.append(a)
        b_runs.append(b)

    def merged(runs):
        wall = [r["seconds"][0] for r in runs]
        cpu = [r["cpu_seconds"][0] for r in runs]
        return {"seconds": wall, "cpu_seconds": cpu, "median_seconds": statistics.median(wall),
                "median_cpu_seconds": statistics.median(cpu)}

    return merged(a_runs), merged(b_runs), result


def _bench_ranx(qrels, run, ev, metrics, cutoffs, ours_timing, n_users, args) -> dict | None:
    """ranx on the same dicts, or None when it is not installed."""
    try:
        import ranx
    except ImportError:
        return None
    names = [f"{_RANX_NAMES[m]}@{c}" for m in metrics for c in cutoffs]
    start = time.perf_counter()
    qrels_r, run_r = ranx.Qrels(qrels), ranx.Run(run)
    build_s = time.perf_counter() - start
    few = list(run)[:10]  # compile the numba kernels outside the timing
    ranx.evaluate(ranx.Qrels({u: qrels[u] for u in few if u in qrels}),
                  ranx.Run({u: run[u] for u in few if u in qrels}), names)

    def theirs():
        return ranx.evaluate(qrels_r, run_r, names, return_mean=False, make_comparable=True)

    timing, res = time_runs(theirs, args.compare_repeats)
    timing["peak_rss_growth_mb"] = _peak_rss_growth(theirs)[0]
    timing["build_inputs_seconds"] = build_s
    timing["users_per_second"] = n_users / timing["median_seconds"]
    timing["speedup"] = timing["median_seconds"] / ours_timing["median_seconds"]
    # ranx returns per-query arrays in the order of its run's (sorted) query ids
    ids = list(run_r.keys()) if hasattr(run_r, "keys") else sorted(run)
    means = {}
    for m in metrics:
        for c in cutoffs:
            values = dict(zip(ids, np.asarray(res[f"{_RANX_NAMES[m]}@{c}"]).tolist(),
                              strict=False))
            means[metric_key(m, c)] = _mean_over(ev, values)
    timing["max_abs_mean_difference"] = _max_mean_difference(ev, means)
    timing["version"] = getattr(ranx, "__version__", None)
    return timing


def _mean_over(ev, values: dict) -> float:
    """Mean over our evaluated users of a per-user dict (absent = empty list = 0)."""
    return float(np.mean([values.get(str(u), 0.0) for u in ev.users.tolist()]))


def _trec_means(res: dict, ev, metrics, cutoffs, k: int) -> dict[str, float]:
    means = {}
    for m in metrics:
        for c in cutoffs:
            if m in _TREC_NAMES:
                name = f"{_TREC_NAMES[m]}_{c}"
            elif m == "mrr" and c == k:  # recip_rank has no cutoff: MRR@k only at full length
                name = "recip_rank"
            else:
                continue
            means[metric_key(m, c)] = _mean_over(
                ev, {u: r[name] for u, r in res.items()}
            )
    return means


def _max_mean_difference(ev, theirs: dict[str, float]) -> float:
    """Largest |our mean - their mean| over the metrics both computed."""
    worst = 0.0
    for key, value in theirs.items():
        worst = max(worst, abs(value - float(np.mean(ev.per_user[key]))))
    return worst


def _print_table(out: dict) -> None:
    src = out["dataset"] + (f" ({out['model']} lists)" if out["model"] else "")
    print(
        f"metrics benchmark [{src}]: {out['users']:,} users x top-{out['k']}, "
        f"{out['items']:,} items, {out['relevant_entries']:,} relevant entries; "
        f"{','.join(out['metrics'])} @ {out['cutoffs']} ({out['evaluated_users']:,} "
        f"evaluated, {out['excluded_users']:,} without relevant items); load average "
        f"{out['load_average'][0]:.2f} before, {out['load_average_after'][0]:.2f} after"
    )
    ours = out["recspectrum"]
    rows = [("recspectrum evaluate_rankings", ours, ours.get("peak_rss_growth_mb"))]
    extra = []
    for engine, label in (("pytrec_eval", "pytrec_eval evaluate"), ("ranx", "ranx evaluate")):
        if engine in out:
            rows.append((label, out[engine], out[engine].get("peak_rss_growth_mb")))
    print(f"{'engine':32s} {'median s':>9s} {'min s':>8s} {'max s':>8s} {'users/s':>12s} "
          f"{'x ours':>7s} {'peak MB':>8s}  runs")
    for name, t, rss in rows:
        ratio = t["median_seconds"] / ours["median_seconds"]
        rss_s = f"{rss:8.1f}" if rss is not None else f"{'':8s}"
        print(f"{name:32s} {t['median_seconds']:9.4f} {min(t['seconds']):8.4f} "
              f"{max(t['seconds']):8.4f} {out['users'] / t['median_seconds']:12,.0f} "
              f"{ratio:7.1f} {rss_s}  {len(t['seconds'])}")
    if "pytrec_eval" in out:
        t = out["pytrec_eval"]
        extra.append(f"pytrec_eval input dicts: {t['build_dicts_seconds']:.3f} s")
    if "ranx" in out:
        extra.append(f"ranx Qrels/Run from the dicts: {out['ranx']['build_inputs_seconds']:.3f} s")
    print(f"ours: peak numpy allocations {ours['peak_tracemalloc_mb']:.1f} MiB (tracemalloc); "
          f"first call {ours['first_call_seconds']:.3f} s (loads the kernels)"
          + ("; " + "; ".join(extra) if extra else ""))
    floor = out["read_floor"]
    print(f"memory-bandwidth floor (reading the {floor['bytes'] / 1e6:.1f} MB of inputs once, "
          f"interleaved with ours): {floor['median_seconds'] * 1e3:.2f} ms "
          f"({floor['gb_per_second']:.1f} GB/s); ours = {floor['ours_over_floor']:.1f}x the floor")
    for engine in ("pytrec_eval", "ranx"):
        if engine in out:
            print(f"speed-up over {engine}: {out[engine]['speedup']:,.1f}x; largest difference "
                  f"of means: {out[engine]['max_abs_mean_difference']:.2e}")


HELP = "the ranking evaluator vs pytrec_eval (and ranx) on top-k lists"


def add_arguments(p) -> None:
    p.add_argument("--dataset", choices=("synthetic", "movielens_small"), default="synthetic")
    p.add_argument("--model", default="rule_popular",
                   help="movielens_small: configs/model name making the lists (default "
                        "rule_popular)")
    p.add_argument("--tile", type=int, default=1,
                   help="movielens_small: repeat the users this many times (default 1)")
    p.add_argument("--users", type=int, default=100_000, help="synthetic users")
    p.add_argument("--k", type=int, default=100, help="list length")
    p.add_argument("--items", type=int, default=20_000, help="synthetic items")
    p.add_argument("--relevant", type=float, default=15.0, help="mean relevant items per user")
    p.add_argument(
        "--metrics",
        type=lambda s: tuple(x.strip() for x in s.split(",")),
        default=DEFAULT_METRICS,
        help="comma-separated (default precision,recall,ndcg,map)",
    )
    p.add_argument(
        "--cutoffs",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=DEFAULT_CUTOFFS,
        help="comma-separated (default 10; e.g. 1,5,10,20,50,100)",
    )
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare", action="store_true", help="also time pytrec_eval (and ranx)")
    p.add_argument("--ranx", action="store_true",
                   help="with --compare, also time ranx when installed (building its Qrels/Run "
                        "from dicts is slow: ~90 s for 20,000 users here)")
    p.add_argument(
        "--compare-repeats", type=int, default=1, help="pytrec_eval/ranx repeats (default 1)"
    )
    add_json_option(p)


def run(args, parser) -> int:
    if min(args.users, args.items, args.repeats, args.compare_repeats, args.tile) <= 0:
        parser.error("--users, --items, --repeats, --compare-repeats and --tile must be positive")
    if args.seed < 0:
        parser.error(f"--seed: expected an integer >= 0, got {args.seed}")
    if not (math.isfinite(args.relevant) and args.relevant > 0):
        parser.error(f"--relevant: expected a finite number > 0, got {args.relevant}")
    bad = [m for m in args.metrics if m not in _RANX_NAMES]
    if bad:
        parser.error(f"--metrics: unknown {bad}; expected some of {list(_RANX_NAMES)}")
    out = bench_metrics(args)
    return emit(out, args.json, _print_table)
