"""Studies: the planted optimum is found, edges are flagged, budgets are equal, resume."""

from __future__ import annotations

import logging

import pytest

from bench.errors import ConfigError
from bench.targets import allowing
from bench.tracking.memory import MemoryTracker
from bench.tune.command import run_tuning
from tests.tune.helpers import Planted, planted_config, planted_model


@pytest.fixture(autouse=True)
def _planted_allowed():
    with allowing(Planted):
        yield


def tune(tmp_path, models, **options):
    return run_tuning(planted_config(tmp_path, models, **options), tracker=MemoryTracker())


def by_model(result):
    return {r.model: r for r in result.studies}


@pytest.mark.slow
def test_the_planted_optimum_is_found_within_the_budget(tmp_path):
    res = by_model(tune(tmp_path, {"planted": planted_model()}, trials=25, seed=0))["planted"]
    assert res.status == "tuned"
    assert res.n_trials == 25
    assert 6.5 < res.best_params["shift"] < 7.5  # the one shift that ranks the next item first
    # validation rows are the next two items (7 and 14 ids on): first and far down the list
    assert res.best_value == pytest.approx(max(t.value for t in res.trials))
    assert res.default_value < 0.2 < 0.55 < res.best_value
    assert res.boundary == []


def test_a_narrow_range_puts_the_best_value_on_its_edge_and_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="bench"):
        result = tune(tmp_path, {"planted": planted_model(0, 3, kind="int")}, trials=6)
    res = by_model(result)["planted"]
    assert res.best_params["shift"] == 3  # the optimum (7) lies outside [0, 3]
    assert res.boundary == ["shift=3 is at the upper edge of its range [0, 3] (edge 3)"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("tune planted: shift=" in w and "upper edge" in w and "widen it" in w
               for w in warned), warned
    assert "best value on a range edge: planted" in result.record["summary"]


@pytest.mark.slow
def test_models_with_the_same_budget_get_the_same_number_of_trials(tmp_path):
    models = {"wide": planted_model(), "narrow": planted_model(low=5.0, high=9.0),
              "flaky": planted_model(fail_above=10.0),  # some trials fail: they still count
              "fixed": {"_target_": "bench.models.rule.popular.PopularityRecommender",
                        "_tune_": {}},
              "plain": {"_target_": "bench.models.rule.popular.PopularityRecommender"}}
    result = tune(tmp_path, models, trials=5)
    got = by_model(result)
    assert {m: got[m].n_trials for m in ("wide", "narrow", "flaky")} == \
        {"wide": 5, "narrow": 5, "flaky": 5}
    assert got["fixed"].status == "no hyperparameters" and got["fixed"].n_trials == 0
    assert got["plain"].status == "no search space"
    assert result.record["summary"].startswith("5 trials each; best at ")
    assert "no hyperparameters: fixed" in result.record["summary"]
    assert "no search space: plain" in result.record["summary"]
    assert result.record["budget"]["per_model"] == "5 trials"


@pytest.mark.slow
def test_a_per_model_budget_overrides_the_shared_one(tmp_path):
    models = {"a": planted_model(), "b": planted_model()}
    result = tune(tmp_path, models, trials=4, budgets={"b": {"trials": 2}})
    assert {r.model: r.n_trials for r in result.studies} == {"a": 4, "b": 2}
    assert result.record["budget"]["per_model"] == "differs (see models)"


def test_a_cpu_seconds_budget_stops_after_the_trial_that_spends_it(tmp_path):
    result = tune(tmp_path, {"p": planted_model()}, trials=None, seconds=1e-9)
    assert by_model(result)["p"].n_trials == 1
    assert result.record["models"]["p"]["budget"] == "1e-09 CPU seconds"


@pytest.mark.slow
def test_a_study_resumes_up_to_its_budget_and_refuses_another_space(tmp_path):
    first = by_model(tune(tmp_path, {"p": planted_model()}, trials=3))["p"]
    again = by_model(tune(tmp_path, {"p": planted_model()}, trials=3))["p"]
    assert [t.number for t in again.trials] == [t.number for t in first.trials] == [0, 1, 2]
    more = by_model(tune(tmp_path, {"p": planted_model()}, trials=5))["p"]
    assert [t.number for t in more.trials] == [0, 1, 2, 3, 4]
    assert [t.params for t in more.trials[:3]] == [t.params for t in first.trials]
    with pytest.raises(ConfigError, match=r"^tune\.study: the stored study 'planted/p' was "
                                          r"made with other \['space'\]; set tune\.study="):
        tune(tmp_path, {"p": planted_model(high=20.0)}, trials=5)
    fresh = by_model(tune(tmp_path, {"p": planted_model(high=20.0)}, trials=2,
                          study="other"))["p"]
    assert fresh.study == "other/p" and fresh.n_trials == 2


@pytest.mark.slow
def test_the_same_seed_gives_the_same_trials(tmp_path):
    a = by_model(tune(tmp_path / "a", {"p": planted_model()}, trials=6, seed=3))["p"]
    b = by_model(tune(tmp_path / "b", {"p": planted_model()}, trials=6, seed=3))["p"]
    assert [(t.params, t.value) for t in a.trials] == [(t.params, t.value) for t in b.trials]
    assert a.trials[0].defaults and a.trials[0].params == {"shift": 0.0}


def test_every_trial_is_an_mlflow_child_named_by_its_values(tmp_path):
    tracker = MemoryTracker()
    run_tuning(planted_config(tmp_path, {"p": planted_model()}, trials=3), tracker=tracker)
    (parent_id,) = [i for i, r in tracker.runs.items() if r.parent_id is None]
    assert tracker.runs[parent_id].name == "planted/tune"
    names = [r.name for r in tracker.children(parent_id)]
    assert names[0] == "p/trial0 shift=0"
    assert [n.split(" ")[0] for n in names] == ["p/trial0", "p/trial1", "p/trial2"]
    assert all(c.metrics["validation.ndcg_at_10"] >= 0 for c in tracker.children(parent_id))
    assert "tune/leaderboard.md" in tracker.runs[parent_id].artifacts


@pytest.mark.slow
def test_the_median_pruner_stops_poor_trials_and_they_count_in_the_budget(tmp_path):
    result = tune(tmp_path, {"p": planted_model(high=14.0)}, trials=10, pruner="median", seed=1,
                  sampler="random")
    res = by_model(result)["p"]
    states = [t.state for t in res.trials]
    assert len(states) == 10
    assert "PRUNED" in states and states[:3] == ["COMPLETE"] * 3  # 3 start-up trials
    assert result.record["pruner"] == "median"
    assert result.record["models"]["p"]["states"]["PRUNED"] == states.count("PRUNED")
