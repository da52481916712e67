"""Collaborative filtering models."""

from bench.models.collaborative.als import ImplicitALS
from bench.models.collaborative.bpr import ImplicitBPR
from bench.models.collaborative.ease import EASE
from bench.models.collaborative.item_knn import ItemKNN
from bench.models.collaborative.surprise import SurpriseRecommender

__all__ = ["EASE", "ImplicitALS", "ImplicitBPR", "ItemKNN", "SurpriseRecommender"]
