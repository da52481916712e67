"""Cells are independent units: any executor that runs run_cell on each (cell, inputs)
pair — in another order, after a pickle round trip, in other processes — gives the same
numbers bit for bit."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
import pytest

from bench.cells import run_cell
from bench.executor import Executor, LocalExecutor
from bench.runner import run_experiment
from bench.tracking import NullTracker
from tests.helpers import report_cfg


class ReversedExecutor:
    """Runs a wave's cells last to first."""

    def run(self, cells, inputs, env):
        out = [run_cell(c, i, env) for c, i in reversed(list(zip(cells, inputs, strict=True)))]
        return out[::-1]


class PickledExecutor:
    """Ships every cell and its inputs through pickle, as a distributed executor would."""

    def __init__(self):
        self.shipped = 0

    def run(self, cells, inputs, env):
        out = []
        for c, i in zip(cells, inputs, strict=True):
            c2, i2 = pickle.loads(pickle.dumps((c, i)))
            self.shipped += 1
            out.append(run_cell(c2, i2, env))
        return out


def _in_subprocess(args):
    cell, inputs, env = pickle.loads(args)
    return pickle.dumps(run_cell(cell, inputs, env))


class ProcessExecutor:
    """Runs each wave's cells in worker processes (inputs and outputs pickled)."""

    def run(self, cells, inputs, env):
        payloads = [pickle.dumps((c, i, env)) for c, i in zip(cells, inputs, strict=True)]
        with ProcessPoolExecutor(max_workers=2) as pool:
            return [pickle.loads(r) for r in pool.map(_in_subprocess, payloads)]


def frames(cfg, out, executor):
    result = run_experiment(cfg, output_dir=out, tracker=NullTracker(), executor=executor)
    assert not result.failures
    cold = result.cold_start.sort_values(["protocol", "level", "model", "user_id"])
    return result.per_user_frame(), cold.reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, ratings_csv_module):
    out = tmp_path_factory.mktemp("ref")
    return frames(report_cfg(ratings_csv_module), out, LocalExecutor())


@pytest.fixture(scope="module")
def ratings_csv_module(tmp_path_factory):
    from tests.helpers import write_ratings_csv

    return write_ratings_csv(tmp_path_factory.mktemp("data") / "ratings.csv")


def test_executors_are_an_interface():
    assert isinstance(LocalExecutor(), Executor)
    assert isinstance(ReversedExecutor(), Executor)


@pytest.mark.parametrize("make", [ReversedExecutor, PickledExecutor])
@pytest.mark.slow
def test_any_order_and_a_pickle_round_trip_give_the_same_numbers(make, reference,
                                                                  ratings_csv_module, tmp_path):
    executor = make()
    per_user, cold = frames(report_cfg(ratings_csv_module), tmp_path / "o", executor)
    pd.testing.assert_frame_equal(per_user, reference[0], check_exact=True)
    pd.testing.assert_frame_equal(cold, reference[1], check_exact=True)
    if isinstance(executor, PickledExecutor):
        assert executor.shipped == 9  # 3 models x (1 fold + 2 cold-start protocols)


@pytest.mark.slow
def test_cells_run_in_other_processes_give_the_same_numbers(reference, ratings_csv_module,
                                                            tmp_path):
    per_user, cold = frames(report_cfg(ratings_csv_module), tmp_path / "p", ProcessExecutor())
    pd.testing.assert_frame_equal(per_user, reference[0], check_exact=True)
    pd.testing.assert_frame_equal(cold, reference[1], check_exact=True)
