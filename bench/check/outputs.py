"""What a CI system reads from ``bench check``: a markdown summary and JUnit XML.

* :func:`markdown_summary` — a short PR comment: verdict first, then every failing or
  noteworthy (model, metric, segment), then the per-model table on all users.
* :func:`junit_xml` — one ``testcase`` per (model, metric), failing when any of its
  segments regressed (the failure message lists them); models missing from the run or
  new to the baseline are ``skipped`` cases unless configured to fail.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bench.check.gate import GateResult
from bench.reporting.formatting import fmt_p

__all__ = ["junit_xml", "markdown_summary"]


def markdown_summary(gate: GateResult) -> str:
    """The PR comment (GitHub-flavoured markdown)."""
    t = gate.tests
    verdict = ("**FAIL** — model quality regressed" if gate.failures
               else "**PASS** — no significant regression")
    lines = [f"### recspectrum model-quality gate: {verdict}", "",
             f"Experiment `{gate.name}` against `{gate.baseline_path}`: {len(t)} paired tests "
             f"(models × metrics × segments), Holm-corrected at alpha = {gate.alpha}. A "
             "regression is a drop beyond the tolerance that is also significant."]
    spread = gate.seed_spread is not None
    if spread:
        lines[-1] += _seed_sentence(gate)
    if gate.failures:
        lines += ["", "Failures:", ""] + [f"- {f}" for f in gate.failures]
    shown = ["regression", "improvement", *(["within seed spread"] if spread else [])]
    notable = t[t["status"].isin(shown)]
    if len(notable):
        lines += ["", "| model | metric | segment | baseline | current | diff [95% CI] | "
                  "allowed drop | " + ("seed sd | " if spread else "") + "Holm p | status |",
                  "|---|---|---|---:|---:|---:|---:|" + ("---:|" if spread else "")
                  + "---:|---|"]
        for r in notable.itertuples():
            lines.append(_row(r, spread))
    lines += ["", "All users, per model:", "",
              "| model | metric | users | baseline | current | diff [95% CI] | Holm p | status |",
              "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in t[t["segment"] == "all"].itertuples():
        lines.append(f"| `{r.model}` | {r.metric} | {r.n} | {r.baseline:.4f} | {r.current:.4f} "
                     f"| {r.diff:+.4f} [{r.low:+.4f}, {r.high:+.4f}] | {fmt_p(r.p_holm)} | "
                     f"{r.status} |")
    if gate.new_models:
        lines.append(f"\nNew models (not in the baseline, not gated): "
                     f"{', '.join(gate.new_models)}.")
    if gate.missing_models:
        lines.append(f"\nBaseline models not run: {', '.join(gate.missing_models)}.")
    return "\n".join(lines) + "\n"


def _seed_sentence(gate: GateResult) -> str:
    """What ``check.seed_spread`` adds to the rule, and whether any seed spread was found."""
    k = gate.seed_spread
    text = (f" With `check.seed_spread` = {k:g}, the change must also exceed {k:g} × the "
            "standard deviation over training seeds (the baseline's or this run's, the larger); "
            "`within seed spread` marks those that did not.")
    if not (gate.tests["seed_sd"] > 0).any():
        text += (" Neither the baseline nor this run recorded a seed spread (no `seeds`, or "
                 "no model with a `${seed}` key): the option changed nothing.")
    return text


def _row(r, spread: bool = False) -> str:
    sd = f"{r.seed_sd:.4f} | " if spread else ""
    return (f"| `{r.model}` | {r.metric} | {r.segment} | {r.baseline:.4f} | {r.current:.4f} | "
            f"{r.diff:+.4f} [{r.low:+.4f}, {r.high:+.4f}] | {r.allowed:.4f} | {sd}"
            f"{fmt_p(r.p_holm)} | {r.status} |")


def junit_xml(gate: GateResult) -> str:
    """JUnit XML: a testsuite per gate, a testcase per (model, metric)."""
    t = gate.tests
    suite = ET.Element("testsuite", name=f"recspectrum.check.{gate.name}")
    n_fail = n_skip = 0
    for (model, metric), part in t.groupby(["model", "metric"], sort=False):
        case = ET.SubElement(suite, "testcase", classname=f"recspectrum.{gate.name}.{model}",
                             name=metric)
        bad = part[part["status"] == "regression"]
        if len(bad):
            n_fail += 1
            text = "; ".join(f"[{r.segment}] {r.diff:+.4f} (baseline {r.baseline:.4f}, "
                             f"allowed drop {r.allowed:.4f}, Holm p {fmt_p(r.p_holm)}, n {r.n})"
                             for r in bad.itertuples())
            failure = ET.SubElement(case, "failure", message=f"{metric} regressed: {text}",
                                    type="regression")
            failure.text = text
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(
            f"{r.segment}: baseline {r.baseline:.6f} current {r.current:.6f} diff {r.diff:+.6f} "
            f"CI [{r.low:+.6f}, {r.high:+.6f}] Holm p {fmt_p(r.p_holm)} n {r.n} -> {r.status}"
            for r in part.itertuples()
        )
    presence = ([(m, "new model: not in the baseline", gate.fail_new) for m in gate.new_models]
                + [(m, "missing: in the baseline but not run", gate.fail_missing)
                   for m in gate.missing_models])
    for model, why, fails in presence:
        case = ET.SubElement(suite, "testcase", classname=f"recspectrum.{gate.name}.{model}",
                             name="presence")
        if fails:
            n_fail += 1
            ET.SubElement(case, "failure", message=why, type="presence")
        else:
            n_skip += 1
            ET.SubElement(case, "skipped", message=why)
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(n_fail))
    suite.set("skipped", str(n_skip))
    suite.set("errors", "0")
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode")
