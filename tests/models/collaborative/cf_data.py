"""Small interaction tables for the BPR, ItemKNN and EASE tests (plain functions, no fixtures)."""

import numpy as np
import pandas as pd

from bench.data.interactions import Interactions


def checkerboard() -> Interactions:
    """Two user groups with disjoint tastes: even users like even items, odd users odd."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        liked = [i for i in range(30) if i % 2 == u % 2]
        for i in rng.choice(liked, size=10, replace=False):
            rows.append((u, int(i), float(rng.integers(1, 6))))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    return Interactions.from_frame(frame)


def random_ratings() -> Interactions:
    """200 users x 100 items, about 8% dense, ratings 1-5, every item rated at least once."""
    rng = np.random.default_rng(1)
    mask = rng.random((200, 100)) < 0.08
    mask[rng.integers(0, 200, 100), np.arange(100)] = True
    users, items = np.nonzero(mask)
    frame = pd.DataFrame(
        {"user_id": users, "item_id": items, "rating": rng.integers(1, 6, len(users)).astype(float)}
    )
    return Interactions.from_frame(frame)


def with_new_user_and_item(x: Interactions) -> tuple[Interactions, int, int]:
    """``x`` plus one user (id 999) whose only row is a new item (id 999), held out of train.

    Returns ``(train, user_code, item_code)``: ``train`` keeps the full vocabulary, so the
    new user and the new item exist as codes but have no training row.
    """
    frame = x.to_frame()
    extra = {"user_id": [999], "item_id": [999]}
    if "rating" in frame:
        extra["rating"] = [5.0]
    full = Interactions.from_frame(pd.concat([frame, pd.DataFrame(extra)], ignore_index=True))
    user = full.user_ids.get_loc(999)
    train = full.take(np.flatnonzero(full.users != user))
    return train, user, full.item_ids.get_loc(999)


def data_history(train: Interactions, users, extra=None):
    """The known rows of ``users`` (data codes, ``-1`` = none) over the data's items, as
    ``score_codes`` receives them: their training rows plus the CSR ``extra``, binary."""
    import scipy.sparse as sp

    users = np.asarray(users)
    rows = train.to_csr()[np.maximum(users, 0)]
    rows = sp.csr_matrix(sp.diags((users >= 0).astype(np.float32)) @ rows)
    if extra is not None:
        rows = sp.csr_matrix(rows + extra)
    rows.eliminate_zeros()
    rows.data[:] = 1.0
    return rows
