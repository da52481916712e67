"""``report.md`` with figures, rebuilt from a run folder alone (``bench report`` does the same).

The first screen answers the spectrum question — is the next rung worth it, for whom,
and at what cost — from the lift ladder; then come the headline table, the comparison
with the baseline, segments, cold start, beyond-accuracy trade-offs, metric@k curves,
rating errors (when a model predicts ratings) and an appendix with the evaluation card and
the leakage audit. All numbers come from
:mod:`bench.reporting.analysis`; ``stats.json`` keeps them in machine-readable form.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.atomic import atomic_write_text
from bench.metrics.keys import MetricKey
from bench.metrics.registry import BEYOND_METRICS, direction
from bench.metrics.segments import NEW_ITEMS
from bench.record import read_record
from bench.reporting import analysis as an
from bench.reporting.formatting import (
    fmt_bound,
    fmt_diff_ci,
    fmt_level,
    fmt_num,
    fmt_p,
    fmt_pct,
)
from bench.reporting.render import FigureJob, FigureRenderer

log = logging.getLogger("bench")

__all__ = ["write_report"]

FIGURES = "figures"


def write_report(folder: str | Path) -> list[Path]:
    """Write ``report.md``, ``stats.json`` and ``figures/*.png`` into a run folder.

    Returns the written paths (figures last). Raises ``DataError`` naming a missing or
    unreadable results file.
    """
    folder = Path(folder)
    record = read_record(folder)
    if not record.models:
        return [_write_failed_report(folder, record)]
    # the figures draw in a worker process while the statistics are computed here (when
    # a core is free): it starts now, importing matplotlib, and each figure is
    # handed over as soon as its frame exists, the slowest first; whatever the worker has
    # not taken when the statistics are done is drawn here
    draw = bool(record.report.get("figures", True))
    with FigureRenderer(worker=None if draw else False) as fr:
        data = an.RunData.load(folder)
        metric = data.headline_metric
        k = data.k
        compared = data.compared_metrics()
        beyond = [str(MetricKey(m, k)) for m in BEYOND_METRICS]
        beyond = [b for b in beyond if any(b in m.metrics for m in data.record.models)]
        figs = _FigureJobs(folder, data, fr if draw else None)

        curves = an.metric_curves(data)
        figs.metric_at_k(curves)
        trade = an.tradeoff(data, beyond)
        figs.tradeoff(trade, beyond)
        seg = an.segment_table(data, metric)
        hist = an.history_curves(seg)
        cold_users = an.cold_start_curves(data)
        figs.cold_start(cold_users, hist)
        # a CI on every per-user mean: compared metrics first, then every other cutoff and
        # the per-user beyond-accuracy metrics (list-set metrics such as coverage have none)
        keys = [c for c in data.per_user.columns if _is_metric_column(c)]
        head = an.headline(data, list(dict.fromkeys(compared + keys)))
        figs.headline(head)
        lad = an.ladder(data)
        figs.lift_ladder(lad)
        base_cmp = an.baseline_comparisons(data)
        cold_items = an.item_cold_start(data)
        seeds = an.seed_table(data)
        figures = figs.order(fr.finish()) if draw else {}

    lines = _title(data)
    lines += _verdict(data, lad, trade)
    lines += _headline_section(data, head, base_cmp, beyond, figures)
    lines += _seed_section(data, seeds)
    lines += _ladder_section(data, lad, figures)
    lines += _baseline_section(data, base_cmp)
    lines += _segment_section(data, seg)
    lines += _cold_section(data, cold_users, cold_items, figures)
    lines += _beyond_section(data, trade, beyond, figures)
    lines += _curves_section(figures)
    lines += _rating_section(data)
    lines += _appendix(data)
    md = folder / "report.md"
    _write_text(md, "\n".join(lines) + "\n")
    js = folder / "stats.json"
    tables = {
        "headline": head.to_dict(orient="records"),
        "baseline": base_cmp.to_dict(orient="records"),
        "ladder": lad.to_dict(orient="records"),
        "segments": seg.to_dict(orient="records"),
        "cold_start_users": cold_users.to_dict(orient="records"),
        "cold_start_items": cold_items.to_dict(orient="records"),
    }
    if len(seeds):
        tables["seed_spread"] = seeds.drop(columns="per_seed").to_dict(orient="records")
    _write_text(js, pd.Series(tables).to_json(indent=2, double_precision=15))
    return [md, js, *figures.values()]


# ---------------------------------------------------------------------------- figures
def _write_failed_report(folder: Path, record) -> Path:
    """The report of a run in which no model finished: what failed, and where to look."""
    from bench.reporting.summary import failure_lines

    lines = [f"# {record.name} — {record.run}", "",
             f"**Every model run failed ({len(record.failures)})**: there is nothing to "
             "compare. Each failure, with its traceback:", "",
             *failure_lines(record.failures), ""]
    path = folder / "report.md"
    _write_text(path, "\n".join(lines))
    return path


class _FigureJobs:
    """The report's figures as :class:`FigureJob` s, handed to a renderer one by one."""

    NAMES = ("headline", "lift_ladder", "cold_start_users", "cold_start_history",
             "tradeoff", "metric_at_k")  # the order of the written paths

    def __init__(self, folder: Path, data: an.RunData, renderer: FigureRenderer | None):
        self.fdir = folder / FIGURES
        self.data = data
        self.metric = data.headline_metric
        self.renderer = renderer

    def _submit(self, name: str, builder: str, frame, **kw) -> None:
        if self.renderer is None or frame is None or len(frame) == 0:
            return
        self.renderer.submit(FigureJob(name, builder, frame, self.fdir / f"{name}.png", kw))

    def order(self, written: dict[str, Path]) -> dict[str, Path]:
        return {n: written[n] for n in self.NAMES if n in written}

    def headline(self, head: pd.DataFrame) -> None:
        self._submit("headline", "headline_figure", head[head["metric"] == self.metric],
                     metric=self.metric, baseline=self.data.stats.get("baseline"))

    def lift_ladder(self, lad: pd.DataFrame) -> None:
        if len(lad):  # panel titles name the models; each step coloured by the rung climbed to
            named = lad.assign(step=lad["step"] + ": " + lad["from"] + " -> " + lad["to"],
                               family=lad["step"].str.split(" -> ").str[1])
            self._submit("lift_ladder", "lift_ladder_figure", named, metric=self.metric,
                         alpha=self.data.stats["alpha"],
                         ci="paired t CI at each row's Holm level")

    def cold_start(self, cold_users: pd.DataFrame, hist: pd.DataFrame) -> None:
        self._submit("cold_start_users", "cold_start_figure", cold_users, metric=self.metric,
                     xlabel="fold-in history given to the model (interactions), held-out users")
        self._submit("cold_start_history", "cold_start_figure", hist, metric=self.metric,
                     xlabel="training history of the evaluated user (interactions)")

    def tradeoff(self, trade: pd.DataFrame, beyond: list[str]) -> None:
        others = [b for b in beyond if _metric(b) in ("coverage", "novelty", "arp")]
        if others:
            self._submit("tradeoff", "tradeoff_figure", trade, accuracy=self.metric,
                         others=others)

    def metric_at_k(self, curves: pd.DataFrame) -> None:
        self._submit("metric_at_k", "metric_at_k_figure", curves)


def _img(figures: dict, name: str, alt: str) -> list[str]:
    if name not in figures:
        return []
    return ["", f"![{alt}]({FIGURES}/{figures[name].name})"]


# ---------------------------------------------------------------------------- sections
def _title(data: an.RunData) -> list[str]:
    r = data.record
    ds, sp0 = r.dataset, r.splits[0]
    ev = r.eval
    rel = (f"relevant = test rating >= {ev['relevance_threshold']}"
           if ev["relevance_threshold"] is not None else "every test interaction is relevant")
    users = data.per_user.groupby("model").size()
    st = data.stats
    return [
        f"# {r.name} — {r.run}",
        "",
        f"**{ds['name']}** ({ds['rows']:,} interactions, {ds['users']:,} users, "
        f"{ds['items']:,} items) · split **{sp0['name']}** ({len(r.splits)} fold(s), "
        f"fingerprint `{str(sp0['fingerprint'])[:12]}`) · {rel} · "
        f"{int(users.max()) if len(users) else 0} evaluated users per model · "
        f"headline metric **{data.headline_metric}** · "
        f"means with {int(st['confidence'] * 100)}% bootstrap CIs ({st['n_resamples']} "
        f"resamples, seed {st['seed']}); differences with paired t-tests Holm-corrected at "
        f"alpha = {st['alpha']} and the paired t interval at each test's Holm level.",
        *_tuning_line(data.card.get("tuning")),
    ]


def _tuning_line(tuning) -> list[str]:
    """How the run's hyperparameters were chosen, when they come from `bench tune`."""
    if not isinstance(tuning, dict):
        return []
    return ["", f"**Tuning** (`bench tune`, study `{tuning.get('study')}`, validation "
                f"{tuning.get('metric')}, test never read): {tuning.get('summary')}."]


def _verdict(data: an.RunData, lad: pd.DataFrame, trade: pd.DataFrame) -> list[str]:
    """The first screen: each rung against the rule baseline, the adjacent steps, for whom
    (segments), at what cost (times), how much the test could see (MDE), and how the
    rungs' models were chosen."""
    lines = ["", "## Is the next rung worth it?", ""]
    failed = data.record.failures
    if failed:
        from bench.reporting.summary import failure_lines

        lines += [f"> **{len(failed)} model run(s) failed** and are missing from this "
                  "report (the other models finished):", ">"]
        lines += [f"> {x}" for x in failure_lines(failed)] + [""]
    leaks = [(a.get("protocol") or "main", x) for a in data.record.leakage
             for x in a.get("leaks", [])]
    if leaks:
        lines += [f"> **Leakage warning ({where}):** {x}" for where, x in leaks] + [""]
    if lad.empty:
        lines.append("Only one rung of the spectrum is in this run: no ladder to climb.")
        return lines
    metric = data.headline_metric
    head = lad[lad["holm_family"] == "headline"]
    first = lad[lad["vs_first"]]
    ref = str(first["from"].iloc[0])
    ref_fam = str(first["step"].iloc[0]).split(" -> ")[0]
    vs = head[head["vs_first"]]
    n_users = int(vs["n"].max()) if len(vs) else 0
    lines.append(
        f"Each rung's representative against the {ref_fam} baseline `{ref}` on {metric}, "
        f"paired per user ({n_users} users). Holm's correction runs over the "
        f"{_count(len(head), 'overall comparison')} (these and any adjacent steps below); each "
        "interval is the paired t interval at its Holm step's level, so it excludes 0 "
        "exactly when the verdict is better or worse. *Detectable* is the smallest true "
        f"difference the test finds with {an.POWER:.0%} power (at alpha/m = "
        f"{data.stats['alpha']:g}/{len(head)}).")
    lines += ["", f"| rung | model | {metric} | vs `{ref}` [CI] | verdict | detectable "
              "(share of reference) | fit s | rec. s |",
              "|---|---|---:|---:|---|---:|---:|---:|"]
    ref_mean = data.mean_over_folds(ref, metric)
    lines.append(f"| {ref_fam} | `{ref}` | {fmt_num(ref_mean)} | (reference) | — | — | "
                 f"{_secs(data, ref)} |")
    for _, r in vs.iterrows():
        fam = str(r["step"]).split(" -> ")[1]
        detect = f"{fmt_num(r['mde'])} ({_share(r['mde'], r['mean_a'])})"
        lines.append(
            f"| {fam} | `{r['to']}` | {fmt_num(data.mean_over_folds(r['to'], metric))} | "
            f"{fmt_diff_ci(r)} ({fmt_pct(r['rel_diff'])}) | {_word(r, direction(metric))} | "
            f"{detect} | {_secs(data, r['to'])} |")
    steps = head[~head["vs_first"]]
    if len(steps):
        lines += ["", "Adjacent steps: " + "; ".join(
            f"{r['step'].replace(' -> ', ' → ')} (`{r['from']}` → `{r['to']}`) "
            f"{fmt_diff_ci(r)}, **{_word(r, direction(metric))}**"
            for _, r in steps.iterrows()) + "."]
    lines += _for_whom(data, lad, ref)
    lines += _power_note(data, vs, ref, ref_mean)
    chosen = an.ladder_choice(data)
    lines += ["", "Representatives: " + ", ".join(
        f"`{m}` ({f}: {chosen[f]})" for f, m in an.ladder_models(data)
    ) + ". None was chosen by looking at test results" + (
        "." if all(c.startswith("declared") for c in chosen.values())
        else "; set `report.ladder` to declare others.")]
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _secs(data: an.RunData, model: str) -> str:
    return (f"{data.seconds(model, 'fit_seconds'):.2f} | "
            f"{data.seconds(model, 'recommend_seconds'):.2f}")


def _share(value, of) -> str:
    """``value`` as a share of ``|of|``: ``75%``; "—" when ``of`` is 0 or missing."""
    try:
        share = float(value) / abs(float(of))
    except (TypeError, ValueError, ZeroDivisionError):
        return "—"
    return "—" if not math.isfinite(share) else f"{share:.0%}"


def _for_whom(data: an.RunData, lad: pd.DataFrame, ref: str) -> list[str]:
    """Per segment, each rung's difference from the reference (no interval: a verdict mark)."""
    part = lad[lad["vs_first"] & (lad["holm_family"] == "segments")]
    if part.empty:
        return []
    metric = data.headline_metric
    segs = list(dict.fromkeys(zip(part["by"], part["segment"], strict=True)))
    names = []
    for by, label in segs:
        rows = part[(part["by"] == by) & (part["segment"] == label)]
        name = ("new items" if by == NEW_ITEMS else f"history {label}"
                if by == "history_bucket" else f"{by}={label}")
        names.append(f"{name} ({int(rows['n'].max())})")
    lines = ["", f"**For whom**: {metric} difference from `{ref}` per segment (users in "
             "brackets); * = significant, Holm over rungs × segments. History counts the "
             "training (and fold-in) interactions the model had for the user.", "",
             "| rung | " + " | ".join(names) + " |", "|---|" + "---:|" * len(segs)]
    for to in dict.fromkeys(part["to"]):
        mine = part[part["to"] == to]
        fam = str(mine["step"].iloc[0]).split(" -> ")[1]
        cells = []
        for by, label in segs:
            row = mine[(mine["by"] == by) & (mine["segment"] == label)]
            if row.empty:
                cells.append("—")
                continue
            r = row.iloc[0]
            cells.append(fmt_bound(r["diff"]) + ("*" if bool(r["significant"]) else ""))
        lines.append(f"| {fam} `{to}` | " + " | ".join(cells) + " |")
    return lines


def _power_note(data: an.RunData, vs: pd.DataFrame, ref: str, ref_mean: float) -> list[str]:
    """The minimum detectable effect of the headline comparisons, and a warning when a
    realistic lift (:data:`~bench.reporting.analysis.REALISTIC_LIFT` of the reference's
    mean) would be detected with less than :data:`~bench.reporting.analysis.POWER`.

    Comparisons with no spread (``sd == 0``: the two models' values are identical, or
    differ by a constant) have a vacuous MDE of 0 and are left out of the statement."""
    from bench.stats import t_test_power

    rows = vs[np.isfinite(vs["mde"].to_numpy(float)) & (vs["sd"].to_numpy(float) > 0)]
    if rows.empty or not math.isfinite(ref_mean) or ref_mean == 0:
        return []
    metric = data.headline_metric
    target = an.REALISTIC_LIFT * abs(ref_mean)
    mde = rows["mde"].to_numpy(float)
    power = np.atleast_1d(t_test_power(target, rows["sd"].to_numpy(float),
                                       rows["n"].to_numpy(float),
                                       float(rows["test_alpha"].iloc[0])))
    n = int(rows["n"].max())
    span = _span(mde, fmt_num)
    share = _span(mde / abs(ref_mean), lambda v: f"{v:.0%}")
    if (mde <= target).all():
        return ["", f"Power: with {n} users these comparisons detect {metric} differences "
                f"of {span} ({share} of `{ref}`'s mean {fmt_num(ref_mean)}) with "
                f"{an.POWER:.0%} power, so a realistic lift of {an.REALISTIC_LIFT:.0%} "
                f"({fmt_num(target)}) is within reach."]
    need = [math.ceil(k * (d / target) ** 2) for k, d in zip(rows["n"], mde, strict=True)
            if d > target]
    return ["", f"> **Warning: too few users to see realistic lifts.** With {n} users, the "
            f"smallest {metric} difference from `{ref}` these tests detect with "
            f"{an.POWER:.0%} power is {span} ({share} of its mean {fmt_num(ref_mean)}). A "
            f"realistic lift of {an.REALISTIC_LIFT:.0%} ({fmt_num(target)}) would be "
            f"detected with probability {_span(power, lambda v: f'{v:.0%}')} only: "
            + ("every comparison here was significant, but a smaller step would not have "
               "been" if vs["significant"].all() else
               "here *no significant difference* does not mean *no difference*")
            + f". Detecting a "
            f"{an.REALISTIC_LIFT:.0%} lift with {an.POWER:.0%} power would take about "
            f"{_span(np.array(need), lambda v: f'{int(v):,}')} users (the MDE shrinks as "
            "1/√n)."]


def _span(values: np.ndarray, fmt) -> str:
    """``fmt(min)–fmt(max)``, or one value when they print alike."""
    low, high = fmt(float(np.min(values))), fmt(float(np.max(values)))
    return low if low == high else f"{low}–{high}"


def _word(row, sign: int) -> str:
    """Verdict on a difference; ``sign`` is the metric's direction (+1: higher is better)."""
    if not bool(row["significant"]):
        return "no significant difference"
    return "significantly better" if sign * row["diff"] > 0 else "significantly worse"


def _metric(key: str) -> str:
    """The metric name of a key: ``"coverage@10"`` -> ``"coverage"``."""
    return MetricKey.parse(key).metric


def _is_metric_column(column: str) -> bool:
    """A per-user column holding a metric@k over all users (``ndcg@10``, not ``.new_items``)."""
    key = MetricKey.try_parse(column)
    return key is not None and key.is_cutoff_metric


def _headline_section(data, head, base_cmp, beyond, figures) -> list[str]:
    metric = data.headline_metric
    compared = data.compared_metrics()
    lines = ["", "## Headline", ""]
    wide = {}
    for _, r in head.iterrows():
        wide.setdefault(r["model"], {})[r["metric"]] = r
    base = data.stats.get("baseline") or data.models[0]
    cols = ["model", "family", *compared, f"Δ {metric} vs {base}",
            *[b for b in beyond if _metric(b) in ("coverage", "novelty")],
            "users", "fit s", "rec. s"]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" if c in ("model", "family") else "---:" for c in cols) + "|")
    for model in data.models:
        cells = [f"`{model}`", data.families[model]]
        for m in compared:
            r = wide.get(model, {}).get(m)
            cells.append("—" if r is None else _mean_ci(r))
        cells.append(_vs_base(base_cmp, model, metric) if model != base else "(baseline)")
        for b in beyond:
            if _metric(b) in ("coverage", "novelty"):
                cells.append(fmt_num(data.mean_over_folds(model, b)))
        cells += [_served(data.per_user[data.per_user["model"] == model], metric),
                  f"{data.seconds(model, 'fit_seconds'):.2f}",
                  f"{data.seconds(model, 'recommend_seconds'):.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Means over evaluated users with {int(data.stats['confidence'] * 100)}% "
              "bootstrap CIs in brackets. Δ is the paired mean difference from the baseline; "
              "* marks a Holm-corrected paired t-test p <= "
              f"{data.stats['alpha']} (Holm over models × metrics, as in the baseline "
              "section), and its interval is the paired t interval at the level of its Holm "
              "step (listed there), so it excludes 0 exactly when * is shown. Times are "
              "summed over folds."]
    if data.record.seeds is not None:
        lines[-1] += (f" Training seeds {list(data.record.seeds)}: each user's value is their "
                      "mean over the seeds (see *Training seeds*), and a time is the mean of "
                      "one training per fold.")
    lines += ["", NOT_SERVED_NOTE]
    lines += _img(figures, "headline", f"{metric} per model with 95% CI")
    return lines


#: What "n/a" and "a of b" users mean, under every table that shows them.
NOT_SERVED_NOTE = (
    "*users*: evaluated users; **a of b** = the model could serve (recommend anything to) "
    "only a of them, and its means are over those a; **n/a** = it could serve none. A user "
    "a model cannot serve (e.g. a new user for a model that cannot fold in history) is "
    "\"cannot serve\", not a score of 0."
)


def _mean_ci(r) -> str:
    """``mean [low, high]``, or ``n/a`` when the model served nobody (NaN mean)."""
    if pd.isna(r["mean"]):
        return "n/a"
    return f"{fmt_num(r['mean'])} [{fmt_num(r['low'])}, {fmt_num(r['high'])}]"


def _served(rows: pd.DataFrame, metric: str) -> str:
    """Evaluated users of one model, as ``"n"`` or ``"served of n"``."""
    n = len(rows)
    served = int(rows[metric].notna().sum()) if metric in rows else n
    return str(n) if served == n else f"{served} of {n}"


def _seed_section(data, seeds: pd.DataFrame) -> list[str]:
    """With ``seeds``: the spread of each model's mean headline metric over training seeds."""
    if seeds.empty:
        return []
    metric = data.headline_metric
    used = list(data.record.seeds or [])
    lines = ["", "## Training seeds", "",
             f"Each model whose config takes `${{seed}}` was trained once per seed {used} "
             "(split, data, cold-start protocols and bootstrap keep `seed` "
             f"{data.card.get('comparable', {}).get('seed')}). Every number above and below "
             "uses each user's mean over the seeds. The spread is that of the model's mean "
             f"{metric} per seed (mean over folds): standard deviation (n − 1), minimum and "
             "maximum.", "",
             f"| model | seeds | mean {metric} | sd | min | max |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in seeds[seeds["seeds"] > 0].itertuples():
        lines.append(f"| `{r.model}` | {r.seeds} | {fmt_num(r.mean)} | {fmt_num(r.sd)} | "
                     f"{fmt_num(r.min)} | {fmt_num(r.max)} |")
    once = [f"`{r.model}`" for r in seeds.itertuples() if r.seeds == 0]
    if once:
        lines += ["", f"Trained once, no spread to show (no `${{seed}}` key in the config: "
                  f"deterministic, or its seed is pinned): {', '.join(once)}."]
    return lines


def _vs_base(base_cmp: pd.DataFrame, model: str, metric: str) -> str:
    if base_cmp.empty:
        return "—"
    r = base_cmp[(base_cmp["model"] == model) & (base_cmp["metric"] == metric)]
    if r.empty:
        return "—"
    return fmt_diff_ci(r.iloc[0])


def _ladder_section(data, lad, figures) -> list[str]:
    lines = ["", "## The lift ladder", ""]
    if lad.empty:
        return [*lines, "Only one rung present."]
    lines.append(f"Every comparison of the first screen on {data.headline_metric}, overall and "
                 "per segment, paired per user. Two Holm families: the overall rows "
                 "(`headline`) and the per-segment rows (`segments`). Each interval is the "
                 "paired t interval at the level shown (its Holm step), so it excludes 0 "
                 "exactly when the difference is significant (*). *Detectable* is the "
                 f"minimum detectable effect at {an.POWER:.0%} power at alpha/m of the row's "
                 "family.")
    lines += _img(figures, "lift_ladder", "lift between the rungs")
    lines += ["", "| step | segment | users | diff [CI] | CI level | rel. | p (t, Holm) | "
              "p (Wilcoxon, Holm) | d_z | detectable | family |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for _, r in lad.iterrows():
        seg = r["segment"] if r["by"] in ("all", NEW_ITEMS) else f"{r['by']}={r['segment']}"
        lines.append(
            f"| {r['step']} | {seg} | {int(r['n'])} | {fmt_diff_ci(r)} | "
            f"{fmt_level(r['level'])} | {fmt_pct(r['rel_diff'])} | {fmt_p(r['p_t_holm'])} | "
            f"{fmt_p(r['p_wilcoxon_holm'])} | {fmt_num(r['effect_size'], 2)} | "
            f"{fmt_num(r['mde'])} | {r['holm_family']} |"
        )
    return lines


def _baseline_section(data, base_cmp) -> list[str]:
    if base_cmp.empty:
        return []
    base = base_cmp["baseline"].iloc[0]
    lines = ["", f"## Against the baseline `{base}`", "",
             "Paired per-user differences (model − baseline); Holm over models × metrics. "
             "Each interval is the paired t interval at the level shown (its Holm step), so "
             "it excludes 0 exactly when the difference is significant (*).", "",
             "| model | metric | diff [CI] | CI level | rel. | p (t, Holm) | "
             "p (Wilcoxon, Holm) | d_z | detectable |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for _, r in base_cmp.iterrows():
        lines.append(f"| `{r['model']}` | {r['metric']} | {fmt_diff_ci(r)} | "
                     f"{fmt_level(r['level'])} | {fmt_pct(r['rel_diff'])} | "
                     f"{fmt_p(r['p_t_holm'])} | {fmt_p(r['p_wilcoxon_holm'])} | "
                     f"{fmt_num(r['effect_size'], 2)} | {fmt_num(r['mde'])} |")
    return lines


def _segment_section(data, seg) -> list[str]:
    metric = data.headline_metric
    if seg.empty:
        return []
    lines = ["", "## Segments", "",
             f"{metric} per segment (users in brackets). History buckets count the training "
             "(and fold-in) interactions the model had for the user; `new items` scores each "
             "list against the relevant test items never seen in training only. Every "
             "metric per segment, with its user count, is in `results.json` "
             "(`segment_metrics`) and in each MLflow child run (`ndcg_at_10.hist_1-5`, ...)."]
    parts = seg[seg["by"] != "all"]
    labels = list(dict.fromkeys(zip(parts["by"], parts["segment"], strict=True)))
    if not labels:
        return lines
    head = [("all", "all"), *labels]
    names = ["all" if b == "all" else (s if b in (NEW_ITEMS, "history_bucket") else f"{b}={s}")
             for b, s in head]
    lines += ["", "| model | " + " | ".join(names) + " |",
              "|---|" + "---:|" * len(head)]
    idx = seg.set_index(["model", "by", "segment"])
    for model in data.models:
        cells = []
        for b, s in head:
            key = (model, b, s)
            if key in idx.index:
                r = idx.loc[key]
                cells.append(f"{fmt_num(r['mean'])} ({int(r['users'])})")
            else:
                cells.append("—")
        lines.append(f"| `{model}` | " + " | ".join(cells) + " |")
    return lines


def _cold_section(data, cold_users, cold_items, figures) -> list[str]:
    metric = data.headline_metric
    lines = ["", "## Cold start", ""]
    if not cold_users.empty:
        cs = data.record.cold_start
        cut = next((a.get("split_cut") for a in data.record.leakage
                    if a.get("protocol") == "user_cold_start"), None)
        when = "" if cut is None else f" ({pd.Timestamp(int(cut), unit='s'):%Y-%m-%d %H:%M:%S} UTC)"
        lines.append(
            f"**New users.** The users whose first interaction is at or after a cut in time{when} "
            "are held out; each model is fitted once on the rows before the cut and then "
            "given the first n interactions of each held-out user "
            f"(n = {', '.join(map(str, cs['user_fold_in']))}) as history; the same later "
            f"interactions are tested at every n. {metric} with 95% CI:"
        )
        lines += _img(figures, "cold_start_users", "metric vs fold-in history")
        levels = sorted(set(cold_users["x_order"]))
        part = data.cold_start[data.cold_start["protocol"] == "user_cold_start"]
        totals = part.groupby(["model", "level"]).size()
        lines += ["", "| model | " + " | ".join(f"n={lv}" for lv in levels) + " | users |",
                  "|---|" + "---:|" * (len(levels) + 1)]
        for model in dict.fromkeys(cold_users["model"]):
            mine = cold_users[cold_users["model"] == model].set_index("x_order")
            cells = [_cold_cell(mine, lv, totals.get((model, lv), 0)) for lv in levels]
            lines.append(f"| `{model}` | " + " | ".join(cells) +
                         f" | {int(totals.get(model, pd.Series([0])).max())} |")
        lines += ["", "A cell reads **n/a** when the model could serve none of these users "
                  "at that history size (it cannot fold in that little history), and "
                  "**mean (a of b)** when it served only a of them."]
    lines += ["", f"**By training history** in the main split ({metric} per history bucket):"]
    lines += _img(figures, "cold_start_history", "metric vs training-history bucket")
    if not cold_items.empty:
        lines += ["", "**New items.** A share of items held out of training: every relevant "
                  "test item is one the model never saw.", "",
                  "| model | " + metric + " [CI] | users |", "|---|---:|---:|"]
        part = data.cold_start[data.cold_start["protocol"] == "item_cold_start"]
        totals = part.groupby("model").size()
        for _, r in cold_items.iterrows():
            total, served = int(totals.get(r["model"], 0)), int(r["n"])
            users = str(total) if served >= total else f"{served} of {total}"
            lines.append(f"| `{r['model']}` | {_mean_ci(r)} | {users} |")
        lines += ["", "**n/a**: the model recommended no held-out item to anyone — it cannot "
                  "serve new items (e.g. a collaborative model knows only trained items)."]
    return lines


def _cold_cell(mine: pd.DataFrame, level: int, total: int) -> str:
    """One cold-start table cell: the mean, ``n/a``, or ``mean (a of b)``."""
    if level not in mine.index:
        return "—"
    mean, served = mine.at[level, "mean"], int(mine.at[level, "n"])
    if pd.isna(mean) or served == 0:
        return "n/a"
    return fmt_num(mean) if served >= total else f"{fmt_num(mean)} ({served} of {total})"


def _beyond_section(data, trade, beyond, figures) -> list[str]:
    if not beyond:
        return []
    lines = ["", "## Beyond accuracy", "",
             "Coverage, Gini and personalisation describe the set of all lists; novelty, "
             "ILD (genre intra-list diversity) and ARP (average recommended popularity) are "
             "per-user means. Definitions are in the appendix.", "",
             "| model | " + " | ".join(beyond) + " |", "|---|" + "---:|" * len(beyond)]
    for _, r in trade.iterrows():
        lines.append(f"| `{r['model']}` | " + " | ".join(fmt_num(r[b]) for b in beyond) + " |")
    lines += _img(figures, "tradeoff", "accuracy vs coverage and novelty")
    return lines


def _curves_section(figures) -> list[str]:
    if "metric_at_k" not in figures:
        return []
    return ["", "## Metric@k", "", "Precision, recall and NDCG at every k from 1 to the "
            "curve length (`report.curve_k`), means over evaluated users.",
            *_img(figures, "metric_at_k", "metric at k curves")]


def _rating_section(data) -> list[str]:
    """RMSE/MAE of the rating predictors, labelled with how unscored pairs were treated."""
    from bench.reporting.summary import markdown_table, rating_frame, rating_heading

    frame = rating_frame(data.record)
    if frame is None:
        return []
    heading = rating_heading(data.record)
    return ["", "## Rating prediction", "", heading[0].upper() + heading[1:] + ".", "",
            markdown_table(frame, list(frame.columns))]


def _appendix(data) -> list[str]:
    card = data.card
    comp = card.get("comparable", {})
    lines = ["", "## Appendix", "", "### Evaluation card", "",
             f"- Dataset `{comp.get('dataset', {}).get('name')}`, fingerprint "
             f"`{comp.get('dataset', {}).get('fingerprint')}`.",
             f"- Rows dropped: dataset {card.get('rows_dropped', {}).get('dataset') or 'none'}; "
             f"split {card.get('rows_dropped', {}).get('split') or 'none'}.",
             f"- Split `{comp.get('split', {}).get('name')}` with "
             f"{comp.get('split', {}).get('params')}; fingerprints "
             + ", ".join(f"`{f[:12]}`" for f in comp.get("split", {}).get("fingerprints", []))
             + ".",
             f"- Relevance: {comp.get('relevance', {}).get('rule')} (threshold "
             f"{comp.get('relevance', {}).get('threshold')}); candidates: "
             f"{comp.get('candidates')}.",
             f"- Cutoffs {comp.get('cutoffs')}; seed {comp.get('seed')}; statistics "
             f"{card.get('statistics', {}).get('tests')}, seed "
             f"{card.get('statistics', {}).get('seed')}.",
             f"- Code: git `{(card.get('git') or {}).get('commit')}`"
             + (" (with local changes)" if (card.get("git") or {}).get("dirty") else "")
             + "; versions " + ", ".join(f"{k} {v}" for k, v in
                                         (card.get("versions") or {}).items() if v) + ".",
             *([f"- Rating errors: {card['rating_errors']['rule']}."]
               if card.get("rating_errors") and any("rmse" in m.metrics
                                                    for m in data.record.models) else []),
             "- Full card: `card.json`.", "", "Metric definitions:", ""]
    lines += [f"- **{m}**: {d}" for m, d in (card.get("metric_definitions") or {}).items()]
    lines += ["", "### Leakage audit", "",
              "Every split the report evaluates is audited: the main split and each cold-start "
              "protocol. A training or history row counts as *future* unless it is strictly "
              "earlier in time than the tested interaction (same-second rows count).", "",
              "| protocol | split | training rows | future training rows | fold-in rows "
              "from the test period | train/test pairs |", "|---|---|---:|---:|---:|---:|"]
    for a in data.record.leakage:
        protocol = a.get("protocol") or "main"
        where = f"{protocol} (fold {a.get('fold')})" if protocol == "main" else protocol
        lines.append(f"| {where} | `{a.get('name')}` | {_audit_count(a.get('train_rows'))} | "
                     f"{_audit_count(a.get('future_train_rows'))} | "
                     f"{_audit_count(a.get('fold_in_own_future_rows'))} | "
                     f"{_audit_count(a.get('duplicate_pairs'))} |")
    lines.append("")
    for a in data.record.leakage:
        protocol = a.get("protocol") or "main"
        where = f"fold {a.get('fold')}" if protocol == "main" else protocol
        found = a.get("leaks") or []
        warn = a.get("warnings") or []
        lines.append(f"- {where}: " + ("; ".join(found) if found else
                                       "no leakage found") + ".")
        lines += [f"  - note: {w}" for w in warn]
    return lines


def _audit_count(value) -> str:
    """A count for the audit table: ``n/a`` when it was not measured (no timestamps)."""
    return "n/a" if value is None else f"{int(value):,}"


# ---------------------------------------------------------------------------- formatting
def _write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)
