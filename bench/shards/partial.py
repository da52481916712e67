"""What one shard returns: mergeable statistics of its users, built block by block.

A :class:`ShardPartial` holds, for named per-user columns (metric keys such as
``cf_als/ndcg@10``) and for compared pairs of columns:

- per column: the count of finite values, their exact sum and exact sum of squares
  (:mod:`bench.shards.exact` digits), their minimum and maximum;
- per pair ``(a, b)``, on the users where both are finite: the same for ``d = b - a`` and
  the exact sums of ``a`` and ``b`` (for the two means and the relative difference);
- per bootstrapped column (every column and every pair's ``d``) and resample ``r``: the
  exact weighted sum ``sum_u w_{r,u} v_u`` and the weight total ``sum_u w_{r,u}`` over the
  finite values, with the Poisson weights of :mod:`bench.shards.weights`;
- named integer count arrays (exposure of each item in the top-k lists), added as they
  are.

Every field is an integer or an exact digit vector, or a minimum / maximum, so merging
(:func:`bench.shards.merge.merge_partials`) is addition, min and max, and gives the same
state for any split of the users into shards and any order of users and blocks.

:class:`ShardAccumulator` builds a partial from blocks of users; its memory is bounded by
the block (:data:`BLOCK_ROWS` users at a time, whatever the block a caller passes) plus
the state, ``O(columns x resamples x digits + items)``, and never by the number of users.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from bench import validate
from bench.atomic import atomic_write
from bench.errors import DataError, describe
from bench.shards import exact
from bench.shards.partition import user_keys
from bench.shards.weights import fill_weights, stream_keys

__all__ = ["BLOCK_ROWS", "BOOT_ROWS", "ShardAccumulator", "ShardPartial", "load_partial"]

#: users handled at once by :meth:`ShardAccumulator.add` (bigger blocks are cut)
BLOCK_ROWS = 1 << 16
#: users per weight matrix of the bootstrap (``n_resamples x BOOT_ROWS`` float64)
BOOT_ROWS = 256
#: flushes of float64 bootstrap sums between carry propagations of the int64 digits
_NORMALIZE_EVERY = 256

# Exactness of the float64 bootstrap products: an entry of W @ D is a sum over at most
# BLOCK_ROWS users of weight (<= MAX_WEIGHT) x digit (< 2**33); it must stay below 2**53
# (2**16 * 12 * 2**33 < 2**52.6; the tests check the relation).


def pair_name(a: str, b: str) -> str:
    """The name of the difference column of a pair: ``"b - a"``."""
    return f"{b} - {a}"


@dataclass(frozen=True, eq=False)
class ShardPartial:
    """Mergeable statistics of a set of users (see the module docstring).

    Digit arrays are normalized (:func:`bench.shards.exact.normalize`), so two partials
    of the same users are equal array for array (:meth:`same_as`).

    Attributes:
        columns: per-user column names.
        pairs: compared ``(a, b)`` column pairs (``d = b - a``).
        n_users: users added (rows), whether or not their values were finite.
        count: int64 ``(m,)`` finite values per column, then per pair (both finite).
        sums: int64 ``(m + 3p, N_DIGITS)``: each column; then per pair ``d``, ``a``, ``b``.
        sumsq: int64 ``(m + p, N_DIGITS)`` sums of squares: each column, then each ``d``.
        lowest, highest: float64 ``(m + p,)`` min and max of the finite values (``+inf`` /
            ``-inf`` when none).
        n_resamples, seed: the bootstrap (``n_resamples = 0``: none).
        boot_sums: int64 ``(n_resamples, m + p, N_DIGITS)`` weighted sums.
        boot_weights: int64 ``(n_resamples, m + p)`` weight totals over finite values.
        counts: named int64 arrays that merge by addition (e.g. exposure per item).
    """

    columns: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    n_users: int
    count: np.ndarray
    sums: np.ndarray
    sumsq: np.ndarray
    lowest: np.ndarray
    highest: np.ndarray
    n_resamples: int
    seed: int
    boot_sums: np.ndarray
    boot_weights: np.ndarray
    counts: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def stat_names(self) -> tuple[str, ...]:
        """Names of the rows of ``count``, ``sumsq``, ``lowest``: columns, then ``b - a``."""
        return (*self.columns, *(pair_name(a, b) for a, b in self.pairs))

    def layout(self) -> tuple:
        """What must agree for two partials to merge."""
        return (self.columns, self.pairs, self.n_resamples, self.seed,
                tuple((k, v.shape) for k, v in sorted(self.counts.items())))

    def same_as(self, other: ShardPartial) -> bool:
        """Equal state, array for array (bit for bit)."""
        if self.layout() != other.layout() or self.n_users != other.n_users:
            return False
        pairs = [(getattr(self, f), getattr(other, f)) for f in _ARRAYS]
        pairs += [(self.counts[k], other.counts[k]) for k in self.counts]
        return all(np.array_equal(x, y) for x, y in pairs)

    def nbytes(self) -> int:
        """Bytes of the state's arrays (what a shard sends to the merge)."""
        return sum(getattr(self, f).nbytes for f in _ARRAYS) + sum(
            v.nbytes for v in self.counts.values())

    def save(self, path: str | Path) -> Path:
        """Write the partial as ``.npz`` (no pickle), atomically."""
        arrays = {f: getattr(self, f) for f in _ARRAYS}
        arrays.update({f"counts/{k}": v for k, v in self.counts.items()})
        arrays["columns"] = np.array(self.columns, dtype=str)
        arrays["pairs"] = np.array(self.pairs, dtype=str).reshape(-1, 2)
        arrays["meta"] = np.array([self.n_users, self.n_resamples, self.seed], dtype=np.int64)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

        return atomic_write(path, write)


_ARRAYS = ("count", "sums", "sumsq", "lowest", "highest", "boot_sums", "boot_weights")


def load_partial(path: str | Path) -> ShardPartial:
    """Read a partial written by :meth:`ShardPartial.save`.

    Raises:
        DataError: the file is missing, is not an ``.npz`` archive, or lacks a field.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        n_users, n_resamples, seed = (int(v) for v in arrays.pop("meta"))
        columns = tuple(str(c) for c in arrays.pop("columns"))
        pairs = tuple((str(a), str(b)) for a, b in arrays.pop("pairs"))
        fields = {f: arrays[f] for f in _ARRAYS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(describe(str(path), "a shard partial written by ShardPartial.save "
                                 "(.npz)", f"{type(exc).__name__}: {exc}")) from None
    counts = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("counts/")}
    return ShardPartial(columns=columns, pairs=pairs, n_users=n_users, n_resamples=n_resamples,
                        seed=seed, counts=counts, **fields)


def empty_partial(columns: Sequence[str], pairs: Sequence[tuple[str, str]], n_resamples: int,
                  seed: int, counts: Mapping[str, tuple[int, ...]] | None = None) -> ShardPartial:
    """The partial of no users (the neutral element of the merge)."""
    m, p = len(columns), len(pairs)
    n = exact.N_DIGITS
    return ShardPartial(
        columns=tuple(columns), pairs=tuple(pairs), n_users=0,
        count=np.zeros(m + p, dtype=np.int64),
        sums=np.zeros((m + 3 * p, n), dtype=np.int64),
        sumsq=np.zeros((m + p, n), dtype=np.int64),
        lowest=np.full(m + p, np.inf), highest=np.full(m + p, -np.inf),
        n_resamples=n_resamples, seed=seed,
        boot_sums=np.zeros((n_resamples, m + p, n), dtype=np.int64),
        boot_weights=np.zeros((n_resamples, m + p), dtype=np.int64),
        counts={k: np.zeros(shape, dtype=np.int64) for k, shape in (counts or {}).items()},
    )


class ShardAccumulator:
    """Builds one shard's :class:`ShardPartial` from blocks of users.

    Args:
        columns: names of the per-user columns :meth:`add` receives.
        pairs: ``(a, b)`` pairs of those columns to compare (``d = b - a``).
        n_resamples: Poisson-bootstrap resamples (0: no bootstrap).
        seed: seed of the bootstrap weights (with each user's key).
        counts: name -> shape of integer count arrays :meth:`add` may receive.
    """

    def __init__(self, columns: Sequence[str], *, pairs: Sequence[tuple[str, str]] = (),
                 n_resamples: int = 1000, seed: int = 0,
                 counts: Mapping[str, tuple[int, ...]] | None = None):
        columns = tuple(columns)
        if len(set(columns)) != len(columns) or not columns:
            raise DataError(describe("columns", "distinct column names", list(columns)))
        pairs = tuple((str(a), str(b)) for a, b in pairs)
        unknown = sorted({c for pair in pairs for c in pair} - set(columns))
        if unknown:
            raise DataError(describe("pairs", f"names of columns {list(columns)}", unknown))
        validate.integer("n_resamples", n_resamples, 0)
        self.state = empty_partial(columns, pairs, int(n_resamples),
                                   validate.integer("seed", seed, 0), counts)
        self.pending = 0  # flushes since the last carry propagation

    @property
    def columns(self) -> tuple[str, ...]:
        """The per-user column names :meth:`add` expects."""
        return self.state.columns

    def add(self, ids, values: Mapping[str, np.ndarray],
            counts: Mapping[str, np.ndarray] | None = None) -> None:
        """Add a block of users: their ids and one float64 value per user per column.

        NaN = no value for that user (left out of that column). Infinite values are
        refused. ``counts`` are added to the named count arrays.
        """
        keys = user_keys(ids)
        table = self._table(values, keys.size)
        for start in range(0, keys.size, BLOCK_ROWS):
            stop = min(keys.size, start + BLOCK_ROWS)
            self._add_block(keys[start:stop], table[start:stop])
        for name, arr in (counts or {}).items():
            target = self.state.counts.get(name)
            arr = np.asarray(arr)
            if target is None or arr.shape != target.shape or arr.dtype.kind not in "iub":
                raise DataError(describe(f"counts[{name!r}]", "an integer array of shape "
                                         f"{None if target is None else target.shape}",
                                         f"{arr.dtype} {arr.shape}"))
            target += arr.astype(np.int64)
        self.state = replace(self.state, n_users=self.state.n_users + keys.size)

    def partial(self) -> ShardPartial:
        """The state so far, normalized (the accumulator may keep adding afterwards)."""
        exact.normalize(self.state.boot_sums)
        self.pending = 0
        s = self.state
        return replace(s, **{f: getattr(s, f).copy() for f in _ARRAYS},
                       counts={k: v.copy() for k, v in s.counts.items()})

    # ------------------------------------------------------------------ internals
    def _table(self, values: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """``(n, m + 3p)`` float64: columns, then per pair d, a, b (NaN unless both finite)."""
        s = self.state
        missing = [c for c in s.columns if c not in values]
        if missing:
            raise DataError(describe("values", f"one array per column {list(s.columns)}",
                                     f"no {missing}"))
        cols = [np.asarray(values[c], dtype=np.float64) for c in s.columns]
        for name, col in zip(s.columns, cols, strict=True):
            if col.shape != (n,):
                raise DataError(describe(f"values[{name!r}]", f"{n} values (one per id)",
                                         f"shape {col.shape}"))
            if np.isinf(col).any():
                raise DataError(describe(f"values[{name!r}]", "finite values or NaN",
                                         f"{int(np.isinf(col).sum())} infinite"))
        index = {c: i for i, c in enumerate(s.columns)}
        extra_d, extra_ab = [], []
        for a, b in s.pairs:
            va, vb = cols[index[a]], cols[index[b]]
            both = ~(np.isnan(va) | np.isnan(vb))
            with np.errstate(over="ignore"):
                d = np.where(both, vb - va, np.nan)
            if np.isinf(d).any():
                raise DataError(describe(f"values[{b!r}] - values[{a!r}]", "finite differences",
                                         f"{int(np.isinf(d).sum())} beyond the float range"))
            extra_d.append(d)
            extra_ab += [np.where(both, va, np.nan), np.where(both, vb, np.nan)]
        return np.column_stack([*cols, *extra_d, *extra_ab]) if n else np.empty((0, len(
            cols) + 3 * len(s.pairs)))

    def _add_block(self, keys: np.ndarray, table: np.ndarray) -> None:
        s = self.state
        n_stat = len(s.columns) + len(s.pairs)
        finite = ~np.isnan(table)
        filled = np.where(finite, table, 0.0)
        s.count[:] += finite[:, :n_stat].sum(axis=0)
        for c in range(table.shape[1]):
            s.sums[c] += exact.sum_digits(filled[:, c])
            exact.normalize(s.sums[c])
        for c in range(n_stat):
            s.sumsq[c] += exact.sumsq_digits(filled[:, c])
            exact.normalize(s.sumsq[c])
            if finite[:, c].any():
                s.lowest[c] = min(s.lowest[c], filled[finite[:, c], c].min())
                s.highest[c] = max(s.highest[c], filled[finite[:, c], c].max())
        if s.n_resamples and keys.size:
            self._bootstrap(keys, filled[:, :n_stat], finite[:, :n_stat])

    def _bootstrap(self, keys: np.ndarray, filled: np.ndarray, finite: np.ndarray) -> None:
        """Add ``W @ digits`` for every resample: exact float64 products, int64 digits."""
        s = self.state
        n, n_stat = filled.shape
        parts, places = [np.ones((n, 1))], []  # column 0: every user's weight
        width = 1
        for c in range(n_stat):
            j0, digits = exact.dense_digits(filled[:, c])
            places.append((c, j0, width, digits.shape[1]))
            parts.append(digits)
            width += digits.shape[1]
        partial_cols = [c for c in range(n_stat) if not finite[:, c].all()]
        parts += [finite[:, c : c + 1].astype(np.float64) for c in partial_cols]
        dense = np.concatenate(parts, axis=1)
        streams = stream_keys(keys, s.seed)
        weights = np.empty((s.n_resamples, min(n, BOOT_ROWS)))
        total = np.zeros((s.n_resamples, dense.shape[1]))
        for start in range(0, n, BOOT_ROWS):
            stop = min(n, start + BOOT_ROWS)
            w = fill_weights(streams[start:stop], weights[:, : stop - start])
            total += w @ dense[start:stop]
        exact_total = total.astype(np.int64)  # integers below 2**53: exact
        s.boot_weights[:] += exact_total[:, :1]
        for k, c in enumerate(partial_cols):  # columns with missing values: own totals
            s.boot_weights[:, c] += exact_total[:, width + k] - exact_total[:, 0]
        for c, j0, offset, size in places:
            s.boot_sums[:, c, j0 : j0 + size] += exact_total[:, offset : offset + size]
        self.pending += 1
        if self.pending >= _NORMALIZE_EVERY:
            exact.normalize(s.boot_sums)
            self.pending = 0
