"""Training seeds (``seeds=[...]``): which keys take a seed, one cell per (model, fold,
seed), per-user means over seeds, the spread in the report and card, and resume."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from bench.api import Result
from bench.cells import Cell
from bench.errors import ConfigError
from bench.models.collaborative.als import ImplicitALS
from bench.progress import cell_label
from bench.reporting.analysis import RunData
from bench.runner import run_experiment
from bench.seeds import (
    mean_over_seeds,
    model_variants,
    seed_spread,
    seeded_paths,
    unresolved_models,
    with_seed,
)
from bench.tracking import MemoryTracker
from tests.helpers import compose_config

TINY = ["~experiment", "seed=5", "name=seeds", "tracker=none", "dataset=synthetic",
        "dataset.n_users=120", "dataset.n_items=80", "dataset.n_interactions=2400",
        "split=temporal", "report.figures=false", "report.curve_k=10",
        "stats.n_resamples=50", "stats.baseline=rule_popular", "cold_start.user=null",
        "cold_start.item=null"]
MODELS = "model=[rule_popular,cf_als,hybrid_blend]"


def tiny(tmp, *extra):
    return compose_config([*TINY, MODELS, f"report.dir={tmp}", *extra])


# ---------------------------------------------------------------------- which keys
def test_seed_keys_are_found_in_plain_surprise_and_nested_child_configs():
    raw = unresolved_models(compose_config(
        ["~experiment", "model=[rule_popular,cf_als,cf_surprise_svd,hybrid_blend,cf_ease]"]))
    assert seeded_paths(raw["cf_als"]) == [("seed",)]
    assert seeded_paths(raw["cf_surprise_svd"]) == [("random_state",)]
    # the blend's ALS child is reached through components; popularity has no seed
    assert seeded_paths(raw["hybrid_blend"]) == [("components", "cf_als", "seed")]
    assert seeded_paths(raw["rule_popular"]) == []
    assert seeded_paths(raw["cf_ease"]) == []


def test_a_pinned_seed_is_not_a_training_seed():
    raw = unresolved_models(compose_config(["~experiment", "model=[cf_als]",
                                            "models.cf_als.seed=7"]))
    assert seeded_paths(raw["cf_als"]) == []


def test_lists_are_walked_and_with_seed_leaves_its_input_alone():
    node = {"a": [{"s": "${seed}"}, 3], "b": {"c": "${seed}", "d": "x${seed}"}}
    paths = seeded_paths(node)
    assert paths == [("a", 0, "s"), ("b", "c")]
    resolved = {"a": [{"s": 42}, 3], "b": {"c": 42, "d": "x42"}}
    out = with_seed(resolved, paths, 9)
    assert out == {"a": [{"s": 9}, 3], "b": {"c": 9, "d": "x42"}}
    assert resolved["a"][0]["s"] == 42 and resolved["b"]["c"] == 42


def test_variants_run_seeded_models_once_per_seed_and_the_others_once():
    models = {"p": {"_target_": "P"}, "r": {"_target_": "R", "seed": 42}}
    raw = {"p": {"_target_": "P"}, "r": {"_target_": "R", "seed": "${seed}"}}
    got = model_variants(models, raw, (1, 2))
    assert got == {"p": [(None, models["p"])],
                   "r": [(1, {"_target_": "R", "seed": 1}), (2, {"_target_": "R", "seed": 2})]}
    assert model_variants(models, raw, None) == {"p": [(None, models["p"])],
                                                 "r": [(None, models["r"])]}


def test_mean_over_seeds_averages_floats_and_keeps_labels():
    rows = pd.DataFrame({
        "model": ["a"] * 4 + ["b"], "family": "f", "fold": 0,
        "seed": pd.array([1, 2, 1, 2, pd.NA], dtype="Int64"),
        "user_id": [7, 7, 8, 8, 7], "n_relevant": [2, 2, 1, 1, 2],
        "history_bucket": ["1-5", "1-5", "0", "0", "1-5"],
        "ndcg@10": [0.25, 0.75, 0.0, 0.5, 0.125],
    })
    out = mean_over_seeds(rows)
    assert list(out.columns) == ["model", "family", "fold", "user_id", "n_relevant",
                                 "history_bucket", "ndcg@10"]
    assert out["ndcg@10"].tolist() == [0.5, 0.25, 0.125]
    assert out["n_relevant"].tolist() == [2, 1, 2]
    assert out["history_bucket"].tolist() == ["1-5", "0", "1-5"]
    plain = rows.drop(columns="seed")
    assert mean_over_seeds(plain) is plain  # no seeds: the frame as it is


# ---------------------------------------------------------------------- a run with seeds
@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seeds")
    tracker = MemoryTracker()
    result = run_experiment(tiny(tmp, "seeds=[1,2,3]"), output_dir=tmp / "r1", tracker=tracker)
    return tmp, result, tracker


@pytest.mark.slow
def test_three_cells_per_seeded_model_and_one_per_deterministic(seeded):
    tmp, result, tracker = seeded
    cells = [(m.model, m.fold, m.seed) for m in result.models]
    assert cells == [("rule_popular", 0, None), ("cf_als", 0, 1), ("cf_als", 0, 2),
                     ("cf_als", 0, 3), ("hybrid_blend", 0, 1), ("hybrid_blend", 0, 2),
                     ("hybrid_blend", 0, 3)]
    assert len({m.config_hash for m in result.models}) == 7  # one resume key per cell
    # the seed reached the model, also the blend's nested ALS child
    assert [m.params["seed"] for m in result.models if m.model == "cf_als"] == [1, 2, 3]
    assert [m.params["components.cf_als.seed"] for m in result.models
            if m.model == "hybrid_blend"] == [1, 2, 3]
    children = sorted(r.name for r in tracker.runs.values() if r.parent_id)
    assert children == ["cf_als/fold0/seed1", "cf_als/fold0/seed2", "cf_als/fold0/seed3",
                        "hybrid_blend/fold0/seed1", "hybrid_blend/fold0/seed2",
                        "hybrid_blend/fold0/seed3", "rule_popular/fold0"]
    assert all((tmp / "r1" / "artifacts" / "cf_als" / "fold0" / f"seed{s}" / "done.json")
               .is_file() for s in (1, 2, 3))
    assert (tmp / "r1" / "artifacts" / "rule_popular" / "fold0" / "done.json").is_file()
    lists = Result(result).lists("cf_als", 0, seed=2)
    assert len(lists) and set(lists["source"]) == {"cf_als"}
    with pytest.raises(ConfigError, match=r"cf_als ran with training seeds \[1, 2, 3\]"):
        Result(result).lists("cf_als", 0)


@pytest.mark.slow
def test_per_user_rows_keep_the_seed_and_statistics_use_the_mean(seeded):
    tmp, _, _ = seeded
    rows = pd.read_parquet(tmp / "r1" / "per_user.parquet")
    assert str(rows["seed"].dtype) == "Int64"
    assert rows.loc[rows["model"] == "rule_popular", "seed"].isna().all()
    n = int((rows["model"] == "rule_popular").sum())
    assert (rows["model"] == "cf_als").sum() == 3 * n
    data = RunData.load(tmp / "r1")
    als = rows[rows["model"] == "cf_als"].pivot(index="user_id", columns="seed",
                                                values="ndcg@10")
    mean = data.users("cf_als").set_index("user_id")["ndcg@10"]
    np.testing.assert_allclose(mean.loc[als.index].to_numpy(), als.mean(axis=1).to_numpy(),
                               rtol=0, atol=1e-15)
    assert len(data.users("cf_als")) == n
    # seeds really change ALS: its per-seed lists differ for some user
    assert (als.max(axis=1) > als.min(axis=1)).any()
    stats = json.loads((tmp / "r1" / "stats.json").read_text())
    head = {(r["model"], r["metric"]): r for r in stats["headline"]}
    assert head[("cf_als", "ndcg@10")]["n"] == n
    assert head[("cf_als", "ndcg@10")]["mean"] == pytest.approx(mean.mean(), abs=1e-12)


@pytest.mark.slow
def test_spread_is_positive_for_als_and_absent_for_popularity(seeded):
    tmp, result, _ = seeded
    spread = seed_spread(result.models, "ndcg@10").set_index("model")
    per_seed = [m.metrics["ndcg@10"] for m in result.models if m.model == "cf_als"]
    assert spread.at["cf_als", "seeds"] == 3
    assert spread.at["cf_als", "sd"] == pytest.approx(np.std(per_seed, ddof=1), abs=1e-15)
    assert spread.at["cf_als", "sd"] > 0
    assert spread.at["cf_als", "min"] == min(per_seed)
    assert spread.at["rule_popular", "seeds"] == 0
    assert np.isnan(spread.at["rule_popular", "sd"])  # no fake zero spread
    report = (tmp / "r1" / "report.md").read_text()
    assert "## Training seeds" in report
    sd = spread.at["cf_als", "sd"]
    assert f"| `cf_als` | 3 | {spread.at['cf_als', 'mean']:.4f} | {sd:.4f} |" in report
    assert "| `rule_popular` |" not in report.split("## Training seeds")[1].split("##")[0]
    assert "Trained once, no spread to show" in report and "pinned): `rule_popular`." in report
    card = json.loads((tmp / "r1" / "card.json").read_text())
    assert card["comparable"]["seeds"] == [1, 2, 3]
    block = card["training_seeds"]
    assert block["models"]["rule_popular"] == "runs once (no ${seed} key)"
    assert block["models"]["cf_als"]["sd"] == pytest.approx(sd, abs=1e-15)
    assert block["models"]["cf_als"]["per_seed"] == {str(s): v
                                                     for s, v in zip((1, 2, 3), per_seed,
                                                                     strict=True)}
    stats = json.loads((tmp / "r1" / "stats.json").read_text())
    assert {r["model"] for r in stats["seed_spread"]} == {"rule_popular", "cf_als",
                                                           "hybrid_blend"}


@pytest.mark.slow
def test_resume_with_seeds_trains_only_the_new_seed(seeded, monkeypatch):
    tmp, first, _ = seeded
    fits = []
    original = ImplicitALS._fit
    monkeypatch.setattr(ImplicitALS, "_fit", lambda self, *a, **k: fits.append(self.seed)
                        or original(self, *a, **k))
    tracker = MemoryTracker()
    second = run_experiment(tiny(tmp, "seeds=[1,2,3,4]", f"resume={tmp / 'r1'}"),
                            output_dir=tmp / "r2", tracker=tracker)
    assert fits == [4]  # seed 4 only: cf_als, whose fit the blend's ALS child shares
    resumed = sorted(r.name for r in tracker.runs.values()
                     if "recspectrum.resumed_from" in r.tags)
    assert resumed == ["cf_als/fold0/seed1", "cf_als/fold0/seed2", "cf_als/fold0/seed3",
                       "hybrid_blend/fold0/seed1", "hybrid_blend/fold0/seed2",
                       "hybrid_blend/fold0/seed3", "rule_popular/fold0"]
    old = {(m.model, m.seed): m.metrics for m in first.models}
    for m in second.models:  # reused cells read back bit for bit
        if (m.model, m.seed) in old:
            ref = old[(m.model, m.seed)]
            assert list(m.metrics) == list(ref)
            np.testing.assert_array_equal(list(m.metrics.values()), list(ref.values()))


@pytest.mark.slow
def test_one_seed_equal_to_seed_computes_exactly_what_seeds_null_does(tmp_path):
    """The seeded path adds bookkeeping, never another computation: ``seeds=[5]`` with
    ``seed=5`` gives every model the config (and key) of ``seeds=null``, bit for bit."""
    off = run_experiment(tiny(tmp_path), output_dir=tmp_path / "off", tracker=MemoryTracker())
    one = run_experiment(tiny(tmp_path, "seeds=[5]"), output_dir=tmp_path / "one",
                         tracker=MemoryTracker())
    assert [m.config_hash for m in off.models] == [m.config_hash for m in one.models]
    assert [m.seed for m in off.models] == [None, None, None]
    assert [m.seed for m in one.models] == [None, 5, 5]
    for a, b in zip(off.models, one.models, strict=True):
        assert list(a.metrics) == list(b.metrics)
        np.testing.assert_array_equal(list(a.metrics.values()), list(b.metrics.values()))
        cols = [c for c in a.per_user.columns if c != "seed"]
        pd.testing.assert_frame_equal(a.per_user[cols], b.per_user[cols])
    # seeds off writes no seed anywhere: the record and tables are those of before
    assert "seed" not in pd.read_parquet(tmp_path / "off" / "per_user.parquet")
    record = json.loads((tmp_path / "off" / "results.json").read_text())
    assert "seeds" not in record and all("seed" not in m for m in record["models"])
    assert "training_seeds" not in json.loads((tmp_path / "off" / "card.json").read_text())
    assert "## Training seeds" not in (tmp_path / "off" / "report.md").read_text()


def test_cell_part_and_label_name_the_seed():
    assert cell_label({"model": "cf_als", "protocol": "main", "fold": 0, "seed": 3}) == \
        "cf_als fold 0 seed 3"
    assert cell_label({"model": "cf_als", "protocol": "main", "fold": 0}) == "cf_als fold 0"
    assert Cell("cf_als", fold=0, seed=3).part == "fold0/seed3"
    assert Cell("cf_als", fold=0, seed=3).label == "cf_als/fold0/seed3"
    assert Cell("cf_als", fold=1).label == "cf_als/fold1"


def test_seeds_are_checked_and_kept_as_a_tuple():
    from bench.config import load_settings

    cfg = OmegaConf.to_container(compose_config(["~experiment", "seeds=[3,1]"]), resolve=True)
    assert load_settings(cfg).seeds == (3, 1)
    assert load_settings({**cfg, "seeds": None}).seeds is None
