"""What every composite model shares: named child models, nested source labels.

A composite holds its children in ``components`` (a mapping from label to a built
:class:`~bench.models.base.Recommender`; in YAML each child is composed from another
model config, see ``configs/model/hybrid_*.yaml``). It fits every child on the same
data and combines their score blocks; it never subclasses them.

Source labels nest: a plain child is named by its key (``cf_als``); a composite child
contributes ``key/label`` for each of its own labels. :meth:`Composite.child_scores`
returns a child's scores with its source codes already offset into this composite's
:meth:`source_names`, so composites compose to any depth.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from bench.errors import ConfigError
from bench.models.base import Recommender, top_k


class Composite(Recommender):
    """Base of hybrids: fits ``components`` and maps their source labels.

    Subclasses set ``self.components`` (via their constructor) and implement
    ``_combine(users, history)`` returning ``(scores, sources)`` in this composite's
    source codes.
    """

    family = "hybrid"
    forwards_user_segments = True
    components: Mapping[str, Recommender]

    def vocabulary_sources(self) -> frozenset[str]:
        """The union of the children's: each child re-codes to its own vocabulary."""
        out = set(self.extra_vocabulary)
        comps = getattr(self, "components", None)
        if isinstance(comps, Mapping):
            for child in comps.values():
                if isinstance(child, Recommender):
                    out |= child.vocabulary_sources()
        return frozenset(out)

    # ---------------------------------------------------------------- fitting
    def _check_components(self, required: tuple[str, ...] = (), minimum: int = 1) -> None:
        name = type(self).__name__
        comps = self.components
        if not isinstance(comps, Mapping) or len(comps) < minimum:
            raise ConfigError(
                f"{name} components: expected a mapping of at least {minimum} named model(s), "
                f"got {comps!r}"
            )
        for key, child in comps.items():
            if not isinstance(child, Recommender):
                raise ConfigError(
                    f"{name} components.{key}: expected a model (a mapping with '_target_'), "
                    f"got {type(child).__name__}"
                )
        missing = [r for r in required if r not in comps]
        if missing:
            raise ConfigError(
                f"{name} components: missing {missing}; got {sorted(comps)}"
            )

    def _fit_children(self, train, item_features, user_features) -> None:
        for child in self.components.values():
            child.fit(train, item_features=item_features, user_features=user_features,
                      train_order=self.train_order_)
        offsets, names = {}, []
        for key, child in self.components.items():
            offsets[key] = len(names)
            child_names = child.source_names()
            if isinstance(child, Composite) or len(child_names) > 1:
                names += [f"{key}/{n}" for n in child_names]
            else:
                names.append(str(key))
        self.source_offsets_ = offsets
        self.source_names_ = tuple(names)

    # ---------------------------------------------------------------- scoring
    def source_names(self) -> tuple[str, ...]:
        return getattr(self, "source_names_", tuple(str(k) for k in self.components))

    def child_scores(
        self, key: str, users: np.ndarray, history: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray]:
        """Child ``key``'s float32 scores and int16 source codes in this composite's labels.

        ``users`` and ``history`` are in this composite's codes, which are the child's
        data codes (the child was fitted on this composite's training rows); the child
        maps them to its own vocabulary and back (:meth:`Recommender.score_codes`).
        """
        scores, sources = self.components[key].score_codes(users, history)
        scores = np.array(scores, dtype=np.float32)  # a private, writable copy
        offset = self.source_offsets_[key]
        if sources is None:
            codes = np.full(scores.shape, offset, dtype=np.int16)
        else:
            codes = (np.asarray(sources, dtype=np.int16) + offset).astype(np.int16)
        return scores, codes

    def _score_sources(self, users, history):
        return self._combine(users, history)

    def _score(self, users, history):
        return self._combine(users, history)[0]

    def _combine(self, users, history) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _user_segments(self, users: np.ndarray) -> np.ndarray | None:
        """The first child's segmentation that exists (e.g. a ``rule_segment`` component)."""
        for child in self.components.values():
            seg = child.user_segments(users)
            if seg is not None:
                return seg
        return None


def row_ranks(scores: np.ndarray) -> np.ndarray:
    """Per-row rank of each finite score (0 = best), ties toward the lower item code.

    Non-finite cells get rank ``n_items``. Uses the same order as the base top-k: score
    descending, then item code ascending (a stable sort of the negated scores).
    """
    n_rows, n_items = scores.shape
    keyed = np.where(np.isnan(scores), np.inf, -scores.astype(np.float64))
    order = np.argsort(keyed, axis=1, kind="stable")
    ranks = np.empty((n_rows, n_items), dtype=np.int64)
    np.put_along_axis(ranks, order, np.arange(n_items, dtype=np.int64)[None, :], axis=1)
    ranks[np.isnan(scores)] = n_items
    return ranks


def row_top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` items of each row in :func:`row_ranks` order, and their ranks.

    Returns ``(items, ranks)``, int32 and int64 ``(n_rows, min(k, n_items))``: ``items[i, j]``
    is the ``j``-th best item of row ``i`` and ``ranks[i, j]`` its :func:`row_ranks`
    value; ``-1`` and ``n_items`` past the row's last non-NaN score. The same items and
    ranks as :func:`row_ranks`, without sorting the whole row: the top-k kernel, whose
    ranks are the positions. A block holding ``-inf`` takes the full sort: top-k never
    ranks ``-inf``, and :func:`row_ranks` ranks it among the NaN cells (so its ranks may
    skip values).
    """
    n_items = scores.shape[1]
    k = min(int(k), n_items)
    if not np.isneginf(scores).any():
        items = top_k(np.asarray(scores, dtype=np.float32), k)[0]
        ranks = np.where(items >= 0, np.arange(k, dtype=np.int64)[None, :], n_items)
        return items, ranks
    full = row_ranks(scores)
    order = np.argsort(full, axis=1, kind="stable")[:, :k]
    ranks = np.take_along_axis(full, order, axis=1)
    return np.where(ranks < n_items, order, -1).astype(np.int32), ranks
