"""K-fold cross-validation: every row is tested exactly once, across ``n_folds`` splits.

By default folds are stratified by user: each user's rows are shuffled and dealt
round-robin into the folds, starting at a random fold per user, so every fold holds
about ``1/n_folds`` of every user's rows (within one row) and short users do not all
land in fold 0. ``stratify="none"`` is plain random k-fold over all rows (Surprise's
``KFold``, scikit-learn's shuffled ``KFold``): fold sizes within one row of each other.

:class:`SurpriseKFoldSplitter` reproduces Surprise's ``KFold(n_splits, random_state)``
fold assignment exactly (same test pairs in fold ``i``), given the order in which
Surprise loaded the rows (the line order of the ratings file).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from bench import validate
from bench.data.interactions import Interactions
from bench.errors import DataError, ParameterError, SplitError
from bench.splits.base import (
    TEST,
    TRAIN,
    Split,
    Splitter,
    random_rank,
)

STRATIFY = ("user", "none")


class KFoldSplitter(Splitter):
    """``n_folds`` splits; fold ``i`` tests on its rows and trains on all the others.

    Args:
        n_folds: number of folds (>= 2).
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same folds.
        stratify: ``"user"`` (each user's rows spread evenly over the folds) or
            ``"none"`` (rows assigned to folds at random, ignoring users).
        validation: must stay null: every row is already tested in some fold.
    """

    name = "kfold"
    validation_allowed = False

    def __init__(
        self,
        *,
        n_folds: int = 5,
        seed: int = 0,
        stratify: str = "user",
        validation: float | None = None,
    ):
        self.n_folds = n_folds
        self.seed = seed
        self.stratify = stratify
        self.validation = validation

    def _check_params(self) -> None:
        validate.integer("n_folds", self.n_folds, 2)
        validate.seed("seed", self.seed)
        validate.one_of("stratify", self.stratify, STRATIFY)

    def _hint(self, problem: str) -> str:
        return (f"lower {self.key('n_folds')} (a fold got no row; the data is too small for "
                "this many)")

    def _split(self, data: Interactions) -> list[np.ndarray]:
        k = int(self.n_folds)
        if k > len(data):
            raise SplitError(
                f"{self._describe()} leaves no test interaction in some fold: {data.source} has "
                f"{len(data)} rows for {k} folds; {self._hint('test')}"
            )
        rng = np.random.default_rng(self.seed)
        if self.stratify == "user":
            rank = random_rank(data.users, data.n_users, rng)
            offset = rng.integers(0, k, size=data.n_users)
            fold = (rank + offset[data.users]) % k
            counts = data.user_counts()
            self.info_["users_fewer_rows_than_folds"] = int(
                np.count_nonzero((counts > 0) & (counts < k))
            )
        else:  # deal a random permutation of the rows round-robin
            fold = np.empty(len(data), dtype=np.int64)
            fold[rng.permutation(len(data))] = np.arange(len(data), dtype=np.int64) % k
        fold = fold.astype(np.int8) if k <= 127 else fold
        return [(fold == i).view(np.int8) for i in range(k)]


# ====================================================================== Surprise's KFold
def surprise_kfold_positions(
    n_rows: int, n_folds: int, random_state: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Surprise's ``KFold(n_folds, random_state=random_state, shuffle=True)`` fold layout.

    Returns one ``(train, test)`` pair per fold of *load positions* (0-based indices into
    the rows in the order Surprise loaded them), each in Surprise's order. Mirrors
    ``surprise.model_selection.split.KFold.split``: ``np.random.RandomState(random_state)``
    shuffles ``arange(n_rows)``; fold ``i``'s test rows are the ``i``-th contiguous chunk
    of the shuffled indices (the first ``n_rows % n_folds`` chunks one row longer) and
    its training rows are ``shuffled[:start] + shuffled[stop:]``, the order in which
    Surprise's Trainset numbers users and items (first appearance) and lists their
    ratings, which fixes SVD's initialisation and SGD order.
    """
    indices = np.arange(n_rows)
    np.random.RandomState(random_state).shuffle(indices)
    out, stop = [], 0
    for fold in range(n_folds):
        start = stop
        stop += n_rows // n_folds + (1 if fold < n_rows % n_folds else 0)
        out.append((np.concatenate([indices[:start], indices[stop:]]), indices[start:stop]))
    return out


def load_order(
    data: Interactions, path: str | Path, *, sep: str = "\t", header: bool = False
) -> tuple[np.ndarray, int]:
    """Row index into ``data`` of each line of a ratings file, in file order.

    The first two fields of every line are the user id and the item id (MovieLens
    ``u.data``, ``ratings.dat``, ``ratings.csv``). Lines whose pair is not in ``data``
    (users removed by ``exclude_users``, ...) are skipped and counted, so the result is
    the load order of the rows ``data`` holds: what Surprise would see loading the same
    file without those lines. Returns ``(order, n_skipped)``.

    Raises:
        DataError: the file cannot be read, or a pair of ``data`` is repeated in it.
        SplitError: rows of ``data`` are missing from the file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: load-order file does not exist (split.load_order)")
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            header=0 if header else None,
            usecols=[0, 1],
            dtype=str,
            engine="python" if len(sep) > 1 else "c",
            keep_default_na=False,
            encoding="latin-1",
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: cannot read the user and item ids (first two fields, sep={sep!r}, "
            f"header={header}) of the load-order file: {exc}"
        ) from None
    users = _codes(frame.iloc[:, 0], data.user_ids)
    items = _codes(frame.iloc[:, 1], data.item_ids)
    known = (users >= 0) & (items >= 0)
    key_file = users[known].astype(np.int64) * data.n_items + items[known]
    key_data = data.users.astype(np.int64) * data.n_items + data.items
    by_key = np.argsort(key_data)
    sorted_keys = key_data[by_key]
    at = np.minimum(np.searchsorted(sorted_keys, key_file), len(sorted_keys) - 1)
    in_data = sorted_keys[at] == key_file
    rows = by_key[at[in_data]]
    n_skipped = len(frame) - len(rows)
    seen = np.bincount(rows, minlength=len(data))
    if (seen > 1).any():
        r = int(np.flatnonzero(seen > 1)[0])
        raise DataError(
            f"{path}: the pair (user {data.user_ids[data.users[r]]!r}, item "
            f"{data.item_ids[data.items[r]]!r}) appears on {int(seen[r])} lines; Surprise "
            f"would keep every line, so its folds cannot be reproduced from deduplicated data"
        )
    if (seen == 0).any():
        r = int(np.flatnonzero(seen == 0)[0])
        raise SplitError(
            f"split 'surprise_kfold': {int(np.count_nonzero(seen == 0))} row(s) of "
            f"{data.source} are not in the load-order file {path}, e.g. (user "
            f"{data.user_ids[data.users[r]]!r}, item {data.item_ids[data.items[r]]!r}); "
            f"load_order must name the file the data was loaded from"
        )
    return rows, int(n_skipped)


def _codes(ids: pd.Series, vocab: pd.Index) -> np.ndarray:
    """Codes of text ids in ``vocab`` (-1 when absent), parsing numbers for numeric vocabularies."""
    ids = ids.str.strip()
    if pd.api.types.is_integer_dtype(vocab.dtype):
        parsed = pd.to_numeric(ids, errors="coerce")
        ok = parsed.notna().to_numpy() & (parsed == np.floor(parsed)).to_numpy()
        codes = np.full(len(ids), -1, dtype=np.int64)
        codes[ok] = vocab.get_indexer(parsed[ok].astype(np.int64))
        return codes
    if pd.api.types.is_float_dtype(vocab.dtype):
        return vocab.get_indexer(pd.to_numeric(ids, errors="coerce"))
    return vocab.get_indexer(ids)


class SurpriseKFoldSplitter(Splitter):
    """Surprise's ``KFold(n_splits=n_folds, random_state=seed)``, fold for fold.

    Surprise shuffles the row indices of its raw ratings (in load order, i.e. the line
    order of the ratings file) with ``np.random.RandomState(seed)`` and cuts the shuffled
    indices into ``n_folds`` contiguous chunks (the first ``n % n_folds`` one row longer);
    chunk ``i`` is fold ``i``'s test set. Our :class:`Interactions` keep rows in canonical
    order (user, time, item) and forget the file order, so this splitter re-reads the
    user and item ids of the ratings file named by ``load_order`` to recover it; with
    ``load_order: null`` the canonical order stands in for the load order (Surprise's
    folds of a file written in that order).

    The split parts keep the canonical row order like every other split. Surprise's own
    training order (which fixes SVD's and SVD++'s initialisation and SGD order) travels
    with each split as ``split.train_order`` (also kept in ``train_rows_``): the indices
    into ``split.train`` in the order Surprise's Trainset receives them. Each fold also
    carries ``split.test_sequence`` (also in ``test_sequence_``): for every test row, its
    number in the sequence of predictions ``cross_validate`` makes over all folds (fold
    ``i``'s test pairs follow fold ``i - 1``'s, each fold in Surprise's test order). It
    places NormalPredictor's draws from a shared random stream as Surprise's benchmark
    does.

    Args:
        n_folds: number of folds (>= 2), Surprise's ``n_splits``.
        seed: Surprise's ``random_state`` (an integer in [0, 2**32)).
        load_order: ratings file whose line order is the load order (first two fields
            user id and item id), or ``None`` for the canonical order.
        load_order_sep: field separator of that file (``"\\t"`` for ``u.data``).
        load_order_header: whether its first line is a header (skipped).
        validation: must stay null: every row is already tested in some fold.
    """

    name = "surprise_kfold"
    validation_allowed = False

    def __init__(
        self,
        *,
        n_folds: int = 5,
        seed: int = 0,
        load_order: str | None = None,
        load_order_sep: str = "\t",
        load_order_header: bool = False,
        validation: float | None = None,
    ):
        self.n_folds = n_folds
        self.seed = seed
        self.load_order = load_order
        self.load_order_sep = load_order_sep
        self.load_order_header = load_order_header
        self.validation = validation

    def _check_params(self) -> None:
        validate.integer("n_folds", self.n_folds, 2)
        validate.seed("seed", self.seed)
        validate.integer("seed", self.seed, 0, maximum=2**32 - 1,
                         expected="an integer in [0, 2**32) (numpy RandomState, as Surprise uses)")
        if self.load_order is not None and not isinstance(self.load_order, str | Path):
            raise ParameterError("load_order", "a file path or null", self.load_order)
        if not isinstance(self.load_order_sep, str) or not self.load_order_sep:
            raise ParameterError("load_order_sep", "a non-empty string", self.load_order_sep)
        validate.boolean("load_order_header", self.load_order_header)

    def _hint(self, problem: str) -> str:
        return (f"lower {self.key('n_folds')} (a fold got no row; the data is too small for "
                "this many)")

    def split(self, data: Interactions) -> list[Split]:
        """The folds, each carrying Surprise's training order as ``train_order`` and the
        place of its test rows in ``cross_validate``'s sequence of predictions as
        ``test_sequence``."""
        splits = super().split(data)
        return [replace(s, train_order=order, test_sequence=seq)
                for s, order, seq in zip(splits, self.train_rows_, self.test_sequence_,
                                         strict=True)]

    def _split(self, data: Interactions) -> list[np.ndarray]:
        k = int(self.n_folds)
        if k > len(data):
            raise SplitError(
                f"{self._describe()} leaves no test interaction in some fold: {data.source} has "
                f"{len(data)} rows for {k} folds; {self._hint('test')}"
            )
        if self.load_order is None:
            order = np.arange(len(data))
        else:
            order, skipped = load_order(
                data, self.load_order, sep=self.load_order_sep, header=self.load_order_header
            )
            self.info_["load_order_lines_not_in_data"] = skipped
        folds: list[np.ndarray] = []
        self.train_rows_: list[np.ndarray] = []
        self.test_sequence_: list[np.ndarray] = []
        start = 0
        for train_pos, test_pos in surprise_kfold_positions(len(data), k, int(self.seed)):
            labels = np.zeros(len(data), dtype=np.int8)  # TRAIN
            labels[order[test_pos]] = TEST
            folds.append(labels)
            # split.train holds the TRAIN rows in canonical order; map Surprise's training
            # order (data rows order[train_pos]) to positions in it
            self.train_rows_.append(
                np.searchsorted(np.flatnonzero(labels == TRAIN), order[train_pos])
            )
            # cross_validate predicts fold after fold, each test set in Surprise's order:
            # the j-th test pair of this fold is prediction number start + j of the run
            sequence = np.empty(len(test_pos), dtype=np.int64)
            sequence[np.searchsorted(np.flatnonzero(labels == TEST), order[test_pos])] = (
                start + np.arange(len(test_pos))
            )
            self.test_sequence_.append(sequence)
            start += len(test_pos)
        return folds
