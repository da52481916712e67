"""The Python API: bench.run, bench.evaluate, Result — the same numbers as the command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bench
from bench.errors import ConfigError
from bench.models.base import Recommender
from bench.models.rule.popular import PopularityRecommender


def tiny(tmp_path, models="[rule_popular,rule_random]") -> list[str]:
    return ["~experiment", f"model={models}", "tracker=none", "report.figures=false",
            "split=temporal", "eval.cutoffs=[5,10]", f"report.dir={tmp_path / 'reports'}"]


class ItemMeanRating(Recommender):
    """Ranks items by their mean training rating, damped toward 3 (a model a team wrote)."""

    family = "rule"

    def __init__(self, *, damping: float = 5.0):
        self.damping = damping

    def _fit(self, train, item_features, user_features):
        sums = np.bincount(train.items, weights=train.ratings, minlength=train.n_items)
        counts = np.bincount(train.items, minlength=train.n_items)
        self.item_scores_ = ((sums + 3.0 * self.damping) / (counts + self.damping)).astype(
            np.float32)

    def _score(self, users, history):
        return np.broadcast_to(self.item_scores_, (len(users), len(self.item_scores_))).copy()


def test_public_names_are_exported_lazily():
    assert {"run", "evaluate", "compose", "Result", "Recommender",
            "check_recommender"} <= set(bench.__all__)
    assert bench.Recommender is Recommender


def test_run_returns_means_with_intervals_per_user_rows_lists_and_the_card(tmp_path):
    result = bench.run(tiny(tmp_path))
    means = result.means()
    row = means[(means["model"] == "rule_popular") & (means["metric"] == "ndcg@10")].iloc[0]
    per_user = result.per_user[result.per_user["model"] == "rule_popular"]
    assert row["mean"] == pytest.approx(per_user["ndcg@10"].mean(), abs=1e-12)
    assert row["low"] <= row["mean"] <= row["high"] and row["n"] == len(per_user)
    lists = result.lists("rule_popular")
    assert set(lists["user_id"]) == set(per_user["user_id"])
    assert result.card["comparable"]["split"]["fingerprints"]
    assert [m.model for m in result.record.models] == ["rule_popular", "rule_random"]
    with pytest.raises(ConfigError, match="no lists for model 'nope'"):
        result.lists("nope")


def test_evaluate_a_constructed_model_next_to_the_configured_ones(tmp_path):
    result = bench.evaluate(ItemMeanRating(damping=10.0), tiny(tmp_path, "[rule_popular]"))
    models = {m.model: m for m in result.run.models}
    assert set(models) == {"rule_popular", "item_mean_rating"}
    mine = models["item_mean_rating"]
    assert mine.params == {"damping": 10.0} and mine.target.endswith(".ItemMeanRating")
    assert 0 < mine.metrics["ndcg@10"] < 1
    assert "item_mean_rating" in (result.folder / "report.md").read_text()


def test_evaluate_reproduces_the_built_in_config_exactly(tmp_path):
    """A PopularityRecommender built in Python equals the rule_popular config, per user."""
    result = bench.evaluate(PopularityRecommender(), tiny(tmp_path, "[rule_popular]"),
                            name="mine")
    frame = result.per_user.drop(columns=["family"])
    a = frame[frame["model"] == "rule_popular"].drop(columns="model").reset_index(drop=True)
    b = frame[frame["model"] == "mine"].drop(columns="model").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_the_class_is_allowed_only_for_that_call(tmp_path):
    """Outside evaluate(), a config naming the same class is refused before anything runs."""
    target = f"{ItemMeanRating.__module__}.ItemMeanRating"
    with pytest.raises(ConfigError, match="inside the 'bench' package"):
        bench.run([*tiny(tmp_path, "[rule_popular]"), f"+models.mine={{_target_: {target}}}"])


def test_evaluate_refuses_what_it_cannot_rebuild(tmp_path):
    class Holder(ItemMeanRating):
        def __init__(self, *, damping=None):
            self.damping = damping

    with pytest.raises(ConfigError, match=r"Holder\.damping: expected plain data"):
        bench.evaluate(Holder(damping=object()), tiny(tmp_path, "[rule_popular]"))
    with pytest.raises(ConfigError, match="already in the run"):
        bench.evaluate(PopularityRecommender(), tiny(tmp_path, "[rule_popular]"),
                       name="rule_popular")
    with pytest.raises(ConfigError, match=r"expected a bench\.models\.base\.Recommender"):
        bench.evaluate(object(), tiny(tmp_path))
