"""The executor interface: what the run layer hands an executor, and what it gets back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from bench.cells import Cell, CellEnv, CellInputs, CellOutput
from bench.record import ModelFailure

__all__ = ["CellFunction", "Executor"]

#: What an executor calls for each cell; ``run_cell`` unless a caller substitutes one.
CellFunction = Callable[[Cell, CellInputs, CellEnv], CellOutput | ModelFailure]


@runtime_checkable
class Executor(Protocol):
    """Runs cells; ``outputs[i]`` belongs to ``cells[i]``."""

    def run(self, cells: Sequence[Cell], inputs: Sequence[CellInputs],
            env: CellEnv) -> list[CellOutput | ModelFailure]: ...
