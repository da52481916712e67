"""End-to-end runs on real MovieLens data (the embedded default and BENCH_DATA_DIR copies)."""

import json

import pandas as pd
import pytest

from bench.cli import main
from tests.helpers import shared_data_dir

pytestmark = pytest.mark.integration


def test_default_experiment_on_movielens_small(tmp_path, monkeypatch, capsys):
    """README command 1: the spectrum experiment, an MLflow child per model, a report."""
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in ("rule_popular", "rule_random", "cf_als", "content_profile", "hybrid_fallback"):
        assert name in out
    assert "precision@10" in out and "recall@10" in out and "ndcg@10" in out

    runs = sorted((tmp_path / "reports" / "spectrum").iterdir())
    assert len(runs) == 1
    results = json.loads((runs[0] / "results.json").read_text())
    assert (runs[0] / "summary.md").is_file()
    report = (runs[0] / "report.md").read_text()
    assert "## Is the next rung worth it?" in report
    figures = sorted(p.name for p in (runs[0] / "figures").glob("*.png"))
    assert len(figures) >= 5 and "cold_start_users.png" in figures
    # Cold start (issue 4): popularity is flat in the new users' history, collaborative
    # models rise with it (they cannot score a stranger with no history at all).
    cold = pd.read_parquet(runs[0] / "cold_start.parquet")
    curve = cold[cold["protocol"] == "user_cold_start"].pivot_table(
        index="model", columns="level", values="ndcg@10", aggfunc="mean")
    assert list(curve.columns) == [0, 1, 3, 5, 10]
    pop = curve.loc["rule_popular"]
    assert pop.max() - pop.min() < 0.05 and pop[0] > 0.2
    for name in ("cf_als", "cf_ease", "cf_item_knn"):
        row = curve.loc[name]
        assert row[0] == 0.0 and row[1] > 0.1 and row[10] > row[1], name
    # models that cannot fold in a new user leave them an empty list, at every n
    sweep = cold[cold["protocol"] == "user_cold_start"]
    for name in ("cf_bpr", "cf_surprise_svd"):
        assert (sweep.loc[sweep["model"] == name, "n_recommended"] == 0).all(), name
    ndcg = {m["model"]: m["metrics"]["ndcg@10"] for m in results["models"]}
    # Temporal given-n (issue 14): a cut at the median time, every user active after it
    # evaluated with their first 5 rows from the cut as history: >= 300 users.
    users = {m["model"]: m["n_users"] for m in results["models"]}
    assert set(users.values()) == {321}
    # most of them are new at the cut: models that cannot fold in a new user (BPR,
    # Surprise) serve the returning ones only, and the count is in the results
    empty = {m["model"]: m["n_users_empty_list"] for m in results["models"]}
    info = results["splits"][0]["info"]
    assert info["test_users_without_train"] == 299
    assert empty["cf_bpr"] == empty["cf_surprise_svd"] == 299
    assert empty["rule_popular"] == empty["rule_random"] == 0
    # Ordering on these users (mostly in their first session): recent popularity beats
    # all-time popularity, which beats the random floor; collaborative models given five
    # interactions of history beat the random floor but not popularity.
    assert len(ndcg) == 14
    assert ndcg["rule_popular_recent"] > ndcg["rule_popular"] > ndcg["rule_random"]
    for name in ("cf_als", "cf_ease", "cf_item_knn"):
        assert ndcg["rule_random"] < ndcg[name] < ndcg["rule_popular"], name
    assert 0.05 < ndcg["rule_popular"] < 0.35
    families = {m["model"]: m["family"] for m in results["models"]}
    assert set(families.values()) == {"rule", "content", "collaborative", "hybrid"}
    assert results["dataset"]["rows"] == 100_004
    # the audit covers every protocol the run reports, and finds nothing from the future
    audits = {a["protocol"]: a for a in results["leakage"]}
    assert set(audits) == {"main", "user_cold_start"}
    for protocol, a in audits.items():
        assert a["future_train_rows"] == a["own_future_rows"] == 0, protocol
        assert a["fold_in_own_future_rows"] == a["duplicate_pairs"] == 0, protocol
        assert a["leaks"] == [], protocol
    assert "no leakage found" in report and "Leakage warning" not in report

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("recspectrum")
    parent_id = results["mlflow_parent_run_id"]
    children = client.search_runs(
        [exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    protocol = [c for c in children if "protocol" in c.data.tags]
    children = [c for c in children if "protocol" not in c.data.tags]
    assert len(children) == 14 and len(protocol) == 14  # one per model: the cold-start sweep
    for child in children:
        assert child.info.status == "FINISHED"
        assert "ndcg_at_10" in child.data.metrics
        names = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"topk.parquet", "per_user.parquet", "relevant.parquet"} <= names
    als = next(c for c in children if c.data.tags["model"] == "cf_als")
    assert als.data.params["factors"] == "16"
    fallback = next(c for c in children if c.data.tags["model"] == "hybrid_fallback")
    assert fallback.data.params["components.cf_als.factors"] == "16"
    assert fallback.data.params["min_history"] == "{'cf_als': 100}"
    shares = {k: v for k, v in fallback.data.metrics.items() if k.startswith("source_share.")}
    assert sum(shares.values()) == pytest.approx(1.0)

    # every row names its source; segments are recorded per user

    art = runs[0] / "artifacts"
    lists = pd.read_parquet(art / "hybrid_fallback" / "fold0" / "topk.parquet")
    assert set(lists["source"]) <= {"cf_als", "rule_popular_recent", "rule_popular"}
    assert len(set(lists["source"])) >= 2
    assert set(pd.read_parquet(art / "cf_als" / "fold0" / "topk.parquet")["source"]) == {"cf_als"}
    per_user = pd.read_parquet(art / "rule_segment" / "fold0" / "per_user.parquet")
    assert per_user["segment"].notna().all()


def test_ml_100k_from_bench_data_dir(tmp_path, monkeypatch, capsys):
    data_dir = shared_data_dir()
    if data_dir is None or not (data_dir / "ml-100k").is_dir():
        pytest.skip("BENCH_DATA_DIR with ml-100k/ not available")
    monkeypatch.chdir(tmp_path)
    assert main(["~experiment", "dataset=ml_100k", f"data_dir={data_dir}", "tracker=none"]) == 0
    capsys.readouterr()
    # the run is named after its data: not the default dataset's "default"
    results = json.loads(next((tmp_path / "reports" / "default-ml_100k").glob("*/results.json"))
                         .read_text())
    assert results["dataset"]["rows"] == 100_000
    assert results["dataset"]["users"] == 943 and results["dataset"]["items"] == 1682
    ndcg = {m["model"]: m["metrics"]["ndcg@10"] for m in results["models"]}
    # both learned/popular models are far above the random floor
    assert ndcg["rule_popular"] > 5 * ndcg["rule_random"]
    assert ndcg["cf_als"] > 5 * ndcg["rule_random"]


def test_item_cold_start_only_content_ranks_new_items(tmp_path, monkeypatch, capsys):
    """On held-out items, content models rank them; collaborative ones score them NaN."""

    monkeypatch.chdir(tmp_path)
    models = "model=[rule_popular,cf_als,cf_ease,content_profile,content_knn,hybrid_cascade]"
    assert main(["split=item_cold_start", models, "tracker=none",
                 "cold_start.user=null", "report.figures=false"]) == 0
    capsys.readouterr()
    run = next((tmp_path / "reports" / "spectrum-item_cold_start").iterdir())  # its split
    results = json.loads((run / "results.json").read_text())
    ndcg = {m["model"]: m["metrics"]["ndcg@10"] for m in results["models"]}
    assert ndcg["content_profile"] > 0 and ndcg["content_knn"] > 0
    for name in ("rule_popular", "cf_als", "cf_ease", "hybrid_cascade"):
        assert ndcg[name] == 0.0, name
    relevant = pd.read_parquet(run / "artifacts" / "cf_als" / "fold0" / "relevant.parquet")
    new_items = set(relevant["item_id"])  # every test item is a held-out (new) item
    for name in ("rule_popular", "cf_als", "cf_ease"):
        lists = pd.read_parquet(run / "artifacts" / name / "fold0" / "topk.parquet")
        assert not set(lists["item_id"]) & new_items, name
    content = pd.read_parquet(run / "artifacts" / "content_knn" / "fold0" / "topk.parquet")
    assert len(set(content["item_id"]) & new_items) > 0
