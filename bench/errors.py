"""Narrow exception and warning classes for recspectrum.

Every error a user can cause (bad data, bad config, a split that leaves nothing to
evaluate) derives from :class:`BenchError`. The command line turns a ``BenchError``
into one line on stderr and exit code 2; anything else is a bug and keeps its
traceback.

Messages follow one shape: *what* (file, column, key or component), *expected*,
*received*. Build them with :func:`describe` where that helps.
"""

from __future__ import annotations

EXIT_USAGE = 2
"""Exit code for bad input (data, config, command line)."""


class BenchError(Exception):
    """Base class for errors caused by input the user controls (exit code 2)."""


class DataError(BenchError):
    """A data file or table is missing, malformed or violates a declared policy."""


class DatasetMissingError(DataError):
    """A dataset's files are not where the config says; the message says how to get them."""


class ConfigError(BenchError):
    """A config key, value or combination is invalid."""


class ParameterError(ConfigError):
    """A constructor parameter (of a model, splitter or loader) has a bad value.

    Raised by library code that does not know where in a config its parameter came
    from: it names the parameter only. :func:`bench.targets.build` prefixes the config
    path (``models.cf_als``), so the user still reads ``models.cf_als.factors: ...``.
    """

    def __init__(self, param: str, expected: str, received: object):
        super().__init__(describe(param, expected, repr(received)))
        self.param = param
        self.expected = expected
        self.received = received


class SplitError(BenchError):
    """A split cannot be made or breaks a post-condition (e.g. no test users)."""


class EmptySplitError(SplitError):
    """A split leaves a part empty: ``part`` is ``"test"`` or ``"training"``."""

    def __init__(self, message: str, part: str):
        super().__init__(message)
        self.part = part


class EvaluationError(BenchError):
    """Evaluation is impossible as configured (e.g. a test set with no relevant item)."""


class IncompleteRunError(DataError):
    """A run folder was left by a run that stopped or failed before writing results.json."""


class StorageError(BenchError):
    """A file cannot be written: the disk is full, or the folder is read-only or not ours.

    Built from the ``OSError`` by :func:`storage_error`; the message names the path and
    what to do.
    """


#: errno values that mean "the place to write is full or closed", not a bug
STORAGE_ERRNOS = {"ENOSPC": "the disk is full", "EDQUOT": "the disk quota is used up",
                  "EROFS": "the file system is read-only", "EACCES": "permission denied",
                  "EPERM": "operation not permitted", "EFBIG": "the file is too large"}


def storage_error(exc: BaseException) -> StorageError | None:
    """A :class:`StorageError` for an ``OSError`` that says the disk is full or a folder
    cannot be written; ``None`` for anything else."""
    import errno

    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    name = errno.errorcode.get(exc.errno)
    if name not in STORAGE_ERRNOS:
        return None
    where = exc.filename or "a file of the run (under report.dir)"
    hint = ("free some space, or set report.dir to a folder on another disk"
            if name in ("ENOSPC", "EDQUOT", "EFBIG")
            else "make it writable, or set report.dir to a folder you can write")
    return StorageError(f"{where}: cannot write ({STORAGE_ERRNOS[name]}: {exc.strerror}); "
                        f"{hint}")


class IncomparableError(BenchError):
    """Two runs (or a run and a baseline) did not evaluate the same data the same way."""


class TrackingError(BenchError):
    """The experiment tracker cannot be reached or refused a write."""


class DownloadError(BenchError):
    """A dataset download failed or its checksum did not match."""


class NotFittedError(BenchError, RuntimeError):
    """A model was asked to recommend before ``fit`` was called."""


class DataWarning(UserWarning):
    """Rows were removed or changed by a documented policy; the count is in the message."""


def describe(what: str, expected: str, received: object) -> str:
    """Return ``"<what>: expected <expected>, got <received>"`` (the house message shape)."""
    return f"{what}: expected {expected}, got {received}"
