"""Building the executor the ``executor`` config group names (``configs/executor/``)."""

from __future__ import annotations

from bench.config import ExecutorSettings
from bench.errors import ConfigError
from bench.executor.base import Executor
from bench.executor.local import LocalExecutor

__all__ = ["build_executor"]


def build_executor(settings: ExecutorSettings) -> Executor:
    """``executor=local``: a :class:`LocalExecutor`; ``executor=ray``: a ``RayExecutor``
    with the group's keys. Ray is imported here only, when it is asked for.

    The Ray executor joins (or starts) its cluster here, before any data is read.

    Raises:
        ConfigError: ``executor=ray`` without Ray installed, or a cluster that cannot be
            joined (one line, exit 2).
    """
    if settings.kind == "local":
        return LocalExecutor()
    try:
        import ray  # noqa: F401  (the optional extra: only checked, used in bench.executor.ray)
    except ImportError:
        raise ConfigError(
            "executor.kind: expected Ray to be installed for executor=ray, got no module "
            "'ray'; install recspectrum[ray] (pip install 'recspectrum[ray]') or use "
            "executor=local"
        ) from None
    from bench.executor.ray import RayExecutor

    executor = RayExecutor(address=settings.address, num_cpus=settings.num_cpus,
                           cpus_per_cell=settings.cpus_per_cell,
                           max_concurrent_cells=settings.max_concurrent_cells,
                           max_retries=settings.max_retries)
    executor.connect()  # before any data is read: an unreachable cluster fails fast
    return executor
