"""Executors run cells. The run layer hands an executor a list of cells and their
inputs and gets, in the same order, each cell's output or failure.

* ``local.py`` — :class:`LocalExecutor` (``executor=local``, the default): one after
  another in this process;
* ``ray.py`` — ``RayExecutor`` (``executor=ray``, the ``recspectrum[ray]`` extra): each
  cell a Ray task, shared inputs in the object store once, tracking replayed by the
  driver (:mod:`bench.tracking.recording`);
* ``factory.py`` — :func:`build_executor`: the executor the ``executor`` config group
  names.

An executor only has to run :func:`bench.cells.run_cell` on each (cell, inputs) pair
somewhere and return what it returned: inputs are plain data and arrays, outputs are
files in the run folder plus a small record — so a distributed executor ships a cell,
and a retried cell simply runs again. Importing this package never imports Ray.
"""

from bench.executor.base import CellFunction, Executor
from bench.executor.factory import build_executor
from bench.executor.local import LocalExecutor

__all__ = ["CellFunction", "Executor", "LocalExecutor", "build_executor"]
