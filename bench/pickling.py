"""Read-only mappings travel with the data they guard.

``Interactions.drops``, ``Split.params`` and ``Split.info`` are ``MappingProxyType``
views, which the standard library cannot pickle — and a cell's inputs must pickle, so an
executor can ship them to another process or machine. Importing this module registers a
reducer that pickles a proxy as a read-only proxy over a copy of its contents.
"""

from __future__ import annotations

import copyreg
from types import MappingProxyType

__all__ = ["read_only"]


def read_only(contents: dict) -> MappingProxyType:
    """A read-only view of ``contents`` (what an unpickled proxy becomes)."""
    return MappingProxyType(contents)


def _reduce(proxy: MappingProxyType):
    return read_only, (dict(proxy),)


copyreg.pickle(MappingProxyType, _reduce)
