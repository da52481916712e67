"""Rule-based models: popularity and seeded random (the floor)."""

from bench.models.rule.popular import PopularityRecommender
from bench.models.rule.random import RandomRecommender

__all__ = ["PopularityRecommender", "RandomRecommender"]
