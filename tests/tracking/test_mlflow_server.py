"""``tracker=mlflow_server`` (issue 16, point 3): a default run logged to an MLflow tracking
server backed by PostgreSQL with served artifacts, read back through the REST API run by
run, metric by metric and artifact by artifact; eight concurrent writers lose nothing; a
missing or unreachable server, or one that does not serve artifacts, stops the run before
any training with one line.

The server (``conftest.py``) is started by the tests; ``.ci/run`` installs PostgreSQL and
psycopg2 and sets ``BENCH_REQUIRE_SERVER_TESTS=1`` so these tests cannot skip in CI.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.cli import main
from bench.metrics.keys import MetricKey
from bench.tracking import mlflow_tracker
from tests.helpers import compose_config, csv_dataset, shared_data_dir, write_ratings_csv
from tests.tracking.conftest import skip_or_fail
from tests.tracking.server import free_port, kv

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["model=[rule_popular]", "eval.cutoffs=[5]", "report.figures=false",
         "cold_start.user=null", "cold_start.item=null", "split=temporal"]


def same(a: float, b: float) -> bool:
    """Equal to the bit, NaN equal to NaN."""
    return (math.isnan(a) and math.isnan(b)) or a == b


# ------------------------------------------------------------------ recording what is sent
class Recorder:
    """Every call the runner makes on the MLflow tracker, as it made it: runs, tags,
    params, metric values in order, artifact files (bytes read when they were logged)
    and the final status."""

    def __init__(self) -> None:
        self.runs: dict[str, dict] = {}

    def install(self, monkeypatch) -> None:
        cls = mlflow_tracker.MlflowTracker
        start, params, metrics = cls.start_run, cls.log_params, cls.log_metrics
        artifact, end = cls.log_artifact, cls.end_run
        rec = self

        def start_run(self, name, *, parent_id=None, tags=None):
            run_id = start(self, name, parent_id=parent_id, tags=tags)
            rec.runs[run_id] = {"name": name, "parent": parent_id,
                                "tags": {k: str(v) for k, v in (tags or {}).items()},
                                "params": {}, "metrics": {}, "artifacts": {}, "status": None}
            return run_id

        def log_params(self, run_id, values):
            params(self, run_id, values)
            rec.runs[run_id]["params"].update({str(k): str(v)[:6000] for k, v in values.items()})

        def log_metrics(self, run_id, values):
            metrics(self, run_id, values)
            for k, v in values.items():
                rec.runs[run_id]["metrics"].setdefault(str(k), []).append(float(v))

        def log_artifact(self, run_id, path, artifact_path=None):
            artifact(self, run_id, path, artifact_path)
            path = Path(path)
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*")
                                                         if p.is_file())
            for f in files:
                rel = f.name if f == path else f.relative_to(path).as_posix()
                key = f"{artifact_path}/{rel}" if artifact_path else rel
                rec.runs[run_id]["artifacts"][key] = f.read_bytes()

        def end_run(self, run_id, status="FINISHED"):
            end(self, run_id, status)
            rec.runs[run_id]["status"] = status

        for name, fn in [("start_run", start_run), ("log_params", log_params),
                         ("log_metrics", log_metrics), ("log_artifact", log_artifact),
                         ("end_run", end_run)]:
            monkeypatch.setattr(cls, name, fn)


# ------------------------------------------------------------------ the Done-when test
@pytest.mark.integration
def test_a_default_run_is_on_the_server_run_by_run_metric_by_metric(
        mlflow_pg_server, tmp_path, monkeypatch):
    data = shared_data_dir()
    if data is None or not (data / "ml-latest-small").is_dir():
        skip_or_fail("the default run reads ml-latest-small from BENCH_DATA_DIR, not set here")
    server, rest = mlflow_pg_server, mlflow_pg_server.rest
    experiment = f"default-run-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    monkeypatch.chdir(tmp_path)
    rec = Recorder()
    rec.install(monkeypatch)

    t0 = time.perf_counter()
    code = main(["tracker=mlflow_server", f"tracker.experiment={experiment}",
                 f"hydra.run.dir={tmp_path / 'run'}"])
    run_s = time.perf_counter() - t0
    assert code == 0
    assert not (tmp_path / "mlruns").exists()  # nothing went to a local store
    results = tmp_path / "run" / "results.json"
    record = json.loads(results.read_text())
    assert record["name"] == "spectrum" and record["failures"] == []  # the default run

    # every run: the server's runs of the experiment are exactly the ones started
    t1 = time.perf_counter()
    runs = rest.runs(experiment)
    assert set(runs) == set(rec.runs)
    (parent,) = [r for r, v in rec.runs.items() if v["parent"] is None]
    assert parent == record["mlflow_parent_run_id"]
    children = {r for r, v in rec.runs.items() if v["parent"] == parent}
    assert children == set(rec.runs) - {parent}
    main_children = {m["run_id"] for m in record["models"]}
    n_models = len(compose_config().models)  # the default experiment's models
    assert len(main_children) == n_models * len(record["splits"])  # one per (model, fold)
    protocol = {r for r in children if "protocol" in rec.runs[r]["tags"]}
    assert children == main_children | protocol
    assert len(protocol) == n_models  # the user cold-start sweep: one child per model

    def run_metrics(run_id: str) -> dict[str, list[float]]:
        return {k: rest.metric_history(run_id, k) for k in rec.runs[run_id]["metrics"]}

    with ThreadPoolExecutor(8) as pool:  # one get-history request per (run, metric)
        history = dict(zip(rec.runs, pool.map(run_metrics, rec.runs), strict=True))

    n_metrics = n_values = 0
    for run_id, sent in rec.runs.items():
        got = runs[run_id]
        info, data_ = got["info"], got["data"]
        assert info["run_name"] == sent["name"]
        assert info["status"] == sent["status"] == "FINISHED"
        assert info["artifact_uri"].startswith("mlflow-artifacts:")  # served, not a path
        tags = kv(data_.get("tags"))
        assert sent["tags"].items() <= tags.items()
        assert tags.get("mlflow.parentRunId") == sent["parent"]
        assert kv(data_.get("params")) == sent["params"]
        latest = {m["key"]: float(m["value"]) for m in data_.get("metrics", [])}
        assert set(latest) == set(sent["metrics"])
        for key, values in sent["metrics"].items():
            assert len(history[run_id][key]) == len(values), (run_id, key)
            assert all(map(same, history[run_id][key], values)), (run_id, key)
            assert same(latest[key], values[-1])
            n_metrics += 1
            n_values += len(values)

    # ... and the run's record agrees with the server, value for value
    for m in record["models"]:
        sent = {k: v[-1] for k, v in history[m["run_id"]].items()}
        for key, value in m["metrics"].items():
            assert same(sent[MetricKey.parse(key).mlflow], float(value)), (m["model"], key)
        assert sent["users_evaluated"] == m["n_users"]
        assert sent["fit_seconds"] == m["fit_seconds"]
        assert kv(runs[m["run_id"]]["data"]["params"])["_target_"] == m["target"]

    # every artifact: listed recursively, sizes and bytes as logged
    n_files = n_bytes = 0
    for run_id, sent in rec.runs.items():
        listed = rest.artifacts(run_id)
        assert listed == {k: len(v) for k, v in sent["artifacts"].items()}, run_id
        for path, content in sent["artifacts"].items():
            got = rest.artifact_bytes(run_id, path)
            assert hashlib.sha256(got).digest() == hashlib.sha256(content).digest(), path
            n_files += 1
            n_bytes += len(content)
    # the children's artifacts are their cell folders (done.json is written after upload)
    folder = results.parent
    for m in record["models"]:
        cell = folder / "artifacts" / m["model"] / f"fold{m['fold']}"
        on_disk = {p.relative_to(cell).as_posix(): p.read_bytes() for p in cell.rglob("*")
                   if p.is_file() and p.name != "done.json"}
        assert rec.runs[m["run_id"]]["artifacts"] == on_disk
    parent_files = set(rec.runs[parent]["artifacts"])
    assert f"config/{folder.name}/config.json" in parent_files
    assert {f"report/{folder.name}/{n}" for n in ("results.json", "report.md")} <= parent_files
    assert any("/figures/" in p for p in parent_files)
    check_s = time.perf_counter() - t1
    print(f"\nmlflow_server default run: {run_s:.1f}s; checked {len(rec.runs)} runs, "
          f"{n_metrics} metrics ({n_values} values), {n_files} artifacts "
          f"({n_bytes / 1e6:.1f} MB) through the REST API in {check_s:.1f}s")


# ------------------------------------------------------------------ concurrent writers
N_WRITERS = 8
CELLS_PER_WRITER = 4


@pytest.mark.slow
def test_concurrent_writers_lose_nothing(mlflow_pg_server, tmp_path):
    from bench.tracking.mlflow_tracker import MlflowServerTracker
    from tests.tracking.writer import write_cell_folder

    server, rest = mlflow_pg_server, mlflow_pg_server.rest
    experiment = f"writers-{uuid.uuid4().hex[:8]}"
    owner = MlflowServerTracker(tracking_uri=server.uri, experiment=experiment)
    owner.check()
    parent = owner.start_run("sweep")
    go = tmp_path / "go"
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.uri, "BENCH_TEST_EXPERIMENT": experiment,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "tests.tracking.writer", str(tmp_path), str(i),
         str(CELLS_PER_WRITER), parent, str(go)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) for i in range(N_WRITERS)]
    try:
        deadline = time.monotonic() + 300
        while len(list(tmp_path.glob("ready-*"))) < N_WRITERS:  # all connected: start at once
            assert time.monotonic() < deadline, "writers did not get ready"
            for p in procs:
                assert p.poll() is None, p.communicate()
            time.sleep(0.05)
        go.touch()
        for p in procs:
            _out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    owner.end_run(parent, "FINISHED")

    logs = [json.loads((tmp_path / f"writer-{i}" / "log.json").read_text())
            for i in range(N_WRITERS)]
    assert len({log["pid"] for log in logs}) == N_WRITERS
    # they really wrote at the same time: every writer started before any finished
    assert max(log["start"] for log in logs) < min(log["end"] for log in logs)

    runs = rest.runs(experiment)
    cells = [c for log in logs for c in log["cells"]]
    assert len(cells) == N_WRITERS * CELLS_PER_WRITER
    assert set(runs) == {parent} | {c["run_id"] for c in cells}
    assert runs[parent]["info"]["status"] == "FINISHED"
    n_values = n_files = 0
    for i, log in enumerate(logs):
        for j, cell in enumerate(log["cells"]):
            got = runs[cell["run_id"]]
            assert got["info"]["status"] == "FINISHED"
            assert got["info"]["run_name"] == cell["name"] == f"writer{i}/cell{j}"
            tags = kv(got["data"].get("tags"))
            assert tags["mlflow.parentRunId"] == parent
            assert (tags["writer"], tags["cell"]) == (str(i), str(j))
            assert kv(got["data"].get("params")) == cell["params"]
            metrics = {m["key"]: float(m["value"]) for m in got["data"]["metrics"]}
            assert metrics == cell["metrics"]  # every key, every bit
            n_values += len(metrics)
            # the artifact folder, rebuilt independently of what the writer logged
            expected = tmp_path / "expected" / f"{i}-{j}"
            write_cell_folder(expected, i, j)
            files = {p.relative_to(expected).as_posix(): p.read_bytes()
                     for p in expected.rglob("*") if p.is_file()}
            assert rest.artifacts(cell["run_id"]) == {k: len(v) for k, v in files.items()}
            for path, content in files.items():
                assert rest.artifact_bytes(cell["run_id"], path) == content
                n_files += 1
    assert n_values == N_WRITERS * CELLS_PER_WRITER * 90
    assert n_files == N_WRITERS * CELLS_PER_WRITER * 3
    print(f"\n{N_WRITERS} concurrent writers: {len(cells)} child runs, {n_values} metric "
          f"values, {n_files} artifacts, all on the server; logging took "
          f"{max(g['end'] for g in logs) - min(g['start'] for g in logs):.1f}s")


# ------------------------------------------------------------------ what stops a run early
def quick_argv(tmp_path: Path, *extra: str) -> list[str]:
    csv = write_ratings_csv(tmp_path / "ratings.csv")
    return [*csv_dataset(csv), *QUICK, "tracker=mlflow_server",
            f"report.dir={tmp_path / 'reports'}", f"hydra.run.dir={tmp_path / 'hydra'}",
            *extra]


def one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    return err[0]


def test_no_server_uri_is_one_line_naming_the_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(quick_argv(tmp_path)) == 2
    line = one_error_line(capsys)
    assert line.startswith("bench: error: tracker.tracking_uri: tracker=mlflow_server expects "
                           "the tracking server's http(s) URL, got 'nothing'")
    assert "MLFLOW_TRACKING_URI" in line and "tracker=mlflow" in line
    assert not list(tmp_path.glob("reports/*/*/artifacts"))  # nothing was trained
    assert not (tmp_path / "mlruns").exists()  # and no local store appeared instead


def test_unreachable_server_is_one_line_naming_the_uri(tmp_path, capsys, monkeypatch):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.chdir(tmp_path)
    assert main(quick_argv(tmp_path)) == 2
    line = one_error_line(capsys)
    assert line.startswith("bench: error: tracker.tracking_uri: cannot reach the MLflow "
                           f"tracking server at '{uri}'")
    assert "mlflow server" in line and "tracker=none" in line
    assert not list(tmp_path.glob("reports/*/*/artifacts"))


@pytest.mark.slow
def test_an_experiment_with_artifacts_on_the_servers_disk_is_refused(
        mlflow_pg_server, tmp_path, capsys, monkeypatch):
    experiment = f"local-artifacts-{uuid.uuid4().hex[:8]}"
    location = (tmp_path / "server-disk").as_uri()
    mlflow_pg_server.rest.post("/api/2.0/mlflow/experiments/create",
                               {"name": experiment, "artifact_location": location})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_pg_server.uri)
    monkeypatch.chdir(tmp_path)
    assert main(quick_argv(tmp_path, f"tracker.experiment={experiment}")) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"bench: error: tracker.tracking_uri: MLflow experiment "
                           f"'{experiment}' on '{mlflow_pg_server.uri}' keeps its artifacts "
                           f"at '{location}'")
    assert "--serve-artifacts" in line
    assert not list(tmp_path.glob("reports/*/*/artifacts"))
    assert mlflow_pg_server.rest.runs(experiment) == {}  # no run was opened


def test_ci_turns_a_missing_server_into_a_failure_not_a_skip(monkeypatch):
    monkeypatch.delenv("BENCH_REQUIRE_SERVER_TESTS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL"):
        skip_or_fail("no PostgreSQL")
    monkeypatch.setenv("BENCH_REQUIRE_SERVER_TESTS", "1")
    with pytest.raises(pytest.fail.Exception, match=r"no PostgreSQL .*must run here"):
        skip_or_fail("no PostgreSQL")
