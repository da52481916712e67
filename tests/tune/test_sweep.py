"""Sweeps you can read: a Hydra multirun ends with a leaderboard and one named MLflow parent."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.cli import main
from bench.tune.sweep import job_label, job_name, job_overrides, parent_name, swept_keys


def test_swept_keys_and_job_names_come_from_the_command_line():
    argv = ["-m", "models.cf_als.factors=4,8", "seed=1", "model=[a,b]", "stats.alpha=0.01"]
    assert swept_keys(argv) == {"models.cf_als.factors"}
    task = ["models.cf_als.factors=8", "seed=1", "model=[a,b]"]
    assert job_overrides(task, swept_keys(argv)) == ("models.cf_als.factors=8",)
    assert job_label(["models.cf_als.factors=8", "model=cf_ease", "seed=2"]) == \
        "cf_als.factors=8 seed=2"
    assert parent_name("als_sweep", "reports/als_sweep/20250101-000000-abc123-sweep") == \
        "als_sweep/20250101-000000-abc123-sweep"
    assert job_name(3, ["models.cf_als.factors=8", "model=cf_ease"]) == \
        "cf_als.factors=8 model=cf_ease"
    assert job_name(3, []) == "job 3"


@pytest.mark.slow
def test_a_sweep_over_als_factors_ends_with_a_leaderboard_and_one_named_parent(tmp_path,
                                                                               monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = main(["-q", "-m", "~experiment", "dataset=synthetic", "dataset.n_users=80",
                 "dataset.n_items=40", "dataset.n_interactions=1600", "split=temporal",
                 "eval.cutoffs=[10]", "stats.n_resamples=50", "model=[rule_popular,cf_als]",
                 "models.cf_als.num_threads=1", "models.cf_als.iterations=3",
                 "models.cf_als.factors=4,8", "name=als_sweep",
                 f"report.dir={tmp_path / 'reports'}", f"tracker.tracking_uri={uri}"])
    assert code == 0
    (sweep,) = (tmp_path / "reports" / "als_sweep").glob("*-sweep")
    table = pd.read_csv(sweep / "leaderboard.csv")
    als = table[table.model == "cf_als"].sort_values("job")
    assert als["swept.models.cf_als.factors"].tolist() == [4, 8]
    assert als["overrides"].tolist() == ["cf_als.factors=4", "cf_als.factors=8"]
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert table["ndcg@10"].is_monotonic_decreasing
    text = (sweep / "leaderboard.md").read_text()
    assert "| 1 | " in text and "![ndcg@10 against each swept value]" in text
    assert (sweep / "figures" / "leaderboard.png").stat().st_size > 1000

    client = MlflowClient(uri)
    (exp,) = [e for e in client.search_experiments() if e.name == "recspectrum"]
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [p.info.run_name for p in parents] == [f"als_sweep/{sweep.name}"]
    parent = parents[0].info.run_id
    jobs = {r.info.run_name: r.info.run_id for r in runs
            if r.data.tags.get("mlflow.parentRunId") == parent}
    assert set(jobs) == {"cf_als.factors=4", "cf_als.factors=8"}  # one child per job
    for job, run_id in jobs.items():  # and the job's cells under it
        cells = {r.info.run_name for r in runs if r.data.tags.get("mlflow.parentRunId") == run_id}
        assert cells == {f"cf_als/fold0 {job}", f"rule_popular/fold0 {job}"}
    assert len(runs) == 7
    logged = {a.path for a in client.list_artifacts(parents[0].info.run_id, "leaderboard")}
    assert {"leaderboard/leaderboard.md", "leaderboard/leaderboard.csv"} <= logged


def _job_folder(sweep, num: int, overrides: list[str], failed: dict | None = None):
    import json

    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (job / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  job:\n    num: {num}\n")
    if failed is not None:
        (job / "failed.json").write_text(json.dumps(failed))
    return job


def test_the_sweep_end_reads_every_job_and_why_it_failed_from_the_job_folders(tmp_path):
    from bench.tune.leaderboard import write_sweep_leaderboard
    from bench.tune.sweep import SweepOutcome, read_jobs

    sweep = tmp_path / "x-sweep"
    _job_folder(sweep, 0, ["seed=1", "name=a"], {"exit_code": 2, "error": "data: bad | file"})
    _job_folder(sweep, 1, ["seed=2", "name=a"])  # no results.json: it never finished
    (sweep / "multirun.yaml").write_text("{}\n")  # the sweep's own files are no job
    jobs = read_jobs(sweep, ["seed"])
    assert [(j.num, j.overrides, j.exit_code) for j in jobs] == [(0, ("seed=1",), 2),
                                                               (1, ("seed=2",), 1)]
    assert jobs[0].error == "data: bad | file"
    assert jobs[1].error.startswith("no results.json: the job did not finish")

    (md, csv) = write_sweep_leaderboard(sweep, jobs, "a", note="stopped.")
    text = md.read_text()
    assert text.splitlines()[2] == "stopped."
    assert "2 jobs, 2 failed" in text and "No job has results." in text
    assert "| 0 | seed=1 | **failed** (exit 2): data: bad / file | [0](0) |" in text
    assert csv.name == "leaderboard.csv"

    def outcome(js, status="FAILED"):
        return SweepOutcome(folder=sweep, jobs=js, paths=[], status=status).exit_code

    assert outcome(jobs[:1]) == 2  # every failure bad input
    assert outcome(jobs) == 1  # a job without results is not bad input
    assert outcome([], status="FINISHED") == 0
    assert outcome([]) == 1  # no job at all: failed, never a silent success
