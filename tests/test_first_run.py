"""The first ten minutes (issue 18): the help page, progress, run names, errors that name
the next step, Ctrl-C, and no folders left behind by a run that failed."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from bench.cli import HELP, SUBCOMMANDS, main
from bench.observe import attached
from bench.progress import Progress
from tests.helpers import compose_config, csv_dataset

#: a quick run on the ratings CSV: rule models only, no tracker, figures or cold start
QUICK = ["tracker=none", "eval.cutoffs=[5]", "report.figures=false", "cold_start.user=null",
         "cold_start.item=null", "split=temporal"]
CELL_LINE = re.compile(r"^\[(\d+)/(\d+)\] (\S+) fold 0: ")


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# ---------------------------------------------------------------------- the help page
@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["model=[cf_als]", "--help"]])
def test_help_is_one_screen_listing_every_subcommand(capsys, argv):
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert out.strip() == HELP
    lines = out.rstrip("\n").splitlines()
    assert len(lines) <= 40, len(lines)
    for command in SUBCOMMANDS:
        assert re.search(rf"^  {command} +\S", out, re.M), f"{command} not listed"
    for pointer in ("bench --cfg job", "docs/configuration.md", "--hydra-help", "-q", "-v"):
        assert pointer in out
    overrides = re.findall(r"^  ([a-z_.]+)=", out, re.M)
    assert len(overrides) == 10, overrides


def test_hydra_help_stays_reachable(capsys):
    code, out, _ = run(capsys, "--hydra-help")
    assert code == 0 and "Hydra" in out


# ---------------------------------------------------------------------- progress
def test_the_live_display_shows_cell_i_of_n_with_time(monkeypatch):
    """What a terminal shows (tmux capture in the issue): the rendered live line."""
    stream = io.StringIO()
    p = Progress(stream, live=True)
    p.start("load", {})
    p.end("load", {}, 0.1, True)
    p.start("plan", {"cells": 3})
    p.end("plan", {"cells": 3}, 0.0, True)
    for model in ("rule_popular", "cf_als"):
        info = {"model": model, "protocol": "main", "fold": 0}
        p.start("cell", info)
        p.start("fit", info)
        p.end("fit", info, 0.1, True)
        p.end("cell", info, 0.2, True)
    p.start("reduce", {})
    screen = stream.getvalue()
    p.end("reduce", {}, 0.3, True)
    frames = [f for f in re.split(r"[\r\n]", screen) if f.strip()]
    assert any(f.startswith("loading data") for f in frames)
    assert any("cf_als fold 0 · fit" in f and "1/3 cells" in f for f in frames), frames
    assert any("2/3 cells" in f and "elapsed 0:0" in f and "left" in f for f in frames)
    assert any(f.startswith("writing the report") and "2/3 cells" in f for f in frames)
    assert p.bar is None  # closed after the report


def test_a_run_off_a_terminal_prints_one_line_per_cell(capsys, ratings_csv, tmp_path):
    code, out, err = run(capsys, *csv_dataset(ratings_csv), *QUICK,
                         "model=[rule_popular,rule_random]", f"report.dir={tmp_path}")
    assert code == 0, err
    # off a terminal, progress lines are ordinary output (stdout); stderr stays for errors
    cells = [m.groups() for m in map(CELL_LINE.match, out.splitlines()) if m]
    assert cells == [("1", "2", "rule_popular"), ("2", "2", "rule_random")], out
    assert "writing the report: done" in out
    assert "rule_popular" in out  # and the table
    assert not any(map(CELL_LINE.match, err.splitlines())) and "writing the report" not in err


def test_quiet_shows_the_table_only(capsys, ratings_csv, tmp_path):
    code, out, err = run(capsys, "-q", *csv_dataset(ratings_csv), *QUICK,
                         "model=[rule_popular]", f"report.dir={tmp_path}")
    assert code == 0, err
    assert not [x for x in err.splitlines() if CELL_LINE.match(x)], err
    assert "rule_popular" in out and "report:" in out


# ---------------------------------------------------------------------- names
@pytest.mark.slow
def test_the_default_name_follows_the_dataset():
    assert compose_config().name == "spectrum"
    assert compose_config(["dataset=ml_100k"]).name == "spectrum-ml_100k"
    assert compose_config(["dataset=csv", "dataset.path=x/clicks.csv.gz"]).name == \
        "spectrum-clicks"
    assert compose_config(["experiment=surprise_ml100k"]).name == "surprise_ml100k"
    assert compose_config(["name=mine", "dataset=ml_1m"]).name == "mine"


def test_the_gate_keeps_its_name_and_baseline():
    for extra in ([], ["dataset=ml_100k"], ["split=temporal"]):
        cfg = compose_config(["experiment=ci", *extra])
        assert cfg.name == "ci"
        assert cfg.check.baseline == "reports/baselines/ci.json"


@pytest.mark.slow
def test_a_run_on_other_data_and_split_gets_its_own_folder(capsys, ratings_csv, tmp_path):
    """Not 'the latest spectrum run': bench report / compare / resume=true stay apart."""
    reports = tmp_path / "reports"
    code, _, err = run(capsys, *csv_dataset(ratings_csv), *QUICK, "model=[rule_popular]",
                       f"report.dir={reports}")
    assert code == 0, err
    assert [p.name for p in reports.iterdir()] == ["spectrum-ratings-temporal"]
    code, _, err = run(capsys, *csv_dataset(ratings_csv), *QUICK, "model=[rule_popular]",
                       f"report.dir={reports}", "name=mine")
    assert code == 0, err
    assert sorted(p.name for p in reports.iterdir()) == ["mine", "spectrum-ratings-temporal"]


# ---------------------------------------------------------------------- next steps
def test_a_baseline_set_on_the_command_line_outside_the_run_says_what_to_do(capsys, tmp_path):
    code, _, err = run(capsys, "model=[cf_als]", "stats.baseline=rule_popular",
                       "tracker=none", f"report.dir={tmp_path}")
    assert code == 2
    line = err.strip()
    assert line.startswith("bench: error: stats.baseline:") and "\n" not in line
    assert "stats.baseline=<one of them> or null" in line
    assert "model=[cf_als,rule_popular]" in line
    assert not any(tmp_path.iterdir())


def test_the_experiments_baseline_is_picked_again_with_a_note(capsys, ratings_csv, tmp_path):
    """`bench model=[cf_als]`: the spectrum experiment's baseline is not in the run."""
    code, _, err = run(capsys, *csv_dataset(ratings_csv), *QUICK, "model=[rule_random]",
                         f"report.dir={tmp_path}")
    assert code == 0, err
    note = [x for x in err.splitlines() if x.startswith("bench: note:")]
    assert note == ["bench: note: stats.baseline is rule_popular, which is not in this run; "
                    "using the first model, rule_random instead (stats.baseline=MODEL picks "
                    "another)"]


def test_a_csv_without_its_path_says_what_to_add(capsys, tmp_path):
    code, _, err = run(capsys, "dataset=csv", "tracker=none", f"report.dir={tmp_path}")
    assert code == 2
    line = err.strip()
    assert line.startswith("bench: error: dataset.path: required") and "\n" not in line
    assert "dataset.path=data/ratings.csv" in line


class StopAt:
    """An observer that presses Ctrl-C when the ``n``-th cell starts."""

    def __init__(self, n: int):
        self.n, self.seen = n, 0

    def start(self, stage, info):
        if stage == "cell":
            self.seen += 1
            if self.seen == self.n:
                raise KeyboardInterrupt

    def end(self, stage, info, seconds, ok):
        pass


@pytest.mark.slow
def test_ctrl_c_ends_with_the_resume_command(capsys, ratings_csv, tmp_path):
    argv = [*csv_dataset(ratings_csv), *QUICK, "model=[rule_popular,rule_random]",
            f"report.dir={tmp_path}"]
    with attached(StopAt(2)):
        code, _, err = run(capsys, *argv)
    assert code == 130
    assert "Traceback" not in err
    message = [x for x in err.splitlines() if x.startswith("bench: interrupted")]
    assert len(message) == 1, err
    assert "1 finished cell(s) kept" in message[0] and message[0].endswith("resume=true")
    # the command it names continues the run, reusing the finished cell
    again = message[0].split("To continue where it stopped: bench ", 1)[1].split(" ")
    assert again[-1] == "resume=true"
    code, _, err = run(capsys, *argv, "resume=true")
    assert code == 0, err
    assert len(list(tmp_path.glob("*/*/results.json"))) == 1


def test_ctrl_c_before_any_cell_keeps_nothing(capsys, ratings_csv, tmp_path):
    reports = tmp_path / "reports"
    with attached(StopAt(1)):
        code, _, err = run(capsys, *csv_dataset(ratings_csv), *QUICK, "model=[rule_popular]",
                           f"report.dir={reports}")
    assert code == 130
    assert "nothing was kept" in err and "Traceback" not in err
    assert not reports.exists()


# ---------------------------------------------------------------------- no folders left
@pytest.mark.slow
def test_failed_commands_leave_no_files(capsys, tmp_path, monkeypatch, ratings_csv):
    """Bad input found before any output: nothing new in the working directory (the
    default report.dir, reports/, included)."""
    bad = tmp_path / "in" / "bad.csv"
    bad.parent.mkdir()
    bad.write_text("user,item,stars,ts\n1,2,x,5\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    commands = [
        ["model=[cf_als]", "stats.baseline=rule_popular", "tracker=none"],
        ["dataset=csv", "tracker=none"],
        [*csv_dataset(bad), *QUICK, "model=[rule_popular]"],              # fails loading
        [*csv_dataset(ratings_csv), *QUICK, "model=[rule_popular]", "resume=/nowhere"],
    ]
    for argv in commands:
        code, _, err = run(capsys, *argv)
        assert code == 2, (argv, err)
        assert files_under(work) == set(), (argv, files_under(work))


def test_an_unknown_run_name_lists_the_names_that_have_runs(capsys, ratings_csv, tmp_path):
    reports = tmp_path / "reports"
    code, _, err = run(capsys, *csv_dataset(ratings_csv), *QUICK, "model=[rule_popular]",
                       f"report.dir={reports}")
    assert code == 0, err
    code, _, err = run(capsys, "report", "spectrum", "--reports-dir", str(reports))
    assert code == 2
    assert err.strip().endswith(f"names with runs under {reports}/: spectrum-ratings-temporal")
    code, out, _ = run(capsys, "report", "spectrum-ratings-temporal", "--reports-dir",
                         str(reports))
    assert code == 0 and "report:" in out
