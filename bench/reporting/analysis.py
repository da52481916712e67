"""The numbers behind a report, computed from a run folder alone.

:class:`RunData` loads what :func:`~bench.reporting.summary.write_results` wrote; the
functions below turn it into tidy frames (one row per model x metric, per ladder step x
segment, ...) that :mod:`bench.reporting.report` renders as tables and figures and that
``stats.json`` keeps. Nothing here trains or recommends.

Statistics (``bench.stats``): every mean gets a seeded percentile-bootstrap CI over the
evaluated users (user x fold rows for k-fold splits); every comparison is paired per user
(same users, same folds) and reports the mean difference with its bootstrap CI, the paired
t-test and Wilcoxon signed-rank p-values and Cohen's d_z. Holm's correction runs over each
family of comparisons: models x metrics against the baseline; ladder steps x segments. A
difference is called *significant* when its Holm-corrected paired t-test p-value is at most
``stats.alpha`` (the t-test tests the mean difference the CI estimates; Wilcoxon is shown as
a robustness check). Holm's rule rejects at ``p_adjusted <= alpha``.

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
from bench.metrics.registry import direction
from bench.record import RunRecord, read_record
from bench.seeds import mean_over_seeds, seed_spread
from bench.stats import bootstrap_means, holm, paired_comparison, reject

__all__ = [
    "RunData",
    "baseline_comparisons",
    "cold_start_curves",
    "headline",
    "history_curves",
    "ladder",
    "ladder_models",
    "metric_curves",
    "paired_frame",
    "seed_table",
    "segment_table",
    "tradeoff",
]

KEYS = ["model", "fold", "user_id"]


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
        raise DataError(f"{path}: cannot read it as Parquet ({exc})") from None


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
    for field in ("n", "mean_a", "mean_b", "diff", "low", "high", "rel_diff", "t_stat", "p_t",
                  "w_stat", "p_wilcoxon", "effect_size"):
        out[field] = np.atleast_1d(getattr(res, field))
    out["unmatched"] = unmatched
    return out


def _correct(frame: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Holm-correct the family of tests in ``frame`` (t and Wilcoxon separately)."""
    frame = frame.copy()
    frame["p_t_holm"] = holm(frame["p_t"].to_numpy(dtype=np.float64)) if len(frame) else []
    frame["p_wilcoxon_holm"] = (
        holm(frame["p_wilcoxon"].to_numpy(dtype=np.float64)) if len(frame) else []
    )
    frame["p_holm"] = frame["p_t_holm"]
    frame["significant"] = reject(frame["p_t_holm"].to_numpy(dtype=np.float64), alpha)
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
    return _correct(pd.concat(rows, ignore_index=True), st["alpha"])


def ladder_models(data: RunData) -> list[tuple[str, str]]:
    """(family, model) representing each rung present, in spectrum order.

    ``report.ladder`` names them; otherwise each family's best model by mean headline
    metric, in the metric's direction (chosen on the test results: the ladder shows what
    each rung *can* do).
    """
    chosen = data.record.report.get("ladder")
    if chosen:
        return [(f, chosen[f]) for f in FAMILIES if f in chosen]
    metric = data.headline_metric
    sign = direction(metric)
    out = []
    for fam in FAMILIES:
        members = [m for m in data.models if data.families[m] == fam]
        if members:
            best = max(members, key=lambda m: (
                np.nan_to_num(sign * data.mean_over_folds(m, metric), nan=-np.inf),
                -members.index(m)))
            out.append((fam, best))
    return out


def ladder(data: RunData) -> pd.DataFrame:
    """Each rung against the previous one, overall and per segment; Holm over the table."""
    metric = data.headline_metric
    rungs = ladder_models(data)
    rows = []
    st = data.stats
    for (fam_a, a), (fam_b, b) in itertools.pairwise(rungs):
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
            frame.insert(3, "by", by)
            frame.insert(4, "segment", label)
            rows.append(frame)
    if not rows:
        return pd.DataFrame()
    out = pd.concat(rows, ignore_index=True)
    out = out[out["n"] > 0].reset_index(drop=True)
    return _correct(out, st["alpha"])


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
