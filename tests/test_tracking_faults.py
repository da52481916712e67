"""Tracking faults: an unreachable server is found before any training; tracker=none
runs without MLflow."""

import socket

from bench.cli import main


def closed_port() -> int:
    with socket.socket() as s:  # bind, read the port, close: nothing listens there now
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_tracking_server_fails_fast_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.chdir(tmp_path)
    uri = f"http://127.0.0.1:{closed_port()}"
    code = main(["~experiment", "model=[rule_popular]", f"tracker.tracking_uri={uri}",
                 f"hydra.run.dir={tmp_path / 'run'}"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith(
        f"bench: error: tracker.tracking_uri: cannot reach the MLflow tracking server at '{uri}'")
    assert "tracker=none" in err[0]
    assert not (tmp_path / "run" / "artifacts").exists()  # nothing was trained


def test_tracker_none_runs_without_mlflow(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["~experiment", "model=[rule_popular]", "tracker=none",
                 "report.figures=false", f"hydra.run.dir={tmp_path / 'run'}"]) == 0
    assert "tracking disabled" in capsys.readouterr().out
    assert not (tmp_path / "mlruns").exists()
    assert (tmp_path / "run" / "report.md").is_file()
