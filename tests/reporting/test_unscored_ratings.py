"""How rating errors treat pairs a model cannot score is labelled wherever RMSE/MAE appear:
the evaluation card, report.md, summary.md and the command line's heading."""

import json

import pytest

from bench.reporting.card import UNSCORED_RATING_RULES, card_differences
from bench.reporting.summary import rating_frame, rating_heading
from bench.runner import run_experiment
from bench.tracking import MemoryTracker
from tests.helpers import make_cfg

SURPRISE = "unknown pairs scored with Surprise's default, as in its benchmark"

#: Two small runs (about 10 s) of BaselineOnly on a temporal split with a new test item.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from tests.helpers import write_ratings_csv

    folder = tmp_path_factory.mktemp("unscored")
    csv = write_ratings_csv(folder / "ratings.csv")
    with csv.open("a") as f:  # an item first rated after the cut: unknown to training
        f.writelines(f"{u},99,4.0,{2_000_000 + u}\n" for u in range(0, 60, 6))
    out = {}
    for setting in ("exclude", "surprise_default"):
        cfg = make_cfg(csv, models={"baseline": {
            "_target_": "bench.models.collaborative.surprise.SurpriseRecommender",
            "algorithm": "BaselineOnly"}})
        cfg.eval.unscored_ratings = setting
        run_dir = folder / setting
        out[setting] = (run_experiment(cfg, output_dir=run_dir, tracker=MemoryTracker()),
                        run_dir)
    return out


def test_metrics_count_left_out_or_defaulted_pairs(runs):
    excl = runs["exclude"][0].models[0].metrics
    dflt = runs["surprise_default"][0].models[0].metrics
    n = excl["rating_pairs_unpredicted"]
    assert n > 0 and "rating_pairs_defaulted" not in excl
    assert dflt["rating_pairs_defaulted"] == n and dflt["rating_pairs_unpredicted"] == 0
    assert dflt["rmse"] != excl["rmse"]
    frame = rating_frame(runs["surprise_default"][0])
    assert frame.loc[0, "defaulted"] == n and frame.loc[0, "unpredicted"] == 0
    assert "defaulted" not in rating_frame(runs["exclude"][0])


def test_card_labels_the_rule_and_only_surprise_default_joins_comparable(runs):
    cards = {k: json.loads((d / "card.json").read_text()) for k, (_, d) in runs.items()}
    assert cards["surprise_default"]["rating_errors"] == {
        "unscored_ratings": "surprise_default", "rule": SURPRISE}
    assert cards["exclude"]["rating_errors"]["rule"] == UNSCORED_RATING_RULES["exclude"]
    # absent = exclude, so cards written before the key existed stay comparable
    assert "unscored_ratings" not in cards["exclude"]["comparable"]
    assert cards["surprise_default"]["comparable"]["unscored_ratings"] == "surprise_default"
    diffs = card_differences(cards["surprise_default"]["comparable"],
                             cards["exclude"]["comparable"])
    assert diffs == ["unscored_ratings: run has 'surprise_default', baseline has '<absent>'"]


def test_report_summary_and_heading_say_it(runs):
    result, folder = runs["surprise_default"]
    report = (folder / "report.md").read_text()
    assert "## Rating prediction" in report
    assert f"mean over folds; {SURPRISE})." in report
    assert f"- Rating errors: {SURPRISE}." in report
    assert SURPRISE in (folder / "summary.md").read_text()
    assert rating_heading(result) == f"rating prediction (RMSE/MAE, mean over folds; {SURPRISE})"
    excl, excl_folder = runs["exclude"]
    assert UNSCORED_RATING_RULES["exclude"] in rating_heading(excl)
    assert SURPRISE not in (excl_folder / "report.md").read_text()
    # a record read back from disk (an older run has no key: it excluded)
    from bench.record import read_record

    record = read_record(folder)
    assert rating_heading(record).endswith(f"{SURPRISE})")
    record.eval.pop("unscored_ratings")
    assert rating_heading(record).endswith(f"{UNSCORED_RATING_RULES['exclude']})")
