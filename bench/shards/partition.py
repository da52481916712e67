"""Stable 64-bit user keys, and which shard a user belongs to.

Every user id becomes a 64-bit *key* that depends on the id alone -- not on Python's
per-process salted ``hash``, not on the order users arrive in, not on the machine -- so a
user lands in the same shard and draws the same bootstrap weights wherever it is
evaluated.

- ``mix64(z)`` is the SplitMix64 finaliser (Steele, Lea and Flood, 2014): ``z ^= z >> 30;
  z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31``, modulo
  ``2**64``. It is a bijection of the 64-bit integers that spreads every input bit over
  the whole word.
- Integer ids: ``key = mix64(id mod 2**64)`` (negative ids in two's complement).
- String ids: 64-bit FNV-1a over the Unicode code points (offset ``0xCBF29CE484222325``,
  prime ``0x100000001B3``, one code point per step), then ``key = mix64(h ^ length)``. The
  loop runs over character positions, each step vectorised over all users.
- ``shard = mix64(key ^ 0x5348415244) mod n_shards``: the extra mix decorrelates the
  shard from the bootstrap weights, which are drawn from ``key`` with another salt
  (:mod:`bench.shards.weights`).

The same key for the same id, bit for bit, on every platform numpy runs on.
"""

from __future__ import annotations

import numpy as np

from bench import validate
from bench.errors import DataError

__all__ = ["mix64", "shard_of", "split_by_shard", "user_keys"]

_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
#: salt of the shard assignment ("SHARD" in ASCII)
SHARD_SALT = np.uint64(0x5348415244)


def mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a uint64 array (a new array; arithmetic modulo 2**64)."""
    z = np.array(z, dtype=np.uint64, copy=True, ndmin=1)
    mix64_inplace(z, np.empty_like(z))
    return z


def mix64_inplace(z: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """:func:`mix64` in place on ``z`` (uint64), using ``scratch`` (same shape) as room."""
    np.right_shift(z, np.uint64(30), out=scratch)
    z ^= scratch
    z *= _C1
    np.right_shift(z, np.uint64(27), out=scratch)
    z ^= scratch
    z *= _C2
    np.right_shift(z, np.uint64(31), out=scratch)
    z ^= scratch
    return z


def user_keys(ids) -> np.ndarray:
    """The stable uint64 key of each user id (integers or strings; see the module doc).

    Raises:
        DataError: ids that are neither all integers nor all strings (floats, mixed
            types, missing values).
    """
    arr = np.asarray(ids)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype.kind in "iu":
        return mix64(arr.astype(np.int64, copy=False).view(np.uint64)
                     if arr.dtype.kind == "i" else arr.astype(np.uint64))
    if arr.dtype.kind == "O" and arr.size and all(isinstance(v, str) for v in arr.tolist()):
        arr = arr.astype(str)
    if arr.dtype.kind == "U":
        return _string_keys(arr)
    if arr.dtype.kind == "O" and arr.size == 0:
        return np.empty(0, dtype=np.uint64)
    raise DataError(
        f"user_ids: expected integer or string ids (one type), got an array of dtype "
        f"{arr.dtype}; convert the ids to int64 or to str first"
    )


def _string_keys(arr: np.ndarray) -> np.ndarray:
    width = arr.dtype.itemsize // 4
    points = np.ascontiguousarray(arr).view(np.uint32).reshape(arr.size, width)
    lengths = np.char.str_len(arr).astype(np.uint64) if arr.size else np.empty(0, np.uint64)
    h = np.full(arr.size, _FNV_OFFSET, dtype=np.uint64)
    for c in range(width):
        inside = lengths > c
        stepped = (h ^ points[:, c].astype(np.uint64)) * _FNV_PRIME
        h = np.where(inside, stepped, h)
    return mix64(h ^ lengths)


def shard_of(keys: np.ndarray, n_shards: int) -> np.ndarray:
    """The shard (int64 in ``[0, n_shards)``) of each key from :func:`user_keys`."""
    n = validate.positive_integer("n_shards", n_shards)
    salted = np.asarray(keys, dtype=np.uint64) ^ SHARD_SALT
    return (mix64(salted) % np.uint64(n)).astype(np.int64)


def split_by_shard(keys: np.ndarray, n_shards: int) -> list[np.ndarray]:
    """Row indices of each shard's users, ascending within each shard (one per shard)."""
    shard = shard_of(keys, n_shards)
    order = np.argsort(shard, kind="stable")
    bounds = np.searchsorted(shard[order], np.arange(n_shards + 1))
    return [order[bounds[s] : bounds[s + 1]] for s in range(n_shards)]
