"""Collaborative filtering models."""

from bench.models.collaborative.als import ImplicitALS

__all__ = ["ImplicitALS"]
