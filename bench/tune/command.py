"""``bench tune``: tune every model of an experiment on a validation cut of its training
data, with the same budget per model, and write the tuned overlay.

:func:`run_tuning` takes a composed config (the same one ``bench`` runs) and:

1. checks the settings and every model's search space (:mod:`bench.tune.space`) before
   any data is read;
2. loads the data and splits it with the run's split plus a validation carve
   (``split.validation``, else ``tune.validation``): fold 0's training rows minus
   validation are what models are fitted on, its validation rows what they are scored on
   (:func:`bench.tune.objective.validation_split`); the test part is never read, and the
   leakage audit of the validation split goes into the record;
3. runs one Optuna study per tunable model with the same budget (:mod:`bench.tune.study`);
   models with ``_tune_: {}`` are marked "no hyperparameters", models without a
   ``_tune_`` block "no search space";
4. writes ``<report.dir>/<name>/tune/``: ``study.json``, ``leaderboard.md``,
   ``leaderboard.csv``, figures, ``tuned.yaml``; and the overlay
   ``<config dir>/tuned/<study>.yaml`` that ``bench tuned=<study>`` and ``bench check
   tuned=<study>`` load — the final run is an ordinary run whose card and report carry
   the ``tuning`` record;
5. logs one MLflow parent (``<name>/tune``) with one child per trial, named by its model,
   trial number and values, and the leaderboard as artifacts.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from omegaconf import OmegaConf

from bench.atomic import atomic_write_text, write_json
from bench.config import TARGET_NODES, RunSettings, load_settings, to_container
from bench.data.dataset import Dataset
from bench.errors import ConfigError
from bench.metrics.keys import MetricKey
from bench.schema import RunConfig, TuneConfig
from bench.schema_check import conform
from bench.splits.audit import audit_split
from bench.splits.base import Split
from bench.targets import build
from bench.tracking.factory import build_tracker
from bench.tune.leaderboard import write_study_leaderboard
from bench.tune.objective import ValidationTask, validation_split
from bench.tune.space import Space, parse_space
from bench.tune.study import Budget, StudyResult, StudySetup, TrialPool, TrialRecord, run_study

log = logging.getLogger("bench")

__all__ = ["TuneResult", "next_command", "run_tuning", "tune_settings"]

#: longest MLflow run name written (longer value lists are cut)
MAX_RUN_NAME = 240


@dataclass
class TuneResult:
    """What ``bench tune`` did: where it wrote, each model's study, the record."""

    name: str
    folder: Path
    metric: str
    studies: list[StudyResult]
    record: dict
    overlay: Path | None = None
    paths: list[Path] = field(default_factory=list)


def tune_settings(raw: dict) -> TuneConfig:
    """The checked ``tune`` group of a composed config (``tune.seed`` follows ``seed``)."""
    top = {"seed": raw.get("seed", 0)}
    if raw.get("tune") is not None:
        top["tune"] = raw["tune"]
    return conform(RunConfig, top, skip=TARGET_NODES).tune


# ---------------------------------------------------------------------------- entry point
def run_tuning(cfg, *, config_dir: Path | None = None, tracker=None,
               output_dir: Path | None = None) -> TuneResult:
    """Tune the models ``cfg`` describes (see the module docstring)."""
    raw = to_container(cfg)
    settings = load_settings(raw)
    tune = tune_settings(raw)
    spaces = {m: parse_space(m, c) for m, c in settings.models.items()}
    chosen = _chosen(tune, settings, spaces)
    budgets = _budgets(tune, chosen)
    metric = tune.metric or settings.report.headline
    MetricKey.parse(metric)
    tracker = tracker or build_tracker(raw.get("tracker"))
    tracker.check()
    dataset, vsplit, audit = validation_data(settings, tune)
    task = ValidationTask.build(vsplit, dataset, settings.eval, metric, seed=tune.seed)
    folder = Path(output_dir) if output_dir else Path(settings.report.dir) / settings.name / "tune"
    folder.mkdir(parents=True, exist_ok=True)
    setup = StudySetup(
        storage=tune.storage or f"sqlite:///{(folder / 'optuna.db').resolve()}",
        prefix=tune.study or settings.name, sampler=tune.sampler, pruner=tune.pruner,
        seed=tune.seed, start_from_defaults=tune.start_from_defaults, jobs=tune.jobs,
        attrs={"metric": metric, "dataset": str(dataset.summary()["fingerprint"]),
               "validation_split": vsplit.fingerprint},
    )
    parent = tracker.start_run(f"{settings.name}/tune", tags={
        "recspectrum.experiment": settings.name, "recspectrum.kind": "tune",
        "recspectrum.invocation": uuid.uuid4().hex})
    status = "FAILED"
    try:
        studies = _run_studies(settings, spaces, chosen, budgets, task, setup, tracker, parent)
        record = tuning_record(settings, tune, setup, metric, vsplit, task, audit, studies,
                               dataset)
        result = TuneResult(name=setup.prefix, folder=folder, metric=metric, studies=studies,
                            record=record)
        _write_outputs(result, settings, config_dir)
        for p in result.paths:
            tracker.log_artifact(parent, p, "tune" if p.parent == folder else "tune/figures")
        tracker.log_metrics(parent, {f"{r.model}.best": r.best_value for r in studies
                                     if r.best_value is not None})
        status = "FINISHED"
        return result
    finally:
        tracker.end_run(parent, status)


# ---------------------------------------------------------------------------- steps
def _chosen(tune: TuneConfig, settings: RunSettings, spaces: dict[str, Space]) -> list[str]:
    if tune.models is not None:
        unknown = [m for m in tune.models if m not in settings.models]
        if unknown:
            raise ConfigError(f"tune.models: {unknown} are not models of the run "
                              f"{list(settings.models)}; name some of them, or null for all")
        return list(tune.models)
    return [m for m, s in spaces.items() if s.status == "tunable"]


def _budgets(tune: TuneConfig, chosen: list[str]) -> dict[str, Budget]:
    unknown = sorted(set(tune.budgets) - set(chosen))
    if unknown:
        raise ConfigError(f"tune.budgets: {unknown} are not models being tuned {chosen}; "
                          "expected some of them")
    out = {}
    for m in chosen:
        own = tune.budgets.get(m)
        trials = own.trials if own is not None and (own.trials or own.seconds) else tune.trials
        seconds = own.seconds if own is not None and (own.trials or own.seconds) else tune.seconds
        if trials is None and seconds is None:
            where = f"tune.budgets.{m}" if own is not None else "tune"
            raise ConfigError(f"{where}: expected trials or seconds (or both), got neither; "
                              "set tune.trials=20 or tune.seconds=600")
        out[m] = Budget(trials=trials, seconds=seconds)
    return out


def validation_data(settings: RunSettings, tune: TuneConfig) -> tuple[Dataset, Split, dict]:
    """The data and the validation split of fold 0; the test part is left unread."""
    dataset = build(settings.dataset, "dataset")
    if not isinstance(dataset, Dataset):
        raise ConfigError(f"dataset._target_: expected a loader returning a Dataset, got "
                          f"{type(dataset).__name__}")
    split_cfg = dict(settings.split)
    if split_cfg.get("validation") is None:
        split_cfg["validation"] = tune.validation
    splitter = build(split_cfg, "split")
    if not splitter.validation_allowed:
        raise ConfigError(
            f"split: split '{splitter.name}' has no validation carve-out to tune on (every "
            f"row is tested in some fold); tune with another split (e.g. split=temporal), "
            f"then evaluate with split={splitter.name} tuned=<name>"
        )
    splits = splitter.split(dataset.interactions)
    vsplit = validation_split(splits[0])
    audit = audit_split(vsplit).to_dict()
    log.info("tune: validation cut of %s fold 0: %d training rows, %d validation rows",
             splits[0].name, len(vsplit.train), len(vsplit.test))
    return dataset, vsplit, audit


def _run_studies(settings, spaces, chosen, budgets, task, setup, tracker, parent):
    def on_trial(model: str, rec: TrialRecord) -> None:
        child = tracker.start_run(trial_run_name(model, rec), parent_id=parent, tags={
            "model": model, "trial": str(rec.number), "state": rec.state})
        try:
            tracker.log_params(child, rec.params)
            metrics = {"cpu_seconds": rec.cpu_seconds, "seconds": rec.seconds}
            if rec.value is not None:
                metrics[f"validation.{MetricKey.parse(task.metric).mlflow}"] = rec.value
            tracker.log_metrics(child, metrics)
        finally:
            tracker.end_run(child, "FINISHED" if rec.state != "FAIL" else "FAILED")

    pool = TrialPool(task, setup.jobs) if setup.jobs > 1 else None
    try:
        out = []
        for model, model_cfg in settings.models.items():
            if model in chosen:
                res = run_study(model, model_cfg, spaces[model], task, budgets[model], setup,
                                on_trial=on_trial, pool=pool)
            else:
                res = StudyResult(model=model, status=spaces[model].status
                                  if spaces[model].status != "tunable" else "not selected",
                                  budget=Budget(), space=spaces[model].describe())
            for line in res.boundary:
                log.warning("tune %s: %s; the best value may lie outside the range: widen it "
                            "in its _tune_ block", model, line)
            out.append(res)
        return out
    finally:
        if pool is not None:
            pool.close()


def trial_run_name(model: str, rec: TrialRecord) -> str:
    """``cf_als/trial3 factors=32 regularization=0.05`` (MLflow child run names)."""
    values = " ".join(f"{k}={_short(v)}" for k, v in rec.params.items())
    name = f"{model}/trial{rec.number} {values}".strip()
    return name if len(name) <= MAX_RUN_NAME else name[:MAX_RUN_NAME - 3] + "..."


# ---------------------------------------------------------------------------- record
def tuning_record(settings, tune, setup: StudySetup, metric: str, vsplit: Split,
                  task: ValidationTask, audit: dict, studies: list[StudyResult],
                  dataset: Dataset) -> dict:
    """The plain-data record the overlay, ``study.json``, the card and the report carry."""
    import optuna

    tuned = [r for r in studies if r.status in ("tuned", "failed")]
    budgets = sorted({r.budget.describe() for r in tuned})
    return {
        "study": setup.prefix,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary": tuning_summary(studies),
        "metric": metric,
        "protocol": (f"fit on the training rows left after carving the validation part "
                     f"({vsplit.name}, fold 0); scored on the validation rows; the test "
                     "part is never read"),
        "validation": {
            "share": settings.split.get("validation") or tune.validation,
            "split_fingerprint": vsplit.fingerprint,
            "train_rows": len(vsplit.train), "validation_rows": len(vsplit.test),
            "users_scored": len(task.ctx.users),
            "cut": vsplit.cut,
            "leakage": {k: audit.get(k) for k in ("future_train_rows", "own_future_rows",
                                                   "fold_in_own_future_rows",
                                                   "duplicate_pairs", "leaks")
                        if k in audit},
        },
        "dataset": {"name": dataset.name, "fingerprint": str(dataset.summary()["fingerprint"])},
        "budget": {"trials": tune.trials, "seconds": tune.seconds,
                   "per_model": budgets[0] if len(budgets) == 1 else "differs (see models)",
                   "overrides": {m: {"trials": b.trials, "seconds": b.seconds}
                                 for m, b in tune.budgets.items()}},
        "sampler": {"name": setup.sampler, "seed": setup.seed, "optuna": optuna.__version__},
        "pruner": setup.pruner,
        "start_from_defaults": setup.start_from_defaults,
        "storage": redact(setup.storage),
        "models": {r.model: r.record() for r in studies},
    }


def tuning_summary(studies: list[StudyResult]) -> str:
    """``20 trials each; best at cf_als factors=48, ...; no hyperparameters: rule_popular``."""
    tuned = [r for r in studies if r.status == "tuned"]
    counts = sorted({r.n_trials for r in tuned})
    head = (f"{counts[0]} trials each" if len(counts) == 1 else
            "trials " + ", ".join(f"{r.model} {r.n_trials}" for r in tuned)) if tuned else \
        "no model tuned"
    parts = [head]
    if tuned:
        parts.append("best at " + "; ".join(
            f"{r.model} " + ", ".join(f"{k}={_short(v)}" for k, v in r.best_params.items())
            for r in tuned))
    for status in ("failed", "no hyperparameters", "no search space", "not selected"):
        names = [r.model for r in studies if r.status == status]
        if names:
            parts.append(f"{status}: {', '.join(names)}")
    edges = [r.model for r in tuned if r.boundary]
    if edges:
        parts.append(f"best value on a range edge: {', '.join(edges)}")
    return "; ".join(parts)


def redact(url: str) -> str:
    """A database URL without its password."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


# ---------------------------------------------------------------------------- outputs
def overlay_config(result: TuneResult) -> dict:
    """``{models: {<model>: <best values, nested>}, tuning: <record>}``."""
    models: dict = {}
    for res in result.studies:
        if res.status != "tuned":
            continue
        node = models.setdefault(res.model, {})
        for path, value in res.best_params.items():
            *parents, last = path.split(".")
            here = node
            for part in parents:
                here = here.setdefault(part, {})
            here[last] = value
    return {"models": models, "tuning": result.record}


def overlay_text(result: TuneResult) -> str:
    body = OmegaConf.to_yaml(OmegaConf.create(overlay_config(result)))
    return (f"# @package _global_\n"
            f"# Written by `bench tune` ({result.record['created_utc']}): the best values of "
            f"study {result.name!r} on\n# validation ({result.metric}); the test part was not "
            f"read. Evaluate on test with\n# `bench tuned={result.name}` plus the experiment's "
            f"own options. docs/tuning.md\n{body}")


def _write_outputs(result: TuneResult, settings: RunSettings, config_dir: Path | None) -> None:
    folder = result.folder
    text = overlay_text(result)
    result.paths.append(write_json(folder / "study.json", result.record))
    result.paths.append(atomic_write_text(folder / "tuned.yaml", text))
    rec = result.record
    about = (f"Validation {result.metric}: {rec['protocol']} "
             f"({rec['validation']['validation_rows']} validation rows, "
             f"{rec['validation']['users_scored']} users scored). Budget per model: "
             f"{rec['budget']['per_model']}; sampler {rec['sampler']['name']} (seed "
             f"{rec['sampler']['seed']}), pruner {rec['pruner']}.")
    if rec["start_from_defaults"]:
        about += " Trial 0 of each study is the config as it is (the defaults)."
    header = [f"# Tuning leaderboard: {result.name}", "", about, "", f"**{rec['summary']}**"]
    result.paths += write_study_leaderboard(folder, result.studies, result.metric, header,
                                            figures=settings.report.figures)
    if config_dir is not None:
        target = Path(config_dir) / "tuned" / f"{result.name}.yaml"
        try:
            result.overlay = atomic_write_text(target, text)
        except OSError as exc:
            raise ConfigError(f"tune: cannot write the overlay {target} ({exc.strerror}); "
                              "set BENCH_CONFIG_DIR to a writable copy of the configs") from None


def next_command(argv: list[str], result: TuneResult | str) -> str:
    """The ``bench`` command that evaluates the tuned values on test: the same overrides
    without ``tune.*`` and without those the overlay sets (a command-line override would
    win over it), plus ``tuned=<name>``."""
    name = result if isinstance(result, str) else result.name
    tuned = set() if isinstance(result, str) else set(_leaf_keys(overlay_config(result)["models"],
                                                                  "models"))
    keep = [a for a in argv if not a.lstrip("+~").startswith(("tune.", "tuned="))
            and a.lstrip("+~").partition("=")[0] not in tuned]
    return " ".join(["bench", *keep, f"tuned={name}"])


def _leaf_keys(node: dict, prefix: str):
    for k, v in node.items():
        if isinstance(v, dict):
            yield from _leaf_keys(v, f"{prefix}.{k}")
        else:
            yield f"{prefix}.{k}"


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
