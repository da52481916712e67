"""Determinism (issue 7): the same config run twice gives bitwise the same metric values.

Every ``configs/model/*.yaml`` is composed with Hydra into ONE run (exactly as
``bench model=[...all...]`` would), on a small synthetic dataset with a temporal split,
and that run is made twice. Each (model, fold) per-user table must match bitwise: the
same users in the same order, and ``np.array_equal`` on every metric column. The
summary means must match bitwise too.

The synthetic data carries no demographics, so the loader is wrapped to add random
age/gender/occupation columns (drawn from a fixed seed), letting
``rule_segment_demographic`` run instead of being skipped.

Exceptions: none. Every model config is bitwise reproducible for a fixed seed and batch
size. (Scores may differ in the last float32 bit across *batch sizes*, because BLAS can
pick another kernel for another block shape; the conformance suite covers that case
with a tolerance. Here the batch size is fixed.) A config added later that cannot be
made reproducible must be listed in ``NOT_DETERMINISTIC`` with its reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

import bench.data.synthetic as synthetic
from bench.data.loaders import dataset_loader
from bench.runner import run_experiment
from bench.tracking import MemoryTracker
from tests.helpers import CONFIG_DIR, compose_config, needs_user_value, with_demographics

MODEL_CONFIGS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml")
                       if not needs_user_value(p))

ACCURACY = {"precision", "recall", "ndcg", "map", "mrr", "hit_rate"}
#: config name -> why its metric values may legitimately differ between two runs.
NOT_DETERMINISTIC: dict[str, str] = {}

#: Two runs of every model config (~10 s): slow tier.
pytestmark = pytest.mark.slow

_generate = synthetic.generate_synthetic


def _with_demographics(**kwargs):
    """The synthetic loader, plus seeded demographics for the demographic segment rule."""
    ds = _generate(**kwargs)
    uf = with_demographics(ds.user_features)
    object.__setattr__(ds, "user_features", uf)  # SyntheticDataset is a frozen dataclass
    return ds


def compose_all(tmp: Path):
    cfg = compose_config([
        f"model=[{','.join(MODEL_CONFIGS)}]", "~experiment", "seed=5", "name=det",
        "tracker=none", "dataset=synthetic", "dataset.n_users=120", "dataset.n_items=80",
        "dataset.n_interactions=2400", "split=temporal", "eval.batch_size=32",
        "eval.cutoffs=[1,5,10]", "report.figures=false", "report.curve_k=10",
        f"report.dir={tmp}", "stats.n_resamples=50", "cold_start.user=null",
        "cold_start.item=null",
    ])
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("det")
    mp = pytest.MonkeyPatch()
    # the wrapper stands in for the registered loader under its name for this fixture only
    mp.setattr(_with_demographics, "__module__", _generate.__module__)
    mp.setattr(_with_demographics, "__qualname__", _generate.__qualname__)
    mp.setattr(synthetic, "generate_synthetic", dataset_loader(_with_demographics))
    try:
        runs = [run_experiment(OmegaConf.create(compose_all(tmp)), output_dir=tmp / name,
                               tracker=MemoryTracker()) for name in ("a", "b")]
    finally:
        mp.undo()
        dataset_loader(_generate)
    return runs


def test_every_model_config_ran(two_runs):
    a, b = two_runs
    assert not a.failures and not b.failures, [f.error for f in a.failures + b.failures]
    assert sorted({r.model for r in a.models}) == MODEL_CONFIGS
    # the demographic rule really segmented users (the wrapper's columns were read)
    demo = next(r for r in a.models if r.model == "rule_segment_demographic")
    assert demo.per_user["user_id"].size > 0


@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_same_config_bitwise_same_metrics(two_runs, name):
    if name in NOT_DETERMINISTIC:
        pytest.skip(NOT_DETERMINISTIC[name])
    a, b = two_runs
    ra = [r for r in a.models if r.model == name]
    rb = [r for r in b.models if r.model == name]
    assert [r.fold for r in ra] == [r.fold for r in rb] and ra
    for x, y in zip(ra, rb, strict=True):
        assert list(x.per_user.columns) == list(y.per_user.columns)
        assert np.array_equal(x.per_user["user_id"].to_numpy(), y.per_user["user_id"].to_numpy())
        metric_cols = [c for c in x.per_user.columns
                       if "@" in c and pd.api.types.is_float_dtype(x.per_user[c])]
        assert any(c.startswith("ndcg@") for c in metric_cols)
        for col in metric_cols:
            u = x.per_user[col].to_numpy()
            v = y.per_user[col].to_numpy()
            assert np.array_equal(u, v, equal_nan=True), f"{name} {col} differs between runs"
            if col.split("@")[0] in ACCURACY:  # NaN = a user the model could not serve
                finite = u[np.isfinite(u)]
                assert finite.size and ((finite >= 0) & (finite <= 1)).all(), col
        assert x.metrics.keys() == y.metrics.keys()
        for key, value in x.metrics.items():
            assert np.array_equal(value, y.metrics[key], equal_nan=True), f"{name} {key}"
