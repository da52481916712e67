"""Every experiment in configs/experiment/ composes and runs end to end on tiny data.

The real datasets are swapped for a small synthetic one (planted structure, ratings,
timestamps), so this checks wiring — groups, overrides, composed child models — not
numbers. Integration tests on MovieLens check numbers.
"""

import numpy as np
import pytest

from bench.runner import run_experiment
from bench.tracking import MemoryTracker
from tests.helpers import CONFIG_DIR, compose_config

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
#: Experiments quick enough on tiny data for the fast tier; the others (many models or
#: figures, 3-5 s each) run in the slow tier.
FAST_EXPERIMENTS = {"ci"}
TINY = ["dataset=synthetic", "dataset.n_users=150", "dataset.n_items=90",
        "dataset.n_interactions=3000", "tracker=none", "eval.cutoffs=[5,10]"]


def compose_experiment(name: str, extra=()):
    return compose_config([f"experiment={name}", *TINY, *extra])


def test_plain_bench_runs_the_spectrum_experiment():
    plain = compose_config()
    bare = compose_config(["~experiment"])
    assert plain.name == "spectrum"
    families = {m.split("_")[0] for m in plain.models}
    assert families == {"rule", "content", "cf", "hybrid"}
    assert "rule_random" in plain.models  # the floor
    assert list(bare.models) == ["rule_popular", "rule_random", "cf_als"]


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=() if n in FAST_EXPERIMENTS else pytest.mark.slow) for n in EXPERIMENTS
])
def test_experiment_runs_on_tiny_data(name, tmp_path):
    # experiment-specific keys that point into the real dataset's folder
    extra = {"surprise_ml100k": ["split.load_order=null"]}.get(name, [])
    cfg = compose_experiment(name, extra)
    result = run_experiment(cfg, output_dir=tmp_path / name, tracker=MemoryTracker())
    assert {r.model for r in result.models} == set(cfg.models)
    for r in result.models:
        values = [v for k, v in r.metrics.items() if k.split("@")[0] in cfg.eval.metrics]
        assert values and all(np.isfinite(v) and 0.0 <= v <= 1.0 for v in values)
        assert 0.0 <= r.metrics["coverage@10"] <= 1.0
    assert (tmp_path / name / "report.md").is_file()
    # every figure needs more than one rung (ladder) or the cold-start sweep (spectrum*)
    n_figures = len(list((tmp_path / name / "figures").glob("*.png")))
    if not cfg.report.figures:  # the CI gate's experiment skips them for speed
        assert n_figures == 0
    else:
        assert n_figures >= (6 if name.startswith("spectrum") else 4)
    if name == "surprise_ml100k":  # Surprise's benchmark: every rating pair is scored
        assert cfg.eval.unscored_ratings == "surprise_default"
        assert all(r.metrics["rating_pairs_unpredicted"] == 0
                   and "rating_pairs_defaulted" in r.metrics for r in result.models)
