"""bench perf spectrum: stages -> categories, exclusive accounting (a fake clock, no timing)."""

import pytest

import bench.observe as observe
from bench.observe import Observers
from bench.perf import spectrum


class FakeClock:
    """Stands in for the ``time`` module of :mod:`bench.observe`: wall and CPU clocks."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now

    def process_time(self):
        return self.now

    def tick(self, seconds):
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(observe, "time", fake)
    return fake


def test_nested_stages_count_once_in_the_innermost_category(clock):
    meter = spectrum.meter()
    run = Observers(meter)
    info = {"model": "cf_als", "protocol": "main", "fold": 0}
    with run.stage("load"):
        clock.tick(0.5)
    with run.stage("cell", **info):
        clock.tick(0.25)  # building the model: the cell's own time
        with run.stage("tracking", call="start_run"):
            clock.tick(1.0)
        with run.stage("fit", **info):
            clock.tick(2.0)
        with run.stage("recommend", **info):
            clock.tick(3.0)
        with run.stage("evaluate", **info):
            clock.tick(1.5)
        with run.stage("artifacts", **info):
            clock.tick(0.5)
            with run.stage("tracking", call="log_artifact"):
                clock.tick(0.75)
    with run.stage("reduce"):
        clock.tick(1.0)
        with run.stage("tracking", call="log_artifact"):
            clock.tick(0.25)
    seconds, calls = spectrum.categories(meter)
    assert seconds == {"load": 0.5, "split": 0.0, "fit": 2.0, "score": 3.0, "metrics": 1.5,
                       "logging": 2.0, "report": 1.5}
    # the cell's own 0.25 s is "other": the categories and it add up to the wall clock
    assert sum(seconds.values()) + 0.25 == clock.now
    assert calls["logging"] == 3 and calls["report"] == 2 and calls["fit"] == 1
    # the detail rows: inclusive seconds per stage and per tracker method
    stages = meter.stages
    assert stages["cell"].seconds == 9.0 and stages["cell"].self_seconds == 0.25
    assert stages["artifacts"].seconds == 1.25
    assert stages["tracking.log_artifact"].calls == 2
    assert stages["tracking.log_artifact"].seconds == 1.0
    assert meter.per["fit"] == {"cf_als": 2.0}


def test_fits_are_summed_per_model_config_over_protocols(clock):
    meter = spectrum.meter()
    run = Observers(meter)
    for model, protocol, seconds in [("cf_als", "main", 2.0), ("rule_popular", "main", 0.5),
                                     ("cf_als", "user_cold_start", 1.0)]:
        with run.stage("cell", model=model, protocol=protocol), \
                run.stage("fit", model=model, protocol=protocol):
            clock.tick(seconds)
    assert meter.per["fit"] == {"cf_als": 3.0, "rule_popular": 0.5}
    assert meter.stages["fit"].calls == 3


def test_a_raising_stage_is_still_counted_and_the_stack_unwinds(clock):
    meter = spectrum.meter()
    run = Observers(meter)
    with pytest.raises(ValueError), run.stage("recommend", model="m"):
        clock.tick(1.5)
        raise ValueError("x")
    with run.stage("fit", model="m"):  # top level again: nothing charged to "recommend"
        clock.tick(1.0)
    seconds, _ = spectrum.categories(meter)
    assert seconds["score"] == 1.5 and seconds["fit"] == 1.0
    assert meter.stages["recommend"].seconds == 1.5


def test_every_category_is_reachable_and_unknown_stages_are_other():
    assert set(spectrum.CATEGORY.values()) == set(spectrum.CATEGORIES) - {"other"}
    assert spectrum.category("tracking.build") == "logging"
    assert spectrum.category("cell") == "other" and spectrum.category("new_stage") == "other"


def test_summary_judges_warm_first_and_mlflow_targets_and_reports_the_worker():
    def run(wall, **extra):
        return {"wall_seconds": wall, "peak_rss_mb": 600.0, **extra}

    seconds = dict.fromkeys(("load", "split", "fit", "score", "metrics", "report", "other"), 1.0)
    out = {"plain": [run(19.0), run(21.0), run(19.5)],
           "instrumented": [run(20.0, seconds={**seconds, "logging": 1.5},
                                tracking_busy_seconds=3.0)],
           "first": [run(31.0)]}
    spectrum._summarise(out)
    s = out["summary"]
    assert s["plain"]["median_wall_seconds"] == 19.5 and s["meets_wall_target"] is True
    assert s["first"]["median_wall_seconds"] == 31.0 and s["meets_first_wall_target"] is False
    assert s["logging_share"] == 1.5 / 20.0 and s["meets_logging_target"] is True
    assert (s["tracking_busy_seconds"], s["tracking_busy_share"]) == (3.0, 3.0 / 20.0)
