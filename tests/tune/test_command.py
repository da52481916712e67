"""``bench tune`` end to end: validation only, the overlay, the final ordinary run."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from bench.cli import main
from bench.splits.base import Splitter
from bench.targets import allowing
from bench.tracking.memory import MemoryTracker
from bench.tune.command import next_command, redact, run_tuning
from tests.helpers import CONFIG_DIR
from tests.tune.helpers import Planted, planted_config, planted_model


class Poison:
    """Stands in for the test part: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the test part was read while tuning (.{name})")

    def __len__(self):
        raise AssertionError("the test part was read while tuning (len)")


@pytest.fixture
def poisoned_test_part(monkeypatch):
    """Every split made while the test runs has a test part that fails when touched."""
    real = Splitter.split

    def split(self, data):
        return [dataclasses.replace(s, test=Poison()) for s in real(self, data)]

    monkeypatch.setattr(Splitter, "split", split)


def test_no_test_interaction_is_read_while_tuning(tmp_path, poisoned_test_part):
    models = {"p": planted_model(),
              "cf_als": {"_target_": "bench.models.collaborative.als.ImplicitALS",
                         "factors": 4, "iterations": 2, "num_threads": 1,
                         "_tune_": {"factors": {"type": "int", "low": 2, "high": 8}}}}
    with allowing(Planted):
        result = run_tuning(planted_config(tmp_path, models, trials=3),
                            tracker=MemoryTracker())
    assert [r.n_trials for r in result.studies] == [3, 3]
    rec = result.record
    assert rec["validation"]["validation_rows"] == 64  # 20% of the 320 training rows
    assert rec["validation"]["train_rows"] == 256
    assert rec["validation"]["leakage"]["future_train_rows"] == 0
    assert "the test part is never read" in rec["protocol"]


@pytest.mark.slow
def test_the_validation_scores_do_not_depend_on_the_test_part(tmp_path, monkeypatch):
    def values(folder):
        with allowing(Planted):
            res = run_tuning(planted_config(folder, {"p": planted_model()}, trials=3),
                             tracker=MemoryTracker())
        return [(t.params, t.value) for t in res.studies[0].trials]

    clean = values(tmp_path / "clean")
    real = Splitter.split
    monkeypatch.setattr(Splitter, "split", lambda self, data: [
        dataclasses.replace(s, test=Poison()) for s in real(self, data)])
    assert values(tmp_path / "poisoned") == clean


def test_a_malformed_space_is_one_line_and_exit_2_before_any_data_is_read(tmp_path, capsys):
    code = main(["tune", "tracker=none", "~experiment", "model=[cf_als]", "dataset=csv",
                 f"dataset.path={tmp_path / 'absent.csv'}", f"report.dir={tmp_path}",
                 "+models.cf_als._tune_.factors.lo=3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == ("bench: error: models.cf_als._tune_.factors: unknown key(s) ['lo'] "
                       "for type int; expected some of ['high', 'log', 'low', 'step', 'when']")


def test_unknown_tune_option_and_foreign_model_are_one_line_errors(tmp_path, capsys):
    assert main(["tune", "tracker=none", "tune.trails=3"]) == 2
    assert "tune.trails" in capsys.readouterr().err
    code = main(["tune", "tracker=none", "~experiment", "model=[cf_als]", "dataset=csv",
                 f"dataset.path={tmp_path / 'absent.csv'}", "tune.models=[cf_ease]"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == ("bench: error: tune.models: ['cf_ease'] are not models of the run "
                       "['cf_als']; name some of them, or null for all")


def test_next_command_and_redacted_storage():
    assert next_command(["experiment=spectrum", "tune.trials=5", "seed=3"], "spectrum") == \
        "bench experiment=spectrum seed=3 tuned=spectrum"
    assert redact("postgresql://bench:secret@db:5432/optuna") == \
        "postgresql://bench:***@db:5432/optuna"


TINY = ["tracker=none", "~experiment", "dataset=synthetic", "dataset.n_users=80",
        "dataset.n_items=40", "dataset.n_interactions=1600", "split=temporal",
        "eval.cutoffs=[10]", "stats.n_resamples=50", "model=[rule_popular,cf_als]",
        "models.cf_als.num_threads=1", "models.cf_als.iterations=3", "name=tiny"]


@pytest.mark.slow
def test_tune_then_evaluate_on_test_is_two_commands(tmp_path, monkeypatch, capsys):
    configs = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, configs)
    monkeypatch.setenv("BENCH_CONFIG_DIR", str(configs))
    monkeypatch.chdir(tmp_path)
    reports = f"report.dir={tmp_path / 'reports'}"
    assert main(["tune", *TINY, reports, "tune.trials=3", "report.figures=false"]) == 0
    out = capsys.readouterr().out
    assert "tuning: 3 trials each; best at cf_als factors=" in out
    assert "rule_popular: no hyperparameters" in out
    overlay = configs / "tuned" / "tiny.yaml"
    assert overlay.is_file()
    study = json.loads((tmp_path / "reports" / "tiny" / "tune" / "study.json").read_text())
    best = study["models"]["cf_als"]["best"]
    assert study["models"]["cf_als"]["trials"] == 3
    assert study["models"]["rule_popular"] == {"status": "no hyperparameters"}
    assert (tmp_path / "reports" / "tiny" / "tune" / "leaderboard.md").is_file()
    # trial 0 had iterations=3 from the command line, outside the range [5, 50]: sampled
    assert study["models"]["cf_als"]["default_value"] is None

    # the final run: the ordinary `bench` command tune printed (without the overrides
    # the overlay sets: they would win over it)
    (line,) = [x for x in out.splitlines() if x.startswith("next:")]
    argv = line.split()[2:]
    assert argv[-1] == "tuned=tiny" and "tune.trials=3" not in argv
    assert "models.cf_als.iterations=3" not in argv and "models.cf_als.num_threads=1" in argv
    assert main(["-q", *argv]) == 0
    (card_path,) = (tmp_path / "reports" / "tiny").glob("*/card.json")
    card = json.loads(card_path.read_text())
    assert card["tuning"]["summary"] == study["summary"]
    assert card["tuning"]["models"]["cf_als"]["best"] == best
    params = card["models"]["cf_als"]["params"]
    assert {k: params[k] for k in best} == best
    report = (card_path.parent / "report.md").read_text()
    assert f"**Tuning** (`bench tune`, study `tiny`, validation ndcg@10, test never read): " \
           f"{study['summary']}." in report


@pytest.mark.slow
def test_parallel_trials_keep_the_budget_and_the_record(tmp_path):
    """tune.jobs=2: trials are asked in pairs and scored in worker processes."""
    from omegaconf import OmegaConf

    from tests.helpers import compose_config

    cfg = OmegaConf.to_container(compose_config([*TINY, "model=[cf_als,cf_ease]",
                                                 f"report.dir={tmp_path}", "tune.trials=4",
                                                 "tune.jobs=2"]), resolve=True)
    result = run_tuning(cfg, tracker=MemoryTracker())
    assert [(r.model, r.n_trials) for r in result.studies] == [("cf_als", 4), ("cf_ease", 4)]
    assert all(t.state == "COMPLETE" and t.cpu_seconds > 0 for r in result.studies
               for t in r.trials)


def test_a_tuned_overlay_leaves_out_the_models_a_run_does_not_have():
    from omegaconf import OmegaConf

    from bench.config import load_settings
    from tests.helpers import compose_config

    raw = OmegaConf.to_container(compose_config(["~experiment", "model=[cf_als]"]),
                                 resolve=True)
    raw["models"]["cf_ease"] = {"l2": 300.0}  # what tuned=NAME adds for a model not run
    raw["models"]["cf_als"]["factors"] = 48
    raw["tuning"] = {"models": {"cf_ease": {"status": "tuned"}, "cf_als": {"status": "tuned"}}}
    settings = load_settings(raw)
    assert list(settings.models) == ["cf_als"]
    assert settings.models["cf_als"]["factors"] == 48
    del raw["tuning"]  # without the record, a node without _target_ is still an error
    assert "cf_ease" in load_settings(raw).models


def test_a_split_without_validation_carve_out_cannot_be_tuned_on(tmp_path, capsys):
    code = main(["tune", "tracker=none", "~experiment", "model=[cf_als]", "split=kfold",
                 "dataset=synthetic", "dataset.n_users=50", "dataset.n_items=30",
                 "dataset.n_interactions=500", f"report.dir={tmp_path}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == ("bench: error: split: split 'kfold' has no validation carve-out to "
                       "tune on (every row is tested in some fold); tune with another split "
                       "(e.g. split=temporal), then evaluate with split=kfold tuned=<name>")


def test_an_ordinary_run_refuses_a_malformed_space_too(tmp_path, capsys):
    code = main(["-q", "tracker=none", "~experiment", "model=[cf_als]", "dataset=csv",
                 f"dataset.path={tmp_path / 'absent.csv'}", f"report.dir={tmp_path}",
                 "models.cf_als._tune_.factors.type=integer"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == ("bench: error: models.cf_als._tune_.factors.type: expected one of "
                       "['int', 'float', 'categorical', 'component'], got 'integer'")


def test_the_validation_history_holds_no_row_of_the_test_period(tmp_path):
    """Temporal given-n gives every test user their first rows after the cut as history;
    those rows join the split's fold-in part, but tuning must not see them."""
    from omegaconf import OmegaConf

    from bench.config import load_settings
    from bench.targets import build
    from bench.tune.command import tune_settings, validation_data
    from tests.helpers import compose_config

    raw = OmegaConf.to_container(compose_config([
        "~experiment", "dataset=synthetic", "dataset.n_users=120", "dataset.n_items=60",
        "dataset.n_interactions=3000", "split=temporal", "split.quantile=0.6",
        "split.fold_in=3", "model=[rule_popular]"]), resolve=True)
    settings = load_settings(raw)
    dataset, vsplit, audit = validation_data(settings, tune_settings(raw))
    (full,) = build({**settings.split, "validation": 0.2}, "split").split(dataset.interactions)
    test_history = full.fold_in.timestamps >= full.cut
    assert test_history.sum() > 0  # the split's own fold-in part holds test-period rows ...
    assert len(vsplit.fold_in) == len(full.fold_in) - test_history.sum() > 0
    assert int(vsplit.fold_in.timestamps.max()) < full.cut  # ... the validation one none
    assert audit["fold_in_own_future_rows"] == 0
    assert audit["future_train_rows"] == 0
