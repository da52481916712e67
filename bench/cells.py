"""Cells: the unit of work of an experiment — one model on one fold or protocol.

An experiment is a plan of cells (:class:`Cell`): the models of the main split, one per
(model, fold) — and per training seed with ``seeds`` (:mod:`bench.seeds`) — and the
cold-start protocols, one per (model, protocol). Every cell runs
the same code, :func:`run_cell`: build the model from its config, fit it on the cell's
training rows, then for each *level* recommend and evaluate —

* the main split has one level, evaluated in full by :class:`MainEvaluation` (accuracy
  at every cutoff, segments, beyond-accuracy, metric@k curves, rating errors, the
  per-model artifacts and the cell's ``done.json``), followed by the protocols that share
  its training rows (:attr:`MainEvaluation.protocols`: the user sweep on the main split's
  cut), with the same fitted model;
* the user cold-start sweep has one level per fold-in history size and the item
  protocol one level, evaluated by :class:`ProtocolEvaluation` (ranking metrics per user).

A cell's inputs (:class:`CellInputs`) are explicit and picklable — the model config as
plain data, the split, the item and user features, the evaluation — so an executor may
run it anywhere. What it needs from the place it runs (tracker, run folder, observers)
is the :class:`CellEnv`. Its outputs are files in ``artifacts/<model>/<fold0|protocol>/``
plus a small :class:`CellOutput`. A model that raises never stops the run: the cell
returns a :class:`~bench.record.ModelFailure` instead, with its traceback on disk.

Each cell is keyed by :func:`cell_key`, the hash of everything that decides its numbers;
``resume`` reuses a finished cell whose key matches (:func:`resume_cell`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

from bench.atomic import atomic_write, atomic_write_text, write_json
from bench.config import EvalSettings
from bench.errors import (
    BenchError,
    ConfigError,
    EvaluationError,
    TrackingError,
    storage_error,
)
from bench.evaluation import (
    FoldContext,
    accuracy_keys,
    evaluate_lists,
    recommends_unseen,
    segment_metrics,
    served_means,
    served_users,
    unserved_to_nan,
)
from bench.metrics import evaluate_rankings
from bench.metrics import keys as metric_keys
from bench.metrics.keys import MetricKey, fold_in_segment
from bench.metrics.rating import mae, rmse
from bench.models.base import Recommender, TopK
from bench.observe import NULL_OBSERVER, Observers
from bench.parquet import write_frame, write_table
from bench.record import ModelFailure, ModelResult, read_cell, write_cell
from bench.splits.base import Split
from bench.targets import build
from bench.tracking.base import settled_run_id

log = logging.getLogger("bench")

__all__ = [
    "ITEM_COLD",
    "MAIN",
    "USER_COLD",
    "Cell",
    "CellEnv",
    "CellInputs",
    "CellOutput",
    "MainEvaluation",
    "ProtocolEvaluation",
    "build_model",
    "cell_key",
    "lists_table",
    "record_failure",
    "resume_cell",
    "run_cell",
]

#: Protocol names: the configured split, and the two cold-start protocols.
MAIN = "main"
USER_COLD = "user_cold_start"
ITEM_COLD = "item_cold_start"


@dataclass(frozen=True)
class Cell:
    """One model on one fold (``protocol="main"``) or one cold-start protocol, with one
    training seed when ``seeds`` is set and the model takes a seed (:mod:`bench.seeds`)."""

    model: str
    protocol: str = MAIN
    fold: int | None = 0
    #: :func:`cell_key` of the cell (empty: not resumable)
    key: str = ""
    #: the training seed (``seeds``); None = the model runs once
    seed: int | None = None

    @property
    def part(self) -> str:
        """``fold0`` (``fold0/seed1`` with a training seed) for the main split, else the
        protocol's name."""
        part = f"fold{self.fold}" if self.protocol == MAIN else self.protocol
        return part if self.seed is None else f"{part}/seed{self.seed}"

    @property
    def label(self) -> str:
        """``cf_als/fold0``, ``cf_als/fold0/seed1`` or ``cf_als/user_cold_start`` (MLflow
        child run names)."""
        return f"{self.model}/{self.part}"

    def folder(self, out: Path) -> Path:
        """The cell's artifact folder under the run folder ``out``."""
        return Path(out) / "artifacts" / self.model / self.part


@dataclass
class CellEnv:
    """Where a cell runs: the tracker and parent run, the run folder, the observers."""

    tracker: object
    parent: str | None
    out: Path
    observers: Observers = NULL_OBSERVER
    #: added to every child run name: a sweep job's swept values (``cf_als.factors=32``)
    label_suffix: str = ""


@dataclass(frozen=True, eq=False)
class CellOutput:
    """A finished cell: its result (main split), its per-user rows (protocols), and the
    user segments it labelled (a Series indexed by user id), when it labels users.

    A main cell that also evaluated shared protocols puts their rows in ``frame``, the
    protocols it evaluated in ``protocols``, and a protocol that failed (the main
    result stands) in ``failures``.
    """

    result: ModelResult | None = None
    frame: pd.DataFrame | None = None
    labels: pd.Series | None = None
    protocols: tuple[str, ...] = ()
    failures: tuple[ModelFailure, ...] = ()


@dataclass(frozen=True, eq=False)
class MainEvaluation:
    """Evaluate a model on one fold of the main split, in full.

    Attributes:
        ctx: what every model on the fold shares (relevance, history, popularity).
        settings: the ``eval`` settings.
        curve_k: metric@k curves run to this k (lists are this long when it exceeds k_max).
        labels: user segments from the run's segmenting model, applied to this model's
            per-user rows (``None``: this model's own, or none).
        protocols: cold-start protocols whose training rows are this fold's: evaluated
            after the main level with the same fitted model (one fit, not two).
    """

    ctx: FoldContext
    settings: EvalSettings
    curve_k: int
    labels: pd.Series | None = None
    protocols: tuple[ProtocolEvaluation, ...] = ()

    @property
    def split(self) -> Split:
        return self.ctx.split


@dataclass(frozen=True, eq=False)
class ProtocolEvaluation:
    """Evaluate a model on a cold-start protocol, level by level.

    Attributes:
        protocol: :data:`USER_COLD` or :data:`ITEM_COLD`.
        split: the protocol's split.
        relevant: CSR of relevant test items, rows = ``users``.
        users: codes of the evaluated users.
        levels: level -> history CSR (rows = ``users``) or ``None``; the fold-in size for
            the user sweep, -1 for the item protocol.
        settings: the ``eval`` settings.
    """

    protocol: str
    split: Split
    relevant: sp.csr_matrix
    users: np.ndarray
    levels: dict[int, sp.csr_matrix | None]
    settings: EvalSettings


@dataclass(frozen=True, eq=False)
class CellInputs:
    """Everything a cell reads: plain config data and arrays, so it can be shipped."""

    model_cfg: dict
    evaluation: MainEvaluation | ProtocolEvaluation
    item_features: object = None
    user_features: object = None


# ---------------------------------------------------------------------------- the cell
def run_cell(cell: Cell, inputs: CellInputs, env: CellEnv) -> CellOutput | ModelFailure:
    """Fit, recommend, evaluate and log one cell; a failure is returned, not raised."""
    ev = inputs.evaluation
    split = ev.split
    seed = {} if cell.seed is None else {"seed": cell.seed}
    with env.observers.stage("cell", model=cell.model, protocol=cell.protocol, fold=cell.fold,
                             **seed):
        try:
            model = build_model(cell.model, inputs.model_cfg)
        except BenchError as exc:
            return record_failure(exc, cell, env, child=None)
        tags = {"model": cell.model, "family": model.family, "split.fingerprint": split.fingerprint}
        tags.update({"fold": str(cell.fold)} if cell.protocol == MAIN
                    else {"protocol": cell.protocol})
        if cell.seed is not None:
            tags["seed"] = str(cell.seed)
        child = env.tracker.start_run(f"{cell.label}{env.label_suffix}", parent_id=env.parent,
                                      tags=tags)
        status = "FAILED"
        try:
            if cell.protocol == MAIN:
                env.tracker.log_params(
                    child, {**model.get_params(deep=True), "_target_": inputs.model_cfg["_target_"]}
                )
            info = {"model": cell.model, "protocol": cell.protocol, "fold": cell.fold}
            t = time.perf_counter()
            with env.observers.stage("fit", **info):
                model.fit(split.train, item_features=inputs.item_features,
                          user_features=inputs.user_features, train_order=split.train_order)
            fit_s = time.perf_counter() - t
            if isinstance(ev, MainEvaluation):
                out = _evaluate_main(cell, model, inputs, ev, env, child, fit_s, info)
            else:
                out = _evaluate_protocol(cell, model, ev, env, child, fit_s, info)
            status = "FINISHED"
        except Exception as exc:  # the other cells still run
            if storage_error(exc) is not None or isinstance(exc, TrackingError):
                raise  # a full or read-only disk, or a broken tracker, stops the run
            return record_failure(exc, cell, env, child)
        finally:
            env.tracker.end_run(child, status)
        if isinstance(ev, MainEvaluation) and ev.protocols:
            out = _shared_protocols(cell, model, ev, out, env, fit_s)
        return out


def _shared_protocols(cell: Cell, model: Recommender, ev: MainEvaluation, out: CellOutput,
                      env: CellEnv, fit_s: float) -> CellOutput:
    """The protocols that share the main fold's training rows, with the fitted model: one
    MLflow child run each (as their own cells would have), a failure recorded per protocol."""
    frames, done, failures = [], [], []
    for pev in ev.protocols:
        pcell = Cell(model=cell.model, protocol=pev.protocol, fold=None)
        tags = {"model": cell.model, "family": model.family, "protocol": pev.protocol,
                "split.fingerprint": pev.split.fingerprint,
                "recspectrum.fit_shared_with": cell.label}
        child = env.tracker.start_run(pcell.label, parent_id=env.parent, tags=tags)
        status = "FAILED"
        try:
            info = {"model": cell.model, "protocol": pev.protocol, "fold": None}
            frames.append(_evaluate_protocol(pcell, model, pev, env, child, fit_s, info).frame)
            done.append(pev.protocol)
            status = "FINISHED"
        except Exception as exc:  # the main result stands
            if storage_error(exc) is not None or isinstance(exc, TrackingError):
                raise  # a full or read-only disk, or a broken tracker, stops the run
            failures.append(record_failure(exc, pcell, env, child))
        finally:
            env.tracker.end_run(child, status)
    frame = pd.concat(frames, ignore_index=True) if frames else None
    return replace(out, frame=frame, protocols=tuple(done), failures=tuple(failures))


def _evaluate_main(cell: Cell, model: Recommender, inputs: CellInputs, ev: MainEvaluation,
                   env: CellEnv, child, fit_s: float, info: dict) -> CellOutput:
    """The main split's single level: every metric, segments, artifacts, ``done.json``."""
    ctx, settings, split = ev.ctx, ev.settings, ev.split
    users = ctx.users
    t = time.perf_counter()
    with env.observers.stage("recommend", **info):
        top = model.recommend_codes(
            users, max(settings.k_max, ev.curve_k), exclude_seen=settings.exclude_seen,
            history=ctx.history, batch_size=settings.batch_size,
        )
    rec_s = time.perf_counter() - t

    t = time.perf_counter()
    with env.observers.stage("evaluate", **info):
        lists = evaluate_lists(top.items, ctx, settings, curve_k=ev.curve_k)
        metrics = lists.metrics
        metrics.update(rating_metrics(model, split, settings.unscored_ratings))
        per_user = lists.per_user
        per_user.insert(1, "fold", split.fold)
        if cell.seed is not None:
            per_user.insert(2, "seed", cell.seed)
        labels = None
        own = model.user_segments(users)
        if own is not None:
            labels = pd.Series(np.asarray(own, dtype=object), index=split.test.user_ids[users])
        source = ev.labels if ev.labels is not None else labels
        if source is not None and settings.segment_rules is not None:
            per_user["segment"] = source.reindex(per_user["user_id"]).to_numpy(dtype=object)
        seg = segment_metrics(per_user, accuracy_keys(settings))
    eval_s = time.perf_counter() - t

    top = truncate(top, settings.k_max)
    shares = source_shares(top, cell.model)
    n_empty = int((top.lengths == 0).sum())
    env.tracker.log_metrics(child, _main_metrics_log(metrics, seg, settings, len(per_user),
                                                     lists.n_excluded, n_empty, fit_s, rec_s,
                                                     shares if top.sources is not None else None))
    result = ModelResult(
        model=cell.model, family=model.family, target=inputs.model_cfg["_target_"],
        params=model.get_params(deep=True), fold=split.fold, metrics=metrics, per_user=per_user,
        n_users=len(per_user), n_users_excluded=lists.n_excluded, n_users_empty_list=n_empty,
        fit_seconds=fit_s, recommend_seconds=rec_s, evaluate_seconds=eval_s,
        run_id=settled_run_id(env.tracker, child),  # done.json keeps the store's id
        source_shares=shares, segment_metrics=seg, curves=lists.curves, config_hash=cell.key,
        segments_source=labels is not None, seed=cell.seed,
    )
    with env.observers.stage("artifacts", **info):
        _write_main_artifacts(cell, model, top, ctx, result, env, child)
    return CellOutput(result=result, labels=labels)


def _main_metrics_log(metrics, seg, settings: EvalSettings, n_users: int, n_excluded: int,
                      n_empty: int, fit_s: float, rec_s: float, shares) -> dict[str, float]:
    """What a main cell logs to its MLflow child: every mean, segments at the table cutoff
    (every cutoff is in results.json: logging all of them cost more than the rest),
    user counts, timings and, for composites, each component's share."""
    out = {MetricKey.parse(k).mlflow: v for k, v in metrics.items()}
    k_table = table_k(settings)
    for key, value in seg.items():
        mk = MetricKey.parse(key)
        if mk.metric == "users" or mk.k == k_table:
            out[mk.mlflow] = value
    out.update({"users_evaluated": n_users, "users_excluded": n_excluded,
                "users_empty_list": n_empty, "fit_seconds": fit_s, "recommend_seconds": rec_s})
    if shares is not None:
        out.update({f"source_share.{k}": v for k, v in shares.items()})
    return out


def _write_main_artifacts(cell: Cell, model: Recommender, top: TopK, ctx: FoldContext,
                          result: ModelResult, env: CellEnv, child) -> None:
    """``topk.parquet``, ``per_user.parquet``, ``relevant.parquet``, ``metrics.json``, then
    ``done.json`` last (its presence means the cell is complete)."""
    folder = cell.folder(env.out)
    folder.mkdir(parents=True, exist_ok=True)
    lists = lists_table(model, top, ctx.split.test.user_ids[ctx.users], cell.model)
    write_table(lists, folder / "topk.parquet")
    write_frame(result.per_user, folder / "per_user.parquet")
    relevant = ctx.relevant_parquet  # the same file for every model: encoded once
    atomic_write(folder / "relevant.parquet", lambda tmp: tmp.write_bytes(relevant))
    write_json(folder / "metrics.json", result.metrics)
    env.tracker.log_artifact(child, folder, None)
    if cell.key:
        write_cell(folder, result)


def lists_table(model: Recommender, top: TopK, user_ids: pd.Index, label: str) -> pa.Table:
    """``topk.parquet``'s rows: ``user_id, item_id, rank, score, source``, one per
    recommendation, as :meth:`Recommender.lists_frame` has them, except that a
    single-component model's rows are labelled with its config name ``label``.

    Built as an Arrow table from the arrays, with the labels dictionary-encoded and then
    turned into strings in Arrow: no row-long Python object column (1.7M rows at the
    ml-25m shape), and ``pandas.read_parquet`` returns the frame ``lists_frame`` would
    have written (a test compares them).
    """
    mask = top.items >= 0
    rows, ranks = np.nonzero(mask)
    if top.sources is None:
        codes, names = np.zeros(rows.size, dtype=np.int16), [label]
    else:
        codes = top.sources[mask]
        names = list(top.source_names or model.source_names())
    source = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(names, pa.string()))
    return pa.table({
        "user_id": np.asarray(user_ids)[rows],
        "item_id": np.asarray(model.data_item_ids_)[top.items[mask]],
        "rank": (ranks + 1).astype(np.int32),
        "score": top.scores[mask],
        "source": source.cast(pa.string()),
    })


def _evaluate_protocol(cell: Cell, model: Recommender, ev: ProtocolEvaluation, env: CellEnv,
                       child, fit_s: float, info: dict) -> CellOutput:
    """A cold-start protocol: one recommend + evaluate per level, one row per user."""
    settings = ev.settings
    uid = ev.split.test.user_ids[ev.users]
    logged: dict[str, float] = {"fit_seconds": fit_s}
    train_counts = ev.split.train.item_counts()  # counted once per table, kept
    frames = []
    for level, history in ev.levels.items():
        with env.observers.stage("recommend", **info, level=level):
            top = model.recommend_codes(
                ev.users, settings.k_max, exclude_seen=settings.exclude_seen,
                history=history, batch_size=settings.batch_size,
            )
        with env.observers.stage("evaluate", **info, level=level):
            ranked = evaluate_rankings(
                top.items, ev.relevant, cutoffs=settings.cutoffs, metrics=settings.metrics,
                graded=settings.graded, map_denominator=settings.map_denominator,
            )
        served = served_users(top.items[ranked.users])
        if ev.protocol == ITEM_COLD and not recommends_unseen(top.items, train_counts):
            served[:] = False  # it never recommends a held-out item: cannot serve them
        values = unserved_to_nan(ranked.per_user, served)
        frames.append(pd.DataFrame({  # one frame at once: 24 inserted columns cost more
            "protocol": ev.protocol, "level": level, "model": cell.model,
            "family": model.family, "user_id": uid[ranked.users],
            "n_relevant": ranked.n_relevant, "n_recommended": top.lengths[ranked.users],
            **values}))
        segment = fold_in_segment(level) if ev.protocol == USER_COLD else metric_keys.ITEM_COLD
        logged.update({MetricKey.parse(k).over(segment).mlflow: v
                       for k, v in served_means(values, served).items()})
    env.tracker.log_metrics(child, logged)
    log.info("%s %s: fit %.2fs", ev.protocol, cell.model, fit_s)
    return CellOutput(frame=pd.concat(frames, ignore_index=True))


# ---------------------------------------------------------------------------- pieces
def build_model(model_name: str, model_cfg) -> Recommender:
    """Build a model config; anything but a ``Recommender`` is refused naming its key."""
    where = f"models.{model_name}"
    model = build(model_cfg, where)
    if not isinstance(model, Recommender):
        raise ConfigError(f"{where}._target_: expected a Recommender, got {type(model).__name__}")
    return model


def cell_key(model_cfg, split: Split, dataset_fingerprint: str, settings: EvalSettings,
             curve_k: int) -> str:
    """SHA-256 of everything that decides a main cell's numbers: the resolved model config
    (seeds included), the data and split fingerprints and the evaluation settings."""
    blob = json.dumps({"model": model_cfg, "dataset": dataset_fingerprint,
                       "split": split.fingerprint, "eval": asdict(settings),
                       "curve_k": curve_k}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def record_failure(exc: BaseException, cell: Cell, env: CellEnv, child) -> ModelFailure:
    """Write the traceback into the cell's folder, attach it to its tracking run, log one
    line, and return the failure record."""
    folder = cell.folder(env.out)
    folder.mkdir(parents=True, exist_ok=True)
    path = atomic_write_text(folder / "traceback.txt", "".join(traceback.format_exception(exc)))
    if child is not None:
        try:
            env.tracker.log_artifact(child, path, None)
        except Exception:  # the tracker's own fault must not hide the model's
            log.warning("could not attach %s to the tracking run", path)
    first = (str(exc).strip().splitlines() or [""])[0]
    error = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    fold = cell.fold if cell.protocol == MAIN else None
    failure = ModelFailure(model=cell.model, fold=fold, protocol=cell.protocol, error=error,
                           bad_input=isinstance(exc, BenchError), traceback=str(path),
                           seed=cell.seed)
    log.error("model %s (%s) FAILED: %s (traceback: %s)", cell.model, failure.where, error, path)
    return failure


def resume_cell(source: Path | None, cell: Cell, env: CellEnv) -> CellOutput | None:
    """The same cell finished in run folder ``source`` with the same key: reuse it.

    Its artifact folder is copied into this run, its record read back (bit for bit:
    Parquet and JSON floats round-trip exactly) and logged to a new MLflow child tagged
    with the run it came from. ``None`` when there is nothing to reuse.
    """
    if source is None or not cell.key:
        return None
    folder = cell.folder(source)
    done = read_cell(folder)
    if done is None:
        return None
    if done.config_hash != cell.key:
        log.info("model %s (%s): not resumed, its config or data changed", cell.model,
                 cell.part)
        return None
    target = cell.folder(env.out)
    if folder.resolve() != target.resolve():
        # not the temporary files a killed write left behind (bench.atomic)
        shutil.copytree(folder, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".*.tmp"))
    tags = {"model": cell.model, "family": done.family, "fold": str(cell.fold),
            "recspectrum.resumed_from": str(done.run_id)}
    if cell.seed is not None:
        tags["seed"] = str(cell.seed)
    child = env.tracker.start_run(cell.label, parent_id=env.parent, tags=tags)
    env.tracker.log_params(child, {**done.params, "_target_": done.target})
    env.tracker.log_metrics(child, {MetricKey.parse(k).mlflow: v
                                    for k, v in done.metrics.items()})
    env.tracker.log_artifact(child, target, None)
    env.tracker.end_run(child, "FINISHED")
    result = replace(done, run_id=child)
    labels = None
    if done.segments_source and "segment" in done.per_user:
        labels = pd.Series(done.per_user["segment"].to_numpy(dtype=object),
                           index=pd.Index(done.per_user["user_id"]))
    log.info("model %s (%s): resumed from %s (same config hash)", cell.model, cell.part,
             source.name)
    return CellOutput(result=result, labels=labels)


def truncate(top: TopK, k: int) -> TopK:
    """The first ``k`` ranks of ``top``."""
    if top.items.shape[1] <= k:
        return top
    return replace(top, items=top.items[:, :k], scores=top.scores[:, :k],
                   sources=None if top.sources is None else top.sources[:, :k])


def source_shares(top: TopK, model_name: str) -> dict[str, float]:
    """Share of recommended rows per producing component (a plain model: its own name)."""
    filled = top.items >= 0
    total = int(filled.sum())
    if top.sources is None:
        return {model_name: 1.0 if total else 0.0}
    counts = np.bincount(top.sources[filled].astype(np.int64), minlength=len(top.source_names))
    return {name: (float(c) / total if total else 0.0)
            for name, c in zip(top.source_names, counts, strict=True)}


#: ``eval.unscored_ratings``: drop and count the pairs a model cannot score (the default)
EXCLUDE = "exclude"
#: ``eval.unscored_ratings``: score them as Surprise's ``predict`` does (its benchmark)
SURPRISE_DEFAULT = "surprise_default"


def rating_metrics(model: Recommender, split: Split,
                   unscored: str = EXCLUDE) -> dict[str, float]:
    """RMSE/MAE of a rating predictor on the test pairs (``{}`` for other models).

    Models return NaN for a pair they cannot score. ``unscored`` says what happens to it:

    * ``"exclude"`` (honest exclusion, the default everywhere): the pair is left out of
      RMSE and MAE and counted as ``rating_pairs_unpredicted``;
    * ``"surprise_default"`` (``eval.unscored_ratings: surprise_default``): every pair is
      scored as Surprise's ``predict`` scores it, through the model's
      ``predict_like_surprise`` (Surprise models only), so the numbers are those of
      Surprise's own ``cross_validate``; the pairs that got Surprise's default instead of
      a model score are counted as ``rating_pairs_defaulted``.
    """
    if not getattr(model, "predicts_ratings", False) or not split.test.has_ratings:
        return {}
    users, items = split.test.users, split.test.items
    pred = np.asarray(model.predict_codes(users, items), dtype=np.float64)
    ok = np.isfinite(pred)
    out: dict[str, float] = {}
    if unscored == SURPRISE_DEFAULT:
        like_surprise = getattr(model, "predict_like_surprise", None)
        if like_surprise is None:
            raise ConfigError(
                f"eval.unscored_ratings: expected only Surprise models to predict ratings "
                f"with surprise_default (it scores pairs as Surprise's predict does), got "
                f"{type(model).__name__}; set eval.unscored_ratings=exclude"
            )
        out["rating_pairs_defaulted"] = float((~ok).sum())
        pred = np.asarray(like_surprise(users, items, sequence=split.test_sequence,
                                        predicted=pred), dtype=np.float64)
        ok = np.isfinite(pred)
    if not ok.any():
        raise EvaluationError(f"{type(model).__name__}: no test rating could be predicted")
    truth = split.test.ratings[ok]
    return {"rmse": rmse(pred[ok], truth), "mae": mae(pred[ok], truth),
            "rating_pairs_unpredicted": float((~ok).sum()), **out}


def table_k(settings: EvalSettings) -> int:
    """The cutoff of the compact tables: 10 when evaluated, else the largest."""
    return 10 if 10 in settings.cutoffs else settings.cutoffs[-1]

