"""The run's report: segments, cold-start protocols, the card, the leakage audit, report.md,
``bench report`` and ``bench compare`` — on a small CSV with the in-memory tracker."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from omegaconf import OmegaConf

from bench.cli import main
from bench.config import cold_start_settings, eval_settings, report_settings, stats_settings
from bench.errors import ConfigError, EvaluationError, IncomparableError
from bench.metrics.segments import history_buckets, new_item_relevance
from bench.reporting.analysis import RunData, ladder_models
from bench.reporting.compare import compare_runs, resolve_run
from bench.runner import run_experiment
from bench.tracking import MemoryTracker
from tests.helpers import POP, RANDOM, report_cfg, write_ratings_csv


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    """The runner tests' CSV (60 users, two taste groups), written once for this module."""
    return write_ratings_csv(tmp_path_factory.mktemp("data") / "ratings.csv")


@pytest.fixture(scope="module")
def run(csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r1"
    tracker = MemoryTracker()
    result = run_experiment(report_cfg(csv), output_dir=out, tracker=tracker)
    return result, tracker, out


# ---------------------------------------------------------------------------- pure pieces
def test_history_buckets_by_lower_edges():
    lengths = np.array([0, 1, 5, 6, 20, 21, 100, 101, 5000])
    got = history_buckets(lengths, [0, 1, 6, 21, 101])
    assert list(got) == ["0", "1-5", "1-5", "6-20", "6-20", "21-100", "21-100", "101+", "101+"]
    assert list(history_buckets(np.array([0, 3, 9]), [0, 10])) == ["0-9", "0-9", "0-9"]


def test_new_item_relevance_keeps_only_items_without_training_rows():
    rel = sp.csr_matrix(np.array([[1.0, 0, 1, 1], [0, 1, 0, 0], [1, 0, 0, 0]]))
    counts = np.array([3, 0, 0, 1])  # items 1 and 2 are new
    got = new_item_relevance(rel, counts).toarray()
    np.testing.assert_array_equal(got, [[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]])


@pytest.mark.parametrize(
    ("fn", "raw", "message"),
    [
        (eval_settings, {"segments": {"history": [1, 5]}}, r"eval\.segments\.history: .*at 0"),
        (eval_settings, {"segments": {"history": [0, 5, 5]}}, r"eval\.segments\.history"),
        (eval_settings, {"segments": {"colour": 1}}, r"eval\.segments: unknown key.*colour"),
        (eval_settings, {"fail_on_leakage": "yes"}, r"eval\.fail_on_leakage: expected true"),
        (eval_settings, {"unscored_ratings": "mean"},
         r"eval\.unscored_ratings: expected one of \['exclude', 'surprise_default'\]"),
        (stats_settings, {"n_resamples": 0}, r"stats\.n_resamples: expected an integer >= 1"),
        (stats_settings, {"confidence": 1.5}, r"stats\.confidence: expected a number in \(0, 1\)"),
        (stats_settings, {"metrics": ["ndcg"]}, r"stats\.metrics: expected metric keys"),
        (stats_settings, {"baselin": "x"}, r"stats: unknown key.*baselin"),
        (cold_start_settings, {"user": {"fold_in": [3, 1]}}, r"cold_start\.user\.fold_in"),
        (cold_start_settings, {"user": {"quantile": 0}}, r"cold_start\.user\.quantile"),
        (cold_start_settings, {"item": {"fraction": 2}}, r"cold_start\.item\.fraction"),
        (cold_start_settings, {"users": {}}, r"cold_start: unknown key.*users"),
        (report_settings, {"headline": "ndcg"}, r"report\.headline: expected a metric key"),
        (report_settings, {"ladder": {"ml": "x"}}, r"report\.ladder: expected a mapping of"),
        (report_settings, {"curve_k": 0}, r"report\.curve_k: expected an integer >= 1"),
    ],
)
def test_new_config_keys_are_checked(fn, raw, message):
    with pytest.raises(ConfigError, match=message):
        fn(raw)


def test_settings_named_models_must_be_in_the_run(csv, tmp_path):
    for over, key in (({"stats": {"baseline": "cf_als"}}, "stats.baseline"),
                      ({"report": {"ladder": {"rule": "nope"}}}, r"report.ladder.rule"),
                      ({"eval": {"segments": {"rules": "seg"}}}, "eval.segments.rules")):
        with pytest.raises(ConfigError, match=key):
            run_experiment(report_cfg(csv, **over), output_dir=tmp_path / "x",
                           tracker=MemoryTracker())


# ---------------------------------------------------------------------------- a full run
def test_run_writes_report_figures_card_and_tables(run):
    result, tracker, out = run
    for name in ("report.md", "stats.json", "card.json", "results.json", "per_user.parquet",
                 "curves.parquet", "cold_start.parquet", "summary.md"):
        assert (out / name).is_file(), name
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert pngs == ["cold_start_history.png", "cold_start_users.png", "headline.png",
                    "lift_ladder.png", "metric_at_k.png", "tradeoff.png"]
    for p in (out / "figures").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (out / "report.md").read_text()
    for heading in ("## Is the next rung worth it?", "## Headline", "## The lift ladder",
                    "## Against the baseline `rule_popular`", "## Segments", "## Cold start",
                    "## Beyond accuracy", "## Metric@k", "### Evaluation card",
                    "### Leakage audit"):
        assert heading in text, heading
    assert "**rule -> collaborative** (`rule_popular` → `cf_ease`)" in text
    # the report, stats and figures went to the parent run
    parent = tracker.runs[result.parent_run_id]
    assert {"report.md", "card.json", "stats.json", "per_user.parquet"} <= {
        a.split("/")[-1] for a in parent.artifacts}


def test_per_user_table_and_segment_metrics(run):
    result, tracker, out = run
    per_user = pd.read_parquet(out / "per_user.parquet")
    assert list(per_user.columns[:4]) == ["model", "family", "fold", "user_id"]
    assert {"history", "history_bucket", "ndcg@10", "novelty@10", "arp@10"} <= set(
        per_user.columns)
    assert "ild@10" not in per_user  # a CSV without item features: no genre diversity
    for r in result.models:
        mine = per_user[per_user["model"] == r.model]
        assert len(mine) == r.n_users
        assert np.isclose(mine["ndcg@10"].mean(), r.metrics["ndcg@10"])
        # segment means are the means of the per-user values in the segment
        for label, group in mine.groupby("history_bucket"):
            assert np.isclose(r.segment_metrics[f"ndcg@10.hist_{label}"], group["ndcg@10"].mean())
            assert r.segment_metrics[f"users.hist_{label}"] == len(group)
        assert {"coverage@10", "gini@10", "personalisation@10"} <= set(r.metrics)
    child = next(c for c in tracker.runs.values() if c.name == "cf_ease/fold0")
    assert any(k.startswith("ndcg_at_10.hist_") for k in child.metrics)
    assert not any(k.startswith("ndcg_at_5.hist_") for k in child.metrics)  # table k only
    # temporal cut: every test user has a training history; the bucket matches the count
    assert (per_user["history"] > 0).all()


def test_metric_at_k_curve_agrees_with_cutoff_metrics(run):
    result, _, _ = run
    for r in result.models:
        assert len(r.curves["ndcg"]) == 15
        for k in (1, 5, 10):
            assert np.isclose(r.curves["ndcg"][k - 1], r.metrics[f"ndcg@{k}"])
            assert np.isclose(r.curves["precision"][k - 1], r.metrics[f"precision@{k}"])


def test_cold_start_protocols(run):
    _, tracker, out = run
    cold = pd.read_parquet(out / "cold_start.parquet")
    user = cold[cold["protocol"] == "user_cold_start"]
    assert sorted(set(user["level"])) == [0, 1, 3]
    # the same users are scored at every level
    for _, part in user.groupby("model"):
        sets = [frozenset(g["user_id"]) for _, g in part.groupby("level")]
        assert len(set(sets)) == 1
    ease = user[user["model"] == "cf_ease"]
    # no history: EASE cannot score a stranger, so it serves nobody: n/a (NaN), not 0
    assert ease.loc[ease["level"] == 0, "ndcg@10"].isna().all()
    assert len(ease[ease["level"] == 0]) == len(ease[ease["level"] == 3])  # still counted
    assert ease.loc[ease["level"] == 3, "ndcg@10"].notna().all()  # 3 items are enough
    assert ease.groupby("level")["ndcg@10"].mean()[3] > 0.0
    pop = user[user["model"] == "rule_popular"].groupby("level")["ndcg@10"].mean()
    assert pop[0] > 0.0
    item = cold[cold["protocol"] == "item_cold_start"]
    # no model here ever recommends an item it never saw in training: n/a, not 0
    assert item["ndcg@10"].isna().all() and len(item) > 0
    names = {c.name for c in tracker.runs.values()}
    assert {"cf_ease/user_cold_start", "cf_ease/item_cold_start"} <= names
    child = next(c for c in tracker.runs.values() if c.name == "cf_ease/user_cold_start")
    assert np.isnan(child.metrics["ndcg_at_10.fold_in_0"])
    assert child.metrics["ndcg_at_10.fold_in_3"] > 0.0


def test_cannot_serve_reads_n_a_in_the_report(run):
    _, _, out = run
    text = (out / "report.md").read_text()
    users = text.split("**New users.**")[1].split("**By training history**")[0]
    row = next(line for line in users.splitlines() if line.startswith("| `cf_ease` |"))
    # n/a at n=0, numbers at n=1 and 3, then the users evaluated at every level
    cells = [c.strip() for c in row.split("|")[2:-1]]
    assert cells[0] == "n/a" and float(cells[1]) > 0 and float(cells[2]) > 0
    assert "could serve none" in text  # the notes explain n/a
    items = text.split("**New items.**")[1]
    row = next(line for line in items.splitlines() if line.startswith("| `cf_ease` |"))
    served, total = row.split("|")[3].strip().split(" of ")
    assert row.startswith("| `cf_ease` | n/a | ") and served == "0" and int(total) > 0
    assert "cannot serve new items" in items


def test_card_names_data_split_protocol_and_code(run):
    result, _, out = run
    card = json.loads((out / "card.json").read_text())
    comp = card["comparable"]
    assert comp["dataset"]["fingerprint"] == result.dataset["fingerprint"]
    assert comp["split"]["fingerprints"] == [s["fingerprint"] for s in result.splits]
    assert comp["relevance"]["threshold"] == 4.0
    assert comp["cutoffs"] == [1, 5, 10]
    assert comp["seed"] == 3
    assert set(card["metric_definitions"]) >= {"precision", "ndcg", "coverage", "novelty"}
    assert card["versions"]["numpy"] == np.__version__
    assert "commit" in card["git"]
    assert card["leakage"][0]["future_train_rows"] == 0  # a global temporal cut


def test_report_numbers_match_stats_json(run):
    _, _, out = run
    stats = json.loads((out / "stats.json").read_text())
    per_user = pd.read_parquet(out / "per_user.parquet")
    head = {(r["model"], r["metric"]): r for r in stats["headline"]}
    for model in ("rule_popular", "cf_ease"):
        r = head[(model, "ndcg@10")]
        assert np.isclose(r["mean"], per_user.loc[per_user["model"] == model, "ndcg@10"].mean())
        assert r["low"] <= r["mean"] <= r["high"]
    base = {(r["model"], r["metric"]): r for r in stats["baseline"]}
    pop = per_user[per_user["model"] == "rule_popular"].set_index("user_id")["ndcg@10"]
    ease = per_user[per_user["model"] == "cf_ease"].set_index("user_id")["ndcg@10"]
    assert np.isclose(base[("cf_ease", "ndcg@10")]["diff"], (ease - pop).mean())


def test_ladder_uses_best_model_per_family_or_the_configured_one(run, csv, tmp_path):
    _, _, out = run
    data = RunData.load(out)
    assert ladder_models(data) == [("rule", "rule_popular"), ("collaborative", "cf_ease")]
    cfg = report_cfg(csv, report={"ladder": {"rule": "rule_random", "collaborative": "cf_ease"},
                                  "figures": False})
    run_experiment(cfg, output_dir=tmp_path / "l", tracker=MemoryTracker())
    text = (tmp_path / "l" / "report.md").read_text()
    assert "(`rule_random` → `cf_ease`)" in text
    assert not (tmp_path / "l" / "figures").exists()


# ---------------------------------------------------------------------------- commands
def test_bench_report_rebuilds_the_report(run, tmp_path, capsys):
    _, _, out = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "report.md").unlink()
    shutil.rmtree(copy / "figures")
    assert main(["report", str(copy)]) == 0
    assert (copy / "report.md").read_text() == (out / "report.md").read_text()
    assert len(list((copy / "figures").glob("*.png"))) == 6
    assert "6 figures" in capsys.readouterr().out


def test_bench_report_missing_run_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope"), "--reports-dir", str(tmp_path)]) == 2
    assert "expected a run folder with results.json" in capsys.readouterr().err


def test_resolve_run_by_experiment_name_takes_the_latest(tmp_path):
    for name in ("20260101-000000-aaaaaa", "20260102-000000-bbbbbb"):
        (tmp_path / "exp" / name).mkdir(parents=True)
        (tmp_path / "exp" / name / "results.json").write_text("{}")
    assert resolve_run("exp", tmp_path).name == "20260102-000000-bbbbbb"


def test_compare_same_run_is_all_zero(run, capsys):
    _, _, out = run
    frame = compare_runs(out, out)
    assert (frame["diff"] == 0).all() and (frame["p_t"] == 1.0).all()
    assert not frame["significant"].any()
    assert main(["compare", str(out), str(out)]) == 0
    assert "| `cf_ease` | ndcg@10 |" in capsys.readouterr().out


@pytest.mark.slow  # a second full run
def test_compare_finds_a_changed_model(run, csv, tmp_path):
    _, _, out = run
    cfg = report_cfg(csv, models={"rule_popular": POP, "rule_random": RANDOM, "cf_ease": POP})
    cfg.cold_start = {"user": None, "item": None}
    run_experiment(cfg, output_dir=tmp_path / "b", tracker=MemoryTracker())
    frame = compare_runs(out, tmp_path / "b").set_index(["model", "metric"])
    assert frame.loc[("rule_popular", "ndcg@10"), "diff"] == 0.0
    changed = frame.loc[("cf_ease", "ndcg@10")]
    assert changed["diff"] != 0.0 and changed["n"] > 0


@pytest.mark.slow  # a second full run
def test_compare_refuses_runs_of_different_splits(run, csv, tmp_path, capsys):
    _, _, out = run
    cfg = report_cfg(csv)
    cfg.split.quantile = 0.7
    cfg.cold_start = {"user": None, "item": None}
    run_experiment(cfg, output_dir=tmp_path / "other", tracker=MemoryTracker())
    with pytest.raises(IncomparableError, match="split fingerprints differ"):
        compare_runs(out, tmp_path / "other")
    assert main(["compare", str(out), str(tmp_path / "other")]) == 2
    assert "split fingerprints differ" in capsys.readouterr().err


# ---------------------------------------------------------------------------- leakage
def test_leakage_warns_by_default_and_fails_when_asked(csv, tmp_path):
    holdout = {"_target_": "bench.splits.holdout.RandomHoldoutSplitter", "fraction": 0.3,
               "seed": 0}
    cfg = report_cfg(csv, split=holdout, cold_start={"user": None, "item": None},
                     report={"figures": False})
    result = run_experiment(cfg, output_dir=tmp_path / "w", tracker=MemoryTracker())
    assert result.audits[0]["future_train_rows"] > 0
    assert "**Leakage warning (main):**" in (tmp_path / "w" / "report.md").read_text()
    cfg.eval.fail_on_leakage = True
    with pytest.raises(EvaluationError, match=r"eval\.fail_on_leakage is true"):
        run_experiment(cfg, output_dir=tmp_path / "f", tracker=MemoryTracker())


def test_config_yaml_documents_every_new_key():
    cfg = OmegaConf.load("configs/config.yaml")
    assert set(cfg.stats) == {"baseline", "metrics", "n_resamples", "confidence", "alpha",
                              "seed"}
    assert set(cfg.cold_start) == {"user", "item"}
    assert set(cfg.eval.segments) == {"history", "rules", "new_items"}
    assert {"figures", "headline", "curve_k", "ladder"} <= set(cfg.report)


def test_cold_start_sweep_without_timestamps_names_the_cold_start_key(tmp_path):
    from bench.errors import SplitError

    path = tmp_path / "r.csv"
    rows = [(u, i, 4.0) for u in range(30) for i in range(u % 7, u % 7 + 12)]
    pd.DataFrame(rows, columns=["user", "item", "stars"]).to_csv(path, index=False)
    cfg = report_cfg(path, split={"_target_": "bench.splits.holdout.RandomHoldoutSplitter",
                                  "fraction": 0.3, "seed": 0})
    cfg.dataset.columns = {"user_id": "user", "item_id": "item", "rating": "stars"}
    cfg.cold_start = {"user": {"fold_in": [0, 2]}, "item": None}
    with pytest.raises(SplitError,
                       match=r"cold_start\.user: .*no timestamps.*cold_start\.user=null"):
        run_experiment(cfg, output_dir=tmp_path / "o", tracker=MemoryTracker())


def test_every_protocol_is_audited_and_the_item_split_counted_exactly(run, csv):
    from bench.splits.cold_start import ItemColdStartSplitter
    from bench.targets import build

    result, _, out = run
    audits = {a["protocol"]: a for a in result.audits}
    assert list(audits) == ["main", "user_cold_start", "item_cold_start"]
    for protocol in ("main", "user_cold_start"):  # temporal: nothing from the future
        a = audits[protocol]
        assert a["future_train_rows"] == 0 and a["own_future_rows"] == 0, protocol
        assert a["fold_in_own_future_rows"] in (None, 0) and a["leaks"] == [], protocol
    assert audits["user_cold_start"]["split_cut"] is not None
    # the item protocol is not temporal: count its future training rows by hand
    data = build(report_cfg(csv).dataset, "dataset").interactions
    split = ItemColdStartSplitter(fraction=0.2, seed=0).split(data)[0]
    first_test = int(split.test.timestamps.min())
    expected = sum(int(t) >= first_test for t in split.train.timestamps)
    tied = sum(int(t) == first_test for t in split.train.timestamps)
    item = audits["item_cold_start"]
    assert item["future_train_rows"] == expected > 0
    assert item["future_train_rows_tied"] == tied
    report = (out / "report.md").read_text()
    assert "**Leakage warning (item_cold_start):**" in report
    assert "| user_cold_start | `temporal` |" in report and "| main (fold 0) |" in report
