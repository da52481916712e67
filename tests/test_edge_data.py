"""Edge data (issue 7): degenerate but legal inputs give a sensible result or one clear error.

Each case writes a tiny ratings CSV (plus an item table with genres, so the content model
has features) into ``tmp_path`` and runs a representative model set across the spectrum
through Hydra composition and :func:`bench.runner.run_experiment`. The outcome is either
a sensible result (every model finished, lists hold unique items and are padded when the
catalogue is short, accuracy metrics in [0, 1]) or one ``BenchError`` whose message says
what is wrong, which the command line turns into one ``bench: error:`` line and exit 2,
never a bare traceback.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from bench.cli import main
from bench.errors import BenchError
from bench.runner import run_experiment
from bench.tracking import MemoryTracker
from tests.helpers import compose_config, csv_dataset

MODELS = ["rule_popular", "rule_random", "cf_als", "cf_ease", "cf_item_knn", "content_profile",
          "hybrid_fallback"]
ACCURACY = {"precision", "recall", "ndcg", "map", "mrr", "hit_rate"}
N_ITEMS = 20


def base_rows(n_users: int = 30, per_user: int = 8, seed: int = 0) -> list[tuple]:
    """``per_user`` distinct items of 20 per user, ratings 1-5, times increasing per user."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for j, i in enumerate(rng.choice(N_ITEMS, size=per_user, replace=False)):
            rows.append((u, int(i), float(rng.integers(1, 6)), 1_000_000 + j * 10_000 + u))
    return rows


def write(tmp: Path, rows, n_items: int = N_ITEMS) -> tuple[Path, Path]:
    csv = tmp / "ratings.csv"
    pd.DataFrame(rows, columns=["user", "item", "stars", "ts"]).to_csv(csv, index=False)
    items = tmp / "items.csv"
    pd.DataFrame({
        "item": range(n_items),
        "title": [f"Movie {i} ({1980 + i % 30})" for i in range(n_items)],
        "genres": [f"g{i % 4}|g{(i + 1) % 4}" for i in range(n_items)],
    }).to_csv(items, index=False)
    return csv, items


def args(tmp: Path, rows, *extra: str, n_items: int = N_ITEMS) -> list[str]:
    csv, items = write(tmp, rows, n_items)
    return [
        "~experiment", "tracker=none", "seed=1", "name=edge", *csv_dataset(csv),
        f"dataset.items_path={items}", f"model=[{','.join(MODELS)}]", "split=temporal",
        "eval.cutoffs=[1,5,10]", "eval.batch_size=16", "report.figures=false", "report.curve_k=10",
        f"report.dir={tmp / 'reports'}", "stats.n_resamples=50", *extra,
    ]


def run(tmp: Path, rows, *extra: str, n_items: int = N_ITEMS):
    cfg = compose_config(args(tmp, rows, *extra, n_items=n_items))
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    return run_experiment(cfg, output_dir=tmp / "out", tracker=MemoryTracker())


def cli(tmp: Path, rows, capsys, *extra: str) -> tuple[int, str]:
    code = main([f"hydra.run.dir={tmp / 'run'}", *args(tmp, rows, *extra)])
    return code, capsys.readouterr().err


def assert_sensible(result, k_max: int, n_items: int) -> None:
    """Every model finished; lists unique, within the catalogue; accuracy in [0, 1]."""
    assert not result.failures, [f"{f.model}: {f.error}" for f in result.failures]
    assert sorted({r.model for r in result.models}) == sorted(MODELS)
    for r in result.models:
        assert len(r.per_user) > 0, r.model
        # a user the model could not serve (empty list) is n/a (NaN) in every accuracy
        # column, never 0; against new items, n/a also when the model lists no new item
        unserved = np.isnan(r.per_user[f"ndcg@{k_max}"].to_numpy(dtype=float))
        assert int(unserved.sum()) <= r.n_users_empty_list, r.model
        for col in r.per_user.columns:
            if col.split("@")[0] in ACCURACY:
                v = r.per_user[col].to_numpy(dtype=float)
                if "." not in col:
                    assert (np.isnan(v) == unserved).all(), (r.model, col)
                v = v[np.isfinite(v)]
                assert ((v >= 0) & (v <= 1)).all(), (r.model, col)
        lists = pd.read_parquet(result.output_dir / "artifacts" / r.model / "fold0" /
                                "topk.parquet")
        per_user = lists.groupby("user_id")["item_id"]
        assert (per_user.size() <= min(k_max, n_items)).all(), r.model
        assert (per_user.nunique() == per_user.size()).all(), r.model


# ---------------------------------------------------------------------------- sensible results
# Each is a full run of seven models (~0.5 s): slow tier. The clear-error tests stay fast.
@pytest.mark.slow
def test_users_with_exactly_one_interaction(tmp_path):
    rows = base_rows()
    # five users with one early row (train only) and five with one late row (test only:
    # cold users, evaluated without any history)
    rows += [(100 + u, u, 5.0, 1_000_000 + u) for u in range(5)]
    rows += [(200 + u, u, 5.0, 2_000_000 + u) for u in range(5)]
    result = run(tmp_path, rows)
    assert_sensible(result, 10, N_ITEMS)
    evaluated = set(result.models[0].per_user["user_id"].astype(str))
    assert {str(200 + u) for u in range(5)} <= evaluated  # the cold users were evaluated
    empty = {r.model: r.n_users_empty_list for r in result.models}
    # popularity (and the hybrid's popularity tiers) serve a user with no history; models
    # that score from a history give the five cold users an empty list, never a default
    assert empty == {"rule_popular": 0, "rule_random": 0, "hybrid_fallback": 0, "cf_als": 5,
                     "cf_ease": 5, "cf_item_knn": 5, "content_profile": 5}


@pytest.mark.slow
def test_items_with_no_training_interaction(tmp_path):
    rows = base_rows()
    # items 20-24 appear only after the cut: new items, in the test set alone
    rows += [(u, 20 + u % 5, 5.0, 2_000_000 + u) for u in range(30)]
    result = run(tmp_path, rows, n_items=25)
    assert_sensible(result, 10, 25)
    assert result.models[0].segment_metrics  # new_items segment was computed
    # a collaborative model never recommends an item it never saw in training
    als = pd.read_parquet(result.output_dir / "artifacts" / "cf_als" / "fold0" / "topk.parquet")
    assert not set(als["item_id"].astype(int)) & set(range(20, 25))


@pytest.mark.slow
def test_all_ratings_equal(tmp_path):
    rows = [(u, i, 5.0, t) for u, i, _, t in base_rows()]
    result = run(tmp_path, rows)
    assert_sensible(result, 10, N_ITEMS)


def test_all_ratings_equal_below_threshold_is_one_clear_error(tmp_path, capsys):
    rows = [(u, i, 3.0, t) for u, i, _, t in base_rows()]
    with pytest.raises(BenchError) as info:
        run(tmp_path, rows)
    assert str(info.value) == (
        "split 'temporal' fold 0: the test set has 48 rows but no relevant item (rating >= 4.0); "
        "lower eval.relevance_threshold or set it to null")
    code, err = cli(tmp_path, rows, capsys)
    assert code == 2
    assert err.strip().splitlines() == [f"bench: error: {info.value}"]


@pytest.mark.slow
def test_all_timestamps_equal_with_a_random_holdout(tmp_path):
    rows = [(u, i, r, 1_000_000) for u, i, r, _ in base_rows()]
    result = run(tmp_path, rows, "split=holdout")
    assert_sensible(result, 10, N_ITEMS)


def test_all_timestamps_equal_with_a_temporal_cut_is_one_clear_error(tmp_path, capsys):
    rows = [(u, i, r, 1_000_000) for u, i, r, _ in base_rows()]
    with pytest.raises(BenchError) as info:
        run(tmp_path, rows)
    msg = str(info.value)
    assert msg.startswith("split 'temporal' (quantile=0.8, cold_users='keep', fold_in=0) leaves no "
                          "training interaction (240 rows in ")
    assert "many rows may share the timestamp at the cut" in msg
    code, err = cli(tmp_path, rows, capsys)
    assert code == 2
    assert err.strip().splitlines() == [f"bench: error: {info.value}"]


@pytest.mark.slow
def test_k_larger_than_the_catalogue(tmp_path):
    result = run(tmp_path, base_rows(), "eval.cutoffs=[1000]", "report.curve_k=10")
    assert_sensible(result, 1000, N_ITEMS)
    for r in result.models:
        lists = pd.read_parquet(result.output_dir / "artifacts" / r.model / "fold0" /
                                "topk.parquet")
        # at most the unseen part of the catalogue: 20 items minus the user's history
        assert lists.groupby("user_id").size().max() <= N_ITEMS - 1, r.model
        # recall@1000 over a whole (short) catalogue: every relevant item is listed by a
        # model that ranks the whole catalogue
        if r.model == "rule_random":
            assert r.per_user["recall@1000"].eq(1.0).all()


@pytest.mark.slow
def test_a_single_user_dataset(tmp_path):
    rows = [(0, i, float(1 + i % 5), 1_000_000 + i) for i in range(N_ITEMS)]
    result = run(tmp_path, rows)
    assert_sensible(result, 10, N_ITEMS)
    assert all(len(r.per_user) == 1 for r in result.models)
    # the cut leaves the user's 4 latest items in test; with one user nobody else ever
    # interacted with them, so they are new items: models that score from training
    # interactions have nothing unseen to offer (an empty list, NDCG 0, never a default),
    # while the content model scores them from their genres and titles
    empty = {r.model: r.n_users_empty_list for r in result.models}
    assert empty == {m: int(m != "content_profile") for m in MODELS}
    ndcg = {r.model: r.metrics["ndcg@10"] for r in result.models}
    assert ndcg["content_profile"] > 0
    # the others served nobody: n/a, not 0
    assert all(np.isnan(v) for m, v in ndcg.items() if m != "content_profile")
