"""End-to-end runs on real MovieLens data (the embedded default and BENCH_DATA_DIR copies)."""

import json

import pytest

from bench.cli import main
from tests.conftest import shared_data_dir

pytestmark = pytest.mark.integration


def test_default_experiment_on_movielens_small(tmp_path, monkeypatch, capsys):
    """README command 1: three models, MLflow parent with three children, report folder."""
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in ("rule_popular", "rule_random", "cf_als"):
        assert name in out
    assert "precision@10" in out and "recall@10" in out and "ndcg@10" in out

    runs = sorted((tmp_path / "reports" / "default").iterdir())
    assert len(runs) == 1
    results = json.loads((runs[0] / "results.json").read_text())
    assert (runs[0] / "summary.md").is_file()
    ndcg = {m["model"]: m["metrics"]["ndcg@10"] for m in results["models"]}
    # Ordering the literature leads us to expect on the users models can serve
    # (temporal split, warm users): ALS > popularity > random.
    assert ndcg["cf_als"] > ndcg["rule_popular"] > ndcg["rule_random"]
    assert 0.05 < ndcg["rule_popular"] < 0.3
    assert results["dataset"]["rows"] == 100_004
    assert results["splits"][0]["info"].get("test_rows_cold_users_dropped", 0) > 0

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("recspectrum")
    parent_id = results["mlflow_parent_run_id"]
    children = client.search_runs(
        [exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert len(children) == 3
    for child in children:
        assert child.info.status == "FINISHED"
        assert "ndcg_at_10" in child.data.metrics
        names = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"topk.parquet", "per_user.parquet", "relevant.parquet"} <= names
    als = next(c for c in children if c.data.tags["model"] == "cf_als")
    assert als.data.params["factors"] == "16"


def test_ml_100k_from_bench_data_dir(tmp_path, monkeypatch, capsys):
    data_dir = shared_data_dir()
    if data_dir is None or not (data_dir / "ml-100k").is_dir():
        pytest.skip("BENCH_DATA_DIR with ml-100k/ not available")
    monkeypatch.chdir(tmp_path)
    assert main(["dataset=ml_100k", f"data_dir={data_dir}", "tracker=none"]) == 0
    capsys.readouterr()
    results = json.loads(next((tmp_path / "reports" / "default").glob("*/results.json"))
                         .read_text())
    assert results["dataset"]["rows"] == 100_000
    assert results["dataset"]["users"] == 943 and results["dataset"]["items"] == 1682
    ndcg = {m["model"]: m["metrics"]["ndcg@10"] for m in results["models"]}
    # both learned/popular models are far above the random floor
    assert ndcg["rule_popular"] > 5 * ndcg["rule_random"]
    assert ndcg["cf_als"] > 5 * ndcg["rule_random"]
