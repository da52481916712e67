"""A real (tiny) run watched through the public stage hooks, as ``bench perf`` watches it."""

from bench.cli import main
from bench.observe import attached
from bench.perf.common import StageMeter


class Recorder:
    """An observer that keeps every finished stage: (stage, info, ok)."""

    def __init__(self):
        self.events = []

    def start(self, stage, info):
        pass

    def end(self, stage, info, seconds, ok):
        self.events.append((stage, dict(info), ok))


def test_a_run_announces_its_stages_to_attached_observers(ratings_csv, tmp_path):
    recorder, meter = Recorder(), StageMeter(by="model")
    argv = [
        "dataset=csv", f"dataset.path={ratings_csv}",
        "dataset.columns={user_id: user, item_id: item, rating: stars, timestamp: ts}",
        "dataset.rating_scale=[1,5]", "tracker=none", "report.figures=false",
        "~experiment", "model=[rule_popular]", "split=temporal", "eval.cutoffs=[5]",
        "cold_start.user=null", "cold_start.item=null", f"report.dir={tmp_path}",
    ]
    with attached(recorder, meter):
        assert main(argv) == 0
    seen = len(recorder.events)
    assert main(argv) == 0  # detached afterwards: nothing more is recorded
    assert len(recorder.events) == seen
    stages = [s for s, _, _ in recorder.events]
    for stage in ("load", "split", "audit", "context", "cell", "fit", "recommend",
                  "evaluate", "artifacts", "reduce"):
        assert stages.count(stage) == 1, stages
    assert all(ok for _, _, ok in recorder.events)
    for stage, info, _ in recorder.events:
        if stage in ("cell", "fit", "recommend", "evaluate", "artifacts"):
            assert info == {"model": "rule_popular", "protocol": "main", "fold": 0}, stage
    # the tracker is announced too: built once, then each call
    calls = [info["call"] for s, info, _ in recorder.events if s == "tracking"]
    assert calls[0] == "build" and "start_run" in calls and "end_run" in calls
    # order: the cell's stages end before the cell, the cells before the reduce step
    assert stages.index("fit") < stages.index("recommend") < stages.index("evaluate") \
        < stages.index("artifacts") < stages.index("cell") < stages.index("reduce")
    # and the meter saw the same: calls, per model, fit inside the cell
    for stage in ("fit", "recommend", "evaluate", "reduce"):
        assert meter.stages[stage].calls == 1
    assert set(meter.per["fit"]) == {"rule_popular"}
    assert meter.stages["cell"].seconds >= meter.stages["fit"].seconds
    assert meter.stages["cell"].self_seconds < meter.stages["cell"].seconds
