"""Builders and invariant checks shared by the split tests."""

from collections import Counter

import numpy as np
import pandas as pd

from bench.data.interactions import Interactions
from bench.splits import (
    GlobalTemporalSplitter,
    ItemColdStartSplitter,
    KFoldSplitter,
    LeaveLastNSplitter,
    RandomHoldoutSplitter,
    UserColdStartSplitter,
)


def make_events(
    n_users: int = 60,
    n_items: int = 40,
    max_rows: int = 20,
    seed: int = 0,
    ts_range: int = 50,
    ratings: bool = True,
    source: str = "events",
) -> Interactions:
    """Random interactions; few distinct timestamps so ties (within and across users) occur."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        k = int(rng.integers(1, max_rows + 1))
        for i in rng.choice(n_items, size=min(k, n_items), replace=False):
            rows.append((f"u{u}", int(i), float(rng.integers(1, 6)), int(rng.integers(ts_range))))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    if not ratings:
        frame = frame.drop(columns="rating")
    return Interactions.from_frame(frame, source=source, rating_scale=(1, 5))


#: One instance per splitter and interesting mode; randomised ones have a ``seed``.
SPLITTERS = {
    "temporal": lambda **kw: GlobalTemporalSplitter(**kw),
    "temporal_drop_val": lambda **kw: GlobalTemporalSplitter(
        quantile=0.7, cold_users="drop", validation=0.2, **kw
    ),
    "temporal_given_3": lambda **kw: GlobalTemporalSplitter(quantile=0.5, fold_in=3, **kw),
    "temporal_given_2_only_val": lambda **kw: GlobalTemporalSplitter(
        quantile=0.3, cold_users="only", fold_in=2, validation=0.3, **kw
    ),
    "leave_last_2": lambda **kw: LeaveLastNSplitter(n=2, **kw),
    "leave_last_val": lambda **kw: LeaveLastNSplitter(validation=0.25, **kw),
    "holdout": lambda **kw: RandomHoldoutSplitter(**kw),
    "holdout_val": lambda **kw: RandomHoldoutSplitter(fraction=0.3, validation=0.2, **kw),
    "kfold": lambda **kw: KFoldSplitter(n_folds=4, **kw),
    "kfold_none": lambda **kw: KFoldSplitter(n_folds=3, stratify="none", **kw),
    "user_cold": lambda **kw: UserColdStartSplitter(**kw),
    "user_cold_fold_in_val": lambda **kw: UserColdStartSplitter(
        fraction=0.3, fold_in=3, validation=0.2, **kw
    ),
    "item_cold": lambda **kw: ItemColdStartSplitter(**kw),
    "item_cold_val": lambda **kw: ItemColdStartSplitter(fraction=0.25, validation=0.2, **kw),
}
RANDOMISED = [k for k in SPLITTERS if not k.startswith(("temporal", "leave_last"))]


def rows_of(x: Interactions) -> list[tuple]:
    """Rows as hashable tuples of source ids and values."""
    return list(x.to_frame().itertuples(index=False, name=None))


def pairs_of(x: Interactions) -> set[tuple]:
    return set(zip(x.users.tolist(), x.items.tolist(), strict=True))


def n_dropped(split) -> int:
    """Rows dropped by a documented policy: cold users (drop) or warm users (only)."""
    return sum(split.info.get(f"{part}_rows_{who}_users_dropped", 0)
               for part in ("test", "validation") for who in ("cold", "warm"))


def assert_split_invariants(data: Interactions, split) -> None:
    """Complete, disjoint, vocabularies kept, non-empty, cut respected."""
    parts = split.parts()
    assert set(parts) >= {"train", "test"}
    # vocabularies kept
    for part in parts.values():
        assert part.n_users == data.n_users and part.n_items == data.n_items
        assert part.user_ids.equals(data.user_ids) and part.item_ids.equals(data.item_ids)
    # complete: the parts' row multiset is the input's, minus the counted drops
    whole = Counter(rows_of(data))
    got = Counter()
    for part in parts.values():
        got.update(rows_of(part))
    assert not (got - whole), "rows appear in a part that are not in the input (or twice)"
    assert sum(got.values()) + n_dropped(split) == len(data)
    if n_dropped(split) == 0:
        assert got == whole
    # disjoint (pairs are unique in the input, so pair-disjoint = row-disjoint)
    names = list(parts)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            assert not pairs_of(parts[names[a]]) & pairs_of(parts[names[b]]), (names[a], names[b])
    assert len(split.test) > 0 and len(split.train) > 0
    if split.cut is not None:
        assert (split.train.timestamps < split.cut).all()
        assert (split.test.timestamps >= split.cut).all()
    assert len(split.fingerprint) == 64


def per_user_count(x: Interactions) -> np.ndarray:
    return np.bincount(x.users, minlength=x.n_users)
