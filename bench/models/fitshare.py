"""One fit per (model, training set): identical fits in one run are done once.

The default experiment fits ALS five times with the same hyperparameters on the same
rows: the ``cf_als`` cell and the ALS children of three hybrids (the cascade has two).
When a :class:`SharedFits` is active (:func:`sharing`; the local executor activates one
per batch of cells it runs), :meth:`Recommender.fit <bench.models.base.Recommender.fit>`
asks it before calling ``_fit``: a fit whose inputs equal an earlier one's takes the
state that ``_fit`` stored then instead of fitting again.

**What "equal" means** (the key of a fit): the model's class and hyperparameters (every
constructor parameter, compared by type and exact value), and everything ``_fit`` reads —
the training rows in the model's own codes (their :meth:`Interactions.fingerprint
<bench.data.interactions.Interactions.fingerprint>`, which hashes ids, ratings and times,
plus the model's user and item vocabularies, so the codes match too, and the rating
scale), the item features aligned to the model's items, the user features and
``train_order``. Only *leaf* models share: a model with nested models among its
parameters (a hybrid, business rules) always fits itself, and its children share. A
model shares only when its class allows it (``Recommender.shares_fits``; off for models
that read a file, or the data's vocabulary beyond their own) and its fit is
reproducible (``Recommender.reproducible_fit``: a seed of ``None``, or BPR with several
threads, are not). Numbers therefore never depend on whether a fit was shared.

**What is shared**: the attributes ``_fit`` set (the learned arrays), as the same
objects, read-only by contract (``recommend`` never writes them; the conformance kit's
``fit_shared`` check holds every model to it). What ``fit`` itself sets around ``_fit`` —
the vocabulary and its maps to the caller's codes, ``train_``, ``seen_``, counts,
``train_order_`` — is computed for each model as usual, so a composite's child keeps its
own maps to the composite's codes.

**Memory**: a :class:`SharedFits` is planned from the cells of one batch before they
run (:meth:`SharedFits.plan`): it counts the fits each (model signature, training set)
will have, keeps a fitted state only when a later fit of the batch still expects it,
and drops it after the last one; everything goes when the batch ends. So it holds at
most one state per repeated (model, training set) still to come — for the default
experiment, ALS, the content profile and two popularity rules — never every fit of
the run.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.params import HasParams

log = logging.getLogger("bench")

__all__ = ["SharedFits", "active", "fit_signature", "leaves", "sharing"]

_ACTIVE: contextvars.ContextVar[SharedFits | None] = contextvars.ContextVar(
    "bench_shared_fits", default=None)

#: Python types a hyperparameter may have and still be compared exactly by its repr.
_SCALARS = (type(None), bool, int, float, str)


class _Unshareable(Exception):
    """A value the key cannot compare exactly: the fit is not shared."""


def active() -> SharedFits | None:
    """The :class:`SharedFits` of the batch running in this context, or ``None``."""
    return _ACTIVE.get()


@contextlib.contextmanager
def sharing(shared: SharedFits | None) -> Iterator[SharedFits | None]:
    """Make ``shared`` the active one inside the block (``None``: no sharing); on exit its
    states are dropped and what it saved is logged."""
    token = _ACTIVE.set(shared)
    try:
        yield shared
    finally:
        _ACTIVE.reset(token)
        if shared is not None:
            shared.close()


def leaves(model: HasParams) -> list[HasParams]:
    """The models whose fits may be shared: ``model`` itself, or, when nested models are
    among its parameters (a hybrid's ``components``), theirs, to any depth."""
    children = [c for v in model.get_params().values() for c in _nested(v)]
    if not children:
        return [model]
    return [leaf for child in children for leaf in leaves(child)]


def _nested(value: object) -> list[HasParams]:
    if isinstance(value, HasParams):
        return [value]
    if isinstance(value, Mapping):
        return [c for v in value.values() for c in _nested(v)]
    if isinstance(value, list | tuple):
        return [c for v in value for c in _nested(v)]
    return []


def fit_signature(model: HasParams) -> str | None:
    """The class and hyperparameters of a model whose fit may be shared, as one exact
    string; ``None`` when it may not (see the module docstring)."""
    if not getattr(model, "shares_fits", False) or leaves(model) != [model]:
        return None
    reproducible = getattr(model, "reproducible_fit", None)
    if reproducible is None or not reproducible():
        return None
    cls = type(model)
    try:
        return f"{cls.__module__}.{cls.__qualname__}{_exact(model.get_params())}"
    except _Unshareable:
        return None


def _exact(value: object) -> str:
    """A string equal for two values only when they are equal in type and value."""
    if type(value) in _SCALARS:
        return f"{type(value).__name__}:{value!r}"  # repr(float) round-trips exactly
    if isinstance(value, Mapping):
        items = sorted(f"{_exact(k)}={_exact(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        inner = ",".join(_exact(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    raise _Unshareable(type(value).__name__)


@dataclass
class _Entry:
    state: dict
    where: str
    seconds: float


class SharedFits:
    """The fits one batch of cells shares, planned before it runs.

    Args:
        expected: how many fits each ``(fit_signature, training-rows fingerprint)``
            will have in the batch; only those expected more than once are kept.
    """

    def __init__(self, expected: Mapping[tuple[str, str], int]):
        self.remaining = Counter({k: n for k, n in expected.items() if n > 1})
        self.signatures = {signature for signature, _ in self.remaining}
        self.entries: dict[tuple[str, str], dict[str, _Entry]] = {}
        #: label of the cell now running (set by the executor), for the log
        self.where = ""
        #: fits reused, by class name; seconds of fitting they saved
        self.reused: Counter[str] = Counter()
        self.saved_seconds = 0.0

    @classmethod
    def plan(cls, fits: Iterable[tuple[HasParams, object]]) -> SharedFits:
        """Plan from the ``(unfitted model, training Interactions)`` of each fit to come."""
        expected: Counter[tuple[str, str]] = Counter()
        for model, train in fits:
            for leaf in leaves(model):
                signature = fit_signature(leaf)
                if signature is not None:
                    expected[(signature, train.fingerprint())] += 1
        return cls(expected)

    def __len__(self) -> int:
        """Fitted states held now."""
        return sum(len(e) for e in self.entries.values())

    def held_bytes(self) -> int:
        """Bytes of the arrays and sparse matrices the held states keep alive."""
        return sum(_nbytes(v) for group in self.entries.values() for e in group.values()
                   for v in e.state.values())

    def fit(self, model, train, item_features, user_features,
            fit: Callable[[], None]) -> bool:
        """Run ``fit`` (the model's ``_fit``) unless an equal fit of this batch can stand in
        for it; returns whether the model took a shared state instead."""
        group = self._claim(model, train)
        key = None if group is None else _data_key(model, train, item_features,
                                                   user_features)
        entry = None if key is None else self.entries.get(group, {}).get(key)
        if entry is not None:
            vars(model).update(entry.state)
            self.reused[type(model).__name__] += 1
            self.saved_seconds += entry.seconds
            log.debug("%s: %s fit reused from %s (it took %.2fs)", self.where or "fit",
                      type(model).__name__, entry.where, entry.seconds)
        else:
            before = dict(vars(model))
            t = time.perf_counter()
            fit()
            if key is not None and self.remaining[group] > 0:
                state = {k: v for k, v in vars(model).items()
                         if k not in before or before[k] is not v}
                self.entries.setdefault(group, {})[key] = _Entry(
                    state, self.where or "fit", time.perf_counter() - t)
        if group is not None and self.remaining[group] == 0:
            self.entries.pop(group, None)  # no later fit expects it
        return entry is not None

    def _claim(self, model, train) -> tuple[str, str] | None:
        """Count one expected fit of this model on these rows; its group, or ``None``
        when no fit of the batch could share with it."""
        signature = fit_signature(model)
        if signature not in self.signatures:
            return None
        group = (signature, train.fingerprint())
        if group not in self.remaining:
            return None
        self.remaining[group] = max(0, self.remaining[group] - 1)
        return group

    def close(self) -> None:
        """Drop every state; log what sharing saved."""
        self.entries.clear()
        if self.reused:
            log.info("shared fits: %d reused (%s), %.2fs of fitting saved",
                     sum(self.reused.values()),
                     ", ".join(f"{name} x{n}" for name, n in sorted(self.reused.items())),
                     self.saved_seconds)


def _data_key(model, train, item_features, user_features) -> str | None:
    """Digest of what ``_fit`` reads besides the hyperparameters (``None``: something
    cannot be compared exactly, do not share)."""
    h = hashlib.sha256()
    try:
        h.update(train.fingerprint().encode())
        for ids in (train.user_ids, train.item_ids):
            _index(h, ids)
        h.update(repr(train.rating_scale).encode())
        _item_features(h, item_features)
        _frame(h, user_features)
        _array(h, getattr(model, "train_order_", None))
    except (_Unshareable, TypeError, ValueError):
        return None
    return h.hexdigest()


def _index(h, ids) -> None:
    ids = pd.Index(ids)
    h.update(f"index:{ids.dtype}:{len(ids)}".encode())
    h.update(pd.util.hash_pandas_object(ids, index=False).to_numpy().tobytes())


def _array(h, arr) -> None:
    if arr is None:
        h.update(b"none")
        return
    arr = np.asarray(arr)
    if arr.dtype == object:
        raise _Unshareable("object array")
    h.update(f"array:{arr.dtype}:{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).tobytes())


def _sparse(h, m) -> None:
    if m is None:
        h.update(b"none")
        return
    m = sp.csr_matrix(m)
    h.update(f"csr:{m.shape}".encode())
    for arr in (m.data, m.indices, m.indptr):
        _array(h, arr)


def _item_features(h, features) -> None:
    if features is None:
        h.update(b"none")
        return
    _index(h, features.item_ids)
    h.update(pd.util.hash_pandas_object(pd.Series(features.titles, dtype=object),
                                        index=False).to_numpy().tobytes())
    _array(h, features.years)
    _sparse(h, features.genres)
    _sparse(h, features.tags)
    h.update(_exact([list(features.genre_names), list(features.tag_names)]).encode())


def _frame(h, frame) -> None:
    if frame is None:
        h.update(b"none")
        return
    if not isinstance(frame, pd.DataFrame):
        raise _Unshareable(type(frame).__name__)
    h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    _index(h, frame.index)
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())


def _nbytes(value) -> int:
    if isinstance(value, np.ndarray):
        return value.nbytes
    if sp.issparse(value):
        return sum(a.nbytes for a in (value.data, value.indices, value.indptr))
    return 0
