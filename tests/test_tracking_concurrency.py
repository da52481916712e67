"""MLflow store faults (issue 15, points 9 and 11): concurrent first runs on a fresh SQLite
store all succeed with their own run folder and MLflow run; a run killed by SIGKILL leaves
RUNNING runs that the next ``bench`` marks KILLED; Ctrl-C ends the open runs KILLED."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import csv_dataset, write_ratings_csv

pytestmark = pytest.mark.slow

RUN = ["eval.cutoffs=[5]", "report.figures=false", "cold_start.user=null",
       "cold_start.item=null", "split=temporal"]

#: ``bench`` in a child process whose ``rule_random`` fit blocks until it is signalled,
#: so the kill lands mid-run, after the first cell (``rule_popular``) finished. SIGUSR1
#: makes it print every thread's stack (:func:`stacks_of`) when it fails to end in time.
SLOW_BENCH = """
import faulthandler, signal, sys, time
faulthandler.register(signal.SIGUSR1, all_threads=True)
from bench.models.rule.random import RandomRecommender
RandomRecommender._fit = lambda self, *a, **k: time.sleep(600)
from bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def child_env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else ""),
            "MPLBACKEND": "Agg", "no_proxy": "127.0.0.1,localhost"}


def stacks_of(proc: subprocess.Popen) -> str:
    """Every thread's stack of a ``SLOW_BENCH`` child that did not end in time (then
    killed), and what it printed: the failure message says where it waited."""
    proc.send_signal(signal.SIGUSR1)
    time.sleep(2)
    proc.kill()
    out, err = proc.communicate()
    return f"no exit in time; stdout:\n{out}\nstderr and stacks:\n{err}"


def bench_argv(tmp_path: Path, *extra: str) -> list[str]:
    csv = tmp_path / "ratings.csv"
    if not csv.exists():
        write_ratings_csv(csv)
    return [*csv_dataset(csv), *RUN, f"report.dir={tmp_path / 'runs'}", *extra]


def runs_by_status(tmp_path: Path) -> dict[str, list]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("recspectrum")
    out: dict[str, list] = {}
    for r in client.search_runs([exp.experiment_id], max_results=1000):
        out.setdefault(r.info.status, []).append(r)
    return out


def start_slow_bench(tmp_path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_BENCH, *bench_argv(tmp_path, *extra)], cwd=tmp_path,
        env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_first_cell(tmp_path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list((tmp_path / "runs").glob("*/*/artifacts/rule_popular/fold0/done.json")):
            time.sleep(0.5)  # the second cell's MLflow run is open by now
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("no cell finished in time")


def test_concurrent_first_runs_on_a_fresh_store_all_finish(tmp_path):
    n = 4  # (6 passes too; each run costs CI about 10 s)
    argv = bench_argv(tmp_path, "model=[rule_popular]")
    procs = [subprocess.Popen([sys.executable, "-m", "bench.cli", *argv], cwd=tmp_path,
                              env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(n)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for code, _out, err in results:
        assert code == 0, err
        assert "cannot reach the tracking store" not in err
    folders = list((tmp_path / "runs").glob("*/*/report.md"))
    assert len({f.parent for f in folders}) == n
    runs = runs_by_status(tmp_path)
    assert set(runs) == {"FINISHED"}, {k: len(v) for k, v in runs.items()}
    parents = [r for r in runs["FINISHED"] if "mlflow.parentRunId" not in r.data.tags]
    assert len({r.info.run_id for r in parents}) == n
    assert {r.data.tags["recspectrum.pid"] for r in parents} == {str(p.pid) for p in procs}
    # each parent has its own child (the one model's fold), of the same process
    children = [r for r in runs["FINISHED"] if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == n
    by_parent = {r.data.tags["mlflow.parentRunId"]: r for r in children}
    assert set(by_parent) == {r.info.run_id for r in parents}
    for parent in parents:
        child = by_parent[parent.info.run_id]
        assert child.info.run_name == "rule_popular/fold0"
        assert child.data.tags["recspectrum.pid"] == parent.data.tags["recspectrum.pid"]
        # the parent is named after its own run folder
        folder = parent.info.run_name.split("/", 1)[1]
        assert folder in {f.parent.name for f in folders}
    assert len({r.info.run_name for r in parents}) == n


def test_runs_left_running_by_sigkill_are_marked_killed_by_the_next_run(tmp_path):
    proc = start_slow_bench(tmp_path, "model=[rule_popular,rule_random]")
    wait_for_first_cell(tmp_path, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    running = runs_by_status(tmp_path).get("RUNNING", [])
    assert len(running) == 2  # the parent and the rule_random child: stale now

    folder = next((tmp_path / "runs").glob("*/*/config.json")).parent
    again = subprocess.run(
        [sys.executable, "-m", "bench.cli",
         *bench_argv(tmp_path, "model=[rule_popular,rule_random]", "resume=true")],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert "marked 2 stale MLflow run(s) KILLED" in again.stderr + again.stdout
    runs = runs_by_status(tmp_path)
    assert "RUNNING" not in runs
    assert {r.info.run_id for r in runs["KILLED"]} == {r.info.run_id for r in running}
    assert folder.is_dir()


def test_ctrl_c_ends_the_parent_and_the_open_child_killed(tmp_path):
    proc = start_slow_bench(tmp_path, "model=[rule_popular,rule_random]")
    wait_for_first_cell(tmp_path, proc)
    proc.send_signal(signal.SIGINT)
    try:
        _out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(stacks_of(proc))
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "resume=true" in lines[0], err
    runs = runs_by_status(tmp_path)
    assert "RUNNING" not in runs, {k: len(v) for k, v in runs.items()}
    killed = {r.info.run_name for r in runs["KILLED"]}
    assert "rule_random/fold0" in killed and len(killed) == 2, killed
    assert [r.info.run_name for r in runs["FINISHED"]] == ["rule_popular/fold0"]
