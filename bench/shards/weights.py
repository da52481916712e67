"""Poisson(1) bootstrap weights from a counter-based generator keyed by (seed, user).

The multinomial bootstrap draws ``n`` users with replacement, so every user's count
depends on every other user: it cannot be drawn shard by shard. The Poisson bootstrap
gives each user an independent weight ``w_{r,u} ~ Poisson(1)`` in resample ``r``; if that
weight is a pure function of ``(seed, user key, r)``, any shard can draw its own users'
weights and the resamples are the same however the users are split.

The function (``key`` from :func:`bench.shards.partition.user_keys`, arithmetic modulo
``2**64``, ``mix64`` the SplitMix64 finaliser):

- stream of a user: ``s_u = mix64(key_u ^ mix64(seed ^ 0x504F4953534F4E))`` (the salt is
  "POISSON" in ASCII);
- resamples come in pairs ``q = 0, 1, ...``: ``z = mix64(s_u + (q + 1) * 0x9E3779B97F4A7C15)``
  (SplitMix64's output ``q + 1`` for the state ``s_u``); its low 32 bits drive resample
  ``2q`` and its high 32 bits resample ``2q + 1``;
- a 32-bit uniform ``x`` becomes a weight by inverting the Poisson(1) distribution
  function: ``w = #{k >= 1 : x >= T_k}`` with ``T_k = round(2**32 * P(X <= k - 1))``
  (:data:`THRESHOLDS`; ``T_k`` for ``k = 1..12``; from ``k = 13`` on the rounded value is
  ``2**32`` and no ``x`` reaches it). So ``P(w = k)`` is ``P(X = k)`` to within ``2**-32``,
  and weights are 0 to 12 (``P(X >= 13) = 1.2e-10``).

The inverse is a table lookup on the top 16 bits of ``x`` (:data:`LOOKUP`, 65,536 bytes);
the 8 buckets a threshold falls inside are marked 255 and resolved with
``numpy.searchsorted`` on the full 32 bits (2 in 10,000 draws). Cost: 4 to 6 ns of CPU
per weight on the 2-core machine of ``bench perf shards``.
"""

from __future__ import annotations

import functools
import sys

import numpy as np

from bench import validate
from bench.shards.partition import mix64, mix64_inplace

__all__ = ["LOOKUP", "MAX_WEIGHT", "THRESHOLDS", "fill_weights", "poisson_weights", "stream_keys"]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
#: salt of the weight streams ("POISSON" in ASCII)
WEIGHT_SALT = 0x504F4953534F4E

#: ``T_k = round(2**32 * P(X <= k - 1))``, ``X ~ Poisson(1)``, k = 1..12 (exact values,
#: computed with rational arithmetic; the tests recompute them).
THRESHOLDS = np.array(
    [0x5E2D58D9, 0xBC5AB1B1, 0xEB715E1E, 0xFB239797, 0xFF1025F6, 0xFFD90F3C,
     0xFFFA8B72, 0xFFFF540C, 0xFFFFED1F, 0xFFFFFE21, 0xFFFFFFD5, 0xFFFFFFFC],
    dtype=np.uint32,
)
#: the largest weight (the number of thresholds)
MAX_WEIGHT = int(THRESHOLDS.size)
_AMBIGUOUS = 255
_LITTLE = sys.byteorder == "little"


def _lookup() -> np.ndarray:
    low = np.arange(1 << 16, dtype=np.uint64) << np.uint64(16)
    first = np.searchsorted(THRESHOLDS, low, side="right")
    last = np.searchsorted(THRESHOLDS, low + np.uint64(0xFFFF), side="right")
    table = np.where(first == last, first, _AMBIGUOUS).astype(np.uint8)
    table.flags.writeable = False
    return table


#: weight of each top-16-bit bucket of ``x``, or 255 where a threshold splits the bucket
LOOKUP = _lookup()


def stream_keys(keys: np.ndarray, seed: int) -> np.ndarray:
    """The per-user streams ``s_u`` of the weights (uint64), for user keys and a seed."""
    seed = validate.integer("seed", seed, 0)
    salt = mix64(np.array([seed ^ WEIGHT_SALT], dtype=np.uint64))[0]
    return mix64(np.asarray(keys, dtype=np.uint64) ^ salt)


def fill_weights(streams: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write the weights of the users with ``streams`` into ``out`` (rows = resamples).

    ``out`` has shape ``(n_resamples, len(streams))`` and any real or integer dtype; row
    ``r`` gets the weights of resample ``r``. Returns ``out``.
    """
    pairs = (out.shape[0] + 1) // 2
    z = _steps(pairs)[:, None] + np.asarray(streams, dtype=np.uint64)[None, :]
    mix64_inplace(z, np.empty_like(z))
    for half in (0, 1):
        rows = out[half::2]
        x = z[: rows.shape[0]]
        if _LITTLE:  # the top 16 bits of each 32-bit half, read in place
            w = LOOKUP[x.view(np.uint16).reshape(*x.shape, 4)[..., 2 * half + 1]]
        else:
            w = LOOKUP[(x >> np.uint64(32 * half + 16)) & np.uint64(0xFFFF)]
        tie = w == _AMBIGUOUS
        if tie.any():
            full = (x[tie] >> np.uint64(32 * half)) & np.uint64(0xFFFFFFFF)
            w[tie] = np.searchsorted(THRESHOLDS, full.astype(np.uint32), side="right")
        rows[...] = w
    return out


@functools.lru_cache(maxsize=8)
def _steps(pairs: int) -> np.ndarray:
    """``(q + 1) * gamma`` for ``q < pairs`` (uint64, read-only)."""
    steps = np.arange(1, pairs + 1, dtype=np.uint64) * _GAMMA
    steps.flags.writeable = False
    return steps


def poisson_weights(keys: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """``(n_resamples, n_users)`` uint8 weights of the users with ``keys`` (module doc)."""
    n_resamples = validate.positive_integer("n_resamples", n_resamples)
    streams = stream_keys(keys, seed)
    return fill_weights(streams, np.empty((n_resamples, streams.size), dtype=np.uint8))
