"""The split contract: a frozen :class:`Split` and the :class:`Splitter` base class.

A splitter labels every row of an :class:`~bench.data.interactions.Interactions` with the
part it goes to. Implementers write only :meth:`Splitter._split`, which returns one
``int8`` label array per fold (``TRAIN``, ``TEST``, ``FOLD_IN`` or ``DROPPED``).
Everything else happens here, once, for every splitter:

* the hyperparameters are checked (:class:`~bench.errors.ParameterError` naming the
  parameter, prefixed with :attr:`Splitter.where`);
* a validation part is carved from the training rows when ``validation`` is set, by the
  same protocol applied to the training rows with its own seeded random stream;
* the parts are built with the vocabularies of the input, so codes mean the same user
  and item in every part;
* the post-conditions are checked (:class:`~bench.errors.SplitError`): every row in
  exactly one part or counted as dropped, train and test disjoint, vocabularies kept,
  no test row before a temporal cut and no train row at or after it, held-out users or
  items absent from train, and a non-empty test and train set.

The module also holds the vectorised group helpers the splitters share (per-user ranks
by time or at random, computed with one sort instead of a loop over users).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import pandas as pd

import bench.pickling  # noqa: F401  (read-only mappings pickle: cells ship splits)
from bench import validate
from bench.data.interactions import Interactions
from bench.errors import ConfigError, EmptySplitError, ParameterError, SplitError
from bench.params import HasParams

TRAIN, TEST, VALIDATION, FOLD_IN = 0, 1, 2, 3
DROPPED = -1
"""Label of rows removed by a documented policy (counted in ``Split.info``, in no part)."""

PARTS: tuple[tuple[str, int], ...] = (
    ("train", TRAIN),
    ("test", TEST),
    ("validation", VALIDATION),
    ("fold_in", FOLD_IN),
)
_LABELS = (DROPPED, TRAIN, TEST, VALIDATION, FOLD_IN)
_VALIDATION_STREAM = 0x76616C  # spawn key of the validation carve's random stream


def _empty_mapping() -> Mapping:
    return MappingProxyType({})


@dataclass(frozen=True, eq=False)
class Split:
    """One train/test split (one fold of a k-fold split).

    Attributes:
        train: rows a model is fitted on.
        test: rows the model is evaluated against.
        validation: rows carved from the training data by the same protocol, or ``None``.
        fold_in: history given to a model at recommend time for users absent from train
            (user cold-start), or ``None`` when no row is fold-in history.
        name: the splitter's name (``"temporal"``, ``"kfold"``, ...).
        fold, n_folds: which fold this is, of how many.
        params: the splitter's hyperparameters (for logs and the evaluation card).
        cut: the temporal cut (Unix seconds) when the split has one: every test row is
            at or after it, every train row before it.
        info: counts worth reporting (``test_users``, ``test_users_without_train``,
            ``users_too_short_kept_in_train``, ...).
        train_order: positions into ``train`` in the order the source protocol presents
            the training rows (Surprise's KFold), or ``None`` for the stored order. Only
            order-sensitive learners (SGD) use it; it is passed to ``Recommender.fit``.
        test_sequence: for each row of ``test``, its place in the source protocol's
            sequence of test predictions, counted across all folds (Surprise's
            ``cross_validate`` predicts fold after fold, each fold's test pairs in its
            own order), or ``None``. Only a reproduction of a protocol whose predictions
            consume a shared random stream uses it (Surprise's ``NormalPredictor`` under
            ``eval.unscored_ratings: surprise_default``).
    """

    train: Interactions
    test: Interactions
    validation: Interactions | None = None
    fold_in: Interactions | None = None
    name: str = ""
    fold: int = 0
    n_folds: int = 1
    params: Mapping[str, object] = field(default_factory=_empty_mapping)
    cut: int | None = None
    info: Mapping[str, int] = field(default_factory=_empty_mapping)
    train_order: np.ndarray | None = None
    test_sequence: np.ndarray | None = None

    def parts(self) -> dict[str, Interactions]:
        """The parts that exist, by name, in the order train, test, validation, fold_in."""
        out = {}
        for name, _ in PARTS:
            part = getattr(self, name)
            if part is not None:
                out[name] = part
        return out

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 (hex) over each part's name and content fingerprint.

        Two splits with the same rows in the same parts have the same fingerprint,
        whatever produced them; an absent part hashes differently from an empty one.
        """
        h = hashlib.sha256()
        for name, _ in PARTS:
            part = getattr(self, name)
            h.update(name.encode())
            h.update(b"=" + (part.fingerprint().encode() if part is not None else b"absent"))
            h.update(b";")
        return h.hexdigest()

    def summary(self) -> dict:
        """Plain-Python description: rows/users/items per part, cut, fingerprint, params, info."""
        parts = {}
        for name, part in self.parts().items():
            parts[name] = {
                "rows": len(part),
                "users": int(np.count_nonzero(part.user_counts())),
                "items": int(np.count_nonzero(part.item_counts())),
            }
        return {
            "name": self.name,
            "fold": self.fold,
            "n_folds": self.n_folds,
            "cut": self.cut,
            "cut_utc": None if self.cut is None else _iso(self.cut),
            "fingerprint": self.fingerprint,
            "params": dict(self.params),
            "info": dict(self.info),
            "parts": parts,
        }

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}={len(p)}" for n, p in self.parts().items())
        return f"Split({self.name!r}, fold {self.fold + 1}/{self.n_folds}: {sizes})"


class Splitter(HasParams):
    """Base class of every splitter.

    Subclasses take their hyperparameters as keyword arguments of ``__init__`` and store
    them as attributes of the same name, with no logic and no validation there. They
    implement :meth:`_check_params`, :meth:`_split` and, unless validation is refused,
    :meth:`_validation_splitter`. While :meth:`_split` runs they may record ``self.cut_``
    (the temporal cut) and counts in ``self.info_``.

    Class attributes subclasses set:
        name: short name used in messages, logs and ``Split.name``.
        labels_used: labels ``_split`` may return (anything else is a bug).
        cold_axis: ``"user"`` or ``"item"`` when test (and validation, fold-in) rows must
            belong to users / items with no training row; checked after every split.
        validation_allowed: ``False`` when the protocol has no validation carve-out.
    """

    name: ClassVar[str] = "splitter"
    labels_used: ClassVar[frozenset[int]] = frozenset({TRAIN, TEST})
    cold_axis: ClassVar[str | None] = None
    validation_allowed: ClassVar[bool] = True
    validation: float | None = None
    #: where the caller says the parameters live, for messages (``split.fraction``); the
    #: caller may set another path on an instance, or None to add the path itself
    where: str | None = "split"


    def _describe(self) -> str:
        """``split 'name' (k=v, ...)`` with the parameters that are set, for messages."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v is not None)
        return f"split '{self.name}' ({args})"

    # ------------------------------------------------------------------ public entry
    def split(self, data: Interactions) -> list[Split]:
        """Split ``data``; one :class:`Split` per fold.

        Raises:
            ParameterError: a hyperparameter is out of range (the message names it as
                :meth:`key` does, e.g. ``split.fraction``).
            SplitError: the data cannot be split this way (no timestamps, nothing left
                to test or train on) or a post-condition failed.
        """
        if not isinstance(data, Interactions):
            raise SplitError(
                f"split '{self.name}': expected an Interactions table, got {type(data).__name__}"
            )
        try:
            self._check_params()
            self._check_validation_param()
        except ParameterError as exc:
            if self.where is None:
                raise
            raise ParameterError(self.key(exc.param), exc.expected, exc.received) from None
        if len(data) == 0:
            raise SplitError(f"{self._describe()}: {data.source} has no interaction to split")
        folds = self._labels(data)
        cut, base_info = self.cut_, dict(self.info_)
        params = MappingProxyType(self.get_params())
        splits = []
        for fold, labels in enumerate(folds):
            info = dict(base_info)
            if DROPPED in self.labels_used:  # unless the splitter counted its drops itself
                info.setdefault("test_rows_cold_users_dropped",
                                int(np.count_nonzero(labels == DROPPED)))
            self._check_not_empty(data, labels, fold, len(folds))
            val_cut = None
            if self.validation is not None:
                val_cut = self._carve_validation(data, labels, info)
            split = self._build(data, labels, fold, len(folds), cut, params, info)
            self._check_split(data, split, labels, val_cut)
            splits.append(split)
        return splits

    # ------------------------------------------------------------------ for implementers
    def key(self, param: str) -> str:
        """``param`` as the user set it (``split.fraction``; see :attr:`where`), for hints."""
        return f"{self.where}.{param}" if self.where else param

    def _check_params(self) -> None:
        """Check every hyperparameter with :mod:`bench.validate` (its name only)."""
        raise NotImplementedError

    def _split(self, data: Interactions) -> list[np.ndarray]:
        """One ``int8`` label array of ``len(data)`` per fold (``TRAIN``, ``TEST``, ...)."""
        raise NotImplementedError

    def _validation_splitter(self, fraction: float) -> Splitter:
        """The splitter that carves ``fraction`` of the training rows as validation.

        Same protocol, ``validation=None``, and a seed derived from this one so the
        validation carve has its own random stream (see :func:`validation_seed`).
        """
        raise NotImplementedError

    def _hint(self, problem: str) -> str:
        """What to change when the split leaves ``problem`` (``"test"``/``"train"``) empty."""
        return "change the split parameters"

    # ------------------------------------------------------------------ machinery
    def _check_validation_param(self) -> None:
        if self.validation is None:
            return
        if not self.validation_allowed:
            raise ConfigError(
                f"{self.key('validation')}: split '{self.name}' has no validation carve-out "
                f"(every row is tested in some fold); expected null, got {self.validation!r}"
            )
        validate.fraction("validation", self.validation, expected="a number in (0, 1) or null")

    def _labels(self, data: Interactions) -> list[np.ndarray]:
        """Run ``_split`` with fresh ``cut_``/``info_`` and check what it returned."""
        self.cut_: int | None = None
        self.info_: dict[str, int] = {}
        folds = self._split(data)
        allowed = self.labels_used
        for i, labels in enumerate(folds):
            if labels.shape != (len(data),) or labels.dtype != np.int8:
                raise SplitError(
                    f"{self._describe()}: bug: fold {i} labels have shape {labels.shape} and "
                    f"dtype {labels.dtype}; expected ({len(data)},) int8"
                )
            counted = sum(int(np.count_nonzero(labels == lab)) for lab in allowed)
            if counted != len(data):
                raise SplitError(
                    f"{self._describe()}: bug: {len(data) - counted} row(s) of fold {i} have a "
                    f"label outside {sorted(allowed)}"
                )
        return folds

    def _where(self, fold: int, n_folds: int) -> str:
        return self._describe() + (f" fold {fold}" if n_folds > 1 else "")

    def _check_not_empty(self, data: Interactions, labels: np.ndarray, fold, n_folds) -> None:
        """A split must leave something to test and something to train on."""
        for part, lab in (("test", TEST), ("training", TRAIN)):
            if not (labels == lab).any():
                raise EmptySplitError(
                    f"{self._where(fold, n_folds)} leaves no {part} interaction ({len(data)} "
                    f"rows in {data.source}); {self._hint('test' if lab == TEST else 'train')}",
                    part,
                )

    def _carve_validation(self, data: Interactions, labels: np.ndarray, info: dict) -> int | None:
        """Relabel part of the training rows as validation (in place); returns its cut."""
        sub = self._validation_splitter(self.validation)
        rows = np.flatnonzero(labels == TRAIN)
        sub_labels = sub._labels(data.take(rows, source=f"{data.source}[train]"))[0]
        for part, lab in (("validation", TEST), ("training", TRAIN)):
            if not (sub_labels == lab).any():
                change = "raise" if lab == TEST else "lower"
                raise SplitError(
                    f"{self._describe()} leaves no {part} interaction once validation="
                    f"{self.validation!r} is carved from {len(rows)} training rows; "
                    f"{change} split.validation"
                )
        val_rows = rows[sub_labels == TEST]
        labels[val_rows] = VALIDATION
        labels[rows[sub_labels == FOLD_IN]] = FOLD_IN
        dropped = sub_labels == DROPPED
        labels[rows[dropped]] = DROPPED
        if DROPPED in sub.labels_used:
            info["validation_rows_cold_users_dropped"] = int(np.count_nonzero(dropped))
        for key, value in sub.info_.items():  # test_x of the carve is validation_x here
            info["validation_" + key.removeprefix("test_")] = value
        if sub.cut_ is not None:
            info["validation_cut"] = int(sub.cut_)
        return sub.cut_

    def _build(self, data, labels, fold, n_folds, cut, params, info) -> Split:
        parts: dict[str, Interactions | None] = {}
        for part, lab in PARTS:
            mask = labels == lab
            wanted = {
                "train": True,
                "test": True,
                "validation": self.validation is not None,
                "fold_in": bool(mask.any()),
            }[part]
            parts[part] = data.take(mask, source=f"{data.source}[{part}]") if wanted else None
        train_users = parts["train"].user_counts() > 0  # counted once, kept on the part
        test_users = parts["test"].user_counts() > 0
        info["test_users"] = int(np.count_nonzero(test_users))
        info["test_users_without_train"] = int(np.count_nonzero(test_users & ~train_users))
        return Split(
            **parts,
            name=self.name,
            fold=fold,
            n_folds=n_folds,
            params=params,
            cut=None if cut is None else int(cut),
            info=MappingProxyType({k: int(v) for k, v in info.items()}),
        )

    def _check_split(
        self, data: Interactions, split: Split, labels: np.ndarray, val_cut: int | None
    ) -> None:
        """The post-conditions every split must meet (SplitError otherwise)."""
        where = self._where(split.fold, split.n_folds)
        parts = split.parts()
        # every row in exactly one part, or counted as dropped: labels are exclusive, so
        # the parts are disjoint row sets; their sizes must add up to the input.
        n_dropped = int(np.count_nonzero(labels == DROPPED))
        total = sum(len(p) for p in parts.values()) + n_dropped
        if total != len(data):
            raise SplitError(
                f"{where}: bug: parts hold {total - n_dropped} rows and {n_dropped} were "
                f"dropped, but the input has {len(data)}; rows were lost or duplicated"
            )
        for name, part in parts.items():
            if part.user_ids is not data.user_ids or part.item_ids is not data.item_ids:
                raise SplitError(
                    f"{where}: bug: part '{name}' does not share the input's vocabularies"
                )
        if split.cut is not None:
            _check_cut(where, split.cut, split.train, "train", before=True)
            _check_cut(where, split.cut, split.test, "test", before=False)
            if split.validation is not None:
                _check_cut(where, split.cut, split.validation, "validation", before=True)
        if val_cut is not None and split.validation is not None:
            _check_cut(where, val_cut, split.train, "train (validation cut)", before=True)
            _check_cut(where, val_cut, split.validation, "validation", before=False)
        if self.cold_axis is not None:
            codes = "users" if self.cold_axis == "user" else "items"
            size = data.n_users if self.cold_axis == "user" else data.n_items
            in_train = np.bincount(getattr(split.train, codes), minlength=size) > 0
            for name, part in parts.items():
                if name == "train":
                    continue
                leaked = in_train[getattr(part, codes)]
                if leaked.any():
                    raise SplitError(
                        f"{where}: bug: {int(np.count_nonzero(leaked))} {name} row(s) belong "
                        f"to {codes} that also appear in train; held-out {codes} must be unseen"
                    )


def _check_cut(where: str, cut: int, part: Interactions, name: str, *, before: bool) -> None:
    if len(part) == 0:
        return
    ts = part.timestamps
    bad = int(np.count_nonzero(ts >= cut if before else ts < cut))
    if bad:
        side = "at or after" if before else "before"
        raise SplitError(
            f"{where}: bug: {bad} {name} row(s) are {side} the cut {cut} ({_iso(cut)})"
        )


def _iso(seconds: int) -> str:
    return pd.Timestamp(int(seconds), unit="s", tz="UTC").isoformat()


# ---------------------------------------------------------------------- seeds
def validation_seed(seed: int) -> int:
    """The seed of the validation carve: an independent stream derived from ``seed``."""
    return int(np.random.SeedSequence([int(seed), _VALIDATION_STREAM]).generate_state(1)[0])


# ---------------------------------------------------------------------- vectorised helpers
def round_half_up(x: np.ndarray | float) -> np.ndarray:
    """Round halves up (``0.5 -> 1``, ``2.5 -> 3``) as int64, tolerant of float noise."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5 + 1e-9).astype(np.int64)


def group_starts(counts: np.ndarray) -> np.ndarray:
    """First position of each group when rows are sorted by group (``cumsum - counts``)."""
    starts = np.cumsum(counts, dtype=np.int64)
    starts -= counts
    return starts


def _ranks_from_order(groups: np.ndarray, n_groups: int, order: np.ndarray) -> np.ndarray:
    """Rank of each row within its group, given an order sorted by group then rank key."""
    starts = group_starts(np.bincount(groups, minlength=n_groups))
    rank = np.empty(len(groups), dtype=np.int64)
    rank[order] = np.arange(len(groups), dtype=np.int64) - starts[groups[order]]
    return rank


def is_canonical(data: Interactions) -> bool:
    """Whether rows are in canonical order: by user, then timestamp, then item."""
    users = data.users
    du = np.diff(users)
    if (du < 0).any():
        return False
    same = du == 0
    if data.timestamps is None:
        return not (np.diff(data.items)[same] <= 0).any()
    dt = np.diff(data.timestamps)
    if (dt[same] < 0).any():
        return False
    tie = same & (dt == 0)
    return not (np.diff(data.items)[tie] <= 0).any()


def time_rank(data: Interactions) -> np.ndarray:
    """0-based position of each row in its user's history by time (ties: item code).

    This is the canonical order, so for canonical data it is the offset of the row
    from the start of the user's block; otherwise one ``lexsort`` orders the rows.
    """
    if is_canonical(data):
        starts = group_starts(data.user_counts())
        return np.arange(len(data), dtype=np.int64) - starts[data.users]
    order = np.lexsort((data.items, data.timestamps, data.users))
    return _ranks_from_order(data.users, data.n_users, order)


def shuffled_time_rank(data: Interactions, rng: np.random.Generator) -> np.ndarray:
    """0-based position of each row in its user's history by time, ties in random order.

    Rows of one user at the same second are ordered by a uniformly random permutation
    drawn from ``rng`` (not by item code, which would favour low item codes), so a
    prefix of ``n`` rows that cuts through a same-second group takes a random subset of
    it. Needs timestamps.
    """
    noise = rng.random(len(data))
    order = np.lexsort((noise, data.timestamps, data.users))
    return _ranks_from_order(data.users, data.n_users, order)


def first_n_by_time(data: Interactions, eligible: np.ndarray, n: int) -> np.ndarray:
    """Boolean mask: each user's first ``n`` eligible rows by time, whole tie groups.

    The tie rule: when a user's ``n``-th eligible row shares its second with later
    eligible rows, the whole same-second group is taken (the user gets more than ``n``
    rows), so every eligible row left out is strictly later than every row taken. Users
    with ``n`` eligible rows or fewer have all of them taken; ``n = 0`` takes nothing.
    No order among same-second rows is ever used, so nothing depends on item codes.
    Needs timestamps.
    """
    eligible = np.asarray(eligible, dtype=bool)
    taken = np.zeros(len(data), dtype=bool)
    if n <= 0 or not eligible.any():
        return taken
    rows = np.flatnonzero(eligible)
    users, ts = data.users[rows], data.timestamps[rows]
    order = np.lexsort((ts, users))
    rank = _ranks_from_order(users, data.n_users, order)
    # the n-th row's second per user; users with fewer rows take them all
    nth = np.full(data.n_users, np.iinfo(np.int64).max, dtype=np.int64)
    at_n = rank == n - 1
    nth[users[at_n]] = ts[at_n]
    taken[rows] = ts <= nth[users]
    return taken


def random_rank(groups: np.ndarray, n_groups: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rank of each row within its group (a per-group shuffle).

    One stable ``argsort`` of ``group << b | noise`` (``b`` random bits below the group
    code), so the result depends only on the generator's stream, not on the sort.
    """
    n = len(groups)
    group_bits = max(1, int(max(n_groups, 1) - 1).bit_length())
    noise_bits = 63 - group_bits
    key = groups.astype(np.int64) << noise_bits
    key |= rng.integers(0, 1 << noise_bits, size=n, dtype=np.int64)
    order = np.argsort(key, kind="stable")
    return _ranks_from_order(groups, n_groups, order)


def pick_fraction(counts: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask over codes: a random ``fraction`` of the codes with ``counts > 0``.

    The number picked is ``fraction x present`` rounded half up, and at least one.
    """
    present = np.flatnonzero(counts > 0)
    n_pick = max(1, int(round_half_up(fraction * len(present))))
    mask = np.zeros(len(counts), dtype=bool)
    mask[present[rng.permutation(len(present))[:n_pick]]] = True
    return mask


def take_per_user(
    counts: np.ndarray, fraction: float, min_train: int, info: dict[str, int]
) -> np.ndarray:
    """Rows each user gives up: ``fraction x n_u`` rounded half up, leaving ``min_train``.

    Records in ``info`` the users too short to give any row (``n_u <= min_train``
    although the rounding asked for one) and the users whose share was capped.
    """
    want = round_half_up(fraction * counts)
    room = np.maximum(counts - min_train, 0)
    take = np.minimum(want, room)
    info["users_too_short_kept_in_train"] = int(np.count_nonzero((want > 0) & (room == 0)))
    info["users_test_rows_capped"] = int(np.count_nonzero((want > room) & (room > 0)))
    return take
