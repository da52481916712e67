"""Switching by history length, with explicit fallback tiers."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bench import validate
from bench.errors import ConfigError
from bench.models.base import Recommender, mask_history
from bench.models.hybrid.base import Composite, row_ranks


class SwitchingHybrid(Composite):
    """Serve each user from the first component that applies to them; fall back in order.

    Components are tried in their declared order. A component applies to a user when
    the user's history length (training plus fold-in interactions) is at least its
    ``min_history`` (default 0) and at most its ``max_history`` (default unbounded).
    The first applicable component that can score the user (at least one finite score
    among unseen items) fills the top of the list; with ``fill: true`` the following
    applicable components fill the places it cannot (items it scores NaN, e.g. new
    items for a collaborative model), ranked below every item of the earlier tier.
    Nothing is filled implicitly: a user no applicable component can score gets an
    empty list.

    Typical use: segment rules for users with fewer than 5 interactions, ALS above
    (``min_history: {cf_als: 5}``), popularity as the last tier.

    Scores: tiers are stacked by rank, ``score = (n_tiers - t) * n_items + (n_items - r)``
    for the item of rank ``r`` (0-based) in tier ``t``, so the recommended order is
    exactly each tier's own order, tier after tier. ``source`` is the tier's component.

    Args:
        components: label -> model, in priority order.
        min_history: label -> minimum history length for that component to apply.
        max_history: label -> maximum history length for that component to apply.
        fill: fill unscorable places from later applicable components.
    """

    def __init__(
        self,
        *,
        components: Mapping[str, Recommender],
        min_history: Mapping[str, int] | None = None,
        max_history: Mapping[str, int] | None = None,
        fill: bool = True,
    ):
        self.components = components
        self.min_history = min_history
        self.max_history = max_history
        self.fill = fill

    def _fit(self, train, item_features, user_features) -> None:
        self._check_components(minimum=2)
        for key in ("min_history", "max_history"):
            bounds = getattr(self, key) or {}
            unknown = sorted(set(bounds) - set(self.components))
            if unknown:
                raise ConfigError(
                    f"SwitchingHybrid {key}: unknown component(s) {unknown}; expected some of "
                    f"{sorted(self.components)}"
                )
            for label, v in bounds.items():
                validate.integer(f"{key}.{label}", v, 0, expected="a non-negative integer")
        self._fit_children(train, item_features, user_features)

    def _combine(self, users, history):
        n_users, n_items = len(users), self.n_items
        length = np.diff(history.indptr) if history is not None else np.zeros(n_users, int)
        lo = self.min_history or {}
        hi = self.max_history or {}
        keys = list(self.components)
        n_tiers = len(keys)
        out = np.full((n_users, n_items), np.nan, dtype=np.float32)
        src = np.zeros((n_users, n_items), dtype=np.int16)
        tier = np.zeros(n_users, dtype=np.int64)  # tiers already used per user
        for key in keys:
            applies = (length >= lo.get(key, 0)) & (length <= hi.get(key, np.iinfo(np.int64).max))
            open_rows = np.isnan(out).any(axis=1) if self.fill else tier == 0
            rows = np.flatnonzero(applies & open_rows)
            if len(rows) == 0:
                continue
            scores, codes = self.child_scores(key, users[rows], history[rows])
            mask_history(scores, history[rows])
            scorable = ~np.isnan(scores).all(axis=1)
            rows, scores, codes = rows[scorable], scores[scorable], codes[scorable]
            if len(rows) == 0:
                continue
            free = np.isnan(out[rows]) & ~np.isnan(scores)
            ranks = row_ranks(np.where(free, scores, np.nan))
            level = (n_tiers - tier[rows])[:, None] * n_items
            value = (level + (n_items - ranks)).astype(np.float32)
            out[rows] = np.where(free, value, out[rows])
            src[rows] = np.where(free, codes, src[rows])
            tier[rows] += 1
        return out, src
