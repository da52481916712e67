"""resume=true: (model, fold) children an earlier run finished with the same config hash
are reused, not retrained; anything that changed runs again."""

import numpy as np
import pandas as pd

from bench.models.collaborative.ease import EASE
from bench.models.rule.random import RandomRecommender
from bench.runner import run_experiment
from bench.tracking import MemoryTracker
from tests.helpers import report_cfg


def cfg_for(csv, **over):
    return report_cfg(csv, cold_start={"user": None, "item": None},
                      report={"figures": False, "curve_k": 15}, **over)


def test_resume_reuses_finished_children_and_reruns_the_failed_one(ratings_csv, tmp_path,
                                                                    monkeypatch):
    fresh = run_experiment(cfg_for(ratings_csv), output_dir=tmp_path / "fresh",
                           tracker=MemoryTracker())

    def boom(self, *args, **kwargs):
        raise RuntimeError("interrupted")

    with monkeypatch.context() as m:  # first attempt: one model dies
        m.setattr(RandomRecommender, "_fit", boom)
        first = run_experiment(cfg_for(ratings_csv), output_dir=tmp_path / "exp" / "r1",
                               tracker=MemoryTracker())
    assert [f.model for f in first.failures] == ["rule_random"]

    fits = []
    original = EASE._fit
    monkeypatch.setattr(EASE, "_fit", lambda self, *a, **k: fits.append(1) or original(
        self, *a, **k))
    tracker = MemoryTracker()
    second = run_experiment(cfg_for(ratings_csv, resume=True),
                            output_dir=tmp_path / "exp" / "r2", tracker=tracker)
    assert fits == []  # EASE finished in r1 with the same config: not retrained
    assert not second.failures
    assert [r.model for r in second.models] == [r.model for r in fresh.models]
    for a, b in zip(fresh.models, second.models, strict=True):
        assert a.metrics == b.metrics  # bit for bit
        cols = [c for c in a.per_user.columns if "@" in c]
        pd.testing.assert_frame_equal(a.per_user[cols], b.per_user[cols])
        assert np.array_equal(a.curves["ndcg"], b.curves["ndcg"])
    resumed = [r for r in tracker.runs.values() if "recspectrum.resumed_from" in r.tags]
    assert sorted(r.name for r in resumed) == ["cf_ease/fold0", "rule_popular/fold0"]
    assert (tmp_path / "exp" / "r2" / "artifacts" / "cf_ease" / "fold0" / "done.json").is_file()
    assert (tmp_path / "exp" / "r2" / "report.md").is_file()


def test_a_changed_config_is_not_resumed(ratings_csv, tmp_path, monkeypatch):
    run_experiment(cfg_for(ratings_csv), output_dir=tmp_path / "exp" / "r1",
                   tracker=MemoryTracker())
    fits = []
    original = EASE._fit
    monkeypatch.setattr(EASE, "_fit", lambda self, *a, **k: fits.append(1) or original(
        self, *a, **k))
    cfg = cfg_for(ratings_csv, resume=True)
    cfg.models.cf_ease.l2 = 123.0
    run_experiment(cfg, output_dir=tmp_path / "exp" / "r2", tracker=MemoryTracker())
    assert fits == [1]  # its hash changed: trained again


def test_resume_without_an_earlier_run_starts_afresh(ratings_csv, tmp_path):
    result = run_experiment(cfg_for(ratings_csv, resume=True),
                            output_dir=tmp_path / "exp" / "r1", tracker=MemoryTracker())
    assert len(result.models) == 3 and not result.failures


def test_resume_rejects_a_folder_that_does_not_exist(ratings_csv, tmp_path):
    import pytest

    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match=r"resume: expected true, false or an existing run"):
        run_experiment(cfg_for(ratings_csv, resume=str(tmp_path / "nope")),
                       output_dir=tmp_path / "o", tracker=MemoryTracker())
