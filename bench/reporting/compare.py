"""``bench compare RUN_A RUN_B``: paired statistics between two runs of the same split.

Two runs are comparable when they evaluated the same split (equal split fingerprints,
fold by fold) with the same evaluation protocol (relevance threshold, cutoffs,
candidates); otherwise :class:`~bench.errors.IncomparableError` says what differs. Each
model present in both runs is compared per user (matched on fold and user id) on the
compared metrics of run A; Holm's correction runs over models x metrics, and each
difference is printed with the paired t interval at the level of its Holm step, which
excludes 0 exactly when the difference is significant (:mod:`bench.stats.multiple`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.errors import DataError, IncomparableError, IncompleteRunError
from bench.record import RESULTS
from bench.reporting import analysis as an
from bench.reporting.card import card_differences, short_value
from bench.reporting.formatting import fmt_diff_ci, fmt_level

__all__ = [
    "comparable_differences",
    "compare_runs",
    "format_comparison",
    "incomplete_message",
    "is_run_folder",
    "resolve_run",
]


def resolve_run(ref: str | Path, reports_dir: str | Path = "reports") -> Path:
    """A run folder from a path (run folder, or experiment folder = its latest run) or a name.

    ``spectrum`` means the latest *finished* run under ``<reports_dir>/spectrum/``: one
    with a ``results.json``, which a run writes last (a stopped run's folder is skipped).
    Run folders sort by their timestamped names. A run folder named directly that has no
    ``results.json`` is refused in one line saying it is incomplete and what to do.
    """
    path = Path(ref)
    candidates = [path, Path(reports_dir) / str(ref)]
    for c in candidates:
        if (c / RESULTS).is_file():
            return c
        if is_run_folder(c):
            raise IncompleteRunError(incomplete_message(c))
        if c.is_dir():
            runs = sorted(d for d in c.iterdir() if (d / RESULTS).is_file())
            if runs:
                return runs[-1]
            stopped = sorted(d for d in c.iterdir() if is_run_folder(d))
            if stopped:
                raise IncompleteRunError(
                    f"{c}: no finished run (no results.json in any run folder); the latest, "
                    f"{stopped[-1].name}, is incomplete: {incomplete_hint()}"
                )
    raise DataError(
        f"run {str(ref)!r}: expected a run folder with results.json, or an experiment name "
        f"with runs under {reports_dir}/; found neither"
    )


def is_run_folder(folder: Path) -> bool:
    """Does ``folder`` look like a run folder ``bench`` started (finished or not)?"""
    return folder.is_dir() and any(
        (folder / marker).exists() for marker in (".hydra", "config.json", "artifacts"))


def incomplete_hint() -> str:
    return ("it was stopped or failed before it finished; run the same command with "
            "resume=true to reuse its finished cells and complete it")


def incomplete_message(folder: Path) -> str:
    return f"{folder}: run folder incomplete (no {RESULTS}): {incomplete_hint()}"


def comparable_differences(a: an.RunData, b: an.RunData) -> list[str]:
    """What differs between two runs' data and protocol (empty = comparable)."""
    out = []
    fa = [s["fingerprint"] for s in a.record.splits]
    fb = [s["fingerprint"] for s in b.record.splits]
    if fa != fb:
        out.append(f"split fingerprints differ ({short_value(fa)} vs {short_value(fb)}): the "
                   "runs did not evaluate the same train/test rows")
    keys = ("relevance", "candidates", "cutoffs", "map_denominator")
    ca, cb = a.card.get("comparable", {}), b.card.get("comparable", {})
    out += card_differences({k: ca.get(k) for k in keys}, {k: cb.get(k) for k in keys},
                            names=("A", "B"))
    return out


def compare_runs(folder_a: str | Path, folder_b: str | Path) -> pd.DataFrame:
    """Paired comparison, per common model and metric, of run B against run A."""
    a, b = an.RunData.load(folder_a), an.RunData.load(folder_b)
    diffs = comparable_differences(a, b)
    if diffs:
        raise IncomparableError(
            f"cannot compare {folder_a} with {folder_b}: " + "; ".join(diffs)
        )
    metrics = [m for m in a.compared_metrics() if m in b.per_user.columns]
    common = [m for m in a.models if m in b.models]
    rows = []
    for model in common:
        frame = an.paired_frame(a.users(model), b.users(model), metrics, a.stats)
        frame.insert(0, "model", model)
        rows.append(frame)
    if not rows:
        raise IncomparableError(
            f"cannot compare {folder_a} with {folder_b}: no model in common "
            f"({a.models} vs {b.models})"
        )
    out = an.correct_family(pd.concat(rows, ignore_index=True), a.stats["alpha"])
    out.attrs["only_a"] = [m for m in a.models if m not in b.models]
    out.attrs["only_b"] = [m for m in b.models if m not in a.models]
    return out


def format_comparison(frame: pd.DataFrame, name_a: str, name_b: str) -> str:
    """A markdown table of :func:`compare_runs` (B − A)."""
    lines = [f"Run B `{name_b}` against run A `{name_a}` (diff = B − A, paired per user, "
             "Holm over models x metrics; * = significant; the interval is the paired t "
             "interval at the level of the row's Holm step, so it excludes 0 exactly when "
             "the row is significant):", "",
             "| model | metric | users | A | B | diff [CI] | CI level | p (t, Holm) | "
             "p (Wilcoxon, Holm) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for _, r in frame.iterrows():
        lines.append(
            f"| `{r['model']}` | {r['metric']} | {int(r['n'])} | {r['mean_a']:.4f} | "
            f"{r['mean_b']:.4f} | {fmt_diff_ci(r)} | {fmt_level(r['level'])} | "
            f"{r['p_t_holm']:.4g} | {r['p_wilcoxon_holm']:.4g} |"
        )
    for key, label in (("only_a", "only in A"), ("only_b", "only in B")):
        if frame.attrs.get(key):
            lines.append(f"\nModels {label} (not compared): {', '.join(frame.attrs[key])}.")
    return "\n".join(lines)
