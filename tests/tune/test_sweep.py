"""Sweeps you can read: a Hydra multirun ends with a leaderboard and one named MLflow parent."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.cli import main
from bench.tune.sweep import job_label, job_overrides, parent_name, swept_keys


def test_swept_keys_and_job_names_come_from_the_command_line():
    argv = ["-m", "models.cf_als.factors=4,8", "seed=1", "model=[a,b]", "stats.alpha=0.01"]
    assert swept_keys(argv) == {"models.cf_als.factors"}
    task = ["models.cf_als.factors=8", "seed=1", "model=[a,b]"]
    assert job_overrides(task, swept_keys(argv)) == ("models.cf_als.factors=8",)
    assert job_label(["models.cf_als.factors=8", "model=cf_ease", "seed=2"]) == \
        "cf_als.factors=8 seed=2"
    assert parent_name("als_sweep", "reports/als_sweep/20250101-000000-abc123-sweep") == \
        "als_sweep/20250101-000000-abc123-sweep"


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
    children = {r.info.run_name for r in runs if r not in parents}
    assert children == {"cf_als/fold0 cf_als.factors=4", "cf_als/fold0 cf_als.factors=8",
                        "rule_popular/fold0 cf_als.factors=4",
                        "rule_popular/fold0 cf_als.factors=8"}
    logged = {a.path for a in client.list_artifacts(parents[0].info.run_id, "leaderboard")}
    assert {"leaderboard/leaderboard.md", "leaderboard/leaderboard.csv"} <= logged
