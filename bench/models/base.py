"""The recommender contract: ``fit`` then batch-first ``recommend``.

Implementers write two methods:

* ``_fit(train, item_features, user_features)`` — learn state (attribute names end in ``_``);
* ``_score(users, history)`` — a float32 ``(len(users), n_items)`` array of scores for a
  batch of user codes, **NaN where the model cannot score** (unknown user, item never
  seen in training, ...). ``history`` is the batch's CSR rows of known interactions (the
  training rows, plus fold-in rows when given), over the model's item vocabulary.

Models only ever see their training vocabulary (:mod:`bench.models.vocabulary`): ``fit``
re-codes the training rows to the users and items that have at least one of them (plus
side-information ids for models that declare ``vocabulary_sources``) before ``_fit``
runs, so ``_fit`` and ``_score`` work in the model's own codes (``user_index_``,
``item_index_``, ``n_items``). The public ``*_codes`` methods (``recommend_codes``,
``predict_codes``, ``score_codes``, ``user_segments``) keep speaking the codes of the
data handed to ``fit`` (a split's shared vocabulary) and are mapped here.

Everything else happens here, once, for every model: checking that ``fit`` ran,
mapping ids to codes, masking seen items through the CSR, exact top-k in user batches
(memory bounded by ``batch_size x n_items``; see :mod:`bench.models.topk`), deterministic
tie-breaks (higher score first, then lower item code), and padding short lists with ``-1``.
A model that can rank without materialising the batch's scores (factor models: a fused,
blocked product + top-k) overrides :meth:`Recommender._top_k_fast`. A model whose scores
depend on the user only through a few groups and never on the history (the static
popularity rules: one row for everyone) says so through
:meth:`Recommender.shared_score_codes`, so a composite over it (business rules) can rank
a few shared rows instead of a block (:class:`ScoreGroups`).
A model never silently falls back to a default: a user it cannot score gets an empty
list, and a fallback is an explicit hybrid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.data.features import ItemFeatures
from bench.data.interactions import Interactions
from bench.errors import ConfigError, NotFittedError, ParameterError
from bench.models import fitshare
from bench.models.topk import rank_rows, skip_history, top_k, top_k_exact
from bench.models.vocabulary import SOURCES, Vocabulary
from bench.params import HasParams

__all__ = [
    "SCORE_BLOCK_FLOATS",
    "Recommender",
    "ScoreGroups",
    "TopK",
    "mask_history",
    "top_k",
    "top_k_exact",
]

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


@dataclass(frozen=True)
class ScoreGroups:
    """Scores that depend on a user only through a group (and never on the history).

    Row ``r`` of the ``(users, n_items)`` block :meth:`Recommender.score_codes` would
    return is ``scores[group[r]]`` (sources likewise), for any history.

    Attributes:
        group: int64 ``(n_users,)``, the row of ``scores`` of each user.
        scores: float32 ``(n_groups, n_items)``, NaN where the model cannot score.
        sources: int16 ``(n_groups, n_items)`` indexing ``source_names``, or ``None``
            when every score comes from the model itself.
    """

    group: np.ndarray
    scores: np.ndarray
    sources: np.ndarray | None = None

    def top_k(
        self, history: sp.csr_matrix | None, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(items int32, scores float32, sources int16)`` shaped ``(n_users, k)``: what
        masking ``history`` (when ``exclude_seen``) and :func:`top_k` give on the full
        block, from one ranking per group (:func:`~bench.models.topk.rank_rows`) with each
        user's history skipped (:func:`~bench.models.topk.skip_history`)."""
        ranking, place = rank_rows(self.scores)
        group = np.asarray(self.group, dtype=np.int64)
        if exclude_seen and history is not None:
            items = skip_history(ranking, place, history, k, group)
        else:
            items = np.full((len(group), k), -1, dtype=np.int32)
            items[:, : min(k, ranking.shape[1])] = ranking[group, :k]
        found = items >= 0
        cell = (group[:, None], np.maximum(items, 0))
        top = np.where(found, self.scores[cell] + np.float32(0.0), np.float32(np.nan))
        if self.sources is None:
            sources = np.zeros(items.shape, dtype=np.int16)
        else:
            sources = np.where(found, self.sources[cell], 0).astype(np.int16)
        return items, top.astype(np.float32, copy=False), sources


class Recommender(HasParams):
    """Base class of every model. Subclasses take hyperparameters as keyword arguments.

    Class attributes subclasses may set:
        family: the spectrum rung (``rule``, ``content``, ``collaborative``, ``hybrid``).
        predicts_ratings: ``True`` when ``predict_codes`` returns rating estimates
            (RMSE/MAE); such a model implements ``_predict_codes``.
        extra_vocabulary: what may extend the model's vocabulary beyond the users and
            items of its training rows (:data:`bench.models.vocabulary.SOURCES`):
            ``item_features`` (every item of the catalogue, for models that score items
            from their attributes), ``user_features`` (every user with features), or
            ``data`` (the full vocabularies handed to ``fit``; only for models that
            learn nothing from them). Empty by default: the training vocabulary only.
    """

    family: str = "rule"
    predicts_ratings: bool = False
    extra_vocabulary: ClassVar[frozenset[str]] = frozenset()
    #: Whether an equal fit earlier in the run may stand in for this model's
    #: (:mod:`bench.models.fitshare`): true when ``_fit`` reads nothing but the
    #: hyperparameters, the re-coded training rows, the aligned item features, the user
    #: features and ``train_order_`` -- not a file, the data's vocabulary
    #: (``data_item_ids_``) or global state -- and ``recommend`` never writes what it
    #: learned. A model whose fit is reproducible only for some hyperparameters says so
    #: in :meth:`reproducible_fit`.
    shares_fits: ClassVar[bool] = True

    def reproducible_fit(self) -> bool:
        """Whether two fits with these hyperparameters on the same data learn the same
        state bit for bit (then one may stand in for the other, see ``shares_fits``).

        By default: unless a ``seed`` or ``random_state`` hyperparameter is ``None`` (a
        fresh random state per fit). Models that are not reproducible for other reasons
        (several SGD threads) override this.
        """
        params = self.get_params()
        return all(params.get(name, 0) is not None for name in ("seed", "random_state"))

    def vocabulary_sources(self) -> frozenset[str]:
        """What extends this model's vocabulary (``extra_vocabulary``; composites: their
        children's too)."""
        return frozenset(self.extra_vocabulary)

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

        ``_fit`` receives ``train`` re-coded to the model's vocabulary (the users and
        items with a training row, see :mod:`bench.models.vocabulary`): ids that only
        appear in other parts of a split never reach it. ``item_features`` are aligned
        to that vocabulary here, so implementers can index them by item code.
        ``train_order`` (positions into ``train``) is the order a protocol presents the
        rows in (``Split.train_order``); it is kept as ``train_order_`` for
        order-sensitive learners and ignored by the others (re-coding keeps positions).
        """
        if len(train) == 0:
            raise ConfigError(f"{type(self).__name__}.fit: expected training rows, got none")
        sources = self.vocabulary_sources()
        unknown = sorted(set(sources) - set(SOURCES))
        if unknown:
            raise ConfigError(
                f"{type(self).__name__}.extra_vocabulary: expected some of {list(SOURCES)}, "
                f"got {unknown}"
            )
        self.vocabulary_ = Vocabulary.build(train, item_features, user_features, sources)
        self.data_user_ids_ = train.user_ids
        self.data_item_ids_ = train.item_ids
        train = self.vocabulary_.compact(train)
        if item_features is not None:
            item_features = item_features.align(train.item_ids)
        self.train_ = train
        self.train_order_ = None if train_order is None else np.asarray(train_order)
        self.user_index_ = train.user_ids
        self.item_index_ = train.item_ids
        self.seen_ = train.to_csr()
        self.user_counts_ = np.diff(self.seen_.indptr)
        self.item_counts_ = np.asarray(self.seen_.sum(axis=0)).ravel()
        try:
            shared = fitshare.active()
            if shared is None:
                self._fit(train, item_features, user_features)
            else:  # an equal fit earlier in this batch may stand in for this one
                shared.fit(self, train, item_features, user_features,
                           lambda: self._fit(train, item_features, user_features))
        except ParameterError as exc:  # checked with bench.validate: say whose parameter
            raise ParameterError(
                f"{type(self).__name__} {exc.param}", exc.expected, exc.received
            ) from None
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

    def _shared_scores(self, users: np.ndarray) -> ScoreGroups | None:
        """Optional: the batch's scores as a few rows shared by groups of users, in the
        model's codes (see :meth:`shared_score_codes`); ``None`` (the default) when the
        scores depend on the user or the history in any other way."""
        return None

    def source_names(self) -> tuple[str, ...]:
        """Labels of the components that can produce a recommendation.

        A plain model is one component named after its class; composites return their
        components' labels (see :mod:`bench.models.hybrid`).
        """
        return (type(self).__name__,)

    #: ``True`` for wrappers whose ``_user_segments`` only passes a child's labels on
    #: (hybrids, business rules): ``eval.segments.rules: auto`` looks past them for a
    #: model that segments users itself.
    forwards_user_segments: ClassVar[bool] = False

    def user_segments(self, users: np.ndarray) -> np.ndarray | None:
        """The segment label each user (a code of the data given to ``fit``) fell into,
        or ``None`` (no segmentation).

        Segment-based models (``rule_segment``) return an object array of labels; the
        runner records them next to each user's metrics. Implementers override
        ``_user_segments``, which receives the model's own user codes.
        """
        if not getattr(self, "fitted_", False):
            return self._user_segments(np.asarray(users, dtype=np.int64))
        return self._user_segments(self.vocabulary_.users_in(users))

    def _user_segments(self, users: np.ndarray) -> np.ndarray | None:
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
        """Top-k for user codes of the data given to ``fit`` (``-1`` = unknown user).

        ``history``: optional CSR (rows aligned with ``users``, columns the data's items)
        of extra known interactions, e.g. fold-in rows for users absent from training;
        they are masked like training items and passed to ``_score``. The returned
        :class:`TopK` holds the data's item codes. Users and items outside the model's
        vocabulary are mapped here (:mod:`bench.models.vocabulary`): such a user is
        unknown to the model (scored from ``history`` by models that fold users in), such
        an item cannot be scored.
        """
        self._check_fitted()
        if not isinstance(k, int | np.integer) or k <= 0:
            raise ConfigError(f"recommend k: expected a positive integer, got {k!r}")
        users = np.asarray(users, dtype=np.int64)
        vocab = self.vocabulary_
        top = self._recommend_model_codes(
            vocab.users_in(users), k, exclude_seen=exclude_seen,
            history=vocab.history_in(history), batch_size=batch_size,
            hide=vocab.unnamed_items,
        )
        return TopK(users, vocab.items_out(top.items), top.scores, top.sources,
                    top.source_names)

    def _recommend_model_codes(
        self,
        users: np.ndarray,
        k: int,
        *,
        exclude_seen: bool,
        history: sp.csr_matrix | None,
        batch_size: int | None,
        hide: np.ndarray,
    ) -> TopK:
        """Top-k in the model's own codes; items in ``hide`` never rank."""
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
            # fast paths rank every item of the vocabulary; the generic one can hide some
            fast = None if len(hide) else self._top_k_fast(batch, hist, k_eff, exclude_seen)
            if fast is not None:
                out_items[sl, :k_eff], out_scores[sl, :k_eff] = fast
                continue
            ranked = (None if len(hide)
                      else self._top_k_sources(batch, hist, k_eff, exclude_seen))
            if ranked is not None:
                items, top, sources = ranked
                out_items[sl, :k_eff], out_scores[sl, :k_eff] = items, top
                if out_sources is None:
                    out_sources = np.zeros((len(users), int(k)), dtype=np.int16)
                out_sources[sl, :k_eff] = np.where(items >= 0, sources, 0)
                continue
            scores, sources = self._score_sources(batch, hist)
            scores = np.asarray(scores, dtype=np.float32)
            if scores.shape != (len(batch), n_items):
                raise RuntimeError(
                    f"{type(self).__name__}._score returned shape {scores.shape}, "
                    f"expected {(len(batch), n_items)}"
                )
            if exclude_seen:
                mask_history(scores, hist)
            if len(hide):
                scores[:, hide] = np.nan
            items, top = top_k(scores, k_eff)
            out_items[sl, :k_eff] = items
            out_scores[sl, :k_eff] = top
            if sources is not None:
                if out_sources is None:
                    out_sources = np.zeros((len(users), int(k)), dtype=np.int16)
                picked = np.take_along_axis(np.asarray(sources), np.maximum(items, 0), axis=1)
                out_sources[sl, :k_eff] = np.where(items >= 0, picked, 0)
        return TopK(users, out_items, out_scores, out_sources, self.source_names())

    def _top_k_fast(
        self, users: np.ndarray, history: sp.csr_matrix, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Optional fast path: the batch's top-``k`` without a ``(users, n_items)`` array.

        Returns ``(items int32, scores float32)`` shaped ``(len(users), k)`` exactly as
        :func:`top_k` would order and pad them after ``_score`` and (when
        ``exclude_seen``) masking ``history``; or ``None`` (the default) to take the
        generic path. Single-component models only (no sources).
        """
        return None

    def _top_k_sources(
        self, users: np.ndarray, history: sp.csr_matrix, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Optional fast path for composites: the batch's top-``k`` with its sources.

        Returns ``(items int32, scores float32, sources int16)`` shaped ``(len(users), k)``
        exactly as the generic path would produce them from :meth:`_score_sources`
        (masking ``history`` when ``exclude_seen``, then :func:`top_k`); or ``None`` (the
        default) to take the generic path. For composites whose full score block needs
        work beyond the top ``k`` (e.g. a full per-row sort) that the list never shows.
        """
        return None

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
        """Boolean mask: model user codes with at least one training interaction."""
        users = np.asarray(users)
        ok = users >= 0
        ok[ok] = self.user_counts_[users[ok]] > 0
        return ok

    def known_items(self) -> np.ndarray:
        """Boolean mask over model item codes with at least one training interaction."""
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
        if not isinstance(k, int | np.integer) or k <= 0:
            raise ConfigError(f"recommend k: expected a positive integer, got {k!r}")
        user_ids = pd.Index(pd.unique(np.asarray(list(user_ids), dtype=object)))
        codes = self.user_index_.get_indexer(user_ids)
        extra = None
        if history is not None:
            extra = _history_matrix(history, user_ids, self.item_index_)
        top = self._recommend_model_codes(
            codes, k, exclude_seen=exclude_seen, history=extra, batch_size=None,
            hide=np.zeros(0, dtype=np.int64),
        )
        return self._frame(top, user_ids, self.item_index_)

    def lists_frame(self, top: TopK, user_ids: pd.Index | None = None) -> pd.DataFrame:
        """Long frame of a :class:`TopK` from :meth:`recommend_codes` with source ids
        (``user_ids`` aligned with rows; default: the data's ids of ``top.users``)."""
        if user_ids is None:
            user_ids = self.data_user_ids_[top.users]
        return self._frame(top, user_ids, self.data_item_ids_)

    def _frame(self, top: TopK, user_ids, item_ids: pd.Index) -> pd.DataFrame:
        mask = top.items >= 0
        rows, ranks = np.nonzero(mask)
        return pd.DataFrame(
            {
                "user_id": np.asarray(user_ids)[rows],
                "item_id": item_ids[top.items[mask]],
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

    # ------------------------------------------------------------------ data codes
    def score_codes(
        self, users: np.ndarray, history: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores and sources (see ``_score_sources``) over the items of the data given
        to ``fit``, for its user codes; ``history`` is the batch's known rows (training
        plus fold-in) over the data's items. Items outside the model's vocabulary score
        NaN (source 0). What a composite asks of each child it fitted on its own data.
        """
        self._check_fitted()
        vocab = self.vocabulary_
        scores, sources = self._score_sources(vocab.users_in(users), vocab.history_in(history))
        return self._data_items(scores, sources)

    def _data_items(self, scores, sources) -> tuple[np.ndarray, np.ndarray | None]:
        """Score and source rows over the model's items, moved onto the data's items:
        NaN and source 0 where the model does not know an item."""
        vocab = self.vocabulary_
        scores = vocab.scores_out(np.asarray(scores, dtype=np.float32), np.float32(np.nan))
        if sources is not None:
            sources = vocab.scores_out(np.asarray(sources, dtype=np.int16), np.int16(0))
        return scores, sources

    def shared_score_codes(self, users: np.ndarray) -> ScoreGroups | None:
        """:meth:`score_codes` as a few rows shared by groups of users, or ``None``.

        A model announces by returning a :class:`ScoreGroups` (over the data's items,
        for its user codes) that its scores depend on a user only through a group and
        never on the history: the static popularity rules (one group), business rules
        over them (one group per combination of the rules that apply). A composite
        asks this of a child first and ranks the shared rows instead of a
        ``(users, n_items)`` block; ``None`` (every other model) means it asks
        :meth:`score_codes`. Implementers override ``_shared_scores``.
        """
        self._check_fitted()
        vocab = self.vocabulary_
        shared = self._shared_scores(vocab.users_in(users))
        if shared is None:
            return None
        scores, sources = self._data_items(shared.scores, shared.sources)
        return ScoreGroups(np.asarray(shared.group, dtype=np.int64), scores, sources)

    def predict_codes(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Rating estimates (float64) for pairs of user and item codes of the data given
        to ``fit``; NaN where the model cannot predict (a user or item outside its
        vocabulary included). Only for models with ``predicts_ratings``."""
        self._check_fitted()
        if not self.predicts_ratings:
            raise NotImplementedError(f"{type(self).__name__} does not predict ratings")
        vocab = self.vocabulary_
        users = np.asarray(users, dtype=np.int64).ravel()
        items = np.asarray(items, dtype=np.int64).ravel()
        return self._predict_codes(vocab.users_in(users), vocab.items_in(items))

    def _predict_codes(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def mask_history(scores: np.ndarray, history: sp.csr_matrix | None) -> None:
    """Set each row's history items (the CSR's columns for that row) to NaN, in place.

    The base class does this before top-k; composites do it before normalising or
    ranking, so items that will be masked anyway never stretch a range or take a rank.
    """
    if history is not None and history.nnz:
        rows = np.repeat(np.arange(history.shape[0]), np.diff(history.indptr))
        scores[rows, history.indices] = np.nan


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
