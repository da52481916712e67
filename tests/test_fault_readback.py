"""Reading back a run folder that a stopped or damaged run left (issue 15).

* results.json is written last, so a folder without it is incomplete: ``bench report`` and
  ``bench compare`` refuse it in one line saying so and what to do, and ``bench report
  NAME`` skips it for the latest finished run;
* ``resume`` reuses a cell only when its ``done.json`` and ``per_user.parquet`` are what
  the run wrote (a digest and a checksum), and never copies a killed write's temporary file.

The fault matrix (``tests/test_fault_matrix.py``) and the fuzzer
(``tests/test_fuzz_run_folder.py``) check the same at every stage and on random damage.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.cli import main
from bench.record import DONE, read_cell
from bench.runner import run_experiment
from bench.tracking import MemoryTracker
from tests.helpers import make_cfg

CELL = Path("artifacts") / "rule_popular" / "fold0"


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("readback")
    from tests.helpers import write_ratings_csv

    csv = write_ratings_csv(root / "ratings.csv")
    cfg = make_cfg(csv, report={"figures": False}, stats={"n_resamples": 20})
    run_experiment(cfg, output_dir=root / "reports" / "t" / "20200101-000000-aaaaaa",
                   tracker=MemoryTracker())
    return root / "reports" / "t" / "20200101-000000-aaaaaa"


def stopped_copy(finished: Path, name: str = "20300101-000000-bbbbbb") -> Path:
    """A later run of the same name stopped before results.json."""
    stopped = finished.parent / name
    shutil.copytree(finished, stopped)
    (stopped / "results.json").unlink()
    return stopped


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.slow
def test_results_json_is_written_after_every_table(tmp_path, monkeypatch):
    from bench.reporting import summary

    written = []
    real = summary.write_parquet
    monkeypatch.setattr(summary, "write_parquet",
                        lambda frame, path: written.append(Path(path).name) or real(frame, path))
    real_record = summary.write_record
    monkeypatch.setattr(summary, "write_record", lambda folder, record, tables: (
        written.append("results.json"), real_record(folder, record, tables))[1])
    from tests.helpers import write_ratings_csv

    csv = write_ratings_csv(tmp_path / "r.csv")
    run_experiment(make_cfg(csv, report={"figures": False}, stats={"n_resamples": 20}),
                   output_dir=tmp_path / "run", tracker=MemoryTracker())
    assert written == ["per_user.parquet", "curves.parquet", "results.json"]


def test_report_of_a_stopped_run_folder_says_it_is_incomplete(finished, capsys):
    stopped = stopped_copy(finished, "20300101-000000-cccccc")
    try:
        assert main(["report", str(stopped)]) == 2
        assert one_line(capsys) == (
            f"bench: error: {stopped}: run folder incomplete (no results.json): it was "
            "stopped or failed before it finished; run the same command with resume=true "
            "to reuse its finished cells and complete it")
        assert main(["compare", str(finished), str(stopped)]) == 2
        assert "run folder incomplete (no results.json)" in one_line(capsys)
    finally:
        shutil.rmtree(stopped)


def test_report_by_name_skips_a_later_stopped_run(finished, capsys):
    stopped = stopped_copy(finished)
    try:
        assert main(["report", "t", "--reports-dir", str(finished.parent.parent)]) == 0
        assert f"{finished / 'report.md'}" in capsys.readouterr().out
        assert not (stopped / "report.md").exists() or \
            (stopped / "report.md").stat().st_mtime < (finished / "report.md").stat().st_mtime
    finally:
        shutil.rmtree(stopped)


def test_report_by_name_when_every_run_is_incomplete(finished, tmp_path, capsys):
    reports = tmp_path / "reports"
    stopped = reports / "t" / "20300101-000000-dddddd"
    shutil.copytree(finished, stopped)
    (stopped / "results.json").unlink()
    assert main(["report", "t", "--reports-dir", str(reports)]) == 2
    line = one_line(capsys)
    assert line == (f"bench: error: {reports / 't'}: no finished run (no results.json in any "
                    "run folder); the latest, 20300101-000000-dddddd, is incomplete: it was "
                    "stopped or failed before it finished; run the same command with "
                    "resume=true to reuse its finished cells and complete it")


def test_resume_reuses_an_intact_cell_only(finished, tmp_path):
    cell = tmp_path / "cell"
    shutil.copytree(finished / CELL, cell)
    assert read_cell(cell) is not None
    raw = json.loads((cell / DONE).read_text())
    key = next(iter(raw["metrics"]))
    raw["metrics"][key] += 0.25  # a changed number, still valid JSON
    (cell / DONE).write_text(json.dumps(raw))
    assert read_cell(cell) is None

    shutil.rmtree(cell)
    shutil.copytree(finished / CELL, cell)
    per_user = (cell / "per_user.parquet").read_bytes()
    middle = len(per_user) // 2  # one byte of the data pages, inverted
    (cell / "per_user.parquet").write_bytes(
        per_user[:middle] + bytes([per_user[middle] ^ 0xFF]) + per_user[middle + 1:])
    assert read_cell(cell) is None

    shutil.rmtree(cell)
    shutil.copytree(finished / CELL, cell)
    raw = json.loads((cell / DONE).read_text())
    del raw["digest"]  # written without one (an older bench): not trusted
    (cell / DONE).write_text(json.dumps(raw))
    assert read_cell(cell) is None


@pytest.mark.slow
def test_resume_does_not_copy_a_killed_writes_temporary_file(finished, tmp_path):
    from tests.helpers import write_ratings_csv

    source = tmp_path / "exp" / "r1"
    shutil.copytree(finished, source)
    (source / CELL / ".topk.parquet.0123456789ab.tmp").write_bytes(b"half")
    csv = write_ratings_csv(tmp_path / "r.csv")
    cfg = make_cfg(csv, report={"figures": False}, stats={"n_resamples": 20},
                   resume=str(source))
    cfg.dataset.path = json.loads((finished / "config.json").read_text())["dataset"]["path"]
    tracker = MemoryTracker()
    run_experiment(cfg, output_dir=tmp_path / "exp" / "r2", tracker=tracker)
    resumed = [r.name for r in tracker.runs.values() if "recspectrum.resumed_from" in r.tags]
    assert sorted(resumed) == ["rule_popular/fold0", "rule_random/fold0"]
    assert not list((tmp_path / "exp" / "r2").rglob("*.tmp"))


def test_a_changed_results_json_or_table_is_refused_in_one_line(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    raw = json.loads((run / "results.json").read_text())
    raw["models"][0]["model"] = "renamed"  # valid JSON, other content
    (run / "results.json").write_text(json.dumps(raw))
    assert main(["report", str(run)]) == 2
    assert one_line(capsys) == (
        f"bench: error: {run / 'results.json'}: changed or damaged since the run wrote it "
        "(its digest does not match its content); rerun the experiment")

    shutil.rmtree(run)
    shutil.copytree(finished, run)
    import pandas as pd

    frame = pd.read_parquet(run / "per_user.parquet")
    frame.loc[0, "ndcg@5"] = 1.0  # a readable table with another number
    frame.to_parquet(run / "per_user.parquet", index=False)
    assert main(["compare", str(finished), str(run)]) == 2
    assert one_line(capsys) == (
        f"bench: error: {run / 'per_user.parquet'}: changed or damaged since the run wrote "
        "it (its SHA-256 does not match results.json); rerun the experiment")
