"""Orchestration: dataset -> split -> for each (fold, model): fit, recommend, evaluate, log.

:func:`run_experiment` takes a composed config (a Hydra ``DictConfig`` or a plain
mapping) and returns a :class:`RunResult`. It prints nothing; stage progress goes to
the ``bench`` logger, and the command line decides how to show it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from bench.atomic import atomic_write_text
from bench.config import (
    ColdStartSettings,
    EvalSettings,
    ReportSettings,
    StatsSettings,
    check_settings,
    check_top_level,
    cold_start_settings,
    eval_settings,
    report_settings,
    resolve_headline,
    stats_settings,
    to_container,
)
from bench.data.dataset import Dataset
from bench.errors import BenchError, ConfigError, DataError, EvaluationError
from bench.evaluation import (
    FoldContext,
    accuracy_keys,
    evaluate_lists,
    relevance,
    segment_metrics,
)
from bench.metrics import metric_key, mlflow_key
from bench.metrics.rating import mae, rmse
from bench.models.base import Recommender, TopK
from bench.splits.audit import audit_split
from bench.splits.base import Split
from bench.targets import build
from bench.tracking.base import Tracker, build_tracker

log = logging.getLogger("bench")

INVOCATION_TAG = "recspectrum.invocation"


@dataclass
class ModelResult:
    """One (model, fold) evaluation."""

    model: str
    family: str
    target: str
    params: dict[str, object]
    fold: int
    metrics: dict[str, float]
    per_user: pd.DataFrame
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


class ModelFailed(Exception):
    """Raised by ``_run_model`` once a failure is recorded; the fold loop catches it."""

    def __init__(self, failure: ModelFailure):
        super().__init__(failure.error)
        self.failure = failure


@dataclass
class RunResult:
    """What a run produced; reports are built from this alone."""

    name: str
    run_name: str
    output_dir: Path
    dataset: dict[str, object]
    splits: list[dict[str, object]]
    eval: EvalSettings
    models: list[ModelResult]
    parent_run_id: str | None
    tracking: str
    config: dict[str, object]
    timings: dict[str, float] = field(default_factory=dict)
    stats: StatsSettings = field(default_factory=StatsSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    cold_start_settings: ColdStartSettings = field(default_factory=ColdStartSettings)
    #: per-user results of the cold-start protocols (one row per model x level x user)
    cold_start: pd.DataFrame | None = None
    #: leakage audit of each fold (see :func:`bench.splits.audit.audit_split`)
    audits: list[dict[str, object]] = field(default_factory=list)
    #: models that raised (the others finished); the command exits non-zero when any did
    failures: list[ModelFailure] = field(default_factory=list)

    def per_user_frame(self) -> pd.DataFrame:
        """Every model's per-user table, stacked (columns ``model``, ``family``, ``fold``, ...)."""
        frames = [r.per_user.assign(model=r.model, family=r.family) for r in self.models]
        frame = pd.concat(frames, ignore_index=True)
        first = ["model", "family", "fold", "user_id"]
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
            row["users"] = int(sum(r.n_users for r in res))
            row["users_excluded"] = int(sum(r.n_users_excluded for r in res))
            row["fit_s"] = float(sum(r.fit_seconds for r in res))
            row["recommend_s"] = float(sum(r.recommend_seconds for r in res))
            rows.append(row)
        return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- entry point
def run_experiment(
    cfg,
    *,
    output_dir: str | Path | None = None,
    tracker: Tracker | None = None,
    invocation: str | None = None,
    on_result: Callable[[RunResult, Tracker, str | None], list[Path]] | None = None,
) -> RunResult:
    """Run the experiment ``cfg`` describes and return its results.

    Args:
        cfg: the composed config (see ``configs/config.yaml`` for every key).
        output_dir: where ``report.md``, ``results.json`` and artifacts go; by default
            ``<report.dir>/<name>/<timestamp>-<id>``.
        tracker: overrides the ``tracker`` config group (tests pass a ``MemoryTracker``).
        invocation: an id shared by every job of one command (a Hydra sweep shares one
            MLflow parent run through it); a fresh id by default.
        on_result: called with the result, the tracker and the parent run id after the
            report is written and before the parent run ends (``bench check`` compares
            with its baseline there); the paths it returns are logged to the parent run.
    """
    t_start = time.perf_counter()
    raw = to_container(cfg)
    check_top_level(raw)
    settings = eval_settings(raw.get("eval"))
    stats = stats_settings(raw.get("stats"), raw["seed"])
    cold = cold_start_settings(raw.get("cold_start"), raw["seed"])
    report = resolve_headline(report_settings(raw.get("report")), settings)
    check_settings(raw.get("check"))  # bench check reads it; a typo fails before training
    name = str(raw.get("name") or "default")
    models_cfg = raw["models"]
    if not isinstance(models_cfg, Mapping) or not models_cfg:
        raise ConfigError("models: expected at least one model (e.g. model=[rule_popular,cf_als])")
    _check_model_names(models_cfg, settings, stats, report)
    for model_name, model_cfg in models_cfg.items():  # bad config fails before any training
        _build_model(model_name, model_cfg)
    run_name = f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    out = Path(output_dir) if output_dir else Path(report.dir) / name / run_name
    out.mkdir(parents=True, exist_ok=True)
    resume_from = _resume_source(raw.get("resume", False), out)
    tracker = tracker or build_tracker(raw.get("tracker"))
    tracker.check()  # before any training: an unreachable store fails fast
    timings: dict[str, float] = {}

    t = time.perf_counter()
    dataset: Dataset = build(raw["dataset"], "dataset")
    if not isinstance(dataset, Dataset):
        raise ConfigError(
            f"dataset._target_: expected a loader returning a Dataset, got {type(dataset).__name__}"
        )
    timings["load_s"] = time.perf_counter() - t
    ds_summary = dataset.summary()
    log.info(
        "dataset %s: %d rows, %d users, %d items%s",
        dataset.name, ds_summary["rows"], ds_summary["users"], ds_summary["items"],
        f"; dropped {dict(dataset.drops)}" if dataset.drops else "",
    )
    if settings.relevance_threshold is not None and dataset.interactions.has_ratings:
        scale = dataset.interactions.rating_scale
        if scale and not (scale[0] <= settings.relevance_threshold <= scale[1]):
            raise ConfigError(
                f"eval.relevance_threshold: expected a value within the rating scale "
                f"[{scale[0]:g}, {scale[1]:g}] of {dataset.name}, "
                f"got {settings.relevance_threshold:g}"
            )

    t = time.perf_counter()
    splitter = build(raw["split"], "split")
    splits: list[Split] = splitter.split(dataset.interactions)
    timings["split_s"] = time.perf_counter() - t
    for s in splits:
        log.info("split %s fold %d/%d: %s", s.name, s.fold + 1, s.n_folds, _part_line(s))
    audits = _audit(splits, settings)

    invocation = invocation or uuid.uuid4().hex
    run_name = out.name
    parent = tracker.find_run(INVOCATION_TAG, invocation)
    if parent is None:  # first job of this invocation: create and describe the parent
        parent = tracker.start_run(
            f"{name}/{run_name}",
            tags={INVOCATION_TAG: invocation, "recspectrum.experiment": name,
                  "dataset.fingerprint": ds_summary["fingerprint"],
                  "split.fingerprint": splits[0].fingerprint},
        )
        tracker.log_params(parent, {
            "seed": raw["seed"], "dataset": dataset.name, "split": splits[0].name,
            **{f"split.{k}": v for k, v in splits[0].params.items()},
            "eval.cutoffs": list(settings.cutoffs),
            "eval.relevance_threshold": settings.relevance_threshold,
        })
    _write_json(out / "config.json", raw)
    tracker.log_artifact(parent, out / "config.json", f"config/{run_name}")

    results: list[ModelResult] = []
    failures: list[ModelFailure] = []
    t_models = time.perf_counter()
    order = _model_order(models_cfg, settings)
    for split in splits:
        ctx = FoldContext.build(split, dataset, settings)
        log.info(
            "fold %d: %d test users, %d with a relevant item (%d excluded: none relevant); "
            "%d relevant pairs on new items",
            split.fold, ctx.n_test_users, len(ctx.users), ctx.n_test_users - len(ctx.users),
            ctx.n_new_relevant,
        )
        fold_results: dict[str, ModelResult] = {}
        seg_labels = None
        for model_name in order:
            log.info("model %s (fold %d): fit", model_name, split.fold)
            key = _child_key(models_cfg[model_name], split, ds_summary, settings, report)
            try:
                done = _resume(resume_from, out, model_name, split.fold, key, tracker, parent)
                res, labels = done or _run_model(
                    model_name, models_cfg[model_name], dataset, ctx, settings, report,
                    tracker, parent, out, seg_labels, key,
                )
            except ModelFailed as failed:  # the other models still run
                failures.append(failed.failure)
                continue
            if seg_labels is None and labels is not None:
                seg_labels = labels
            fold_results[model_name] = res
            at_k = f"@{_table_k(settings)}"
            log.info(
                "model %s: %s (fit %.2fs, recommend %.2fs)", model_name,
                ", ".join(f"{k}={v:.4f}" for k, v in res.metrics.items()
                          if k.endswith(at_k) and k.split("@")[0] in settings.metrics),
                res.fit_seconds, res.recommend_seconds,
            )
        results.extend(fold_results[m] for m in models_cfg if m in fold_results)
    timings["models_s"] = time.perf_counter() - t_models

    cold_frame = None
    if cold.user_fraction is not None or cold.item_fraction is not None:
        from bench.protocols import run_cold_start

        t = time.perf_counter()
        cold_frame = run_cold_start(
            dataset, models_cfg, settings, cold, tracker=tracker, parent=parent, out=out,
            failures=failures,
        )
        timings["cold_start_s"] = time.perf_counter() - t

    result = RunResult(
        name=name,
        run_name=run_name,
        output_dir=out,
        dataset=ds_summary,
        splits=[s.summary() for s in splits],
        eval=settings,
        models=results,
        parent_run_id=parent,
        tracking=tracker.describe(),
        config=raw,
        timings=timings,
        stats=stats,
        report=report,
        cold_start_settings=cold,
        cold_start=cold_frame,
        audits=audits,
        failures=failures,
    )
    from bench.reporting.report import write_report
    from bench.reporting.summary import write_results

    timings["total_s"] = time.perf_counter() - t_start
    paths = write_results(result)
    t = time.perf_counter()
    paths += write_report(out)
    timings["report_s"] = time.perf_counter() - t
    for p in paths:
        tracker.log_artifact(parent, p, f"report/{run_name}")
    if (out / "figures").is_dir():
        tracker.log_artifact(parent, out / "figures", f"report/{run_name}/figures")
    if on_result is not None:
        for p in on_result(result, tracker, parent):
            tracker.log_artifact(parent, p, f"report/{run_name}")
    if failures:
        log.error("%d model run(s) failed: %s", len(failures),
                  "; ".join(f"{f.model} ({f.protocol}"
                            + (f", fold {f.fold}" if f.fold is not None else "")
                            + f"): {f.error}" for f in failures))
    tracker.end_run(parent, "FAILED" if failures else "FINISHED")
    return result


# ---------------------------------------------------------------------------- pieces
def _check_model_names(models_cfg, settings: EvalSettings, stats: StatsSettings,
                       report: ReportSettings) -> None:
    """Every model a setting names must be in the run: say which key names a stranger."""
    named = [("stats.baseline", stats.baseline)]
    if settings.segment_rules not in (None, "auto"):
        named.append(("eval.segments.rules", settings.segment_rules))
    named += [(f"report.ladder.{fam}", m) for fam, m in (report.ladder or ())]
    for key, model in named:
        if model is not None and model not in models_cfg:
            raise ConfigError(
                f"{key}: expected one of the run's models {list(models_cfg)}, got {model!r}"
            )


def _model_order(models_cfg, settings: EvalSettings) -> list[str]:
    """Config order, except that the model whose segments break down the others runs first."""
    order = list(models_cfg)
    seg = settings.segment_rules
    if seg not in (None, "auto"):
        order.remove(seg)
        order.insert(0, seg)
    elif seg == "auto":
        first = next((m for m in order if _segments_users(models_cfg[m])), None)
        if first is not None:
            order.remove(first)
            order.insert(0, first)
    return order


def _segments_users(model_cfg) -> bool:
    """Does this model config build a class that labels users with segments?"""
    import importlib

    target = str(model_cfg.get("_target_", ""))
    module, _, attr = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(cls, type) and cls.user_segments is not Recommender.user_segments


def _audit(splits: list[Split], settings: EvalSettings) -> list[dict[str, object]]:
    """Leakage audit of every fold: log it, and stop here when eval.fail_on_leakage says so."""
    out = []
    for split in splits:
        audit = audit_split(split)
        for line in audit.leaks:
            log.warning("leakage (fold %d): %s", split.fold, line)
        for line in audit.warnings:
            log.info("audit (fold %d): %s", split.fold, line)
        if audit.leaks and settings.fail_on_leakage:
            raise EvaluationError(
                f"split '{split.name}' fold {split.fold}: leakage found and "
                f"eval.fail_on_leakage is true: {'; '.join(audit.leaks)}"
            )
        out.append({"fold": split.fold, **audit.to_dict()})
    return out


def _run_model(
    model_name, model_cfg, dataset, ctx: FoldContext, settings: EvalSettings,
    report: ReportSettings, tracker, parent, out, seg_labels, key: str = "",
) -> tuple[ModelResult, pd.Series | None]:
    """Fit, recommend, evaluate and log one model on one fold.

    Returns the result and, when this model labels users with segments, those labels
    (a Series indexed by user id) for the models after it.
    """
    split = ctx.split
    model = _build_model(model_name, model_cfg)
    child = tracker.start_run(
        f"{model_name}/fold{split.fold}",
        parent_id=parent,
        tags={"model": model_name, "family": model.family, "fold": str(split.fold),
              "split.fingerprint": split.fingerprint},
    )
    status = "FAILED"
    try:
        params = model.get_params(deep=True)
        tracker.log_params(child, {**params, "_target_": model_cfg["_target_"]})
        t = time.perf_counter()
        model.fit(split.train, item_features=dataset.item_features,
                  user_features=dataset.user_features, train_order=split.train_order)
        fit_s = time.perf_counter() - t

        users = ctx.users
        t = time.perf_counter()
        top = model.recommend_codes(
            users, max(settings.k_max, report.curve_k), exclude_seen=settings.exclude_seen,
            history=ctx.history, batch_size=settings.batch_size,
        )
        rec_s = time.perf_counter() - t

        t = time.perf_counter()
        ev = evaluate_lists(top.items, ctx, settings, curve_k=report.curve_k)
        metrics = ev.metrics
        metrics.update(_rating_metrics(model, split))
        per_user = ev.per_user
        per_user.insert(1, "fold", split.fold)
        labels = None
        own = model.user_segments(users)
        if own is not None:
            labels = pd.Series(np.asarray(own, dtype=object), index=split.test.user_ids[users])
        source = seg_labels if seg_labels is not None else labels
        if source is not None and settings.segment_rules is not None:
            per_user["segment"] = source.reindex(per_user["user_id"]).to_numpy(dtype=object)
        seg = segment_metrics(per_user, accuracy_keys(settings))
        eval_s = time.perf_counter() - t

        top = _truncate(top, settings.k_max)
        shares = _source_shares(top, model_name)
        n_empty = int((top.lengths == 0).sum())
        metrics_log = {mlflow_key(k): v for k, v in metrics.items()}
        # segments in MLflow at the table cutoff (every cutoff is in results.json): logging
        # 24 metrics x every segment per child cost more than the rest of the logging
        at = f"@{_table_k(settings)}."
        metrics_log.update({mlflow_key(k): v for k, v in seg.items()
                            if at in k or k.startswith("users.")})
        metrics_log.update({"users_evaluated": len(per_user), "users_excluded": ev.n_excluded,
                            "users_empty_list": n_empty, "fit_seconds": fit_s,
                            "recommend_seconds": rec_s})
        if top.sources is not None:
            metrics_log.update({f"source_share.{k}": v for k, v in shares.items()})
        tracker.log_metrics(child, metrics_log)
        _log_child_artifacts(tracker, child, out / "artifacts" / model_name / f"fold{split.fold}",
                             model_name, model, top, users, split, ctx.relevant_frame,
                             per_user, metrics)
        status = "FINISHED"
    except Exception as exc:
        folder = out / "artifacts" / model_name / f"fold{split.fold}"
        raise ModelFailed(record_failure(exc, model_name, split.fold, "main", folder,
                                         tracker, child)) from exc
    finally:
        tracker.end_run(child, status)
    result = ModelResult(
        model=model_name, family=model.family, target=model_cfg["_target_"], params=params,
        fold=split.fold, metrics=metrics, per_user=per_user, n_users=len(per_user),
        n_users_excluded=ev.n_excluded, n_users_empty_list=n_empty, fit_seconds=fit_s,
        recommend_seconds=rec_s, evaluate_seconds=eval_s, run_id=child, source_shares=shares,
        segment_metrics=seg, curves=ev.curves,
    )
    _mark_done(out / "artifacts" / model_name / f"fold{split.fold}", key, result,
               labels is not None)
    return result, labels


# ---------------------------------------------------------------------------- resume
#: Written last into a finished (model, fold)'s artifact folder: its presence means done.
DONE = "done.json"


def _child_key(model_cfg, split: Split, ds_summary, settings: EvalSettings,
               report: ReportSettings) -> str:
    """SHA-256 of everything that decides a (model, fold)'s numbers: the resolved model
    config (seeds included), the data and split fingerprints and the evaluation settings."""
    import hashlib
    from dataclasses import asdict

    blob = json.dumps({"model": model_cfg, "dataset": ds_summary["fingerprint"],
                       "split": split.fingerprint, "eval": asdict(settings),
                       "curve_k": report.curve_k}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _mark_done(folder: Path, key: str, result: ModelResult, segments_source: bool) -> None:
    if not key:
        return
    payload = {
        "config_hash": key, "model": result.model, "family": result.family,
        "target": result.target, "params": result.params, "fold": result.fold,
        "metrics": result.metrics, "n_users_excluded": result.n_users_excluded,
        "n_users_empty_list": result.n_users_empty_list, "fit_seconds": result.fit_seconds,
        "recommend_seconds": result.recommend_seconds,
        "evaluate_seconds": result.evaluate_seconds, "run_id": result.run_id,
        "source_shares": result.source_shares, "segment_metrics": result.segment_metrics,
        "curves": {m: v.tolist() for m, v in result.curves.items()},
        "segments_source": segments_source,
    }
    _write_json(folder / DONE, payload)


def _resume_source(value, out: Path) -> Path | None:
    """The run folder to resume from: ``resume=true`` = the latest other run of this
    experiment (``out``'s siblings, by name); ``resume=<folder>``; false = none."""
    if value is False or value is None:
        return None
    if value is True:
        runs = sorted(d for d in out.parent.iterdir()
                      if d.is_dir() and d != out and (d / "artifacts").is_dir())
        if not runs:
            log.info("resume: no earlier run of this experiment in %s; starting afresh",
                     out.parent)
            return None
        return runs[-1]
    if isinstance(value, str) and Path(value).is_dir():
        return Path(value)
    raise ConfigError(
        f"resume: expected true, false or an existing run folder, got {value!r}"
    )


def _resume(source: Path | None, out: Path, model_name: str, fold: int, key: str, tracker,
            parent) -> tuple[ModelResult, pd.Series | None] | None:
    """A (model, fold) finished in ``source`` with the same config hash: reuse it.

    Its artifact folder is copied into this run, its numbers are read back (bit for bit:
    Parquet and JSON floats round-trip exactly) and logged to a new MLflow child tagged
    with the run it came from. Returns ``None`` when there is nothing to reuse.
    """
    import shutil

    if source is None:
        return None
    folder = source / "artifacts" / model_name / f"fold{fold}"
    try:
        done = json.loads((folder / DONE).read_text())
        per_user = pd.read_parquet(folder / "per_user.parquet")
    except (OSError, ValueError):
        return None
    if done.get("config_hash") != key:
        log.info("model %s (fold %d): not resumed, its config or data changed", model_name,
                 fold)
        return None
    target = out / "artifacts" / model_name / f"fold{fold}"
    if folder.resolve() != target.resolve():
        shutil.copytree(folder, target, dirs_exist_ok=True)
    child = tracker.start_run(
        f"{model_name}/fold{fold}", parent_id=parent,
        tags={"model": model_name, "family": done["family"], "fold": str(fold),
              "recspectrum.resumed_from": str(done.get("run_id"))},
    )
    tracker.log_params(child, {**done["params"], "_target_": done["target"]})
    tracker.log_metrics(child, {mlflow_key(k): v for k, v in done["metrics"].items()})
    tracker.log_artifact(child, target, None)
    tracker.end_run(child, "FINISHED")
    result = ModelResult(
        model=model_name, family=done["family"], target=done["target"],
        params=done["params"], fold=fold, metrics=done["metrics"], per_user=per_user,
        n_users=len(per_user), n_users_excluded=done["n_users_excluded"],
        n_users_empty_list=done["n_users_empty_list"], fit_seconds=done["fit_seconds"],
        recommend_seconds=done["recommend_seconds"],
        evaluate_seconds=done["evaluate_seconds"], run_id=child,
        source_shares=done["source_shares"], segment_metrics=done["segment_metrics"],
        curves={m: np.asarray(v) for m, v in done["curves"].items()},
    )
    labels = None
    if done.get("segments_source") and "segment" in per_user:
        labels = pd.Series(per_user["segment"].to_numpy(dtype=object),
                           index=pd.Index(per_user["user_id"]))
    log.info("model %s (fold %d): resumed from %s (same config hash)", model_name, fold,
             source.name)
    return result, labels


def _build_model(model_name: str, model_cfg) -> Recommender:
    where = f"models.{model_name}"
    model = build(model_cfg, where)
    if not isinstance(model, Recommender):
        raise ConfigError(f"{where}._target_: expected a Recommender, got {type(model).__name__}")
    return model


def record_failure(exc: BaseException, model_name: str, fold: int | None, protocol: str,
                   folder: Path, tracker, child) -> ModelFailure:
    """Write the traceback next to the model's artifacts, attach it to its MLflow child run,
    log one line, and return the failure record."""
    import traceback

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "traceback.txt"
    path.write_text("".join(traceback.format_exception(exc)))
    try:
        tracker.log_artifact(child, path, None)
    except Exception:  # the tracker's own fault must not hide the model's
        log.warning("could not attach %s to the tracking run", path)
    first = (str(exc).strip().splitlines() or [""])[0]
    error = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    where = f"fold {fold}" if fold is not None else protocol
    log.error("model %s (%s) FAILED: %s (traceback: %s)", model_name, where, error, path)
    return ModelFailure(model=model_name, fold=fold, protocol=protocol, error=error,
                        bad_input=isinstance(exc, BenchError), traceback=str(path))


def _truncate(top: TopK, k: int) -> TopK:
    """The first ``k`` ranks of ``top``."""
    if top.items.shape[1] <= k:
        return top
    return replace(top, items=top.items[:, :k], scores=top.scores[:, :k],
                   sources=None if top.sources is None else top.sources[:, :k])


def _source_shares(top, model_name: str) -> dict[str, float]:
    """Share of recommended rows per producing component (a plain model: its own name)."""
    filled = top.items >= 0
    total = int(filled.sum())
    if top.sources is None:
        return {model_name: 1.0 if total else 0.0}
    counts = np.bincount(top.sources[filled].astype(np.int64), minlength=len(top.source_names))
    return {name: (float(c) / total if total else 0.0)
            for name, c in zip(top.source_names, counts, strict=True)}


def _rating_metrics(model: Recommender, split: Split) -> dict[str, float]:
    """RMSE/MAE on the test pairs the model can predict (rating predictors only)."""
    if not getattr(model, "predicts_ratings", False) or not split.test.has_ratings:
        return {}
    pred = np.asarray(model.predict_codes(split.test.users, split.test.items), dtype=np.float64)
    ok = np.isfinite(pred)
    if not ok.any():
        raise EvaluationError(f"{type(model).__name__}: no test rating could be predicted")
    truth = split.test.ratings[ok]
    return {"rmse": rmse(pred[ok], truth), "mae": mae(pred[ok], truth),
            "rating_pairs_unpredicted": float((~ok).sum())}


def _log_child_artifacts(tracker, child, folder: Path, model_name, model, top, users, split,
                         relevant, per_user, metrics) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lists = model.lists_frame(top, split.test.user_ids[users])
    if top.sources is None:  # a single-component model: label rows with its config name
        lists["source"] = model_name
    lists.to_parquet(folder / "topk.parquet", index=False)
    per_user.to_parquet(folder / "per_user.parquet", index=False)
    relevant.to_parquet(folder / "relevant.parquet", index=False)
    _write_json(folder / "metrics.json", metrics)
    tracker.log_artifact(child, folder, None)


def _part_line(split: Split) -> str:
    parts = [("train", split.train), ("test", split.test), ("validation", split.validation),
             ("fold_in", split.fold_in)]
    return ", ".join(f"{n} {len(p)} rows" for n, p in parts if p is not None)


def _table_k(settings: EvalSettings) -> int:
    return 10 if 10 in settings.cutoffs else settings.cutoffs[-1]


def _write_json(path: Path, obj) -> None:
    """Write JSON atomically (see :mod:`bench.atomic`)."""
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default, allow_nan=True))


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


__all__ = ["DataError", "ModelResult", "RunResult", "metric_key", "relevance", "run_experiment"]
