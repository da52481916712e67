"""Checking and building configs: one clear ``ConfigError`` instead of a Hydra traceback.

Hydra composes the config; this module checks what composition cannot (types, ranges,
unknown keys inside a buildable node) and instantiates ``_target_`` nodes — only
targets inside the ``bench`` package — naming the config key when anything is wrong.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from bench.errors import BenchError, ConfigError

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
    "experiment",
    "hydra",
}
KNOWN_METRICS = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
EVAL_KEYS = {
    "cutoffs",
    "metrics",
    "relevance_threshold",
    "graded",
    "map_denominator",
    "exclude_seen",
    "batch_size",
}


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

    @property
    def k_max(self) -> int:
        return self.cutoffs[-1]


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
    )


def _build_nested(value, where: str):
    """Build ``_target_`` nodes inside a value: a node, a mapping of nodes, a list of nodes.

    This is how composite models receive their children (``components: {cold: {...}}``).
    Plain data (mappings without ``_target_``, scalars) passes through unchanged.
    """
    if isinstance(value, Mapping):
        if "_target_" in value:
            return build(value, where)
        return {k: _build_nested(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_build_nested(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def build(node: Mapping, where: str):
    """Instantiate a ``_target_`` node from the ``bench`` package, checking its keys.

    Nested ``_target_`` nodes in its values are built first (children of composites).

    ``where`` is the config path used in messages (``models.cf_als``). Unknown keys,
    missing required values and constructor errors all become ``ConfigError`` naming it.
    """
    if not isinstance(node, Mapping) or "_target_" not in node:
        raise ConfigError(f"{where}: expected a mapping with a '_target_' key, got {node!r}")
    target = node["_target_"]
    if not isinstance(target, str) or not target.startswith("bench."):
        raise ConfigError(
            f"{where}._target_: expected a dotted path inside the 'bench' package, got "
            f"{target!r}; other code is not loaded from configs"
        )
    module_name, _, attr = target.rpartition(".")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        raise ConfigError(f"{where}._target_: {target!r} does not exist") from None
    kwargs = {k: _build_nested(v, f"{where}.{k}") for k, v in node.items() if k != "_target_"}
    missing = [k for k, v in kwargs.items() if v == "???"]
    if missing:
        raise ConfigError(f"{where}: required value(s) {missing} not set (they are '???')")
    sig = inspect.signature(fn)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    allowed = [n for n, p in sig.parameters.items() if n != "self" and p.kind is not p.VAR_KEYWORD]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown and not accepts_any:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown} for {target}; expected some of {sorted(allowed)}"
        )
    required = [
        n
        for n, p in sig.parameters.items()
        if n != "self" and p.default is p.empty and p.kind is p.KEYWORD_ONLY
    ]
    absent = [n for n in required if n not in kwargs]
    if absent:
        raise ConfigError(f"{where}: missing required key(s) {absent} for {target}")
    try:
        return fn(**kwargs)
    except BenchError:
        raise
    except TypeError as exc:
        raise ConfigError(f"{where}: cannot build {target}: {exc}") from None
