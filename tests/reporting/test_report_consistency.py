"""What the report prints agrees with itself, and the ladder finds a lift that is there.

- No printed interval contradicts its verdict: every ``diff* [low, high]`` in report.md and
  in ``bench compare``'s table excludes 0 exactly when it carries the significance mark,
  and the first screen's verdict words agree with both. Parsed from the markdown of real
  small runs on synthetic data.
- A planted lift: on synthetic data with planted tastes, a collaborative rung that knows
  each user's planted segment taste (better than popularity by construction) is found
  significantly better than the rule baseline by the default protocol, by more than the
  report's minimum detectable effect; a content rung that is popularity itself (a lift of
  exactly 0 by construction) is not, with the interval [0, 0].
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from omegaconf import open_dict

import bench
from bench.api import model_config
from bench.data.synthetic import TASTE_BOOST, generate_synthetic
from bench.models.base import Recommender
from bench.models.rule.popular import PopularityRecommender
from bench.reporting.compare import compare_runs, format_comparison
from bench.targets import allowing

pytestmark = pytest.mark.slow

SYNTH = {"n_users": 500, "n_items": 150, "n_interactions": 12_000}
TINY = ["~experiment", "dataset=synthetic", *[f"dataset.{k}={v}" for k, v in SYNTH.items()],
        "tracker=none", "eval.cutoffs=[5,10]", "stats.n_resamples=200",
        "report.figures=false", "stats.baseline=rule_popular"]
MODELS = ("model=[rule_popular,rule_random,rule_segment,content_profile,cf_als,cf_ease,"
          "hybrid_blend]")

# ``+0.0123* [+0.0010, +0.0236]``: a difference, the significance mark, its interval
DIFF_CI = re.compile(r"(?P<diff>[+\-−][\d.]+(?:e[+\-]\d+)?|[+\-−]∞)(?P<star>\*?) "
                     r"\[(?P<low>[^,\]]+), (?P<high>[^\]]+)\]")


def _number(text: str) -> float:
    text = text.strip().replace("−", "-")
    if text.endswith("∞"):
        return math.copysign(math.inf, -1.0 if text.startswith("-") else 1.0)
    return float(text)


def printed_intervals(markdown: str) -> list[tuple[str, bool, bool]]:
    """(line, significant, excludes 0) for every ``diff [low, high]`` printed."""
    out = []
    for line in markdown.splitlines():
        for m in DIFF_CI.finditer(line):
            if "—" in (m["low"], m["high"]):  # no test (fewer than 2 users): no verdict
                assert m["star"] == "" and "significantly" not in line, line
                continue
            low, high = _number(m["low"]), _number(m["high"])
            assert low <= _number(m["diff"]) <= high, line
            out.append((line, m["star"] == "*", low > 0 or high < 0))
    return out


def assert_agree(markdown: str) -> list[tuple[str, bool, bool]]:
    found = printed_intervals(markdown)
    bad = [line for line, sig, excl in found if sig != excl]
    assert not bad, "intervals contradicting their verdict:\n" + "\n".join(bad)
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("consistency")
    a = bench.run([*TINY, MODELS], output_dir=root / "a")
    b = bench.run([*TINY, MODELS, "models.cf_als.factors=4", "models.cf_ease.l2=5.0"],
                  output_dir=root / "b")
    return a.folder, b.folder


def test_no_printed_interval_contradicts_its_verdict(runs):
    text = (runs[0] / "report.md").read_text()
    found = assert_agree(text)
    # the test compared something, both ways
    assert len(found) >= 40
    assert any(sig for _, sig, _ in found) and any(not sig for _, sig, _ in found)
    # the first screen's verdict words agree with the marks
    screen = text.split("## Is the next rung worth it?")[1].split("\n## ")[0]
    rows = [r for r in screen.splitlines() if r.startswith("| ") and "` |" in r
            and "(reference)" not in r and DIFF_CI.search(r)]
    assert len(rows) == 3  # content, collaborative and hybrid against the rule baseline
    for row in rows:
        star = DIFF_CI.search(row)["star"] == "*"
        assert ("significantly" in row) == star, row
    steps = [s for s in screen.splitlines() if s.startswith("Adjacent steps:")]
    assert steps and all(
        ("significantly" in part) == (DIFF_CI.search(part)["star"] == "*")
        for part in steps[0].split(";"))
    # what the tables print is what stats.json holds: the Holm level's t interval
    stats = pd.read_json(runs[0] / "stats.json", typ="series")
    ladder = pd.DataFrame(stats["ladder"])
    assert set(ladder["holm_family"]) == {"headline", "segments"}
    assert ((ladder["low"] > 0) | (ladder["high"] < 0)).tolist() == ladder["significant"].tolist()
    tested = ladder["p_t"].notna()
    assert (ladder.loc[tested, "level"] >= 0.95).all()
    assert ladder.loc[~tested, ["level", "low", "high"]].isna().all().all()


def test_compare_prints_no_interval_against_its_verdict(runs):
    frame = compare_runs(*runs)
    text = format_comparison(frame, "a", "b")
    found = assert_agree(text)
    assert len(found) == len(frame) >= 18
    changed = frame[frame["model"].isin(["cf_als", "cf_ease"])]
    assert (changed["diff"] != 0).any()
    same = frame[frame["model"] == "rule_popular"]
    assert (same["diff"] == 0).all() and not same["significant"].any()


# ---------------------------------------------------------------------------- planted lift
class PlantedTaste(Recommender):
    """Scores each item by the planted sampling weight of the user's segment (item
    popularity x TASTE_BOOST when in taste): the synthetic data's own generating story, so
    it beats all-time popularity by construction. Test-local; hyperparameters are the
    planted truth as plain lists."""

    family = "collaborative"

    def __init__(self, segments=None, weights=None):
        self.segments = segments
        self.weights = weights

    def _fit(self, train, item_features, user_features):
        weights = np.asarray(self.weights, dtype=np.float64)
        self.table_ = weights[:, np.asarray(self.item_index_)]
        self.user_segment_ = np.asarray(self.segments)[np.asarray(self.user_index_)]

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        known = (users >= 0) & (users < len(self.user_segment_))
        out = np.full((len(users), self.table_.shape[1]), np.nan, dtype=np.float32)
        out[known] = self.table_[self.user_segment_[users[known]]]
        return out


class PopularityAgain(PopularityRecommender):
    """All-time popularity, filed under the content rung: a lift of exactly 0."""

    family = "content"


def test_planted_lift_is_detected_and_a_null_lift_is_not(tmp_path):
    from bench.api import compose

    data = generate_synthetic(**SYNTH, seed=42)
    segments = data.user_features["segment"].sort_index().to_numpy()
    weights = data.item_popularity[None, :] * np.where(data.in_taste, TASTE_BOOST, 1.0)
    cfg = compose([*TINY, "model=[rule_popular]"])
    planted = PlantedTaste(segments=segments.tolist(), weights=weights.tolist())
    with open_dict(cfg):
        cfg.models["cf_planted"] = model_config(planted)
        cfg.models["content_popular"] = model_config(PopularityAgain())
    with allowing(PlantedTaste, PopularityAgain):
        result = bench.run(config=cfg, output_dir=tmp_path / "planted")
    text = (result.folder / "report.md").read_text()
    assert_agree(text)
    stats = pd.read_json(result.folder / "stats.json", typ="series")
    head = pd.DataFrame(stats["ladder"]).query("holm_family == 'headline' and vs_first")
    head = head.set_index("to")
    lift = head.loc["cf_planted"]
    assert lift["from"] == "rule_popular" and lift["n"] >= 50
    assert lift["significant"] and lift["low"] > 0
    assert lift["diff"] > lift["mde"]  # detected because it is large enough, not by luck
    null = head.loc["content_popular"]
    assert (null["diff"], null["low"], null["high"]) == (0.0, 0.0, 0.0)
    assert not null["significant"] and null["p_t"] == 1.0
    screen = text.split("## Is the next rung worth it?")[1].split("\n## ")[0]
    assert re.search(r"\| collaborative \| `cf_planted` \|.*\| significantly better \| "
                     + re.escape(f"{lift['mde']:.4f}"), screen)
    # 210 users: a 10% lift over popularity is below the MDE, and the screen says so,
    # leaving out the vacuous MDE of 0 of the identical rung
    warning = next(line for line in screen.splitlines() if "Warning: too few users" in line)
    assert f"is {lift['mde']:.4f} (" in warning and "every comparison here" not in warning
    assert re.search(r"\| content \| `content_popular` \|.*\+0\.0000 \[\+0\.0000, \+0\.0000\].*"
                     r"\| no significant difference \|", screen)
