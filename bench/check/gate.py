"""Comparing a run with its baseline: which (model, metric, segment) regressed.

A **regression** is a (model, metric, segment) whose paired per-user difference from the
baseline (current - baseline, over the users and folds present in both) is

1. worse than the tolerance: ``diff < -max(abs, rel x baseline mean)`` for a
   higher-is-better metric, ``diff > max(...)`` for a lower-is-better one such as ARP
   (the direction comes from the metric registry; ``check.tolerance``, per metric or
   ``default``), **and**
2. statistically significant: its paired t-test p-value, Holm-corrected over every test
   the gate runs (models x metrics x segments), is at most ``stats.alpha``.

Both are needed: a large drop on a handful of users is noise, and a significant drop of
0.0001 does not matter. With ``check.seed_spread: k`` (and training seeds, ``seeds``)
there is a third condition: the change must also exceed ``k`` times the standard
deviation over training seeds recorded in the baseline or in the run, whichever is
larger (:mod:`bench.check.spread`); a change that does not is ``within seed spread``.
Values are each user's mean over the seeds. The interval shown with each test (``low``,
``high``) is the paired t interval at the level of its Holm step
(:func:`bench.stats.holm_t_intervals`): it excludes 0 exactly when the test is
significant, so it never contradicts the status. An **improvement** is the mirror image;
it is reported, and fails only with ``check.fail_on_improvement`` (a stale baseline hides
future regressions). Models only in the run (new) or only in the baseline (missing) are
reported and fail only when ``check.fail_on_new_model`` / ``fail_on_missing_model`` say so.

Before any value is compared, the run's evaluation card must match the baseline's on
everything that makes numbers comparable (dataset and split fingerprints, relevance,
candidates, cutoffs, ...): otherwise :class:`~bench.errors.IncomparableError` says what
differs (exit code 2).

The gate never passes on less than the baseline promises (:mod:`bench.check.promise`):
for every model in both, every gated metric and segment is tested on exactly the
baseline's users with a value. Other user ids, fold numbers, segment labels or missing
values on either side, a baseline without a model of the run, or no paired test at all
are an ``IncomparableError`` naming what did not match (exit code 2), never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.check.baseline import Baseline
from bench.check.promise import key_mismatches, label_mismatches, raise_mismatches, value_mismatch
from bench.check.spread import seed_sds, segment_spreads
from bench.config import CheckSettings, history_labels
from bench.errors import IncomparableError
from bench.metrics.keys import NEW_ITEMS, MetricKey
from bench.metrics.registry import direction
from bench.reporting.analysis import RunData, paired_frame
from bench.reporting.card import card_differences
from bench.stats import holm_t_intervals

__all__ = ["EXIT_OK", "EXIT_REGRESSION", "GateResult", "run_gate"]

EXIT_OK = 0
EXIT_REGRESSION = 1


@dataclass(frozen=True, eq=False)
class GateResult:
    """What the gate found.

    Attributes:
        tests: one row per (model, metric, segment): ``n, baseline, current, diff, sd,
            allowed, p_t, p_wilcoxon, unmatched, p_holm, low, high, level, status`` with
            status one of ``regression``, ``improvement``, ``within tolerance``
            (significant but small), ``within seed spread`` (beyond the tolerance, not
            beyond ``check.seed_spread`` x the seed sd, then in column ``seed_sd``),
            ``no change`` (not significant).
        new_models: models run but absent from the baseline.
        missing_models: baseline models not run.
        failures: human-readable reasons the gate fails (empty = pass).
    """

    name: str
    baseline_path: str
    tests: pd.DataFrame
    new_models: list[str] = field(default_factory=list)
    missing_models: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    alpha: float = 0.05
    #: do new / missing models fail the gate (check.fail_on_new_model, ...)?
    fail_new: bool = False
    fail_missing: bool = False
    #: check.seed_spread (k), None = off
    seed_spread: float | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSION if self.failures else EXIT_OK

    @property
    def regressions(self) -> pd.DataFrame:
        return self.tests[self.tests["status"] == "regression"]

    @property
    def improvements(self) -> pd.DataFrame:
        return self.tests[self.tests["status"] == "improvement"]


def run_gate(data: RunData, baseline: Baseline, settings: CheckSettings) -> GateResult:
    """Compare a finished run (its folder, loaded) with a baseline; see the module docstring."""
    diffs = card_differences(data.card.get("comparable", {}),
                             baseline.card.get("comparable", {}))
    if diffs:
        raise IncomparableError(
            f"{baseline.path}: the baseline was made on different data or protocol, so its "
            "numbers cannot be compared (update it with `bench check --update-baseline` if "
            "the change is intended): " + "; ".join(diffs)
        )
    metrics = list(settings.metrics)
    absent = [m for m in metrics if m not in baseline.metrics]
    if absent:
        raise IncomparableError(
            f"{baseline.path}: check.metrics {absent} are not in the baseline (it has "
            f"{baseline.metrics}); rewrite it with `bench check --update-baseline`"
        )
    st = data.stats
    run_models = data.models
    base_models = list(baseline.models)
    common = [m for m in run_models if m in base_models]
    if not common:
        raise IncomparableError(
            f"baseline {baseline.path}: no model in common with this run (the baseline has "
            f"{base_models}, this run {run_models}), so there is nothing to compare; expected "
            "the same model names (update the baseline with `bench check --update-baseline` "
            "if the change is intended)"
        )
    # what the baseline promises: every common model on exactly the baseline's users
    refs = {m: baseline.per_user[baseline.per_user["model"] == m] for m in common}
    curs = {m: data.users(m) for m in common}
    raise_mismatches(baseline.path, [x for m in common
                                     for x in key_mismatches(m, refs[m], curs[m])])
    raise_mismatches(baseline.path, [
        x for kind in settings.segments if kind not in ("all", NEW_ITEMS)
        for x in label_mismatches(kind, pd.concat(refs.values()), pd.concat(curs.values()))
    ])
    rows, broken = [], []
    for model in common:
        cur, ref = _served_as_zero(curs[model], refs[model], metrics)
        for kind, label, col, ref_part, cur_part in _segments(ref, cur, settings, data):
            for metric in metrics:
                column = (str(MetricKey.parse(metric).over(NEW_ITEMS)) if col == NEW_ITEMS
                          else metric)
                problem = value_mismatch(model, column, label, ref_part, cur_part)
                if problem:
                    broken.append(problem)
                    continue
                if column not in ref_part or column not in cur_part:
                    continue  # no value on either side: e.g. no new item in the test sets
                frame = paired_frame(ref_part, cur_part, [column], st)
                r = frame.iloc[0]
                promised = int(ref_part[column].notna().sum())
                if r["n"] != promised:  # the checks above make this unreachable
                    broken.append(f"model {model} {column} [{label}]: {int(r['n'])} paired "
                                  f"users of the baseline's {promised}")
                if r["n"] == 0:  # e.g. no user in this segment has a new relevant item
                    continue
                rows.append({
                    "model": model, "metric": metric, "segment": label, "by": kind,
                    "n": int(r["n"]), "baseline": r["mean_a"], "current": r["mean_b"],
                    "diff": r["diff"], "sd": r["sd"],
                    "allowed": settings.allowed_drop(metric, r["mean_a"]),
                    "p_t": r["p_t"], "p_wilcoxon": r["p_wilcoxon"],
                    "unmatched": int(r["unmatched"]),
                })
    raise_mismatches(baseline.path, broken)
    if not rows:
        raise IncomparableError(
            f"baseline {baseline.path}: no paired comparison is possible (models {common}, "
            f"check.metrics {metrics}, check.segments {list(settings.segments)}: no user has "
            "a value on both sides); the gate does not pass on nothing"
        )
    tests = pd.DataFrame(rows, columns=[
        "model", "metric", "segment", "by", "n", "baseline", "current", "diff", "sd",
        "allowed", "p_t", "p_wilcoxon", "unmatched"])
    alpha = float(st["alpha"])
    # the verdict is Holm's (p_holm <= alpha), as before; the intervals agree with it
    cis = holm_t_intervals(tests["diff"].to_numpy(np.float64), tests["sd"].to_numpy(np.float64),
                           tests["n"].to_numpy(np.float64),
                           tests["p_t"].to_numpy(dtype=np.float64), alpha)
    tests["p_holm"] = cis.p_adjusted
    tests["low"], tests["high"], tests["level"] = cis.low, cis.high, cis.level
    significant = cis.rejected
    # the change in the metric's good direction (= diff for higher-is-better metrics)
    sign = np.array([direction(m) for m in tests["metric"]], dtype=np.float64)
    gain = sign * tests["diff"].to_numpy(dtype=np.float64)
    worse = gain < -tests["allowed"].to_numpy(np.float64)
    better = gain > tests["allowed"].to_numpy(np.float64)
    beyond = np.ones(len(tests), dtype=bool)  # beyond the seed spread (always, when off)
    if settings.seed_spread is not None:
        tests["seed_sd"] = seed_sds(tests, baseline.seed_spread,
                                    segment_spreads(data.seed_rows, metrics))
        beyond = np.abs(gain) > settings.seed_spread * tests["seed_sd"].to_numpy(np.float64)
    status = np.where(significant & worse & beyond, "regression",
                      np.where(significant & better & beyond, "improvement",
                               np.where(significant & (worse | better), "within seed spread",
                                        np.where(significant, "within tolerance",
                                                 "no change"))))
    tests["status"] = status

    new = [m for m in run_models if m not in base_models]
    missing = [m for m in base_models if m not in run_models]
    failures = [
        f"{r.model} {r.metric} [{r.segment}]: {r.diff:+.4f} (baseline {r.baseline:.4f} -> "
        f"{r.current:.4f}, allowed drop {r.allowed:.4f}, Holm p = {r.p_holm:.2g}, n = {r.n})"
        for r in tests[tests["status"] == "regression"].itertuples()
    ]
    if settings.fail_on_improvement:
        failures += [
            f"{r.model} {r.metric} [{r.segment}] improved {r.diff:+.4f}: the baseline is "
            "stale (check.fail_on_improvement)"
            for r in tests[tests["status"] == "improvement"].itertuples()
        ]
    if settings.fail_on_new_model and new:
        failures.append(f"models not in the baseline: {new} (check.fail_on_new_model)")
    if settings.fail_on_missing_model and missing:
        failures.append(f"baseline models not run: {missing} (check.fail_on_missing_model)")
    return GateResult(name=data.record.name, baseline_path=str(baseline.path), tests=tests,
                      new_models=new, missing_models=missing, failures=failures, alpha=alpha,
                      fail_new=settings.fail_on_new_model,
                      fail_missing=settings.fail_on_missing_model,
                      seed_spread=settings.seed_spread)


def _segments(ref: pd.DataFrame, cur: pd.DataFrame, settings: CheckSettings, data: RunData):
    """(kind, label, column marker, baseline rows, run rows) for every gated segment."""
    for kind in settings.segments:
        if kind == "all":
            yield kind, "all", "all", ref, cur
        elif kind == NEW_ITEMS:
            yield kind, NEW_ITEMS, NEW_ITEMS, ref, cur
        elif kind in ref and kind in cur:
            labels = list(dict.fromkeys(ref[kind].dropna()))
            if kind == "history_bucket":  # bucket order; a label of no bucket is still gated
                order = history_labels(data.record.eval["history_edges"])
                labels = ([b for b in order if b in labels]
                          + [b for b in labels if b not in order])
            for label in labels:
                # segment membership from the baseline: the same users on both sides
                keys = ref.loc[ref[kind] == label, ["fold", "user_id"]]
                part = cur.merge(keys, on=["fold", "user_id"])
                prefix = "history " if kind == "history_bucket" else "segment "
                yield kind, f"{prefix}{label}", "all", ref[ref[kind] == label], part


def _served_as_zero(cur: pd.DataFrame, ref: pd.DataFrame,
                    metrics: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A user one side served and the other could not (an empty list: NaN, "n/a" in the
    report) counts as 0 in the gate: they got nothing. So a model that stops serving users
    it used to serve fails as a regression (exit 1), not as an incomparable run, and one
    that starts serving more users shows an improvement. Users with no row on a side, or
    no value on either side, are left alone (the promise checks judge those)."""
    keys = ["fold", "user_id"]
    both = cur[keys].merge(ref[keys], on=keys)
    if both.empty:
        return cur, ref
    out = []
    for side, other in ((cur, ref), (ref, cur)):
        side = side.copy()
        shared = side.set_index(keys).index.isin(both.set_index(keys).index)
        lookup = other.set_index(keys)
        present = [m for m in metrics if m in side and m in other]
        # not served = every gated metric of the row is n/a; a column with no value at
        # all, or a lone null among values, is a damaged file for the promise checks
        unserved = side[present].isna().all(axis=1).to_numpy() if present else shared & False
        for metric in present:
            if side[metric].notna().sum() == 0:
                continue
            theirs = lookup[metric].reindex(side.set_index(keys).index).to_numpy()
            fill = shared & unserved & ~pd.isna(theirs)
            side.loc[fill, metric] = 0.0
        out.append(side)
    return out[0], out[1]
