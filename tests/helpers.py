"""Helpers shared by the test modules; fixtures that wrap them live in ``conftest.py``.

- Paths: :data:`ROOT`, :data:`CONFIG_DIR`, :func:`shared_data_dir` (``BENCH_DATA_DIR``).
- :func:`compose_config`: ``configs/config.yaml`` (or only the groups named by ``+group=``
  overrides) composed by Hydra exactly as ``bench`` composes it.
- The ratings CSV the runner and command-line tests read: :func:`write_ratings_csv`, its
  column names :data:`RATINGS_COLUMNS`, and :func:`csv_dataset`, the overrides that load it.
- :data:`QUICK_RUN`: overrides that keep a ``bench`` run to one rule model at one cutoff.
- :func:`make_cfg` and :func:`report_cfg`: ``run_experiment`` configs for that CSV.
- :func:`with_demographics`: seeded age, gender and occupation columns for synthetic users.

Split tests have their own builders in ``tests/splits/helpers.py``; collaborative-model
tests in ``tests/models/collaborative/cf_data.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"


def shared_data_dir() -> Path | None:
    """BENCH_DATA_DIR, made absolute, when set and present (integration tests skip otherwise).

    Absolute because integration tests change into a temporary directory, where a
    relative BENCH_DATA_DIR (``data/movielens``) would point nowhere.
    """
    value = os.environ.get("BENCH_DATA_DIR")
    return Path(value).resolve() if value and Path(value).is_dir() else None


def compose_config(overrides: Iterable[str] = (), config_name: str | None = "config") -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with Hydra ``overrides``, as ``bench`` does.

    ``config_name=None`` starts from an empty config, so only the groups selected with
    ``+group=option`` (and keys added with ``+key=value``) are in the result.
    """
    from bench.schema import register

    register()  # config.yaml extends the schema: it must be in Hydra's ConfigStore first
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name, overrides=list(overrides))


# ---------------------------------------------------------------------- the ratings CSV
#: canonical name -> column of :func:`write_ratings_csv` (header ``user,item,stars,ts``)
RATINGS_COLUMNS = {"user_id": "user", "item_id": "item", "rating": "stars", "timestamp": "ts"}


def write_ratings_csv(path: Path) -> Path:
    """Write a 60-user, 40-item ratings CSV with timestamps and two taste groups."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        items = rng.choice([i for i in range(40) if i % 2 == u % 2], size=12, replace=False)
        for j, i in enumerate(items):
            rows.append((u, int(i), float(rng.integers(3, 6)), 1_000_000 + u * 100 + j * 1000))
    pd.DataFrame(rows, columns=["user", "item", "stars", "ts"]).to_csv(path, index=False)
    return path


def csv_dataset(path: Path | str) -> list[str]:
    """Overrides that load ``path`` (a file in the ratings CSV's columns, stars 1-5)."""
    return [
        "dataset=csv",
        f"dataset.path={path}",
        "dataset.columns={user_id: user, item_id: item, rating: stars, timestamp: ts}",
        "dataset.rating_scale=[1,5]",
    ]


#: Overrides for a quick command-line run: no tracker, one rule model, one cutoff.
QUICK_RUN = ["tracker=none", "model=[rule_popular]", "eval.cutoffs=[5]"]


# ---------------------------------------------------------------------- run_experiment configs
def make_cfg(ratings_csv: Path, **over) -> DictConfig:
    """Popularity and random on ``ratings_csv``, temporal split, in-memory tracker."""
    cfg = {
        "seed": 3,
        "name": "t",
        "dataset": {
            "_target_": "bench.data.tabular.load_table",
            "path": str(ratings_csv),
            "columns": dict(RATINGS_COLUMNS),
            "rating_scale": [1, 5],
        },
        "split": {"_target_": "bench.splits.temporal.GlobalTemporalSplitter", "quantile": 0.8},
        "models": {
            "rule_popular": {"_target_": "bench.models.rule.popular.PopularityRecommender"},
            "rule_random": {"_target_": "bench.models.rule.random.RandomRecommender",
                            "seed": "${seed}"},
        },
        "eval": {"cutoffs": [1, 5, 10], "relevance_threshold": 4.0},
        "tracker": {"_target_": "bench.tracking.memory.MemoryTracker"},
    }
    cfg.update(over)
    return OmegaConf.create(cfg)


POP = {"_target_": "bench.models.rule.popular.PopularityRecommender"}
RANDOM = {"_target_": "bench.models.rule.random.RandomRecommender", "seed": 1}
EASE = {"_target_": "bench.models.collaborative.ease.EASE"}


def report_cfg(csv: Path, **over) -> DictConfig:
    """:func:`make_cfg` plus EASE, statistics against popularity and both cold-start sweeps."""
    cfg = make_cfg(csv, **over)
    base = {
        "models": {"rule_popular": POP, "rule_random": RANDOM, "cf_ease": EASE},
        "stats": {"baseline": "rule_popular", "n_resamples": 200, "seed": 0},
        # every user of the ratings CSV starts in its first ~6% of time: a cut at 0.05
        # leaves 39 users new at it (the main split's cut at 0.8 has none)
        "cold_start": {"user": {"quantile": 0.05, "fold_in": [0, 1, 3], "seed": 0},
                       "item": {"fraction": 0.2, "seed": 0}},
        "report": {"curve_k": 15},
    }
    for key, value in base.items():
        if key not in over:
            cfg[key] = value
    return cfg


# ---------------------------------------------------------------------- synthetic data
def with_demographics(user_features: pd.DataFrame) -> pd.DataFrame:
    """A copy with random age, gender and occupation (seed 0), for the demographic rules."""
    uf = user_features.copy()
    rng = np.random.default_rng(0)
    uf["age"] = rng.integers(15, 70, len(uf))
    uf["gender"] = rng.choice(["F", "M"], len(uf))
    uf["occupation"] = rng.choice(["student", "engineer", "artist", "other"], len(uf))
    return uf


def needs_user_value(path: Path) -> bool:
    """Does a config file leave a required value (``???``) for the user, such as
    precomputed's ``path``? Such a config cannot run as shipped; it has its own tests."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(path)
    return any(OmegaConf.is_missing(cfg, key) for key in cfg)


def recommend_without(model, fast_path: str, *args, **kwargs):
    """``model.recommend_codes(*args, **kwargs)`` with the optional fast path named
    ``fast_path`` (``_top_k_fast``, ``_top_k_sources``) hidden, so the generic path runs:
    the batch's full score block, masking, ``top_k``."""
    setattr(model, fast_path, lambda *a: None)  # an instance attribute hides the method
    try:
        return model.recommend_codes(*args, **kwargs)
    finally:
        delattr(model, fast_path)
