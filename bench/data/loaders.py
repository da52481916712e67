"""The registry of dataset loaders: the only functions a config may call.

A ``dataset`` config names its loader with ``_target_``. Configs may build classes of
the kind their group expects, and nothing else; dataset loaders are the one exception
because they are plain functions, so each one says so with :func:`dataset_loader`.
:func:`bench.targets.build` refuses a ``dataset._target_`` that is not registered here.

Contract of a loader: keyword arguments only, returns a :class:`bench.data.dataset.Dataset`,
and reads (never writes) the files its arguments name; a cache folder an argument names
(``synthetic``'s ``cache_dir``, :mod:`bench.data.cache`) is the one place a loader may
write, and what it returns does not depend on it. A plug-in registers its own loaders
with the same decorator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

_LOADERS: dict[str, Callable] = {}


def dataset_loader(fn: F) -> F:
    """Register ``fn`` as a dataset loader (usable as ``dataset._target_``); return ``fn``."""
    _LOADERS[f"{fn.__module__}.{fn.__qualname__}"] = fn
    return fn


def is_dataset_loader(obj: object) -> bool:
    """Is ``obj`` exactly a callable registered with :func:`dataset_loader`?"""
    name = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
    return _LOADERS.get(name) is obj
