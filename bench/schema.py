"""The config schema: one dataclass per top-level group, the only place defaults live.

:data:`SCHEMA_NAME` is stored in Hydra's ConfigStore (:func:`register`) and named first
in the defaults list of ``configs/config.yaml``, so Hydra checks types and unknown keys
while it composes. What a type cannot say (ranges, order, names) is declared on the same
field with :func:`setting` and checked by :func:`bench.config.load_settings`.

Every field states once what it expects (``expected``): that phrase is the one the
user reads in ``<key>: expected <expected>, got <value>``, whichever check failed.
``dataset``, ``split``, ``models`` and ``tracker`` are free-form ``_target_`` nodes,
checked when they are built.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from itertools import pairwise
from typing import Any

from omegaconf import II

from bench.metrics.registry import RANKING_METRICS

#: name of the root schema in Hydra's ConfigStore (the first entry of config.yaml's defaults)
SCHEMA_NAME = "bench_schema"
#: the rungs of the personalization spectrum, in order
FAMILIES = ("rule", "content", "collaborative", "hybrid")
#: ranking metrics ``eval.metrics`` may name
KNOWN_METRICS = RANKING_METRICS
#: segment kinds the CI gate can test (``check.segments``)
CHECK_SEGMENTS = ("all", "history_bucket", "segment", "new_items")
#: ``eval.map_denominator`` choices
MAP_DENOMINATORS = ("relevant", "min_k_relevant")
#: ``eval.unscored_ratings`` choices: drop and count, or Surprise's default (its benchmark)
UNSCORED_RATINGS = ("exclude", "surprise_default")
#: ``tune.sampler`` and ``tune.pruner`` choices (``bench tune``, :mod:`bench.tune`)
TUNE_SAMPLERS = ("tpe", "random")
TUNE_PRUNERS = ("none", "median")
#: ``executor.kind`` choices: cells in this process, or Ray tasks (``recspectrum[ray]``)
EXECUTOR_KINDS = ("local", "ray")

#: a name that becomes one path component (``name``, the keys of ``models``): letters, digits,
#: ``_ - .``, starting with a letter, digit or ``_`` (never ``.``, ``..`` or ``-``), no separator
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
#: what :data:`PLAIN_NAME` accepts, in words (the ``expected`` of every such key)
PLAIN_NAME_EXPECTED = (
    "a plain name (letters, digits, '_', '-', '.'; not starting with '.' or '-'; "
    "no '/' or '\\'; at most 128 characters)"
)

#: a rule: a predicate on the (typed, non-null) value and the phrase shown when it fails
#: (None = the field's own ``expected``)
Rule = tuple[Callable[[Any], bool], "str | None"]


def setting(default: Any = MISSING, *, expected: str, rules: tuple[Rule, ...] = (),
            factory: Callable[[], Any] | None = None) -> Any:
    """A schema field: its default, what it expects, and rules beyond its type.

    ``rules`` run in order on the value once it has its type (null values skip them:
    the type already says whether null is allowed); the first that fails is reported.
    """
    metadata = {"expected": expected, "rules": rules}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def group(cls: type) -> Any:
    """A nested group field (a mapping of its own keys)."""
    return field(default_factory=cls, metadata={"expected": "a mapping of keys", "rules": ()})


# ---------------------------------------------------------------------- predicates
def _nonempty(v) -> bool:
    return len(v) > 0


def _positive(v) -> bool:
    return all(k > 0 for k in v) if isinstance(v, list) else v > 0


def _ascending(v) -> bool:
    return all(b > a for a, b in pairwise(v))


def _finite(v) -> bool:
    return math.isfinite(v)


def _in_unit_interval(v) -> bool:
    return math.isfinite(v) and 0 < v < 1


def _metric_keys(v) -> bool:
    return len(v) > 0 and all("@" in m for m in v)


def is_plain_name(v) -> bool:
    """``v`` is a string safe to use as one path component (:data:`PLAIN_NAME`)."""
    return isinstance(v, str) and PLAIN_NAME.fullmatch(v) is not None


def _seed_list(v) -> bool:
    return len(v) > 0 and all(k >= 0 for k in v) and len(set(v)) == len(v)


def _is_resume(v) -> bool:
    return isinstance(v, bool) or (isinstance(v, str) and bool(v))


# ---------------------------------------------------------------------- groups
@dataclass
class SegmentsConfig:
    """``eval.segments``: the user segments every metric is also reported for."""

    history: list[int] = setting(
        factory=lambda: [0, 1, 6, 21, 101],
        expected="strictly ascending integer lower edges starting at 0 "
                 "(e.g. [0, 1, 6, 21, 101])",
        rules=((lambda v: len(v) > 0 and v[0] == 0 and _ascending(v), None),),
    )
    rules: str | None = setting("auto", expected="a model name, 'auto' or null",
                                rules=((_nonempty, None),))
    new_items: bool = setting(True, expected="true or false")


@dataclass
class EvalConfig:
    """``eval``: how recommendation lists are scored."""

    cutoffs: list[int] = setting(
        factory=lambda: [1, 5, 10, 20],
        expected="a non-empty list of integers",
        rules=((_nonempty, None), (_positive, "every k > 0"),
               (_ascending, "strictly ascending values")),
    )
    metrics: list[str] = setting(
        factory=lambda: list(KNOWN_METRICS),
        expected=f"names from {list(KNOWN_METRICS)}",
        rules=((lambda v: len(v) > 0 and all(m in KNOWN_METRICS for m in v), None),),
    )
    relevance_threshold: float | None = setting(
        4.0, expected="a number or null (every test interaction relevant)",
        rules=((_finite, None),),
    )
    graded: bool = setting(False, expected="true or false")
    map_denominator: str = setting(
        "relevant", expected="'relevant' or 'min_k_relevant'",
        rules=((lambda v: v in MAP_DENOMINATORS, None),),
    )
    exclude_seen: bool = setting(True, expected="true or false")
    batch_size: int | None = setting(None, expected="a positive integer or null",
                                     rules=((_positive, None),))
    segments: SegmentsConfig = group(SegmentsConfig)
    fail_on_leakage: bool = setting(False, expected="true or false")
    unscored_ratings: str = setting(
        "exclude", expected=f"one of {list(UNSCORED_RATINGS)}",
        rules=((lambda v: v in UNSCORED_RATINGS, None),),
    )


@dataclass
class StatsConfig:
    """``stats``: bootstrap confidence intervals and paired tests against a baseline."""

    baseline: str | None = setting(None, expected="a model name or null",
                                   rules=((_nonempty, None),))
    metrics: list[str] = setting(
        factory=lambda: ["precision@10", "recall@10", "ndcg@10"],
        expected="metric keys like 'ndcg@10'", rules=((_metric_keys, None),),
    )
    n_resamples: int = setting(1000, expected="an integer >= 1", rules=((_positive, None),))
    confidence: float = setting(0.95, expected="a number in (0, 1)",
                                rules=((_in_unit_interval, None),))
    alpha: float = setting(0.05, expected="a number in (0, 1)",
                           rules=((_in_unit_interval, None),))
    seed: int = setting(II("seed"), expected="an integer >= 0", rules=((lambda v: v >= 0, None),))


@dataclass
class UserColdStartConfig:
    """``cold_start.user``: the temporal user cold-start sweep (null = off)."""

    quantile: float | None = setting(None, expected="a number in (0, 1) or null",
                                     rules=((_in_unit_interval, None),))
    fold_in: list[int] = setting(
        factory=lambda: [0, 1, 3, 5, 10],
        expected="strictly ascending history sizes >= 0 (e.g. [0, 1, 3, 5, 10])",
        rules=((lambda v: len(v) > 0 and v[0] >= 0 and _ascending(v), None),),
    )
    seed: int = setting(II("seed"), expected="an integer >= 0", rules=((lambda v: v >= 0, None),))


@dataclass
class ItemColdStartConfig:
    """``cold_start.item``: the item cold-start protocol (null = off)."""

    fraction: float = setting(0.1, expected="a number in (0, 1)",
                              rules=((_in_unit_interval, None),))
    seed: int = setting(II("seed"), expected="an integer >= 0", rules=((lambda v: v >= 0, None),))


@dataclass
class ColdStartConfig:
    """``cold_start``: extra protocols run after the main split."""

    user: UserColdStartConfig | None = setting(None, expected="a mapping of keys or null")
    item: ItemColdStartConfig | None = setting(None, expected="a mapping of keys or null")


@dataclass
class ToleranceConfig:
    """One entry of ``check.tolerance``: allowed drop = max(abs, rel x baseline mean)."""

    abs: float = setting(0.0, expected="a number >= 0",
                         rules=((lambda v: 0 <= v < math.inf, None),))
    rel: float = setting(0.0, expected="a number >= 0",
                         rules=((lambda v: 0 <= v < math.inf, None),))


@dataclass
class CheckConfig:
    """``check``: the CI regression gate (``bench check``)."""

    baseline: str = setting("reports/baselines/${name}.json",
                            expected="a path ending in .json",
                            rules=((lambda v: v.endswith(".json"), None),))
    metrics: list[str] = setting(
        factory=lambda: ["precision@10", "recall@10", "ndcg@10"],
        expected="metric keys like 'ndcg@10'", rules=((_metric_keys, None),),
    )
    segments: list[str] = setting(
        factory=lambda: ["all", "history_bucket"],
        expected=f"some of {list(CHECK_SEGMENTS)}",
        rules=((lambda v: len(v) > 0 and all(s in CHECK_SEGMENTS for s in v), None),),
    )
    tolerance: dict[str, ToleranceConfig] = setting(
        factory=lambda: {"default": ToleranceConfig(abs=0.005, rel=0.02)},
        expected="'default' or metric keys like 'ndcg@10', each {abs, rel}",
        rules=((lambda v: all(m == "default" or "@" in m for m in v), None),),
    )
    fail_on_improvement: bool = setting(False, expected="true or false")
    fail_on_new_model: bool = setting(False, expected="true or false")
    fail_on_missing_model: bool = setting(False, expected="true or false")
    #: with ``seeds``: a regression must also drop more than this many standard
    #: deviations over training seeds (null = off)
    seed_spread: float | None = setting(
        None, expected="a number > 0 or null (off)",
        rules=((lambda v: 0 < v < math.inf, None),),
    )


@dataclass
class ReportConfig:
    """``report``: the run's report folder and what it shows."""

    dir: str = setting("reports", expected="a folder path", rules=((_nonempty, None),))
    figures: bool = setting(True, expected="true or false")
    headline: str | None = setting(None, expected="a metric key like 'ndcg@10'",
                                   rules=((lambda v: "@" in v, None),))
    curve_k: int = setting(50, expected="an integer >= 1", rules=((_positive, None),))
    ladder: dict[str, str] | None = setting(
        None,
        expected=f"a mapping of family ({', '.join(FAMILIES)}) to a model name",
        rules=((lambda v: all(f in FAMILIES and m for f, m in v.items()), None),),
    )


@dataclass
class BudgetConfig:
    """A tuning budget: trials, CPU seconds, or both (whichever runs out first)."""

    trials: int | None = setting(None, expected="an integer >= 1 or null",
                                 rules=((_positive, None),))
    seconds: float | None = setting(None, expected="a number of CPU seconds > 0 or null",
                                    rules=((lambda v: 0 < v < math.inf, None),))


@dataclass
class TuneConfig:
    """``tune``: what ``bench tune`` searches, on which validation cut, with which budget."""

    trials: int | None = setting(20, expected="an integer >= 1 or null (seconds only)",
                                 rules=((_positive, None),))
    seconds: float | None = setting(None, expected="a number of CPU seconds > 0 or null",
                                    rules=((lambda v: 0 < v < math.inf, None),))
    budgets: dict[str, BudgetConfig] = setting(
        factory=dict, expected="a mapping of model name to {trials, seconds}",
    )
    models: list[str] | None = setting(None, expected="a list of the run's model names or null",
                                       rules=((_nonempty, None),))
    metric: str | None = setting(None, expected="a metric key like 'ndcg@10' or null",
                                 rules=((lambda v: "@" in v, None),))
    validation: float = setting(0.2, expected="a number in (0, 1)",
                                rules=((_in_unit_interval, None),))
    sampler: str = setting("tpe", expected=f"one of {list(TUNE_SAMPLERS)}",
                           rules=((lambda v: v in TUNE_SAMPLERS, None),))
    pruner: str = setting("none", expected=f"one of {list(TUNE_PRUNERS)}",
                          rules=((lambda v: v in TUNE_PRUNERS, None),))
    seed: int = setting(II("seed"), expected="an integer >= 0", rules=((lambda v: v >= 0, None),))
    start_from_defaults: bool = setting(True, expected="true or false")
    storage: str | None = setting(None, expected="a database URL (sqlite:///..., "
                                  "postgresql://...) or null", rules=((_nonempty, None),))
    study: str | None = setting(None, expected=PLAIN_NAME_EXPECTED + " or null",
                                rules=((is_plain_name, None),))
    jobs: int = setting(1, expected="an integer >= 1", rules=((_positive, None),))


@dataclass
class ExecutorConfig:
    """``executor``: where the cells run (``configs/executor/``: ``local`` or ``ray``).

    Every key but ``kind`` is Ray's; with ``kind: local`` they keep their defaults
    (:func:`bench.config.load_settings` refuses a Ray key set for the local executor).
    """

    kind: str = setting("local", expected=f"one of {list(EXECUTOR_KINDS)}",
                        rules=((lambda v: v in EXECUTOR_KINDS, None),))
    address: str | None = setting(
        None, expected="a Ray cluster address ('auto', 'ray://host:10001', 'host:6379') or "
                       "null (start a local cluster)", rules=((_nonempty, None),))
    num_cpus: int | None = setting(None, expected="an integer >= 1 or null (every core)",
                                   rules=((_positive, None),))
    cpus_per_cell: int = setting(1, expected="an integer >= 1", rules=((_positive, None),))
    max_concurrent_cells: int | None = setting(
        None, expected="an integer >= 1 or null (as many as the CPUs allow)",
        rules=((_positive, None),))
    max_retries: int = setting(3, expected="an integer >= 0",
                               rules=((lambda v: v >= 0, None),))


@dataclass
class RunConfig:
    """The composed top-level config (``configs/config.yaml`` and its groups)."""

    seed: int = setting(42, expected="an integer")
    #: training seeds: every model key set to ``${seed}`` takes each in turn (null = off)
    seeds: list[int] | None = setting(
        None, expected="null or a non-empty list of distinct integers >= 0 (e.g. [1, 2, 3])",
        rules=((_seed_list, None),),
    )
    #: the run folder is ``<report.dir>/<name>/<stamp>``: one path component, never a path
    name: str = setting("${run_name:default,movielens_small,temporal_given_n}",
                        expected=PLAIN_NAME_EXPECTED, rules=((is_plain_name, None),))
    resume: Any = setting(False, expected="true, false or a run folder",
                          rules=((_is_resume, None),))
    data_dir: str = setting("${oc.env:BENCH_DATA_DIR,datasets}", expected="a folder path")
    dataset: Any = setting(None, expected="a mapping with a '_target_' key")
    split: Any = setting(None, expected="a mapping with a '_target_' key")
    #: model names become folders (``artifacts/<model>/``): plain names, checked by
    #: :func:`bench.config.load_settings` (the node itself is free-form)
    models: dict[str, Any] = setting(factory=dict,
                                     expected="a mapping of model name to a '_target_' node")
    tracker: Any = setting(None, expected="a mapping with a '_target_' key or null")
    eval: EvalConfig = group(EvalConfig)
    stats: StatsConfig = group(StatsConfig)
    cold_start: ColdStartConfig = group(ColdStartConfig)
    check: CheckConfig = group(CheckConfig)
    report: ReportConfig = group(ReportConfig)
    tune: TuneConfig = group(TuneConfig)
    executor: ExecutorConfig = group(ExecutorConfig)
    #: the record ``bench tune`` writes into a tuned overlay (``tuned=NAME``); the card
    #: and the report show it
    tuning: Any = setting(None, expected="the record bench tune writes, or null")


def composable(schema: type) -> type:
    """The variant of ``schema`` Hydra composes against: optional groups and mappings of
    groups (``cold_start.user``, ``report.ladder``, ``check.tolerance``) become untyped.

    OmegaConf cannot apply a command-line override (``cold_start.item={fraction: 0.1}``,
    ``+check.tolerance.ndcg@10={abs: 0.01}``) onto a typed null node or into a mapping of
    typed groups; :func:`bench.config.load_settings` checks those nodes against
    ``schema`` itself. Everything else keeps its type, so Hydra still checks it.
    """
    fields = []
    for f in dataclasses.fields(schema):
        hint = typing.get_type_hints(schema)[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional_container = type(None) in typing.get_args(hint) and any(
            dataclasses.is_dataclass(a) or typing.get_origin(a) is dict for a in args
        )
        groups = typing.get_origin(hint) is dict and dataclasses.is_dataclass(
            typing.get_args(hint)[1]
        )
        if dataclasses.is_dataclass(hint):
            sub = composable(hint)
            fields.append((f.name, sub, field(default_factory=sub, metadata=f.metadata)))
        elif optional_container or groups:
            plain = f.default if f.default_factory is dataclasses.MISSING else (
                _plain(f.default_factory()))
            fields.append((f.name, Any, field(default_factory=lambda v=plain: _plain(v),
                                              metadata=f.metadata)))
        else:
            fields.append((f.name, hint, f))
    return dataclasses.make_dataclass(f"Composed{schema.__name__}", fields)


def _plain(value):
    """Dataclass instances inside ``value`` as plain dicts (a fresh copy)."""
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def register() -> None:
    """Store :func:`composable` ``(RunConfig)`` in Hydra's ConfigStore as :data:`SCHEMA_NAME`."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=SCHEMA_NAME, node=composable(RunConfig))
