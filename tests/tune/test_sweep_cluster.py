"""Sweeps on any Hydra launcher (issue 16, scope 2): one MLflow parent per sweep, created
before the first job and ended after the last, one child run per job with the job's cell
runs under it, and a leaderboard read from the job folders — also when jobs run in other
processes (the Ray launcher on a local cluster, submitit's local executor), when a job
fails (the parent ends FAILED, the leaderboard names the job) and when the sweep stops.

The Ray and submitit tests skip when their launcher is not installed, unless
``BENCH_REQUIRE_RAY_TESTS=1`` / ``BENCH_REQUIRE_SLURM_TESTS=1`` (set by ``.ci/run``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from tests.helpers import ROOT, csv_dataset, write_ratings_csv

pytestmark = pytest.mark.slow

#: a tiny run: two rule models (two cell runs per job) on one temporal fold
RUN = ["~experiment", "split=temporal", "eval.cutoffs=[5]", "stats.n_resamples=20",
       "report.figures=false", "model=[rule_popular,rule_random]", "name=sw"]
SEEDS = ("1", "2", "3")
#: the Ray launcher on a fresh local cluster of 2 CPUs (never one another test started)
RAY = ["hydra/launcher=ray", "hydra.launcher.ray.init.address=local",
       "+hydra.launcher.ray.init.num_cpus=2", "+hydra.launcher.ray.init.include_dashboard=false"]


def require(module: str, env: str) -> None:
    """Skip when ``module`` is missing, or fail when ``env`` says these tests must run."""
    try:
        if importlib.util.find_spec(module) is not None:
            return
    except ModuleNotFoundError:  # its parent package (hydra_plugins) is missing too
        pass
    reason = f"{module} is not installed (pip install -e '.[ray,slurm]')"
    if os.environ.get(env) == "1":
        pytest.fail(f"{reason}; {env}=1: the launcher tests must run here", pytrace=False)
    pytest.skip(reason)


def sweep_argv(tmp_path: Path, *extra: str) -> list[str]:
    csv = tmp_path / "ratings.csv"
    if not csv.exists():
        write_ratings_csv(csv)
    return ["-q", "-m", *csv_dataset(csv), *RUN, f"report.dir={tmp_path / 'reports'}",
            f"tracker.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
            f"tracker.artifact_root={tmp_path / 'artifacts'}", *extra]


def run_child(tmp_path: Path, argv: list[str]) -> subprocess.CompletedProcess:
    """``bench`` in a fresh process, as a user runs it (Ray starts and stops with it)."""
    path = os.environ.get("PYTHONPATH", "")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else ""),
           "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "bench.cli", *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)


def mlflow_runs(tmp_path: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("recspectrum")
    return client.search_runs([exp.experiment_id], max_results=1000)


def check_sweep(tmp_path: Path, swept: list[str], failed: dict[int, str] | None = None):
    """The sweep's folder, leaderboard and MLflow tree. ``swept``: each job's override of
    the swept key (``seed=1``); ``failed``: job -> the error its data load raised."""
    from mlflow.tracking import MlflowClient

    failed = failed or {}
    (sweep,) = (tmp_path / "reports" / "sw").glob("*-sweep")
    runs = mlflow_runs(tmp_path)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.run_name == f"sw/{sweep.name}"
    assert parent.data.tags["recspectrum.invocation"] == str(sweep)
    assert parent.info.status == ("FAILED" if failed else "FINISHED")
    jobs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    finished = [i for i in range(len(swept)) if i not in failed]
    # one child per job that loaded its data (a job failing on its data has none)
    assert sorted(int(r.data.tags["recspectrum.sweep.job"]) for r in jobs) == finished
    for job in jobs:
        num = int(job.data.tags["recspectrum.sweep.job"])
        key, value = swept[num].split("=", 1)
        assert job.info.run_name == swept[num]
        assert job.data.tags[f"sweep.{key}"] == value
        assert job.info.status == "FINISHED"
        cells = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == job.info.run_id]
        assert sorted(r.info.run_name for r in cells) == [
            f"rule_popular/fold0 {swept[num]}", f"rule_random/fold0 {swept[num]}"]
        assert all(c.info.status == "FINISHED" for c in cells)
        # the job's folder holds its results, and its record names its own run
        record = (sweep / str(num) / "results.json").read_text()
        assert f'"mlflow_parent_run_id": "{job.info.run_id}"' in record
    assert len(runs) == 1 + 3 * len(jobs)  # the parent, the jobs, their two cells each
    # the parent was open before the first job started and ended after the last one ended
    assert parent.info.start_time <= min(r.info.start_time for r in runs)
    assert parent.info.end_time >= max(r.info.end_time for r in runs)

    table = pd.read_csv(sweep / "leaderboard.csv")
    assert sorted(table["job"]) == sorted(finished * 2)  # two models per finished job
    assert sorted(set(table["overrides"])) == sorted(swept[i] for i in finished)
    text = (sweep / "leaderboard.md").read_text()
    assert f"{len(swept)} jobs, {len(failed)} failed" in text
    for i, override in enumerate(swept):
        status = f"**failed** (exit 2): {failed[i]}" if i in failed else "finished"
        assert f"| {i} | {override} | {status}" in text, text
        assert (sweep / str(i) / "failed.json").is_file() == (i in failed)
    logged = {a.path for a in MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
              .list_artifacts(parent.info.run_id, "leaderboard")}
    assert logged == {"leaderboard/leaderboard.md", "leaderboard/leaderboard.csv"}


def seeds() -> tuple[list[str], str]:
    """Three jobs, one per seed: their overrides, and the sweep's."""
    return [f"seed={s}" for s in SEEDS], f"seed={','.join(SEEDS)}"


def failing(tmp_path: Path) -> tuple[list[str], str, dict[int, str]]:
    """Three jobs over data files, the second of which is not there (bad input, exit 2)."""
    first = write_ratings_csv(tmp_path / "a.csv")
    last = write_ratings_csv(tmp_path / "c.csv")
    files = [first, tmp_path / "gone.csv", last]
    error = f"{files[1]}: the interactions file does not exist"
    return ([f"dataset.path={f}" for f in files],
            f"dataset.path={','.join(str(f) for f in files)}", {1: error})


# ---------------------------------------------------------------------------- basic launcher
def test_a_sweep_on_the_basic_launcher_has_one_parent_and_one_child_per_job(tmp_path, capsys):
    jobs, sweep = seeds()
    assert main(sweep_argv(tmp_path, sweep)) == 0
    check_sweep(tmp_path, jobs)
    assert "leaderboard: " in capsys.readouterr().out


def test_a_failing_job_ends_the_parent_failed_and_the_leaderboard_names_it(tmp_path, capsys):
    jobs, sweep, failed = failing(tmp_path)
    code = main(sweep_argv(tmp_path, sweep))
    err = capsys.readouterr().err
    assert code == 2, err  # the one failure was bad input; the other jobs still ran
    assert f"sweep: 1 of 3 jobs failed: job 1 ({jobs[1]}): {failed[1]}" in err
    check_sweep(tmp_path, jobs, failed)


def test_a_sweep_stopped_by_ctrl_c_ends_its_parent_killed_with_a_leaderboard(tmp_path,
                                                                            monkeypatch):
    import bench.runner

    real, calls = bench.runner.run_experiment, []

    def second_job_interrupted(cfg, **kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(cfg, **kwargs)

    monkeypatch.setattr(bench.runner, "run_experiment", second_job_interrupted)
    jobs, sweep = seeds()
    assert main(sweep_argv(tmp_path, sweep)) == 130
    assert len(calls) == 2  # the third job never started
    (folder,) = (tmp_path / "reports" / "sw").glob("*-sweep")
    runs = mlflow_runs(tmp_path)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "KILLED"
    assert parent.info.end_time >= max(r.info.end_time for r in runs)
    text = (folder / "leaderboard.md").read_text()
    assert "The sweep stopped before its end (KILLED)" in text
    listed = text[text.index("## Jobs"):]
    assert f"| 0 | {jobs[0]} | finished" in listed
    assert jobs[1] not in listed  # interrupted before a cell finished: its folder is gone
    assert jobs[2] not in listed  # never started: no folder


def test_a_job_that_crashes_is_named_with_its_error_and_the_others_still_run(tmp_path,
                                                                           monkeypatch, capsys):
    import bench.runner

    real, calls = bench.runner.run_experiment, []

    def second_job_crashes(cfg, **kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise RuntimeError("boom\nsecond line")
        return real(cfg, **kwargs)

    monkeypatch.setattr(bench.runner, "run_experiment", second_job_crashes)
    jobs, sweep = seeds()
    assert main(sweep_argv(tmp_path, sweep)) == 1  # a crash is not bad input
    assert len(calls) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err  # the job's traceback is kept
    (folder,) = (tmp_path / "reports" / "sw").glob("*-sweep")
    text = (folder / "leaderboard.md").read_text()
    assert f"| 1 | {jobs[1]} | **failed** (exit 1): RuntimeError: boom; second line |" in text
    assert f"| 2 | {jobs[2]} | finished" in text
    (parent,) = [r for r in mlflow_runs(tmp_path) if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FAILED"


# ---------------------------------------------------------------------------- Ray launcher
def test_a_sweep_on_the_ray_launcher_has_one_parent_and_one_child_per_job(tmp_path):
    require("hydra_plugins.hydra_ray_launcher", "BENCH_REQUIRE_RAY_TESTS")
    jobs, sweep = seeds()
    done = run_child(tmp_path, [*sweep_argv(tmp_path, sweep), *RAY])
    assert done.returncode == 0, done.stderr[-3000:]
    check_sweep(tmp_path, jobs)
    # the jobs ran in Ray's worker processes, not in the process that ran Hydra ...
    runs = mlflow_runs(tmp_path)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    workers = {r.data.tags["recspectrum.pid"] for r in runs if r is not parent}
    assert parent.data.tags["recspectrum.pid"] not in workers
    # ... and took the command's -q along: no log lines from them, only their tables
    assert "split temporal fold 1/1" not in done.stdout + done.stderr
    assert (done.stdout + done.stderr).count("rule_random   rule") == 3


def test_a_failing_job_on_the_ray_launcher_ends_the_parent_failed(tmp_path):
    require("hydra_plugins.hydra_ray_launcher", "BENCH_REQUIRE_RAY_TESTS")
    jobs, sweep, failed = failing(tmp_path)
    done = run_child(tmp_path, [*sweep_argv(tmp_path, sweep), *RAY])
    assert done.returncode == 2, done.stderr[-3000:]
    check_sweep(tmp_path, jobs, failed)


# ---------------------------------------------------------------------------- submitit
def test_a_sweep_through_submitit_runs_its_jobs_as_processes_under_one_parent(tmp_path):
    """Slurm's launcher, with submitit's local executor standing in for the cluster."""
    require("hydra_plugins.hydra_submitit_launcher", "BENCH_REQUIRE_SLURM_TESTS")
    jobs, sweep = seeds()
    done = run_child(tmp_path, [*sweep_argv(tmp_path, sweep), "hydra/launcher=submitit_local"])
    assert done.returncode == 0, done.stderr[-3000:]
    check_sweep(tmp_path, jobs)
