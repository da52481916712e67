"""Building ``_target_`` config nodes: resolve and check the target, then construct it.

A config names what to build with ``_target_: dotted.path.Name``. Before anything is
called, :func:`resolve` checks, in this order, and refuses with one ``ConfigError`` line
naming the key, what was expected and what was found:

1. the path is a public dotted name (no component starting with ``_``) inside ``bench`` or
   a declared plug-in prefix (:mod:`bench.plugins`); nothing else is imported;
2. the name exists;
3. it is what its config group expects, decided by the root of ``where``:

   ========== ===============================================================
   ``models``  a :class:`bench.models.base.Recommender` subclass (also every child
               nested inside a model, e.g. a composite's components)
   ``split``   a :class:`bench.splits.base.Splitter` subclass
   ``dataset`` a loader registered with :func:`bench.data.loaders.dataset_loader`
   ``tracker`` a class implementing :class:`bench.tracking.base.Tracker`
   ========== ===============================================================

   Functions are never called from a config, except registered dataset loaders.

A Python caller may also hand over a class object itself (:func:`bench.api.evaluate`
does, for a model the user constructed): :func:`allowing` makes that one class
resolvable by its dotted name for the duration of a ``with`` block, still subject to
the kind check. Config text alone can never widen what is allowed.

:func:`build` then checks the node's keys against the constructor's signature and calls
it. A constructor's :class:`bench.errors.ParameterError` comes back as a ``ConfigError``
prefixed with the config path (``models.cf_als.factors: expected ...``).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from bench import plugins
from bench.errors import BenchError, ConfigError, ParameterError

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
#: the search space ``bench tune`` reads from a model config (:mod:`bench.tune.space`);
#: like ``_target_``, never a constructor argument
TUNE_KEY = "_tune_"
#: keys of a ``_target_`` node that :func:`build` does not pass to the constructor
NOT_ARGUMENTS = frozenset({"_target_", TUNE_KEY})


@dataclass(frozen=True)
class Kind:
    """What a config group may build: a phrase for messages and the test itself."""

    expected: str
    accepts: Callable[[object], bool]


def _is_recommender(obj: object) -> bool:
    from bench.models.base import Recommender

    return isinstance(obj, type) and issubclass(obj, Recommender)


def _is_splitter(obj: object) -> bool:
    from bench.splits.base import Splitter

    return isinstance(obj, type) and issubclass(obj, Splitter)


def _is_loader(obj: object) -> bool:
    from bench.data.loaders import is_dataset_loader

    return is_dataset_loader(obj)


def _is_tracker(obj: object) -> bool:
    from bench.tracking.base import Tracker

    return isinstance(obj, type) and issubclass(obj, Tracker)


#: Config group (the first component of ``where``) -> what its ``_target_`` may be.
KINDS: dict[str, Kind] = {
    "models": Kind("a Recommender subclass (bench.models.base.Recommender)", _is_recommender),
    "split": Kind("a splitter class (a subclass of bench.splits.base.Splitter)", _is_splitter),
    "dataset": Kind("a dataset loader (registered with @dataset_loader)", _is_loader),
    "tracker": Kind("a Tracker class (implementing bench.tracking.base.Tracker)", _is_tracker),
}


#: Classes handed over in-process by a Python caller (:func:`allowing`), by dotted name.
_ALLOWED: dict[str, type] = {}


def dotted_name(cls: type) -> str:
    """``module.QualName`` of a class: what a ``_target_`` naming it says."""
    return f"{cls.__module__}.{cls.__qualname__}"


@contextlib.contextmanager
def allowing(*classes: type) -> Iterator[None]:
    """Let configs name these exact class objects while the block runs."""
    added = [dotted_name(c) for c in classes if dotted_name(c) not in _ALLOWED]
    _ALLOWED.update({dotted_name(c): c for c in classes})
    try:
        yield
    finally:
        for name in added:
            _ALLOWED.pop(name, None)


def group_of(where: str) -> str:
    """The config group of a config path: ``models.hybrid_blend.components.cf_als`` -> models."""
    return re.split(r"[.\[]", where, maxsplit=1)[0]


def resolve(target: object, where: str):
    """The object a ``_target_`` names, checked against its group; nothing of it is called.

    ``where`` is the config path of the node (``models.cf_als``). Only modules inside
    ``bench`` or a declared plug-in are imported.

    Raises:
        ConfigError: one line naming ``<where>._target_``, what was expected and what was found.
    """
    key = f"{where}._target_"
    kind = KINDS.get(group_of(where))
    if kind is None:
        raise ConfigError(
            f"{key}: expected a '_target_' only under {sorted(KINDS)}, got one under "
            f"{group_of(where)!r}"
        )
    if isinstance(target, str) and target in _ALLOWED:
        obj = _ALLOWED[target]
        if not kind.accepts(obj):
            raise ConfigError(f"{key}: expected {kind.expected}, got {_what(obj, target)}")
        return obj
    if not isinstance(target, str) or not _DOTTED.fullmatch(target):
        raise ConfigError(_outside(key, target))
    module_name, _, attr = target.rpartition(".")
    # bench itself needs no look-up of the declarations (entry points are a disk scan)
    plugin = None if plugins.within(module_name, plugins.BUILTIN_PREFIX) else \
        plugins.owner(module_name)
    if plugin is None and not plugins.within(module_name, plugins.BUILTIN_PREFIX):
        raise ConfigError(_outside(key, target))
    private = [part for part in target.split(".") if part.startswith("_")]
    if private:
        raise ConfigError(
            f"{key}: expected a public dotted path (no component starting with '_'), got "
            f"{target!r}"
        )
    if plugin is not None:
        plugins.load(plugin)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and plugins.within(module_name, exc.name):
            raise ConfigError(f"{key}: {target!r} does not exist") from None
        raise ConfigError(f"{key}: cannot import {module_name!r}: {exc}") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise ConfigError(f"{key}: {target!r} does not exist")
    if not kind.accepts(obj):
        raise ConfigError(f"{key}: expected {kind.expected}, got {_what(obj, target)}")
    return obj


def _outside(key: str, target: object) -> str:
    declared = [p.prefix for p in plugins.declared()]
    now = f"; declared now: {declared}" if declared else ""
    return (
        f"{key}: expected a dotted path inside the 'bench' package, got {target!r}; "
        f"{plugins.DECLARE_HINT}{now}"
    )


def _what(obj: object, target: str) -> str:
    """``the function 'x.y'``, ``the class 'x.Y'``, ... for refusals."""
    if inspect.isclass(obj):
        return f"the class {target!r}"
    if inspect.isroutine(obj):
        return f"the function {target!r}"
    if inspect.ismodule(obj):
        return f"the module {target!r}"
    return f"{target!r}, a {type(obj).__name__}"


def build_nested(value, where: str):
    """Build ``_target_`` nodes inside a value: a node, a mapping of nodes, a list of nodes.

    This is how composite models receive their children (``components: {cold: {...}}``);
    a child is checked against the group of ``where`` (a model's children are models).
    Plain data (mappings without ``_target_``, scalars) passes through unchanged.
    """
    if isinstance(value, Mapping):
        if "_target_" in value:
            return build(value, where)
        return {k: build_nested(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [build_nested(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def build(node: Mapping, where: str):
    """Resolve and check ``node['_target_']`` (:func:`resolve`), then construct it.

    Nested ``_target_`` nodes in its values are built first (children of composites),
    each checked the same way before anything is called. A ``_tune_`` block (the
    node's search space, :mod:`bench.tune.space`) is not a constructor argument.

    ``where`` is the config path used in messages (``models.cf_als``). Unknown keys,
    missing required values and constructor errors all become ``ConfigError`` naming it.
    """
    if not isinstance(node, Mapping) or "_target_" not in node:
        raise ConfigError(f"{where}: expected a mapping with a '_target_' key, got {node!r}")
    target = node["_target_"]
    fn = resolve(target, where)
    kwargs = {k: build_nested(v, f"{where}.{k}") for k, v in node.items()
              if k not in NOT_ARGUMENTS}
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
    except ParameterError as exc:
        raise ConfigError(f"{where}.{exc}") from None
    except BenchError:
        raise
    except TypeError as exc:
        raise ConfigError(f"{where}: cannot build {target}: {exc}") from None
