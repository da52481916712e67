"""recspectrum: an offline evaluation and benchmarking harness for recommender systems.

The public Python API (imported lazily, so ``import bench`` stays cheap for the CLI):

* :func:`run` — run an experiment from command-line style overrides or a config;
* :func:`evaluate` — evaluate a model object you constructed, next to the run's models;
* :func:`compose` — the composed config, exactly as ``bench`` builds it;
* :class:`Result` — a finished run: means with CIs, per-user frame, lists, card;
* :class:`Recommender` — the base class of every model (write ``_fit`` and ``_score``);
* :func:`check_recommender` — the conformance checks every built-in model passes.

See ``docs/user-guide.md`` and ``docs/bring-your-own.md``.
"""

from __future__ import annotations

import importlib
import os

# numpy asks the kernel for transparent huge pages for every array of 4 MB or more, unless
# NUMPY_MADVISE_HUGEPAGE=0 (read once, when numpy is imported; the `bench` command imports
# this package first). A run's large arrays are mostly fresh temporaries, and on the
# machines we measure a fresh 200 MB array costs about 0.5 s with huge pages against
# 0.12 s without (docs/user-guide.md, "Performance"). Numbers do not depend on it; a
# value the user set wins.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

#: public name -> module that defines it
_EXPORTS = {
    "run": "bench.api",
    "evaluate": "bench.api",
    "compose": "bench.api",
    "Result": "bench.api",
    "Recommender": "bench.models.base",
    "check_recommender": "bench.testing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
