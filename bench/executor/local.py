"""Executors run cells. The run layer hands an executor a list of cells and their
inputs and gets, in the same order, each cell's output or failure.

:class:`LocalExecutor` (``executor=local``, the default) runs them one after another in
this process. Another executor only has to run :func:`bench.cells.run_cell` on each
(cell, inputs) pair somewhere and return what it returned: inputs are plain data and
arrays, outputs are files in the run folder plus a small record — so a distributed
executor ships a cell, and a retried cell simply runs again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from bench.cells import Cell, CellEnv, CellInputs, CellOutput, run_cell
from bench.record import ModelFailure

__all__ = ["Executor", "LocalExecutor"]

#: What an executor calls for each cell; ``run_cell`` unless a caller substitutes one.
CellFunction = Callable[[Cell, CellInputs, CellEnv], CellOutput | ModelFailure]


@runtime_checkable
class Executor(Protocol):
    """Runs cells; ``outputs[i]`` belongs to ``cells[i]``."""

    def run(self, cells: Sequence[Cell], inputs: Sequence[CellInputs],
            env: CellEnv) -> list[CellOutput | ModelFailure]: ...


class LocalExecutor:
    """Runs cells sequentially in this process (the default)."""

    def __init__(self, cell_function: CellFunction = run_cell):
        self.cell_function = cell_function

    def run(self, cells: Sequence[Cell], inputs: Sequence[CellInputs],
            env: CellEnv) -> list[CellOutput | ModelFailure]:
        if len(cells) != len(inputs):
            raise ValueError(f"{len(cells)} cells but {len(inputs)} inputs")
        return [self.cell_function(c, i, env) for c, i in zip(cells, inputs, strict=True)]
