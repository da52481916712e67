"""Training seeds (``seeds: [s1, s2, ...]``): which models take a seed, and their spread.

One top-level ``seed`` drives everything random in a run. With ``seeds`` set, the models
are also trained once per **training seed**, while the split, the synthetic data, the
cold-start protocols and the bootstrap keep ``seed``:

* **Which keys are seeds.** A model config key is a training seed when its value in the
  *composed, unresolved* config is exactly the interpolation ``${seed}`` (``seed:
  ${seed}`` in ``cf_als``, ``random_state: ${seed}`` in the Surprise models). The walk
  goes through nested mappings and lists, so the children of a composite
  (``components.cf_als.seed``) and plug-in models whose configs use ``${seed}`` are
  covered the same way. A key pinned to a number (``models.cf_als.seed=7``), another
  interpolation or a config passed already resolved is not a training seed: that model
  runs once.
* **Cells.** A seeded model has one cell per (fold, training seed), each with its own
  config (the seed keys set to that seed), hence its own key, artifact folder
  (``artifacts/<model>/fold0/seed1/``) and MLflow child (``cf_als/fold0/seed1``). A model
  without a seed key runs once per fold and is marked as such (``seed`` null): it has
  no spread to show.
* **Per-user values.** ``per_user.parquet`` keeps one row per (model, fold, seed, user)
  with a ``seed`` column; every statistic, test and gate comparison uses each user's
  mean over the seeds (:func:`mean_over_seeds`).
* **Spread.** Per seeded model: the model's mean of a metric for each seed (mean over
  folds, like every other model mean), and their standard deviation (n - 1), minimum and
  maximum over seeds (:func:`seed_spread`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

__all__ = [
    "SEED_REF",
    "mean_over_seeds",
    "model_variants",
    "seed_sd",
    "seed_spread",
    "seeded_paths",
    "unresolved_models",
    "with_seed",
]

#: the value that marks a training-seed key in a model config
SEED_REF = "${seed}"
#: per-user rows are matched on these; ``seed`` is averaged away
KEYS = ["model", "fold", "user_id"]

KeyPath = tuple[str | int, ...]


def unresolved_models(cfg) -> dict:
    """The ``models`` node of a composed config with its interpolations left as written."""
    if isinstance(cfg, DictConfig):
        node = cfg.get("models")
        return {} if node is None else OmegaConf.to_container(node, resolve=False)
    models = cfg.get("models") if isinstance(cfg, Mapping) else None
    return dict(models) if isinstance(models, Mapping) else {}


def seeded_paths(node, prefix: KeyPath = ()) -> list[KeyPath]:
    """Paths (keys and list indices) of every value equal to ``${seed}`` inside ``node``."""
    if isinstance(node, str):
        return [prefix] if node.strip() == SEED_REF else []
    if isinstance(node, Mapping):
        return [p for k, v in node.items() for p in seeded_paths(v, (*prefix, k))]
    if isinstance(node, list | tuple):
        return [p for i, v in enumerate(node) for p in seeded_paths(v, (*prefix, i))]
    return []


def with_seed(model_cfg: Mapping, paths: list[KeyPath], seed: int) -> dict:
    """A deep copy of the (resolved) ``model_cfg`` with the value at each path set to ``seed``."""
    out = copy.deepcopy(dict(model_cfg))
    for path in paths:
        node = out
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = seed
    return out


def model_variants(models: Mapping[str, dict], raw_models: Mapping,
                   seeds) -> dict[str, list[tuple[int | None, dict]]]:
    """Per model, its (training seed, model config) runs: one per seed for a model whose
    unresolved config holds ``${seed}``; ``[(None, config)]`` otherwise or when ``seeds``
    is None."""
    out = {}
    for name, cfg in models.items():
        paths = seeded_paths(raw_models.get(name)) if seeds else []
        out[name] = [(s, with_seed(cfg, paths, s)) for s in seeds] if paths else [(None, cfg)]
    return out


# ---------------------------------------------------------------------- per-user means
def mean_over_seeds(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, fold, user): float columns averaged over the training seeds,
    the others (labels, counts that do not depend on the seed) taken from the first row.

    A frame without a ``seed`` column is returned as it is.
    """
    if "seed" not in frame:
        return frame
    rest = [c for c in frame.columns if c not in KEYS and c != "seed"]
    how = {c: "mean" if pd.api.types.is_float_dtype(frame[c]) else "first" for c in rest}
    out = frame.groupby(KEYS, sort=False, dropna=False).agg(how).reset_index()
    return out[[c for c in frame.columns if c != "seed"]]


# ---------------------------------------------------------------------- spread
def seed_sd(values: pd.Series | np.ndarray) -> float:
    """Standard deviation (n - 1) of per-seed values; NaN with fewer than two."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.std(v, ddof=1)) if v.size > 1 else float("nan")


def seed_spread(results, key: str) -> pd.DataFrame:
    """Per model: its mean ``key`` per training seed (mean over folds) and their spread.

    ``results`` are :class:`~bench.record.ModelResult` records, in run order. Columns:
    ``model, family, seeds`` (how many), ``mean`` (over seeds), ``sd`` (n - 1), ``min``,
    ``max``, ``per_seed`` (seed -> mean). A model that ran once has ``seeds`` 0 and NaN
    spread: it has no training seed, so no spread (never a fake zero).
    """
    rows = []
    for model in dict.fromkeys(r.model for r in results):
        mine = [r for r in results if r.model == model]
        seeds = list(dict.fromkeys(r.seed for r in mine if r.seed is not None))
        per_seed = {s: float(np.mean([r.metrics.get(key, np.nan) for r in mine if r.seed == s]))
                    for s in seeds}
        vals = np.array(list(per_seed.values()), dtype=np.float64)
        rows.append({
            "model": model, "family": mine[0].family, "seeds": len(seeds),
            "mean": float(np.mean(vals)) if len(vals) else float("nan"),
            "sd": seed_sd(vals),
            "min": float(np.min(vals)) if len(vals) else float("nan"),
            "max": float(np.max(vals)) if len(vals) else float("nan"),
            "per_seed": per_seed,
        })
    return pd.DataFrame(rows, columns=["model", "family", "seeds", "mean", "sd", "min", "max",
                                       "per_seed"])
