"""Figures drawn in a worker process: same bytes, same errors, no hang, no orphan."""

from __future__ import annotations

import logging
import signal
import sys
import time

import pandas as pd
import pytest

from bench.reporting.render import FigureJob, FigureRenderer, draw


@pytest.fixture
def headline() -> pd.DataFrame:
    return pd.DataFrame({
        "model": ["cf_als", "rule_popular", "content_knn"],
        "family": ["collaborative", "rule", "content"],
        "mean": [0.30, 0.10, 0.20], "low": [0.28, 0.08, 0.18], "high": [0.32, 0.12, 0.22],
    })


@pytest.fixture
def at_k() -> pd.DataFrame:
    return pd.DataFrame([
        {"model": m, "family": f, "metric": "ndcg", "k": k, "value": k / 100}
        for m, f in [("rule_popular", "rule"), ("cf_als", "collaborative")]
        for k in (1, 5, 10)])


def jobs(folder, headline, at_k) -> list[FigureJob]:
    return [
        FigureJob("metric_at_k", "metric_at_k_figure", at_k, folder / "metric_at_k.png"),
        FigureJob("headline", "headline_figure", headline, folder / "headline.png",
                  {"metric": "ndcg@10", "baseline": "rule_popular"}),
    ]


def fake_worker(script: str) -> list[str]:
    """A worker command speaking the protocol, then misbehaving as ``script`` says."""
    return [sys.executable, "-c",
            "import sys, time\nfrom bench.reporting import render as r\n"
            "out, inp = sys.stdout.buffer, sys.stdin.buffer\n" + script]


# one request for work, one job read: the caller now waits for that job's outcome
TAKE_ONE = "r._write(out, r._WANT_MSG); r._read_raw(inp)\n"


def test_worker_draws_the_same_bytes_as_this_process(tmp_path, headline, at_k):
    here = {j.name: draw(j).read_bytes() for j in jobs(tmp_path / "here", headline, at_k)}
    with FigureRenderer(worker=True) as renderer:
        assert renderer.worker is not None
        assert renderer.wait_for_worker(60)  # it takes the first job at once
        for job in jobs(tmp_path / "there", headline, at_k):
            renderer.submit(job)
        written = renderer.finish()
    assert list(written) == ["metric_at_k", "headline"]  # submission order
    assert "metric_at_k" in renderer.from_worker  # taken as soon as it was submitted
    assert {n: p.read_bytes() for n, p in written.items()} == here
    assert sorted(p.name for p in (tmp_path / "there").iterdir()) == [
        "headline.png", "metric_at_k.png"]  # no temporary file left


def test_without_a_worker_everything_is_drawn_here(tmp_path, headline, at_k):
    renderer = FigureRenderer(worker=False)
    assert renderer.worker is None
    for job in jobs(tmp_path, headline, at_k):
        renderer.submit(job)
    assert set(renderer.finish()) == {"metric_at_k", "headline"}


def test_rejected_frame_in_the_worker_is_a_warning_and_no_figure(tmp_path, headline, at_k,
                                                                 caplog):
    bad = FigureJob("headline", "headline_figure", headline.drop(columns="low"),
                    tmp_path / "headline.png", {"metric": "m"})
    with caplog.at_level(logging.WARNING, logger="bench"):
        with FigureRenderer(worker=True) as renderer:
            assert renderer.wait_for_worker(60)
            renderer.submit(bad)
            renderer.submit(jobs(tmp_path, headline, at_k)[0])
            written = renderer.finish()
    assert list(written) == ["metric_at_k"]
    assert not (tmp_path / "headline.png").exists()
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("figure headline skipped: headline_figure: frame is missing "
                            "column(s) ['low']") for m in messages), messages


def test_other_error_in_the_worker_raises_here_as_without_a_worker(tmp_path, headline):
    broken = FigureJob("headline", "headline_figure", headline, tmp_path / "h.png",
                       {"metric": "m", "no_such_option": 1})
    with pytest.raises(TypeError, match="no_such_option"):
        draw(broken)
    with FigureRenderer(worker=True) as renderer:
        proc = renderer.worker
        assert renderer.wait_for_worker(60)
        renderer.submit(broken)
        with pytest.raises(TypeError, match="no_such_option"):
            renderer.finish()
    assert proc.returncode is not None  # reaped


def test_dead_worker_is_a_warning_and_its_figures_are_drawn_here(tmp_path, headline, at_k,
                                                                 caplog):
    command = fake_worker(TAKE_ONE + "sys.exit(3)\n")
    with caplog.at_level(logging.WARNING, logger="bench"):
        renderer = FigureRenderer(worker=True, command=command)
        assert renderer.wait_for_worker(60)  # it takes the first job, then dies
        for job in jobs(tmp_path, headline, at_k):
            renderer.submit(job)
        written = renderer.finish()
    assert list(written) == ["metric_at_k", "headline"]
    assert all(p.stat().st_size > 1000 for p in written.values())
    assert any("figure worker stopped (exit code 3)" in r.getMessage() for r in caplog.records)


def test_silent_worker_times_out_is_killed_and_its_figures_are_drawn_here(
        tmp_path, headline, at_k, caplog):
    command = fake_worker(TAKE_ONE + "time.sleep(120)\n")
    with caplog.at_level(logging.WARNING, logger="bench"):
        renderer = FigureRenderer(worker=True, timeout=1.0, command=command)
        proc = renderer.worker
        assert renderer.wait_for_worker(60)
        for job in jobs(tmp_path, headline, at_k):
            renderer.submit(job)
        start = time.monotonic()
        written = renderer.finish()
    assert time.monotonic() - start < 30
    assert list(written) == ["metric_at_k", "headline"]
    assert proc.returncode == -signal.SIGKILL
    assert any("figure worker sent nothing for 1 s" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_caller_interrupted_kills_and_reaps_the_worker(error):
    with pytest.raises(error):
        with FigureRenderer(worker=True) as renderer:
            proc = renderer.worker
            raise error()
    assert proc.returncode is not None
    assert renderer.worker is None


def test_interrupted_worker_exits_and_its_figures_are_drawn_here(tmp_path, headline, at_k,
                                                                 caplog):
    """Ctrl-C reaches the whole process group: the worker stops quietly, the caller (if it
    carries on) draws the figures itself."""
    with caplog.at_level(logging.WARNING, logger="bench"):
        renderer = FigureRenderer(worker=True)
        proc = renderer.worker
        assert renderer.wait_for_worker(60)
        renderer.submit(jobs(tmp_path, headline, at_k)[0])
        proc.send_signal(signal.SIGINT)
        time.sleep(1)
        renderer.submit(jobs(tmp_path, headline, at_k)[1])
        written = renderer.finish()
    assert list(written) == ["metric_at_k", "headline"]
    assert proc.returncode is not None


def test_job_the_wire_cannot_carry_is_drawn_here(tmp_path, headline, at_k):
    """Options that are not JSON (or a column Arrow rejects) keep the job in this process;
    object columns cross the wire as object columns."""
    from bench.reporting import render

    odd = FigureJob("headline", "headline_figure", headline, tmp_path / "headline.png",
                    {"metric": "m", "baseline": None, "ci": object()})
    with pytest.raises(TypeError):
        render._job_message(odd)
    mixed = at_k.assign(family=at_k["family"].astype(object))
    job = FigureJob("metric_at_k", "metric_at_k_figure", mixed, tmp_path / "k.png")
    header, payload = render._unpack(render._job_message(job))
    back = render._job_from(header, payload)
    pd.testing.assert_frame_equal(back.frame, mixed)
    assert (back.name, back.builder, back.path, back.kwargs) == (
        "metric_at_k", "metric_at_k_figure", tmp_path / "k.png", {})
    with FigureRenderer(worker=True) as renderer:
        assert renderer.wait_for_worker(60)
        renderer.submit(odd)
        written = renderer.finish()
    assert written == {"headline": tmp_path / "headline.png"}
    assert renderer.from_worker == []  # drawn here, the worker never saw it


@pytest.mark.parametrize(("cores", "others", "expected"), [
    (1, 0.0, False),  # one core: nothing to overlap with
    (2, 0.0, True),  # only the run's own thread is running
    (2, 1.0, False),  # the other core is busy too
    (8, 6.0, True),
    (8, 7.0, False),
])
def test_worker_only_when_a_core_is_free(monkeypatch, cores, others, expected):
    from bench import machine

    monkeypatch.setattr(machine, "usable_cores", lambda: cores)
    monkeypatch.setattr(machine, "busy_elsewhere", lambda: others)
    assert machine.spare_core() is expected
    renderer = FigureRenderer()
    try:
        assert (renderer.worker is not None) is expected
    finally:
        renderer.close()
