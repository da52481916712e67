"""Synthetic interactions with planted structure a good model should recover.

The generative story, fully vectorised (no per-user Python loop):

1. Every item gets one primary genre and, with probability ``SECOND_GENRE_P``, a second.
2. Item popularity follows a Zipf-like law: the item of popularity rank ``r`` (a random
   permutation of the items) has weight ``r ** -popularity_exponent``.
3. Users belong to one of ``n_segments`` segments; each segment prefers a subset of
   the genres (disjoint subsets when there are enough genres). An item is *in taste*
   for a segment when one of its genres is preferred.
4. A segment samples items with probability proportional to
   ``popularity * (TASTE_BOOST if in taste else 1)``.
5. User activity is log-normal; every user has at least one interaction and no user
   more than ``n_items``. Each user's items are drawn **without replacement** from the
   segment's distribution (successive sampling: batched draws, first occurrences kept,
   with an exact Gumbel-top-k fallback for the few users that need it).
6. Timestamps increase strictly within a user, inside a random window of ``days``.
7. Ratings on 1-5: about 4 for in-taste items, about 2.5 otherwise, plus user, item and
   noise terms.

The same arguments give bitwise the same data (one ``numpy.random.Generator`` seeded
with ``seed`` drives every draw, in a fixed order). The planted truth is returned on the
:class:`SyntheticDataset`: ``user_features["segment"]``, ``segment_genres`` and
``item_popularity``; item genres are in ``item_features``.

With ``cache_dir`` set and at least :data:`CACHE_MIN_ROWS` interactions, the validated
rows are kept in that folder (:mod:`bench.data.cache`, entry keyed by every argument,
the constants that shape the draws and numpy's version) and a later call with the same
arguments reads them back instead of sampling, after checking their fingerprint. Steps
1-5's cheap part (genres, segments, popularity, activity) always runs: the planted truth
comes from the generator either way, and the rows read back must match its activity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench import validate
from bench.data import cache
from bench.data.dataset import Dataset
from bench.data.features import ItemFeatures
from bench.data.interactions import ITEM, RATING, TIMESTAMP, USER, Interactions
from bench.data.loaders import dataset_loader
from bench.errors import ParameterError

TASTE_BOOST = 6.0
"""How much more likely a segment is to pick an in-taste item than an equally popular other."""
SECOND_GENRE_P = 0.35
OVERSAMPLE = 1.1
SAMPLING_ROUNDS = 6
HEAVY_SHARE = 8
"""Users with at least ``n_items / HEAVY_SHARE`` interactions are sampled exactly."""
FALLBACK_CELLS = 4_000_000
"""Upper bound on users x items cells materialised at once by the exact fallback."""
SECONDS_PER_DAY = 86_400
GUIDE_ITEM_CELLS = 16
"""Grid cells per item of the sampling guide table (more cells, fewer steps per draw)."""
GUIDE_MAX_CELLS = 1 << 23
"""Upper bound on the guide table's cells over all segments (8 bytes each)."""
GUIDE_MIN_CELLS = 1 << 10
ROUND_DRAWS = 4_000_000
"""Draws handled at once in a sampling round (memory: about 100 bytes each)."""
GUIDE_STEPS = 8
KERNEL_MIN_ROWS = 1_000_000
"""From this many interactions the sampling rounds use the compiled kernels of
:mod:`bench.data.compiled` (the same pairs, bit for bit; below it numpy is fast enough,
and small data never imports numba nor compiles)."""
CACHE_MIN_ROWS = 1_000_000
"""``cache_dir`` applies from this many interactions (smaller data is made in well under
a second: keeping it would only fill the disk)."""
CACHE_KIND = "synthetic"


@dataclass(frozen=True, eq=False)
class SyntheticDataset(Dataset):
    """A :class:`Dataset` that also carries the structure it was generated from.

    Attributes:
        segment_genres: segments x genres table, 1 where the segment prefers the genre.
        item_popularity: planted popularity weight of every item code (sums to 1).
        in_taste: segments x items boolean array, ``True`` where the item is in taste.
    """

    segment_genres: pd.DataFrame | None = None
    item_popularity: np.ndarray | None = None
    in_taste: np.ndarray | None = None


@dataset_loader
def generate_synthetic(
    *,
    n_users: int = 1000,
    n_items: int = 500,
    n_interactions: int = 20000,
    n_segments: int = 4,
    n_genres: int = 8,
    popularity_exponent: float = 1.0,
    seed: int = 0,
    start: str = "2020-01-01",
    days: int = 365,
    implicit: bool = False,
    cache_dir: str | None = None,
) -> SyntheticDataset:
    """Generate a dataset with planted user segments, genre tastes and popular items.

    Args:
        n_users, n_items: sizes of the vocabularies (every user has >= 1 interaction).
        n_interactions: exact number of (user, item) rows, all pairs distinct.
        n_segments: number of user segments; ``n_genres``: number of item genres.
        popularity_exponent: Zipf exponent of item popularity (0 = uniform).
        seed: seed of the single random generator; same seed, same bits.
        start: first possible timestamp (a date, UTC); ``days``: length of the period.
        implicit: leave out ratings (every interaction is relevant).
        cache_dir: a folder keeping the rows of data with at least
            :data:`CACHE_MIN_ROWS` interactions for later calls (see the module
            docstring); ``None``: no cache. Never changes the rows returned.

    Raises:
        ParameterError: a size or range that cannot be honoured, naming the argument.
    """
    _check_args(n_users, n_items, n_interactions, n_segments, n_genres,
                popularity_exponent, days, seed)  # fmt: skip
    try:
        t0 = int(pd.Timestamp(start, tz="UTC").timestamp())
    except (ValueError, TypeError):
        raise ParameterError("start", "a date", start) from None
    if t0 < 0:
        raise ParameterError("start", "a date after 1970", start)
    rng = np.random.default_rng(seed)

    item_genres = _item_genres(rng, n_items, n_genres)
    seg_pref = _segment_preferences(rng, n_segments, n_genres)
    in_taste = (seg_pref.astype(np.int32) @ item_genres.T.astype(np.int32)) > 0
    ranks = rng.permutation(n_items).astype(np.float64) + 1.0
    popularity = ranks**-popularity_exponent
    popularity /= popularity.sum()
    weights = popularity[None, :] * np.where(in_taste, TASTE_BOOST, 1.0)
    weights /= weights.sum(axis=1, keepdims=True)

    user_segment = rng.integers(0, n_segments, n_users)
    counts = _activity(rng, n_users, n_items, n_interactions)

    user_vocab = pd.Index(np.arange(n_users, dtype=np.int64), name=USER)
    item_vocab = pd.Index(np.arange(n_items, dtype=np.int64), name=ITEM)
    source = (
        f"synthetic(seed={seed}, n_users={n_users}, n_items={n_items}, "
        f"n_interactions={n_interactions})"
    )
    store = _cache_store(cache_dir, n_interactions)
    key = cache_params(n_users=n_users, n_items=n_items, n_interactions=n_interactions,
                       n_segments=n_segments, n_genres=n_genres,
                       popularity_exponent=popularity_exponent, seed=seed, start=start,
                       days=days, implicit=implicit)
    inter = None
    if store is not None:
        inter = cache.read_rows(store, CACHE_KIND, key, user_ids=user_vocab,
                                item_ids=item_vocab, source=source,
                                rating_scale=None if implicit else (1.0, 5.0))
        if inter is not None and not np.array_equal(inter.user_counts(), counts):
            inter = None  # not the rows this generator's activity draws: make them again
    if inter is None:
        inter = _rows(rng, weights, in_taste, user_segment, counts, t0, days, implicit,
                      source, user_vocab, item_vocab)
        if store is not None:
            cache.write_rows(store, CACHE_KIND, key, inter)
    genre_names = tuple(f"genre_{g}" for g in range(n_genres))
    features = ItemFeatures(
        item_ids=item_vocab,
        titles=np.asarray([f"item {i}" for i in range(n_items)], dtype=object),
        years=np.full(n_items, np.nan),
        genres=sp.csr_matrix(item_genres.astype(np.float32)),
        genre_names=genre_names,
    )
    user_features = pd.DataFrame(
        {"segment": user_segment.astype(np.int64), "n_interactions": counts.astype(np.int64)},
        index=user_vocab,
    )
    segment_genres = pd.DataFrame(
        seg_pref.astype(np.int8),
        index=pd.RangeIndex(n_segments, name="segment"),
        columns=list(genre_names),
    )
    return SyntheticDataset(
        name="synthetic",
        interactions=inter,
        item_features=features,
        user_features=user_features,
        implicit=implicit,
        drops=dict(inter.drops),
        sources=(source,),
        segment_genres=segment_genres,
        item_popularity=popularity,
        in_taste=in_taste,
    )


def _rows(rng, weights, in_taste, user_segment, counts, t0, days, implicit, source,
          user_vocab, item_vocab) -> Interactions:
    """Steps 5-7: the sampled pairs, their timestamps and ratings, validated."""
    n_users, n_items = len(user_vocab), len(item_vocab)
    users, items = _sample_without_replacement(rng, weights, user_segment, counts)

    order = np.argsort(users, kind="stable")
    users, items = users[order], items[order]
    timestamps = _timestamps(rng, users, counts, t0, days * SECONDS_PER_DAY)

    columns: dict[str, np.ndarray] = {USER: users, ITEM: items}
    if not implicit:
        user_bias = rng.normal(0.0, 0.35, n_users)
        item_bias = rng.normal(0.0, 0.35, n_items)
        # 2.5 + 1.5 * taste + user_bias + item_bias + noise, summed in place (same order,
        # same bits) to keep one rows-long temporary instead of five
        raw = rng.normal(0.0, 0.6, len(users))
        raw = (
            np.add(
                np.add(2.5 + 1.5 * in_taste[user_segment[users], items], user_bias[users]),
                item_bias[items],
            )
            + raw
        )
        columns[RATING] = np.clip(np.rint(raw, out=raw), 1.0, 5.0, out=raw)
    columns[TIMESTAMP] = timestamps
    return Interactions.from_frame(
        pd.DataFrame(columns, copy=False),  # the arrays are ours: no copy
        source=source,
        rating_scale=None if implicit else (1.0, 5.0),
        duplicates="error",
        user_ids=user_vocab,
        item_ids=item_vocab,
    )


def cache_params(**arguments) -> dict:
    """What a cache entry of synthetic rows is keyed by: every argument of
    :func:`generate_synthetic` that shapes the rows (all but ``cache_dir``), the module's
    constants that shape the draws, and numpy's version (its streams may change)."""
    out = dict(arguments)
    out["popularity_exponent"] = float(out["popularity_exponent"])
    out["constants"] = {
        "TASTE_BOOST": TASTE_BOOST, "SECOND_GENRE_P": SECOND_GENRE_P, "OVERSAMPLE": OVERSAMPLE,
        "SAMPLING_ROUNDS": SAMPLING_ROUNDS, "HEAVY_SHARE": HEAVY_SHARE,
        "FALLBACK_CELLS": FALLBACK_CELLS, "SECONDS_PER_DAY": SECONDS_PER_DAY,
    }
    out["numpy"] = np.__version__
    return out


def cache_entry(cache_dir: str, **arguments) -> Path | None:
    """The cache folder :func:`generate_synthetic` uses for ``arguments`` (its keyword
    arguments but ``cache_dir``, defaults filled in), or ``None`` when it keeps none."""
    import inspect

    bound = inspect.signature(generate_synthetic).bind(**arguments, cache_dir=cache_dir)
    bound.apply_defaults()
    args = dict(bound.arguments)
    store = _cache_store(args.pop("cache_dir"), args["n_interactions"])
    return None if store is None else cache.entry_folder(store, CACHE_KIND,
                                                         cache_params(**args))


def _cache_store(cache_dir: object, n_interactions: int) -> Path | None:
    if cache_dir is None:
        return None
    if isinstance(cache_dir, bool) or not isinstance(cache_dir, str) or not cache_dir \
            or "\x00" in cache_dir:
        raise ParameterError("cache_dir", "a folder path or null", cache_dir)
    return Path(cache_dir).expanduser() if n_interactions >= CACHE_MIN_ROWS else None


# ---------------------------------------------------------------------- checks
def _check_args(n_users, n_items, n_interactions, n_segments, n_genres, exponent, days, seed):
    for name, value in (
        ("n_users", n_users),
        ("n_items", n_items),
        ("n_interactions", n_interactions),
        ("n_segments", n_segments),
        ("n_genres", n_genres),
        ("days", days),
    ):
        validate.positive_integer(name, value)
    validate.integer("seed", seed, 0)
    validate.number("popularity_exponent", exponent, minimum=0,
                    expected="a number in [0, 10)")
    if not exponent < 10:
        raise ParameterError("popularity_exponent", "a number in [0, 10)", exponent)
    if n_segments > n_users:
        raise ParameterError("n_segments", f"at most n_users ({n_users})", n_segments)
    if not n_users <= n_interactions <= n_users * n_items:
        raise ParameterError(
            "n_interactions",
            f"between n_users ({n_users}; every user interacts once) and n_users * n_items "
            f"({n_users * n_items}; pairs are distinct)",
            n_interactions,
        )


# ---------------------------------------------------------------------- structure
def _item_genres(rng: np.random.Generator, n_items: int, n_genres: int) -> np.ndarray:
    """Boolean items x genres: one primary genre, sometimes a second."""
    out = np.zeros((n_items, n_genres), dtype=bool)
    rows = np.arange(n_items)
    out[rows, rng.integers(0, n_genres, n_items)] = True
    second = rng.random(n_items) < SECOND_GENRE_P
    out[rows[second], rng.integers(0, n_genres, int(second.sum()))] = True
    return out


def _segment_preferences(rng: np.random.Generator, n_segments: int, n_genres: int) -> np.ndarray:
    """Boolean segments x genres; disjoint blocks of a genre permutation when possible."""
    per = max(1, n_genres // n_segments)
    perm = rng.permutation(n_genres)
    pref = np.zeros((n_segments, n_genres), dtype=bool)
    cols = (np.arange(n_segments)[:, None] * per + np.arange(per)[None, :]) % n_genres
    pref[np.arange(n_segments)[:, None], perm[cols]] = True
    return pref


def _activity(rng: np.random.Generator, n_users: int, n_items: int, total: int) -> np.ndarray:
    """Interactions per user: log-normal shares, at least 1, at most ``n_items``, exact sum."""
    share = rng.lognormal(0.0, 1.0, n_users)
    counts = 1 + rng.multinomial(total - n_users, share / share.sum())
    while True:
        excess = np.maximum(counts - n_items, 0)
        extra = int(excess.sum())
        if extra == 0:
            return counts.astype(np.int64)
        counts -= excess
        room = (n_items - counts).astype(np.float64)
        counts += rng.multinomial(extra, room / room.sum())


# ---------------------------------------------------------------------- sampling
def _sample_without_replacement(
    rng: np.random.Generator,
    weights: np.ndarray,
    user_segment: np.ndarray,
    counts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``counts[u]`` distinct items for every user from its segment's weights.

    Successive sampling done in batches: each round draws (with replacement) a few more
    candidates than each user still needs, drops pairs already chosen or repeated within
    the round (keeping the first draw), and accepts each user's first new items in draw
    order. That is exactly sampling without replacement. Users still short after
    ``SAMPLING_ROUNDS`` rounds (those needing most of the catalogue) are finished with
    an exact Gumbel-top-k over their whole row, in bounded chunks.
    """
    n_segments, n_items = weights.shape
    cdf = np.cumsum(weights, axis=1)
    cdf[:, -1] = 1.0
    cdf += np.arange(n_segments, dtype=np.float64)[:, None]
    flat_cdf = cdf.ravel()
    guide = CdfGuide(flat_cdf, n_segments)

    # Users needing a large share of the catalogue go straight to the exact path;
    # batched draws would mostly hit items they already have.
    heavy = counts * HEAVY_SHARE >= n_items
    need = np.where(heavy, 0, counts).astype(np.int64)
    rate = np.full(need.size, 1.0 / OVERSAMPLE)  # expected share of fresh draws per user
    compiled = _compiled() if int(counts.sum()) >= KERNEL_MIN_ROWS else None
    scratch = {"marks": np.zeros(n_items, dtype=np.int64), "stamp": 1} if compiled else None
    got_users: list[np.ndarray] = []
    got_items: list[np.ndarray] = []
    taken_keys = np.empty(0, dtype=np.int64)  # sorted keys user * n_items + item
    for _ in range(SAMPLING_ROUNDS):
        active = np.flatnonzero(need > 0)
        if active.size == 0:
            break
        n_draw = np.ceil(need[active] / rate[active]).astype(np.int64) + 2
        # the round in chunks of whole users (bounded memory); the chunks consume the
        # generator's stream in the same order one draw for the whole round would
        ends = np.cumsum(n_draw)
        cuts = np.searchsorted(ends, np.arange(ROUND_DRAWS, int(ends[-1]), ROUND_DRAWS))
        new_keys = []
        for lo, hi in zip(np.r_[0, cuts + 1], np.r_[cuts + 1, active.size], strict=True):
            if lo >= hi:
                continue
            users, draws = active[lo:hi], n_draw[lo:hi]
            au, ai, n_fresh = _sampling_round(
                rng, guide, users, draws, user_segment, need, n_items, taken_keys, scratch
            )
            got_users.append(au)
            got_items.append(ai)
            rate[users] = np.clip(n_fresh / draws, 0.05, 1.0) / OVERSAMPLE
            new_keys.append(np.sort(au * n_items + ai))
        for au in got_users[len(got_users) - len(new_keys) :]:
            need -= np.bincount(au, minlength=need.size)
        if compiled:  # the chunks cover ascending users: their keys are one sorted run
            taken_keys = compiled.merge_sorted(taken_keys, np.concatenate(new_keys))
        else:  # sorted runs: the stable sort (timsort) merges them in linear time
            taken_keys = np.sort(np.concatenate([taken_keys, *new_keys]), kind="stable")

    short = np.flatnonzero((need > 0) | heavy)
    if short.size:
        remaining = np.where(heavy, counts, need)[short]
        fu, fi = _gumbel_fill(rng, weights, user_segment, short, remaining, taken_keys)
        got_users.append(fu)
        got_items.append(fi)
    return (
        np.concatenate(got_users).astype(np.int64),
        np.concatenate(got_items).astype(np.int64),
    )


class CdfGuide:
    """``np.searchsorted(cdf, q, side="right")`` for many queries, via a guide table.

    ``cdf`` is the segments' CDFs laid end to end (segment ``s`` spans ``(s, s + 1]``).
    A table over a grid of ``1 / cells`` steps (``cells`` a power of two, so ``q * cells``
    and the grid points are exact) gives for every query a start position at or before
    the answer; a few vectorised steps forward reach it (each grid cell spans only a
    handful of items). Queries still short after ``GUIDE_STEPS`` steps (items far
    lighter than a cell) finish with a binary search. Exactly ``searchsorted``'s
    result, several times faster: the binary search over the whole CDF misses the
    cache at every level.
    """

    def __init__(self, cdf: np.ndarray, n_segments: int):
        n_items = cdf.size // n_segments
        # a power of two: q * cells and the grid points k / cells are exact floats
        cells = min(GUIDE_ITEM_CELLS * n_items, GUIDE_MAX_CELLS // n_segments)
        self.cdf, self.cells, self.table = cdf, 1 << (max(cells, 1).bit_length() - 1), None
        if self.cells >= GUIDE_MIN_CELLS:
            grid = np.arange(n_segments * self.cells + 1, dtype=np.float64) / self.cells
            self.table = np.searchsorted(cdf, grid, side="right")

    def search(self, q: np.ndarray) -> np.ndarray:
        cdf, last = self.cdf, self.cdf.size - 1
        if self.table is None:  # too many segments for a table: plain binary search
            return np.searchsorted(cdf, q, side="right")
        # grid[b] <= q, so the first cdf entry above grid[b] is at or before the answer
        pos = self.table[(q * self.cells).astype(np.int64)]
        idx = np.flatnonzero(cdf[np.minimum(pos, last)] <= q)  # not there yet (a few)
        for _ in range(GUIDE_STEPS):
            idx = idx[pos[idx] <= last]
            if idx.size == 0:
                return pos
            pos[idx] += 1
            idx = idx[cdf[np.minimum(pos[idx], last)] <= q[idx]]
        pos[idx] = np.searchsorted(cdf, q[idx], side="right")
        return pos


def _compiled():
    """:mod:`bench.data.compiled`, or ``None`` when numba is not importable."""
    try:
        from bench.data import compiled
    except ImportError:  # pragma: no cover - numba is a core dependency
        return None
    return compiled


def _sampling_round(rng, guide, users, n_draw, user_segment, need, n_items, taken_keys,
                    scratch=None):
    """One round for ``users`` (ascending): their accepted (user, item) pairs in draw order.

    Draws ``n_draw[j]`` candidates for ``users[j]``, keeps each pair's first draw that
    is not in ``taken_keys`` (sorted keys ``user * n_items + item`` of earlier rounds)
    and accepts each user's first ``need[user]`` of them. Also returns each user's
    number of fresh draws. With ``scratch`` (the compiled kernel's marker array and
    next stamp) the kernel decides, user by user, what the sorts below decide.
    """
    du = np.repeat(users, n_draw)
    seg = user_segment[du]
    pos = guide.search(seg + rng.random(du.size))
    di = np.minimum(pos - seg * n_items, n_items - 1)
    del pos, seg
    if scratch is not None:
        from bench.data.compiled import first_fresh_draws

        accept = np.zeros(du.size, dtype=bool)
        n_fresh = np.empty(users.size, dtype=np.int64)
        scratch["stamp"] = first_fresh_draws(
            users, n_draw, di, need, taken_keys, n_items, scratch["marks"], scratch["stamp"],
            accept, n_fresh,
        )
        return du[accept], di[accept], n_fresh
    keys = du * n_items + di
    # first occurrence within the round (stable sort), and not taken in earlier rounds
    by_key = np.argsort(keys, kind="stable")
    sorted_keys = keys[by_key]
    del keys
    first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    if taken_keys.size:  # sorted queries keep the binary searches cache-friendly
        first &= ~_isin_sorted(sorted_keys, taken_keys)
    del sorted_keys
    fresh = np.empty(du.size, dtype=bool)
    fresh[by_key] = first
    del by_key, first
    idx = np.flatnonzero(fresh)
    ku = du[idx]
    # rank among this user's fresh draws, in draw order (du is grouped by user)
    starts = np.flatnonzero(np.r_[True, ku[1:] != ku[:-1]])
    rank = np.arange(idx.size) - np.repeat(starts, np.diff(np.r_[starts, idx.size]))
    accept = idx[rank < need[ku]]
    n_fresh = np.diff(np.r_[np.searchsorted(ku, users), ku.size])
    return du[accept], di[accept], n_fresh


def _isin_sorted(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(values.shape, dtype=bool)
    pos = np.searchsorted(sorted_keys, values)
    pos[pos == sorted_keys.size] = 0
    return sorted_keys[pos] == values


def _gumbel_fill(rng, weights, user_segment, users, need, taken_keys):
    """Exact weighted sampling without replacement for a few users (Gumbel top-k)."""
    n_items = weights.shape[1]
    log_w = np.log(weights)
    chunk = max(1, FALLBACK_CELLS // n_items)
    out_u, out_i = [], []
    for lo in range(0, users.size, chunk):
        cu, cn = users[lo : lo + chunk], need[lo : lo + chunk]
        keys = log_w[user_segment[cu]] + rng.gumbel(size=(cu.size, n_items))
        taken = _isin_sorted(
            (cu[:, None] * n_items + np.arange(n_items)[None, :]).ravel(), taken_keys
        ).reshape(cu.size, n_items)
        keys[taken] = -np.inf
        k = int(cn.max())
        if k < n_items:
            top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(n_items), keys.shape)
        within = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
        order = np.take_along_axis(top, within, axis=1)
        pick = np.arange(order.shape[1])[None, :] < cn[:, None]
        out_u.append(np.broadcast_to(cu[:, None], order.shape)[pick])
        out_i.append(order[pick])
    return np.concatenate(out_u), np.concatenate(out_i)


# ---------------------------------------------------------------------- time
def _timestamps(
    rng: np.random.Generator, users: np.ndarray, counts: np.ndarray, t0: int, span: int
) -> np.ndarray:
    """Strictly increasing int64 seconds within each user (rows grouped by user)."""
    n_users = counts.size
    starts = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    first = rng.random(n_users) * 0.7 * span
    window = np.maximum((span - first) * rng.uniform(0.1, 1.0, n_users), counts + 1)
    gaps = rng.exponential(1.0, users.size)
    total = np.bincount(users, weights=gaps, minlength=n_users) + rng.exponential(1.0, n_users)
    csum = np.cumsum(gaps)
    before = np.concatenate(([0.0], csum))[starts[:-1]]
    frac = (csum - before[users]) / total[users]  # in (0, 1), increasing within a user
    rank = np.arange(users.size, dtype=np.int64) - starts[users]
    offset = np.floor(frac * (window[users] - counts[users])).astype(np.int64)
    return t0 + np.floor(first).astype(np.int64)[users] + offset + rank
