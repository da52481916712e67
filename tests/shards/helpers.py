"""Pure-Python references for the shard tests: SplitMix64, keys, weights, exact means."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from bench.shards.weights import THRESHOLDS, WEIGHT_SALT

M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix64_ref(z: int) -> int:
    z &= M64
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & M64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def int_key_ref(user_id: int) -> int:
    return mix64_ref(user_id & M64)


def str_key_ref(user_id: str) -> int:
    h = 0xCBF29CE484222325
    for ch in user_id:
        h = ((h ^ ord(ch)) * 0x100000001B3) & M64
    return mix64_ref(h ^ len(user_id))


def weight_ref(key: int, r: int, seed: int) -> int:
    """w_{r,u} by the module docstring's recipe, one scalar at a time."""
    stream = mix64_ref(key ^ mix64_ref(seed ^ WEIGHT_SALT))
    q, half = divmod(r, 2)
    z = mix64_ref((stream + (q + 1) * GAMMA) & M64)
    x = (z >> (32 * half)) & 0xFFFFFFFF
    return sum(1 for t in THRESHOLDS.tolist() if x >= t)


def exact_sum(values) -> Fraction:
    return sum((Fraction(float(v)) for v in values), Fraction(0))


def exact_mean(values) -> float:
    values = [v for v in np.asarray(values, dtype=float).tolist() if not math.isnan(v)]
    return float(exact_sum(values) / len(values)) if values else math.nan


def same_float(x: float, y: float) -> bool:
    """Bit-identical floats (NaN equals NaN; 0.0 and -0.0 differ)."""
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y and math.copysign(1.0, x) == math.copysign(1.0, y)


def same_summary(s, t) -> bool:
    """Every number of two MergedSummary objects identical, bit for bit."""
    if s.columns.keys() != t.columns.keys() or s.pairs.keys() != t.pairs.keys():
        return False
    rows = [(s.columns[k], t.columns[k]) for k in s.columns]
    rows += [(s.pairs[k], t.pairs[k]) for k in s.pairs]
    return s.n_users == t.n_users and all(
        same_float(float(getattr(x, f)), float(getattr(y, f)))
        for x, y in rows for f in x.__dataclass_fields__)
