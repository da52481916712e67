"""``bench check``: the CI model-quality gate against a baseline, on small synthetic data.

The pinned experiment (experiment=ci) runs here on a 300-user synthetic dataset with
planted tastes, so every check takes seconds; the committed movielens_small baseline is
exercised by `.ci/run`.
"""

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.check import baseline as baseline_mod
from bench.check.baseline import read_baseline
from bench.check.command import run_check
from bench.cli import main
from bench.config import check_settings
from bench.errors import ConfigError, DataError, IncomparableError
from tests.helpers import CONFIG_DIR, ROOT

SMALL = ["dataset=synthetic", "dataset.n_users=300", "dataset.n_items=120",
         "dataset.n_interactions=9000", "tracker=none"]


def check(tmp_path, *extra, update=False, baseline="base.json", **kw):
    out = io.StringIO()
    code = run_check([*SMALL, f"report.dir={tmp_path / 'reports'}", *extra],
                     config_dir=CONFIG_DIR, baseline=str(tmp_path / baseline), update=update,
                     out=out, **kw)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def base(tmp_path_factory):  # a gate run; every test that takes it is marked slow
    """A baseline written by --update-baseline, and the run it came from."""
    tmp = tmp_path_factory.mktemp("gate")
    code, text = check(tmp, update=True)
    assert code == 0 and "baseline written" in text
    return tmp


def latest_run(tmp: Path) -> Path:
    return sorted((tmp / "reports" / "ci").iterdir())[-1]


@pytest.mark.slow
def test_same_config_twice_gives_identical_values_and_passes(base):
    saved = read_baseline(base / "base.json")
    code, text = check(base)
    assert code == 0
    assert "**PASS**" in text
    run = latest_run(base)
    per_user = pd.read_parquet(run / "per_user.parquet")
    merged = per_user.merge(saved.per_user, on=["model", "fold", "user_id"],
                            suffixes=("", ".base"))
    assert len(merged) == len(saved.per_user) == len(per_user)
    for metric in saved.metrics:  # bit for bit, through the JSON round trip
        np.testing.assert_array_equal(merged[metric].to_numpy(),
                                      merged[f"{metric}.base"].to_numpy())
    assert (run / "check.md").is_file() and (run / "check.xml").is_file()


@pytest.mark.slow
def test_degraded_model_fails_with_exit_1_naming_metric_and_segment(base, tmp_path):
    md, xml = tmp_path / "pr.md", tmp_path / "junit.xml"
    code, text = check(base, "models.cf_als.factors=1", markdown=str(md), junit=str(xml))
    assert code == 1
    assert "**FAIL**" in text
    # e.g. "- cf_als ndcg@10 [all]: -0.0754 (baseline 0.2205 -> 0.1451, ...)"
    assert "- cf_als ndcg@10 [all]: -" in text
    assert "cf_als recall@10 [history 21-100]" in text
    assert md.read_text() in text  # the PR comment is what was printed
    # no other model moved
    assert "| `rule_popular` | ndcg@10 |" in text and "| +0.0000 [+0.0000, +0.0000] |" in text
    suite = ET.parse(xml).getroot()
    cases = suite.findall("testcase")
    assert len(cases) == 6 * 3  # models x gated metrics
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert ("recspectrum.ci.cf_als", "ndcg@10") in failed
    assert all(cls == "recspectrum.ci.cf_als" for cls, _ in failed)
    assert suite.get("failures") == str(len(failed))
    # no printed interval contradicts its status: significant statuses exclude 0, only they
    rows = [r for r in text.splitlines() if r.startswith("| `")]
    assert len(rows) >= 18
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        ci = next(c for c in cells if "[" in c)
        low, high = (float(x) for x in ci.split("[")[1].rstrip("]").split(", "))
        significant = cells[-1] in ("regression", "improvement", "within tolerance",
                                    "within seed spread")
        assert (low > 0 or high < 0) == significant, row


@pytest.mark.slow
def test_change_within_the_tolerance_passes(base):
    code, text = check(base, "models.cf_als.factors=1",
                       "check.tolerance.default.abs=0.5")
    assert code == 0
    assert "within tolerance" in text and "**PASS**" in text


@pytest.mark.slow
def test_noise_that_is_not_significant_passes(base):
    # a different ALS seed moves per-user values a little, nowhere significantly
    code, text = check(base, "models.cf_als.seed=7")
    assert code == 0, text


@pytest.mark.slow
def test_baseline_from_a_different_split_exits_2_saying_what_differs(base):
    with pytest.raises(IncomparableError, match=r"split\.fingerprints: run has .*split\.params\.n"):
        check(base, "split.n=3")


@pytest.mark.slow
def test_baseline_from_different_data_exits_2(base, capsys):
    args = ["check", *SMALL[1:], "dataset=synthetic", "dataset.n_users=310",
            f"report.dir={base / 'reports'}", "--baseline", str(base / "base.json")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "dataset.fingerprint: run has" in err and "bench: error:" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "recspectrum-baseline", "vers', r"invalid JSON"),
        ('[1, 2]', r"expected a JSON object with format 'recspectrum-baseline'"),
        ('{"format": "recspectrum-baseline", "version": 9}', r"baseline version 9"),
        ('{"format": "recspectrum-baseline", "version": 1, "card": {}, "metrics": [], '
         '"models": {}}', r"key 'per_user' missing"),
        ('{"format": "recspectrum-baseline", "version": 1, "card": {}, "metrics": ["ndcg@10"],'
         ' "models": {}, "per_user": {"model": ["a"], "fold": [0], "user_id": [1]}}',
         r"per_user lacks column\(s\) \['ndcg@10'\]"),
        ('{"format": "recspectrum-baseline", "version": 1, "card": {}, "metrics": ["ndcg@10"],'
         ' "models": {}, "per_user": {"model": ["a"], "fold": [0], "user_id": [1], '
         '"ndcg@10": ["high"]}}', r"column 'ndcg@10' holds non-numeric values"),
    ],
)
def test_corrupted_baseline_gives_a_clear_error(tmp_path, content, message, capsys):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_baseline(path)
    # and before the run starts, from the command line: exit 2, one line naming the file
    assert main(["check", *SMALL, "--baseline", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"bench: error: {path}:") and "\n" not in err


def test_missing_baseline_says_how_to_create_it(tmp_path, capsys):
    assert main(["check", *SMALL, "--baseline", str(tmp_path / "none.json")]) == 2
    assert "bench check --update-baseline" in capsys.readouterr().err


@pytest.mark.slow
def test_update_baseline_is_atomic(base, tmp_path, monkeypatch):
    path = tmp_path / "b.json"
    path.write_text("old")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(baseline_mod.json, "dump", broken)
    with pytest.raises(OSError, match="disk full"):
        baseline_mod.write_baseline(path, {"x": 1})
    assert path.read_text() == "old"  # the old baseline survives a failed write
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]  # no temp file left
    monkeypatch.undo()
    baseline_mod.write_baseline(path, {"x": 1.0000000000000002})
    assert json.loads(path.read_text()) == {"x": 1.0000000000000002}  # exact round trip


@pytest.mark.slow
def test_new_and_missing_models_are_reported_not_failed_unless_configured(base):
    code, text = check(base, "~models.cf_item_knn", "+models.rule_random={_target_: "
                       "bench.models.rule.random.RandomRecommender, seed: 1}")
    assert code == 0
    assert "New models (not in the baseline, not gated): rule_random." in text
    assert "Baseline models not run: cf_item_knn." in text
    code, text = check(base, "~models.cf_item_knn", "check.fail_on_missing_model=true")
    assert code == 1 and "baseline models not run: ['cf_item_knn']" in text


def test_check_settings_are_validated():
    with pytest.raises(ConfigError, match=r"check: unknown key\(s\) \['tolerence'\]"):
        check_settings({"tolerence": {}})
    with pytest.raises(ConfigError, match=r"check\.segments: expected some of"):
        check_settings({"segments": ["everyone"]})
    with pytest.raises(ConfigError, match=r"check\.tolerance\.ndcg@10\.abs: expected a number"):
        check_settings({"tolerance": {"ndcg@10": {"abs": -1}}})
    s = check_settings({"tolerance": {"default": {"abs": 0.01, "rel": 0.1},
                                      "ndcg@10": {"abs": 0.02, "rel": 0.0}}})
    assert s.allowed_drop("ndcg@10", 0.5) == 0.02
    assert s.allowed_drop("recall@10", 0.5) == 0.05  # max(0.01, 0.1 x 0.5)


def test_the_committed_ci_baseline_is_a_valid_baseline():
    saved = read_baseline(ROOT / "reports/baselines/ci.json")
    assert saved.name == "ci"
    assert set(saved.models) == {"rule_popular", "rule_segment", "content_profile", "cf_als",
                                 "cf_item_knn", "hybrid_blend"}
    assert saved.card["comparable"]["dataset"]["name"] == "movielens_small"
    assert saved.per_user.groupby("model").size().min() > 500  # power for paired tests


@pytest.mark.slow
def test_a_crashing_model_fails_the_gate_and_is_never_a_baseline(base, tmp_path, monkeypatch):
    from bench.models.content.profile import ContentProfile

    def boom(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ContentProfile, "_fit", boom)
    code, text = check(base)
    assert code == 1 and "check: model content_profile failed: RuntimeError: boom" in text
    code, text = check(tmp_path, update=True, baseline="new.json")
    assert code == 1 and "baseline NOT written" in text
    assert not (tmp_path / "new.json").exists()
