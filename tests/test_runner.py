"""run_experiment end to end on a small CSV, with the in-memory tracker."""

import json

import numpy as np
import pytest

from bench.errors import ConfigError, EvaluationError
from bench.parquet import frame_bytes
from bench.runner import run_experiment
from bench.tracking import MemoryTracker
from tests.helpers import make_cfg


def test_run_writes_report_and_logs_parent_with_children(ratings_csv, tmp_path):
    tracker = MemoryTracker()
    result = run_experiment(make_cfg(ratings_csv), output_dir=tmp_path / "out", tracker=tracker)
    parents = [rid for rid, r in tracker.runs.items() if r.parent_id is None]
    assert len(parents) == 1
    children = tracker.children(parents[0])
    assert sorted(c.name for c in children) == ["rule_popular/fold0", "rule_random/fold0"]
    assert all(c.status == "FINISHED" for c in children)
    for c in children:
        assert "ndcg_at_10" in c.metrics and "precision_at_1" in c.metrics
        assert {"topk.parquet", "per_user.parquet", "relevant.parquet"} <= set(c.artifacts)
    summary = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {m["model"] for m in summary["models"]} == {"rule_popular", "rule_random"}
    assert (tmp_path / "out" / "summary.md").read_text().startswith("# t")
    frame = result.summary_frame()
    assert list(frame["model"]) == ["rule_popular", "rule_random"]
    # per-user values average to the logged mean
    for r in result.models:
        assert np.isclose(r.per_user["ndcg@10"].mean(), r.metrics["ndcg@10"])


@pytest.mark.slow  # two full runs (a determinism rerun)
def test_same_config_same_numbers(ratings_csv, tmp_path):
    a = run_experiment(make_cfg(ratings_csv), output_dir=tmp_path / "a", tracker=MemoryTracker())
    b = run_experiment(make_cfg(ratings_csv), output_dir=tmp_path / "b", tracker=MemoryTracker())
    assert [r.metrics for r in a.models] == [r.metrics for r in b.models]
    assert a.splits[0]["fingerprint"] == b.splits[0]["fingerprint"]


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"eval": {"cutoffs": [10, 5]}}, "eval.cutoffs: expected strictly ascending"),
        ({"eval": {"cutoffs": [0, 5]}}, "eval.cutoffs: expected every k > 0"),
        ({"eval": {"cutoffs": "ten"}}, "eval.cutoffs: expected a non-empty list"),
        ({"eval": {"cutofs": [10]}}, r"eval: unknown key\(s\) \['cutofs'\]"),
        ({"evall": {}}, r"unknown top-level key\(s\) \['evall'\]"),
        ({"seed": "x"}, "seed: expected an integer"),
        ({"eval": {"relevance_threshold": 9.0}}, "within the rating scale"),
        ({"models": {"m": {"_target_": "os.system", "command": "true"}}},
         "inside the 'bench' package"),
        ({"models": {"m": {"_target_": "bench.models.rule.popular.PopularityRecommender",
                           "min_cnt": 2}}}, r"models.m: unknown key\(s\) \['min_cnt'\]"),
        ({"models": {"m": {"_target_": "bench.models.rule.popular.Nope"}}}, "does not exist"),
    ],
)
def test_bad_config_is_one_clear_error(ratings_csv, tmp_path, over, match):
    with pytest.raises(ConfigError, match=match):
        run_experiment(make_cfg(ratings_csv, **over), output_dir=tmp_path, tracker=MemoryTracker())


def test_no_relevant_item_is_an_evaluation_error(ratings_csv, tmp_path):
    cfg = make_cfg(ratings_csv, eval={"cutoffs": [5], "relevance_threshold": 5.0})
    # ratings are 3..5, so some are 5; make the threshold unreachable within scale instead
    cfg.dataset.rating_scale = [1, 6]
    cfg.eval.relevance_threshold = 6.0
    with pytest.raises(EvaluationError, match="no relevant item"):
        run_experiment(cfg, output_dir=tmp_path, tracker=MemoryTracker())


@pytest.mark.slow
def test_rating_table_per_fold_and_mean(ratings_csv, tmp_path):
    from bench.reporting.summary import rating_frame, rating_table

    cfg = make_cfg(
        ratings_csv,
        split={"_target_": "bench.splits.kfold.KFoldSplitter", "n_folds": 2, "seed": 0},
        models={"svd": {"_target_": "bench.models.collaborative.surprise.SurpriseRecommender",
                        "algorithm": "BaselineOnly"},
                "rule_popular": {"_target_": "bench.models.rule.popular.PopularityRecommender"}},
    )
    result = run_experiment(cfg, output_dir=tmp_path / "out", tracker=MemoryTracker())
    frame = rating_frame(result)
    assert list(frame["model"]) == ["svd"]  # popularity predicts no ratings
    folds = [r for r in result.models if r.model == "svd"]
    assert frame.loc[0, "rmse_fold0"] == folds[0].metrics["rmse"]
    assert frame.loc[0, "rmse"] == pytest.approx(np.mean([r.metrics["rmse"] for r in folds]))
    assert frame.loc[0, "mae"] == pytest.approx(np.mean([r.metrics["mae"] for r in folds]))
    assert "rmse_fold1" in rating_table(result)
    assert "Rating prediction" in (tmp_path / "out" / "summary.md").read_text()


def test_relevant_artifact_holds_each_relevant_pair_with_its_test_rating(ratings_csv, tmp_path):
    import pandas as pd

    run_experiment(make_cfg(ratings_csv), output_dir=tmp_path / "o", tracker=MemoryTracker())
    rel = pd.read_parquet(tmp_path / "o" / "artifacts" / "rule_popular" / "fold0" /
                          "relevant.parquet")
    raw = pd.read_csv(ratings_csv).rename(columns={"user": "user_id", "item": "item_id"})
    merged = rel.merge(raw, on=["user_id", "item_id"], how="left")
    assert len(merged) == len(rel) > 0
    assert (merged["rating"] == merged["stars"]).all()  # read by code, equal to the file
    assert (rel["rating"] >= 4.0).all()  # only relevant pairs (threshold 4)
    # encoded once per split: every model's cell holds the same file, byte for byte
    folder = tmp_path / "o" / "artifacts"
    files = sorted(folder.glob("*/fold0/relevant.parquet"))
    assert len(files) == 2
    assert files[0].read_bytes() == files[1].read_bytes()
    # the harness's own encoding (bench.parquet): the file it would write for this frame
    assert files[0].read_bytes() == frame_bytes(rel)


def test_auto_segment_rules_label_every_model_with_the_segmenting_models_labels(tmp_path):
    """``eval.segments.rules: auto`` picks the first model that segments users itself —
    ``rule_segment`` here, not the hybrid listed before it that only forwards a child's
    labels — and every model's users carry its labels."""
    from tests.helpers import compose_config

    cfg = compose_config(["tracker=none", "report.figures=false", "~experiment",
                          "model=[hybrid_fallback,rule_popular,rule_segment]"])
    assert cfg.eval.segments.rules == "auto"
    result = run_experiment(cfg, output_dir=tmp_path / "run")
    frame = result.per_user_frame()
    labels = frame.pivot(index="user_id", columns="model", values="segment")
    assert labels["rule_segment"].notna().all() and len(labels) > 100
    for model in ("hybrid_fallback", "rule_popular"):
        assert labels[model].equals(labels["rule_segment"].rename(model))
    assert labels["rule_segment"].nunique() >= 2
