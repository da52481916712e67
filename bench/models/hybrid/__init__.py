"""Hybrids: compositions of other models (blend, switching/fallback, cascade)."""

from bench.models.hybrid.blend import WeightedBlend
from bench.models.hybrid.cascade import CascadeHybrid
from bench.models.hybrid.switching import SwitchingHybrid

__all__ = ["CascadeHybrid", "SwitchingHybrid", "WeightedBlend"]
