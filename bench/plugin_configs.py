"""Plug-in config folders on Hydra's config search path.

:func:`install` registers :class:`PluginConfigs`, a Hydra ``SearchPathPlugin``, once per
process. Each time Hydra builds its search path (``bench`` runs, ``bench check`` and the
up-front composition check alike) it appends the config folders of the plug-ins declared
*at that moment* (:func:`bench.plugins.config_dirs`), after the built-in config folder:
the first match wins, so a plug-in adds options (``model=[my_model]``) but cannot replace
a built-in one.
"""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin

from bench import plugins

PROVIDER = "recspectrum plug-in"


class PluginConfigs(SearchPathPlugin):
    """Append each declared plug-in's config folder to Hydra's search path."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for folder in plugins.config_dirs():
            search_path.append(provider=PROVIDER, path=f"file://{folder.as_posix()}")


def install() -> None:
    """Register :class:`PluginConfigs` with Hydra (idempotent)."""
    registry = Plugins.instance()
    if PluginConfigs not in registry.discover(SearchPathPlugin):
        registry.register(PluginConfigs)
