"""Search spaces declared next to each model, in its YAML file, as data.

A model config may carry a ``_tune_`` block: one entry per hyperparameter, keyed by its
path inside the model config (``factors``, ``weights.cf_als``,
``components.cf_als.regularization``)::

    _tune_:
      factors: {type: int, low: 8, high: 128, log: true}
      regularization: {type: float, low: 0.001, high: 1.0, log: true}
      weighting: {type: categorical, choices: [none, bm25]}
      bm25_b: {type: float, low: 0.3, high: 1.0, when: {weighting: bm25}}
      components.cf_als: {type: component}   # a child's own _tune_ block, prefixed

=============== ============================================================================
``type``         ``int`` | ``float`` (``low`` < ``high``; ``log: true`` needs ``low > 0``;
                 ``step`` > 0, not with ``log``) | ``categorical`` (``choices``: a non-empty
                 list of strings, numbers, booleans or null) | ``component`` (the child at
                 that path brings its own ``_tune_`` block, its keys prefixed by the path)
``when``         optional: ``{other_key: value}`` or ``{other_key: [values]}``; the entry
                 is searched only when an earlier categorical entry took one of those
                 values (a conditional space). On a ``component`` entry the condition holds
                 for every key of the child.
=============== ============================================================================

``_tune_: {}`` says the model has no hyperparameters worth tuning; a model without the
block has no declared space. Both run with their config as it is.

The block is configuration, not code: :func:`parse_space` checks it against this schema
and any unknown key, type or value is one :class:`~bench.errors.ConfigError` line naming
``models.<name>._tune_.<key>``. Model builders never see it
(:func:`bench.targets.build` leaves ``_tune_`` out of a constructor's arguments).
Nothing here imports Optuna: :meth:`Space.sample` takes any object with Optuna's
``suggest_int`` / ``suggest_float`` / ``suggest_categorical`` methods.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.errors import ConfigError
from bench.targets import TUNE_KEY

__all__ = [
    "KINDS",
    "TUNE_KEY",
    "Param",
    "Space",
    "apply_values",
    "parse_space",
    "strip_tune",
]

#: entry types, and the keys each may have besides ``type`` and ``when``
KINDS: dict[str, frozenset[str]] = {
    "int": frozenset({"low", "high", "log", "step"}),
    "float": frozenset({"low", "high", "log", "step"}),
    "categorical": frozenset({"choices"}),
    "component": frozenset(),
}
#: share of a range (in log scale for log ranges) within which a value sits "on an edge"
EDGE_SHARE = 0.02


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter: its path in the model config and its distribution."""

    path: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()
    #: conditions: (path of an earlier categorical entry, values that switch this one on)
    when: tuple[tuple[str, tuple], ...] = ()

    def active(self, values: Mapping[str, object]) -> bool:
        """Whether the conditions hold for the values sampled so far."""
        return all(p in values and values[p] in allowed for p, allowed in self.when)

    def suggest(self, trial):
        """Ask ``trial`` (an Optuna trial or a stand-in) for a value."""
        if self.kind == "int":
            if self.log:
                return trial.suggest_int(self.path, int(self.low), int(self.high), log=True)
            return trial.suggest_int(self.path, int(self.low), int(self.high),
                                     step=int(self.step or 1))
        if self.kind == "float":
            if self.log:
                return trial.suggest_float(self.path, self.low, self.high, log=True)
            return trial.suggest_float(self.path, self.low, self.high, step=self.step)
        return trial.suggest_categorical(self.path, list(self.choices))

    def edge(self, value) -> str | None:
        """``"lower"`` or ``"upper"`` when a numeric ``value`` sits on an edge of the range."""
        if self.kind not in ("int", "float") or not isinstance(value, int | float):
            return None
        if self.kind == "int" and value in (self.low, self.high):
            return "lower" if value == self.low else "upper"
        lo, hi, v = float(self.low), float(self.high), float(value)
        if self.log:
            lo, hi, v = math.log(lo), math.log(hi), math.log(max(v, 1e-300))
        share = (v - lo) / (hi - lo)
        if share <= EDGE_SHARE:
            return "lower"
        if share >= 1 - EDGE_SHARE:
            return "upper"
        return None

    def describe(self) -> dict:
        """Plain data for records and hashes."""
        out: dict = {"type": self.kind}
        if self.kind in ("int", "float"):
            out.update(low=self.low, high=self.high, log=self.log)
            if self.step is not None:
                out["step"] = self.step
        else:
            out["choices"] = list(self.choices)
        if self.when:
            out["when"] = {p: list(v) for p, v in self.when}
        return out


@dataclass(frozen=True)
class Space:
    """A model's search space; ``declared`` is False when its config has no ``_tune_``."""

    model: str
    params: tuple[Param, ...] = ()
    declared: bool = True
    defaults: Mapping[str, object] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``tunable``, ``no hyperparameters`` (``_tune_: {}``) or ``no search space``."""
        if not self.declared:
            return "no search space"
        return "tunable" if self.params else "no hyperparameters"

    def sample(self, trial) -> dict[str, object]:
        """One value per active entry, asked of ``trial`` in declaration order."""
        values: dict[str, object] = {}
        for p in self.params:
            if p.active(values):
                values[p.path] = p.suggest(trial)
        return values

    def boundary(self, values: Mapping[str, object]) -> list[str]:
        """A phrase per value that sits on an edge of its range (the range may be too narrow)."""
        out = []
        for p in self.params:
            side = p.edge(values.get(p.path)) if p.path in values else None
            if side:
                bound = p.low if side == "lower" else p.high
                out.append(f"{p.path}={_short(values[p.path])} is at the {side} edge of its "
                           f"range [{_short(p.low)}, {_short(p.high)}] (edge {_short(bound)})")
        return out

    def fingerprint(self) -> str:
        """SHA-256 of the space: a study is resumed only with the same space."""
        blob = json.dumps([[p.path, p.describe()] for p in self.params], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def describe(self) -> dict:
        return {p.path: p.describe() for p in self.params}


# ---------------------------------------------------------------------------- parsing
def parse_space(model_name: str, model_cfg: Mapping) -> Space:
    """The search space of ``models.<model_name>``; a ConfigError line when malformed."""
    where = f"models.{model_name}.{TUNE_KEY}"
    if not isinstance(model_cfg, Mapping) or TUNE_KEY not in model_cfg:
        return Space(model=model_name, declared=False)
    params = _entries(model_cfg, model_cfg[TUNE_KEY], where, prefix="", inherited=())
    defaults = {}
    for p in params:
        found, value = _lookup(model_cfg, p.path)
        if found:
            defaults[p.path] = value
    return Space(model=model_name, params=tuple(params), defaults=defaults)


def _entries(cfg: Mapping, block, where: str, prefix: str,
             inherited: tuple[tuple[str, tuple], ...]) -> list[Param]:
    if block is None:
        return []
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where}: expected a mapping of hyperparameter path to "
                          f"{{type: ..., ...}} (or {{}} for none), got {block!r}")
    out: list[Param] = []
    seen: dict[str, Param] = {}
    for key, spec in block.items():
        key_where = f"{where}.{key}"
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"{key_where}: expected a dotted path into the model config, "
                              f"got {key!r}")
        if key.split(".")[-1] == TUNE_KEY or key.startswith("_target_"):
            raise ConfigError(f"{key_where}: expected a hyperparameter path, got {key!r}")
        found, value = _lookup(cfg, key)
        if not found:
            raise ConfigError(f"{key_where}: no such key in the model config; expected the "
                              f"path of one of its settings (e.g. {_example(cfg)})")
        spec = _check_spec(spec, key_where)
        when = inherited + _conditions(spec.get("when"), key_where, seen, prefix)
        if spec["type"] == "component":
            if not (isinstance(value, Mapping) and "_target_" in value):
                raise ConfigError(f"{key_where}.type: 'component' expects a child model "
                                  f"(a mapping with '_target_') at {key!r}, got {value!r}")
            child = value.get(TUNE_KEY)
            out += _entries(value, child, f"{key_where}.{TUNE_KEY}", f"{prefix}{key}.", when)
            continue
        param = _param(f"{prefix}{key}", spec, key_where, when)
        seen[key] = param
        out.append(param)
    paths = [p.path for p in out]
    dup = sorted({p for p in paths if paths.count(p) > 1})
    if dup:
        raise ConfigError(f"{where}: {dup} searched twice (a key and a component both "
                          f"declare it); keep one")
    return out


def _check_spec(spec, where: str) -> Mapping:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a mapping like {{type: float, low: 0.01, "
                          f"high: 1.0}}, got {spec!r}")
    kind = spec.get("type")
    if kind not in KINDS:
        raise ConfigError(f"{where}.type: expected one of {list(KINDS)}, got {kind!r}")
    unknown = sorted(set(spec) - KINDS[kind] - {"type", "when"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} for type {kind}; expected some "
                          f"of {sorted(KINDS[kind] | {'when'})}")
    return spec


def _param(path: str, spec: Mapping, where: str, when) -> Param:
    kind = spec["type"]
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list | tuple) or not choices or not all(
                c is None or isinstance(c, str | int | float | bool) for c in choices):
            raise ConfigError(f"{where}.choices: expected a non-empty list of strings, numbers, "
                              f"booleans or null, got {choices!r}")
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f"{where}.choices: expected distinct values, got {list(choices)}")
        return Param(path=path, kind=kind, choices=tuple(choices), when=when)
    number = int if kind == "int" else (int, float)
    for bound in ("low", "high"):
        v = spec.get(bound)
        if isinstance(v, bool) or not isinstance(v, number) or not math.isfinite(v):
            what = "an integer" if kind == "int" else "a finite number"
            raise ConfigError(f"{where}.{bound}: expected {what}, got {v!r}")
    low, high = spec["low"], spec["high"]
    if not low < high:
        raise ConfigError(f"{where}: expected low < high, got low={low!r}, high={high!r}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log: expected true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{where}.low: a log range needs low > 0, got {low!r}")
    step = spec.get("step")
    if step is not None:
        if log:
            raise ConfigError(f"{where}.step: expected no step on a log range, got {step!r}")
        if isinstance(step, bool) or not isinstance(step, number) or not step > 0:
            raise ConfigError(f"{where}.step: expected a number > 0, got {step!r}")
    return Param(path=path, kind=kind, low=low, high=high, log=log, step=step, when=when)


def _conditions(when, where: str, seen: Mapping[str, Param], prefix: str):
    if when is None:
        return ()
    if not isinstance(when, Mapping) or not when:
        raise ConfigError(f"{where}.when: expected a mapping like {{other_key: value}}, "
                          f"got {when!r}")
    out = []
    for key, allowed in when.items():
        parent = seen.get(key)
        if parent is None or parent.kind != "categorical":
            earlier = [k for k, p in seen.items() if p.kind == "categorical"]
            raise ConfigError(f"{where}.when.{key}: expected a categorical entry declared "
                              f"earlier in the block (one of {earlier}), got {key!r}")
        values = tuple(allowed) if isinstance(allowed, list | tuple) else (allowed,)
        bad = [v for v in values if v not in parent.choices]
        if bad or not values:
            raise ConfigError(f"{where}.when.{key}: expected values among its choices "
                              f"{list(parent.choices)}, got {list(values)}")
        out.append((f"{prefix}{key}", values))
    return tuple(out)


# ---------------------------------------------------------------------------- configs
def _lookup(cfg: Mapping, path: str) -> tuple[bool, object]:
    node: object = cfg
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _example(cfg: Mapping) -> str:
    keys = [k for k in cfg if k not in ("_target_", TUNE_KEY)]
    return repr(keys[0]) if keys else "'factors'"


def apply_values(model_cfg: Mapping, values: Mapping[str, object]) -> dict:
    """A deep copy of ``model_cfg`` with each dotted path set to its value."""
    out = copy.deepcopy(dict(model_cfg))
    for path, value in values.items():
        *parents, last = path.split(".")
        node = out
        for part in parents:
            node = node[part]
        node[last] = value
    return out


def strip_tune(value):
    """``value`` without any ``_tune_`` block, at every depth (plain data in, plain data out)."""
    if isinstance(value, Mapping):
        return {k: strip_tune(v) for k, v in value.items() if k != TUNE_KEY}
    if isinstance(value, list | tuple):
        return [strip_tune(v) for v in value]
    return value


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
