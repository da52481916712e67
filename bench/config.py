"""Run settings and building configs: one clear ``ConfigError`` instead of a Hydra traceback.

:func:`load_settings` is the entry point of the run layer: it checks a composed config
(a Hydra ``DictConfig`` or a plain mapping) against the schema in :mod:`bench.schema`
and returns a frozen :class:`RunSettings`. The per-group functions (:func:`eval_settings`,
:func:`stats_settings`, ...) check one group the same way. :func:`build` instantiates
``_target_`` nodes — only targets inside the ``bench`` package — naming the config key
when anything is wrong.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace

from omegaconf import DictConfig, ListConfig, OmegaConf

from bench.errors import ConfigError, describe
from bench.naming import register_resolver
from bench.schema import (
    CHECK_SEGMENTS,
    FAMILIES,
    KNOWN_METRICS,
    PLAIN_NAME_EXPECTED,
    CheckConfig,
    ColdStartConfig,
    EvalConfig,
    ExecutorConfig,
    ReportConfig,
    RunConfig,
    StatsConfig,
    UserColdStartConfig,
    is_plain_name,
    register,
)
from bench.schema_check import conform, message_for, unknown_keys_message
from bench.stats.budget import check_budget

__all__ = [
    "CHECK_SEGMENTS", "FAMILIES", "KNOWN_METRICS", "CheckSettings", "ColdStartSettings",
    "EvalSettings", "ExecutorSettings", "ReportSettings", "RunSettings", "StatsSettings",
    "check_model_names", "check_settings", "check_top_level", "cold_start_settings",
    "config_error_message",
    "eval_settings", "history_labels", "load_settings", "report_settings",
    "resolve_headline", "stats_settings", "to_container",
]

register()  # Hydra composes configs/config.yaml on top of the schema
register_resolver()  # ${run_name:...}, the default run name (bench.naming)

#: top-level nodes that are free-form ``_target_`` nodes (checked when built)
TARGET_NODES = frozenset({"dataset", "split", "models", "tracker"})
#: top-level keys the run ignores: Hydra's own node, the experiment group's name
IGNORED_KEYS = frozenset({"hydra", "experiment"})
#: the schema's defaults with interpolations resolved (``stats.seed`` follows ``seed``)
_DEFAULTS: RunConfig = OmegaConf.to_object(OmegaConf.structured(RunConfig))


def history_labels(edges) -> list[str]:
    """``[0, 1, 6, 21, 101]`` -> ``["0", "1-5", "6-20", "21-100", "101+"]``."""
    labels = []
    for lo, hi in itertools.pairwise([*edges, None]):
        if hi is None:
            labels.append(f"{lo}+")
        elif hi - lo == 1:
            labels.append(str(lo))
        else:
            labels.append(f"{lo}-{hi - 1}")
    return labels


# ---------------------------------------------------------------------- settings types
@dataclass(frozen=True)
class EvalSettings:
    """The checked ``eval`` group (defaults: :class:`bench.schema.EvalConfig`)."""

    cutoffs: tuple[int, ...] = tuple(_DEFAULTS.eval.cutoffs)
    metrics: tuple[str, ...] = tuple(_DEFAULTS.eval.metrics)
    relevance_threshold: float | None = _DEFAULTS.eval.relevance_threshold
    graded: bool = _DEFAULTS.eval.graded
    map_denominator: str = _DEFAULTS.eval.map_denominator
    exclude_seen: bool = _DEFAULTS.eval.exclude_seen
    batch_size: int | None = _DEFAULTS.eval.batch_size
    #: lower edges of the training-history buckets (first 0): 0, 1-5, 6-20, 21-100, 101+
    history_edges: tuple[int, ...] = tuple(_DEFAULTS.eval.segments.history)
    #: model whose user segments break down every model; "auto" = first that segments; None = off
    segment_rules: str | None = _DEFAULTS.eval.segments.rules
    new_items: bool = _DEFAULTS.eval.segments.new_items
    fail_on_leakage: bool = _DEFAULTS.eval.fail_on_leakage
    #: rating pairs a model cannot score: "exclude" (drop, count) or "surprise_default"
    unscored_ratings: str = _DEFAULTS.eval.unscored_ratings

    @classmethod
    def from_config(cls, cfg: EvalConfig) -> EvalSettings:
        return cls(
            cutoffs=tuple(cfg.cutoffs), metrics=tuple(cfg.metrics),
            relevance_threshold=None if cfg.relevance_threshold is None
            else float(cfg.relevance_threshold),
            graded=cfg.graded, map_denominator=cfg.map_denominator,
            exclude_seen=cfg.exclude_seen, batch_size=cfg.batch_size,
            history_edges=tuple(cfg.segments.history), segment_rules=cfg.segments.rules,
            new_items=cfg.segments.new_items, fail_on_leakage=cfg.fail_on_leakage,
            unscored_ratings=cfg.unscored_ratings,
        )

    @property
    def k_max(self) -> int:
        return self.cutoffs[-1]

    def history_labels(self) -> list[str]:
        """Bucket labels for :attr:`history_edges` (``["0", "1-5", ..., "101+"]``)."""
        return history_labels(self.history_edges)


@dataclass(frozen=True)
class StatsSettings:
    """The checked ``stats`` group (confidence intervals and paired tests)."""

    baseline: str | None = _DEFAULTS.stats.baseline
    metrics: tuple[str, ...] = tuple(_DEFAULTS.stats.metrics)
    n_resamples: int = _DEFAULTS.stats.n_resamples
    confidence: float = _DEFAULTS.stats.confidence
    alpha: float = _DEFAULTS.stats.alpha
    #: the bootstrap seed; the schema's default follows the run's ``seed``
    seed: int = _DEFAULTS.stats.seed

    @classmethod
    def from_config(cls, cfg: StatsConfig) -> StatsSettings:
        return cls(baseline=cfg.baseline, metrics=tuple(cfg.metrics),
                   n_resamples=cfg.n_resamples, confidence=float(cfg.confidence),
                   alpha=float(cfg.alpha), seed=cfg.seed)


@dataclass(frozen=True)
class ColdStartSettings:
    """The checked ``cold_start`` group (extra protocols run after the main split).

    A protocol is off when its group is null (``user_enabled`` False, ``item_fraction``
    None).
    """

    #: user cold-start sweep: on or off, its cut (None = the main split's), the fold-in
    #: history sizes and the seed that orders same-second fold-in rows
    user_enabled: bool = False
    user_quantile: float | None = None
    user_fold_in: tuple[int, ...] = tuple(UserColdStartConfig().fold_in)
    user_seed: int = _DEFAULTS.seed
    #: item cold start: share of items held out (None = protocol off)
    item_fraction: float | None = None
    item_seed: int = _DEFAULTS.seed

    @classmethod
    def from_config(cls, cfg: ColdStartConfig) -> ColdStartSettings:
        out: dict = {}
        if cfg.user is not None:
            quantile = cfg.user.quantile
            out.update(user_enabled=True,
                       user_quantile=None if quantile is None else float(quantile),
                       user_fold_in=tuple(cfg.user.fold_in), user_seed=cfg.user.seed)
        if cfg.item is not None:
            out.update(item_fraction=float(cfg.item.fraction), item_seed=cfg.item.seed)
        return cls(**out)


@dataclass(frozen=True)
class ReportSettings:
    """The checked ``report`` group."""

    dir: str = _DEFAULTS.report.dir
    figures: bool = _DEFAULTS.report.figures
    #: None until :func:`resolve_headline`: ndcg (or the first metric) at 10 or the largest k
    headline: str | None = _DEFAULTS.report.headline
    curve_k: int = _DEFAULTS.report.curve_k
    #: (family, model) pairs in spectrum order; None = stats.baseline or the first per family
    ladder: tuple[tuple[str, str], ...] | None = None

    @classmethod
    def from_config(cls, cfg: ReportConfig) -> ReportSettings:
        ladder = cfg.ladder
        if ladder is not None:
            ladder = tuple((f, ladder[f]) for f in FAMILIES if f in ladder)
        return cls(dir=str(cfg.dir), figures=cfg.figures, headline=cfg.headline,
                   curve_k=cfg.curve_k, ladder=ladder)


@dataclass(frozen=True)
class CheckSettings:
    """The checked ``check`` group (the CI regression gate)."""

    baseline: str = _DEFAULTS.check.baseline
    metrics: tuple[str, ...] = tuple(_DEFAULTS.check.metrics)
    segments: tuple[str, ...] = tuple(_DEFAULTS.check.segments)
    #: metric -> (abs, rel); "default" for every other metric
    tolerance: tuple[tuple[str, float, float], ...] = tuple(
        (m, t.abs, t.rel) for m, t in _DEFAULTS.check.tolerance.items()
    )
    fail_on_improvement: bool = _DEFAULTS.check.fail_on_improvement
    fail_on_new_model: bool = _DEFAULTS.check.fail_on_new_model
    fail_on_missing_model: bool = _DEFAULTS.check.fail_on_missing_model
    #: k: a regression must also drop more than k x the sd over training seeds; None = off
    seed_spread: float | None = _DEFAULTS.check.seed_spread

    @classmethod
    def from_config(cls, cfg: CheckConfig) -> CheckSettings:
        return cls(
            baseline=cfg.baseline, metrics=tuple(cfg.metrics),
            segments=tuple(dict.fromkeys(cfg.segments)),
            tolerance=tuple((str(m), float(t.abs), float(t.rel))
                            for m, t in cfg.tolerance.items()),
            fail_on_improvement=cfg.fail_on_improvement,
            fail_on_new_model=cfg.fail_on_new_model,
            fail_on_missing_model=cfg.fail_on_missing_model,
            seed_spread=None if cfg.seed_spread is None else float(cfg.seed_spread),
        )

    def allowed_drop(self, metric: str, baseline_mean: float) -> float:
        """max(abs, rel x |baseline mean|) for ``metric`` (its own tolerance or the default)."""
        table = {m: (a, r) for m, a, r in self.tolerance}
        a, r = table.get(metric, table.get("default", (0.0, 0.0)))
        return max(a, r * abs(baseline_mean))


@dataclass(frozen=True)
class ExecutorSettings:
    """The checked ``executor`` group: where cells run (:mod:`bench.executor`)."""

    kind: str = _DEFAULTS.executor.kind
    #: Ray: the cluster to join; None = start a local one with ``num_cpus`` CPUs
    address: str | None = _DEFAULTS.executor.address
    num_cpus: int | None = _DEFAULTS.executor.num_cpus
    cpus_per_cell: int = _DEFAULTS.executor.cpus_per_cell
    max_concurrent_cells: int | None = _DEFAULTS.executor.max_concurrent_cells
    max_retries: int = _DEFAULTS.executor.max_retries

    @classmethod
    def from_config(cls, cfg: ExecutorConfig) -> ExecutorSettings:
        out = cls(kind=cfg.kind, address=cfg.address, num_cpus=cfg.num_cpus,
                  cpus_per_cell=cfg.cpus_per_cell,
                  max_concurrent_cells=cfg.max_concurrent_cells, max_retries=cfg.max_retries)
        if out.kind == "local":  # a Ray key set here would be ignored without a word
            default = cls()
            for name in ("address", "num_cpus", "cpus_per_cell", "max_concurrent_cells",
                         "max_retries"):
                if getattr(out, name) != getattr(default, name):
                    raise ConfigError(
                        f"executor.{name}: expected it only with executor=ray (the local "
                        f"executor runs cells one after another here), got "
                        f"{getattr(out, name)!r}; add executor=ray or drop executor.{name}"
                    )
        return out


@dataclass(frozen=True)
class RunSettings:
    """Everything a run reads from its config, checked: the typed groups and the raw
    ``_target_`` nodes (``dataset``, ``split``, ``models``, ``tracker``) for :func:`build`."""

    seed: int
    name: str
    #: true = the latest earlier run of this experiment; a run folder; false = train all
    resume: bool | str
    data_dir: str
    eval: EvalSettings
    stats: StatsSettings
    cold_start: ColdStartSettings
    #: the headline metric is resolved (see :func:`resolve_headline`)
    report: ReportSettings
    check: CheckSettings
    dataset: dict
    split: dict
    models: dict
    tracker: dict | None
    #: training seeds (``seeds``): each seeded model runs once per seed; None = off
    seeds: tuple[int, ...] | None = None
    #: where the cells run (``executor=local|ray``)
    executor: ExecutorSettings = ExecutorSettings()


# ---------------------------------------------------------------------- loading
def to_container(node) -> dict:
    """Resolve interpolations and return plain Python containers."""
    if isinstance(node, DictConfig | ListConfig):
        try:
            return OmegaConf.to_container(node, resolve=True)
        except Exception as exc:  # interpolation failures from OmegaConf
            raise ConfigError(f"config: cannot resolve a value ({exc})") from None
    return dict(node) if isinstance(node, Mapping) else node


def load_settings(cfg) -> RunSettings:
    """Check a composed config against the schema and return its :class:`RunSettings`.

    ``cfg`` is a Hydra ``DictConfig`` or a plain mapping; keys left out take the
    schema's defaults (:mod:`bench.schema`).

    Raises:
        ConfigError: one line naming the full key, what it expects and what it got
            (including upper bounds on the values that size memory,
            :func:`bench.stats.budget.check_budget`).
    """
    raw = to_container(cfg)
    check_top_level(raw)
    run = _conform({k: v for k, v in raw.items() if k not in IGNORED_KEYS})
    settings = EvalSettings.from_config(run.eval)
    out = RunSettings(
        seed=run.seed, seeds=None if run.seeds is None else tuple(run.seeds),
        name=run.name, resume=run.resume, data_dir=run.data_dir,
        eval=settings, stats=StatsSettings.from_config(run.stats),
        cold_start=ColdStartSettings.from_config(run.cold_start),
        report=resolve_headline(ReportSettings.from_config(run.report), settings),
        check=CheckSettings.from_config(run.check),
        dataset=raw["dataset"], split=raw["split"], models=_without_untargeted_tuned(raw),
        tracker=raw.get("tracker"), executor=ExecutorSettings.from_config(run.executor),
    )
    # values that cannot fit in memory whatever the data; the data's own sizes are
    # checked with the same function once the split is known
    check_budget(out, n_users=1, n_items=1, n_models=len(out.models))
    return out


def _without_untargeted_tuned(raw: Mapping) -> dict:
    """``models`` without the nodes a tuned overlay (``tuned=NAME``) added for models this
    run does not have: they hold tuned values only, no ``_target_``."""
    models = raw["models"]
    tuning = raw.get("tuning")
    tuned = tuning.get("models") if isinstance(tuning, Mapping) else None
    if not isinstance(models, Mapping) or not isinstance(tuned, Mapping):
        return models
    return {m: node for m, node in models.items()
            if not (m in tuned and isinstance(node, Mapping) and "_target_" not in node)}


def config_error_message(exc: BaseException) -> str | None:
    """The one-line message for an OmegaConf/Hydra error about a schema key, else None."""
    return message_for(exc, RunConfig)


def check_top_level(cfg: Mapping) -> None:
    """Reject unknown top-level keys (a typo in an experiment file must not pass quietly),
    require ``dataset``, ``split`` and ``models``, and check the top-level scalars."""
    unknown = sorted(set(cfg) - set(RunConfig.__dataclass_fields__) - IGNORED_KEYS)
    if unknown:
        raise ConfigError(unknown_keys_message("", unknown, RunConfig))
    for key in ("dataset", "split", "models"):
        if cfg.get(key) is None:
            raise ConfigError(f"config: '{key}' is required (choose one, e.g. {key}=...)")
    _conform({k: v for k, v in cfg.items() if k in _SCALARS})
    check_model_names(cfg["models"])


def check_model_names(models) -> None:
    """Every key of ``models`` is a plain name: it becomes the folder ``artifacts/<model>/``
    of the run, so ``../x`` or ``a/b`` would write outside it."""
    if not isinstance(models, Mapping):
        return  # the schema check names the key and the type
    for model in models:
        if not is_plain_name(model):
            raise ConfigError(describe(f"models[{model!r}]",
                                       f"a model name that is {PLAIN_NAME_EXPECTED}",
                                       repr(model)))


#: top-level keys that are neither groups nor ``_target_`` nodes
_SCALARS = frozenset({"seed", "seeds", "name", "resume", "data_dir"})


def _conform(raw: Mapping) -> RunConfig:
    return conform(RunConfig, raw, skip=TARGET_NODES)


def _group(name: str, raw, seed: int | None = None):
    """One group checked as it would be inside a whole config (``seed`` for ``${seed}``)."""
    top: dict = {} if seed is None else {"seed": seed}
    if raw is not None:
        top[name] = raw
    return getattr(_conform(top), name)


def eval_settings(raw: Mapping | None) -> EvalSettings:
    """Check the ``eval`` group; every problem names its key."""
    return EvalSettings.from_config(_group("eval", raw))


def stats_settings(raw: Mapping | None, seed: int = 0) -> StatsSettings:
    """Check the ``stats`` group; ``stats.seed`` defaults to ``seed``."""
    return StatsSettings.from_config(_group("stats", raw, seed))


def cold_start_settings(raw: Mapping | None, seed: int = 0) -> ColdStartSettings:
    """Check the ``cold_start`` group (``user`` sweep and ``item`` protocol; null = off)."""
    return ColdStartSettings.from_config(_group("cold_start", raw, seed))


def check_settings(raw: Mapping | None) -> CheckSettings:
    """Check the ``check`` group; every problem names its key."""
    return CheckSettings.from_config(_group("check", raw))


def report_settings(raw: Mapping | None) -> ReportSettings:
    """Check the ``report`` group (the headline is resolved by :func:`resolve_headline`)."""
    return ReportSettings.from_config(_group("report", raw))


def resolve_headline(report: ReportSettings, settings: EvalSettings) -> ReportSettings:
    """Fill in the default headline metric, or check that the configured one is evaluated."""
    k = 10 if 10 in settings.cutoffs else settings.cutoffs[-1]
    if report.headline is None:
        name = "ndcg" if "ndcg" in settings.metrics else settings.metrics[0]
        return replace(report, headline=f"{name}@{k}")
    name, _, cut = report.headline.partition("@")
    if name not in settings.metrics or not cut.isdigit() or int(cut) not in settings.cutoffs:
        raise ConfigError(
            f"report.headline: expected a metric@k the run evaluates (metrics "
            f"{list(settings.metrics)}, cutoffs {list(settings.cutoffs)}), got {report.headline!r}"
        )
    return report
