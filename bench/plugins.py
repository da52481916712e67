"""Plug-ins: code outside ``bench`` that configs may use, declared by its owner.

A config can only build classes from ``bench`` and from the module prefixes declared here
(see :mod:`bench.targets`). There are two ways to declare a prefix:

* an installed package declares an entry point in the group ``recspectrum.plugins``;
  the entry point's value names the module prefix (``myrec = "myrec"`` in
  ``[project.entry-points."recspectrum.plugins"]``);
* code that is not packaged is declared with the environment variable ``BENCH_PLUGINS``:
  comma-separated module prefixes importable from ``PYTHONPATH`` (``BENCH_PLUGINS=myrec``).

A prefix covers the module of that name and every module below it (``myrec`` covers
``myrec.models``, not ``myrec_extra``). Declared plug-ins are imported when checked, so a
prefix that cannot be imported fails with one line naming it.

A plug-in may ship config folders next to the built-in ones: a ``configs`` folder inside
the prefix's package (``myrec/configs/model/my_model.yaml``), or the folder named by a
module-level ``RECSPECTRUM_CONFIGS`` string or path. Hydra searches these after the
built-in configs (:mod:`bench.plugin_configs`), so ``model=[my_model,rule_popular]`` works
and a plug-in cannot replace a built-in config.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ConfigError

ENTRY_POINT_GROUP = "recspectrum.plugins"
ENV_VAR = "BENCH_PLUGINS"
#: Where a config may build from when no plug-in is declared.
BUILTIN_PREFIX = "bench"
#: The hint appended to every refusal of code outside ``bench`` and the plug-ins.
DECLARE_HINT = (
    f"other code must be declared as a plug-in ({ENV_VAR} or the '{ENTRY_POINT_GROUP}' "
    "entry point)"
)
#: Module attribute a plug-in may set to point at its config folder.
CONFIGS_ATTRIBUTE = "RECSPECTRUM_CONFIGS"

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


@dataclass(frozen=True)
class Plugin:
    """One declared module prefix and where the declaration came from."""

    prefix: str
    source: str  # "BENCH_PLUGINS" or "entry point 'name' (distribution)"


def declared() -> list[Plugin]:
    """Every declared plug-in, entry points first, then ``BENCH_PLUGINS``; nothing is imported.

    Raises:
        ConfigError: a declared prefix is not a dotted Python name (or is ``bench`` itself).
    """
    found: list[Plugin] = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(getattr(ep, "dist", None), "name", None)
        source = f"entry point {ep.name!r}" + (f" ({dist})" if dist else "")
        found.append(Plugin(_check_prefix(ep.value.partition(":")[0].strip(), source), source))
    for part in os.environ.get(ENV_VAR, "").split(","):
        if part.strip():
            found.append(Plugin(_check_prefix(part.strip(), ENV_VAR), ENV_VAR))
    unique: dict[str, Plugin] = {}
    for plugin in found:
        unique.setdefault(plugin.prefix, plugin)
    return list(unique.values())


def _check_prefix(prefix: str, source: str) -> str:
    if not _DOTTED.fullmatch(prefix):
        raise ConfigError(
            f"{source}: expected a module prefix (a dotted Python name such as 'myrec' or "
            f"'myrec.models'), got {prefix!r}"
        )
    if within(prefix, BUILTIN_PREFIX):
        raise ConfigError(
            f"{source}: expected a module prefix outside 'bench' (bench is always allowed), "
            f"got {prefix!r}"
        )
    return prefix


def within(module: str, prefix: str) -> bool:
    """Is ``module`` the module ``prefix`` or one below it (dotted components, not text)?"""
    return module == prefix or module.startswith(prefix + ".")


def owner(module: str) -> Plugin | None:
    """The declared plug-in whose prefix covers ``module``; ``None`` when none does."""
    return next((p for p in declared() if within(module, p.prefix)), None)


def load(plugin: Plugin):
    """Import the plug-in's prefix module; one ``ConfigError`` line naming it if that fails."""
    try:
        return importlib.import_module(plugin.prefix)
    except Exception as exc:  # any import failure of outside code is the user's to fix
        where = "PYTHONPATH" if plugin.source == ENV_VAR else "the installed packages"
        raise ConfigError(
            f"{plugin.source}: cannot import plug-in module {plugin.prefix!r} "
            f"({type(exc).__name__}: {exc}); expected a module importable from {where}"
        ) from None


def load_all() -> list[Plugin]:
    """Check every declaration and import every declared prefix (fails on the first bad one)."""
    plugins = declared()
    for plugin in plugins:
        load(plugin)
    return plugins


def config_dirs() -> list[Path]:
    """The config folders the declared plug-ins ship, in declaration order.

    A folder is ``RECSPECTRUM_CONFIGS`` of the prefix module when set (it must exist), else
    the ``configs`` folder of the prefix's package when there is one.
    """
    dirs: list[Path] = []
    for plugin in declared():
        module = load(plugin)
        named = getattr(module, CONFIGS_ATTRIBUTE, None)
        if named is not None:
            folder = Path(named)
            if not folder.is_dir():
                raise ConfigError(
                    f"{plugin.prefix}.{CONFIGS_ATTRIBUTE}: expected an existing config folder, "
                    f"got {str(folder)!r}"
                )
            dirs.append(folder.resolve())
            continue
        for location in getattr(module, "__path__", None) or ():
            candidate = Path(location) / "configs"
            if candidate.is_dir():
                dirs.append(candidate.resolve())
                break
    return dirs
