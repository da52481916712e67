"""The background tracker: every call made by one worker thread, in order, with the real
run ids once the store has them; the worker's errors stop the run on the run's thread."""

from __future__ import annotations

import errno
import json
import tempfile
import threading

import pytest

from bench.errors import TrackingError
from bench.runner import run_experiment
from bench.tracking import Tracker
from bench.tracking.background import BackgroundTracker, in_background
from bench.tracking.base import NullTracker, settled_run_id
from bench.tracking.memory import MemoryTracker
from bench.tracking.mlflow_tracker import MlflowServerTracker, MlflowTracker
from tests.helpers import make_cfg


class Gated(MemoryTracker):
    """A memory tracker whose check waits for ``gate``: calls queue up behind it."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.threads: set[str] = set()

    def check(self):
        self.threads.add(threading.current_thread().name)
        assert self.gate.wait(10)

    def start_run(self, name, *, parent_id=None, tags=None):
        self.threads.add(threading.current_thread().name)
        return super().start_run(name, parent_id=parent_id, tags=tags)


def test_calls_return_at_once_and_reach_the_tracker_in_order_with_real_ids(tmp_path):
    real = Gated()
    bg = BackgroundTracker(real)
    assert isinstance(bg, Tracker)
    bg.check()  # the worker checks: the caller does not wait for it
    parent = bg.start_run("exp/run", tags={"a": "1"})
    child = bg.start_run("m/fold0", parent_id=parent)
    bg.log_params(child, {"k": 3})
    bg.log_metrics(child, {"ndcg@10": 0.25})
    bg.end_run(child, "FINISHED")
    bg.end_run(parent, "FAILED")
    assert (parent, child) == ("pending-1", "pending-2")
    assert real.runs == {}  # nothing made yet: the check holds the worker

    real.gate.set()
    assert bg.resolve(child) == "mem-2"
    bg.flush()
    runs = real.runs
    assert (runs["mem-1"].name, runs["mem-1"].tags, runs["mem-1"].status) == (
        "exp/run", {"a": "1"}, "FAILED")
    assert (runs["mem-2"].parent_id, runs["mem-2"].params, runs["mem-2"].metrics,
            runs["mem-2"].status) == ("mem-1", {"k": "3"}, {"ndcg@10": 0.25}, "FINISHED")
    assert real.threads == {"bench-tracker"}  # never the caller's thread
    assert bg.resolve("mem-1") == "mem-1" and bg.resolve(None) is None  # real ids pass
    bg.log_metrics("mem-2", {"x": 1.0})  # a real id is used as it is
    bg.close()
    assert runs["mem-2"].metrics["x"] == 1.0 and bg.busy_seconds > 0


def test_a_folder_is_logged_with_the_files_it_held_when_the_call_was_made(tmp_path,
                                                                         monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where snapshots are taken
    folder = tmp_path / "cell"
    folder.mkdir()
    (folder / "topk.parquet").write_bytes(b"lists")
    real = Gated()
    bg = BackgroundTracker(real)
    bg.check()
    (folder / ".done.json.0a1b.tmp").write_bytes(b"a write in progress")
    report = tmp_path / "report.md"
    report.write_text("first")
    run = bg.start_run("m/fold0")
    bg.log_artifact(run, folder)
    bg.log_artifact(run, report, "report")
    (folder / ".done.json.0a1b.tmp").replace(folder / "done.json")  # after the call
    (folder / "topk.parquet").unlink()
    staged = tmp_path / "new.md"
    staged.write_text("second")
    staged.replace(report)  # replaced atomically after it was logged
    real.gate.set()
    bg.close()
    assert real.runs["mem-1"].artifacts == {"topk.parquet": b"lists",
                                            "report/report.md": b"first"}
    assert list(temp.iterdir()) == []  # the snapshots are removed once logged


def test_a_worker_error_is_raised_once_on_the_callers_thread_and_later_calls_dropped():
    class Refusing(MemoryTracker):
        def log_metrics(self, run_id, metrics):
            raise RuntimeError("database is locked\nsecond line")

    real = Refusing()
    bg = BackgroundTracker(real)
    bg.check()
    run = bg.start_run("r")
    bg.log_metrics(run, {"a": 1.0})
    with pytest.raises(TrackingError) as info:
        bg.flush()
    assert str(info.value).startswith("tracker: the tracking store refused a write "
                                      "(RuntimeError: database is locked); the run stopped")
    assert "tracker=none" in str(info.value)
    bg.end_run(run, "FAILED")  # the run's clean-up: dropped, not raised again
    bg.close()
    assert real.runs["mem-1"].status == "RUNNING"  # end_open_runs closes it (bench.cli)


def test_a_full_disk_and_a_tracking_error_come_back_as_they_are():
    full = OSError(errno.ENOSPC, "No space left on device", "/x/mlruns/artifacts/a")

    class Full(MemoryTracker):
        def log_artifact(self, run_id, path, artifact_path=None):
            raise full

    class Unreachable(MemoryTracker):
        def check(self):
            raise TrackingError("tracker: cannot reach the MLflow tracking store at 'x'")

    bg = BackgroundTracker(Full())
    bg.check()
    bg.log_artifact(bg.start_run("r"), __file__)
    with pytest.raises(OSError) as info:
        bg.close()
    assert info.value is full

    class Vanished(MemoryTracker):
        def log_params(self, run_id, params):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/x/y")

    bg = BackgroundTracker(Vanished())
    bg.check()
    bg.log_params(bg.start_run("r"), {"a": 1})
    with pytest.raises(TrackingError, match=r"refused a write \(FileNotFoundError"):
        bg.close()  # not a storage error: a cell must not take it for its own failure

    bg = BackgroundTracker(Unreachable())
    bg.check()
    with pytest.raises(TrackingError, match="cannot reach"):
        bg.resolve(bg.start_run("r"))
    bg.close()


def test_a_server_is_checked_on_the_callers_thread_a_local_store_by_the_worker(tmp_path):
    assert in_background(NullTracker()).__class__ is NullTracker  # only MLflow goes there
    local = in_background(MlflowTracker(tracking_uri=f"sqlite:///{tmp_path}/m.db"))
    default = in_background(MlflowTracker())
    server = in_background(MlflowServerTracker(tracking_uri="http://127.0.0.1:1"))
    remote = in_background(MlflowTracker(tracking_uri="postgresql://u@h/db"))
    assert [t.check_here for t in (local, default, server, remote)] == [False, False, True, True]
    assert settled_run_id(MemoryTracker(), "mem-1") == "mem-1"


def test_a_run_logging_to_mlflow_records_the_stores_ids(ratings_csv, tmp_path, monkeypatch):
    """results.json and every done.json name the runs MLflow made, not placeholders."""
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = make_cfg(ratings_csv, tracker={"_target_": "bench.tracking.mlflow_tracker.MlflowTracker",
                                         "tracking_uri": uri})
    result = run_experiment(cfg, output_dir=tmp_path / "run")
    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    children = {r.info.run_name: r for r in client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")}
    assert sorted(children) == ["rule_popular/fold0", "rule_random/fold0"]
    assert {r.info.status for r in children.values()} == {"FINISHED"}
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["mlflow_parent_run_id"] == result.parent_run_id
    for m in record["models"]:
        run_id = children[f"{m['model']}/fold0"].info.run_id
        done = json.loads((tmp_path / "run" / "artifacts" / m["model"] / "fold0" /
                           "done.json").read_text())
        assert m["run_id"] == done["run_id"] == run_id
        assert client.get_run(run_id).data.metrics["users_evaluated"] == m["n_users"]
    assert result.timings["tracking_busy_s"] > 0 and result.timings["tracking_waited_s"] >= 0
    assert "report.md" in {a.path.split("/")[-1] for a in client.list_artifacts(
        result.parent_run_id, f"report/{result.run_name}")}


def test_a_store_that_fails_mid_run_stops_the_run_not_one_model(ratings_csv, tmp_path):
    class FailsOnSecondRun(MemoryTracker):
        def start_run(self, name, *, parent_id=None, tags=None):
            if len(self.runs) == 2:
                raise RuntimeError("connection reset")
            return super().start_run(name, parent_id=parent_id, tags=tags)

    real = FailsOnSecondRun()
    with pytest.raises(TrackingError, match="connection reset"):
        run_experiment(make_cfg(ratings_csv), output_dir=tmp_path / "run",
                       tracker=BackgroundTracker(real))
    assert not (tmp_path / "run" / "results.json").exists()
    assert [r.name for r in real.runs.values()] == ["t/run", "rule_popular/fold0"]
