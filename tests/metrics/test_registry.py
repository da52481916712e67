"""The metric registry and MetricKey: one definition per metric, one grammar per key."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bench.config import KNOWN_METRICS, EvalSettings
from bench.errors import ConfigError
from bench.evaluation import accuracy_keys, segment_metrics
from bench.metrics import beyond, evaluate_rankings, mlflow_key
from bench.metrics.keys import (
    ITEM_COLD,
    NEW_ITEMS,
    MetricKey,
    fold_in_segment,
    history_segment,
    rule_segment,
    segment_kind,
)
from bench.metrics.ranking import RankedHits
from bench.metrics.registry import (
    BEYOND,
    BEYOND_METRICS,
    CURVE_METRICS,
    DEFINITIONS,
    METRICS,
    RANKING,
    RANKING_METRICS,
    RATING,
    RATING_METRICS,
    check_key,
    definitions,
    direction,
    higher_is_better,
    metric,
    names,
)
from bench.reporting.card import METRIC_DEFINITIONS

TESTS = Path(__file__).parent

# ------------------------------------------------------------------ keys
#: (text, metric, k, segment, MLflow form): every key shape a run writes.
SHAPES = [
    ("ndcg@10", "ndcg", 10, None, "ndcg_at_10"),
    ("hit_rate@20", "hit_rate", 20, None, "hit_rate_at_20"),
    ("coverage@10", "coverage", 10, None, "coverage_at_10"),
    ("rmse", "rmse", None, None, "rmse"),
    ("rating_pairs_unpredicted", "rating_pairs_unpredicted", None, None,
     "rating_pairs_unpredicted"),
    ("ndcg@10.hist_1-5", "ndcg", 10, "hist_1-5", "ndcg_at_10.hist_1-5"),
    ("ndcg@10.hist_0", "ndcg", 10, "hist_0", "ndcg_at_10.hist_0"),
    ("recall@5.hist_101+", "recall", 5, "hist_101+", "recall_at_5.hist_101plus"),
    ("map@20.seg_heavy users", "map", 20, "seg_heavy users", "map_at_20.seg_heavy users"),
    ("mrr@1.seg_a.b@c:d", "mrr", 1, "seg_a.b@c:d", "mrr_at_1.seg_a.b_at_c_d"),
    ("ndcg@10.new_items", "ndcg", 10, "new_items", "ndcg_at_10.new_items"),
    ("n_relevant.new_items", "n_relevant", None, "new_items", "n_relevant.new_items"),
    ("users.hist_1-5", "users", None, "hist_1-5", "users.hist_1-5"),
    ("users.seg_heavy", "users", None, "seg_heavy", "users.seg_heavy"),
    ("users.new_items", "users", None, "new_items", "users.new_items"),
    ("ndcg@10.fold_in_3", "ndcg", 10, "fold_in_3", "ndcg_at_10.fold_in_3"),
    ("precision@10.item_cold", "precision", 10, "item_cold", "precision_at_10.item_cold"),
]


@pytest.mark.parametrize(("text", "name", "k", "segment", "mlflow"), SHAPES)
def test_key_round_trip(text, name, k, segment, mlflow):
    key = MetricKey.parse(text)
    assert (key.metric, key.k, key.segment) == (name, k, segment)
    assert str(key) == text
    assert MetricKey.parse(str(key)) == key
    assert MetricKey(name, k, segment) == key
    assert key.mlflow == mlflow == mlflow_key(text)


def test_every_key_a_run_writes_round_trips():
    """segment_metrics and the per-user columns: every key parses and formats back."""
    settings = EvalSettings(cutoffs=(5, 10), metrics=("ndcg", "recall"))
    keys = accuracy_keys(settings)
    assert keys == ["ndcg@5", "ndcg@10", "recall@5", "recall@10"]
    rng = np.random.default_rng(0)
    per_user = pd.DataFrame({
        "history_bucket": ["0", "1-5", "101+", "1-5"],
        "segment": ["heavy", "light", "heavy", "x.y"],
        "n_relevant.new_items": [0, 1, 2, 0],
        **{k: rng.random(4) for k in keys},
        **{f"{k}.new_items": [np.nan, 0.5, 1.0, np.nan] for k in keys},
    })
    out = segment_metrics(per_user, keys)
    assert "ndcg@10.hist_101+" in out and "users.seg_x.y" in out and "recall@5.new_items" in out
    assert out["users.new_items"] == 2.0
    for text in [*out, *per_user.columns]:
        key = MetricKey.try_parse(text)
        if text in ("history_bucket", "segment"):
            continue
        assert key is not None and str(key) == text, text


@pytest.mark.parametrize("bad", [
    "", "@10", "ndcg@", "ndcg@0", "ndcg@-1", "ndcg@010", "ndcg@x", "ndcg@10.", "ndcg@10@5",
    "1ndcg@10", "nd cg@10", "ndcg@10 ", 10, None,
])
def test_parse_errors_are_one_clear_line(bad):
    with pytest.raises(ConfigError) as err:
        MetricKey.parse(bad)
    msg = str(err.value)
    assert msg.startswith("metric key: expected <metric>[@<k>][.<segment>]") and "\n" not in msg
    assert repr(bad) in msg
    with pytest.raises(ConfigError, match=r"^stats\.metrics: expected .*, got "):
        MetricKey.parse(bad, where="stats.metrics")
    assert MetricKey.try_parse(bad) is None


def test_key_fields_are_checked():
    assert MetricKey("ndcg", np.int64(10)).k == 10
    assert type(MetricKey("ndcg", np.int64(10)).k) is int
    for bad in [("", 1), ("a@b", 1), ("ndcg", 0), ("ndcg", True), ("ndcg", 1.0),
                ("ndcg", 1, ""), ("ndcg", 1, 3)]:
        with pytest.raises(ConfigError):
            MetricKey(*bad)


def test_key_helpers():
    key = MetricKey.parse("ndcg@10")
    assert key.is_cutoff_metric
    assert str(key.over(history_segment("1-5"))) == "ndcg@10.hist_1-5"
    assert str(key.over(rule_segment("heavy"))) == "ndcg@10.seg_heavy"
    assert str(key.over(NEW_ITEMS)) == "ndcg@10.new_items"
    assert str(key.over(fold_in_segment(np.int64(3)))) == "ndcg@10.fold_in_3"
    assert key.over(ITEM_COLD).mlflow == "ndcg_at_10.item_cold"
    assert key.over(NEW_ITEMS).overall == key
    assert not key.over(NEW_ITEMS).is_cutoff_metric
    assert not MetricKey("users").is_cutoff_metric
    assert segment_kind(None) == ("all", None)
    assert segment_kind("hist_1-5") == ("history_bucket", "1-5")
    assert segment_kind("seg_a.b") == ("segment", "a.b")
    assert segment_kind("new_items") == ("new_items", None)
    assert segment_kind("fold_in_0") == ("fold_in", "0")
    assert segment_kind("item_cold") == ("item_cold", None)
    assert segment_kind("cold") == ("other", "cold")
    assert segment_kind("hist_") == ("other", "hist_")


# ------------------------------------------------------------------ registry
def test_kinds_and_derived_lists():
    # new ranking metrics are appended: the first six keep their order (and configs' meaning)
    assert RANKING_METRICS[:6] == ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
    assert BEYOND_METRICS == ("coverage", "novelty", "ild", "arp", "gini", "personalisation")
    assert RATING_METRICS == ("rmse", "mae")
    assert set(names()) == set(RANKING_METRICS + BEYOND_METRICS + RATING_METRICS)
    assert len(names()) == len(DEFINITIONS) == len(METRICS)
    assert names(RANKING) == RANKING_METRICS and names(BEYOND) == BEYOND_METRICS
    assert names(RATING) == RATING_METRICS
    assert CURVE_METRICS == ("precision", "recall", "ndcg")
    assert KNOWN_METRICS == RANKING_METRICS == EvalSettings().metrics
    assert list(METRIC_DEFINITIONS) == list(METRICS) == list(definitions())


def test_which_way_is_better():
    lower = {"arp", "gini", "rmse", "mae"}
    for m in DEFINITIONS:
        assert m.higher_is_better == (m.name not in lower), m.name
        assert direction(m.name) == (-1 if m.name in lower else 1)
    assert direction("arp@10.hist_1-5") == -1
    assert direction(MetricKey("ndcg", 10, NEW_ITEMS)) == 1
    assert higher_is_better("ndcg@10") and not higher_is_better("gini@5")
    with pytest.raises(ConfigError):
        direction("users.hist_1-5")


def test_cutoffs_and_lookup():
    for m in DEFINITIONS:
        assert m.cutoff == (m.kind != RATING), m.name
        assert m.key(10 if m.cutoff else None) == check_key(str(m.key(10 if m.cutoff else None)))
    assert check_key("ndcg@10.hist_1-5") == MetricKey("ndcg", 10, "hist_1-5")
    assert metric("ndcg") is METRICS["ndcg"]
    for bad, match in [("ndcg", "'ndcg@<k>'"), ("rmse@10", "'rmse' \\(no cutoff\\)"),
                       ("foo@10", "a key of one of the metrics"), ("ndcg@x", "<metric>")]:
        with pytest.raises(ConfigError, match=f"^check.metrics: expected {match}"):
            check_key(bad, where="check.metrics")
    with pytest.raises(ConfigError, match=r"^eval\.metrics: expected one of \["):
        metric("nope", where="eval.metrics")


def test_every_metric_is_documented_with_a_formula():
    for m in DEFINITIONS:
        doc = m.function.__doc__ or ""
        # a formula: "Precision@k = hits@k / k.", "G = sum_j ...", "error: ``sqrt(...)``"
        assert re.search(r" = |: ``\S", doc), (m.name, doc)
        assert m.summary and "\n" not in m.summary, m.name
        if m.kind == RANKING:
            assert m.columns.__doc__ and m.function.__name__ in m.columns.__doc__, m.name


def test_every_metric_has_hand_computed_tests():
    """Each metric's function is exercised in the test file of its kind."""
    files = {RANKING: "test_ranking.py", BEYOND: "test_beyond.py", RATING: "test_rating.py"}
    text = {kind: (TESTS / name).read_text() for kind, name in files.items()}
    for m in DEFINITIONS:
        assert f"{m.function.__name__}(" in text[m.kind], (m.name, files[m.kind])


def test_every_ranking_metric_is_evaluated_and_matches_its_function():
    rng = np.random.default_rng(3)
    n_users, n_items, width = 60, 40, 12
    recs = np.array([rng.permutation(n_items)[:width] for _ in range(n_users)])
    recs[rng.random(recs.shape) < 0.1] = -1
    rel = sp.csr_matrix(np.where(rng.random((n_users, n_items)) < 0.15, 1.0, 0.0))
    ev = evaluate_rankings(recs, rel, cutoffs=(1, 4, 12), metrics=RANKING_METRICS)
    assert list(ev.per_user) == [f"{m}@{k}" for m in RANKING_METRICS for k in (1, 4, 12)]
    relevant = rel[ev.users]
    hits = np.zeros((len(ev.users), width), dtype=bool)
    for row, u in enumerate(ev.users):
        hits[row] = np.isin(recs[u], relevant[row].indices) & (recs[u] >= 0)
    n_rel = ev.n_relevant
    ranked = RankedHits(hits, n_rel.astype(np.float64), (1, 4, 12))
    for name in RANKING_METRICS:
        m = METRICS[name]
        table = m.columns(ranked)
        for j, k in enumerate((1, 4, 12)):
            args = (hits, k) if name in ("precision", "mrr", "hit_rate") else (hits, n_rel, k)
            np.testing.assert_array_equal(ev.per_user[f"{name}@{k}"], table[:, j])
            # one cutoff sums the ranks in one segment, several in a few: equal to rounding
            np.testing.assert_allclose(m.function(*args), table[:, j], rtol=1e-13, atol=0)


def test_beyond_metrics_match_the_beyond_module():
    per_user = tuple(m.name for m in DEFINITIONS if m.kind == BEYOND and m.per_user)
    aggregate = tuple(m.name for m in DEFINITIONS if m.kind == BEYOND and not m.per_user)
    assert set(per_user) == set(beyond.PER_USER_METRICS)
    assert set(aggregate) == set(beyond.AGGREGATE_METRICS)
    recs = np.array([[0, 1, -1], [2, 1, 0]])
    out = beyond.beyond_accuracy(recs, (2,), item_counts=np.array([3, 1, 2]), n_train_users=4,
                                 item_features=np.eye(3))
    assert {MetricKey.parse(k).metric for k in [*out.per_user, *out.aggregate]} == set(
        BEYOND_METRICS)
