"""The numbers behind a report, computed from a run folder alone.

:class:`RunData` loads what :func:`~bench.reporting.summary.write_results` wrote; the
functions below turn it into tidy frames (one row per model x metric, per ladder step x
segment, ...) that :mod:`bench.reporting.report` renders as tables and figures and that
``stats.json`` keeps. Nothing here trains or recommends.

Statistics (``bench.stats``): every mean gets a seeded percentile-bootstrap CI over the
evaluated users (user x fold rows for k-fold splits); no verdict is printed next to those.
Every comparison is paired per user (same users, same folds) and reports the mean
difference, the paired t-test and Wilcoxon signed-rank p-values and Cohen's d_z. Holm's
correction runs over each family of comparisons (:func:`correct_family`): models x metrics
against the baseline; the ladder's overall comparisons; the ladder's per-segment
comparisons. A difference is called *significant* when its Holm-corrected paired t-test
p-value is at most ``stats.alpha``, and the interval printed next to it is the paired t
interval at the level of its Holm step (:func:`bench.stats.holm_t_intervals`), which
excludes 0 exactly when the difference is significant. Each comparison also gets its
minimum detectable effect at 80% power (:data:`POWER`), tested at ``alpha / m`` for a family
of ``m`` (:mod:`bench.stats.power`). Wilcoxon is shown as a robustness check.

Training seeds (``seeds``, :mod:`bench.seeds`): ``per_user`` holds each user's mean over
the seeds, so every interval, test, segment and ladder step above is computed on
seed-averaged values; :func:`seed_table` gives the spread over seeds.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.config import FAMILIES
from bench.errors import DataError
from bench.metrics.keys import NEW_ITEMS, MetricKey
from bench.record import RunRecord, check_table, read_record
from bench.seeds import mean_over_seeds, seed_spread
from bench.stats import (
    bootstrap_means,
    holm,
    holm_t_intervals,
    min_detectable_effect,
    paired_comparison,
)

__all__ = [
    "POWER",
    "REALISTIC_LIFT",
    "RunData",
    "baseline_comparisons",
    "cold_start_curves",
    "correct_family",
    "headline",
    "history_curves",
    "ladder",
    "ladder_choice",
    "ladder_models",
    "metric_curves",
    "paired_frame",
    "seed_table",
    "segment_table",
    "tradeoff",
]

KEYS = ["model", "fold", "user_id"]

POWER = 0.8
"""The power at which the report states each comparison's minimum detectable effect."""

REALISTIC_LIFT = 0.10
"""A *realistic* lift, relative to the reference model's mean: 10%. Published gains of one
recommender over a tuned simpler one are mostly a few to a few tens of percent, so a test
that cannot see a 10% lift with 80% power cannot tell a worthwhile step from no step; the
report warns when a headline comparison's MDE exceeds it."""


@dataclass(frozen=True, eq=False)
class RunData:
    """A run folder's results, loaded: its record (:mod:`bench.record`) and tables."""

    folder: Path
    record: RunRecord
    per_user: pd.DataFrame
    curves: pd.DataFrame
    cold_start: pd.DataFrame | None
    card: dict
    #: with ``seeds``: ``per_user.parquet`` as written, one row per (model, fold, seed,
    #: user); ``per_user`` is then each user's mean over seeds. None without seeds.
    seed_rows: pd.DataFrame | None = None

    @classmethod
    def load(cls, folder: str | Path) -> RunData:
        """Load a run folder; a missing or unreadable file is a ``DataError`` naming it."""
        folder = Path(folder)
        record = read_record(folder)
        for name in record.files:
            check_table(folder, record, name)
        card = _read_json(folder / "card.json")
        rows = _read_parquet(folder / "per_user.parquet")
        curves = _read_parquet(folder / "curves.parquet")
        cold = folder / "cold_start.parquet"
        seeded = "seed" in rows
        return cls(folder, record, mean_over_seeds(rows), curves,
                   _read_parquet(cold) if cold.is_file() else None, card,
                   rows if seeded else None)

    @property
    def models(self) -> list[str]:
        return self.record.model_names

    @property
    def families(self) -> dict[str, str]:
        return self.record.families

    @property
    def stats(self) -> dict:
        return self.record.stats

    @property
    def headline_metric(self) -> str:
        return self.record.report["headline"]

    @property
    def k(self) -> int:
        return MetricKey.parse(self.headline_metric).k

    def compared_metrics(self) -> list[str]:
        """The paired-tested metrics that exist in this run (headline first)."""
        wanted = [self.headline_metric, *self.stats["metrics"]]
        return [m for m in dict.fromkeys(wanted) if m in self.per_user.columns]

    def mean_over_folds(self, model: str, key: str) -> float:
        return self.record.mean_over_folds(model, key)

    def seconds(self, model: str, key: str) -> float:
        return self.record.seconds(model, key)

    def users(self, model: str) -> pd.DataFrame:
        return self.per_user[self.per_user["model"] == model]

    def segment_columns(self) -> list[str]:
        """Label columns to break results down by, in report order."""
        cols = ["history_bucket"]
        if "segment" in self.per_user and self.per_user["segment"].notna().any():
            cols.append("segment")
        return cols


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: not found; is this a run folder written by bench?") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as JSON ({exc})") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError(f"{path}: not found; is this a run folder written by bench?") from None
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path}: cannot read it as Parquet ({first}); it is damaged: "
                        "rerun the experiment") from None


# ---------------------------------------------------------------------------- means and CIs
def headline(data: RunData, metrics: list[str]) -> pd.DataFrame:
    """Mean and bootstrap CI of each metric per model (long: model, family, metric, ...)."""
    st = data.stats
    rows = []
    for model in data.models:
        frame = data.users(model)
        cols = [m for m in metrics if m in frame]
        if not cols:
            continue
        ci = bootstrap_means(frame[cols].to_numpy(dtype=np.float64),
                             n_resamples=st["n_resamples"], confidence=st["confidence"],
                             seed=st["seed"])
        for j, metric in enumerate(cols):
            rows.append({"model": model, "family": data.families[model], "metric": metric,
                         "mean": float(np.atleast_1d(ci.mean)[j]),
                         "low": float(np.atleast_1d(ci.low)[j]),
                         "high": float(np.atleast_1d(ci.high)[j]),
                         "n": int(np.atleast_1d(ci.n)[j])})
    return pd.DataFrame(rows, columns=["model", "family", "metric", "mean", "low", "high", "n"])


def segment_table(data: RunData, metric: str) -> pd.DataFrame:
    """``metric`` mean and CI per model x segment (history buckets, rule segments, new items)."""
    st = data.stats
    rows = []
    for model in data.models:
        frame = data.users(model)
        for by, label, values in _segments(frame, metric, data):
            if len(values) == 0:
                continue
            ci = bootstrap_means(values, n_resamples=st["n_resamples"],
                                 confidence=st["confidence"], seed=st["seed"])
            rows.append({"model": model, "family": data.families[model], "by": by,
                         "segment": label, "users": int(np.sum(np.isfinite(values))),
                         "mean": float(ci.mean), "low": float(ci.low), "high": float(ci.high)})
    return pd.DataFrame(
        rows, columns=["model", "family", "by", "segment", "users", "mean", "low", "high"]
    )


def _segments(frame: pd.DataFrame, metric: str, data: RunData):
    """(by, label, per-user values) for every segment of ``frame``, in report order."""
    yield "all", "all", frame[metric].to_numpy(dtype=np.float64)
    for by in data.segment_columns():
        if by not in frame:
            continue
        labels = _ordered_labels(frame[by], data, by)
        for label in labels:
            yield by, str(label), frame.loc[frame[by] == label, metric].to_numpy(np.float64)
    new = str(MetricKey.parse(metric).over(NEW_ITEMS))
    if new in frame:
        values = frame[new].to_numpy(dtype=np.float64)
        yield NEW_ITEMS, NEW_ITEMS, values[np.isfinite(values)]


def _ordered_labels(column: pd.Series, data: RunData, by: str) -> list:
    present = list(dict.fromkeys(column.dropna()))
    if by == "history_bucket":
        from bench.config import history_labels

        order = history_labels(data.record.eval["history_edges"])
        return [b for b in order if b in present]
    return sorted(present, key=str)


# ---------------------------------------------------------------------------- paired tests
def paired_frame(a: pd.DataFrame, b: pd.DataFrame, metrics: list[str], st: dict,
                 on: list[str] | None = None) -> pd.DataFrame:
    """Paired comparison of per-user tables ``a`` (reference) and ``b`` on ``metrics``.

    Rows are matched on ``on`` (default ``fold, user_id``); users present in only one
    table are left out and counted in ``unmatched``. Returns one row per metric.
    """
    on = on or ["fold", "user_id"]
    merged = a[on + metrics].merge(b[on + metrics], on=on, suffixes=(".a", ".b"))
    unmatched = len(a) + len(b) - 2 * len(merged)
    va = merged[[f"{m}.a" for m in metrics]].to_numpy(dtype=np.float64)
    vb = merged[[f"{m}.b" for m in metrics]].to_numpy(dtype=np.float64)
    if len(merged) == 0:
        va = np.full((0, len(metrics)), np.nan)
        vb = va
    res = paired_comparison(va, vb, n_resamples=st["n_resamples"],
                            confidence=st["confidence"], seed=st["seed"])
    out = pd.DataFrame({"metric": metrics})
    # the bootstrap interval of the difference is left out on purpose: it is unadjusted,
    # and an interval is only shown next to a verdict once correct_family has made it agree
    for field in ("n", "mean_a", "mean_b", "diff", "sd", "rel_diff", "t_stat", "p_t",
                  "w_stat", "p_wilcoxon", "effect_size"):
        out[field] = np.atleast_1d(getattr(res, field))
    out["unmatched"] = unmatched
    return out


def correct_family(frame: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Holm-correct one family of :func:`paired_frame` rows; add the agreeing intervals.

    Adds ``p_t_holm`` (= ``p_holm``) and ``p_wilcoxon_holm`` (Holm over the family, each test
    separately), ``significant`` (``p_t_holm <= alpha``), ``level``, ``low`` and ``high`` (the
    paired t interval at the level of the row's Holm step: it excludes 0 exactly when the
    row is significant, see :mod:`bench.stats.multiple`), ``test_alpha`` (``alpha / m``,
    ``m`` the rows with a test) and ``mde`` (the minimum detectable effect at :data:`POWER`
    at ``test_alpha``, from the row's observed sd and n).
    """
    frame = frame.copy()
    if not len(frame):
        for col in ("p_t_holm", "p_wilcoxon_holm", "p_holm", "level", "low", "high",
                    "test_alpha", "mde"):
            frame[col] = pd.Series(dtype=np.float64)
        frame["significant"] = pd.Series(dtype=bool)
        return frame
    p = frame["p_t"].to_numpy(dtype=np.float64)
    cis = holm_t_intervals(frame["diff"].to_numpy(np.float64), frame["sd"].to_numpy(np.float64),
                           frame["n"].to_numpy(np.float64), p, alpha)
    frame["p_t_holm"] = cis.p_adjusted
    frame["p_wilcoxon_holm"] = holm(frame["p_wilcoxon"].to_numpy(dtype=np.float64))
    frame["p_holm"] = frame["p_t_holm"]
    frame["significant"] = cis.rejected
    frame["level"] = cis.level
    frame["low"] = cis.low
    frame["high"] = cis.high
    m = max(1, int(np.sum(~np.isnan(p))))
    frame["test_alpha"] = alpha / m
    frame["mde"] = min_detectable_effect(frame["sd"].to_numpy(np.float64),
                                         frame["n"].to_numpy(np.float64), alpha / m, POWER)
    return frame


def baseline_comparisons(data: RunData) -> pd.DataFrame:
    """Every model against ``stats.baseline`` on the compared metrics; Holm over all of them."""
    st = data.stats
    base = st.get("baseline") or data.models[0]
    metrics = data.compared_metrics()
    rows = []
    ref = data.users(base)
    for model in data.models:
        if model == base:
            continue
        frame = paired_frame(ref, data.users(model), metrics, st)
        frame.insert(0, "model", model)
        frame.insert(1, "family", data.families[model])
        frame.insert(2, "baseline", base)
        rows.append(frame)
    if not rows:
        return pd.DataFrame()
    return correct_family(pd.concat(rows, ignore_index=True), st["alpha"])


def ladder_models(data: RunData) -> list[tuple[str, str]]:
    """(family, model) representing each rung present, in spectrum order.

    Never chosen on test results. ``report.ladder`` declares them; a rung it leaves out
    (or all of them, when it is null) gets a rule that looks at no result: the rule rung
    is ``stats.baseline`` when that is a rule model, every other rung the first model of
    its family in the run's config order. :func:`ladder_choice` says which applied.
    """
    declared = dict(data.record.report.get("ladder") or {})
    baseline = data.stats.get("baseline")
    out = []
    for fam in FAMILIES:
        members = [m for m in data.models if data.families[m] == fam]
        if fam in declared:
            out.append((fam, declared[fam]))
        elif members:
            pick = baseline if baseline in members else members[0]
            out.append((fam, pick))
    return out


def ladder_choice(data: RunData) -> dict[str, str]:
    """Per rung of :func:`ladder_models`: how its model was chosen (a short phrase)."""
    declared = dict(data.record.report.get("ladder") or {})
    baseline = data.stats.get("baseline")
    out = {}
    for fam, model in ladder_models(data):
        if fam in declared:
            out[fam] = "declared in report.ladder"
        elif model == baseline:
            out[fam] = "stats.baseline"
        else:
            out[fam] = f"first {fam} model in config order"
    return out


def ladder_pairs(data: RunData) -> list[tuple[str, str, str, str, bool, bool]]:
    """The ladder's comparisons: ``(family_a, a, family_b, b, vs_first, adjacent)``.

    Every rung against the first (the rule baseline when the run has a rule model), then
    every adjacent step not already among those, in spectrum order.
    """
    rungs = ladder_models(data)
    if len(rungs) < 2:
        return []
    (fam0, first), pairs = rungs[0], []
    for j, (fam, model) in enumerate(rungs[1:], start=1):
        pairs.append((fam0, first, fam, model, True, j == 1))
    for (fam_a, a), (fam_b, b) in itertools.pairwise(rungs[1:]):
        pairs.append((fam_a, a, fam_b, b, False, True))
    return pairs


def ladder(data: RunData) -> pd.DataFrame:
    """The ladder's comparisons (:func:`ladder_pairs`), overall and per segment.

    Two Holm families (column ``holm_family``): ``headline``, the overall rows (what the
    report's first screen states), and ``segments``, the same comparisons per segment
    (who gains). Each row: ``step`` (``"rule -> collaborative"``), ``from``, ``to``,
    ``vs_first``, ``adjacent``, ``by``, ``segment`` and the columns of
    :func:`correct_family`.
    """
    metric = data.headline_metric
    rows = []
    st = data.stats
    for fam_a, a, fam_b, b, vs_first, adjacent in ladder_pairs(data):
        ua, ub = data.users(a), data.users(b)
        step = f"{fam_a} -> {fam_b}"
        for by, label, _ in _segments(ua, metric, data):
            if by == "all":
                pa, pb, col = ua, ub, metric
            elif by == NEW_ITEMS:
                pa, pb, col = ua, ub, str(MetricKey.parse(metric).over(NEW_ITEMS))
            else:
                pa, pb, col = ua[ua[by] == label], ub, metric
                if len(pa) == len(ua):  # one segment holding everyone repeats "all"
                    continue
                pb = pb[pb["user_id"].isin(pa["user_id"])]
            frame = paired_frame(pa, pb, [col], st)
            frame["metric"] = metric
            frame.insert(0, "step", step)
            frame.insert(1, "from", a)
            frame.insert(2, "to", b)
            frame.insert(3, "vs_first", vs_first)
            frame.insert(4, "adjacent", adjacent)
            frame.insert(5, "by", by)
            frame.insert(6, "segment", label)
            rows.append(frame)
    if not rows:
        return pd.DataFrame()
    out = pd.concat(rows, ignore_index=True)
    out = out[out["n"] > 0].reset_index(drop=True)
    if out.empty:  # no user served by both models of any step: nothing to compare
        return pd.DataFrame()
    out.insert(7, "holm_family", np.where(out["by"] == "all", "headline", "segments"))
    parts = [correct_family(out[out["holm_family"] == fam], st["alpha"])
             for fam in ("headline", "segments") if (out["holm_family"] == fam).any()]
    return pd.concat(parts).sort_index().reset_index(drop=True)


def seed_table(data: RunData) -> pd.DataFrame:
    """With ``seeds``: per model, the spread over training seeds of its mean headline metric
    (:func:`bench.seeds.seed_spread`; ``seeds`` 0 = ran once). Empty without seeds."""
    if data.record.seeds is None:
        return pd.DataFrame()
    return seed_spread(data.record.models, data.headline_metric)


# ---------------------------------------------------------------------------- curves
def cold_start_curves(data: RunData, protocol: str = "user_cold_start") -> pd.DataFrame:
    """Headline metric per model x fold-in level of the user cold-start sweep, with CIs."""
    cold = data.cold_start
    metric = data.headline_metric
    cols = ["model", "family", "x", "x_order", "mean", "low", "high", "n"]
    if cold is None or protocol not in set(cold["protocol"]) or metric not in cold:
        return pd.DataFrame(columns=cols)
    st = data.stats
    rows = []
    part = cold[cold["protocol"] == protocol]
    for model in dict.fromkeys(part["model"]):
        mine = part[part["model"] == model]
        levels = sorted(set(mine["level"]))
        values = np.column_stack([mine.loc[mine["level"] == lv, metric].to_numpy(np.float64)
                                  for lv in levels])
        ci = bootstrap_means(values, n_resamples=st["n_resamples"],
                             confidence=st["confidence"], seed=st["seed"])
        fam = str(mine["family"].iloc[0])
        for j, lv in enumerate(levels):
            rows.append({"model": model, "family": fam, "x": str(lv), "x_order": int(lv),
                         "mean": float(ci.mean[j]), "low": float(ci.low[j]),
                         "high": float(ci.high[j]), "n": int(ci.n[j])})
    return pd.DataFrame(rows, columns=cols)


def item_cold_start(data: RunData) -> pd.DataFrame:
    """Headline metric per model on the item cold-start protocol (held-out items)."""
    cold = data.cold_start
    metric = data.headline_metric
    if cold is None or "item_cold_start" not in set(cold["protocol"]):
        return pd.DataFrame(columns=["model", "family", "mean", "low", "high", "n"])
    st = data.stats
    part = cold[cold["protocol"] == "item_cold_start"]
    rows = []
    for model in dict.fromkeys(part["model"]):
        mine = part[part["model"] == model]
        ci = bootstrap_means(mine[metric].to_numpy(np.float64), n_resamples=st["n_resamples"],
                             confidence=st["confidence"], seed=st["seed"])
        rows.append({"model": model, "family": str(mine["family"].iloc[0]),
                     "mean": float(ci.mean), "low": float(ci.low), "high": float(ci.high),
                     "n": int(ci.n)})
    return pd.DataFrame(rows)


def history_curves(seg: pd.DataFrame) -> pd.DataFrame:
    """The history-bucket rows of :func:`segment_table`, shaped for the cold-start figure."""
    part = seg[seg["by"] == "history_bucket"].copy()
    part["x"] = part["segment"]
    order = {lab: i for i, lab in enumerate(dict.fromkeys(part["segment"]))}
    part["x_order"] = part["segment"].map(order)
    part["n"] = part["users"]
    return part[["model", "family", "x", "x_order", "mean", "low", "high", "n"]]


def metric_curves(data: RunData) -> pd.DataFrame:
    """Metric@k means per model (averaged over folds): ``model, family, metric, k, value``."""
    c = data.curves
    if c.empty:
        return pd.DataFrame(columns=["model", "family", "metric", "k", "value"])
    out = c.groupby(["model", "family", "metric", "k"], sort=False)["value"].mean()
    return out.reset_index()


def tradeoff(data: RunData, others: list[str]) -> pd.DataFrame:
    """Per model: the headline metric and the beyond-accuracy means (over folds)."""
    rows = []
    for model in data.models:
        row = {"model": model, "family": data.families[model],
               data.headline_metric: data.mean_over_folds(model, data.headline_metric)}
        for key in others:
            row[key] = data.mean_over_folds(model, key)
        rows.append(row)
    return pd.DataFrame(rows)
