"""``executor=ray`` on a local Ray cluster: the same numbers, lists and MLflow content as
``executor=local``, bit for bit; a worker killed mid-run costs only its cell's retry.

One 2-CPU cluster serves the whole module (``ray_cluster``). The runs on the small
ratings CSV are fast; the default and ``ci`` experiments on movielens_small are slow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.config import load_settings
from bench.errors import storage_error
from bench.executor import LocalExecutor, build_executor
from bench.record import ModelFailure, read_cell
from bench.runner import run_experiment
from bench.tracking import NullTracker
from bench.tracking.memory import MemoryTracker
from tests.executor.helpers import DiskFull, KillOnce, attempts
from tests.helpers import compose_config, report_cfg, write_ratings_csv

pytestmark = [pytest.mark.usefixtures("ray_cluster"), pytest.mark.slow]

#: metrics that are wall times: equal only by chance
TIMINGS = {"fit_seconds", "recommend_seconds"}
#: the 9 cells of report_cfg's run
CELLS = {f"{m}/{p}" for m in ("rule_popular", "rule_random", "cf_ease")
         for p in ("fold0", "user_cold_start", "item_cold_start")}


def ray_executor(**kwargs):
    from bench.executor.ray import RayExecutor

    return RayExecutor(**kwargs)


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    return write_ratings_csv(tmp_path_factory.mktemp("data") / "ratings.csv")


def run(csv: Path, folder: Path, executor, tracker=None):
    """report_cfg's run (3 models, 1 fold, both cold-start protocols: 9 cells) into
    ``folder/run`` (the same run name on both executors, so artifact paths match)."""
    tracker = tracker or NullTracker()
    return run_experiment(report_cfg(csv), output_dir=folder / "run", tracker=tracker,
                          executor=executor, invocation="same-on-both-executors")


@pytest.fixture(scope="module")
def local(csv, tmp_path_factory):
    tracker = MemoryTracker()
    return run(csv, tmp_path_factory.mktemp("local"), LocalExecutor(), tracker), tracker


def frames(result):
    """The per-user metrics, and the cold-start rows when the run has protocols."""
    if result.cold_start is None:
        return [result.per_user_frame()]
    cold = result.cold_start.sort_values(["protocol", "level", "model", "user_id"])
    return [result.per_user_frame(), cold.reset_index(drop=True)]


def assert_same_numbers(a, b):
    for x, y in zip(frames(a), frames(b), strict=True):
        assert len(x) > 0
        pd.testing.assert_frame_equal(x, y, check_exact=True)


def assert_same_cell_files(a: Path, b: Path, names=("topk", "per_user", "relevant")):
    """Every cell's tables under ``a`` are in ``b`` with the same rows, bit for bit."""
    files = sorted(p for n in names for p in (a / "artifacts").rglob(f"{n}.parquet"))
    assert files
    for f in files:
        other = b / f.relative_to(a)
        pd.testing.assert_frame_equal(pd.read_parquet(f), pd.read_parquet(other),
                                      check_exact=True)
    return len(files)


# ---------------------------------------------------------------------- same as local
def test_ray_gives_local_numbers_and_mlflow_content(csv, local, tmp_path):
    reference, ref_tracker = local
    tracker = MemoryTracker()
    executor = ray_executor()
    result = run(csv, tmp_path, executor, tracker)
    assert not result.failures
    assert_same_numbers(reference, result)
    assert assert_same_cell_files(reference.output_dir, result.output_dir) == 9  # 3 main cells

    # MLflow: the same runs, in the same order, under the same parent, with the same tags,
    # params, metrics (wall times aside) and artifact files — a child's byte for byte (the
    # parent's report and results.json hold the run's wall times)
    want, got = list(ref_tracker.runs.values()), list(tracker.runs.values())
    assert [r.name for r in got] == [r.name for r in want]
    assert len(got) == 10  # the parent, 3 main cells, 3 x 2 protocol cells
    parent = result.parent_run_id
    assert [r.parent_id for r in got] == [None] + [parent] * 9
    for w, g in zip(want, got, strict=True):
        assert (g.tags, g.params, g.status) == (w.tags, w.params, w.status)
        assert set(g.metrics) == set(w.metrics)
        np.testing.assert_equal({k: v for k, v in g.metrics.items() if k not in TIMINGS},
                                {k: v for k, v in w.metrics.items() if k not in TIMINGS})
        assert sorted(g.artifacts) == sorted(w.artifacts)
        if g.parent_id is not None:
            assert g.artifacts == w.artifacts
    assert sorted(want[1].artifacts) == ["metrics.json", "per_user.parquet", "relevant.parquet",
                                         "topk.parquet"]  # done.json is written after

    # each result and done.json carry the real child run id, not the worker's placeholder
    children = {r.name: i for i, r in tracker.runs.items()}
    for res in result.models:
        assert res.run_id == children[f"{res.model}/fold0"]
        assert read_cell(result.output_dir / "artifacts" / res.model / "fold0").run_id == \
            res.run_id
    # the shared inputs went to the object store once each: the fold's evaluation context
    # and the two protocols' evaluations (the CSV has no item or user features)
    assert executor.n_shared == 3


def mlflow_runs(tracker) -> list[dict]:
    """Every run of the tracker's experiment, oldest first, as comparable plain data: the
    parent as a name, no wall times, no ids, hosts or pids; artifacts as (path, size)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracker.tracking_uri)
    exp = client.get_experiment_by_name(tracker.experiment)
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"],
                              max_results=1000)
    names = {r.info.run_id: r.info.run_name for r in runs}

    def files(run_id, path=None):
        out = []
        for f in client.list_artifacts(run_id, path):
            out += files(run_id, f.path) if f.is_dir else [(f.path, f.file_size)]
        return out

    volatile = {"recspectrum.host", "recspectrum.pid", "mlflow.parentRunId", "mlflow.user",
                "mlflow.source.name", "mlflow.source.type", "mlflow.source.git.commit"}
    return [{"name": r.info.run_name, "status": r.info.status,
             "parent": names.get(r.data.tags.get("mlflow.parentRunId")),
             "tags": {k: v for k, v in r.data.tags.items() if k not in volatile},
             "params": r.data.params,
             "metrics": {k: v for k, v in r.data.metrics.items() if k not in TIMINGS},
             "artifacts": sorted(files(r.info.run_id))} for r in runs]


def test_mlflow_on_sqlite_holds_what_a_local_run_logs(csv, tmp_path):
    from bench.tracking.mlflow_tracker import MlflowTracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logged = {}
    for name, executor in (("local", LocalExecutor()), ("ray", ray_executor())):
        tracker = MlflowTracker(tracking_uri=uri, experiment=name,
                                artifact_root=str(tmp_path / "artifacts" / name))
        run(csv, tmp_path / name, executor, tracker)
        logged[name] = mlflow_runs(tracker)
    local_runs, ray_runs = logged["local"], logged["ray"]
    assert len(ray_runs) == 10
    assert [r["parent"] for r in ray_runs] == [None] + ["t/run"] * 9
    assert all(r["status"] == "FINISHED" for r in ray_runs)
    assert ray_runs[1]["artifacts"][0][0] == "metrics.json" and ray_runs[1]["params"]
    for want, got in zip(local_runs, ray_runs, strict=True):
        if got["parent"] is None:  # the parent's report and results.json hold wall times
            want, got = ({**r, "artifacts": [f for f, _ in r["artifacts"]]} for r in (want, got))
        np.testing.assert_equal(got, want)


def test_ray_settings_reach_the_ray_executor():
    raw = {"dataset": {"_target_": "bench.x"}, "split": {"_target_": "bench.y"},
           "models": {"m": {"_target_": "bench.z"}},
           "executor": {"kind": "ray", "address": "auto", "num_cpus": 3, "cpus_per_cell": 2,
                        "max_concurrent_cells": 5, "max_retries": 0}}
    executor = build_executor(load_settings(raw).executor)  # joins: the module's cluster
    assert type(executor).__name__ == "RayExecutor"
    assert (executor.address, executor.num_cpus, executor.cpus_per_cell,
            executor.max_concurrent_cells, executor.max_retries) == ("auto", 3, 2, 5, 0)


def test_cells_run_in_ray_worker_processes(csv, tmp_path):
    marker = tmp_path / "marker"
    marker.mkdir()
    result = run(csv, tmp_path, ray_executor(cell_function=KillOnce(marker, victim="none")))
    assert not result.failures
    seen = attempts(marker)
    assert set(seen) == CELLS and all(len(p) == 1 for p in seen.values())
    assert os.getpid() not in {p[0] for p in seen.values()}


def test_one_cell_at_a_time_on_two_cpus_gives_the_same_numbers(csv, local, tmp_path):
    result = run(csv, tmp_path, ray_executor(max_concurrent_cells=1, cpus_per_cell=2))
    assert_same_numbers(local[0], result)


# ---------------------------------------------------------------------- a lost worker
def test_a_killed_worker_costs_only_its_cells_retry(csv, local, tmp_path):
    marker = tmp_path / "marker"
    marker.mkdir()
    tracker = MemoryTracker()
    victim = "cf_ease/fold0"
    result = run(csv, tmp_path, ray_executor(cell_function=KillOnce(marker, victim),
                                             max_retries=1), tracker)
    assert not result.failures
    seen = attempts(marker)
    assert set(seen) == CELLS
    assert {k: len(v) for k, v in seen.items()} == {k: 2 if k == victim else 1 for k in CELLS}
    assert seen[victim][0] != seen[victim][1]  # killed once, run again in a new worker
    assert_same_numbers(local[0], result)
    # the lost attempt logged nothing: one MLflow child per cell, as without the kill
    assert [r.name for r in tracker.runs.values()].count(victim) == 1
    assert len(tracker.runs) == 10


def test_a_cell_whose_worker_dies_past_its_retries_is_a_failure_the_run_survives(
        csv, local, tmp_path):
    marker = tmp_path / "marker"
    marker.mkdir()
    victim = "cf_ease/fold0"
    result = run(csv, tmp_path, ray_executor(cell_function=KillOnce(marker, victim),
                                             max_retries=0))
    assert [(f.model, f.fold, f.bad_input) for f in result.failures] == [("cf_ease", 0, False)]
    assert result.failures[0].error.startswith("WorkerCrashedError")
    assert Path(result.failures[0].traceback).is_file()
    assert isinstance(result.failures[0], ModelFailure)
    assert len(attempts(marker)[victim]) == 1
    # the other models' numbers are those of the local run
    want = local[0].per_user_frame()
    got = result.per_user_frame()
    pd.testing.assert_frame_equal(got, want[want["model"] != "cf_ease"].reset_index(drop=True),
                                  check_exact=True)


def test_a_full_disk_in_a_task_stops_the_run_with_the_tasks_own_error(csv, tmp_path):
    target = tmp_path / "run" / "artifacts" / "x.parquet"
    with pytest.raises(OSError) as info:
        run(csv, tmp_path, ray_executor(cell_function=DiskFull(target), max_retries=0))
    error = storage_error(info.value)  # what the command line turns into one line, exit 2
    assert error is not None and str(error).startswith(f"{target}: cannot write")
    assert not (tmp_path / "run" / "results.json").exists()


# ---------------------------------------------------------------------- real experiments
def experiment_run(overrides: list[str], folder: Path):
    cfg = compose_config(["tracker=none", "report.figures=false", *overrides])
    return run_experiment(cfg, output_dir=folder / "run")


def test_segment_labels_of_the_first_wave_reach_the_second_on_ray(tmp_path):
    overrides = ["~experiment", "model=[rule_segment,rule_popular]",
                 "eval.segments.rules=rule_segment"]
    local_run = experiment_run(overrides, tmp_path / "local")
    executor = ray_executor()
    cfg = compose_config(["tracker=none", "report.figures=false", *overrides])
    ray_run = run_experiment(cfg, output_dir=tmp_path / "ray" / "run", executor=executor)
    assert_same_numbers(local_run, ray_run)
    # rule_popular's users carry rule_segment's labels, shipped through the object store
    segments = ray_run.per_user_frame().groupby("model")["segment"].count()
    assert segments["rule_popular"] == segments["rule_segment"] > 0
    assert executor.n_shared == 3  # the fold's context, the labels, the item features


@pytest.mark.slow
def test_the_default_experiment_on_ray_equals_local(tmp_path):
    local_run = experiment_run([], tmp_path / "local")
    ray_run = experiment_run(["executor=ray"], tmp_path / "ray")
    assert not local_run.failures and not ray_run.failures
    assert ray_run.config["executor"]["kind"] == "ray"
    assert len(local_run.models) == 14
    assert_same_numbers(local_run, ray_run)
    assert local_run.cold_start["protocol"].unique().tolist() == ["user_cold_start"]
    assert assert_same_cell_files(local_run.output_dir, ray_run.output_dir) == 3 * 14


@pytest.mark.slow
def test_the_ci_experiment_through_the_command_line_on_ray_equals_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folders = {kind: tmp_path / kind for kind in ("local", "ray")}
    for kind, folder in folders.items():  # the Hydra run folder is the run's folder
        assert main(["experiment=ci", f"executor={kind}", "tracker=none",
                     f"hydra.run.dir={folder}", "-q"]) == 0
    config = json.loads((folders["ray"] / "config.json").read_text())
    assert config["executor"]["kind"] == "ray" and config["name"] == "ci"
    assert assert_same_cell_files(folders["local"], folders["ray"]) == 3 * 6  # 6 models, 1 fold
    local_users, ray_users = (pd.read_parquet(f / "per_user.parquet") for f in folders.values())
    assert len(local_users) > 0
    pd.testing.assert_frame_equal(local_users, ray_users, check_exact=True)
