"""A planted tuning problem: the next item of every user is 7 ids after their last one.

:class:`Planted` ranks items by their (circular) distance from ``last item + shift``, so
validation NDCG peaks at ``shift = 7`` and falls off smoothly either side: the optimum of
the search is known. It is a test-only model, allowed by :func:`bench.targets.allowing`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.models.base import Recommender

N_ITEMS = 60
STEP = 7
PLANTED = "tests.tune.helpers.Planted"


class Planted(Recommender):
    """Scores item j by minus its circular id distance from the user's last item + shift."""

    family = "collaborative"

    def __init__(self, *, shift: float = 0.0, fail_above: float | None = None):
        self.shift = shift
        self.fail_above = fail_above

    def _fit(self, train, item_features, user_features):
        if self.fail_above is not None and self.shift > self.fail_above:
            raise ValueError(f"shift {self.shift} above {self.fail_above}")
        order = np.lexsort((train.timestamps, train.users))
        users, items = train.users[order], train.items[order]
        last = np.full(len(train.user_ids), -1, dtype=np.int64)
        ids = np.asarray(train.item_ids).astype(np.int64)
        last[users] = ids[items]  # the latest row of each user wins
        self.last_ = last
        self.ids_ = ids.astype(np.float64)

    def _score(self, users, history):
        target = (self.last_[users][:, None] + self.shift) % N_ITEMS
        d = np.abs(self.ids_[None, :] - target)
        d = np.minimum(d, N_ITEMS - d)
        return (-d).astype(np.float32)


def write_planted_csv(path: Path, n_users: int = 40, length: int = 10) -> Path:
    """Every user walks the item ids in steps of 7; rows interleave users over time."""
    rows = []
    for u in range(n_users):
        start = (u * 11) % N_ITEMS
        for t in range(length):
            rows.append((u, (start + STEP * t) % N_ITEMS, 5.0, t * 1000 + u))
    pd.DataFrame(rows, columns=["user", "item", "stars", "ts"]).to_csv(path, index=False)
    return path


def planted_config(tmp: Path, models: dict, **tune) -> dict:
    """A run config (plain data) on the planted CSV with the given model nodes."""
    from tests.helpers import compose_config

    tmp.mkdir(parents=True, exist_ok=True)
    csv = write_planted_csv(tmp / "planted.csv")
    cfg = compose_config([
        "~experiment", "tracker=none", "dataset=csv", f"dataset.path={csv}",
        "dataset.columns={user_id: user, item_id: item, rating: stars, timestamp: ts}",
        "dataset.rating_scale=[1,5]",
        "eval.relevance_threshold=null", "eval.cutoffs=[10]", "split=temporal",
        f"report.dir={tmp / 'reports'}", "report.figures=false", "model=[rule_popular]",
        "name=planted",
    ])
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg, resolve=True)
    raw["models"] = models
    raw["tune"].update(tune)
    return raw


def planted_model(low: float = 0.0, high: float = 30.0, kind: str = "float", **params) -> dict:
    return {"_target_": PLANTED, "shift": 0.0, **params,
            "_tune_": {"shift": {"type": kind, "low": low, "high": high}}}
