"""Atomic file writes: a reader (or a crash) never sees half a file.

Every report, result, baseline and figure is written through :func:`atomic_write`: the
content goes to a temporary file in the target's folder, is flushed to disk, and then
replaces the target with ``os.replace`` (atomic on POSIX and Windows within one file
system). On any failure the temporary file is removed and the old target is untouched;
an ``OSError`` that names no file (a full disk seen at ``fsync``) is raised again naming
the target, so the message says which file could not be written.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text", "json_text", "write_json"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file, then move it onto ``path``.

    Parent folders are created. The file gets the usual permissions (``0o666`` minus the
    umask), not the owner-only mode of ``tempfile.mkstemp``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno is not None and exc.filename is None:  # say which file could not be
            raise OSError(exc.errno, exc.strerror, str(path)) from exc  # written
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike[str], obj: object) -> Path:
    """Write ``obj`` as indented JSON atomically; numpy scalars, arrays, paths and tuples
    become their JSON equivalents (floats round-trip exactly; NaN is written as ``NaN``)."""
    return atomic_write_text(path, json_text(obj))


def json_text(obj: object) -> str:
    """The text :func:`write_json` writes for ``obj``."""
    return json.dumps(obj, indent=2, default=_plain, allow_nan=True)


def _plain(obj: object) -> object:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
