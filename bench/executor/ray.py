"""``executor=ray``: every cell a Ray task, on a local cluster or an existing one.

The driver (the process running ``bench``) does four things:

1. puts each distinct shared, read-only input — a fold's evaluation context, a
   protocol's evaluation, the labels and shared protocols of a fold, the item and user
   features — into Ray's object store **once** (``ray.put``), whatever the number of
   cells that read it, and ships each cell its small part (the model config, settings)
   plus references;
2. submits one task per cell (``cpus_per_cell`` CPUs, ``max_retries`` retries when its
   worker dies), at most ``max_concurrent_cells`` at a time; the task runs
   :func:`bench.cells.run_cell` with BLAS/OpenMP threads pinned to ``cpus_per_cell``, and
   writes the cell's files into the run folder (which must be the same path on every
   node: a shared filesystem on a real cluster);
3. announces each cell to the observers as it finishes (progress): observers cannot
   cross processes, so a cell's inner stages (fit, recommend) are not announced;
4. replays each cell's tracking calls, recorded in the task
   (:mod:`bench.tracking.recording`), onto the run's tracker in cell order, so MLflow
   holds what ``executor=local`` would have logged, from one writer, and a retried cell
   is logged once; the cell's ``done.json`` then gets the real run id.

Outputs come back in cell order. A cell whose worker died more often than
``max_retries`` becomes a :class:`~bench.record.ModelFailure` (the run goes on, as with
a model that raised); an error a task raised (a full disk) stops the run. A cluster this
executor started stays up for later runs in the same process (Ray shuts it down at exit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import ray

from bench.cells import (
    Cell,
    CellEnv,
    CellInputs,
    CellOutput,
    MainEvaluation,
    record_failure,
    run_cell,
)
from bench.config import EvalSettings
from bench.errors import ConfigError
from bench.executor.base import CellFunction
from bench.observe import NULL_OBSERVER
from bench.record import ModelFailure, write_cell
from bench.tracking.recording import RecordedCall, RecordingTracker, replay

log = logging.getLogger("bench")

__all__ = ["RayExecutor"]

#: environment variables that size the thread pools of BLAS, OpenMP and numba
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


@dataclass(frozen=True)
class _Shell:
    """A cell's own inputs; what it shares with other cells travels as object refs."""

    model_cfg: dict
    main: bool
    settings: EvalSettings | None = None
    curve_k: int | None = None


@dataclass(frozen=True)
class _Done:
    """What a task returns: the cell's output, its tracking calls, its wall seconds."""

    output: CellOutput | ModelFailure
    calls: list[RecordedCall]
    seconds: float


def _shell_and_shared(inputs: CellInputs) -> tuple[_Shell, list[object]]:
    """Split a cell's inputs into its own part and the objects it shares with others."""
    ev = inputs.evaluation
    if isinstance(ev, MainEvaluation):
        shell = _Shell(inputs.model_cfg, True, ev.settings, ev.curve_k)
        shared = [ev.ctx, ev.labels, ev.protocols]
    else:
        shell = _Shell(inputs.model_cfg, False)
        shared = [ev]
    return shell, [*shared, inputs.item_features, inputs.user_features]


def _inputs(shell: _Shell, shared: Sequence[object]) -> CellInputs:
    """:func:`_shell_and_shared` undone, in the worker."""
    *parts, item_features, user_features = shared
    if shell.main:
        ctx, labels, protocols = parts
        ev = MainEvaluation(ctx, shell.settings, shell.curve_k, labels, protocols)
    else:
        ev = parts[0]
    return CellInputs(model_cfg=shell.model_cfg, evaluation=ev, item_features=item_features,
                      user_features=user_features)


def _cell_task(cell_function: CellFunction, cell: Cell, shell: _Shell, env: CellEnv,
               threads: int, *shared: object) -> _Done:
    """The Ray task: one cell, its tracking recorded, its threads pinned."""
    from threadpoolctl import threadpool_limits

    tracker = RecordingTracker()
    t = time.perf_counter()
    with threadpool_limits(limits=threads):
        output = cell_function(cell, _inputs(shell, shared), replace(env, tracker=tracker))
    return _Done(output, tracker.calls, time.perf_counter() - t)


class RayExecutor:
    """Runs each cell as a Ray task (``executor=ray``; see the module docstring).

    Args:
        address: the cluster to join (``auto``, ``ray://host:10001``, ``host:6379``);
            None = start a local cluster in this process.
        num_cpus: CPUs of that local cluster (None = every core).
        cpus_per_cell: CPUs a cell reserves, and the BLAS/OpenMP threads it may use.
        max_concurrent_cells: cells in flight at once (None = as the CPUs allow).
        max_retries: times a cell runs again when its worker dies.
        cell_function: what each task runs (``run_cell``; tests substitute a wrapper).
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 cpus_per_cell: int = 1, max_concurrent_cells: int | None = None,
                 max_retries: int = 3, cell_function: CellFunction = run_cell):
        self.address = address
        self.num_cpus = num_cpus
        self.cpus_per_cell = cpus_per_cell
        self.max_concurrent_cells = max_concurrent_cells
        self.max_retries = max_retries
        self.cell_function = cell_function
        #: id(object) -> (object, its ref): each shared input goes to the store once
        self._refs: dict[int, tuple[object, ray.ObjectRef]] = {}

    @property
    def n_shared(self) -> int:
        """Distinct shared inputs this executor has put in the object store (each once)."""
        return len(self._refs)

    # ------------------------------------------------------------------ running
    def run(self, cells: Sequence[Cell], inputs: Sequence[CellInputs],
            env: CellEnv) -> list[CellOutput | ModelFailure]:
        if len(cells) != len(inputs):
            raise ValueError(f"{len(cells)} cells but {len(inputs)} inputs")
        if not cells:
            return []
        self.connect()
        shipped = replace(env, tracker=None, observers=NULL_OBSERVER,
                          out=Path(env.out).resolve())
        task = ray.remote(_cell_task).options(
            num_cpus=self.cpus_per_cell, max_retries=self.max_retries, retry_exceptions=False,
            runtime_env={"env_vars": dict.fromkeys(THREAD_VARIABLES, str(self.cpus_per_cell))},
        )
        done: list[_Done | ModelFailure | None] = [None] * len(cells)
        outputs: list[CellOutput | ModelFailure] = []
        pending: dict[ray.ObjectRef, int] = {}
        limit = self.max_concurrent_cells or len(cells)
        submitted = 0
        try:
            while len(outputs) < len(cells):
                while submitted < len(cells) and len(pending) < limit:  # in cell order
                    shell, shared = _shell_and_shared(inputs[submitted])
                    pending[task.remote(self.cell_function, cells[submitted], shell, shipped,
                                        self.cpus_per_cell, *map(self._ref, shared))] = submitted
                    submitted += 1
                ready, _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(ready[0])
                done[i] = self._collect(ready[0], cells[i], env)
                while len(outputs) < len(cells) and done[len(outputs)] is not None:
                    outputs.append(self._finish(cells[len(outputs)], done[len(outputs)], env))
        except BaseException:
            for ref in pending:  # a run that stops leaves no cell running
                ray.cancel(ref, force=True)
            raise
        return outputs

    def connect(self) -> None:
        """Join the configured cluster, or start a local one; a process already joined to
        a cluster keeps it (a second run in the same process reuses it).

        Raises:
            ConfigError: the cluster at ``address`` cannot be joined (one line, exit 2).
        """
        if ray.is_initialized():
            return
        if self.address is None:
            ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False)
            log.info("ray: started a local cluster with %s CPUs",
                     ray.cluster_resources().get("CPU"))
            return
        try:
            ray.init(address=self.address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"executor.address: expected a running Ray cluster, got none at "
                f"{self.address!r} ({first}); start one (ray start --head) or set "
                f"executor.address=null to start a local cluster"
            ) from None
        log.info("ray: joined the cluster at %s (%s CPUs)", self.address,
                 ray.cluster_resources().get("CPU"))

    def _ref(self, obj: object) -> object:
        """``obj`` in the object store, put once; None and empty tuples travel inline."""
        if obj is None or (isinstance(obj, tuple) and not obj):
            return obj
        if id(obj) not in self._refs:
            self._refs[id(obj)] = (obj, ray.put(obj))  # holding obj keeps its id unique
        return self._refs[id(obj)][1]

    def _collect(self, ref: ray.ObjectRef, cell: Cell, env: CellEnv) -> _Done | ModelFailure:
        """A finished task's result, announced as a ``cell`` stage; a cell whose worker
        died once more than it may be retried is a failure of that cell."""
        info = {"model": cell.model, "protocol": cell.protocol, "fold": cell.fold,
                **({} if cell.seed is None else {"seed": cell.seed})}
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            # the task raised (a full disk): the run stops as it would locally, with the
            # task's own exception (its errno and file name intact)
            cause = getattr(exc, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from exc
            raise
        except ray.exceptions.RayError as exc:
            result = record_failure(exc, cell, env, child=None)
        seconds = result.seconds if isinstance(result, _Done) else 0.0
        for observer in env.observers.observers:
            observer.start("cell", info)
        for observer in reversed(env.observers.observers):
            observer.end("cell", info, seconds, True)
        return result

    @staticmethod
    def _finish(cell: Cell, done: _Done | ModelFailure, env: CellEnv
                ) -> CellOutput | ModelFailure:
        """Replay the cell's tracking onto the run's tracker; its result and ``done.json``
        then carry the real run id."""
        if isinstance(done, ModelFailure):
            return done
        ids = replay(done.calls, env.tracker)
        out = done.output
        if isinstance(out, CellOutput) and out.result is not None and out.result.run_id in ids:
            result = replace(out.result, run_id=ids[out.result.run_id])
            if cell.key:
                write_cell(cell.folder(env.out), result)
            out = replace(out, result=result)
        return out
