"""Recommenders across the personalization spectrum; see :mod:`bench.models.base`."""

from bench.models.base import Recommender, TopK, top_k

__all__ = ["Recommender", "TopK", "top_k"]
