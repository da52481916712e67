"""``executor=local`` (the default): cells run one after another in this process."""

from __future__ import annotations

from collections.abc import Sequence

from bench.cells import Cell, CellEnv, CellInputs, CellOutput, run_cell
from bench.executor.base import CellFunction
from bench.record import ModelFailure

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """Runs cells sequentially in this process (the default)."""

    def __init__(self, cell_function: CellFunction = run_cell):
        self.cell_function = cell_function

    def run(self, cells: Sequence[Cell], inputs: Sequence[CellInputs],
            env: CellEnv) -> list[CellOutput | ModelFailure]:
        if len(cells) != len(inputs):
            raise ValueError(f"{len(cells)} cells but {len(inputs)} inputs")
        return [self.cell_function(c, i, env) for c, i in zip(cells, inputs, strict=True)]
