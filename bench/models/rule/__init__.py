"""Rule-based models: popularity variants, the seeded random floor, segment targeting and
business rules over any model."""

from bench.models.rule.business import BusinessRules
from bench.models.rule.popular import (
    DecayedPopularityRecommender,
    PopularityRecommender,
    RatedPopularityRecommender,
    RecentPopularityRecommender,
)
from bench.models.rule.random import RandomRecommender
from bench.models.rule.segment import SegmentRecommender

__all__ = [
    "BusinessRules",
    "DecayedPopularityRecommender",
    "PopularityRecommender",
    "RandomRecommender",
    "RatedPopularityRecommender",
    "RecentPopularityRecommender",
    "SegmentRecommender",
]
