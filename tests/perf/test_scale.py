"""``bench perf scale``: its sizes, its Hydra overrides and its stage meter (no timing)."""

import time

import numpy as np

from bench.observe import Observers
from bench.perf import scale
from bench.perf.scale import ML25M, overrides, shape
from tests.helpers import compose_config


def test_shape_scales_ml25m():
    assert shape(1.0) == ML25M
    assert shape(0.1) == {"n_users": 16_254, "n_items": 5_905, "n_interactions": 2_500_010}
    tiny = shape(1e-6)  # floors keep the generator's arguments valid
    assert tiny["n_users"] == 10 and tiny["n_items"] == 10
    assert tiny["n_users"] <= tiny["n_interactions"] <= tiny["n_users"] * tiny["n_items"]


def test_overrides_compose_the_scale_run():
    ov = overrides(0.01, "temporal_warm", ["rule_popular", "cf_als"], 7, figures=False)
    cfg = compose_config(ov)
    assert list(cfg.models) == ["rule_popular", "cf_als"]
    assert cfg.dataset._target_ == "bench.data.synthetic.generate_synthetic"
    assert cfg.dataset.n_users == 1625 and cfg.dataset.n_interactions == 250_001
    assert cfg.split.cold_users == "drop"
    assert cfg.tracker._target_ == "bench.tracking.base.NullTracker"
    assert cfg.cold_start.user is None and cfg.cold_start.item is None
    assert cfg.report.figures is False and cfg.seed == 7


def test_stage_meter_times_and_nests():
    m = scale.meter()
    run = Observers(m)
    with m.sampling(), run.stage("cell", model="big"):
        time.sleep(0.05)
        with run.stage("fit", model="big"):
            buffer = np.ones(50_000_000, dtype=np.uint8)  # pages written: 50 MB resident
        del buffer
        with run.stage("evaluate", model="big"):
            pass
    s = m.rows()
    assert list(s) == ["cell big", "fit big", "evaluate"]  # in the order they start
    assert s["cell big"]["seconds"] >= 0.05
    assert s["cell big"]["self_seconds"] <= s["cell big"]["seconds"]
    # the 50 MB buffer shows in the fit's peak and in the enclosing cell's
    for name in ("cell big", "fit big"):
        rec = s[name]
        assert rec["calls"] == 1 and rec["cpu_seconds"] >= 0
        assert rec["peak_rss_gb"] - rec["rss_before_gb"] >= 0.045, s
    assert m.open == []  # every stage closed


def test_rows_are_per_model_for_cells_fits_and_recommends():
    assert scale.row("fit", {"model": "cf_als", "fold": 0}) == "fit cf_als"
    assert scale.row("recommend", {"model": "cf_als"}) == "recommend cf_als"
    assert scale.row("evaluate", {"model": "cf_als"}) == "evaluate"
    assert scale.row("tracking", {"call": "log_metrics"}) == "tracking"


def test_ease_check_sizes_the_item_x_item_matrices():
    import pandas as pd

    from bench.data.interactions import Interactions

    frame = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [10, 11, 11, 12],
                          "rating": [4.0, 5.0, 3.0, 4.0], "timestamp": [1, 2, 3, 4]})
    out = scale.ease_refusal(Interactions.from_frame(frame))
    assert out["items"] == 3 and out["ran"] is False and out["expected_refusal"] is False
    assert 0 < out["need_gib"] < 1e-6 and out["max_memory_gb"] == 4.0


TINY_RUN = ["~experiment", "dataset=synthetic", "dataset.n_users=120", "dataset.n_items=60",
            "dataset.n_interactions=2000", "split=holdout", "tracker=none",
            "report.figures=false", "model=[rule_popular,cf_als]"]


def test_worker_probe_records_each_cell_and_keeps_the_numbers(tmp_path):
    # the cell function Ray tasks run, here in this process: same outputs, one file a cell
    import os

    import pandas as pd

    from bench.executor import LocalExecutor
    from bench.runner import run_experiment

    cfg = compose_config(TINY_RUN)
    plain = run_experiment(cfg, output_dir=tmp_path / "plain")
    keeper = scale.SplitKeeper(LocalExecutor(cell_function=scale.WorkerProbe(
        str(tmp_path / "workers"))))
    probed = run_experiment(cfg, output_dir=tmp_path / "probed", executor=keeper)
    for a, b in zip(plain.models, probed.models, strict=True):
        pd.testing.assert_frame_equal(a.per_user, b.per_user)
    assert keeper.split is not None and len(keeper.split.train) > 0
    figures = scale.worker_figures(str(tmp_path / "workers"))
    assert sorted(c["model"] for c in figures["cells"]) == ["cf_als", "rule_popular"]
    assert list(figures["workers"]) == [str(os.getpid())]
    worker = figures["workers"][str(os.getpid())]
    assert sorted(worker["cells"]) == ["cf_als", "rule_popular"]
    for c in figures["cells"]:
        assert c["cpu_seconds"] > 0 and c["wall_seconds"] > 0
        assert c["worker_peak_rss_gb"] >= c["rss_end_gb"] > 0
        assert f"fit {c['model']}" in c["stages"] and "evaluate" in c["stages"]
    assert worker["peak_rss_gb"] == max(c["worker_peak_rss_gb"] for c in figures["cells"])
    merged = scale.merge_worker_stages({"load": {"seconds": 1.0, "self_seconds": 1.0,
                                                 "cpu_seconds": 1.0, "calls": 1}},
                                       figures["cells"])
    assert merged["load"]["seconds"] == 1.0
    assert merged["evaluate"]["calls"] == 2  # one per cell, summed
    assert merged["fit cf_als"]["seconds"] == next(
        c["stages"]["fit cf_als"]["seconds"] for c in figures["cells"] if c["model"] == "cf_als")


def test_ray_overrides_name_the_executor_group():
    ov = overrides(0.01, "temporal_warm", ["rule_popular"], 7, figures=False,
                   executor="ray", num_cpus=2)
    assert ov[:2] == ["executor=ray", "executor.num_cpus=2"]
    assert "executor=ray" not in overrides(0.01, "temporal_warm", ["rule_popular"], 7, False)


def test_overrides_pass_the_data_cache_folder(tmp_path):
    folder = str(tmp_path / "cache dir")
    cfg = compose_config(overrides(0.01, "temporal_warm", ["rule_popular"], 7, figures=False,
                                   data_cache=folder))
    assert cfg.dataset.cache_dir == folder
    off = compose_config(overrides(0.01, "temporal_warm", ["rule_popular"], 7, figures=False))
    assert off.dataset.cache_dir is None


def test_the_child_tells_a_cached_load_from_a_generating_one(tmp_path, monkeypatch):
    from bench.data import synthetic

    monkeypatch.setattr(synthetic, "CACHE_MIN_ROWS", 0)
    cfg = compose_config(overrides(0.001, "temporal_warm", ["rule_popular"], 7, figures=False,
                                   data_cache=str(tmp_path)))
    entry, before = scale.cache_state(cfg)
    assert entry.parent.parent == tmp_path and before is None
    args = {k: v for k, v in cfg.dataset.items() if k not in ("_target_", "cache_dir")}
    synthetic.generate_synthetic(**args, cache_dir=str(tmp_path))  # a first run: writes
    assert scale.load_source(entry, before) == "generated, cached"
    entry, before = scale.cache_state(cfg)
    synthetic.generate_synthetic(**args, cache_dir=str(tmp_path))  # a repeated run: reads
    assert scale.load_source(entry, before) == "cache"
    off = compose_config(overrides(0.001, "temporal_warm", ["rule_popular"], 7, figures=False))
    assert scale.cache_state(off) == (None, None)
    assert scale.load_source(None, None) == "generated"
