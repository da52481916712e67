"""Orchestration: dataset -> split -> a plan of cells -> an executor -> one reduce step.

:func:`run_experiment` takes a composed config (a Hydra ``DictConfig`` or a plain
mapping) and returns a :class:`~bench.record.RunResult`. It validates everything before
any training, loads and splits the data, plans the cells (:mod:`bench.cells`: one per
model and fold of the main split, one per model and cold-start protocol), has an
executor (:mod:`bench.executor`) run them, and hands the result to the reduce step
(:mod:`bench.reduce`: record, statistics, report, MLflow). It prints nothing; stages are
announced to :mod:`bench.observe` observers and progress goes to the ``bench`` logger.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from bench.atomic import write_json
from bench.cells import (
    MAIN,
    Cell,
    CellEnv,
    CellInputs,
    CellOutput,
    MainEvaluation,
    ProtocolEvaluation,
    build_model,
    cell_key,
    resume_cell,
    table_k,
)
from bench.config import RunSettings, load_settings, to_container
from bench.data.dataset import Dataset
from bench.data.interactions import fingerprint_in_background
from bench.errors import ConfigError, EvaluationError
from bench.evaluation import FoldContext
from bench.executor import Executor, build_executor
from bench.machine import import_early, offload
from bench.metrics.keys import MetricKey
from bench.models.base import Recommender
from bench.observe import Observers, TimedTracker, default_observers
from bench.protocols import protocol_cells, protocol_evaluations
from bench.record import ModelFailure, ModelResult, RunResult
from bench.reduce import reduce_run
from bench.seeds import model_variants, unresolved_models
from bench.splits.audit import audit_split
from bench.splits.base import Split
from bench.stats.bootstrap import warm_kernels
from bench.stats.budget import check_budget
from bench.targets import build, resolve
from bench.tracking.background import in_background
from bench.tracking.base import Tracker, settled_run_id
from bench.tracking.factory import build_tracker
from bench.tune.space import parse_space

log = logging.getLogger("bench")

__all__ = ["INVOCATION_TAG", "run_experiment"]

#: MLflow tag shared by every job of one command (a sweep shares one parent run).
INVOCATION_TAG = "recspectrum.invocation"


#: per-user protocol rows by (model, protocol)
_Frames = dict[tuple[str, str], pd.DataFrame]


@dataclass
class _Run:
    """What the stages of one run share (the settings, where things go, how they run)."""

    settings: RunSettings
    raw: dict
    out: Path
    tracker: Tracker
    observers: Observers
    executor: Executor
    resume_from: Path | None
    timings: dict[str, float]
    parent: str | None = None
    #: per model, its (training seed or None, model config) runs (:mod:`bench.seeds`)
    variants: dict[str, list[tuple[int | None, dict]]] = field(default_factory=dict)
    #: a sweep job's MLflow names: the parent's, and what child names add
    parent_name: str | None = None
    label: str = ""

    def env(self) -> CellEnv:
        return CellEnv(tracker=self.tracker, parent=self.parent, out=self.out,
                       observers=self.observers, label_suffix=self.label)


# ---------------------------------------------------------------------------- entry point
def run_experiment(
    cfg,
    *,
    output_dir: str | Path | None = None,
    tracker: Tracker | None = None,
    invocation: str | None = None,
    on_result: Callable[[RunResult, Tracker, str | None], list[Path]] | None = None,
    observers: Observers | None = None,
    executor: Executor | None = None,
    parent_name: str | None = None,
    label: str = "",
    sweep_parent: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> RunResult:
    """Run the experiment ``cfg`` describes and return its results.

    Args:
        cfg: the composed config (see ``configs/config.yaml`` for every key).
        output_dir: where ``report.md``, ``results.json`` and artifacts go; by default
            ``<report.dir>/<name>/<timestamp>-<id>``.
        tracker: overrides the ``tracker`` config group (tests pass a ``MemoryTracker``).
        invocation: the value of the ``recspectrum.invocation`` tag on the run's MLflow
            parent; a fresh id by default.
        on_result: called with the result, the tracker and the parent run id after the
            report is written and before the parent run ends (``bench check`` compares
            with its baseline there); the paths it returns are logged to the parent run.
        observers: receive every stage of the run (:mod:`bench.observe`); by default
            those attached with :func:`bench.observe.attached`.
        executor: runs the cells; by default the one the ``executor`` config group names
            (``executor=local``: a :class:`~bench.executor.LocalExecutor`).
        parent_name: the name of the run's top MLflow run (a sweep job: its swept
            values); ``<name>/<run folder>`` by default.
        label: added to every child run's name (a sweep job's swept values).
        sweep_parent: the MLflow run id of a sweep's parent (which the sweep creates and
            ends: :mod:`bench.tune.sweep`): the run's top run becomes one child of it.
        tags: added to the run's top MLflow run (a sweep job's number and swept values).
    """
    t_start = time.perf_counter()
    run = _prepare(cfg, output_dir, tracker, observers or default_observers(), executor)
    try:
        result = _run_stages(run, t_start, parent_name, label, sweep_parent, invocation,
                             tags, on_result)
    except BaseException:
        _close_tracker(run, raising=False)  # what was logged reaches the store first
        raise
    _close_tracker(run, raising=True)
    return result


def _run_stages(run: _Run, t_start: float, parent_name, label, sweep_parent, invocation,
                tags, on_result) -> RunResult:
    run.parent_name, run.label = parent_name, f" {label}" if label else ""
    dataset, splits, audits = _load_and_split(run)
    evaluations, shared = _plan_protocols(run, dataset, splits, audits)
    run.parent = _open_parent(run, dataset, splits, sweep_parent, invocation, tags)
    t = time.perf_counter()
    results, failures, served = _run_main(run, dataset, splits, shared)
    run.timings["models_s"] = time.perf_counter() - t
    cold_frame = _run_protocols(run, dataset, evaluations, served, failures)
    results = _settle_run_ids(run, results)
    s = run.settings
    result = RunResult(
        name=s.name, run_name=run.out.name, output_dir=run.out, dataset=dataset.summary(),
        splits=[sp.summary() for sp in splits], eval=s.eval, models=results,
        parent_run_id=run.parent, tracking=run.tracker.describe(), config=run.raw,
        timings=run.timings, stats=s.stats, report=s.report, cold_start_settings=s.cold_start,
        cold_start=cold_frame, audits=audits, failures=failures,
        seeds=None if s.seeds is None else list(s.seeds),
    )
    run.timings["total_s"] = time.perf_counter() - t_start
    with run.observers.stage("reduce"):
        reduce_run(result, run.tracker, run.parent, on_result)
    return result


def _settle_run_ids(run: _Run, results: list[ModelResult]) -> list[ModelResult]:
    """The real MLflow ids of the parent and of every cell's run, where a background
    tracker (:mod:`bench.tracking.background`) handed out placeholders (a cell that ran
    has its real id already: its ``done.json`` needs it; a resumed one has not)."""
    run.parent = settled_run_id(run.tracker, run.parent)
    return [replace(r, run_id=settled_run_id(run.tracker, r.run_id)) for r in results]


def _close_tracker(run: _Run, *, raising: bool) -> None:
    """Wait for a background tracker's calls to reach the store and stop its worker; its
    busy time goes to the run's timings. ``raising=False`` (the run is failing anyway):
    an error of the tracker is logged, not raised over the run's own."""
    close = getattr(run.tracker, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception as exc:
        if raising:
            raise
        log.error("tracker: %s: %s", type(exc).__name__, exc)
    finally:
        busy = getattr(run.tracker, "busy_seconds", None)
        if busy is not None:
            run.timings["tracking_busy_s"] = busy
            run.timings["tracking_waited_s"] = run.tracker.waited_seconds
            with run.observers.stage("tracking", call="worker", busy_seconds=busy):
                pass  # an instant: the worker's own time, for bench perf


# ---------------------------------------------------------------------------- stages
def _prepare(cfg, output_dir, tracker, observers: Observers, executor: Executor | None) -> _Run:
    """Validate everything a stranger could get wrong, before any data is read."""
    raw = to_container(cfg)
    settings = load_settings(raw)
    _check_model_names(settings)
    for model_name, model_cfg in settings.models.items():  # bad config fails before training
        build_model(model_name, model_cfg)
        parse_space(model_name, model_cfg)  # its `bench tune` space too: data, checked
    executor = executor or build_executor(settings.executor)  # executor=ray without Ray: here
    stamp = f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    out = Path(output_dir) if output_dir else Path(settings.report.dir) / settings.name / stamp
    out.mkdir(parents=True, exist_ok=True)
    resume_from = _resume_source(settings.resume, out)
    with observers.stage("tracking", call="build"):
        # MLflow works on a thread of its own (bench.tracking.background); a server is
        # checked here, before any training: an unreachable one fails fast
        tracker = tracker or in_background(build_tracker(raw.get("tracker")))
        tracker.check()
    if observers.observers:
        tracker = TimedTracker(tracker, observers)
    return _Run(settings=settings, raw=raw, out=out, tracker=tracker, observers=observers,
                executor=executor, resume_from=resume_from, timings={},
                variants=_variants(settings, cfg))


def _load_and_split(run: _Run) -> tuple[Dataset, list[Split], list[dict]]:
    s = run.settings
    t = time.perf_counter()
    with run.observers.stage("load"):
        dataset = build(s.dataset, "dataset")
    if not isinstance(dataset, Dataset):
        raise ConfigError(
            f"dataset._target_: expected a loader returning a Dataset, got {type(dataset).__name__}"
        )
    run.timings["load_s"] = time.perf_counter() - t
    fingerprint_in_background([dataset.interactions])  # recorded when the parent opens
    import_early("numba")  # the compiled kernels of the audit, top-k and metrics
    offload(warm_kernels)  # and the report's, loaded while a core is free
    sizes = dataset.sizes()
    log.info("dataset %s: %d rows, %d users, %d items%s", dataset.name, sizes["rows"],
             sizes["users"], sizes["items"],
             f"; dropped {dict(dataset.drops)}" if dataset.drops else "")
    _check_threshold(s, dataset)
    t = time.perf_counter()
    with run.observers.stage("split"):
        splits: list[Split] = build(s.split, "split").split(dataset.interactions)
    run.timings["split_s"] = time.perf_counter() - t
    fingerprint_in_background([p for sp in splits for p in sp.parts().values()])
    if len(s.models) > 1:  # the report compares models: its Wilcoxon tests need it
        import_early("scipy.stats")
    for sp in splits:
        log.info("split %s fold %d/%d: %s", sp.name, sp.fold + 1, sp.n_folds, _part_line(sp))
    # the data's sizes are known now: refuse settings that could not fit, before training
    check_budget(s, n_users=max(len(sp.test.present_users()) for sp in splits),
                 n_items=dataset.interactions.n_items, n_models=len(s.models))
    with run.observers.stage("audit"):
        audits = _audit(splits, s.eval.fail_on_leakage)
    return dataset, splits, audits


def _open_parent(run: _Run, dataset: Dataset, splits: list[Split], sweep_parent: str | None,
                 invocation: str | None, tags: Mapping[str, str] | None) -> str | None:
    """The run's top MLflow run, described: a parent of its own (a plain run), or one
    child of a sweep's parent (a sweep job). The reduce step ends it; never the sweep's."""
    s, tracker = run.settings, run.tracker
    parent = tracker.start_run(
        run.parent_name or f"{s.name}/{run.out.name}", parent_id=sweep_parent,
        tags={"recspectrum.experiment": s.name,
              "dataset.fingerprint": dataset.summary()["fingerprint"],
              "split.fingerprint": splits[0].fingerprint,
              INVOCATION_TAG: invocation or uuid.uuid4().hex, **(tags or {})},
    )
    tracker.log_params(parent, {
        "seed": s.seed, "dataset": dataset.name, "split": splits[0].name,
        **{f"split.{k}": v for k, v in splits[0].params.items()},
        "eval.cutoffs": list(s.eval.cutoffs),
        "eval.relevance_threshold": s.eval.relevance_threshold,
        **({"seeds": list(s.seeds)} if s.seeds is not None else {}),
    })
    write_json(run.out / "config.json", run.raw)
    tracker.log_artifact(parent, run.out / "config.json", f"config/{run.out.name}")
    return parent


def _plan_protocols(run: _Run, dataset: Dataset, splits: list[Split], audits: list[dict]
                    ) -> tuple[list[ProtocolEvaluation], dict[int, tuple[ProtocolEvaluation, ...]]]:
    """The cold-start protocols' splits, audited (into ``audits``) before any model runs,
    and which of them share a main fold's training rows (fold -> protocols): those are
    evaluated by the main cells with the models they fitted."""
    s = run.settings
    if not s.cold_start.user_enabled and s.cold_start.item_fraction is None:
        return [], {}
    t = time.perf_counter()
    with run.observers.stage("protocols"):
        evaluations = protocol_evaluations(dataset, s.eval, s.cold_start, splits[0].cut)
    with run.observers.stage("audit"):
        audits += _audit([ev.split for ev in evaluations], s.eval.fail_on_leakage,
                         [ev.protocol for ev in evaluations])
    run.timings["cold_start_split_s"] = time.perf_counter() - t
    shared: dict[int, tuple[ProtocolEvaluation, ...]] = {}
    for sp in splits:
        same = tuple(ev for ev in evaluations
                     if ev.split.train.fingerprint() == sp.train.fingerprint())
        if same:
            shared[sp.fold] = same
            log.info("fold %d: %s share its training rows: one fit per model for both",
                     sp.fold, ", ".join(ev.protocol for ev in same))
    return evaluations, shared


def _run_main(run: _Run, dataset: Dataset, splits: list[Split],
              shared: dict[int, tuple[ProtocolEvaluation, ...]] | None = None
              ) -> tuple[list[ModelResult], list[ModelFailure], _Frames]:
    """Every (model, fold) cell of the main split, and the protocols they share.

    A model whose user segments break the others down (``eval.segments.rules``) runs
    first on each fold — the first wave — and its labels are an input of the second wave.
    Returns the results, the failures and the per-user rows of the protocols the main
    cells evaluated, by (model, protocol).
    """
    shared = shared or {}
    s = run.settings
    fingerprint = str(dataset.summary()["fingerprint"])
    contexts = _contexts(run, dataset, splits)
    runs = [(m, seed, cfg) for m in s.models for seed, cfg in run.variants[m]]
    with run.observers.stage("plan", cells=len(runs) * len(splits)):
        pass  # the number of cells, for progress displays (bench.progress)
    source = _segment_source(s)
    waves = [[source], [m for m in s.models if m != source]] if source else [list(s.models)]
    labels: dict[int, pd.Series] = {}
    done: dict[tuple[str, int, int | None], ModelResult] = {}
    failures: list[ModelFailure] = []
    served: dict[tuple[str, str], pd.DataFrame] = {}
    for wave in waves:
        cells, inputs = [], []
        for sp in splits:
            for name, seed, model_cfg in [r for r in runs if r[0] in wave]:
                key = cell_key(model_cfg, sp, fingerprint, s.eval, s.report.curve_k)
                cells.append(Cell(model=name, protocol=MAIN, fold=sp.fold, key=key, seed=seed))
                inputs.append(CellInputs(
                    model_cfg=model_cfg, item_features=dataset.item_features,
                    user_features=dataset.user_features,
                    # a protocol sharing this fold's training rows is evaluated by the
                    # model's unseeded cell (a training seed leaves the protocols to their
                    # own cells, which keep `seed`)
                    evaluation=MainEvaluation(contexts[sp.fold], s.eval, s.report.curve_k,
                                              labels.get(sp.fold),
                                              shared.get(sp.fold, ()) if seed is None else ()),
                ))
        for cell, output in zip(cells, _execute(run, cells, inputs), strict=True):
            if isinstance(output, ModelFailure):
                failures.append(output)
                continue
            failures += output.failures
            for protocol in output.protocols:
                frame = output.frame
                served[(cell.model, protocol)] = frame[frame["protocol"] == protocol]
            done[(cell.model, cell.fold, cell.seed)] = output.result
            if output.labels is not None and cell.fold not in labels:
                labels[cell.fold] = output.labels
            _log_result(output.result, s)
    results = [done[(m, sp.fold, seed)] for sp in splits for m, seed, _ in runs
               if (m, sp.fold, seed) in done]
    return results, failures, served


def _contexts(run: _Run, dataset: Dataset, splits: list[Split]) -> dict[int, FoldContext]:
    """Each fold's evaluation context (relevance, history, popularity), logged."""
    contexts = {}
    for sp in splits:
        with run.observers.stage("context", fold=sp.fold):
            ctx = FoldContext.build(sp, dataset, run.settings.eval)
        contexts[sp.fold] = ctx
        # every main cell writes the same relevant.parquet: encode it on a free core while
        # the first model fits (the property's lock makes a cell that needs it sooner wait)
        offload(lambda ctx=ctx: ctx.relevant_parquet)
        log.info("fold %d: %d test users, %d with a relevant item (%d excluded: none "
                 "relevant); %d relevant pairs on new items", sp.fold, ctx.n_test_users,
                 len(ctx.users), ctx.n_test_users - len(ctx.users), ctx.n_new_relevant)
    return contexts


def _execute(run: _Run, cells: list[Cell], inputs: list[CellInputs]) -> list:
    """Resume the cells an earlier run finished; the executor runs the rest."""
    env = run.env()
    outputs: list[CellOutput | ModelFailure | None] = [
        resume_cell(run.resume_from, c, env) for c in cells
    ]
    todo = [i for i, o in enumerate(outputs) if o is None]
    if len(todo) < len(cells):
        with run.observers.stage("plan", resumed=len(cells) - len(todo)):
            pass
    for i, o in zip(todo, run.executor.run([cells[i] for i in todo], [inputs[i] for i in todo],
                                           env), strict=True):
        outputs[i] = o
    return outputs


def _run_protocols(run: _Run, dataset: Dataset, evaluations: list[ProtocolEvaluation],
                   served: dict[tuple[str, str], pd.DataFrame],
                   failures: list[ModelFailure]) -> pd.DataFrame | None:
    """The cold-start protocols' cells (those no main cell evaluated: a protocol with its
    own training rows, or a main cell that was resumed or failed); every protocol's
    per-user rows, stacked in protocol then model order (None when off)."""
    s = run.settings
    if not evaluations:
        return None
    t = time.perf_counter()
    cells, inputs = protocol_cells(evaluations, s.models, dataset)
    todo = [i for i, c in enumerate(cells) if (c.model, c.protocol) not in served]
    with run.observers.stage("plan", cells=len(todo)):
        pass
    frames = dict(served)
    outputs = run.executor.run([cells[i] for i in todo], [inputs[i] for i in todo], run.env())
    for i, output in zip(todo, outputs, strict=True):
        if isinstance(output, ModelFailure):
            failures.append(output)
        else:
            frames[(cells[i].model, cells[i].protocol)] = output.frame
    run.timings["cold_start_s"] = time.perf_counter() - t
    ordered = [frames[(c.model, c.protocol)] for c in cells if (c.model, c.protocol) in frames]
    return pd.concat(ordered, ignore_index=True) if ordered else pd.DataFrame()


# ---------------------------------------------------------------------------- pieces
def _check_model_names(s: RunSettings) -> None:
    """Every model a setting names must be in the run: say which key names a stranger."""
    named = [("stats.baseline", s.stats.baseline)]
    if s.eval.segment_rules not in (None, "auto"):
        named.append(("eval.segments.rules", s.eval.segment_rules))
    named += [(f"report.ladder.{fam}", m) for fam, m in (s.report.ladder or ())]
    for key, model in named:
        if model is not None and model not in s.models:
            raise ConfigError(
                f"{key}: expected one of the run's models {list(s.models)}, got {model!r}; "
                f"set {key}=<one of them>{'' if key.startswith('report.') else ' or null'}, "
                f"or add {model} to the models"
            )


def _check_threshold(s: RunSettings, dataset: Dataset) -> None:
    thr = s.eval.relevance_threshold
    if thr is None or not dataset.interactions.has_ratings:
        return
    scale = dataset.interactions.rating_scale
    if scale and not (scale[0] <= thr <= scale[1]):
        raise ConfigError(
            f"eval.relevance_threshold: expected a value within the rating scale "
            f"[{scale[0]:g}, {scale[1]:g}] of {dataset.name}, got {thr:g}"
        )


def _segment_source(s: RunSettings) -> str | None:
    """The model whose user segments label every model's users, or ``None``."""
    rules = s.eval.segment_rules
    if rules is None:
        return None
    if rules != "auto":
        return rules
    return next((m for m, c in s.models.items() if _segments_users(m, c)), None)


def _segments_users(name: str, model_cfg: Mapping) -> bool:
    """Does this model config build a class that labels users with segments of its own
    (not one that only passes a child's labels on)?"""
    cls = resolve(model_cfg.get("_target_"), f"models.{name}")  # checked, nothing called
    return (cls._user_segments is not Recommender._user_segments
            and not cls.forwards_user_segments)


def _audit(splits: list[Split], fail_on_leakage: bool,
           protocols: list[str] | None = None) -> list[dict[str, object]]:
    """Leakage audit of every split evaluated (the main folds, then each cold-start
    protocol's): log it, and stop here when eval.fail_on_leakage says so."""
    out = []
    for i, split in enumerate(splits):
        protocol = protocols[i] if protocols else MAIN
        audit = audit_split(split, protocol)
        where = f"fold {split.fold}" if protocol == MAIN else protocol
        for line in audit.leaks:
            log.warning("leakage (%s): %s", where, line)
        for line in audit.warnings:
            log.info("audit (%s): %s", where, line)
        if audit.leaks and fail_on_leakage:
            raise EvaluationError(
                f"split '{split.name}' ({where}): leakage found and "
                f"eval.fail_on_leakage is true: {'; '.join(audit.leaks)}"
            )
        out.append({"fold": split.fold, "split_cut": split.cut, "split_info": dict(split.info),
                    **audit.to_dict()})
    return out


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
    raise ConfigError(f"resume: expected true, false or an existing run folder, got {value!r}")


def _variants(s: RunSettings, cfg) -> dict[str, list[tuple[int | None, dict]]]:
    """Each model's runs: one per training seed when ``seeds`` is set and its config takes
    ``${seed}`` (:mod:`bench.seeds`), else one."""
    variants = model_variants(s.models, unresolved_models(cfg), s.seeds)
    if s.seeds is not None:
        seeded = [m for m, v in variants.items() if v[0][0] is not None]
        log.info("training seeds %s: %s run once per seed; %s no ${seed} key, run once",
                 list(s.seeds), seeded or "no model", [m for m in variants if m not in seeded])
    return variants


def _log_result(res: ModelResult, s: RunSettings) -> None:
    shown = {str(MetricKey(m, table_k(s.eval))) for m in s.eval.metrics}
    log.info("model %s (fold %d%s): %s (fit %.2fs, recommend %.2fs)", res.model, res.fold,
             "" if res.seed is None else f", seed {res.seed}",
             ", ".join(f"{k}={v:.4f}" for k, v in res.metrics.items() if k in shown),
             res.fit_seconds, res.recommend_seconds)


def _part_line(split: Split) -> str:
    parts = [("train", split.train), ("test", split.test), ("validation", split.validation),
             ("fold_in", split.fold_in)]
    return ", ".join(f"{n} {len(p)} rows" for n, p in parts if p is not None)
