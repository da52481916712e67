"""The tuning objective: fit on the training rows left after the validation carve, score
on the validation rows. The test part of the split is never read.

:func:`validation_split` turns a split that has a validation part (carved from its
training rows by the same protocol, :meth:`bench.splits.base.Splitter.split`) into the
split tuning works on: ``train`` = training rows minus validation, ``test`` = validation.
Only ``train``, ``validation`` and ``fold_in`` of the original split are touched.
:class:`ValidationTask` holds everything a trial reads (plain data and arrays, so a
worker process can receive it), and :func:`evaluate_config` scores one model config.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from bench.cells import build_model
from bench.config import EvalSettings
from bench.data.dataset import Dataset
from bench.errors import ConfigError
from bench.evaluation import FoldContext
from bench.metrics import evaluate_rankings
from bench.metrics.keys import MetricKey
from bench.splits.base import Split

__all__ = ["Pruned", "TrialScore", "ValidationTask", "evaluate_config", "validation_split"]

#: user blocks a trial is scored in: the running mean after each is what a pruner sees
N_BLOCKS = 4


class Pruned(Exception):
    """Raised by :func:`evaluate_config` when ``report`` asked to stop the trial."""

    def __init__(self, step: int, value: float):
        super().__init__(f"pruned at step {step} (running value {value:.4f})")
        self.step = step
        self.value = value


def validation_split(split: Split) -> Split:
    """The split tuning evaluates on: train minus validation, and validation as its test.

    Never reads ``split.test``. Raises ``ConfigError`` when there is no validation part.
    """
    if split.validation is None:
        raise ConfigError(f"split '{split.name}': no validation part to tune on; set "
                          "tune.validation (a share of the training rows) or split.validation")
    info = {k.removeprefix("validation_"): v for k, v in split.info.items()
            if k.startswith("validation_")}
    return Split(
        train=split.train, test=split.validation, validation=None,
        fold_in=_before_cut(split.fold_in, split.cut),
        name=f"{split.name}/validation", fold=split.fold, n_folds=split.n_folds,
        params=split.params, cut=info.get("cut"), info=MappingProxyType(info),
    )


def _before_cut(fold_in, cut: int | None):
    """The validation carve's fold-in rows only: the split's own fold-in part also holds
    the test users' history from the test period (at or after the cut), which tuning
    must not see. Without a cut (cold-start splits) the test users' fold-in rows belong
    to users who are never validation users, and only validation users' rows are read."""
    if fold_in is None or cut is None or fold_in.timestamps is None:
        return fold_in
    keep = fold_in.timestamps < cut
    if not keep.any():
        return None
    return fold_in.take(keep, source=f"{fold_in.source}[before the cut]")


@dataclass(frozen=True)
class TrialScore:
    """One trial's result: the mean validation metric and what it cost."""

    value: float
    cpu_seconds: float
    seconds: float
    n_users: int


@dataclass(frozen=True, eq=False)
class ValidationTask:
    """What every trial of a tuning command reads: the validation context, the features,
    the evaluation settings and the metric; the order users are scored in is seeded."""

    ctx: FoldContext
    settings: EvalSettings
    metric: str
    item_features: object = None
    user_features: object = None
    seed: int = 0

    @classmethod
    def build(cls, split: Split, dataset: Dataset, settings: EvalSettings, metric: str,
              seed: int = 0) -> ValidationTask:
        """From a :func:`validation_split` and the dataset's features."""
        key = MetricKey.parse(metric)
        if key.metric not in settings.metrics or key.k not in settings.cutoffs:
            raise ConfigError(
                f"tune.metric: expected a metric@k the run evaluates (metrics "
                f"{list(settings.metrics)}, cutoffs {list(settings.cutoffs)}), got {metric!r}"
            )
        ctx = FoldContext.build(split, dataset, settings)
        return cls(ctx=ctx, settings=settings, metric=metric,
                   item_features=dataset.item_features, user_features=dataset.user_features,
                   seed=seed)

    def blocks(self) -> list[np.ndarray]:
        """Positions into ``ctx.users``, shuffled with ``seed``, in :data:`N_BLOCKS` parts."""
        order = np.random.default_rng(self.seed).permutation(len(self.ctx.users))
        return [b for b in np.array_split(order, min(N_BLOCKS, len(order))) if len(b)]


def evaluate_config(task: ValidationTask, model_name: str, model_cfg: dict,
                    report: Callable[[int, float], bool] | None = None) -> TrialScore:
    """Fit ``model_cfg`` on the validation split's training rows and return its mean
    validation metric. ``report(step, running_mean)`` is called after each user block;
    when it returns True the trial stops with :class:`Pruned`."""
    cpu, wall = time.process_time(), time.perf_counter()
    ctx, s = task.ctx, task.settings
    key = MetricKey.parse(task.metric)
    model = build_model(model_name, model_cfg)
    model.fit(ctx.split.train, item_features=task.item_features,
              user_features=task.user_features)
    total, count = 0.0, 0
    for step, rows in enumerate(task.blocks()):
        users = ctx.users[rows]
        history = ctx.history[rows] if ctx.history is not None else None
        top = model.recommend_codes(users, key.k, exclude_seen=s.exclude_seen,
                                    history=history, batch_size=s.batch_size)
        ranked = evaluate_rankings(top.items, ctx.relevant[users], cutoffs=[key.k],
                                   metrics=[key.metric], graded=s.graded,
                                   map_denominator=s.map_denominator)
        values = ranked.per_user[str(MetricKey(key.metric, key.k))]
        total += float(values.sum())
        count += len(values)
        if report is not None and report(step, total / count):
            raise Pruned(step, total / count)
    return TrialScore(value=total / count, cpu_seconds=time.process_time() - cpu,
                      seconds=time.perf_counter() - wall, n_users=count)
