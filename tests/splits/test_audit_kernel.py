"""The audit's compiled shared-pair count equals the pair-matrix count."""

import numpy as np
import pandas as pd
import pytest

from bench.data.interactions import Interactions
from bench.splits import audit


def part(users, items, n_users, n_items):
    """An Interactions with exactly these rows, in this order (repeats allowed)."""
    return Interactions(user_ids=pd.Index(np.arange(n_users), name="user_id"),
                        item_ids=pd.Index(np.arange(n_items), name="item_id"),
                        users=np.asarray(users, dtype=np.int32),
                        items=np.asarray(items, dtype=np.int32))


def both_ways(a, b, n_users, n_items, monkeypatch):
    monkeypatch.setattr(audit, "KERNEL_MIN_ROWS", 10**12)
    by_matrix = audit._shared_pairs(a, b, n_users, n_items)
    monkeypatch.setattr(audit, "KERNEL_MIN_ROWS", 0)
    return by_matrix, audit._shared_pairs(a, b, n_users, n_items)


def test_hand_made_case(monkeypatch):
    # user 0 shares items 1 and 2 (2 twice in b), user 1 shares none, user 2 has no b row;
    # user 3's item 4 is in a twice and in b once
    a = part([0, 0, 0, 1, 2, 3, 3], [1, 2, 3, 0, 5, 4, 4], 4, 6)
    b = part([0, 0, 0, 1, 3], [2, 1, 2, 5, 4], 4, 6)
    assert both_ways(a, b, 4, 6, monkeypatch) == (3, 3)


@pytest.mark.parametrize("seed", range(5))
def test_random_parts(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    n_users, n_items = 50, 30
    a_users = np.sort(rng.integers(0, n_users, 600))
    b_users = np.sort(rng.integers(0, n_users, 300))
    a = part(a_users, rng.integers(0, n_items, a_users.size), n_users, n_items)
    b = part(b_users, rng.integers(0, n_items, b_users.size), n_users, n_items)
    by_matrix, by_kernel = both_ways(a, b, n_users, n_items, monkeypatch)
    assert by_kernel == by_matrix and by_matrix > 0


def test_rows_not_grouped_by_user_use_the_matrices(monkeypatch):
    a = part([1, 0], [0, 0], 2, 1)
    b = part([0, 1], [0, 0], 2, 1)
    assert not audit._grouped(a)
    assert both_ways(a, b, 2, 1, monkeypatch) == (2, 2)
