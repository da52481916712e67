"""Content-based models: user profiles and item-to-item kNN over item feature vectors."""

from bench.models.content.knn import ContentItemKNN, content_neighbours
from bench.models.content.profile import ContentProfile
from bench.models.content.vectors import (
    BLOCKS,
    DEFAULT_WEIGHTS,
    ItemVectors,
    build_item_vectors,
    tfidf,
    tokenize,
)

__all__ = [
    "BLOCKS",
    "DEFAULT_WEIGHTS",
    "ContentItemKNN",
    "ContentProfile",
    "ItemVectors",
    "build_item_vectors",
    "content_neighbours",
    "tfidf",
    "tokenize",
]
