"""The recording tracker: calls recorded where a cell runs, replayed where the run is,
onto any tracker, with the run ids the real tracker hands out."""

from __future__ import annotations

from bench.tracking import Tracker
from bench.tracking.memory import MemoryTracker
from bench.tracking.recording import RecordingTracker, replay


def test_replay_makes_the_same_runs_with_real_ids(tmp_path):
    real = MemoryTracker()
    parent = real.start_run("exp/run")
    rec = RecordingTracker()
    assert isinstance(rec, Tracker)
    child = rec.start_run("m/fold0", parent_id=parent, tags={"model": "m"})
    rec.log_params(child, {"k": 3})
    rec.log_metrics(child, {"ndcg@10": 0.25})
    other = rec.start_run("m/user_cold_start", parent_id=parent)
    rec.end_run(child, "FINISHED")
    rec.end_run(other, "FAILED")
    assert real.runs.keys() == {parent}  # recording logs nothing itself

    ids = replay(rec.calls, real)
    assert ids == {child: "mem-2", other: "mem-3"}
    runs = real.runs
    assert (runs["mem-2"].name, runs["mem-2"].parent_id, runs["mem-2"].tags) == (
        "m/fold0", parent, {"model": "m"})
    assert (runs["mem-2"].params, runs["mem-2"].metrics, runs["mem-2"].status) == (
        {"k": "3"}, {"ndcg@10": 0.25}, "FINISHED")
    assert (runs["mem-3"].name, runs["mem-3"].status) == ("m/user_cold_start", "FAILED")


def test_a_folder_is_replayed_with_the_files_it_held_when_logged(tmp_path):
    folder = tmp_path / "artifacts" / "m" / "fold0"
    (folder / "sub").mkdir(parents=True)
    (folder / "topk.parquet").write_bytes(b"lists")
    (folder / "sub" / "x.json").write_text("{}")
    (folder / ".per_user.parquet.0a1b2c.tmp").write_bytes(b"a killed attempt's leftover")
    rec = RecordingTracker()
    run = rec.start_run("m/fold0")
    rec.log_artifact(run, folder)
    rec.log_artifact(run, folder / "topk.parquet", "lists")
    (folder / "done.json").write_text("{}")  # written after the folder was logged

    real = MemoryTracker()
    replay(rec.calls, real)
    assert real.runs["mem-1"].artifacts == {"topk.parquet": b"lists", "sub/x.json": b"{}",
                                            "lists/topk.parquet": b"lists"}
    assert (folder / "done.json").is_file()  # the folder itself is left as it is


def test_an_unchanged_folder_is_logged_as_it_is(tmp_path):
    folder = tmp_path / "cell"
    folder.mkdir()
    (folder / "metrics.json").write_text("{}")
    seen = []

    class Spy(MemoryTracker):
        def log_artifact(self, run_id, path, artifact_path=None):
            seen.append(path)
            super().log_artifact(run_id, path, artifact_path)

    rec = RecordingTracker()
    rec.log_artifact(rec.start_run("m/fold0"), folder, "a")
    spy = Spy()
    replay(rec.calls, spy)
    assert seen == [folder]  # no staging copy
    assert spy.runs["mem-1"].artifacts == {"a/metrics.json": b"{}"}
