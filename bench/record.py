"""The run record: what a run produced, typed, versioned, with one writer and one reader.

Two files carry it, both written and read only here:

* ``artifacts/<model>/<fold0|protocol>/done.json`` — one finished cell
  (:class:`ModelResult` without its per-user frame, which sits next to it in
  ``per_user.parquet``). Written last into the cell's folder, so its presence means the
  cell is complete; ``resume`` reuses it when its ``config_hash`` matches.
* ``results.json`` — the whole run (:class:`RunRecord`): settings, dataset and split
  summaries, leakage audit, every cell, every failure, timings.

Reports, ``bench compare`` and ``bench check`` read runs through :func:`read_record`;
nothing else parses these files. Both carry a digest of their own content and the SHA-256
of the tables next to them, so a changed or damaged file is refused in one line (or, for a
cell, run again) instead of being read as numbers the run never produced.
:data:`FORMAT_VERSION` changes whenever a field does; :func:`read_record` refuses a version
it does not know with one line saying so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.atomic import json_text, write_json
from bench.errors import DataError

__all__ = [
    "DONE",
    "FORMAT_VERSION",
    "RESULTS",
    "ModelFailure",
    "ModelResult",
    "RunRecord",
    "RunResult",
    "check_table",
    "fold_sum",
    "read_cell",
    "read_record",
    "write_cell",
    "write_record",
]

#: Version of the layout of ``results.json`` and ``done.json`` (3: digests and checksums).
FORMAT_VERSION = 3
#: File name of a finished cell's record.
DONE = "done.json"
#: File name of the run's record.
RESULTS = "results.json"
#: File name of a finished cell's per-user metrics (next to its ``done.json``).
PER_USER = "per_user.parquet"

log = logging.getLogger("bench")


@dataclass
class ModelResult:
    """One cell's outcome: a model evaluated on one fold of the main split."""

    model: str
    family: str
    target: str
    params: dict[str, object]
    fold: int
    #: mean of every metric over the evaluated users (keys like ``ndcg@10``)
    metrics: dict[str, float]
    #: one row per evaluated user; not part of the JSON record (``per_user.parquet``)
    per_user: pd.DataFrame | None
    n_users: int
    n_users_excluded: int
    n_users_empty_list: int
    fit_seconds: float
    recommend_seconds: float
    evaluate_seconds: float
    run_id: str | None = None
    #: share of recommended rows produced by each component (composites; plain = 1.0)
    source_shares: dict[str, float] = field(default_factory=dict)
    #: means per segment (``ndcg@10.hist_1-5``, ``ndcg@10.new_items``, ``users.<segment>``)
    segment_metrics: dict[str, float] = field(default_factory=dict)
    #: metric@k curves: ``{"ndcg": means at k = 1..report.curve_k}``
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    #: hash of everything that decides this cell's numbers (see ``bench.cells``)
    config_hash: str = ""
    #: True when this model labelled users with segments for the others
    segments_source: bool = False
    #: the training seed of this cell (``seeds``); None = the model ran once (no seed key,
    #: or ``seeds`` off) — then the key is left out of the JSON
    seed: int | None = None

    def to_json(self) -> dict[str, object]:
        """The record (every field but ``per_user``), JSON-ready."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name != "per_user" and not (f.name == "seed" and self.seed is None)}
        out["curves"] = {m: np.asarray(v).tolist() for m, v in self.curves.items()}
        return out

    @classmethod
    def from_json(cls, raw: dict, per_user: pd.DataFrame | None = None) -> ModelResult:
        """The record ``to_json`` wrote; a missing field raises ``TypeError``."""
        names = {f.name for f in dataclasses.fields(cls)} - {"per_user", "curves"}
        return cls(**{n: raw[n] for n in names if n in raw}, per_user=per_user,
                   curves={m: np.asarray(v, dtype=np.float64)
                           for m, v in (raw.get("curves") or {}).items()})


@dataclass
class ModelFailure:
    """A model that raised during a run; the run went on without it."""

    model: str
    #: fold number, or None for a cold-start protocol
    fold: int | None
    #: "main" (the configured split) or the cold-start protocol's name
    protocol: str
    #: ``ExceptionType: message`` (first line)
    error: str
    #: True when the error is bad input (a ``BenchError``: config, data), else a crash
    bad_input: bool
    #: file holding the full traceback (also an artifact of the model's MLflow child run)
    traceback: str | None = None
    #: the training seed of the failed cell (``seeds``), else None
    seed: int | None = None

    @property
    def where(self) -> str:
        """``fold 0`` (``fold 0, seed 1``) or the protocol's name."""
        where = f"fold {self.fold}" if self.fold is not None else self.protocol
        return where if self.seed is None else f"{where}, seed {self.seed}"

    def to_json(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        if self.seed is None:
            del out["seed"]
        return out


@dataclass
class RunRecord:
    """Everything ``results.json`` holds about a run (per-user frames are Parquet files)."""

    name: str
    run: str
    #: ``Dataset.summary()``: name, rows, users, items, fingerprint, drops, ...
    dataset: dict[str, object]
    #: ``Split.summary()`` of every fold
    splits: list[dict[str, object]]
    #: the validated settings of each group, as plain mappings
    eval: dict[str, object]
    stats: dict[str, object]
    report: dict[str, object]
    cold_start: dict[str, object]
    #: the leakage audit of every fold
    leakage: list[dict[str, object]]
    models: list[ModelResult]
    failures: list[ModelFailure]
    mlflow_parent_run_id: str | None
    timings: dict[str, float]
    tracking: str = ""
    version: int = FORMAT_VERSION
    #: the training seeds (``seeds``); None = off (then absent from the JSON)
    seeds: list[int] | None = None
    #: SHA-256 of each table written next to ``results.json`` (``per_user.parquet``, ...)
    files: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ views
    @property
    def model_names(self) -> list[str]:
        """Models that finished at least one cell, in run order."""
        return list(dict.fromkeys(m.model for m in self.models))

    @property
    def families(self) -> dict[str, str]:
        return {m.model: m.family for m in self.models}

    def results_of(self, model: str) -> list[ModelResult]:
        return [m for m in self.models if m.model == model]

    def mean_over_folds(self, model: str, key: str) -> float:
        """Mean of ``metrics[key]`` over the model's folds (NaN when absent)."""
        vals = [m.metrics.get(key, np.nan) for m in self.results_of(model)]
        return float(np.mean(vals)) if vals else float("nan")

    def seconds(self, model: str, what: str) -> float:
        """``fit_seconds`` / ``recommend_seconds`` / ``evaluate_seconds`` of a model, summed
        over folds (each fold's mean over training seeds: the cost of one training)."""
        return fold_sum(self.results_of(model), lambda m: getattr(m, what))

    def to_json(self) -> dict[str, object]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.seeds is None:
            del out["seeds"]
        out["models"] = [m.to_json() for m in self.models]
        out["failures"] = [f.to_json() for f in self.failures]
        return out


def fold_sum(results: list[ModelResult], value) -> float:
    """Sum over folds of the mean over training seeds of ``value(result)`` (one result
    per fold without seeds: a plain sum)."""
    per_fold: dict[int, list[float]] = {}
    for r in results:
        per_fold.setdefault(r.fold, []).append(value(r))
    return float(sum(v[0] if len(v) == 1 else float(np.mean(v)) for v in per_fold.values()))


@dataclass
class RunResult:
    """What a run returns in memory: its record's content plus the per-user frames and
    the resolved config. :meth:`record` is what goes to disk."""

    name: str
    run_name: str
    output_dir: Path
    dataset: dict[str, object]
    splits: list[dict[str, object]]
    #: the validated ``eval`` settings (``bench.config.EvalSettings``)
    eval: object
    models: list[ModelResult]
    parent_run_id: str | None
    tracking: str
    config: dict[str, object]
    timings: dict[str, float] = field(default_factory=dict)
    #: the validated ``stats``, ``report`` and ``cold_start`` settings
    stats: object = None
    report: object = None
    cold_start_settings: object = None
    #: per-user results of the cold-start protocols (one row per model x level x user)
    cold_start: pd.DataFrame | None = None
    #: leakage audit of each fold (see :func:`bench.splits.audit.audit_split`)
    audits: list[dict[str, object]] = field(default_factory=list)
    #: models that raised (the others finished); the command exits non-zero when any did
    failures: list[ModelFailure] = field(default_factory=list)
    #: the training seeds (``seeds``); None = off
    seeds: list[int] | None = None

    def record(self) -> RunRecord:
        """The run's :class:`RunRecord` (what ``results.json`` holds)."""
        report = dataclasses.asdict(self.report)
        report["ladder"] = dict(self.report.ladder) if self.report.ladder else None
        return RunRecord(
            name=self.name, run=self.run_name, dataset=self.dataset, splits=self.splits,
            eval=dataclasses.asdict(self.eval), stats=dataclasses.asdict(self.stats),
            report=report, cold_start=dataclasses.asdict(self.cold_start_settings),
            leakage=self.audits, models=self.models, failures=self.failures,
            mlflow_parent_run_id=self.parent_run_id, timings=self.timings,
            tracking=self.tracking, seeds=self.seeds,
        )

    def per_user_frame(self) -> pd.DataFrame:
        """Every model's per-user table, stacked (columns ``model``, ``family``, ``fold``, ...)."""
        frames = [r.per_user.assign(model=r.model, family=r.family) for r in self.models]
        frame = pd.concat(frames, ignore_index=True)
        first = ["model", "family", "fold", "user_id"]
        if "seed" in frame:  # training seeds: null for the models that ran once
            frame["seed"] = frame["seed"].astype("Int64")
            first.insert(3, "seed")
        return frame[first + [c for c in frame.columns if c not in first]]

    def curves_frame(self) -> pd.DataFrame:
        """Long metric@k table: ``model, family, fold, metric, k, value``."""
        rows = [
            pd.DataFrame({"model": r.model, "family": r.family, "fold": r.fold, "metric": m,
                          "k": np.arange(1, len(v) + 1), "value": v})
            for r in self.models for m, v in r.curves.items()
        ]
        if not rows:
            return pd.DataFrame(columns=["model", "family", "fold", "metric", "k", "value"])
        return pd.concat(rows, ignore_index=True)

    def summary_frame(self) -> pd.DataFrame:
        """One row per model: metric means averaged over folds, users, timings."""
        rows = []
        for name in dict.fromkeys(r.model for r in self.models):
            res = [r for r in self.models if r.model == name]
            row: dict[str, object] = {"model": name, "family": res[0].family}
            for key in res[0].metrics:
                row[key] = float(np.mean([r.metrics[key] for r in res]))
            row["users"] = int(fold_sum(res, lambda r: r.n_users))
            row["users_excluded"] = int(fold_sum(res, lambda r: r.n_users_excluded))
            row["fit_s"] = fold_sum(res, lambda r: r.fit_seconds)
            row["recommend_s"] = fold_sum(res, lambda r: r.recommend_seconds)
            rows.append(row)
        return pd.DataFrame(rows)


# ---------------------------------------------------------------------- writers
def write_cell(folder: Path, result: ModelResult) -> Path:
    """Write a finished cell's ``done.json`` (last, after its other files).

    It carries the SHA-256 of ``per_user.parquet`` and a digest of its own content, so
    ``resume`` reuses only a cell whose files are exactly what this run wrote.
    """
    folder = Path(folder)
    raw = json.loads(json_text({"version": FORMAT_VERSION, **result.to_json(),
                                "files": {PER_USER: _sha256(folder / PER_USER)}}))
    return write_json(folder / DONE, {**raw, "digest": _digest(raw)})


def write_record(folder: Path, record: RunRecord, tables: list[str] = ()) -> Path:
    """Write the run's ``results.json`` with the SHA-256 of each of the ``tables`` (file
    names in ``folder``, written before) and a digest of its own content, so a reader
    finds a changed or damaged file in one line instead of reading wrong numbers."""
    folder = Path(folder)
    record = dataclasses.replace(record, files={t: _sha256(folder / t) for t in tables})
    raw = json.loads(json_text(record.to_json()))
    return write_json(folder / RESULTS, {**raw, "digest": _digest(raw)})


def check_table(folder: Path, record: RunRecord, name: str) -> None:
    """Raise ``DataError`` when table ``name`` of the run folder is not the file the run
    wrote (its SHA-256 differs from the one ``results.json`` holds)."""
    path = Path(folder) / name
    want = record.files.get(name)
    if want is not None and not path.is_file():
        raise DataError(f"{path}: missing, though {RESULTS} lists it; the run folder is "
                        f"damaged: rerun the experiment")
    if want is not None and _sha256(path) != want:
        raise DataError(f"{path}: changed or damaged since the run wrote it (its SHA-256 "
                        f"does not match {RESULTS}); rerun the experiment")


# ---------------------------------------------------------------------- readers
def read_cell(folder: Path) -> ModelResult | None:
    """A finished cell in ``folder`` (its per-user frame loaded), or ``None`` when the
    folder holds no complete, intact cell of this format (missing, unreadable, changed
    since it was written, or older files)."""
    folder = Path(folder)
    try:
        raw = json.loads((folder / DONE).read_text())
        if not isinstance(raw, dict) or raw.get("version") != FORMAT_VERSION:
            return None
        digest = raw.pop("digest", None)
        if digest != _digest(raw) or raw.pop("files") != {PER_USER: _sha256(folder / PER_USER)}:
            log.warning("%s: changed since it was written; its cell runs again", folder / DONE)
            return None
        per_user = pd.read_parquet(folder / PER_USER)
        return ModelResult.from_json(raw, per_user)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _digest(raw: dict) -> str:
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_record(folder: Path) -> RunRecord:
    """Read a run folder's ``results.json``; a missing, unreadable or foreign file is a
    ``DataError`` naming it."""
    path = Path(folder) / RESULTS
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: not found; is this a run folder written by bench?") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as JSON ({exc})") from None
    version = raw.get("version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise DataError(
            f"{path}: expected a run record of format version {FORMAT_VERSION}, got "
            f"{version!r}; it was written by another recspectrum version — rerun the "
            f"experiment (or `bench report` it with that version)"
        )
    if raw.pop("digest", None) != _digest(raw):
        raise DataError(f"{path}: changed or damaged since the run wrote it (its digest does "
                        f"not match its content); rerun the experiment")
    try:
        fields = {f.name for f in dataclasses.fields(RunRecord)}
        return RunRecord(
            **{k: v for k, v in raw.items() if k in fields and k not in ("models", "failures")},
            models=[ModelResult.from_json(m) for m in raw["models"]],
            failures=[ModelFailure(**f) for f in raw.get("failures", [])],
        )
    except (KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a complete run record (missing or unexpected {exc})") \
            from None
