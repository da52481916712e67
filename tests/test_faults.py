"""Fault isolation: a model that raises fails alone; the run finishes and says so."""

import json

import pytest

from bench.cli import main
from bench.models.rule.random import RandomRecommender
from bench.runner import run_experiment
from bench.tracking import MemoryTracker
from tests.helpers import csv_dataset, report_cfg

EASE_TOO_BIG = {"_target_": "bench.models.collaborative.ease.EASE", "max_memory_gb": 1e-9}


@pytest.fixture
def crashing_random(monkeypatch):
    def boom(self, train, item_features, user_features):
        raise RuntimeError("boom: a bug in the model")

    monkeypatch.setattr(RandomRecommender, "_fit", boom)


def test_a_crashing_model_fails_alone(ratings_csv, tmp_path, crashing_random):
    tracker = MemoryTracker()
    out = tmp_path / "out"
    result = run_experiment(report_cfg(ratings_csv), output_dir=out, tracker=tracker)
    # the others finished, in the main split and in both cold-start protocols
    assert sorted({r.model for r in result.models}) == ["cf_ease", "rule_popular"]
    assert sorted((f.model, f.protocol) for f in result.failures) == [
        ("rule_random", "item_cold_start"), ("rule_random", "main"),
        ("rule_random", "user_cold_start")]
    main_failure = next(f for f in result.failures if f.protocol == "main")
    assert main_failure.error == "RuntimeError: boom: a bug in the model"
    assert main_failure.fold == 0 and not main_failure.bad_input
    text = open(main_failure.traceback).read()
    assert "Traceback" in text and "boom: a bug in the model" in text
    runs = {r.name: r for r in tracker.runs.values()}
    assert runs["rule_random/fold0"].status == "FAILED"
    assert "traceback.txt" in runs["rule_random/fold0"].artifacts
    assert runs["rule_popular/fold0"].status == "FINISHED"
    assert runs[f"t/{out.name}"].status == "FAILED"  # the parent says a child failed
    results = json.loads((out / "results.json").read_text())
    assert [f["model"] for f in results["failures"]] == ["rule_random"] * 3
    report = (out / "report.md").read_text()
    assert "3 model run(s) failed" in report and "RuntimeError: boom" in report
    assert "model run(s) FAILED" in (out / "summary.md").read_text()


def test_cli_exits_1_on_a_crash_and_lists_it(ratings_csv, tmp_path, crashing_random, capsys):
    args = [f"hydra.run.dir={tmp_path / 'run'}", "tracker=none", "~experiment",
            *csv_dataset(ratings_csv), "model=[rule_popular,rule_random]", "split=temporal",
            "report.figures=false"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "rule_popular" in captured.out  # the table of the models that finished
    assert "bench: error: model rule_random (fold 0) failed: RuntimeError: boom" in captured.err


def test_when_every_model_fails_the_run_still_reports_and_closes(ratings_csv, tmp_path,
                                                                 monkeypatch, capsys):
    """No model finished: exit code from the failures, a report saying so, no RUNNING run."""
    from bench.models.base import Recommender

    def boom(self, *args, **kwargs):
        raise RuntimeError("boom: nothing works")

    monkeypatch.setattr(Recommender, "fit", boom)
    tracker = MemoryTracker()
    out = tmp_path / "out"
    result = run_experiment(report_cfg(ratings_csv), output_dir=out, tracker=tracker)
    assert result.models == [] and len(result.failures) == 9  # 3 models x 3 protocols
    assert {r.status for r in tracker.runs.values()} == {"FAILED"}
    report = (out / "report.md").read_text()
    assert "Every model run failed (9)" in report and "boom: nothing works" in report
    assert json.loads((out / "results.json").read_text())["models"] == []
    assert not (out / "per_user.parquet").exists()

    args = [f"hydra.run.dir={tmp_path / 'run'}", "tracker=none", "~experiment",
            "dataset=csv", f"dataset.path={ratings_csv}", "dataset.columns.user_id=user",
            "dataset.columns.item_id=item", "dataset.columns.rating=stars",
            "dataset.columns.timestamp=ts", "dataset.rating_scale=[1,5]",
            "model=[rule_popular]", "split=temporal", "report.figures=false"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "(no model finished)" in captured.out
    assert "bench: error: model rule_popular (fold 0) failed: RuntimeError: boom" in captured.err


def test_a_model_refusing_its_input_fails_alone_with_exit_2(ratings_csv, tmp_path, capsys):
    cfg = report_cfg(ratings_csv, models={"rule_popular": {
        "_target_": "bench.models.rule.popular.PopularityRecommender"}, "cf_ease": EASE_TOO_BIG},
        cold_start={"user": None, "item": None})
    result = run_experiment(cfg, output_dir=tmp_path / "o", tracker=MemoryTracker())
    assert [r.model for r in result.models] == ["rule_popular"]
    (failure,) = result.failures
    assert failure.bad_input and failure.error.startswith("ConfigError: EASE:")
    from bench.cli import failed_models_exit_code

    assert failed_models_exit_code(result.failures) == 2
    assert "max_memory_gb" in capsys.readouterr().err


def test_bad_model_config_fails_before_any_training(ratings_csv, tmp_path):
    from bench.errors import ConfigError

    cfg = report_cfg(ratings_csv, models={
        "rule_popular": {"_target_": "bench.models.rule.popular.PopularityRecommender"},
        "cf_ease": {"_target_": "bench.models.collaborative.ease.EASE", "l3": 1}})
    tracker = MemoryTracker()
    with pytest.raises(ConfigError, match=r"models\.cf_ease: unknown key\(s\) \['l3'\]"):
        run_experiment(cfg, output_dir=tmp_path / "o", tracker=tracker)
    assert tracker.runs == {}  # nothing was trained or logged
