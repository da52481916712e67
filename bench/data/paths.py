"""Paths a dataset config names, checked before the file system sees them.

A config value meant as a path may be anything a user typed: a number, a list, a name
with a NUL byte, a name longer than the file system allows. :func:`as_path` refuses
what cannot be a path with one :class:`~bench.errors.ConfigError` line naming the key;
:func:`is_file` and :func:`is_dir` answer ``False`` instead of raising when the
operating system refuses to look the name up (``File name too long``), so the caller's
"does not exist" message is what the user reads.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.errors import ConfigError


def as_path(value: object, what: str) -> Path:
    """``value`` as an expanded :class:`Path`, or a ``ConfigError`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, str | os.PathLike) or not str(value):
        raise ConfigError(f"{what}: expected a file path, got {value!r}")
    if "\x00" in str(value):
        raise ConfigError(f"{what}: expected a file path without NUL bytes, got {value!r}")
    return Path(value).expanduser()


def is_file(path: Path) -> bool:
    """``path.is_file()``, ``False`` when the name cannot even be looked up."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def is_dir(path: Path) -> bool:
    """``path.is_dir()``, ``False`` when the name cannot even be looked up."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False
