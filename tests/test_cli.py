"""The `bench` command: exit codes and one-line messages for bad input."""

import pytest

from bench.cli import main
from tests.helpers import QUICK_RUN as FAST
from tests.helpers import csv_dataset


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def csv_args(path, *extra):
    return [*csv_dataset(path), *extra]


def test_csv_run_succeeds(capsys, ratings_csv, tmp_path):
    code, out, err = run(capsys, *csv_args(ratings_csv), *FAST, "split=temporal",
                         f"report.dir={tmp_path}")
    assert code == 0, err
    assert "rule_popular" in out and "ndcg@5" in out


@pytest.mark.slow  # a CLI run per case; the bad-input catalogue's fast subset covers this
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["eval.cutoffs=[10,5]"], "eval.cutoffs: expected strictly ascending"),
        (["eval.cutoffs=[0]"], "eval.cutoffs: expected every k > 0"),
        (["seed=abc"], "seed: expected an integer"),
        (["split.quantile=1.5"], "quantile"),
        (["+models.rule_popular.bogus=1"], "unknown key(s) ['bogus']"),
    ],
)
def test_bad_config_values_exit_2_with_one_line(capsys, ratings_csv, tmp_path, extra, needle):
    code, _, err = run(capsys, *csv_args(ratings_csv), "tracker=none", "model=[rule_popular]",
                       "split=temporal", f"report.dir={tmp_path}", *extra)
    assert code == 2
    lines = [x for x in err.splitlines() if x.startswith("bench: error:")]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["nosuchkey=1"],                 # unknown key
        ["model=no_such_model"],         # unknown group option
        ["eval.nosuch=1"],               # unknown nested key
    ],
)
def test_hydra_composition_errors_exit_2(capsys, args):
    code, _, err = run(capsys, "tracker=none", *args)
    assert code == 2
    assert "Traceback" not in err


@pytest.mark.slow  # a CLI run per case; the bad-input catalogue's fast subset covers this
@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "empty"),
        ("user,item,stars,ts\n", "header"),
        ("user,item,stars,ts\n1,2,x,5\n", "rating"),
        ("user,item,stars,ts\n1,2,9,5\n", "scale"),
        ("user,item,stars,ts\n,2,4,5\n", "user"),
        ("user,item,stars,ts\n1,2,4,yesterday-ish\n", "timestamp"),
        ("user,item,stars,ts\n1,2,4,5\n1,2,3,6\n", "duplicate"),
        ("user;item;stars;ts\n1;2;4;5\n", "sep"),
        ("usr,item,stars,ts\n1,2,4,5\n", "user"),
    ],
)
def test_bad_files_exit_2_naming_the_problem(capsys, tmp_path, content, needle):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, _, err = run(capsys, *csv_args(path), *FAST, "split=temporal",
                       f"report.dir={tmp_path}")
    assert code == 2, err
    line = [x for x in err.splitlines() if x.startswith("bench: error:")]
    assert len(line) == 1 and "bad.csv" in line[0] and needle in line[0].lower(), err


def test_missing_file_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, *csv_args(tmp_path / "nope.csv"), *FAST, "split=temporal")
    assert code == 2 and "nope.csv" in err


def test_missing_dataset_folder_says_how_to_get_it(capsys, tmp_path):
    code, _, err = run(capsys, "dataset=ml_100k", f"data_dir={tmp_path}", *FAST)
    assert code == 2
    assert "ml-100k" in err and "bench data download" in err


def test_no_test_users_exit_2(capsys, ratings_csv, tmp_path):
    # every timestamp of a user's rows is before the cut when the cut is after all rows
    code, _, err = run(capsys, *csv_args(ratings_csv), *FAST, "split=temporal",
                       "split.date=2100-01-01", f"report.dir={tmp_path}")
    assert code == 2 and "test" in err


def test_data_download_unknown_name_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, "data", "download", "ml-nope", "--data-dir", str(tmp_path))
    assert code == 2 and "ml-nope" in err


# ---------------------------------------------------------------- every SystemExit path
@pytest.mark.parametrize(("code", "expected", "printed"), [
    (None, 0, ""), (0, 0, ""), (3, 3, ""), ("scale: the child process failed", 1,
                                            "bench: error: scale: the child process failed"),
])
def test_a_systemexit_from_a_subcommand_keeps_its_meaning(monkeypatch, capsys, code, expected,
                                                          printed):
    """A failure raised as SystemExit("message") exits 1 with its message, never 0."""
    import bench.perf

    def perf(argv):
        raise SystemExit(code)

    monkeypatch.setattr(bench.perf, "main", perf)
    assert main(["perf", "scale"]) == expected
    assert capsys.readouterr().err.strip() == printed


def test_every_systemexit_in_bench_is_a_failure_message_or_an_exit_code():
    """The SystemExits left in bench/ are the perf scripts' failures (exit 1 via
    exit_code) or integer codes; bad input raises a BenchError (exit 2) instead."""
    import ast
    from pathlib import Path

    import bench

    found = []
    for path in Path(bench.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                    and getattr(node.exc.func, "id", None) == "SystemExit":
                found.append((path.name, ast.unparse(node.exc.args[0])[:40]))
    perf = [f for f in found
            if f[0] in {"topk.py", "scale.py", "spectrum.py", "shards.py", "cells.py"}]
    assert perf and all("failed" in text for _, text in perf)
    assert [f for f in found if f not in perf and f[0] != "cli.py"] == []


def test_perf_bad_arguments_are_bad_input(capsys):
    assert main(["perf", "metrics", "--k", "0"]) == 2
    assert "bench: error: --k: expected 1 <= k" in capsys.readouterr().err


@pytest.mark.slow
def test_two_runs_started_in_the_same_second_get_their_own_folders(tmp_path, capsys,
                                                                   monkeypatch):
    """Issue: the run folder was only a timestamp, so a second run in the same second
    wrote into the first one's folder. The folder now carries a per-command token."""
    import datetime as dt

    import hydra.core.utils

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 1, 1, 0, 0, 0)

    monkeypatch.setattr(hydra.core.utils, "datetime", Frozen)  # Hydra's ${now:} resolver
    args = ["tracker=none", "model=[rule_popular]", "eval.cutoffs=[5]", "split=temporal",
            "~experiment", "report.figures=false", f"report.dir={tmp_path}"]
    assert main(args) == 0
    assert main(args) == 0
    capsys.readouterr()
    (experiment,) = tmp_path.iterdir()  # default-temporal: the name follows the split
    runs = sorted(experiment.iterdir())
    assert len(runs) == 2 and all(r.name.startswith("20260101-000000-") for r in runs)
    assert all((r / "results.json").is_file() for r in runs)


def test_check_takes_overrides_on_both_sides_of_its_options(monkeypatch, tmp_path):
    """`bench check A=1 --baseline F B=2` used to fail in argparse ("unrecognized arguments")."""
    import bench.check.command as command

    seen = {}

    def fake_run_check(overrides, **kwargs):
        seen.update(overrides=overrides, baseline=kwargs["baseline"])
        return 0

    monkeypatch.setattr(command, "run_check", fake_run_check)
    assert main(["check", "tracker=none", "--baseline", str(tmp_path / "b.json"), "seed=3"]) == 0
    assert seen == {"overrides": ["tracker=none", "seed=3"], "baseline": str(tmp_path / "b.json")}


def test_a_ray_error_reaching_the_command_is_one_line_exit_1(monkeypatch, capsys):
    """With retries off, a sweep job whose Ray worker died stops the sweep: one line
    saying what happened and what to do, exit 1 (not bad input), no traceback."""
    exceptions = pytest.importorskip("ray.exceptions")
    import bench.cli as cli

    def lost(argv):
        raise exceptions.WorkerCrashedError()

    monkeypatch.setattr(cli, "_dispatch", lost)
    assert cli.main(["-m", "seed=1,2"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("bench: error: Ray lost a job (WorkerCrashedError")
    assert "max_retries" in err


def test_other_unexpected_errors_are_not_taken_for_ray_errors(monkeypatch):
    import bench.cli as cli

    def broken(argv):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "_dispatch", broken)
    with pytest.raises(ZeroDivisionError):
        cli.main(["seed=1"])
