"""What a run leaves on disk, from the :class:`~bench.record.RunResult`.

:func:`write_results` writes everything :mod:`bench.reporting.report` (and ``bench report``,
``bench compare``, ``bench check``) needs, so a report can be rebuilt without rerunning:

* ``results.json`` — the run record (:mod:`bench.record`): settings, dataset and split
  summaries, leakage audit, per (model, fold): means, segment means, timings. Written
  last: its presence means every other file of this list is complete;
* ``per_user.parquet`` — every model's per-user metrics, keyed by ``model, fold, user_id``;
* ``curves.parquet`` — metric@k means for k = 1..``report.curve_k``;
* ``cold_start.parquet`` — the cold-start protocols' per-user metrics (when run);
* ``card.json`` — the evaluation card (:mod:`bench.reporting.card`);
* ``summary.md`` — the compact table (the full report is ``report.md``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench import parquet
from bench.atomic import atomic_write_text, write_json
from bench.metrics.keys import MetricKey
from bench.record import RunResult, fold_sum, write_record


def table_columns(result: RunResult, k: int | None = None) -> list[str]:
    """Metric columns for the compact table: every metric at ``k`` (10 when evaluated)."""
    cutoffs = result.eval.cutoffs
    k = k or (10 if 10 in cutoffs else cutoffs[-1])
    return [str(MetricKey(m, k)) for m in result.eval.metrics]


def compact_table(result: RunResult, k: int | None = None) -> str:
    """Plain-text table: model, family, metrics at k, users, fit and recommend seconds."""
    frame = result.summary_frame()
    if not len(frame):
        return "(no model finished)"
    cols = ["model", "family", *table_columns(result, k), "users", "fit_s", "recommend_s"]
    return frame[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}")


def rating_frame(result: RunResult) -> pd.DataFrame | None:
    """Rating predictors' RMSE and MAE per fold and their mean over folds, or ``None``.

    One row per rating model: ``rmse_fold0 ... rmse_foldN-1``, ``rmse``, ``mae`` (means
    over folds) and ``unpredicted`` (test pairs it could not predict and that were left
    out, summed: users or items absent from training). Under
    ``eval.unscored_ratings: surprise_default`` nothing is left out: ``defaulted``
    counts the pairs scored with Surprise's default instead.
    """
    res = [r for r in result.models if "rmse" in r.metrics]
    if not res:
        return None
    rows = []
    for name in dict.fromkeys(r.model for r in res):
        mine = sorted((r for r in res if r.model == name), key=lambda r: r.fold)
        row: dict[str, object] = {"model": name}
        folds = sorted({r.fold for r in mine})
        if len(folds) > 1:  # each fold's mean over training seeds (one value without seeds)
            row.update({f"rmse_fold{f}": float(np.mean([r.metrics["rmse"] for r in mine
                                                        if r.fold == f])) for f in folds})
        row["rmse"] = float(np.mean([r.metrics["rmse"] for r in mine]))
        row["mae"] = float(np.mean([r.metrics["mae"] for r in mine]))
        row["unpredicted"] = int(fold_sum(mine, lambda r: r.metrics.get(
            "rating_pairs_unpredicted", 0)))
        if any("rating_pairs_defaulted" in r.metrics for r in mine):
            row["defaulted"] = int(fold_sum(mine, lambda r: r.metrics.get(
                "rating_pairs_defaulted", 0)))
        rows.append(row)
    return pd.DataFrame(rows)


def rating_heading(result) -> str:
    """What the rating table shows, with how unscored pairs were treated (a
    :class:`RunResult` or a :class:`~bench.record.RunRecord`)."""
    from bench.reporting.card import unscored_ratings_rule

    ev = result.eval
    setting = ev.get("unscored_ratings") if isinstance(ev, dict) else ev.unscored_ratings
    return f"rating prediction (RMSE/MAE, mean over folds; {unscored_ratings_rule(setting)})"


def rating_table(result: RunResult) -> str | None:
    """Plain-text :func:`rating_frame`, or ``None`` when no model predicts ratings."""
    frame = rating_frame(result)
    if frame is None:
        return None
    return frame.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def markdown_table(frame: pd.DataFrame, cols: list[str]) -> str:
    head = "| " + " | ".join(cols) + " |"
    rule = "|" + "|".join("---" if c in ("model", "family") else "---:" for c in cols) + "|"
    lines = [head, rule]
    for _, row in frame[cols].iterrows():
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def failure_lines(failures) -> list[str]:
    """One markdown bullet per failed model run (:class:`~bench.record.ModelFailure`)."""
    return [f"- `{f.model}` ({f.where}): {f.error} — traceback in `{f.traceback}`"
            for f in failures]


def _failure_lines(result: RunResult) -> list[str]:
    if not result.failures:
        return []
    return ["", f"**{len(result.failures)} model run(s) FAILED** (the others finished):", "",
            *failure_lines(result.failures)]


def _rating_lines(result: RunResult) -> list[str]:
    frame = rating_frame(result)
    if frame is None:
        return []
    heading = rating_heading(result)
    return ["", heading[0].upper() + heading[1:] + ":",
            "", markdown_table(frame, list(frame.columns))]


def _source_lines(result: RunResult) -> list[str]:
    """For composite models: which component produced what share of the recommendations."""
    lines = []
    for name in dict.fromkeys(r.model for r in result.models):
        res = [r for r in result.models if r.model == name]
        if len(res[0].source_shares) < 2:
            continue
        shares = {k: float(sum(r.source_shares.get(k, 0.0) for r in res) / len(res))
                  for k in res[0].source_shares}
        parts = ", ".join(f"{k} {v:.1%}" for k, v in shares.items() if v > 0)
        lines.append(f"- `{name}` recommendations by component: {parts}.")
    return ["", "Where composite models' recommendations came from:", *lines] if lines else []


def write_results(result: RunResult) -> list[Path]:
    """Write the run's files (see the module docstring) into its folder; return their paths."""
    from bench.reporting.card import evaluation_card

    out = result.output_dir
    frame = result.summary_frame()
    cols = ["model", "family", *table_columns(result), "users", "fit_s", "recommend_s"]
    ds = result.dataset
    sp0 = result.splits[0]
    lines = [
        f"# {result.name} — {result.run_name}",
        "",
        f"Dataset **{ds['name']}**: {ds['rows']:,} rows, {ds['users']:,} users, "
        f"{ds['items']:,} items (fingerprint `{str(ds['fingerprint'])[:12]}`).",
    ]
    if ds.get("drops"):
        lines.append(f"Rows removed by documented policies: {ds['drops']}.")
    lines += [
        f"Split **{sp0['name']}** ({len(result.splits)} fold(s); params {sp0['params']}; "
        f"fingerprint `{str(sp0['fingerprint'])[:12]}`).",
        f"Relevant = test rating >= {result.eval.relevance_threshold} "
        if result.eval.relevance_threshold is not None
        else "Relevant = every test interaction.",
        "",
        markdown_table(frame, cols) if len(frame) else "**No model finished**: nothing to "
        "tabulate.",
        "",
        "Metric values are macro averages over evaluated users (users with at least one "
        "relevant test item); users excluded for having none are counted in "
        "`results.json`. Users a model cannot score count with empty lists (all misses).",
        *_failure_lines(result),
        *_rating_lines(result),
        *_source_lines(result),
        "",
        f"Tracking: {result.tracking}.",
    ]
    md = atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")
    card = out / "card.json"
    write_json(card, evaluation_card(result))
    paths = [md, card]
    if result.models:  # a run where every model failed has no per-user rows
        paths.append(write_parquet(result.per_user_frame(), out / "per_user.parquet"))
        paths.append(write_parquet(result.curves_frame(), out / "curves.parquet"))
    if result.cold_start is not None and len(result.cold_start):
        paths.append(write_parquet(result.cold_start, out / "cold_start.parquet"))
    # last: a folder with results.json holds every table it refers to, so a run stopped
    # while writing them is never read back as finished (bench report, compare, resume)
    paths.insert(1, write_record(out, result.record(), [p.name for p in paths[1:]]))
    return paths


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` atomically (see :mod:`bench.atomic`)."""
    return parquet.write_frame(frame, path)
