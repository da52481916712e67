"""The Python API: run experiments and evaluate models from a notebook or a script.

Everything the ``bench`` command does is reachable without it::

    import bench

    result = bench.run(["model=[rule_popular,cf_als]", "tracker=none"])
    result.means()            # per model x metric: mean, 95% CI, users
    result.per_user           # one row per (model, fold, user) with every metric
    result.lists("cf_als")    # the top-k lists (user_id, item_id, rank, score, source)
    result.card               # the evaluation card (data, split, protocol, versions)

    model = MyRecommender(alpha=0.5)          # any bench.models.base.Recommender
    result = bench.evaluate(model, ["dataset=movielens_small", "split=temporal_warm"])

:func:`compose` builds the config exactly as the command line does (the same config
folder, ``BENCH_CONFIG_DIR`` and plug-ins included); :func:`run` runs it; :func:`evaluate`
adds one model object to a run's models. Errors are the same ``BenchError`` subclasses the
command line turns into one line and exit code 2.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from bench.errors import ConfigError
from bench.models.base import Recommender
from bench.params import HasParams
from bench.record import RunRecord, RunResult, read_record

__all__ = ["Result", "compose", "evaluate", "model_config", "run"]


def compose(overrides: Sequence[str] = (), config_dir: str | Path | None = None):
    """The composed config for ``overrides`` (Hydra syntax, as on the command line).

    ``config_dir`` defaults to the one ``bench`` uses (``$BENCH_CONFIG_DIR``, else the
    installed configs). Returns an OmegaConf ``DictConfig``.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from bench import plugins
    from bench.cli import config_dir as default_config_dir
    from bench.plugin_configs import install

    folder = Path(config_dir) if config_dir is not None else default_config_dir()
    plugins.load_all()  # declared plug-ins and their config folders, as on the command line
    install()
    if GlobalHydra.instance().is_initialized():  # e.g. called from inside a Hydra app
        GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(folder.resolve()), version_base="1.3"):
            return hydra_compose("config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"config: {first}") from None


def run(overrides: Sequence[str] | None = None, *, config=None, output_dir=None,
        tracker=None, observers=None, executor=None) -> Result:
    """Run an experiment and return its :class:`Result`.

    Give either ``overrides`` (composed like the command line) or a ready ``config``
    (a ``DictConfig`` or a plain mapping with every key of ``configs/config.yaml``).
    ``output_dir``, ``tracker``, ``observers`` and ``executor`` are passed to
    :func:`bench.runner.run_experiment`.
    """
    from bench.runner import run_experiment

    if config is not None and overrides:
        raise ConfigError("bench.run: give overrides or a config, not both")
    cfg = config if config is not None else compose(overrides or ())
    result = run_experiment(cfg, output_dir=output_dir, tracker=tracker,
                            observers=observers, executor=executor)
    return Result(result)


def evaluate(model: Recommender, overrides: Sequence[str] = (), *, name: str | None = None,
             output_dir=None, tracker=None) -> Result:
    """Evaluate a model object you constructed, on the data, split and settings that
    ``overrides`` select, next to the models they select.

    The model is not trained in place: every fold (and cold-start protocol) fits a fresh
    copy built from its hyperparameters (:func:`model_config`), exactly as a model config
    would be — so it gets the same fingerprinting, resume, MLflow and report treatment.
    ``name`` (default: the class name in snake case) is its name in the results.

    Example: ``bench.evaluate(MyModel(alpha=0.5), ["~experiment", "model=[rule_popular]",
    "tracker=none"])`` compares it with all-time popularity on the default split.
    """
    from omegaconf import open_dict

    from bench.targets import allowing

    if not isinstance(model, Recommender):
        raise ConfigError(f"evaluate: expected a bench.models.base.Recommender, got "
                          f"{type(model).__name__}")
    name = name or re.sub(r"(?<!^)(?=[A-Z])", "_", type(model).__name__).lower()
    cfg = compose(overrides)
    if name in cfg.models:
        raise ConfigError(f"evaluate: a model named {name!r} is already in the run; pass "
                          f"name= to call yours something else")
    node = model_config(model)
    with open_dict(cfg):
        cfg.models[name] = node
    with allowing(*_classes(model)):
        return run(config=cfg, output_dir=output_dir, tracker=tracker)


def model_config(model: HasParams) -> dict:
    """The config node that builds a copy of ``model``: ``_target_`` plus its
    hyperparameters (children of composites become nested nodes). Hyperparameters must
    be plain data (numbers, strings, booleans, None, lists and mappings of them)."""
    from bench.targets import dotted_name

    node: dict[str, object] = {"_target_": dotted_name(type(model))}
    for key, value in model.get_params().items():
        node[key] = _plain(value, f"{type(model).__name__}.{key}")
    return node


def _plain(value, where: str):
    if isinstance(value, HasParams):
        return model_config(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ConfigError(f"evaluate: {where}: expected plain data (a number, string, boolean, "
                      f"None, list or mapping) as a hyperparameter, got a "
                      f"{type(value).__name__}")


def _classes(model: HasParams) -> list[type]:
    """The model's class and those of its nested children."""
    out = [type(model)]
    for value in model.get_params().values():
        children = value.values() if isinstance(value, Mapping) else \
            value if isinstance(value, list | tuple) else [value]
        out += [c for child in children if isinstance(child, HasParams)
                for c in _classes(child)]
    return out


@dataclass(frozen=True, eq=False)
class Result:
    """A finished run: its numbers in memory and its folder on disk.

    Attributes:
        run: the :class:`~bench.record.RunResult` the runner returned.
    """

    run: RunResult

    @property
    def folder(self) -> Path:
        """The run folder (``report.md``, ``results.json``, artifacts)."""
        return Path(self.run.output_dir)

    @cached_property
    def record(self) -> RunRecord:
        """The run record as written to ``results.json``."""
        return read_record(self.folder)

    @cached_property
    def per_user(self) -> pd.DataFrame:
        """One row per (model, fold, evaluated user): every metric, history, segments."""
        return self.run.per_user_frame()

    @cached_property
    def card(self) -> dict:
        """The evaluation card (``card.json``)."""
        return json.loads((self.folder / "card.json").read_text())

    @property
    def failures(self) -> list:
        """Models that raised (the others finished)."""
        return self.run.failures

    def means(self) -> pd.DataFrame:
        """Per model and compared metric: ``mean``, CI ``low``/``high``, users ``n``.

        The intervals are the report's (percentile bootstrap over users at
        ``stats.confidence``, ``stats.n_resamples`` resamples, seeded by ``stats.seed``).
        """
        stats = json.loads((self.folder / "stats.json").read_text())
        return pd.DataFrame(stats["headline"])

    def summary(self) -> pd.DataFrame:
        """One row per model: every metric's mean over users (and folds), users, timings."""
        return self.run.summary_frame()

    def lists(self, model: str, fold: int = 0, seed: int | None = None) -> pd.DataFrame:
        """The top-k lists ``model`` produced on ``fold`` (its ``topk.parquet``); with
        training seeds (``seeds``), ``seed`` names the training seed of a seeded model."""
        part = f"fold{fold}" if seed is None else f"fold{fold}/seed{seed}"
        path = self.folder / "artifacts" / model / part / "topk.parquet"
        if not path.is_file():
            known = sorted({r.model for r in self.run.models})
            seeds = sorted({r.seed for r in self.run.models
                            if r.model == model and r.seed is not None})
            hint = f"; {model} ran with training seeds {seeds}: pass seed=" if seeds else ""
            raise ConfigError(f"lists: no lists for model {model!r} fold {fold}"
                              f"{'' if seed is None else f' seed {seed}'}; the run's "
                              f"models are {known}{hint}")
        return pd.read_parquet(path)
