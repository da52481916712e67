"""``bench perf suite``: the stopping rule, the target verdicts and the one JSON."""

from __future__ import annotations

import itertools
import json

import pytest

from bench.perf import main as perf_main
from bench.perf import suite


def test_relative_spread_is_range_over_median():
    assert suite.relative_spread([10.0]) == 0.0
    assert suite.relative_spread([9.0, 10.0, 12.0]) == pytest.approx(3.0 / 10.0)
    assert suite.relative_spread([0.0, 0.0]) == 0.0
    assert suite.relative_spread([0.0, 0.0, 1.0]) == float("inf")


def test_stops_as_soon_as_the_figure_settles():
    values = iter([10.0, 10.5, 30.0, 30.0])
    result = suite.run_until_stable(lambda: {"x": next(values)}, lambda out: out["x"],
                                    min_rounds=2, max_rounds=4, spread=0.10)
    assert result["values"] == [10.0, 10.5]
    assert result["stable"] is True
    assert result["median"] == pytest.approx(10.25)
    assert result["spread"] == pytest.approx(0.5 / 10.25)
    assert len(result["rounds"]) == 2
    assert all("load_average_before" in r and "load_average_after" in r
               for r in result["rounds"])


def test_says_so_when_the_figure_never_settles():
    values = itertools.cycle([10.0, 20.0])
    result = suite.run_until_stable(lambda: {"x": next(values)}, lambda out: out["x"],
                                    min_rounds=2, max_rounds=3, spread=0.10)
    assert result["values"] == [10.0, 20.0, 10.0]
    assert result["stable"] is False
    assert result["spread"] == pytest.approx(1.0)


def test_runs_at_least_min_rounds_even_when_the_first_is_exact():
    result = suite.run_until_stable(lambda: {"x": 1.0}, lambda out: out["x"],
                                    min_rounds=3, max_rounds=5, spread=0.0)
    assert result["values"] == [1.0, 1.0, 1.0] and result["stable"] is True


def test_targets_judge_the_median_in_their_direction():
    at_most = suite.Target("t", lambda out: out["x"], 20.0, True)
    at_least = suite.Target("u", lambda out: out["x"], 2e6, False)
    assert at_most.judge([19.0, 25.0, 18.0])["met"] is True  # median 19
    assert at_most.judge([19.0, 25.0, 21.0])["met"] is False  # median 21
    assert at_least.judge([2.1e6, 1.9e6, 2.0e6]) == {
        "value": 2.0e6, "limit": 2e6, "direction": "at least", "met": True}


def test_every_target_of_the_issue_is_in_the_suite():
    names = {w.name: [t.name for t in w.targets] for w in suite.WORKLOADS}
    assert set(names) == {"spectrum", "metrics", "topk", "scale"}
    assert sum(len(v) for v in names.values()) == 9
    assert names["spectrum"] == ["default run wall seconds (warm)",
                                 "first run after install, wall seconds",
                                 "MLflow share of the wall time"]


def test_suite_writes_one_json(tmp_path, monkeypatch, capsys):
    """The command end to end with the workloads replaced by instant fakes."""
    fake = {"summary": {"plain": {"median_wall_seconds": 12.0}, "logging_share": 0.05,
                        "first": {"median_wall_seconds": 25.0}},
            "recspectrum": {"users_per_second": 3e6}, "pytrec_eval": {"speedup": 150.0},
            "ratio_ours_over_implicit": 0.25, "ratio_ours_over_floor": 1.1,
            "median_wall_seconds": 80.0, "harness_share": 0.1, "peak_rss_gb": 2.5}
    for workload in suite.WORKLOADS:
        monkeypatch.setattr(f"{workload.module}.{workload.function}", lambda args: fake)
    path = tmp_path / "perf.json"
    assert perf_main(["suite", "--json", str(path)]) == 0
    out = json.loads(path.read_text())
    assert set(out["workloads"]) == {"spectrum", "metrics", "topk", "scale"}
    assert out["all_targets_met"] is True and out["all_stable"] is True
    assert out["workloads"]["spectrum"]["targets"]["default run wall seconds (warm)"] == {
        "value": 12.0, "limit": 20.0, "direction": "at most", "met": True}
    assert len(out["load_average_before"]) == 3
    printed = capsys.readouterr().out
    verdicts = [line.rsplit(None, 1)[-1] for line in printed.splitlines() if ": " in line
                and line.split(":")[0] in {w.name for w in suite.WORKLOADS}]
    assert verdicts == ["met"] * 9


def test_only_refuses_unknown_workloads(capsys):
    with pytest.raises(SystemExit) as exc:
        perf_main(["suite", "--only", "spectrum,nope"])
    assert exc.value.code == 2
    assert "--only: expected some of" in capsys.readouterr().err
