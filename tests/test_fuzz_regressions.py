"""Regressions for what the input fuzzer (``tests/test_fuzz_inputs.py``) found, issue 15.

Each case failed before its fix with a traceback or a crash instead of one line.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from bench.data.tabular import load_table
from bench.errors import ConfigError, DataError
from bench.models.collaborative.als import ImplicitALS
from bench.models.rule.popular import PopularityRecommender
from tests.test_fuzz_inputs import run_cli

ALS_CASES = [("num_threads", -1, r"num_threads: expected an integer >= 0, got -1"),
             ("factors", float("nan"), r"factors: expected a positive integer, got nan"),
             ("factors", -1, r"factors: expected a positive integer, got -1"),
             ("iterations", None, r"iterations: expected a positive integer, got None"),
             ("regularization", float("nan"), r"regularization: expected a number >= 0"),
             ("alpha", "", r"alpha: expected a number > 0, got ''"),
             ("bm25_k1", None, r"bm25_k1: expected a number >= 0, got None"),
             ("bm25_b", 1.5, r"bm25_b: expected a number >= 0 and <= 1, got 1\.5"),
             ("seed", -1, r"seed: expected a non-negative integer, got -1")]


@pytest.mark.parametrize(("param", "value", "pattern"), ALS_CASES,
                         ids=[f"{p}={v!r}" for p, v, _ in ALS_CASES])
def test_als_parameters_are_checked_before_fitting(ratings_csv, param, value, pattern):
    """num_threads=-1 reached OpenMP as a ~1 TB allocation and aborted the process
    (``libgomp: Out of memory``); the others were TypeError/ValueError/OverflowError
    tracebacks or NaN factors (``ModelFitError``)."""
    train = load_table(path=ratings_csv, columns={"user_id": "user", "item_id": "item"})
    with pytest.raises(ConfigError, match=pattern):
        ImplicitALS(**{param: value}).fit(train.interactions)


@pytest.mark.slow  # a fresh interpreter
def test_als_bad_thread_count_no_longer_aborts_the_process(ratings_csv):
    code = ("from bench.models.collaborative.als import ImplicitALS\n"
            "from bench.data.tabular import load_table\n"
            f"t = load_table(path={str(ratings_csv)!r}, columns={{'user_id': 'user', "
            "'item_id': 'item'}).interactions\n"
            "try:\n    ImplicitALS(num_threads=-1, factors=4).fit(t)\n"
            "except Exception as e:\n    print(type(e).__name__)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ParameterError", proc.stderr[-500:]


@pytest.mark.parametrize("value", [None, "abc", 1.5])
def test_popularity_min_count_is_checked(ratings_csv, value):
    train = load_table(path=ratings_csv, columns={"user_id": "user", "item_id": "item"})
    with pytest.raises(ConfigError, match=r"min_count: expected an integer >= 0"):
        PopularityRecommender(min_count=value).fit(train.interactions)


@pytest.mark.parametrize("value", [None, -1, 1.5, "abc"])
def test_random_seed_is_checked(ratings_csv, value):
    """rule_random seed=None was a TypeError at recommend time (uint64(None))."""
    from bench.models.rule.random import RandomRecommender

    train = load_table(path=ratings_csv, columns={"user_id": "user", "item_id": "item"})
    with pytest.raises(ConfigError, match=r"seed: expected a non-negative integer"):
        RandomRecommender(seed=value).fit(train.interactions)


@pytest.mark.parametrize("key", ["items_path", "exclude_users", "path"])
def test_a_path_too_long_for_the_file_system_is_missing_not_an_oserror(ratings_csv, key):
    """``Path.is_file()`` raises OSError (File name too long) instead of answering False."""
    kwargs = {"path": ratings_csv, key: "x" * 300}
    with pytest.raises(DataError, match=r"does not exist"):
        load_table(columns={"user_id": "user", "item_id": "item"}, **kwargs)


@pytest.mark.parametrize("value", [1, True, ["a"], "", "a\x00b"])
def test_a_path_that_is_not_a_path_is_a_config_error(ratings_csv, value):
    with pytest.raises(ConfigError, match=r"load_table items_path: expected a file path"):
        load_table(path=ratings_csv, columns={"user_id": "user", "item_id": "item"},
                   items_path=value)


@pytest.mark.parametrize(("argv", "pattern"), [
    (["perf", "metrics", "--users", "40", "--items", "30", "--k", "5", "--repeats", "1",
      "--relevant", "-1"], r"--relevant: expected a finite number > 0, got -1\.0"),
    (["perf", "metrics", "--users", "40", "--items", "30", "--k", "5", "--repeats", "1",
      "--seed", "-1"], r"--seed: expected an integer >= 0, got -1"),
    (["perf", "topk", "--users", "40", "--items", "30", "--factors", "4", "--per-user", "3",
      "--k", "5", "--repeats", "1", "--no-memory", "--block-rows", "-1"],
     r"--block-rows, --check-users, --seed and --iterations must be >= 0"),
    (["perf", "topk", "--users", "40", "--items", "30", "--factors", "4", "--per-user", "3",
      "--k", "5", "--repeats", "1", "--no-memory", "--check-users", "-1"],
     r"--block-rows, --check-users, --seed and --iterations must be >= 0"),
    (["perf", "scale", "--timeout", "-1"], r"--timeout: expected a number of seconds > 0"),
], ids=["metrics-relevant", "metrics-seed", "topk-block-rows", "topk-check-users",
        "scale-timeout"])
def test_perf_options_out_of_range_exit_2(argv, pattern):
    """They were ValueError tracebacks (numpy poisson, concatenate, negative dimensions)."""
    code, err = run_cli(argv)
    assert code == 2, err
    assert "Traceback" not in err and re.search(pattern, err), err



def test_a_split_date_after_2262_cuts_without_overflow():
    """split.date=2300-01-01 was an OutOfBoundsDatetime traceback (a nanosecond
    Timestamp(0) subtraction); dates to 9999 now cut like any other."""
    import pandas as pd

    from bench.data.interactions import Interactions
    from bench.splits.audit import audit_split
    from bench.splits.temporal import GlobalTemporalSplitter

    x = Interactions.from_frame(pd.DataFrame({
        "user_id": [1, 1, 2, 2], "item_id": [1, 2, 1, 2],
        "timestamp": ["2020-01-01", "2300-01-01", "2021-01-01", "9999-12-31"]}))
    split = GlobalTemporalSplitter(date="2300-01-01").split(x)[0]
    assert split.test.timestamps.tolist() == [10_413_792_000, 253_402_214_400]
    assert len(split.train) == 2
    assert audit_split(split).to_dict()  # the audit formats these times too


def test_bpr_seed_and_a_diverging_step_are_one_line(ratings_csv):
    """cf_bpr seed=None was a TypeError; learning_rate=2 made implicit raise ModelFitError
    (NaN factors), a traceback and exit 1."""
    from bench.models.collaborative.bpr import ImplicitBPR as BPR

    train = load_table(path=ratings_csv, columns={"user_id": "user", "item_id": "item"})
    with pytest.raises(ConfigError, match=r"seed: expected a non-negative integer, got None"):
        BPR(seed=None).fit(train.interactions)
    with pytest.raises(ConfigError, match=r"learning_rate: expected a step small enough for "
                       r"SGD to converge \(the factors became NaN\), got 1000"):
        BPR(learning_rate=1000, iterations=50, factors=8).fit(train.interactions)


@pytest.mark.parametrize("value", [1, True, [1]])
def test_fallback_history_bounds_must_be_a_mapping(value):
    """hybrid_fallback max_history=1 was "TypeError: 'int' object is not iterable"."""
    from bench.targets import build
    from bench.testing import conformance_data
    from tests.test_fuzz_inputs import model_node

    node = model_node("hybrid_fallback")
    node["max_history"] = value
    data = conformance_data()
    with pytest.raises(ConfigError, match=r"max_history: expected a mapping of component "
                       r"label to a history length, or null"):
        build(node, "models.hybrid_fallback").fit(data.split.train,
                                                   data.dataset.item_features)


@pytest.mark.parametrize("value", [None, "", "abc", True])
def test_blend_weight_that_is_not_a_number_is_one_line(value):
    """hybrid_blend weights.cf_als='' or null was a ValueError/TypeError from float()."""
    from bench.targets import build
    from bench.testing import conformance_data
    from tests.test_fuzz_inputs import model_node

    node = model_node("hybrid_blend")
    first = sorted(node["weights"])[0]
    node["weights"][first] = value
    data = conformance_data()
    with pytest.raises(ConfigError, match=r"weights: expected non-negative numbers with a "
                       r"positive sum"):
        build(node, "models.hybrid_blend").fit(data.split.train, data.dataset.item_features)


SURPRISE_CASES = [
    ("SVD", {}, {"random_state": -1}, r"random_state: expected an integer in \[0, 2\*\*32 - 1\]"),
    ("SVD", {"init_std_dev": -1}, {}, r"params\.init_std_dev: expected a number >= 0, got -1"),
    ("NMF", {"init_low": float("nan")}, {},
     r"params\.init_low: expected a finite number, got nan"),
    ("NMF", {"init_low": -0.5}, {}, r"params\.init_low: expected a number >= 0, got -0\.5"),
    ("BaselineOnly", {"bsl_options": {"reg_u": -1}}, {},
     r"params\.bsl_options\.reg_u: expected a finite number >= 0, got -1"),
    ("KNNBasic", {"sim_options": {"min_support": 0}}, {},
     r"params\.sim_options\.min_support: expected a positive integer, got 0"),
]


@pytest.mark.parametrize(("algorithm", "params", "extra", "pattern"), SURPRISE_CASES,
                         ids=[f"{a}-{p or e}" for a, p, e, _ in SURPRISE_CASES])
def test_surprise_parameters_that_crashed_surprise_are_one_line(ratings_csv, algorithm,
                                                                params, extra, pattern):
    """These were ZeroDivisionError, ValueError ('scale < 0', 'Seed must be between 0 and
    2**32 - 1') or OverflowError tracebacks from inside scikit-surprise."""
    from bench.models.collaborative.surprise import SurpriseRecommender

    train = load_table(path=ratings_csv, columns={"user_id": "user", "item_id": "item",
                                                  "rating": "stars"})
    with pytest.raises(ConfigError, match=pattern):
        SurpriseRecommender(algorithm=algorithm, params=params, **extra).fit(train.interactions)


def test_split_export_with_an_override_that_looks_like_a_flag_is_one_line(tmp_path):
    """`bench split export DIR -` skipped the up-front config check (it skips when an
    argument starts with '-') and Hydra's OverrideParseException came out as a traceback."""
    code, err = run_cli(["split", "export", str(tmp_path / "out"), "-"], cwd=tmp_path)
    assert code == 2, err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("bench: error:")]
    assert len(lines) == 1 and "LexerNoViableAltException" in lines[0], err
    assert not (tmp_path / "out").exists()
