"""Checking and building configs: one clear ``ConfigError`` instead of a Hydra traceback.

Hydra composes the config; this module checks what composition cannot (types, ranges,
unknown keys inside a buildable node) and instantiates ``_target_`` nodes — only
targets inside the ``bench`` package — naming the config key when anything is wrong.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from bench.errors import ConfigError
from bench.metrics.registry import RANKING_METRICS

TOP_LEVEL_KEYS = {
    "seed",
    "name",
    "data_dir",
    "dataset",
    "split",
    "models",
    "tracker",
    "eval",
    "report",
    "stats",
    "cold_start",
    "check",
    "resume",
    "experiment",
    "hydra",
}
#: The rungs of the personalization spectrum, in order.
FAMILIES = ("rule", "content", "collaborative", "hybrid")
KNOWN_METRICS = RANKING_METRICS
EVAL_KEYS = {
    "cutoffs",
    "metrics",
    "relevance_threshold",
    "graded",
    "map_denominator",
    "exclude_seen",
    "batch_size",
    "segments",
    "fail_on_leakage",
}
SEGMENT_KEYS = {"history", "rules", "new_items"}
STATS_KEYS = {"baseline", "metrics", "n_resamples", "confidence", "alpha", "seed"}
COLD_START_KEYS = {"user", "item"}
REPORT_KEYS = {"dir", "figures", "headline", "curve_k", "ladder"}
CHECK_KEYS = {
    "baseline", "metrics", "segments", "tolerance", "fail_on_improvement",
    "fail_on_new_model", "fail_on_missing_model",
}
#: Segment kinds the CI gate can test (see ``check.segments``).
CHECK_SEGMENTS = ("all", "history_bucket", "segment", "new_items")


@dataclass(frozen=True)
class EvalSettings:
    """The validated ``eval`` config group."""

    cutoffs: tuple[int, ...] = (1, 5, 10, 20)
    metrics: tuple[str, ...] = KNOWN_METRICS
    relevance_threshold: float | None = 4.0
    graded: bool = False
    map_denominator: str = "relevant"
    exclude_seen: bool = True
    batch_size: int | None = None
    #: lower edges of the training-history buckets (first 0): 0, 1-5, 6-20, 21-100, 101+
    history_edges: tuple[int, ...] = (0, 1, 6, 21, 101)
    #: model whose user segments break down every model; "auto" = first that segments; None = off
    segment_rules: str | None = "auto"
    new_items: bool = True
    fail_on_leakage: bool = False

    @property
    def k_max(self) -> int:
        return self.cutoffs[-1]

    def history_labels(self) -> list[str]:
        """Bucket labels for :attr:`history_edges` (``["0", "1-5", ..., "101+"]``)."""
        return history_labels(self.history_edges)


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


@dataclass(frozen=True)
class StatsSettings:
    """The validated ``stats`` config group (confidence intervals and paired tests)."""

    baseline: str | None = None
    metrics: tuple[str, ...] = ("precision@10", "recall@10", "ndcg@10")
    n_resamples: int = 1000
    confidence: float = 0.95
    alpha: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class ColdStartSettings:
    """The validated ``cold_start`` config group (extra protocols run after the main split)."""

    #: user cold-start sweep: share of users held out and the fold-in history sizes
    user_fraction: float | None = None
    user_fold_in: tuple[int, ...] = (0, 1, 3, 5, 10)
    user_seed: int = 0
    #: item cold start: share of items held out (None = protocol off)
    item_fraction: float | None = None
    item_seed: int = 0


@dataclass(frozen=True)
class ReportSettings:
    """The validated ``report`` config group."""

    dir: str = "reports"
    figures: bool = True
    #: None until :func:`resolve_headline`: ndcg (or the first metric) at 10 or the largest k
    headline: str | None = None
    curve_k: int = 50
    ladder: tuple[tuple[str, str], ...] | None = None


def to_container(node) -> dict:
    """Resolve interpolations and return plain Python containers."""
    if isinstance(node, DictConfig | ListConfig):
        try:
            return OmegaConf.to_container(node, resolve=True)
        except Exception as exc:  # interpolation failures from OmegaConf
            raise ConfigError(f"config: cannot resolve a value ({exc})") from None
    return dict(node) if isinstance(node, Mapping) else node


def check_top_level(cfg: Mapping) -> None:
    """Reject unknown top-level keys (a typo in an experiment file must not pass quietly)."""
    unknown = sorted(set(cfg.keys()) - TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(
            f"config: unknown top-level key(s) {unknown}; expected some of {sorted(TOP_LEVEL_KEYS)}"
        )
    for key in ("dataset", "split", "models"):
        if cfg.get(key) is None:
            raise ConfigError(f"config: '{key}' is required (choose one, e.g. {key}=...)")
    if not isinstance(cfg.get("seed"), int) or isinstance(cfg.get("seed"), bool):
        raise ConfigError(f"seed: expected an integer, got {cfg.get('seed')!r}")


def eval_settings(raw: Mapping | None) -> EvalSettings:
    """Validate the ``eval`` group; every problem names its key."""
    raw = dict(raw or {})
    unknown = sorted(set(raw) - EVAL_KEYS)
    if unknown:
        raise ConfigError(f"eval: unknown key(s) {unknown}; expected some of {sorted(EVAL_KEYS)}")
    cutoffs = raw.get("cutoffs", [10])
    if isinstance(cutoffs, int) and not isinstance(cutoffs, bool):
        cutoffs = [cutoffs]
    if (
        not isinstance(cutoffs, list | tuple)
        or not cutoffs
        or not all(isinstance(k, int) and not isinstance(k, bool) for k in cutoffs)
    ):
        raise ConfigError(f"eval.cutoffs: expected a non-empty list of integers, got {cutoffs!r}")
    if any(k <= 0 for k in cutoffs):
        raise ConfigError(f"eval.cutoffs: expected every k > 0, got {list(cutoffs)}")
    if any(b <= a for a, b in itertools.pairwise(cutoffs)):
        raise ConfigError(f"eval.cutoffs: expected strictly ascending values, got {list(cutoffs)}")
    metrics = raw.get("metrics", list(KNOWN_METRICS))
    if isinstance(metrics, str):
        metrics = [metrics]
    bad = [m for m in metrics if m not in KNOWN_METRICS]
    if bad or not metrics:
        raise ConfigError(
            f"eval.metrics: expected names from {list(KNOWN_METRICS)}, got {list(metrics)}"
        )
    thr = raw.get("relevance_threshold", 4.0)
    if thr is not None and (
        isinstance(thr, bool) or not isinstance(thr, int | float) or not math.isfinite(thr)
    ):
        raise ConfigError(
            f"eval.relevance_threshold: expected a number or null (every test interaction "
            f"relevant), got {thr!r}"
        )
    mapd = raw.get("map_denominator", "relevant")
    if mapd not in ("relevant", "min_k_relevant"):
        raise ConfigError(
            f"eval.map_denominator: expected 'relevant' or 'min_k_relevant', got {mapd!r}"
        )
    for key in ("graded", "exclude_seen"):
        if key in raw and not isinstance(raw[key], bool):
            raise ConfigError(f"eval.{key}: expected true or false, got {raw[key]!r}")
    bs = raw.get("batch_size")
    if bs is not None and (isinstance(bs, bool) or not isinstance(bs, int) or bs <= 0):
        raise ConfigError(f"eval.batch_size: expected a positive integer or null, got {bs!r}")
    return EvalSettings(
        cutoffs=tuple(cutoffs),
        metrics=tuple(metrics),
        relevance_threshold=None if thr is None else float(thr),
        graded=bool(raw.get("graded", False)),
        map_denominator=mapd,
        exclude_seen=bool(raw.get("exclude_seen", True)),
        batch_size=bs,
        **_segment_settings(raw.get("segments")),
        fail_on_leakage=_bool(raw, "fail_on_leakage", False, "eval"),
    )


def _bool(raw: Mapping, key: str, default: bool, group: str) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{group}.{key}: expected true or false, got {value!r}")
    return value


def _int(value, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _fraction(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ConfigError(f"{where}: expected a number in (0, 1), got {value!r}")
    return float(value)


def _unknown(raw: Mapping, allowed: set[str], group: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{group}: unknown key(s) {unknown}; expected some of {sorted(allowed)}")


def _mapping(raw, group: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{group}: expected a mapping of keys, got {raw!r}")
    return dict(raw)


def _segment_settings(raw) -> dict:
    raw = _mapping(raw, "eval.segments")
    _unknown(raw, SEGMENT_KEYS, "eval.segments")
    edges = raw.get("history", [0, 1, 6, 21, 101])
    if (
        not isinstance(edges, list | tuple)
        or not edges
        or not all(isinstance(e, int) and not isinstance(e, bool) for e in edges)
        or edges[0] != 0
        or any(b <= a for a, b in itertools.pairwise(edges))
    ):
        raise ConfigError(
            "eval.segments.history: expected strictly ascending integer lower edges starting "
            f"at 0 (e.g. [0, 1, 6, 21, 101]), got {edges!r}"
        )
    rules = raw.get("rules", "auto")
    if rules is not None and (not isinstance(rules, str) or not rules):
        raise ConfigError(
            f"eval.segments.rules: expected a model name, 'auto' or null, got {rules!r}"
        )
    return {
        "history_edges": tuple(edges),
        "segment_rules": rules,
        "new_items": _bool(raw, "new_items", True, "eval.segments"),
    }


def _metric_keys(value, where: str) -> list[str]:
    """A non-empty list of metric keys like ``ndcg@10`` (a single string is a list of one)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value or not all(
        isinstance(m, str) and "@" in m for m in value
    ):
        raise ConfigError(f"{where}: expected metric keys like 'ndcg@10', got {value!r}")
    return list(value)


def stats_settings(raw: Mapping | None, seed: int = 0) -> StatsSettings:
    """Validate the ``stats`` group; every problem names its key."""
    raw = _mapping(raw, "stats")
    _unknown(raw, STATS_KEYS, "stats")
    baseline = raw.get("baseline")
    if baseline is not None and (not isinstance(baseline, str) or not baseline):
        raise ConfigError(f"stats.baseline: expected a model name or null, got {baseline!r}")
    metrics = _metric_keys(raw.get("metrics", list(StatsSettings.metrics)), "stats.metrics")
    conf = raw.get("confidence", 0.95)
    alpha = raw.get("alpha", 0.05)
    return StatsSettings(
        baseline=baseline,
        metrics=tuple(metrics),
        n_resamples=_int(raw.get("n_resamples", 1000), "stats.n_resamples", 1),
        confidence=_fraction(conf, "stats.confidence"),
        alpha=_fraction(alpha, "stats.alpha"),
        seed=_int(raw.get("seed", seed), "stats.seed", 0),
    )


def cold_start_settings(raw: Mapping | None, seed: int = 0) -> ColdStartSettings:
    """Validate the ``cold_start`` group (``user`` sweep and ``item`` protocol; null = off)."""
    raw = _mapping(raw, "cold_start")
    _unknown(raw, COLD_START_KEYS, "cold_start")
    out: dict = {}
    user = raw.get("user")
    if user is not None:
        user = _mapping(user, "cold_start.user")
        _unknown(user, {"fraction", "fold_in", "seed"}, "cold_start.user")
        sizes = user.get("fold_in", [0, 1, 3, 5, 10])
        if (
            not isinstance(sizes, list | tuple)
            or not sizes
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in sizes)
            or sizes[0] < 0
            or any(b <= a for a, b in itertools.pairwise(sizes))
        ):
            raise ConfigError(
                "cold_start.user.fold_in: expected strictly ascending history sizes >= 0 "
                f"(e.g. [0, 1, 3, 5, 10]), got {sizes!r}"
            )
        out.update(
            user_fraction=_fraction(user.get("fraction", 0.2), "cold_start.user.fraction"),
            user_fold_in=tuple(sizes),
            user_seed=_int(user.get("seed", seed), "cold_start.user.seed", 0),
        )
    item = raw.get("item")
    if item is not None:
        item = _mapping(item, "cold_start.item")
        _unknown(item, {"fraction", "seed"}, "cold_start.item")
        out.update(
            item_fraction=_fraction(item.get("fraction", 0.1), "cold_start.item.fraction"),
            item_seed=_int(item.get("seed", seed), "cold_start.item.seed", 0),
        )
    return ColdStartSettings(**out)


@dataclass(frozen=True)
class CheckSettings:
    """The validated ``check`` config group (the CI regression gate)."""

    baseline: str = "reports/baselines/default.json"
    metrics: tuple[str, ...] = ("precision@10", "recall@10", "ndcg@10")
    segments: tuple[str, ...] = ("all", "history_bucket")
    #: metric -> (abs, rel); "default" for every other metric
    tolerance: tuple[tuple[str, float, float], ...] = (("default", 0.005, 0.02),)
    fail_on_improvement: bool = False
    fail_on_new_model: bool = False
    fail_on_missing_model: bool = False

    def allowed_drop(self, metric: str, baseline_mean: float) -> float:
        """max(abs, rel x |baseline mean|) for ``metric`` (its own tolerance or the default)."""
        table = {m: (a, r) for m, a, r in self.tolerance}
        a, r = table.get(metric, table.get("default", (0.0, 0.0)))
        return max(a, r * abs(baseline_mean))


def check_settings(raw: Mapping | None) -> CheckSettings:
    """Validate the ``check`` group; every problem names its key."""
    raw = _mapping(raw, "check")
    _unknown(raw, CHECK_KEYS, "check")
    baseline = raw.get("baseline", CheckSettings.baseline)
    if not isinstance(baseline, str) or not baseline.endswith(".json"):
        raise ConfigError(f"check.baseline: expected a path ending in .json, got {baseline!r}")
    metrics = _metric_keys(raw.get("metrics", list(CheckSettings.metrics)), "check.metrics")
    segments = raw.get("segments", list(CheckSettings.segments))
    if isinstance(segments, str):
        segments = [segments]
    bad = [x for x in segments or [None] if x not in CHECK_SEGMENTS]
    if bad:
        raise ConfigError(
            f"check.segments: expected some of {list(CHECK_SEGMENTS)}, got {segments!r}"
        )
    tol_raw = _mapping(raw.get("tolerance", {"default": {"abs": 0.005, "rel": 0.02}}),
                       "check.tolerance")
    tolerance = []
    for metric, spec in tol_raw.items():
        where = f"check.tolerance.{metric}"
        spec = _mapping(spec, where)
        _unknown(spec, {"abs", "rel"}, where)
        values = []
        for key in ("abs", "rel"):
            v = spec.get(key, 0.0)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < math.inf:
                raise ConfigError(f"{where}.{key}: expected a number >= 0, got {v!r}")
            values.append(float(v))
        if metric != "default" and "@" not in metric:
            raise ConfigError(
                f"check.tolerance: expected 'default' or metric keys like 'ndcg@10', got "
                f"{metric!r}"
            )
        tolerance.append((str(metric), values[0], values[1]))
    return CheckSettings(
        baseline=baseline,
        metrics=tuple(metrics),
        segments=tuple(dict.fromkeys(segments)),
        tolerance=tuple(tolerance),
        fail_on_improvement=_bool(raw, "fail_on_improvement", False, "check"),
        fail_on_new_model=_bool(raw, "fail_on_new_model", False, "check"),
        fail_on_missing_model=_bool(raw, "fail_on_missing_model", False, "check"),
    )


def resolve_headline(report: ReportSettings, settings: EvalSettings) -> ReportSettings:
    """Fill in the default headline metric, or check that the configured one is evaluated."""
    from dataclasses import replace

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


def report_settings(raw: Mapping | None) -> ReportSettings:
    """Validate the ``report`` group."""
    raw = _mapping(raw, "report")
    _unknown(raw, REPORT_KEYS, "report")
    headline = raw.get("headline")
    if headline is not None and (not isinstance(headline, str) or "@" not in headline):
        raise ConfigError(
            f"report.headline: expected a metric key like 'ndcg@10', got {headline!r}"
        )
    ladder = raw.get("ladder")
    if ladder is not None:
        ladder = _mapping(ladder, "report.ladder")
        bad = sorted(set(ladder) - set(FAMILIES))
        if bad or not all(isinstance(v, str) and v for v in ladder.values()):
            raise ConfigError(
                f"report.ladder: expected a mapping of family ({', '.join(FAMILIES)}) to a "
                f"model name, got {ladder!r}"
            )
        ladder = tuple((f, ladder[f]) for f in FAMILIES if f in ladder)
    return ReportSettings(
        dir=str(raw.get("dir", "reports")),
        figures=_bool(raw, "figures", True, "report"),
        headline=headline,
        curve_k=_int(raw.get("curve_k", 50), "report.curve_k", 1),
        ladder=ladder,
    )


@dataclass(frozen=True)
class RunSettings:
    """Every validated top-level setting of a run; the ``_target_`` groups as plain data."""

    seed: int
    name: str
    resume: object
    eval: EvalSettings
    stats: StatsSettings
    cold_start: ColdStartSettings
    report: ReportSettings
    check: CheckSettings
    dataset: dict
    split: dict
    models: dict
    tracker: dict | None


def load_settings(cfg) -> RunSettings:
    """Validate a composed config (``DictConfig`` or mapping); one ``ConfigError`` naming
    the key otherwise."""
    raw = to_container(cfg)
    check_top_level(raw)
    settings = eval_settings(raw.get("eval"))
    groups = dict(
        stats=stats_settings(raw.get("stats"), raw["seed"]),
        cold_start=cold_start_settings(raw.get("cold_start"), raw["seed"]),
        report=resolve_headline(report_settings(raw.get("report")), settings),
        check=check_settings(raw.get("check")),
    )
    models = raw["models"]
    if not isinstance(models, Mapping) or not models:
        raise ConfigError("models: expected at least one model (e.g. model=[rule_popular,cf_als])")
    return RunSettings(
        seed=raw["seed"], name=str(raw.get("name") or "default"),
        resume=raw.get("resume", False), eval=settings, **groups,
        dataset=raw["dataset"], split=raw["split"], models=dict(models),
        tracker=raw.get("tracker"),
    )
