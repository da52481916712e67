"""``check.seed_spread``: with training seeds, a regression must also exceed k x the seed sd.

Runs are built in memory (per-user rows with a planted seed spread and a planted drop),
so each case is exact and fast; ``test_check.py`` runs the real command.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench.check.baseline import baseline_payload, read_baseline, write_baseline
from bench.check.gate import run_gate
from bench.check.outputs import markdown_summary
from bench.check.spread import segment_spreads
from bench.config import check_settings
from bench.errors import DataError
from bench.record import ModelResult, RunRecord
from bench.reporting.analysis import RunData
from bench.seeds import mean_over_seeds

N_USERS = 300
SEEDS = [1, 2, 3]
#: the seed sd planted in both runs: the per-seed means differ by -A, 0, +A
A = 0.02
CARD = {"comparable": {"dataset": "planted", "seed": 0}}
STATS = {"baseline": None, "metrics": ["ndcg@10"], "n_resamples": 200, "confidence": 0.95,
         "alpha": 0.05, "seed": 0}


def rows(drop: float = 0.0, seeded: bool = True) -> pd.DataFrame:
    """Per-user rows of a seeded model ``als`` (offsets -A, 0, +A per seed) and of a
    deterministic ``pop``; ``drop`` lowers every user of both, plus small per-user noise."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.5, N_USERS)
    noise = np.random.default_rng(1).normal(0.0, 0.01, N_USERS) if drop else 0.0
    value = base - drop + noise
    users = np.arange(N_USERS)
    bucket = np.where(users % 2 == 0, "1-5", "6-20")
    frames = []
    for i, s in enumerate(SEEDS if seeded else [None]):
        offset = (i - 1) * A if seeded else 0.0
        frames.append(pd.DataFrame({"model": "als", "family": "collaborative", "fold": 0,
                                    "seed": s, "user_id": users, "history_bucket": bucket,
                                    "ndcg@10": value + offset}))
    frames.append(pd.DataFrame({"model": "pop", "family": "rule", "fold": 0, "seed": None,
                                "user_id": users, "history_bucket": bucket,
                                "ndcg@10": value}))
    out = pd.concat(frames, ignore_index=True)
    out["seed"] = out["seed"].astype("Int64")
    return out if seeded else out.drop(columns="seed")


def run_data(tmp, frame: pd.DataFrame, name: str) -> RunData:
    seeded = "seed" in frame
    results = []
    for (model, seed), part in frame.groupby(
            ["model", frame["seed"] if seeded else pd.Series(-1, index=frame.index)],
            sort=False, dropna=False):
        results.append(ModelResult(
            model=model, family=str(part["family"].iloc[0]), target="x", params={}, fold=0,
            metrics={"ndcg@10": float(part["ndcg@10"].mean())}, per_user=None,
            n_users=len(part), n_users_excluded=0, n_users_empty_list=0, fit_seconds=0.0,
            recommend_seconds=0.0, evaluate_seconds=0.0,
            seed=None if (not seeded or pd.isna(seed)) else int(seed)))
    record = RunRecord(name="ci", run=name, dataset={}, splits=[],
                       eval={"history_edges": [0, 1, 6, 21, 101]}, stats=STATS,
                       report={"headline": "ndcg@10"}, cold_start={}, leakage=[],
                       models=results, failures=[], mlflow_parent_run_id=None, timings={},
                       seeds=SEEDS if seeded else None)
    return RunData(folder=tmp, record=record, per_user=mean_over_seeds(frame),
                   curves=pd.DataFrame(), cold_start=None, card=CARD,
                   seed_rows=frame if seeded else None)


def baseline(tmp, seeded: bool = True):
    data = run_data(tmp, rows(seeded=seeded), "base")
    return read_baseline(write_baseline(tmp / "base.json", baseline_payload(data, ["ndcg@10"])))


def gate(tmp, drop: float, k: float | None, *, seeded: bool = True, base_seeded: bool = True):
    settings = check_settings({"metrics": ["ndcg@10"], "segments": ["all", "history_bucket"],
                               "seed_spread": k})
    return run_gate(run_data(tmp, rows(drop, seeded), "run"), baseline(tmp, base_seeded),
                    settings)


def status(result, model: str = "als", segment: str = "all") -> str:
    t = result.tests
    return t[(t["model"] == model) & (t["segment"] == segment)]["status"].item()


def test_the_baseline_records_the_spread_per_model_segment_and_metric(tmp_path):
    saved = baseline(tmp_path)
    raw = json.loads((tmp_path / "base.json").read_text())
    assert raw["seeds"] == SEEDS
    assert set(saved.seed_spread) == {"als"}  # pop ran once: no spread recorded
    spread = saved.seed_spread["als"]
    assert set(spread) == {"all", "history 1-5", "history 6-20"}
    for sds in spread.values():
        assert sds["ndcg@10"] == pytest.approx(A, abs=1e-12)
    # per_user holds each user's mean over the seeds (the offsets cancel)
    per_user = saved.per_user[saved.per_user["model"] == "als"]
    np.testing.assert_allclose(per_user["ndcg@10"].to_numpy(),
                               rows().query("model == 'pop'")["ndcg@10"].to_numpy(),
                               rtol=0, atol=1e-12)


def test_a_drop_within_the_seed_spread_passes_with_the_option_and_fails_without(tmp_path):
    drop = 0.03  # beyond the tolerance (max(0.005, 2% of ~0.4) = 0.008), below 2 x A
    off = gate(tmp_path, drop, None)
    assert status(off, "als") == "regression" and off.exit_code == 1
    assert "seed_sd" not in off.tests  # off: the table of before
    on = gate(tmp_path, drop, 2.0)
    assert status(on, "als") == "within seed spread"
    assert status(on, "als", "history 1-5") == "within seed spread"
    assert on.tests.loc[on.tests["model"] == "als", "seed_sd"].to_numpy() == pytest.approx(A)
    # the deterministic model has no spread: its drop still fails the gate
    assert status(on, "pop") == "regression" and on.exit_code == 1
    assert all(f.startswith("pop ") for f in on.failures)
    text = markdown_summary(on)
    assert "`check.seed_spread` = 2" in text and "| within seed spread |" in text


def test_a_drop_beyond_the_seed_spread_fails_with_the_option(tmp_path):
    on = gate(tmp_path, 0.06, 2.0)  # 0.06 > 2 x A = 0.04
    assert status(on, "als") == "regression"
    assert any(f.startswith("als ndcg@10 [all]") for f in on.failures)


def test_without_seeds_anywhere_the_option_changes_nothing_and_says_so(tmp_path):
    on = gate(tmp_path, 0.03, 2.0, seeded=False, base_seeded=False)
    off = gate(tmp_path, 0.03, None, seeded=False, base_seeded=False)
    assert on.tests["status"].tolist() == off.tests["status"].tolist()
    assert (on.tests["seed_sd"] == 0).all()
    assert "the option changed nothing" in markdown_summary(on)


def test_the_run_spread_counts_when_the_baseline_has_none(tmp_path):
    on = gate(tmp_path, 0.03, 2.0, seeded=True, base_seeded=False)
    assert status(on, "als") == "within seed spread"


def test_segment_spreads_need_two_seeds():
    frame = rows()
    assert segment_spreads(frame[frame["seed"].isna() | (frame["seed"] == 1)],
                           ["ndcg@10"]) == {}
    assert segment_spreads(None, ["ndcg@10"]) == {}


@pytest.mark.parametrize("spread", [[1], {"als": {"all": {"ndcg@10": -1.0}}},
                                    {"als": {"all": {"ndcg@10": "x"}}}])
def test_a_malformed_seed_spread_in_the_baseline_is_refused(tmp_path, spread):
    baseline(tmp_path)
    raw = json.loads((tmp_path / "base.json").read_text())
    raw["seed_spread"] = spread
    (tmp_path / "base.json").write_text(json.dumps(raw))
    with pytest.raises(DataError, match=r"base\.json: key 'seed_spread' must map model"):
        read_baseline(tmp_path / "base.json")


@pytest.mark.slow
def test_bench_check_with_seeds_records_the_spread_and_passes_the_same_config(tmp_path):
    """The real command: a seeded baseline holds the spread; the same config passes."""
    import io

    from bench.check.command import run_check
    from tests.helpers import CONFIG_DIR

    argv = ["dataset=synthetic", "dataset.n_users=200", "dataset.n_items=100",
            "dataset.n_interactions=5000", "tracker=none", "model=[rule_popular,cf_als]",
            "seeds=[1,2]", f"report.dir={tmp_path / 'reports'}"]
    path = tmp_path / "base.json"
    out = io.StringIO()
    assert run_check(argv, config_dir=CONFIG_DIR, baseline=str(path), update=True,
                     out=out) == 0
    saved = read_baseline(path)
    assert list(saved.seed_spread) == ["cf_als"]
    assert saved.seed_spread["cf_als"]["all"]["ndcg@10"] > 0
    assert json.loads(path.read_text())["card"]["comparable"]["seeds"] == [1, 2]
    out = io.StringIO()
    code = run_check([*argv, "check.seed_spread=2"], config_dir=CONFIG_DIR,
                     baseline=str(path), out=out)
    assert code == 0, out.getvalue()
    assert "`check.seed_spread` = 2" in out.getvalue()
    # a run without the baseline's seeds compares other numbers: refused, saying why
    from bench.errors import IncomparableError

    with pytest.raises(IncomparableError, match=r"seeds: run has '<absent>', baseline has "
                                                r"\[1, 2\]"):
        run_check([a for a in argv if not a.startswith("seeds=")], config_dir=CONFIG_DIR,
                  baseline=str(path), out=io.StringIO())
