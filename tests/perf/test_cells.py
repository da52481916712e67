"""``bench perf cells`` and ``bench perf project``: sizes, exponents, the forked cell
function and the schedule (no timing asserted)."""

import argparse
import json
import math

import pandas as pd
import pytest

from bench.executor import LocalExecutor
from bench.perf import main as perf_main
from bench.perf.cells import (
    ML32M,
    ForkedCells,
    growth_exponent,
    overrides,
    payload_bytes,
    shape,
    single_threaded,
    skip_list,
)
from bench.perf.project import add_arguments, affine, bench_project, schedule
from bench.runner import run_experiment
from tests.helpers import compose_config

TINY = ["~experiment", "dataset=synthetic", "dataset.n_users=120", "dataset.n_items=60",
        "dataset.n_interactions=2000", "split=holdout", "tracker=none",
        "report.figures=false", "cold_start.user=null", "cold_start.item=null",
        "model=[rule_popular,cf_als]"]


def test_shape_keeps_ml32m_proportions():
    assert shape(ML32M["n_interactions"]) == ML32M
    assert shape(1_000_000) == {"n_users": 6_280, "n_items": 2_737, "n_interactions": 1_000_000}
    tiny = shape(100)
    assert tiny["n_users"] == 10 and tiny["n_items"] == 10 and tiny["n_interactions"] == 100


def test_overrides_compose_spectrum_full_on_one_holdout_fold():
    cfg = compose_config(overrides(1_000_000, None, 7))
    full = compose_config(["experiment=spectrum_full"])
    assert list(cfg.models) == list(full.models)  # every model config of spectrum_full
    assert cfg.dataset.n_users == 6_280 and cfg.dataset.n_items == 2_737
    assert cfg.split._target_ == "bench.splits.holdout.RandomHoldoutSplitter"
    assert cfg.split.fraction == 0.2
    assert cfg.cold_start.user is None and cfg.cold_start.item is None
    assert cfg.seed == 7 and cfg.report.figures is False and cfg.get("seeds") is None
    sub = compose_config(overrides(1_000_000, ["rule_popular", "cf_als"], 7))
    assert list(sub.models) == ["rule_popular", "cf_als"]
    assert sub.stats.baseline == "rule_popular"


def test_models_without_the_baseline_compare_against_the_first_one(tmp_path):
    """``--models rule_random`` alone used to fail: spectrum_full's baseline
    (rule_popular) was not among the run's models."""
    cfg = compose_config(overrides(1_000, ["rule_random", "cf_als"], 7))
    assert list(cfg.models) == ["rule_random", "cf_als"] and cfg.stats.baseline is None
    result = run_experiment(compose_config(overrides(1_000, ["rule_random"], 7)),
                            output_dir=tmp_path, executor=LocalExecutor())
    assert [m.model for m in result.models] == ["rule_random"]


def test_single_threaded_sets_every_nested_zero_to_one():
    cfg = {"num_threads": 0, "components": {"cf_als": {"num_threads": 0, "factors": 0},
                                            "bpr": {"num_threads": 4}},
           "lists": [{"num_threads": 0}]}
    assert single_threaded(cfg) == {
        "num_threads": 1, "components": {"cf_als": {"num_threads": 1, "factors": 0},
                                         "bpr": {"num_threads": 4}},
        "lists": [{"num_threads": 1}]}


def test_growth_exponent_uses_the_two_largest_sizes():
    assert growth_exponent([(1e6, 2.0), (4e6, 32.0)]) == pytest.approx(2.0)
    # the smallest size (fixed costs) does not bend the slope of the two largest
    assert growth_exponent([(1e5, 5.0), (1e6, 10.0), (1e7, 100.0)]) == pytest.approx(1.0)
    assert growth_exponent([(1e6, 3.0)]) is None
    assert growth_exponent([(1e6, 3.0), (2e6, None)]) is None


def test_payload_bytes_counts_each_array_once():
    import numpy as np

    a = np.zeros(1000)  # 8,000 bytes
    b = np.zeros(10, dtype=np.int32)  # 40 bytes
    assert payload_bytes({"x": a, "y": [a, b], "z": a[:10]}) == 8_040
    assert payload_bytes(pd.Series(np.zeros(5))) == pd.Series(np.zeros(5)).memory_usage(deep=True)


def _per_user(result):
    return {r.model: r.per_user.sort_values("user_id").reset_index(drop=True)
            for r in result.models}


def test_forked_cells_give_the_local_numbers_and_a_cost_per_cell(tmp_path):
    cfg = compose_config(TINY)
    local = run_experiment(cfg, output_dir=tmp_path / "local")
    forked = ForkedCells(threads=1, timeout=300, max_rss_gb=8,
                         seeded={"cf_als": True}, threaded={"cf_als": True})
    measured = run_experiment(cfg, output_dir=tmp_path / "forked",
                              executor=LocalExecutor(cell_function=forked))
    a, b = _per_user(local), _per_user(measured)
    assert list(a) == list(b) == ["rule_popular", "cf_als"]
    for m in a:
        pd.testing.assert_frame_equal(a[m], b[m])
    for x, y in zip(local.models, measured.models, strict=True):  # NaN where NaN
        assert pd.Series(x.metrics).equals(pd.Series(y.metrics))
    recs = {r["model"]: r for r in forked.records}
    assert list(recs) == ["rule_popular", "cf_als"]
    for r in recs.values():
        assert r["status"] == "ok" and r["error"] is None and r["threads"] == 1
        assert r["cpu_seconds"] > 0 and r["wall_seconds"] > 0
        assert 0 < r["fit_cpu_seconds"] <= r["cpu_seconds"]
        assert 0 < r["serve_cpu_seconds"] <= r["cpu_seconds"]
        assert r["peak_rss_gb"] >= r["rss_start_gb"] > 0
        assert set(r["stages"]) >= {"cell", "fit", "recommend", "evaluate", "artifacts"}
    assert recs["cf_als"]["seeded"] and not recs["rule_popular"]["seeded"]
    assert forked.inputs_bytes > 0


def _never_finishes(cell, inputs, env, threads):
    import time

    import numpy as np

    held = np.ones(20_000_000)  # 160 MB written: resident
    time.sleep(120)
    return held


@pytest.mark.parametrize(("limits", "reason"), [
    ({"timeout": 0.5, "max_rss_gb": 8}, "timeout"),
    ({"timeout": 60, "max_rss_gb": 0.05}, "GB RSS"),
])
def test_a_cell_past_a_limit_is_killed_and_counts_as_a_failure(tmp_path, monkeypatch,
                                                                limits, reason):
    # the forked process runs a stand-in that holds memory and never returns
    import bench.perf.cells as cells

    monkeypatch.setattr(cells, "measure_cell", _never_finishes)
    cfg = compose_config(TINY)
    forked = ForkedCells(threads=1, seeded={}, threaded={}, **limits)
    result = run_experiment(cfg, output_dir=tmp_path / "run",
                            executor=LocalExecutor(cell_function=forked))
    assert [r["status"] for r in forked.records] == ["killed", "killed"]
    assert all(reason in r["error"] for r in forked.records)
    assert all(r["wall_seconds"] < 60 for r in forked.records)
    assert sorted(f.model for f in result.failures) == ["cf_als", "rule_popular"]
    assert all(f.error.startswith("MeasurementLimit: killed") for f in result.failures)
    assert result.models == []


def _size(n, cells, driver=None, inputs=1e9):
    return {"interactions": n, "cells": cells, "inputs_bytes": inputs,
            "driver": driver or {s: {"seconds": n / 1e6} for s in
                                 ("load", "split", "audit", "context", "reduce")},
            "loadavg_before": [1.0, 1.0, 1.0], "loadavg_after": [1.5, 1.0, 1.0]}


def _cell(model, cpu, growth, seeded=False, status="ok"):
    return {"model": model, "status": status, "error": None if status == "ok" else "killed",
            "seeded": seeded, "threaded": False, "cpu_seconds": cpu,
            "fit_cpu_seconds": cpu / 2, "serve_cpu_seconds": cpu / 2, "wall_seconds": cpu,
            "peak_rss_gb": 1.0 + growth, "rss_start_gb": 1.0, "rss_growth_gb": growth}


def _costs(tmp_path):
    from bench.perf.cells import summarise

    sizes = [
        _size(1_000_000, [_cell("quad", 10.0, 0.5, seeded=True), _cell("lin", 2.0, 0.1),
                          _cell("slow", 100.0, 0.1)]),
        _size(2_000_000, [_cell("quad", 40.0, 1.0, seeded=True), _cell("lin", 3.0, 0.2),
                          _cell("slow", 600.0, 0.1, status="killed")]),
    ]
    path = tmp_path / "costs.json"
    path.write_text(json.dumps({"sizes": sizes, "models": summarise(sizes)}))
    return path


def _project_args(path, *extra):  # path: one file, or several comma-separated
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(["--costs", str(path), *extra])


def test_projection_by_hand(tmp_path):
    args = _project_args(_costs(tmp_path), "--interactions", "4000000", "--folds", "2",
                         "--seeds", "3", "--cores", "1,4", "--cell-overhead", "0",
                         "--memory-per-core-gb", "100")
    out = bench_project(args)
    m = {x["model"]: x for x in out["models"]}
    # quad: 40 s at 2M, exponent 2 -> 160 s at 4M; seeded: 2 folds x 3 seeds
    assert m["quad"]["exponent"] == pytest.approx(2.0)
    assert m["quad"]["cpu_seconds"] == pytest.approx(160.0)
    assert m["quad"]["cells"] == 6
    # lin: exponent log(1.5)/log(2) = 0.58, floored at 1 -> 3 s x 2 = 6 s; 2 cells
    assert m["lin"]["measured_exponent"] == pytest.approx(math.log(1.5) / math.log(2))
    assert m["lin"]["cpu_seconds"] == pytest.approx(6.0) and m["lin"]["cells"] == 2
    # slow: finished at 1M only -> exponent 1 -> 400 s; its kill at 2M is reported
    assert m["slow"]["from_interactions"] == 1_000_000
    assert m["slow"]["cpu_seconds"] == pytest.approx(400.0)
    assert m["slow"]["failed_at"] == [{"interactions": 2_000_000, "error": "killed"}]
    assert out["cells"] == 6 + 2 + 2
    assert out["total_cpu_seconds"] == pytest.approx(6 * 160 + 2 * 6 + 2 * 400)
    one, four = out["rows"]
    assert one["cells_seconds"] == pytest.approx(out["total_cpu_seconds"])
    # 4 cores, longest first: 400, 400, 160, 160 start at once; the next 160s go where
    # the 160s end (320, then 480), the 6s where the 400s end: cores end at 406, 406,
    # 480, 480
    assert four["cells_seconds"] == pytest.approx(480.0)
    assert four["lower_bound_seconds"] == pytest.approx(max(1772 / 4, 400))
    # driver stages: 1 s per 1M interactions (fixed part 0): 4 s load, 3 x 4 s per fold
    assert out["driver"]["load"] == pytest.approx(4.0)
    assert four["driver_before_seconds"] == pytest.approx(4.0 + 2 * 12.0)
    # reduce: no fixed part, 4 s at 4M for 3 measured cells -> x 10/3 for 10 cells
    assert out["driver"]["reduce"] == pytest.approx(4.0 * 10 / 3)
    assert out["inputs_gb_per_fold"] == pytest.approx(2.0)  # 1 GB at 2M, linear


def test_projection_gives_big_cells_the_cores_their_memory_needs(tmp_path):
    args = _project_args(_costs(tmp_path), "--interactions", "4000000", "--folds", "1",
                         "--seeds", "1", "--cores", "4", "--cell-overhead", "0",
                         "--memory-per-core-gb", "1", "--cores-per-node", "4")
    out = bench_project(args)
    m = {x["model"]: x for x in out["models"]}
    # quad's memory growth doubles with the size (exponent 1): 1 GB at 2M -> 2 GB at 4M,
    # plus the process base (1 GB start - 1 GB of inputs at 1M = 0)
    assert m["quad"]["memory_gb"] == pytest.approx(2.0)
    assert m["quad"]["cores_per_cell"] == 2


def test_project_refuses_a_missing_costs_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        perf_main(["project", "--costs", str(tmp_path / "none.json")])
    assert exc.value.code == 2
    assert "bench perf cells --json" in capsys.readouterr().err


def test_schedule_is_longest_first():
    assert schedule([(3, 1), (5, 1), (3, 1), (4, 1), (3, 1)], 2) == (10.0, 18.0)
    # a two-core cell waits for both cores
    assert schedule([(1, 1), (4, 2)], 2) == (5.0, 9.0)


def test_affine_extrapolates_fixed_plus_linear():
    assert affine([(1.0, 3.0), (2.0, 5.0)], 10.0) == pytest.approx(21.0)
    assert affine([(1.0, 3.0), (2.0, 2.0)], 10.0) == pytest.approx(2.0)  # never shrinks
    assert affine([(2.0, 4.0)], 10.0) == pytest.approx(20.0)


def test_skip_list_projects_past_the_limits():
    sizes = [_size(1_000_000, [_cell("rule_popular", 900.0, 0.1), _cell("fast", 1.0, 0.1),
                               _cell("slow", 200.0, 0.1), _cell("big", 1.0, 3.0),
                               _cell("dead", 1.0, 0.1, status="killed")])]
    skip = skip_list(sizes, 4_000_000, timeout=600, max_rss_gb=8)
    assert set(skip) == {"slow", "big", "dead"}  # rule_popular always runs
    assert "timeout" in skip["slow"] and "GB" in skip["big"]


def test_projection_merges_a_second_costs_file_for_slow_models(tmp_path):
    from bench.perf.cells import summarise

    main = _costs(tmp_path)
    extra_sizes = [_size(500_000, [_cell("slow", 25.0, 0.05)], inputs=0.1e9)]
    extra = tmp_path / "slow.json"
    extra.write_text(json.dumps({"sizes": extra_sizes, "models": summarise(extra_sizes)}))
    args = _project_args(f"{main},{extra}", "--interactions", "4000000", "--folds", "1",
                         "--seeds", "1", "--cores", "2", "--cell-overhead", "0")
    assert args.costs == [main, extra]
    out = bench_project(args)
    slow = next(m for m in out["models"] if m["model"] == "slow")
    # 25 s at 0.5M, 100 s at 1M: exponent 2 -> 1,600 s at 4M
    assert slow["exponent"] == pytest.approx(2.0)
    assert slow["cpu_seconds"] == pytest.approx(1600.0)
    # the driver still comes from the first file: 4 s of load at 4M
    assert out["driver"]["load"] == pytest.approx(4.0)
