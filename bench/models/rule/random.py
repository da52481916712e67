"""Uniformly random ranking: the floor every model must clear."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bench import validate
from bench.models.base import Recommender
from bench.shards import partition

#: The 64-bit golden-ratio increment of SplitMix64 (seeds are spread by it).
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix64(x) -> np.ndarray:
    """SplitMix64 finaliser, a bijective, well-mixed hash of uint64 values: the shards'
    :func:`bench.shards.partition.mix64`, keeping the input's shape (a scalar gives a
    0-d array)."""
    return partition.mix64(x).reshape(np.shape(x))


class RandomRecommender(Recommender):
    """Random scores over the training catalogue, seeded and reproducible.

    Each (user, item) score is a hash of ``(seed, user code, item code)``, so a user's
    list depends only on the seed — not on batch size, batch order or which other users
    are scored. Items never seen in training score NaN, like every other model that
    knows only the training catalogue.

    Its cost is what the model is: every item is hashed for every user (a top-k of
    random values needs them all). The hash runs in place on one uint64 block (plus
    one scratch block), with no temporaries per step.

    Args:
        seed: the random seed (``${seed}`` in configs).
    """

    family = "rule"

    def __init__(self, *, seed: int = 0):
        self.seed = seed

    def _fit(self, train, item_features, user_features) -> None:
        validate.seed("seed", self.seed)
        self.item_mask_ = self.known_items()

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        n_items = self.item_mask_.shape[0]
        with np.errstate(over="ignore"):
            base = mix64(np.uint64(self.seed) * GOLDEN + np.uint64(1))
            u = users.astype(np.int64).astype(np.uint64)[:, None] * np.uint64(n_items)
            x = np.empty((len(users), n_items), dtype=np.uint64)
            np.add(u, np.arange(n_items, dtype=np.uint64)[None, :], out=x)
            x ^= base
            partition.mix64_inplace(x, np.empty_like(x))  # mix64(x), no temporaries
        x >>= np.uint64(40)
        scores = x.astype(np.float32)
        del x
        scores /= np.float32(1 << 24)
        scores[:, ~self.item_mask_] = np.nan
        return scores
