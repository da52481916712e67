"""A loaded dataset: interactions plus side information and what was dropped on the way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from bench.data.features import ItemFeatures
from bench.data.interactions import Interactions


@dataclass(frozen=True, eq=False)
class Dataset:
    """Everything a run reads from one data source.

    Attributes:
        name: the dataset config's name (``movielens_small``, ``ml_100k``, ...).
        interactions: the validated interactions.
        item_features: item attributes aligned to ``interactions.item_ids``, or ``None``.
        user_features: user attributes (e.g. age, gender, occupation) indexed by user id,
            or ``None`` when the source has none.
        implicit: ``True`` when there is no rating (every interaction is relevant).
        drops: rows removed by documented policies, by reason (counts), including those
            recorded on ``interactions``.
        sources: the files (or package tables) the data came from.
    """

    name: str
    interactions: Interactions
    item_features: ItemFeatures | None = None
    user_features: pd.DataFrame | None = None
    implicit: bool = False
    drops: Mapping[str, int] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def sizes(self) -> dict[str, int]:
        """Rows, users and items with at least one row (without hashing the rows)."""
        x = self.interactions
        return {
            "rows": len(x),
            "users": len(x.present_users()),
            "items": int((x.item_counts() > 0).sum()),
        }

    def summary(self) -> dict[str, object]:
        """Row/user/item counts and drops, for logs, reports and the evaluation card."""
        x = self.interactions
        return {
            "name": self.name,
            **self.sizes(),
            "catalogue_items": x.n_items,
            "has_ratings": x.has_ratings,
            "has_timestamps": x.has_timestamps,
            "rating_scale": list(x.rating_scale) if x.rating_scale else None,
            "implicit": self.implicit,
            "drops": dict(self.drops),
            "fingerprint": x.fingerprint(),
            "sources": list(self.sources),
        }
