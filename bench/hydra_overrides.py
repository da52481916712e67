"""Command-line overrides of Hydra's own settings that would run code, refused up front.

Hydra instantiates ``hydra.callbacks`` entries (any ``_target_``, with config-chosen
arguments) and hands ``hydra.job_logging`` / ``hydra.hydra_logging`` to
``logging.config.dictConfig``, whose ``class`` and ``()`` keys import and call anything.
Neither goes through :func:`bench.targets.build`, so :func:`code_override_problem` checks
the command line before Hydra sees it:

* a callback override is accepted only when every ``_target_`` in it is a Hydra
  ``Callback`` subclass inside a declared plug-in (:mod:`bench.plugins`); deleting
  callbacks (``~hydra.callbacks``) is always fine;
* a logging override may not name a ``class`` or ``()`` factory;
* ``hydra.searchpath`` may not be set: a config folder found that way could set
  callbacks; ``BENCH_CONFIG_DIR`` and plug-in config folders are the ways to add configs.

Overrides are read with Hydra's own parser, so ``+hydra={callbacks: ...}`` and
``hydra.callbacks={x: {...}}`` are seen as well as ``+hydra.callbacks.x._target_=...``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

from bench import plugins
from bench.errors import ConfigError

CALLBACKS = "hydra.callbacks"
SEARCHPATH = "hydra.searchpath"
LOGGING = ("hydra.job_logging", "hydra.hydra_logging")
#: dictConfig keys that import and call what they name.
LOGGING_FACTORIES = {"class", "()"}


def code_override_problem(argv: list[str]) -> str | None:
    """One line saying which override would run code from the command line, or ``None``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue  # Hydra flags, and deletions without a value (nothing to run)
        try:
            (override,) = parser.parse_overrides([arg])
        except HydraException:
            continue  # Hydra reports it; an override it cannot parse is never applied
        key = override.key_or_group
        if override.is_delete() or not plugins.within(key, "hydra"):
            continue
        if key == SEARCHPATH or (key == "hydra" and isinstance(override.value(), dict)
                                 and "searchpath" in override.value()):
            return (f"{SEARCHPATH}: config folders from the command line could set "
                    f"{CALLBACKS}; expected BENCH_CONFIG_DIR or a declared plug-in's config "
                    "folder instead")
        for path, value in _leaves(key, override.value()):
            problem = _callback_problem(path, value, arg) or _logging_problem(path)
            if problem:
                return problem
    return None


def _leaves(path: str, value) -> Iterator[tuple[str, object]]:
    """``(dotted path, value)`` for every leaf of a parsed override value."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(f"{path}.{k}", v)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(f"{path}.{i}", v)
    else:
        yield path, value


def _callback_problem(path: str, value, arg: str) -> str | None:
    if not plugins.within(path, CALLBACKS) or not path.endswith("._target_"):
        return None  # not a callback target: a callback's parameters build nothing
    refused = (
        f"{path}: a callback from the command line runs code; expected a Hydra Callback "
        f"class inside a declared plug-in ({plugins.ENV_VAR} or the "
        f"'{plugins.ENTRY_POINT_GROUP}' entry point), got "
        + (repr(value) if isinstance(value, str) else f"a {type(value).__name__} in {arg}")
    )
    if not isinstance(value, str) or any(part.startswith("_") for part in value.split(".")):
        return refused
    owner = plugins.owner(value.rpartition(".")[0])
    if owner is None:
        return refused
    plugins.load(owner)
    from hydra.experimental.callback import Callback

    module, _, attr = value.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr, None)
    except ImportError as exc:
        raise ConfigError(f"{path}: cannot import {module!r}: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, Callback)):
        return f"{path}: expected a subclass of hydra.experimental.callback.Callback, got {value!r}"
    return None


def _logging_problem(path: str) -> str | None:
    if not any(plugins.within(path, root) for root in LOGGING):
        return None
    named = [part for part in path.split(".") if part in LOGGING_FACTORIES]
    if named:
        return (f"{path}: a logging '{named[0]}' key imports and calls what it names; "
                "expected logging settings without factories (levels, formats, handlers "
                "already configured)")
    return None
