"""Batched scoring for the Surprise algorithms whose estimates are not a factor product.

:func:`score_batch` returns, for a batch of users and every item of a fitted algorithm's
trainset, what ``algo.estimate(u, i)`` returns (the unclipped estimate; for the k-NN
algorithms the first element of ``(est, details)``), with NaN exactly where Surprise
raises ``PredictionImpossible``. Ids are Surprise *inner* ids; users outside the
trainset are the caller's business (they are rejected here).

Supported: ``KNNBasic``, ``KNNWithMeans``, ``KNNBaseline`` (user- and item-based, any
similarity; the matrix is ``algo.sim``), ``SlopeOne`` and ``CoClustering``. The
formulas are those of ``surprise/prediction_algorithms/knns.py``, ``slope_one.pyx`` and
``co_clustering.pyx`` (scikit-surprise 1.1.5):

k-NN. With ``x`` the user (user-based) or the item (item-based) and ``y`` the other
side, Surprise takes the entries ``(x2, r)`` of ``y``'s rating list (the raters of
item ``i``, or the items user ``u`` rated), keeps the ``k`` with the largest
``sim[x, x2]`` (``heapq.nlargest``), then aggregates over those with ``sim > 0``::

    KNNBasic      est = sum(sim * r) / sum(sim)                     (impossible if actual_k < min_k)
    KNNWithMeans  est = mean[x] + sum(sim * (r - mean[x2])) / sum(sim)
    KNNBaseline   est = mu + bu[u] + bi[i] + sum(sim * (r - (mu + bx[x2] + by[y]))) / sum(sim)

For the last two the correction is dropped (set to 0) when ``actual_k < min_k`` or no
neighbour has a positive similarity; they are never impossible for known pairs.
``KNNBasic`` with ``min_k <= 0`` and no positive neighbour makes Surprise divide 0 by 0
(``ZeroDivisionError``, not ``PredictionImpossible``); we return NaN there.

Vectorisation. Taking the ``k`` largest and then keeping ``sim > 0`` equals taking the
``k`` largest among the positive similarities, so a rating list no longer than ``k``
needs no selection at all: those (user, item) cells are sparse-dense matrix products.
Longer lists are padded into blocks of similar lengths and the top ``k`` is found with
``np.partition`` along the list axis, one block of lists at a time (a loop over blocks
of items, or of users for item-based k-NN; never over (user, item) pairs). Each block
holds at most about ``_BLOCK_ELEMENTS`` similarities, so memory is bounded by the batch.

Ties. ``heapq.nlargest`` is documented to equal ``sorted(..., reverse=True)[:k]``, a
stable sort: among neighbours tied at the k-th similarity it keeps those that come
*first in the rating list* (``trainset.ir[i]`` / ``trainset.ur[u]``, i.e. the order the
ratings were given to the Trainset). We reproduce that rule exactly: the blocks keep
each list's order and, at the k-th value, take the tied entries left to right. The
only remaining differences are floating-point summation order (about 1e-15 relative).
Similarities are assumed finite (Surprise's measures are; with NaN the heap's choice
is undefined).

SlopeOne: ``est = mean_u + mean(dev[i, j] for j rated by u with freq[i, j] > 0)``
(``mean_u`` alone when there is no such j). CoClustering:
``avg_cocltr[cu, ci] + user_mean[u] - avg_cltr_u[cu] + item_mean[i] - avg_cltr_i[ci]``.
Neither is ever impossible for known pairs.

Per algorithm, the arrays derived from the trainset (rating lists in list order,
padded blocks, positive-similarity matrices) are built on the first call and cached
(weakly, keyed by the algorithm, invalidated when ``trainset`` or ``sim`` is replaced).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from itertools import chain

import numpy as np
import scipy.sparse as sp

from bench.errors import ConfigError

_BLOCK_ELEMENTS = 1 << 20
"""Similarities (float64, 8 MB) per padded block; temporaries are a few times that."""

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
SUPPORTED = ("KNNBasic", "KNNWithMeans", "KNNBaseline", "SlopeOne", "CoClustering")


def score_batch(algo, user_inner: np.ndarray) -> np.ndarray:
    """Unclipped estimates of ``algo`` for ``user_inner`` x every trainset item.

    Args:
        algo: a fitted ``KNNBasic``, ``KNNWithMeans``, ``KNNBaseline``, ``SlopeOne`` or
            ``CoClustering``.
        user_inner: Surprise inner user ids (``0 <= u < algo.trainset.n_users``).

    Returns:
        float64 array ``(len(user_inner), algo.trainset.n_items)`` indexed by inner item
        id: ``algo.estimate(u, i)`` (its ``est`` for k-NN), NaN where Surprise raises
        ``PredictionImpossible``.

    Raises:
        ConfigError: ``algo`` is of another type (SVD-like models have factor arrays and
            are scored elsewhere).
        ValueError: an id is not an inner user id of the trainset, or ``algo`` is unfitted.
    """
    from surprise import CoClustering, KNNBaseline, KNNBasic, KNNWithMeans, SlopeOne

    if not isinstance(algo, KNNBasic | KNNWithMeans | KNNBaseline | SlopeOne | CoClustering):
        raise ConfigError(
            f"score_batch: algorithm: expected one of {list(SUPPORTED)}, got "
            f"{type(algo).__name__}"
        )
    trainset = getattr(algo, "trainset", None)
    if trainset is None:
        raise ValueError(f"score_batch: {type(algo).__name__} is not fitted (no trainset)")
    users = np.asarray(user_inner, dtype=np.int64).reshape(-1)
    if users.size and (users.min() < 0 or users.max() >= trainset.n_users):
        bad = users[(users < 0) | (users >= trainset.n_users)][0]
        raise ValueError(
            f"score_batch: user_inner: expected inner ids in [0, {trainset.n_users}), got {bad}"
        )
    if isinstance(algo, CoClustering):
        return _coclustering(algo, users)
    state = _state(algo)
    if isinstance(algo, SlopeOne):
        return _slope_one(algo, state, users)
    return _knn(algo, state, users)


# ====================================================================== rating lists
@dataclass(frozen=True)
class _Lists:
    """Rating lists (``trainset.ur`` or ``ir``) as CSR arrays, in Surprise's list order."""

    indptr: np.ndarray
    ids: np.ndarray
    ratings: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.indptr)

    def owner(self) -> np.ndarray:
        """The list (y) each entry belongs to."""
        return np.repeat(np.arange(len(self.indptr) - 1), self.counts)


def _lists(by: dict, n: int) -> _Lists:
    seqs = [by[x] for x in range(n)]
    counts = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    flat = np.fromiter(chain.from_iterable(chain.from_iterable(seqs)), dtype=np.float64,
                       count=2 * int(indptr[-1]))
    return _Lists(indptr, flat[0::2].astype(np.int64), flat[1::2].copy())


def _state(algo) -> dict:
    """Arrays derived from the trainset (and ``sim``), cached per fitted algorithm."""
    entry = _CACHE.get(algo)
    sim = getattr(algo, "sim", None)
    if entry is not None and entry["trainset"] is algo.trainset and entry["sim"] is sim:
        return entry
    entry = {"trainset": algo.trainset, "sim": sim}
    _CACHE[algo] = entry
    return entry


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for each start ``s`` and count ``c``."""
    total = int(counts.sum())
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return np.arange(total, dtype=np.int64) + shift


def _padded_blocks(lists: _Lists, members: np.ndarray, width: int):
    """Cut ``members`` (lists sorted by length) into blocks of about ``width`` elements.

    Yields ``(block_members, ids, values_index)``: ``ids`` is ``(len(block), L)`` with -1
    padding, ``values_index`` the matching entry positions (-1 padding).
    """
    counts = lists.counts[members]
    order = np.argsort(counts, kind="stable")
    members, counts = members[order], counts[order]
    start = 0
    while start < len(members):
        stop = start + 1
        # grow while the padded block (rows x longest list) stays within the width
        while stop < len(members) and (stop + 1 - start) * counts[stop] <= width:
            stop += 1
        block = members[start:stop]
        length = int(counts[stop - 1])
        offs = np.arange(length)
        pos = lists.indptr[block][:, None] + offs[None, :]
        valid = offs[None, :] < lists.counts[block][:, None]
        pos = np.where(valid, pos, -1)
        ids = np.where(valid, lists.ids[np.maximum(pos, 0)], -1)
        yield block, ids, pos
        start = stop


def _topk_positive(sims: np.ndarray, values: np.ndarray, k: int):
    """Surprise's neighbour aggregate along the last axis (lists in list order).

    ``sims`` has ``-inf`` in padding; ``values`` is broadcastable to it. Keeps the ``k``
    largest similarities (ties at the k-th value: leftmost first, as ``heapq.nlargest``)
    and, of those, the positive ones. Returns ``(actual_k, sum_sim, sum_sim_value)``.
    """
    length = sims.shape[-1]
    if length > k:
        kth = np.partition(sims, length - k, axis=-1)[..., length - k : length - k + 1]
        keep = sims >= kth
        # more than k at or above a positive k-th value: ties; keep the leftmost of them
        fix = (kth[..., 0] > 0) & (keep.sum(axis=-1) > k)
        if fix.any():
            sub, at = sims[fix], kth[fix]
            above, tied = sub > at, sub == at
            room = k - above.sum(axis=-1, keepdims=True)
            keep[fix] = above | (tied & (np.cumsum(tied, axis=-1) <= room))
        keep &= sims > 0
    else:
        keep = sims > 0
    weights = np.where(keep, sims, 0.0)
    return keep.sum(axis=-1), weights.sum(axis=-1), (weights * values).sum(axis=-1)


# ====================================================================== k-NN
def _knn(algo, state: dict, users: np.ndarray) -> np.ndarray:
    from surprise import KNNBaseline, KNNBasic, KNNWithMeans

    trainset = algo.trainset
    user_based = bool(algo.sim_options.get("user_based", True))
    k = int(algo.k)
    if "yr" not in state:
        # y's rating lists: entries (x2, r); values v = what is weighted by sim[x, x2]
        yr = _lists(algo.yr, algo.n_y)
        if isinstance(algo, KNNWithMeans):
            values = yr.ratings - np.asarray(algo.means)[yr.ids]
        elif isinstance(algo, KNNBaseline):
            by = np.asarray(algo.by)[yr.owner()]
            values = yr.ratings - (trainset.global_mean + np.asarray(algo.bx)[yr.ids] + by)
        else:
            values = yr.ratings
        state["yr"], state["values"] = yr, values
        owner = yr.owner()
        shape = (algo.n_y, algo.n_x)  # y x x2: the entries of each rating list
        state["ind"] = sp.csr_matrix((np.ones(len(owner)), (owner, yr.ids)), shape=shape)
        state["val"] = sp.csr_matrix((values, (owner, yr.ids)), shape=shape)
        state["long"] = np.flatnonzero(yr.counts > k)
        if not user_based:  # dense positive similarities, items x items
            sim = np.asarray(algo.sim, dtype=np.float64)
            state["sim_pos"] = np.where(sim > 0, sim, 0.0)
            state["sim_gt0"] = (sim > 0).astype(np.float64)
    yr, values = state["yr"], state["values"]
    sim = np.asarray(algo.sim, dtype=np.float64)
    n_items = trainset.n_items
    b = len(users)
    count = np.zeros((b, n_items))
    sum_sim = np.zeros((b, n_items))
    sum_val = np.zeros((b, n_items))
    if user_based:
        # x = the batch users, y = items; short item lists by products, long ones in blocks
        s_b = sim[users]
        pos = s_b > 0
        s_pos = np.where(pos, s_b, 0.0)
        count[:] = (state["ind"] @ pos.T.astype(np.float64)).T
        sum_sim[:] = (state["ind"] @ s_pos.T).T
        sum_val[:] = (state["val"] @ s_pos.T).T
        long = state["long"]
        if len(long):
            width = max(1, _BLOCK_ELEMENTS // max(b, 1))
            for block, ids, entries in _padded_blocks(yr, long, width):
                sims = s_b[:, ids]  # b x block x L
                sims[:, ids < 0] = -np.inf
                vals = np.where(entries >= 0, values[np.maximum(entries, 0)], 0.0)
                c, s, v = _topk_positive(sims, vals[None, :, :], k)
                count[:, block], sum_sim[:, block], sum_val[:, block] = c, s, v
    else:
        # x = items (all), y = the batch users; short user lists by products, long in blocks
        ind_b = state["ind"][users]  # b x items
        val_b = state["val"][users]
        count[:] = ind_b @ state["sim_gt0"].T
        sum_sim[:] = ind_b @ state["sim_pos"].T
        sum_val[:] = val_b @ state["sim_pos"].T
        is_long = yr.counts[users] > k
        rows = np.flatnonzero(is_long)
        if len(rows):
            # rows of the batch are members: a small _Lists over the batch's long users
            counts = yr.counts[users[rows]]
            at = _ranges(yr.indptr[users[rows]], counts)
            indptr = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum(counts, out=indptr[1:])
            sub = _Lists(indptr, yr.ids[at], values[at])
            length = int(sub.counts.max())
            width = max(length, _BLOCK_ELEMENTS // max(n_items, 1))
            for block, ids, entries in _padded_blocks(sub, np.arange(len(rows)), width):
                vals = np.where(entries >= 0, sub.ratings[np.maximum(entries, 0)], 0.0)
                span = max(1, _BLOCK_ELEMENTS // ids.size)
                for lo in range(0, n_items, span):
                    hi = min(n_items, lo + span)
                    sims = sim[lo:hi][:, ids]  # items x block x L
                    sims[:, ids < 0] = -np.inf
                    c, s, v = _topk_positive(sims, vals[None, :, :], k)
                    at = rows[block]
                    count[at, lo:hi], sum_sim[at, lo:hi], sum_val[at, lo:hi] = c.T, s.T, v.T
    min_k = int(algo.min_k)
    enough = (count >= min_k) & (count > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = sum_val / sum_sim
    if isinstance(algo, KNNBasic):
        return np.where(enough, ratio, np.nan)
    correction = np.where(enough, ratio, 0.0)
    if isinstance(algo, KNNWithMeans):
        means = np.asarray(algo.means)
        base = means[users][:, None] if user_based else means[None, :]
        return base + correction
    bu, bi = np.asarray(algo.bu), np.asarray(algo.bi)
    base = (trainset.global_mean + bu[users])[:, None] + bi[None, :]
    return base + correction


# ====================================================================== SlopeOne, CoClustering
def _slope_one(algo, state: dict, users: np.ndarray) -> np.ndarray:
    if "relevant" not in state:
        related = np.asarray(algo.freq) > 0
        state["relevant"] = related.astype(np.float64)  # i x j: freq[i, j] > 0
        state["dev"] = np.where(related, np.asarray(algo.dev, dtype=np.float64), 0.0)
        ur = _lists(algo.trainset.ur, algo.trainset.n_users)
        owner = ur.owner()
        shape = (algo.trainset.n_users, algo.trainset.n_items)
        state["rated"] = sp.csr_matrix((np.ones(len(owner)), (owner, ur.ids)), shape=shape)
    rated = state["rated"][users]  # b x j
    n_rel = rated @ state["relevant"].T  # b x i: |R_i(u)|
    dev_sum = rated @ state["dev"].T
    mean = np.asarray(algo.user_mean, dtype=np.float64)[users][:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, mean + dev_sum / n_rel, mean)


def _coclustering(algo, users: np.ndarray) -> np.ndarray:
    cu = np.asarray(algo.cltr_u)[users]
    ci = np.asarray(algo.cltr_i)
    est = np.asarray(algo.avg_cocltr)[cu[:, None], ci[None, :]]
    est = est + np.asarray(algo.user_mean)[users][:, None]
    est = est - np.asarray(algo.avg_cltr_u)[cu][:, None]
    est = est + np.asarray(algo.item_mean)[None, :]
    return est - np.asarray(algo.avg_cltr_i)[ci][None, :]
