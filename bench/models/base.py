"""The recommender contract: ``fit`` then batch-first ``recommend``.

Implementers write two methods:

* ``_fit(train, item_features, user_features)`` — learn state (attribute names end in ``_``);
* ``_score(users, history)`` — a float32 ``(len(users), n_items)`` array of scores for a
  batch of user codes, **NaN where the model cannot score** (unknown user, item never
  seen in training, ...). ``history`` is the batch's CSR rows of known interactions (the
  training rows, plus fold-in rows when given), over the training item vocabulary.

Everything else happens here, once, for every model: checking that ``fit`` ran,
mapping ids to codes, masking seen items through the CSR, top-k with ``argpartition``
in user batches (memory bounded by ``batch_size x n_items``), deterministic tie-breaks
(higher score first, then lower item code), and padding short lists with ``-1``.
A model never silently falls back to a default: a user it cannot score gets an empty
list, and a fallback is an explicit hybrid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.data.features import ItemFeatures
from bench.data.interactions import Interactions
from bench.errors import ConfigError, NotFittedError
from bench.params import HasParams

#: Target size of one score block (floats); the batch size is derived from it.
SCORE_BLOCK_FLOATS = 16 * 1024 * 1024


@dataclass(frozen=True)
class TopK:
    """Top-k lists for a batch of users, in codes.

    Attributes:
        users: user codes, one per row.
        items: int32 ``(n_users, k)`` item codes in rank order, ``-1`` where the list is short.
        scores: float32 ``(n_users, k)`` scores, NaN where ``items`` is ``-1``.
        sources: int16 ``(n_users, k)`` index into ``source_names`` of the component
            that produced each cell, or ``None`` when the model is a single component.
        source_names: labels of the components (see ``Recommender.source_names``).
    """

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    sources: np.ndarray | None = None
    source_names: tuple[str, ...] = ()

    @property
    def lengths(self) -> np.ndarray:
        """Number of real recommendations per user."""
        return (self.items >= 0).sum(axis=1)


class Recommender(HasParams):
    """Base class of every model. Subclasses take hyperparameters as keyword arguments.

    Class attributes subclasses may set:
        family: the spectrum rung (``rule``, ``content``, ``collaborative``, ``hybrid``).
        predicts_ratings: ``True`` when ``predict`` returns rating estimates (RMSE/MAE).
    """

    family: str = "rule"
    predicts_ratings: bool = False


    # ------------------------------------------------------------------ fit
    def fit(
        self,
        train: Interactions,
        item_features: ItemFeatures | None = None,
        user_features: pd.DataFrame | None = None,
        *,
        train_order: np.ndarray | None = None,
    ) -> Recommender:
        """Learn from ``train``; returns ``self``.

        ``item_features`` are aligned to ``train.item_ids`` here, so implementers can
        index them by item code. ``train_order`` (positions into ``train``) is the order
        a protocol presents the rows in (``Split.train_order``); it is kept as
        ``train_order_`` for order-sensitive learners and ignored by the others.
        """
        if len(train) == 0:
            raise ConfigError(f"{type(self).__name__}.fit: expected training rows, got none")
        if item_features is not None:
            item_features = item_features.align(train.item_ids)
        self.train_ = train
        self.train_order_ = None if train_order is None else np.asarray(train_order)
        self.user_index_ = train.user_ids
        self.item_index_ = train.item_ids
        self.seen_ = train.to_csr()
        self.user_counts_ = np.diff(self.seen_.indptr)
        self.item_counts_ = np.asarray(self.seen_.sum(axis=0)).ravel()
        self._fit(train, item_features, user_features)
        self.fitted_ = True
        return self

    def _fit(
        self,
        train: Interactions,
        item_features: ItemFeatures | None,
        user_features: pd.DataFrame | None,
    ) -> None:
        raise NotImplementedError

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def _score_sources(
        self, users: np.ndarray, history: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores plus which component produced each one.

        Returns ``(scores, sources)``: ``sources`` is an int16 array of the scores' shape
        indexing :meth:`source_names`, or ``None`` when every score comes from this model
        itself. Composite models (hybrids, business rules) override this instead of
        ``_score``; a composite calls its children's ``_score_sources`` to stay nested.
        """
        return self._score(users, history), None

    def source_names(self) -> tuple[str, ...]:
        """Labels of the components that can produce a recommendation.

        A plain model is one component named after its class; composites return their
        components' labels (see :mod:`bench.models.hybrid`).
        """
        return (type(self).__name__,)

    def user_segments(self, users: np.ndarray) -> np.ndarray | None:
        """The segment label each user code fell into, or ``None`` (no segmentation).

        Segment-based models (``rule_segment``) return an object array of labels; the
        runner records them next to each user's metrics.
        """
        return None

    def _check_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise NotFittedError(
                f"{type(self).__name__}: recommend/predict called before fit; call fit(train) first"
            )

    # ------------------------------------------------------------------ recommend
    @property
    def n_items(self) -> int:
        self._check_fitted()
        return len(self.item_index_)

    def batch_size_for(self, n_items: int) -> int:
        """Users per score block so one block holds about ``SCORE_BLOCK_FLOATS`` floats."""
        return max(1, SCORE_BLOCK_FLOATS // max(1, n_items))

    def recommend_codes(
        self,
        users: np.ndarray,
        k: int,
        *,
        exclude_seen: bool = True,
        history: sp.csr_matrix | None = None,
        batch_size: int | None = None,
    ) -> TopK:
        """Top-k for user codes of the training vocabulary (``-1`` = unknown user).

        ``history``: optional CSR (rows aligned with ``users``) of extra known
        interactions, e.g. fold-in rows for users absent from training; they are masked
        like training items and passed to ``_score``.
        """
        self._check_fitted()
        if not isinstance(k, int | np.integer) or k <= 0:
            raise ConfigError(f"recommend k: expected a positive integer, got {k!r}")
        users = np.asarray(users, dtype=np.int64)
        n_items = self.n_items
        k_eff = min(int(k), n_items)
        bs = batch_size or self.batch_size_for(n_items)
        out_items = np.full((len(users), int(k)), -1, dtype=np.int32)
        out_scores = np.full((len(users), int(k)), np.nan, dtype=np.float32)
        out_sources = None
        for start in range(0, len(users), bs):  # batches, not users: bounded memory
            sl = slice(start, start + bs)
            batch = users[sl]
            hist = self._history_rows(batch, None if history is None else history[sl])
            scores, sources = self._score_sources(batch, hist)
            scores = np.asarray(scores, dtype=np.float32)
            if scores.shape != (len(batch), n_items):
                raise RuntimeError(
                    f"{type(self).__name__}._score returned shape {scores.shape}, "
                    f"expected {(len(batch), n_items)}"
                )
            if exclude_seen:
                mask_history(scores, hist)
            items, top = top_k(scores, k_eff)
            out_items[sl, :k_eff] = items
            out_scores[sl, :k_eff] = top
            if sources is not None:
                if out_sources is None:
                    out_sources = np.zeros((len(users), int(k)), dtype=np.int16)
                picked = np.take_along_axis(np.asarray(sources), np.maximum(items, 0), axis=1)
                out_sources[sl, :k_eff] = np.where(items >= 0, picked, 0)
        return TopK(users, out_items, out_scores, out_sources, self.source_names())

    def _history_rows(self, users: np.ndarray, extra: sp.csr_matrix | None) -> sp.csr_matrix:
        known = users >= 0
        safe = np.where(known, users, 0)
        rows = self.seen_[safe]
        if not known.all():
            rows = sp.diags(known.astype(np.float32)) @ rows
            rows.eliminate_zeros()
        if extra is not None:
            rows = (rows + extra.astype(np.float32)).tocsr()
            rows.data[:] = 1.0
        return sp.csr_matrix(rows)

    def known_users(self, users: np.ndarray) -> np.ndarray:
        """Boolean mask: user codes with at least one training interaction."""
        users = np.asarray(users)
        ok = users >= 0
        ok[ok] = self.user_counts_[users[ok]] > 0
        return ok

    def known_items(self) -> np.ndarray:
        """Boolean mask over item codes with at least one training interaction."""
        return self.item_counts_ > 0

    def recommend(
        self,
        user_ids,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        history: Interactions | None = None,
    ) -> pd.DataFrame:
        """Top-k recommendations for source user ids.

        Returns a frame ``user_id, item_id, rank, score, source`` (rank from 1, at most
        ``k`` rows per user, no training item when ``exclude_seen``). Users the model
        cannot score get no rows. ``history`` gives known interactions for users
        outside training (fold-in); their items are masked and passed to the model.
        """
        self._check_fitted()
        user_ids = pd.Index(pd.unique(np.asarray(list(user_ids), dtype=object)))
        codes = self.user_index_.get_indexer(user_ids)
        extra = None
        if history is not None:
            extra = _history_matrix(history, user_ids, self.item_index_)
        top = self.recommend_codes(codes, k, exclude_seen=exclude_seen, history=extra)
        return self.lists_frame(top, user_ids)

    def lists_frame(self, top: TopK, user_ids: pd.Index | None = None) -> pd.DataFrame:
        """Long frame of a :class:`TopK` with source ids (``user_ids`` aligned with rows)."""
        if user_ids is None:
            user_ids = self.user_index_[top.users]
        mask = top.items >= 0
        rows, ranks = np.nonzero(mask)
        return pd.DataFrame(
            {
                "user_id": np.asarray(user_ids)[rows],
                "item_id": self.item_index_[top.items[mask]],
                "rank": (ranks + 1).astype(np.int32),
                "score": top.scores[mask],
                "source": self.source_labels(top)[mask] if mask.any() else [],
            }
        )

    def source_labels(self, top: TopK) -> np.ndarray:
        """Which component produced each recommendation (object array shaped like items)."""
        names = np.asarray(top.source_names or self.source_names(), dtype=object)
        if top.sources is None:
            return np.full(top.items.shape, names[0], dtype=object)
        return names[top.sources]


def mask_history(scores: np.ndarray, history: sp.csr_matrix | None) -> None:
    """Set each row's history items (the CSR's columns for that row) to NaN, in place.

    The base class does this before top-k; composites do it before normalising or
    ranking, so items that will be masked anyway never stretch a range or take a rank.
    """
    if history is not None and history.nnz:
        rows = np.repeat(np.arange(history.shape[0]), np.diff(history.indptr))
        scores[rows, history.indices] = np.nan


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` item codes and scores per row of ``scores``; NaN never ranks.

    Order is exact and deterministic: higher score first, ties toward the lower item
    code. Positions beyond the number of finite scores hold code ``-1`` and score NaN.

    Fast path: one float ``partition`` finds each row's k-th largest score; the items at
    or above it (about k per row) are ordered by (score desc, code asc) with one
    ``lexsort`` and cut to k, so ties at the k-th place keep the lowest codes. Rows
    with few finite scores or with many ties at the threshold would make the
    candidate set large; the whole block then takes :func:`top_k_exact`.
    """
    n_rows, n_items = scores.shape
    k = min(k, n_items)
    if n_rows == 0 or k == 0:
        return top_k_exact(scores, k)
    s = np.where(np.isnan(scores), np.float32(-np.inf), scores).astype(np.float32, copy=False)
    if k == n_items:
        return top_k_exact(scores, k)
    kth = np.partition(s, n_items - k, axis=1)[:, n_items - k]
    if not np.isfinite(kth).all():  # a row with fewer than k finite scores
        return top_k_exact(scores, k)
    mask = s >= kth[:, None]
    rows, cols = np.nonzero(mask)  # row-major: codes ascending within a row
    if len(rows) > 2 * n_rows * k:  # heavy ties at the threshold: the exact key is cheaper
        return top_k_exact(scores, k)
    vals = s[rows, cols]
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.searchsorted(rows, np.arange(n_rows))
    rank = np.arange(len(rows)) - starts[rows]
    keep = rank < k
    items = np.empty((n_rows, k), dtype=np.int32)
    top = np.empty((n_rows, k), dtype=np.float32)
    items[rows[keep], rank[keep]] = cols[keep]
    top[rows[keep], rank[keep]] = vals[keep]
    return items, top


def top_k_exact(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_k` by one int64 key per cell; handles any number of ties and NaN.

    Score and item code are folded into one int64 key (the float32 bits made
    order-preserving in the high word, the complemented item code in the low word), so
    a single ``argpartition`` decides membership and ties at the k-th place cannot
    depend on its internals.
    """
    n_rows, n_items = scores.shape
    k = min(k, n_items)
    s = np.where(np.isnan(scores), np.float32(-np.inf), scores).astype(np.float32, copy=False)
    s = s + np.float32(0.0)  # -0.0 -> +0.0: signed zeros tie, as they compare equal
    bits = s.view(np.int32).astype(np.int64)
    ordered = np.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # float order as signed ints
    key = (ordered << 32) | (np.int64(0xFFFFFFFF) - np.arange(n_items, dtype=np.int64))
    if k < n_items:
        cand = np.argpartition(key, n_items - k, axis=1)[:, n_items - k :]
    else:
        cand = np.broadcast_to(np.arange(n_items), (n_rows, n_items))
    order = np.argsort(-np.take_along_axis(key, cand, axis=1), axis=1)
    items = np.take_along_axis(cand, order, axis=1).astype(np.int32)
    top = np.take_along_axis(s, items, axis=1)
    missing = np.isneginf(top)
    items[missing] = -1
    top = np.where(missing, np.float32(np.nan), top)
    return items, top


def _history_matrix(history: Interactions, user_ids: pd.Index, item_index: pd.Index):
    """CSR (len(user_ids) x n_items) of ``history`` rows re-coded to the model's vocabularies."""
    frame = history.to_frame()
    rows = user_ids.get_indexer(frame["user_id"])
    cols = item_index.get_indexer(frame["item_id"])
    ok = (rows >= 0) & (cols >= 0)
    return sp.csr_matrix(
        (np.ones(int(ok.sum()), dtype=np.float32), (rows[ok], cols[ok])),
        shape=(len(user_ids), len(item_index)),
    )
