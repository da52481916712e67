"""``bench perf shards``: the argument checks, and a tiny sharded run end to end."""

import json

import pytest

from bench.perf import WORKLOADS
from bench.perf import main as perf_main
from bench.perf.shards import same_numbers


def test_the_workload_is_registered():
    assert WORKLOADS["shards"] == "bench.perf.shards"


@pytest.mark.parametrize("argv", [["--items", "20"], ["--users", "0"], ["--k", "0"]])
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        perf_main(["shards", *argv])
    assert exc.value.code == 2
    assert "--" in capsys.readouterr().err


def test_same_numbers_is_bit_for_bit():
    assert same_numbers({"a": float("nan"), "b": 1.0}, {"a": float("nan"), "b": 1.0})
    assert not same_numbers({"b": 1.0}, {"b": 1.0 + 2**-52})
    assert not same_numbers({"b": 1.0}, {"c": 1.0})


@pytest.mark.slow
def test_a_tiny_sharded_run_is_identical_across_shard_counts(tmp_path):
    out = tmp_path / "shards.json"
    code = perf_main(["shards", "--users", "3000", "--shards", "1,3", "--resamples", "20",
                      "--items", "101", "--block", "512", "--json", str(out)])
    result = json.loads(out.read_text())
    assert code == 0 and result["identical"] is True
    assert [r["shards"] for r in result["runs"]] == [1, 3]
    one, three = result["runs"]
    assert sum(three["shard_users"]) == one["shard_users"][0] == 3000
    assert three["evaluated_users"] == one["evaluated_users"] > 2000
    assert all(mb > 0 for mb in three["shard_peak_rss_mb"])
    assert 0 < result["results"]["A/ndcg@10.mean"] < 1


@pytest.mark.slow
def test_a_failing_shard_stops_the_run_with_a_failure_message(tmp_path):
    from bench.perf.shards import run_shards

    with pytest.raises(SystemExit, match="shards: a shard child failed \\(exit code 1\\)"):
        run_shards({"users": 10}, 2, tmp_path, workers=2, timeout=None)  # no "items": fails
