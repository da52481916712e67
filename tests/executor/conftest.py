"""One local Ray cluster per test module (``ray_cluster``), started only by the modules
that ask for it. Without Ray the tests skip, naming what is missing; with
``BENCH_REQUIRE_RAY_TESTS=1`` (set by ``.ci/run``) they fail instead
(``tests/executor/helpers.py``), so CI never passes without running them."""

from __future__ import annotations

import os

import pytest

from tests.executor.helpers import require_ray
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def ray_cluster():
    """A 2-CPU local cluster for the module; its workers import ``tests`` (the cell hooks)
    from this checkout, as the driver does."""
    require_ray()
    import ray

    with pytest.MonkeyPatch.context() as mp:
        path = os.environ.get("PYTHONPATH")
        mp.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *([path] if path else [])]))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
