"""The baseline a CI gate compares against: ``reports/baselines/<name>.json``.

One JSON file per pinned experiment, committed with the code::

    {"format": "recspectrum-baseline", "version": 1, "name": "ci", "created_utc": ...,
     "card": {... the evaluation card ...},
     "metrics": ["precision@10", ...],
     "models": {"cf_als": {"family": "collaborative", "means": {"ndcg@10": ...}}, ...},
     "per_user": {"model": [...], "fold": [...], "user_id": [...], "history_bucket": [...],
                  "ndcg@10": [...], ...}}

``per_user`` holds, column by column, every model's per-user values of the gated
metrics, keyed by ``model``, ``fold`` and ``user_id``, with the segment labels
(history bucket, rule segment) and the new-item variants. A baseline written from a run
with training seeds (``seeds``) holds each user's mean over the seeds, plus ``seeds``
and ``seed_spread`` (``{model: {segment: {metric: sd over seeds}}}``,
:mod:`bench.check.spread`), which ``check.seed_spread`` reads. Floats are written with
Python's shortest round-trip repr, so a value read back is bit-identical; a user with no
value (no new relevant item) is ``NaN``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from bench.atomic import atomic_write
from bench.check.spread import segment_spreads
from bench.errors import DataError
from bench.metrics.keys import NEW_ITEMS, MetricKey
from bench.reporting.analysis import RunData

__all__ = ["FORMAT", "VERSION", "Baseline", "baseline_payload", "read_baseline",
           "write_baseline"]

FORMAT = "recspectrum-baseline"
VERSION = 1
KEYS = ["model", "fold", "user_id"]
LABELS = ["history_bucket", "segment"]


@dataclass(frozen=True, eq=False)
class Baseline:
    """A baseline file, read and checked."""

    path: Path
    name: str
    card: dict
    metrics: list[str]
    models: dict[str, dict]
    per_user: pd.DataFrame
    #: ``{model: {segment: {metric: sd over training seeds}}}``; empty without seeds
    seed_spread: dict = field(default_factory=dict)


def baseline_payload(data: RunData, metrics: list[str]) -> dict:
    """The baseline of a finished run (its folder loaded as :class:`RunData`)."""
    frame = data.per_user
    missing = [m for m in metrics if m not in frame]
    if missing:
        raise DataError(
            f"{data.folder}: the run has no per-user values for check.metrics {missing} "
            f"(it evaluated {sorted(c for c in frame.columns if _is_metric_column(c))})"
        )
    cols = KEYS + [c for c in LABELS if c in frame]
    new = [str(MetricKey.parse(m).over(NEW_ITEMS)) for m in metrics]
    cols += metrics + [c for c in new if c in frame]
    n_new = str(MetricKey("n_relevant", segment=NEW_ITEMS))
    if n_new in frame:
        cols.append(n_new)
    per_user = {c: [_plain(v) for v in frame[c].tolist()] for c in cols}
    models = {
        m: {"family": data.families[m],
            "means": {k: data.mean_over_folds(m, k) for k in metrics}}
        for m in data.models
    }
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "name": data.record.name,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_run": data.record.run,
        "card": data.card,
        "metrics": list(metrics),
        "models": models,
        "per_user": per_user,
    }
    if data.record.seeds is not None:  # per_user holds means over the training seeds
        payload["seeds"] = list(data.record.seeds)
        payload["seed_spread"] = segment_spreads(data.seed_rows, list(metrics))
    return payload


def _is_metric_column(column: str) -> bool:
    key = MetricKey.try_parse(column)
    return key is not None and key.is_cutoff_metric


def _plain(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def write_baseline(path: str | Path, payload: dict) -> Path:
    """Write the baseline atomically: a temp file in the same folder, then a rename.

    An interrupted write leaves the old baseline intact, never half a file.
    """
    def dump(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=1, allow_nan=True)
            fh.write("\n")

    return atomic_write(path, dump)


def read_baseline(path: str | Path) -> Baseline:
    """Read and check a baseline file; every problem is a ``DataError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: no baseline file; create it from the current code with "
            "`bench check --update-baseline` and commit it"
        )
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(
            f"{path}: not a readable baseline (invalid JSON: {exc}); restore it from version "
            "control or rewrite it with `bench check --update-baseline`"
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise DataError(f"{path}: expected a JSON object with format {FORMAT!r}; this is not a "
                        "recspectrum baseline")
    if raw.get("version") != VERSION:
        raise DataError(f"{path}: baseline version {raw.get('version')!r} is not supported "
                        f"(expected {VERSION}); rewrite it with `bench check --update-baseline`")
    for key, kind in (("card", dict), ("metrics", list), ("models", dict), ("per_user", dict)):
        if not isinstance(raw.get(key), kind):
            raise DataError(f"{path}: key {key!r} missing or not a {kind.__name__}")
    spread = raw.get("seed_spread", {})
    if not _is_spread(spread):
        raise DataError(f"{path}: key 'seed_spread' must map model -> segment -> metric -> a "
                        "number >= 0; rewrite it with `bench check --update-baseline`")
    columns = raw["per_user"]
    need = KEYS + raw["metrics"]
    absent = [c for c in need if c not in columns]
    if absent:
        raise DataError(f"{path}: per_user lacks column(s) {absent}")
    lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise DataError(f"{path}: per_user columns must be lists of equal length")
    frame = pd.DataFrame(columns)
    for m in raw["metrics"]:
        values = pd.to_numeric(frame[m], errors="coerce")
        bad = values.isna() & frame[m].notna()
        if bad.any() or not all(math.isfinite(v) for v in values.dropna()):
            raise DataError(f"{path}: per_user column {m!r} holds non-numeric values")
        frame[m] = values.astype(np.float64)
    if frame.duplicated(KEYS).any():
        raise DataError(f"{path}: per_user repeats a (model, fold, user_id) key")
    # the models it lists are what it promises to compare: each needs per-user rows
    listed = list(raw["models"])
    if frame.empty:
        raise DataError(f"{path}: per_user has no rows, so there is nothing to compare with "
                        f"(models lists {listed}); rewrite it with `bench check "
                        "--update-baseline`")
    held = list(dict.fromkeys(frame["model"].tolist()))
    unlisted = [m for m in held if m not in raw["models"]]
    if unlisted:
        raise DataError(f"{path}: per_user holds rows of model(s) {unlisted} that models does "
                        f"not list ({listed}); rewrite it with `bench check --update-baseline`")
    empty = [m for m in listed if m not in held]
    if empty:
        raise DataError(f"{path}: model(s) {empty} listed in models have no per_user rows "
                        f"(per_user holds {held}); rewrite it with `bench check "
                        "--update-baseline`")
    return Baseline(path=path, name=str(raw.get("name")), card=raw["card"],
                    metrics=list(raw["metrics"]), models=raw["models"], per_user=frame,
                    seed_spread=spread)


def _is_spread(spread) -> bool:
    """``{model: {segment: {metric: sd >= 0}}}``, as :func:`segment_spreads` writes it."""
    return isinstance(spread, dict) and all(
        isinstance(segs, dict) and all(
            isinstance(sds, dict) and all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                and v >= 0 for v in sds.values())
            for sds in segs.values())
        for segs in spread.values())
