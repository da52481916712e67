"""``bench perf scale``: its sizes, its Hydra overrides and its stage meter (no timing)."""

import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from bench.perf.scale import ML25M, StageMeter, overrides, shape

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def test_shape_scales_ml25m():
    assert shape(1.0) == ML25M
    assert shape(0.1) == {"n_users": 16_254, "n_items": 5_905, "n_interactions": 2_500_010}
    tiny = shape(1e-6)  # floors keep the generator's arguments valid
    assert tiny["n_users"] == 10 and tiny["n_items"] == 10
    assert tiny["n_users"] <= tiny["n_interactions"] <= tiny["n_users"] * tiny["n_items"]


def test_overrides_compose_the_scale_run():
    ov = overrides(0.01, "temporal_warm", ["rule_popular", "cf_als"], 7, figures=False)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=ov)
    assert list(cfg.models) == ["rule_popular", "cf_als"]
    assert cfg.dataset._target_ == "bench.data.synthetic.generate_synthetic"
    assert cfg.dataset.n_users == 1625 and cfg.dataset.n_interactions == 250_001
    assert cfg.split.cold_users == "drop"
    assert cfg.tracker._target_ == "bench.tracking.base.NullTracker"
    assert cfg.cold_start.user is None and cfg.cold_start.item is None
    assert cfg.report.figures is False and cfg.seed == 7


def test_stage_meter_times_and_nests():
    meter = StageMeter()
    inner = meter.wrap("inner", lambda n: np.ones(n, dtype=np.uint8))  # pages written
    outer = meter.wrap(lambda n: f"outer {n}", lambda n: (time.sleep(0.05), len(inner(n)))[1])
    assert outer(50_000_000) == 50_000_000
    meter.stop()
    s = meter.stages
    assert set(s) == {"inner", "outer 50000000"}
    assert s["outer 50000000"]["seconds"] >= 0.05
    # the 50 MB buffer shows in both stages' peaks (charged to every open stage)
    for rec in s.values():
        assert rec["calls"] == 1
        assert rec["peak_rss_gb"] - rec["rss_before_gb"] >= 0.045, s
