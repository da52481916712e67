"""bench perf spectrum: the stage meter's exclusive accounting (a fake clock, no timing)."""

import pytest

from bench.perf import spectrum


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(spectrum, "time", fake)
    return fake


def test_nested_calls_count_once_in_the_innermost_category(clock):
    meter = spectrum.StageMeter()

    def log():  # 1 s of logging
        clock.now += 1.0

    timed_log = meter.wrap("logging", log, detail="tracker.log")

    def fit():  # 2 s of its own, 1 s of logging inside, then a nested fit of 3 s
        clock.now += 2.0
        timed_log()
        inner_fit()

    inner_fit = meter.wrap("fit", lambda: setattr(clock, "now", clock.now + 3.0))
    meter.wrap("fit", fit)()
    assert clock.now == 6.0
    assert meter.seconds["fit"] == 5.0 and meter.seconds["logging"] == 1.0
    assert sum(meter.seconds.values()) == clock.now  # categories add up to the wall clock
    assert meter.calls["fit"] == 2 and meter.calls["logging"] == 1
    assert meter.detail["tracker.log"] == 1.0 and meter.detail_calls["tracker.log"] == 1


def test_a_raising_call_is_still_counted_and_the_stack_unwinds(clock):
    meter = spectrum.StageMeter()

    def boom():
        clock.now += 1.5
        raise ValueError("x")

    with pytest.raises(ValueError):
        meter.wrap("score", boom)()
    assert meter.seconds["score"] == 1.5 and meter._stack == []


def test_tracker_proxy_times_methods_and_passes_attributes(clock):
    meter = spectrum.StageMeter()

    class Tracker:
        kind = "memory"

        def log_metrics(self, run, metrics):
            clock.now += 0.25
            return len(metrics)

    proxy = spectrum._TimedTracker(Tracker(), meter)
    assert proxy.kind == "memory"
    assert proxy.log_metrics("r", {"a": 1.0, "b": 2.0}) == 2
    assert meter.seconds["logging"] == 0.25
    assert meter.detail_calls["tracker.log_metrics"] == 1
