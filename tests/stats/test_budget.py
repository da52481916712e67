"""Upper bounds on the values that size memory, checked before training (issue 15, point 12).

``stats.n_resamples = 10**9`` used to train every model and then die with MemoryError in
the report step, leaving a half-written run folder. :func:`check_budget` refuses such
values from the settings and the data sizes; ``load_settings`` applies it for one user
and one item, so a value that cannot fit whatever the data fails before any data is read.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bench.cli import main
from bench.config import load_settings
from bench.errors import ConfigError
from bench.stats.budget import MAX_K, MEMORY_BUDGET, check_budget, human_bytes
from tests.helpers import QUICK_RUN, compose_config, csv_dataset, make_cfg, write_ratings_csv

#: MovieLens 32M: the largest release the harness loads
ML32M = {"n_users": 200_948, "n_items": 87_585}


def settings(**over):
    return load_settings(make_cfg(Path("unused.csv"), **over))


def refused(s, *, n_users=1, n_items=1, n_models=1, budget=MEMORY_BUDGET) -> str:
    with pytest.raises(ConfigError) as info:
        check_budget(s, n_users, n_items, n_models, budget=budget)
    return str(info.value)


# ---------------------------------------------------------------------- shipped configs
@pytest.mark.parametrize("experiment", ["spectrum", "spectrum_full", "ci"])
def test_shipped_experiments_fit_movielens_32m(experiment):
    s = load_settings(compose_config([f"experiment={experiment}"]))
    check_budget(s, n_models=len(s.models), **ML32M)
    check_budget(replace(s, eval=replace(s.eval, batch_size=1024)), n_models=20, **ML32M)


# ---------------------------------------------------------------------- each bound
def test_n_resamples_bound_is_exact_and_explained():
    s = settings(stats={"n_resamples": 1000})
    columns = len(s.eval.metrics) * len(s.eval.cutoffs)
    bound = MEMORY_BUDGET // (columns * 16)
    check_budget(replace(s, stats=replace(s.stats, n_resamples=bound)), 10**5, 10**5, 20)
    msg = refused(replace(s, stats=replace(s.stats, n_resamples=bound + 1)))
    assert msg == (
        f"stats.n_resamples: expected at most {bound:,} (bootstrap: resamples x {columns} "
        f"metric columns x 16 bytes = {human_bytes((bound + 1) * columns * 16)} > the "
        f"8.0 GiB memory budget), got {bound + 1}"
    )


def test_list_length_is_bounded_by_users():
    s = settings(eval={"cutoffs": [5, 50_000]}, report={"curve_k": 10})
    check_budget(s, n_users=10_000, n_items=10, n_models=1)
    msg = refused(s, n_users=20_000)
    assert msg.startswith("eval.cutoffs: expected at most 42,949 (top-k lists: 20,000 users x "
                          "k x 10 bytes = 9.3 GiB > the 8.0 GiB memory budget), got [5, 50000]")


def test_curve_k_longer_than_the_cutoffs_is_the_list_length_and_the_curve_width():
    s = settings(report={"curve_k": 5_000})
    msg = refused(s, n_users=200_000)  # the lists come first
    assert msg.startswith("report.curve_k: expected at most 4,294 (top-k lists: 200,000 users")
    msg = refused(s, n_users=100_000)  # the lists fit (4.7 GiB), the curves do not
    assert msg == (
        "report.curve_k: expected at most 3,579 (metric@k curves: 100,000 users x curve_k x "
        "3 metrics x 8 bytes = 11.2 GiB > the 8.0 GiB memory budget), got 5000"
    )
    msg = refused(s, n_users=100_000, budget=2**30)
    assert "1.0 GiB memory budget" in msg


def test_batch_size_is_bounded_by_the_score_block():
    s = settings(eval={"cutoffs": [10], "batch_size": 100_000})
    check_budget(s, n_users=100, n_items=10**6, n_models=1)  # the block is only 100 rows
    msg = refused(s, n_users=10**6, n_items=10**6)
    assert msg == (
        "eval.batch_size: expected at most 357 (score block: min(batch_size, 1,000,000 users) "
        "x 1,000,000 items x 24 bytes = 2.2 TiB > the 8.0 GiB memory budget), got 100000"
    )


def test_number_of_cutoffs_is_bounded_by_the_per_user_table():
    s = settings(eval={"cutoffs": list(range(1, 1001)),
                       "metrics": ["precision", "recall", "ndcg", "map", "mrr", "hit_rate"]},
                 report={"curve_k": 10}, stats={"n_resamples": 10})
    check_budget(s, n_users=1000, n_items=1000, n_models=10)
    msg = refused(s, n_users=100_000, n_items=1000, n_models=10)
    assert msg.startswith("eval.cutoffs: expected at most 44 cutoffs (per-user table: 100,000 "
                          "users x 10 models x 6 metrics x cutoffs x 2 (new items) x 16 bytes")


@pytest.mark.parametrize(("over", "key"), [
    ({"stats": {"n_resamples": 10**9}}, "stats.n_resamples"),
    ({"eval": {"cutoffs": [5, 10**6]}}, "eval.cutoffs"),
    ({"report": {"curve_k": 10**8}}, "report.curve_k"),
])
def test_load_settings_refuses_values_no_data_can_fit(over, key):
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: expected "):
        settings(**over)


def test_max_k_is_the_absolute_list_length():
    settings(report={"curve_k": MAX_K})
    with pytest.raises(ConfigError, match=r"^report\.curve_k: expected a list length of at "
                                          r"most 100,000 \(top-k lists take 10 bytes"):
        settings(report={"curve_k": MAX_K + 1})


def test_human_bytes():
    assert [human_bytes(n) for n in (512, 2048, 3 * 2**20, 2**33, 2**41)] == [
        "512 B", "2.0 KiB", "3.0 MiB", "8.0 GiB", "2.0 TiB"]


# ---------------------------------------------------------------------- before training
def test_cli_refuses_before_anything_is_written(tmp_path, capsys):
    csv = write_ratings_csv(tmp_path / "ratings.csv")
    argv = [*csv_dataset(csv), *QUICK_RUN, "split=temporal", "~experiment",
            "report.figures=false", f"report.dir={tmp_path / 'reports'}",
            "stats.n_resamples=1000000000"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("bench: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("bench: error: stats.n_resamples: expected at most ")
    assert "memory budget" in lines[0]
    assert not (tmp_path / "reports").exists()


def test_config_does_not_import_scipy_stats_for_the_budget():
    code = ("import sys, bench.config, bench.stats.budget; "
            "assert 'scipy.stats' not in sys.modules, 'scipy.stats imported'")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr


def test_the_runner_checks_the_budget_with_the_data_sizes(tmp_path, monkeypatch):
    """After the split, the real user and item counts bound the settings — before any
    model is trained. (A tiny budget stands in for a huge dataset.)"""
    import functools

    import bench.runner as runner
    from bench.errors import ConfigError
    from bench.stats import budget
    from tests.helpers import make_cfg, write_ratings_csv

    seen = {}

    def small(settings, n_users, n_items, n_models):
        seen.update(users=n_users, items=n_items, models=n_models)
        return functools.partial(budget.check_budget, budget=20_000)(
            settings, n_users, n_items, n_models)

    monkeypatch.setattr(runner, "check_budget", small)
    csv = write_ratings_csv(tmp_path / "r.csv")
    with pytest.raises(ConfigError, match=r"^stats\.n_resamples: expected at most"):
        runner.run_experiment(make_cfg(csv), output_dir=tmp_path / "o")
    assert seen["models"] == 2 and seen["users"] > 1 and seen["items"] > 1
    assert not (tmp_path / "o" / "artifacts").exists()  # nothing was trained
