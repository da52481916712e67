"""``executor=local`` (the default): cells run one after another in this process.

Cells of one batch share fits (:mod:`bench.models.fitshare`): a model fitted with the
same hyperparameters on the same training rows as earlier in the batch — ``cf_als`` and
the ALS children of the hybrids — takes that fit's learned state instead of fitting
again. The sharing is planned from the batch's cells before they run and holds a
fitted state only until the last fit that can use it; the numbers are the same as
without it (``LocalExecutor(share_fits=False)``).
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.cells import Cell, CellEnv, CellInputs, CellOutput, build_model, run_cell
from bench.errors import BenchError
from bench.executor.base import CellFunction
from bench.models.fitshare import SharedFits, sharing
from bench.record import ModelFailure

__all__ = ["LocalExecutor", "plan_shared_fits"]


class LocalExecutor:
    """Runs cells sequentially in this process (the default).

    Args:
        cell_function: what runs each cell (``run_cell``).
        share_fits: let cells of a batch share equal fits (see the module docstring);
            off fits every model itself, for comparison.
    """

    def __init__(self, cell_function: CellFunction = run_cell, share_fits: bool = True):
        self.cell_function = cell_function
        self.share_fits = share_fits

    def run(self, cells: Sequence[Cell], inputs: Sequence[CellInputs],
            env: CellEnv) -> list[CellOutput | ModelFailure]:
        if len(cells) != len(inputs):
            raise ValueError(f"{len(cells)} cells but {len(inputs)} inputs")
        shared = plan_shared_fits(cells, inputs) if self.share_fits else None
        outputs = []
        with sharing(shared):
            for cell, cell_inputs in zip(cells, inputs, strict=True):
                if shared is not None:
                    shared.where = cell.label
                outputs.append(self.cell_function(cell, cell_inputs, env))
        return outputs


def plan_shared_fits(cells: Sequence[Cell], inputs: Sequence[CellInputs]) -> SharedFits:
    """The fits these cells will make (each cell's model on its split's training rows),
    planned so that equal ones are made once. A config that does not build is left out:
    its cell records the failure."""
    fits = []
    for cell, cell_inputs in zip(cells, inputs, strict=True):
        try:
            model = build_model(cell.model, cell_inputs.model_cfg)
        except BenchError:
            continue
        fits.append((model, cell_inputs.evaluation.split.train))
    return SharedFits.plan(fits)
