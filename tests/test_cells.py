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


# ------------------------------------------------------------------ topk.parquet
def _old_topk_frame(model, top, user_ids, label):
    """What topk.parquet held before it was written from Arrow arrays: lists_frame, with
    a single-component model's rows labelled with its config name, through to_parquet."""
    frame = model.lists_frame(top, user_ids)
    if top.sources is None:
        frame["source"] = label
    return frame


@pytest.mark.parametrize("ids", ["int", "str"])
@pytest.mark.parametrize("sources", [False, True])
def test_topk_parquet_reads_back_as_the_lists_frame_did(tmp_path, ids, sources):
    import numpy as np
    import pyarrow.parquet as pq

    from bench.cells import lists_table
    from bench.data.interactions import Interactions
    from bench.models.base import TopK
    from bench.models.rule.popular import PopularityRecommender

    rng = np.random.default_rng(3)
    users = np.repeat(np.arange(40), 5)
    items = rng.integers(0, 30, users.size)
    frame = pd.DataFrame({"user_id": users, "item_id": items}).drop_duplicates()
    if ids == "str":
        frame = frame.assign(user_id="u" + frame.user_id.astype(str),
                             item_id="i" + frame.item_id.astype(str))
    train = Interactions.from_frame(frame, source="t.csv")
    model = PopularityRecommender().fit(train)
    codes = np.arange(train.n_users)
    top = model.recommend_codes(codes, 7)
    top.items[3, 4:] = -1  # short lists, an empty one
    top.items[5, :] = -1
    if sources:
        src = rng.integers(0, 3, top.items.shape).astype(np.int16)
        top = TopK(top.users, top.items, top.scores, src, ("a", "b", "c"))
    uid = train.user_ids[codes]
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    _old_topk_frame(model, top, uid, "rule_popular").to_parquet(old, index=False)
    pq.write_table(lists_table(model, top, uid, "rule_popular"), new)
    before, after = pd.read_parquet(old), pd.read_parquet(new)
    assert len(after) == int((top.items >= 0).sum()) > 0
    assert list(after.dtypes) == list(before.dtypes)
    assert after.equals(before)
    assert set(after["source"]) == ({"a", "b", "c"} if sources else {"rule_popular"})
