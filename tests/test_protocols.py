"""The cold-start protocols: the temporal user sweep, and one fit shared with the main split."""

import pandas as pd
import pytest

from bench.cells import CellEnv
from bench.config import load_settings
from bench.executor import LocalExecutor
from bench.observe import Observers, StageTimer
from bench.protocols import protocol_cells, protocol_evaluations
from bench.runner import run_experiment
from bench.splits.audit import audit_split
from bench.targets import build
from bench.tracking import MemoryTracker
from tests.helpers import EASE, POP, make_cfg, write_ratings_csv

#: main split: temporal given-3 at the 0.05 quantile, where 39 of the CSV's 60 users are new
GIVEN_3 = {"_target_": "bench.splits.temporal.GlobalTemporalSplitter", "quantile": 0.05,
           "fold_in": 3}


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    return write_ratings_csv(tmp_path_factory.mktemp("data") / "ratings.csv")


def _cfg(csv, user):
    return make_cfg(csv, split=GIVEN_3, models={"rule_popular": POP, "cf_ease": EASE},
                    cold_start={"user": user, "item": None},
                    report={"figures": False}, stats={"n_resamples": 50})


def test_the_sweep_on_the_main_cut_shares_the_main_fits_and_gives_the_same_rows(csv, tmp_path):
    tracker, timer = MemoryTracker(), StageTimer()
    cfg = _cfg(csv, {"quantile": None, "fold_in": [0, 1, 3], "seed": 0})
    result = run_experiment(cfg, output_dir=tmp_path / "r", tracker=tracker,
                            observers=Observers(timer))
    assert timer.stages["fit"].calls == 2  # one per model, not one per (model, protocol)
    child = next(c for c in tracker.runs.values() if c.name == "cf_ease/user_cold_start")
    assert child.tags["recspectrum.fit_shared_with"] == "cf_ease/fold0"
    assert child.metrics["ndcg_at_10.fold_in_0"] == 0.0
    shared = result.cold_start
    assert set(shared["level"]) == {0, 1, 3} and set(shared["model"]) == {"rule_popular",
                                                                           "cf_ease"}
    # the same protocol as cells of their own (a fit each) gives the same rows
    settings = load_settings(cfg)
    dataset = build(settings.dataset, "dataset")
    main = build(settings.split, "split").split(dataset.interactions)[0]
    evs = protocol_evaluations(dataset, settings.eval, settings.cold_start, main.cut)
    assert evs[0].split.train.fingerprint() == main.train.fingerprint()
    cells, inputs = protocol_cells(evs, settings.models, dataset)
    env = CellEnv(tracker=MemoryTracker(), parent=None, out=tmp_path / "alone")
    alone = pd.concat([o.frame for o in LocalExecutor().run(cells, inputs, env)],
                      ignore_index=True)
    pd.testing.assert_frame_equal(shared.reset_index(drop=True), alone)
    # the held-out users are exactly the users new at the main cut, scored on rows
    # strictly later than their history
    audit = audit_split(evs[0].split, "user_cold_start")
    assert audit.future_train_rows == audit.fold_in_own_future_rows == 0
    assert evs[0].split.info["test_users_without_train"] == evs[0].split.info["test_users"]


def test_a_sweep_at_its_own_cut_runs_as_cells_of_its_own(csv, tmp_path):
    timer = StageTimer()
    cfg = _cfg(csv, {"quantile": 0.03, "fold_in": [0, 2], "seed": 0})
    result = run_experiment(cfg, output_dir=tmp_path / "r", tracker=MemoryTracker(),
                            observers=Observers(timer))
    assert timer.stages["fit"].calls == 4  # main and sweep train on different rows
    assert set(result.cold_start["level"]) == {0, 2}
    audit = next(a for a in result.audits if a["protocol"] == "user_cold_start")
    assert audit["future_train_rows"] == 0 and audit["leaks"] == []
    assert audit["split_cut"] < result.splits[0]["cut"]


def test_the_sweep_is_skipped_with_a_warning_when_nobody_is_new(csv, tmp_path, caplog):
    cfg = _cfg(csv, {"quantile": 0.8, "fold_in": [0, 1], "seed": 0})
    with caplog.at_level("WARNING", logger="bench"):
        result = run_experiment(cfg, output_dir=tmp_path / "r", tracker=MemoryTracker())
    assert "the user cold-start sweep is skipped" in caplog.text
    assert [a["protocol"] for a in result.audits] == ["main"]
    assert result.cold_start is None
