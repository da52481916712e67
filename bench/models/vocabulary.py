"""What a model may know: its vocabulary of users and items, built from training rows.

A split's parts share the vocabularies of the whole dataset (a code means the same user
or item in train and test), so the training part's vocabulary holds users and items that
only appear in test. A model must not see them: an all-zero row or column still changes
what many learners compute (ALS's random initialisation and BM25 weights, item counts,
matrix shapes). :meth:`Recommender.fit <bench.models.base.Recommender.fit>` therefore
re-codes the training rows to a :class:`Vocabulary` of their own before ``_fit`` runs:

* **users**: those with at least one training row;
* **items**: those with at least one training row;
* plus, only for models that declare it (``Recommender.vocabulary_sources``), ids known
  from side information: every item of the item features (``"item_features"``, the
  catalogue: content models score items without training rows from their attributes),
  every user of the user features (``"user_features"``: segment rules place a new user
  by demographics), or the full vocabularies of the data handed to ``fit`` (``"data"``:
  only for models that learn nothing from them, e.g. precomputed lists that may name
  any item of the dataset).

Training users and items keep the relative order of the data's codes, so the re-coded
rows stay in canonical order and ``train_order`` positions stay valid. With ids from
side information the vocabulary is sorted by id (when the data's is), so it depends
only on the training rows and the side information, never on which ids the test part
holds, and ties "toward the lower code" still mean the lower id.

The public ``*_codes`` methods of a model keep speaking the data's codes; this module
maps them in (``users_in``, ``items_in``, ``history_in``) and out (``items_out``,
``scores_out``). A data code outside the vocabulary maps to ``-1`` (an unknown user, an
item the model cannot score); a vocabulary item with no data code (a catalogue item the
data never mentions) cannot be named in a list and is never recommended through codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.data.features import ItemFeatures
from bench.data.interactions import Interactions

__all__ = ["SOURCES", "Vocabulary"]

#: What may extend a model's vocabulary beyond its training rows.
SOURCES = ("item_features", "user_features", "data")


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """A model's users and items and their maps to the codes of the data given to ``fit``.

    Attributes:
        user_ids, item_ids: the model's vocabularies (model code -> id).
        user_in, item_in: data code -> model code, ``-1`` outside the model's vocabulary.
        item_out: model item code -> data code, ``-1`` for an item the data has no code for.
        n_data_users, n_data_items: sizes of the data's vocabularies.
    """

    user_ids: pd.Index
    item_ids: pd.Index
    user_in: np.ndarray
    item_in: np.ndarray
    item_out: np.ndarray
    n_data_users: int
    n_data_items: int

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        train: Interactions,
        item_features: ItemFeatures | None = None,
        user_features: pd.DataFrame | None = None,
        sources: Iterable[str] = (),
    ) -> Vocabulary:
        """The vocabulary of a model fitted on ``train`` that may use ``sources``."""
        sources = frozenset(sources)
        if "data" in sources:
            users = np.arange(train.n_users)
            items = np.arange(train.n_items)
        else:
            users = np.flatnonzero(train.user_counts() > 0)
            items = np.flatnonzero(train.item_counts() > 0)
        extra_users = extra_items = None
        if "user_features" in sources and user_features is not None:
            extra_users = pd.Index(user_features.index)
        if "item_features" in sources and item_features is not None:
            extra_items = pd.Index(item_features.item_ids)
        user_ids, user_in, _ = _extend(train.user_ids, users, extra_users)
        item_ids, item_in, item_out = _extend(train.item_ids, items, extra_items)
        return cls(user_ids, item_ids, user_in, item_in, item_out,
                   train.n_users, train.n_items)

    def compact(self, train: Interactions) -> Interactions:
        """``train``'s rows (same order, same values) in the model's codes."""
        if self.is_identity:
            return train
        return train.recoded(
            self.user_ids,
            self.item_ids,
            self.user_in[train.users].astype(np.int32),
            self.item_in[train.items].astype(np.int32),
        )

    # ------------------------------------------------------------------ properties
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @cached_property
    def users_identity(self) -> bool:
        """Whether model user codes are the data's codes."""
        return self.n_users == self.n_data_users and _is_range(self.user_in)

    @cached_property
    def items_identity(self) -> bool:
        """Whether model item codes are the data's codes."""
        return self.n_items == self.n_data_items and _is_range(self.item_in)

    @property
    def is_identity(self) -> bool:
        return self.users_identity and self.items_identity

    @cached_property
    def unnamed_items(self) -> np.ndarray:
        """Model item codes the data has no code for (never recommended through codes)."""
        return np.flatnonzero(self.item_out < 0)

    # ------------------------------------------------------------------ mapping
    def users_in(self, codes: np.ndarray) -> np.ndarray:
        """Data user codes -> model codes (int64); ``-1`` and unknown codes -> ``-1``."""
        return _lookup(self.user_in, codes)

    def items_in(self, codes: np.ndarray) -> np.ndarray:
        """Data item codes -> model codes (int64); ``-1`` and unknown codes -> ``-1``."""
        return _lookup(self.item_in, codes)

    def items_out(self, items: np.ndarray) -> np.ndarray:
        """Model item codes (``-1`` = padding) -> data codes, same shape, int32."""
        items = np.asarray(items)
        if self.items_identity:
            return items.astype(np.int32, copy=False)
        return np.where(items >= 0, self.item_out[np.maximum(items, 0)], -1).astype(np.int32)

    def history_in(self, history: sp.csr_matrix | None) -> sp.csr_matrix | None:
        """A CSR over the data's items -> the same rows over the model's items.

        Entries for items outside the model's vocabulary are dropped (the model can
        neither use nor recommend them).
        """
        if history is None or self.items_identity:
            return history
        history = sp.csr_matrix(history)
        if history.shape[1] != self.n_data_items:
            raise ValueError(
                f"history: expected {self.n_data_items} item columns (the data's vocabulary), "
                f"got {history.shape[1]}"
            )
        n_rows = history.shape[0]
        rows = np.repeat(np.arange(n_rows), np.diff(history.indptr))
        cols = self.item_in[history.indices]
        keep = cols >= 0
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows[keep], minlength=n_rows), out=indptr[1:])
        out = sp.csr_matrix(
            (history.data[keep], cols[keep].astype(np.int32), indptr),
            shape=(n_rows, self.n_items),
        )
        out.sort_indices()
        return out

    def scores_out(self, block: np.ndarray, fill) -> np.ndarray:
        """A ``(rows, model items)`` block -> ``(rows, data items)``, ``fill`` elsewhere."""
        if self.items_identity:
            return block
        out = np.full((block.shape[0], self.n_data_items), fill, dtype=block.dtype)
        named = self.item_out >= 0
        out[:, self.item_out[named]] = block[:, named]
        return out


def _extend(
    data_ids: pd.Index, present: np.ndarray, extra: pd.Index | None
) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """Vocabulary ``data_ids[present]`` plus the ``extra`` ids not already in it.

    With extra ids, the vocabulary is sorted by id when the data's vocabulary is sorted
    (the loaders' default), so ties broken "toward the lower item code" still favour
    the lower id and the order does not depend on which ids the data holds; otherwise
    (ids that do not sort) the extra ids follow in the order of their table. Training
    ids keep their relative order either way. Returns the ids, the data code -> model
    code map and the model code -> data code map (``-1``: no data code).
    """
    ids = data_ids[present]
    to_data = present.astype(np.int64)
    if extra is not None and len(extra):
        extra = extra[~extra.duplicated()]
        extra = extra[~extra.isin(ids)]
        if len(extra):
            to_data = np.concatenate([to_data, data_ids.get_indexer(extra).astype(np.int64)])
            ids = ids.append(extra)
            if data_ids.is_monotonic_increasing:
                try:
                    order = np.asarray(ids.argsort(kind="stable"))
                except TypeError:  # ids of several types: keep the table's order
                    order = None
                if order is not None:
                    ids, to_data = ids[order], to_data[order]
    to_model = np.full(len(data_ids), -1, dtype=np.int64)
    named = to_data >= 0
    to_model[to_data[named]] = np.flatnonzero(named)
    return pd.Index(ids, name=data_ids.name), to_model, to_data


def _lookup(table: np.ndarray, codes) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.int64)
    ok = (codes >= 0) & (codes < len(table))
    return np.where(ok, table[np.where(ok, codes, 0)], -1)


def _is_range(a: np.ndarray) -> bool:
    return bool(np.array_equal(a, np.arange(len(a))))
