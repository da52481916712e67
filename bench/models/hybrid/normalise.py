"""Per-user score normalisation, so scores from different models can be blended.

Each function maps a ``(users x items)`` float32 block to a comparable scale row by
row, over the finite cells only; NaN (cannot score) stays NaN. Rows without a finite
cell stay all NaN.
"""

from __future__ import annotations

import numpy as np

from bench.models.hybrid.base import row_ranks

METHODS = ("minmax", "zscore", "rank")


def minmax(scores: np.ndarray) -> np.ndarray:
    """``(s - min) / (max - min)`` per row, in [0, 1].

    A row whose finite scores are all equal (``max == min``) maps them to 1: the model
    likes them all equally, and they must not drop out of a blend.
    """
    with np.errstate(all="ignore"):
        lo = np.fmin.reduce(scores, axis=1, keepdims=True)  # NaN-ignoring; NaN if all are
        hi = np.fmax.reduce(scores, axis=1, keepdims=True)
        span = (hi - lo).astype(np.float64)
        flat = ~(span[:, 0] > 0)  # all equal (or nothing finite): every finite cell is 1
        out = np.subtract(scores, lo)  # NaN where the score is NaN, so it stays NaN
        out = np.divide(out, np.where(flat[:, None], 1.0, span), dtype=np.float64)
        if flat.any():
            out[flat] = np.where(np.isnan(scores[flat]), np.nan, 1.0)
    return out.astype(np.float32)


def zscore(scores: np.ndarray) -> np.ndarray:
    """``(s - mean) / std`` per row over finite cells (population std).

    A row with zero spread maps its finite cells to 0.
    """
    finite = ~np.isnan(scores)
    n = finite.sum(axis=1, keepdims=True)
    filled = np.where(finite, scores, 0.0).astype(np.float64)
    with np.errstate(all="ignore"):
        mean = filled.sum(axis=1, keepdims=True) / np.maximum(n, 1)
        var = (np.where(finite, (filled - mean) ** 2, 0.0)).sum(axis=1, keepdims=True)
        std = np.sqrt(var / np.maximum(n, 1))
        out = np.where(std > 0, (filled - mean) / np.where(std > 0, std, 1.0), 0.0)
    return np.where(finite, out, np.nan).astype(np.float32)


def rank(scores: np.ndarray) -> np.ndarray:
    """``1 - r / n`` per row, where ``r`` is the 0-based rank and ``n`` the finite count.

    The best item gets 1, the worst ``1/n``; ties are broken toward the lower item code
    (the order top-k uses), so equal scores get distinct values.
    """
    finite = ~np.isnan(scores)
    n = finite.sum(axis=1, keepdims=True).astype(np.float64)
    r = row_ranks(scores).astype(np.float64)
    with np.errstate(all="ignore"):
        out = 1.0 - r / np.maximum(n, 1.0)
    return np.where(finite, out, np.nan).astype(np.float32)


def normalise(scores: np.ndarray, method: str) -> np.ndarray:
    """Dispatch to :func:`minmax`, :func:`zscore` or :func:`rank`."""
    return {"minmax": minmax, "zscore": zscore, "rank": rank}[method](scores)
