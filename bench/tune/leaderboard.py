"""Leaderboards: every study and every sweep ends with a table and a figure.

* :func:`write_study_leaderboard` — after ``bench tune``: one row per model (trials,
  default and best validation value, best values, boundary warnings), then each model's
  best trials; ``leaderboard.csv`` holds every trial; one figure per model shows the
  trial history (value per trial and the best so far) and the metric against each
  hyperparameter.
* :func:`write_sweep_leaderboard` — after a Hydra multirun (``bench -m``): one row per
  (job, model) with the job's overrides, ranked by the headline metric, and a figure of
  the metric against each swept value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.atomic import atomic_write, atomic_write_text
from bench.errors import BenchError
from bench.record import read_record

__all__ = [
    "SweepJob",
    "job_label",
    "study_frame",
    "sweep_frame",
    "write_study_leaderboard",
    "write_sweep_leaderboard",
]

#: trials listed per model in ``leaderboard.md`` (the CSV has them all)
TOP_TRIALS = 10


# ---------------------------------------------------------------------------- studies
def study_frame(results: Sequence) -> pd.DataFrame:
    """Every trial of every study: model, trial, state, value, cost, one column per value."""
    rows = []
    for res in results:
        for t in res.trials:
            rows.append({"model": res.model, "trial": t.number, "state": t.state,
                         "value": t.value, "defaults": t.defaults,
                         "cpu_seconds": t.cpu_seconds, "seconds": t.seconds,
                         **{f"param.{k}": v for k, v in t.params.items()}})
    return pd.DataFrame(rows)


def write_study_leaderboard(folder: Path, results: Sequence, metric: str, header: list[str],
                            figures: bool = True) -> list[Path]:
    """``leaderboard.md``, ``leaderboard.csv`` and ``figures/tune_<model>.png`` in ``folder``."""
    folder = Path(folder)
    frame = study_frame(results)
    paths = [atomic_write(folder / "leaderboard.csv",
                          lambda tmp: frame.to_csv(tmp, index=False))]
    drawn = {}
    if figures:
        for res in results:
            if res.trials:
                drawn[res.model] = _study_figure(folder / "figures" / f"tune_{res.model}.png",
                                                 res, metric)
                paths.append(drawn[res.model])
    lines = [*header, "", f"| model | status | trials | default {metric} | best {metric} | "
             "best values | boundary |", "|---|---|---:|---:|---:|---|---|"]
    for res in results:
        lines.append(f"| {res.model} | {res.status} | {res.n_trials or ''} | "
                     f"{_num(res.default_value)} | {_num(res.best_value)} | "
                     f"{_values(res.best_params)} | {'; '.join(res.boundary)} |")
    for res in results:
        if not res.trials:
            continue
        lines += ["", f"## {res.model}", "", f"Study `{res.study}`: {res.n_trials} trials "
                  f"({res.cpu_seconds:.1f} CPU s), budget {res.budget.describe()}."]
        if res.boundary:
            lines.append("**Boundary:** " + "; ".join(res.boundary) + " — widen the range.")
        lines += ["", *_trial_table(res, metric)]
        if res.model in drawn:
            lines += ["", f"![{res.model}: trial history and {metric} against each "
                          f"hyperparameter](figures/{drawn[res.model].name})"]
    paths.insert(0, atomic_write_text(folder / "leaderboard.md", "\n".join(lines) + "\n"))
    return paths


def _trial_table(res, metric: str) -> list[str]:
    keys = list(res.space)
    ranked = sorted((t for t in res.trials if t.value is not None),
                    key=lambda t: (-t.value, t.number))[:TOP_TRIALS]
    head = f"| rank | trial | {metric} | " + " | ".join(keys) + " | CPU s |"
    out = [head, "|" + "---:|" * 3 + "---|" * len(keys) + "---:|"]
    for i, t in enumerate(ranked, 1):
        cells = " | ".join(_short(t.params.get(k, "")) for k in keys)
        mark = " (defaults)" if t.defaults else ""
        out.append(f"| {i} | {t.number}{mark} | {t.value:.4f} | {cells} | {t.cpu_seconds:.2f} |")
    return out


def _study_figure(path: Path, res, metric: str) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    keys = list(res.space)
    n = 1 + len(keys)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    flat = axes.ravel()
    trials = res.trials
    nums = np.array([t.number for t in trials])
    vals = np.array([np.nan if t.value is None else t.value for t in trials], dtype=float)
    ax = flat[0]
    ok = ~np.isnan(vals)
    ax.scatter(nums[ok], vals[ok], s=16, color="tab:blue", label="trial")
    if ok.any():
        best = np.fmax.accumulate(np.where(ok, vals, -np.inf))
        best[np.isinf(best)] = np.nan
        ax.step(nums, best, where="post", color="tab:orange", label="best so far")
    ax.set(title=f"{res.model}: trial history", xlabel="trial", ylabel=metric)
    ax.legend(fontsize=7)
    for ax, key in zip(flat[1:], keys, strict=False):
        spec = res.space[key]
        xs = [t.params.get(key) for t in trials]
        pick = [i for i, x in enumerate(xs) if x is not None or spec["type"] == "categorical"]
        y = vals[pick]
        if spec["type"] == "categorical":
            labels = [str(c) for c in spec["choices"]]
            x = np.array([labels.index(str(xs[i])) if str(xs[i]) in labels else -1
                          for i in pick], dtype=float)
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        else:
            x = np.array([xs[i] for i in pick], dtype=float)
            if spec.get("log"):
                ax.set_xscale("log")
            for edge in (spec["low"], spec["high"]):
                ax.axvline(edge, color="grey", lw=0.6, ls=":")
        ax.scatter(x, y, s=16, color="tab:blue")
        best = res.best_params.get(key)
        if best is not None and res.best_value is not None:
            bx = labels.index(str(best)) if spec["type"] == "categorical" else best
            ax.scatter([bx], [res.best_value], s=60, marker="*", color="tab:red", zorder=3)
        ax.set(title=key, ylabel=metric)
    for ax in flat[n:]:
        ax.axis("off")
    fig.tight_layout()
    out = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)
    return out


# ---------------------------------------------------------------------------- sweeps
@dataclass(frozen=True)
class SweepJob:
    """One job of a Hydra multirun: its number, its overrides, its run folder, and why it
    failed (``None``: it finished) with its exit code."""

    num: int
    overrides: tuple[str, ...]
    folder: Path
    error: str | None = None
    exit_code: int = 0


def job_label(overrides: Sequence[str]) -> str:
    """The part of a job's overrides that names it: ``models.cf_als.factors=32`` becomes
    ``cf_als.factors=32``; model choices (``model=...``) are left out (the model's name
    is already in every run name)."""
    out = []
    for o in overrides:
        key, _, value = o.lstrip("+~").partition("=")
        if key == "model":
            continue
        out.append(f"{key.removeprefix('models.')}={value}")
    return " ".join(out)


def sweep_frame(jobs: Sequence[SweepJob]) -> tuple[pd.DataFrame, str]:
    """One row per (job, model): the overrides, the headline and compared metrics (means
    over folds); ranked by the headline. Jobs without a finished record are left out."""
    rows, headline = [], None
    for job in jobs:
        try:
            record = read_record(job.folder)
        except BenchError:
            continue
        head = str(record.report.get("headline") or "ndcg@10")
        headline = headline or head
        keys = [head, *[m for m in record.stats.get("metrics", []) if m != head]]
        swept = dict(o.lstrip("+~").split("=", 1) for o in job.overrides if "=" in o)
        for model in record.model_names:
            rows.append({"job": job.num, "run": job.folder.name, "model": model,
                         "overrides": job_label(job.overrides),
                         **{f"swept.{k}": v for k, v in swept.items() if k != "model"},
                         **{k: record.mean_over_folds(model, k) for k in keys},
                         "fit_seconds": record.seconds(model, "fit_seconds")})
    frame = pd.DataFrame(rows)
    headline = headline or "ndcg@10"
    if len(frame):
        frame = frame.sort_values([headline, "job"], ascending=[False, True],
                                  ignore_index=True)
        frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame, headline


def write_sweep_leaderboard(folder: Path, jobs: Sequence[SweepJob], name: str,
                            figures: bool = True, note: str = "") -> list[Path]:
    """``leaderboard.md``, ``leaderboard.csv`` and ``figures/leaderboard.png`` in the
    sweep folder: the ranking of the jobs that have results, then every job with its
    status (a failed job with why). ``note`` is a line added under the heading."""
    frame, headline = sweep_frame(jobs)
    folder = Path(folder)
    paths = [atomic_write(folder / "leaderboard.csv", lambda tmp: frame.to_csv(tmp, index=False))]
    failed = [j for j in jobs if j.error is not None]
    lines = [f"# Sweep leaderboard: {name}", "", *([note, ""] if note else []),
             f"{len(jobs)} jobs, {len(failed)} failed; ranked by {headline} (mean over folds, "
             "test split of each job's run). Each job's report is in its own folder.", ""]
    if len(frame):
        metrics = [c for c in frame.columns if "@" in c]
        lines += ["| rank | model | overrides | " + " | ".join(metrics) + " | fit s | run |",
                  "|---:|---|---|" + "---:|" * len(metrics) + "---:|---|"]
        for _, r in frame.iterrows():
            vals = " | ".join(_num(r[m]) for m in metrics)
            lines.append(f"| {r['rank']} | {r['model']} | {r['overrides'] or '(none)'} | "
                         f"{vals} | {r['fit_seconds']:.2f} | [{r['run']}]({r['run']}/report.md) |")
    else:
        lines.append("No job has results.")
    lines += ["", "## Jobs", "", "| job | overrides | status | folder |", "|---:|---|---|---|"]
    for j in jobs:
        status = "finished" if j.error is None else f"**failed** (exit {j.exit_code}): {j.error}"
        rel = _relative(j.folder, folder)
        lines.append(f"| {j.num} | {job_label(j.overrides) or '(none)'} | "
                     f"{status.replace('|', '/')} | [{rel}]({rel}) |")
    if figures and len(frame):
        paths.append(_sweep_figure(folder / "figures" / "leaderboard.png", frame, headline))
        lines += ["", f"![{headline} against each swept value](figures/leaderboard.png)"]
    paths.insert(0, atomic_write_text(folder / "leaderboard.md", "\n".join(lines) + "\n"))
    return paths


def _relative(path: Path, start: Path) -> str:
    try:
        return str(Path(path).relative_to(start))
    except ValueError:
        return str(path)


def _sweep_figure(path: Path, frame: pd.DataFrame, metric: str) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    swept = [c for c in frame.columns if c.startswith("swept.")]
    panels = swept or ["overrides"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, col in zip(axes[0], panels, strict=True):
        x = pd.to_numeric(frame[col], errors="coerce")
        numeric = x.notna().all()
        labels = sorted(frame[col].astype(str).unique())
        for model, part in frame.groupby("model", sort=False):
            if numeric:
                order = pd.to_numeric(part[col]).sort_values().index
                ax.plot(pd.to_numeric(part.loc[order, col]), part.loc[order, metric],
                        marker="o", label=model)
            else:
                xs = [labels.index(str(v)) for v in part[col]]
                ax.scatter(xs, part[metric], label=model)
        if not numeric:
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        ax.set(xlabel=col.removeprefix("swept.").removeprefix("models."), ylabel=metric,
               title=f"{metric} by {col.removeprefix('swept.')}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)
    return out


# ---------------------------------------------------------------------------- formatting
def _num(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.4f}"


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _values(params: dict) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in params.items())
