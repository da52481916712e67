"""Item-to-item content kNN: items similar in content to what the user already has."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from bench import validate
from bench.models.base import SCORE_BLOCK_FLOATS, top_k
from bench.models.content.common import ContentModel

#: Similarity matrices kept per process, keyed by the item vectors and ``neighbours``.
KEEP_SIMILARITIES = 4
_similarities: OrderedDict[tuple[str, int], sp.csr_matrix] = OrderedDict()
_similarities_lock = threading.Lock()


def top_mask(sims: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of each row's ``k`` largest positive values, ties toward lower columns.

    Exact and independent of how rows are batched: the ``k``-th largest value of the row
    is found with ``np.partition``; every value above it is kept, and values equal to it
    fill the remaining places in column order. Values ``<= 0`` (and NaN) are never kept.
    """
    s = np.where(sims > 0, sims, 0).astype(np.float32, copy=False)
    k = min(int(k), s.shape[1])
    if k <= 0:
        return np.zeros(s.shape, dtype=bool)
    kth = np.partition(s, s.shape[1] - k, axis=1)[:, s.shape[1] - k]
    above = s > kth[:, None]
    tied = s == kth[:, None]
    room = k - np.count_nonzero(above, axis=1)
    # only these rows must choose among tied values: keep the first `room` tied columns
    crowded = np.flatnonzero(np.count_nonzero(tied, axis=1) > room)
    if crowded.size:
        t = tied[crowded]
        r, c = np.nonzero(t)  # row-major: each row's tied columns in ascending order
        rank = np.arange(r.size) - np.searchsorted(r, r)  # position among the row's ties
        drop = rank >= room[crowded][r]
        t[r[drop], c[drop]] = False
        tied[crowded] = t
    above |= tied
    above &= s > 0
    return above


def content_neighbours(
    vectors: sp.csr_matrix, neighbours: int, block_size: int | None = None
) -> sp.csr_matrix:
    """Sparse item x item matrix keeping each item's ``neighbours`` most similar items.

    Row ``i`` holds ``cos(v_i, v_j)`` for the ``neighbours`` items ``j != i`` with the
    highest positive cosine (ties toward the lower item code, see :func:`top_mask`; chosen
    with the top-k kernel, which picks the same items);
    everything else is absent. ``vectors`` rows must be
    unit-norm or zero, so ``V @ V.T`` is the cosine. Computed ``block_size`` rows at a
    time (``None`` = about ``SCORE_BLOCK_FLOATS`` similarities per block), against the
    vectors' columns densified about ``SCORE_BLOCK_FLOATS`` values at a time, so memory
    is bounded by ``block_size x n_items`` plus that; the result does not depend on the
    block size.
    """
    vectors = sp.csr_matrix(vectors, dtype=np.float32)
    n, n_features = vectors.shape
    bs = block_size or max(1, SCORE_BLOCK_FLOATS // max(1, n))
    k = min(int(neighbours), max(n - 1, 0))
    # the block's rows (sparse) times the vectors' columns (dense, by chunks of about
    # SCORE_BLOCK_FLOATS): each similarity sums the same products in the same feature
    # order as vectors @ block.T would, and comes out row-major, with no transposed copy
    columns = vectors.T.tocsr()
    chunk = max(1, SCORE_BLOCK_FLOATS // max(1, n_features))
    whole = columns.toarray() if chunk >= n else None
    rows, cols, vals = [], [], []
    for start in range(0, n, bs):  # blocks of items, not single items
        stop = min(n, start + bs)
        block = vectors[start:stop]
        if whole is not None:
            sims = np.asarray(block @ whole)
        else:
            sims = np.empty((stop - start, n), dtype=np.float32)
            for c0 in range(0, n, chunk):
                sims[:, c0:c0 + chunk] = block @ columns[:, c0:c0 + chunk].toarray()
        sims[np.arange(stop - start), np.arange(start, stop)] = 0.0  # not its own neighbour
        if k == 0:
            continue
        # top_mask's choice, by the top-k kernel: k largest positive values, ties toward
        # the lower column (the mask's tie resolution costs seconds on genre-only vectors)
        top, _ = top_k(np.where(sims > 0, sims, np.float32(np.nan)), k)
        r, j = np.nonzero(top >= 0)
        c = top[r, j]
        rows.append(r + start)
        cols.append(c)
        vals.append(sims[r, c])
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    out = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n), dtype=np.float32,
    )  # fmt: skip
    out.sort_indices()
    return out


def shared_neighbours(
    vectors: sp.csr_matrix, neighbours: int, block_size: int | None = None
) -> sp.csr_matrix:
    """:func:`content_neighbours`, computed once per process for the same vectors.

    The similarity depends on the item vectors and ``neighbours`` only (``block_size``
    never changes it), and the vectors on the item features and the training item
    vocabulary. A run fits content kNN on the main split and again for each cold-start
    protocol: when the vectors are the same (a hash of their CSR arrays), the matrix is
    reused. A copy is returned, so a model never shares mutable state with another;
    the last ``KEEP_SIMILARITIES`` matrices are kept.
    """
    v = sp.csr_matrix(vectors, dtype=np.float32)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.asarray(v.shape, dtype=np.int64).tobytes())
    for part in (v.indptr, v.indices, v.data):
        digest.update(np.ascontiguousarray(part).tobytes())
    key = (digest.hexdigest(), int(neighbours))
    with _similarities_lock:
        found = _similarities.get(key)
    if found is None:
        found = content_neighbours(v, neighbours, block_size)
    with _similarities_lock:
        _similarities[key] = found
        _similarities.move_to_end(key)
        while len(_similarities) > KEEP_SIMILARITIES:
            _similarities.popitem(last=False)
    return found.copy()


class ContentItemKNN(ContentModel):
    """Score item ``j`` by the content similarity of ``j`` to the items in the user's history.

    Each item ``i`` keeps its ``neighbours`` most similar items by cosine of the item
    vectors (:func:`content_neighbours`); the score of item ``j`` for user ``u`` is
    ``sum over history items i of w_ui * sim(i, j)``, counting ``sim(i, j)`` only when
    ``j`` is among ``i``'s neighbours. ``w_ui`` follows ``weighting`` (``centred`` by
    default: rating minus the user's mean, so disliked items subtract; ``rating``;
    ``binary``; see :meth:`ContentModel.history_weights`).

    Assumes that a user wants more of what resembles, in attributes, what they already
    have. Scores items never seen in training when they are content neighbours of a
    history item, so it ranks new items on an item cold-start split. It cannot score
    (NaN): items without features; items that are no history item's neighbour (no
    evidence, not a zero score); every item for a user with an empty history.

    The similarity matrix is computed once per process for the same item vectors and
    ``neighbours`` (:func:`shared_neighbours`), e.g. for the main split and the
    cold-start protocols of one run when their items are the same.

    Args:
        weights: weight of each feature block (``genres``, ``title``, ``year``, ``tags``);
            ``None`` = ``{genres: 1.0, title: 0.5, year: 0.5, tags: 1.0}``.
        min_df: minimum number of items a title word or tag must occur in to be a feature.
        year_bin: width of the release-year bins, in years.
        neighbours: similar items kept per item (>= 1).
        weighting: ``centred``, ``rating`` or ``binary`` history weights.
        block_size: items per block when computing similarities; ``None`` = automatic
            (about 16M similarities per block). Changes memory, never the result.
    """

    def __init__(
        self,
        *,
        weights: Mapping[str, float] | None = None,
        min_df: int = 2,
        year_bin: int = 10,
        neighbours: int = 50,
        weighting: str = "centred",
        block_size: int | None = None,
    ):
        self.weights = weights
        self.min_df = min_df
        self.year_bin = year_bin
        self.neighbours = neighbours
        self.weighting = weighting
        self.block_size = block_size

    def _fit(self, train, item_features, user_features) -> None:
        nb = validate.integer("neighbours", self.neighbours, 1)
        bs = validate.optional_integer("block_size", self.block_size, 1,
                                       expected="an integer >= 1 or null (automatic)")
        self._fit_content(train, item_features)
        self.similarity_ = shared_neighbours(
            self.item_matrix_, int(nb), None if bs is None else int(bs)
        )
        support = self.similarity_.copy()
        support.data[:] = 1.0
        self.support_ = support

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        w = self.history_weights(users, history)
        scores = (w @ self.similarity_).toarray().astype(np.float32, copy=False)
        seen = sp.csr_matrix(w, copy=True)
        seen.data[:] = 1.0
        evidence = (seen @ self.support_).toarray() > 0
        scores[~evidence] = np.nan
        scores[:, ~self.item_mask_] = np.nan
        return scores
