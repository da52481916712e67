"""The seed spread the gate can require a regression to exceed (``check.seed_spread: k``).

With training seeds (``seeds``, :mod:`bench.seeds`), each seeded model's per-user rows
come once per seed. For every gated (model, metric, segment), the *seed sd* is the
standard deviation (n - 1) over seeds of the model's mean of the metric over the
segment's users — the same mean the gate compares, computed per seed. A baseline written
from a seeded run records these (``seed_spread`` in the file); the run under check has
its own. With ``check.seed_spread: k``, a significant change beyond the tolerance counts
(as a regression, or an improvement) only when it is also larger than ``k`` times the
larger of the two seed sds; otherwise its status is ``within seed spread``. A model with
no seed key in either run has a seed sd of 0, so the rule changes nothing for it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.metrics.keys import NEW_ITEMS, MetricKey

__all__ = ["SEGMENT_PREFIX", "seed_sds", "segment_spreads"]

#: how the gate labels the segments of each kind (``history 1-5``, ``segment heavy``)
SEGMENT_PREFIX = {"history_bucket": "history ", "segment": "segment "}


def segment_spreads(rows: pd.DataFrame | None, metrics: list[str]) -> dict[str, dict]:
    """``{model: {segment label: {metric: seed sd}}}`` for every model of ``rows`` (per-user
    rows with a ``seed`` column) that ran with at least two seeds; ``{}`` for ``None``.

    Segment labels are the gate's: ``all``, ``new_items``, ``history <bucket>``,
    ``segment <label>``. A metric with no value in a segment is left out.
    """
    if rows is None or "seed" not in rows:
        return {}
    out: dict[str, dict] = {}
    seeded = rows[rows["seed"].notna()]
    for model, mine in seeded.groupby("model", sort=False):
        if mine["seed"].nunique() < 2:
            continue
        spread: dict[str, dict[str, float]] = {}
        cols = [m for m in metrics if m in mine]
        _add(spread, "all", mine.groupby("seed")[cols].mean())
        new = {str(MetricKey.parse(m).over(NEW_ITEMS)): m for m in metrics}
        new = {c: m for c, m in new.items() if c in mine}
        if new:
            means = mine.groupby("seed")[list(new)].mean().rename(columns=new)
            _add(spread, NEW_ITEMS, means)
        for kind, prefix in SEGMENT_PREFIX.items():
            if kind not in mine or not mine[kind].notna().any():
                continue
            means = mine.groupby(["seed", kind])[cols].mean()
            for label in dict.fromkeys(mine[kind].dropna()):
                _add(spread, f"{prefix}{label}", means.xs(label, level=kind))
        out[str(model)] = spread
    return out


def _add(spread: dict, label: str, per_seed: pd.DataFrame) -> None:
    """Record the sd over seeds (rows) of each metric (columns) that has two values."""
    sds = {}
    for metric in per_seed.columns:
        v = per_seed[metric].to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size > 1:
            sds[str(metric)] = float(np.std(v, ddof=1))
    if sds:
        spread[label] = sds


def seed_sds(tests: pd.DataFrame, *spreads: dict) -> np.ndarray:
    """Per gate test (``model, metric, segment`` columns): the largest seed sd any of
    ``spreads`` records for it (:func:`segment_spreads`), 0 where none does."""
    out = np.zeros(len(tests), dtype=np.float64)
    for i, (model, metric, segment) in enumerate(
            zip(tests["model"], tests["metric"], tests["segment"], strict=True)):
        found = [s.get(model, {}).get(segment, {}).get(metric) for s in spreads]
        found = [float(v) for v in found if v is not None and np.isfinite(v)]
        out[i] = max(found, default=0.0)
    return out
