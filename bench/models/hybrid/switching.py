"""Switching by history length, with explicit fallback tiers."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bench import validate
from bench.errors import ConfigError, ParameterError
from bench.models.base import Recommender, mask_history
from bench.models.hybrid.base import Composite, row_ranks, row_top


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

    Recommending never sorts a whole row: each tier contributes its own top ``k`` (the
    top-k kernel), a tier is skipped for users whose earlier tiers already filled ``k``
    places, and the tiers' short lists are merged (:meth:`_top_k_sources`); the lists,
    scores and sources are those of the full score block above.

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
            if not isinstance(bounds, Mapping):
                raise ParameterError(key, "a mapping of component label to a history length, "
                                     "or null", bounds)
            unknown = sorted(set(bounds) - set(self.components))
            if unknown:
                raise ConfigError(
                    f"SwitchingHybrid {key}: unknown component(s) {unknown}; expected some of "
                    f"{sorted(self.components)}"
                )
            for label, v in bounds.items():
                validate.integer(f"{key}.{label}", v, 0, expected="a non-negative integer")
        self._fit_children(train, item_features, user_features)

    def _applies(self, key: str, length: np.ndarray) -> np.ndarray:
        lo = (self.min_history or {}).get(key, 0)
        hi = (self.max_history or {}).get(key, np.iinfo(np.int64).max)
        return (length >= lo) & (length <= hi)

    def _top_k_sources(self, users, history, k, exclude_seen):
        """Each tier's top ``k`` instead of a full rank of every row (see the class doc).

        Equal to :meth:`_combine` then top-k as long as the tier scores are distinct
        float32 numbers, i.e. ``(n_tiers + 1) * n_items <= 2**24``; beyond that the
        generic path runs. The history is masked in every tier whatever ``exclude_seen``
        says, as :meth:`_combine` does.
        """
        n_users, n_items = len(users), self.n_items
        keys = list(self.components)
        n_tiers = len(keys)
        if (n_tiers + 1) * n_items > 2**24:
            return None
        length = np.diff(history.indptr) if history is not None else np.zeros(n_users, int)
        filled = np.zeros((n_users, n_items), dtype=bool)  # places an earlier tier took
        n_filled = np.zeros(n_users, dtype=np.int64)
        tier = np.zeros(n_users, dtype=np.int64)  # tiers already used per user
        cand_items, cand_values, cand_sources = [], [], []
        for key in keys:
            open_rows = n_filled < n_items if self.fill else tier == 0
            # a user with k places filled keeps them: later tiers only score lower
            rows = np.flatnonzero(self._applies(key, length) & open_rows & (n_filled < k))
            if len(rows) == 0:
                continue
            rows, scores, codes = self._tier_scores(key, users, history, rows)
            if len(rows) == 0:
                continue
            free = ~filled[rows] & ~np.isnan(scores)
            items, rank = row_top(np.where(free, scores, np.nan), k)  # the tier's best k
            ranked = items >= 0
            level = (n_tiers - tier[rows])[:, None] * n_items
            block_items = np.full((n_users, k), -1, dtype=np.int32)
            block_values = np.full((n_users, k), np.nan, dtype=np.float32)
            block_sources = np.zeros((n_users, k), dtype=np.int16)
            block_items[rows, : items.shape[1]] = items
            block_values[rows, : items.shape[1]] = np.where(
                ranked, (level + (n_items - rank)).astype(np.float32), np.nan)
            block_sources[rows, : items.shape[1]] = np.where(
                ranked, np.take_along_axis(codes, np.maximum(items, 0), axis=1), 0)
            cand_items.append(block_items)
            cand_values.append(block_values)
            cand_sources.append(block_sources)
            filled[rows] |= free
            n_filled[rows] += free.sum(axis=1)
            tier[rows] += 1
        if not cand_items:
            return (np.full((n_users, k), -1, dtype=np.int32),
                    np.full((n_users, k), np.nan, dtype=np.float32),
                    np.zeros((n_users, k), dtype=np.int16))
        items = np.concatenate(cand_items, axis=1)
        values = np.concatenate(cand_values, axis=1)
        sources = np.concatenate(cand_sources, axis=1)
        # top-k's order over the merged lists: value descending, then item code ascending
        order = np.lexsort((items, np.where(np.isnan(values), np.inf, -values)), axis=1)[:, :k]
        items = np.take_along_axis(items, order, axis=1)
        values = np.take_along_axis(values, order, axis=1)
        sources = np.take_along_axis(sources, order, axis=1)
        return items, values, np.where(items >= 0, sources, 0).astype(np.int16)

    def _tier_scores(self, key, users, history, rows):
        """Tier ``key``'s scores for ``rows`` (seen items masked), keeping only the rows it
        can score at all; returns ``(rows, scores, source codes)``."""
        scores, codes = self.child_scores(key, users[rows], history[rows])
        mask_history(scores, history[rows])
        scorable = ~np.isnan(scores).all(axis=1)
        return rows[scorable], scores[scorable], codes[scorable]

    def _combine(self, users, history):
        n_users, n_items = len(users), self.n_items
        length = np.diff(history.indptr) if history is not None else np.zeros(n_users, int)
        keys = list(self.components)
        n_tiers = len(keys)
        out = np.full((n_users, n_items), np.nan, dtype=np.float32)
        src = np.zeros((n_users, n_items), dtype=np.int16)
        tier = np.zeros(n_users, dtype=np.int64)  # tiers already used per user
        for key in keys:
            applies = self._applies(key, length)
            open_rows = np.isnan(out).any(axis=1) if self.fill else tier == 0
            rows = np.flatnonzero(applies & open_rows)
            if len(rows) == 0:
                continue
            rows, scores, codes = self._tier_scores(key, users, history, rows)
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
