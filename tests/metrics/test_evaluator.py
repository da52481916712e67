"""The vectorised evaluator: hand case, exclusion, validation, keys, batch == single users."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import bench.metrics.evaluator as evaluator_module
from bench.errors import ConfigError, EvaluationError
from bench.metrics import RankingEvaluation, evaluate_rankings, metric_key, mlflow_key

ALL = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")


def csr(rows, n_items):
    r = [u for u, row in enumerate(rows) for _ in row]
    c = [i for row in rows for i in row]
    d = [g for row in rows for g in row.values()]
    return sp.csr_matrix((np.array(d, dtype=float), (r, c)), shape=(len(rows), n_items))


# users: 0 -> list [1, 2, 3], R = {1, 3}      hits [1, 0, 1]
#        1 -> list [4, -1, -1], R = {0}       hits [0, 0, 0] (short list)
#        2 -> list [0, 1, 2], R = {}          excluded
#        3 -> list [-1, -1, -1], R = {2, 4}   hits [0, 0, 0] (empty list)
#        4 -> list [5, 0, 4], R = {4, 0, 5, 1} hits [1, 1, 1], |R| = 4 > k
RECS = np.array([[1, 2, 3], [4, -1, -1], [0, 1, 2], [-1, -1, -1], [5, 0, 4]])
REL = csr(
    [{1: 1.0, 3: 1.0}, {0: 1.0}, {}, {2: 1.0, 4: 1.0}, {4: 1.0, 0: 1.0, 5: 1.0, 1: 1.0}],
    n_items=6,
)
D2, D3 = 1 / math.log2(3), 0.5  # discounts of ranks 2 and 3


@pytest.fixture(scope="module")
def hand():
    return evaluate_rankings(RECS, REL, cutoffs=(1, 3), metrics=ALL)


def test_hand_case_users_and_exclusion(hand):
    assert isinstance(hand, RankingEvaluation)
    assert hand.users.tolist() == [0, 1, 3, 4]
    assert hand.n_relevant.tolist() == [2, 1, 2, 4]
    assert hand.n_excluded == 1
    assert list(hand.per_user) == [metric_key(m, k) for m in ALL for k in (1, 3)]
    assert all(v.dtype == np.float64 and v.shape == (4,) for v in hand.per_user.values())


def test_hand_case_values(hand):
    pu = hand.per_user
    np.testing.assert_allclose(pu["precision@1"], [1, 0, 0, 1])
    np.testing.assert_allclose(pu["precision@3"], [2 / 3, 0, 0, 1])
    np.testing.assert_allclose(pu["recall@3"], [2 / 2, 0, 0, 3 / 4])
    np.testing.assert_allclose(pu["recall@1"], [1 / 2, 0, 0, 1 / 4])
    # user 0: DCG@3 = 1 + 1/log2(4), IDCG@3 = 1 + 1/log2(3) ; user 4: all hits, IDCG on 3 ones
    np.testing.assert_allclose(pu["ndcg@3"], [(1 + D3) / (1 + D2), 0, 0, 1])
    np.testing.assert_allclose(pu["ndcg@1"], [1, 0, 0, 1])
    # user 0: (P@1 + P@3) / 2 = (1 + 2/3) / 2 ; user 4: (1 + 1 + 1) / 4
    np.testing.assert_allclose(pu["map@3"], [(1 + 2 / 3) / 2, 0, 0, 3 / 4])
    np.testing.assert_allclose(pu["map@1"], [1 / 2, 0, 0, 1 / 4])
    np.testing.assert_allclose(pu["mrr@3"], [1, 0, 0, 1])
    np.testing.assert_allclose(pu["hit_rate@3"], [1, 0, 0, 1])


def test_hand_case_mean(hand):
    means = hand.mean()
    assert means["precision@3"] == pytest.approx((2 / 3 + 1) / 4)
    assert means["map@3"] == pytest.approx(((1 + 2 / 3) / 2 + 3 / 4) / 4)
    assert means["hit_rate@1"] == pytest.approx(0.5)
    assert all(isinstance(v, float) for v in means.values())


def test_min_k_relevant_denominator():
    ev = evaluate_rankings(
        RECS, REL, cutoffs=(3,), metrics=("map",), map_denominator="min_k_relevant"
    )
    # user 4: 3 / min(3, 4) = 1 ; user 0: (1 + 2/3) / min(3, 2)
    np.testing.assert_allclose(ev.per_user["map@3"], [(1 + 2 / 3) / 2, 0, 0, 1])


def test_graded_ndcg_uses_the_stored_gains():
    # user 0: list [2, 0, 1], gains {0: 3, 1: 1, 2: 2} ; ideal [3, 2, 1]
    # DCG@3 = 2 + 3/log2(3) + 1/2 ; IDCG@3 = 3 + 2/log2(3) + 1/2
    rel = csr([{0: 3.0, 1: 1.0, 2: 2.0}], n_items=4)
    ev = evaluate_rankings(
        np.array([[2, 0, 1]]), rel, cutoffs=(1, 3), metrics=("ndcg", "recall"), graded=True
    )
    assert ev.per_user["ndcg@3"][0] == pytest.approx((2.5 + 3 * D2) / (3.5 + 2 * D2))
    assert ev.per_user["ndcg@1"][0] == pytest.approx(2 / 3)
    assert ev.per_user["recall@3"][0] == 1.0  # other metrics stay binary
    binary = evaluate_rankings(np.array([[2, 0, 1]]), rel, cutoffs=(3,), metrics=("ndcg",))
    assert binary.per_user["ndcg@3"][0] == pytest.approx(1.0)


def test_only_columns_up_to_the_largest_cutoff_are_read():
    # a repeated item beyond the largest cutoff is not inspected
    recs = np.array([[0, 1, 2, 2]])
    ev = evaluate_rankings(recs, csr([{1: 1.0}], 3), cutoffs=(2,))
    assert ev.per_user["precision@2"].tolist() == [0.5]
    with pytest.raises(EvaluationError, match="repeat"):
        evaluate_rankings(recs, csr([{1: 1.0}], 3), cutoffs=(4,))


def test_blocks_give_the_same_values(monkeypatch):
    rng = np.random.default_rng(0)
    recs = np.stack([rng.permutation(30)[:8] for _ in range(50)])
    rel = sp.csr_matrix((rng.random((50, 30)) < 0.2).astype(float))
    whole = evaluate_rankings(recs, rel, cutoffs=(1, 4, 8))
    monkeypatch.setattr(evaluator_module, "_BLOCK_ROWS", 7)
    blocked = evaluate_rankings(recs, rel, cutoffs=(1, 4, 8))
    for key, values in whole.per_user.items():
        np.testing.assert_array_equal(blocked.per_user[key], values)


def test_blocks_with_excluded_users_graded_and_duplicates(monkeypatch):
    rng = np.random.default_rng(1)
    recs = np.stack([rng.permutation(30)[:8] for _ in range(20)])
    levels = rng.integers(1, 5, (20, 30)) * (rng.random((20, 30)) < 0.3)
    levels[4:8] = 0  # a whole block of users without relevant items
    rel = sp.csr_matrix(levels.astype(float))
    whole = evaluate_rankings(recs, rel, cutoffs=(2, 8), graded=True)
    monkeypatch.setattr(evaluator_module, "_BLOCK_ROWS", 4)
    blocked = evaluate_rankings(recs, rel, cutoffs=(2, 8), graded=True)
    assert blocked.n_excluded == whole.n_excluded >= 4
    assert 5 not in blocked.users.tolist()
    for key, values in whole.per_user.items():
        np.testing.assert_allclose(blocked.per_user[key], values, rtol=0, atol=1e-15)
    recs[13, 3] = recs[13, 0]
    with pytest.raises(EvaluationError, match="row 13 repeats"):
        evaluate_rankings(recs, rel, cutoffs=(2, 8))


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("cutoffs", "shown"),
    [
        ([10, 5], "[10, 5]"),
        ([], "[]"),
        ([0, 2], "[0, 2]"),
        ([2, 2], "[2, 2]"),
        ([1.5], "[1.5]"),
        ([True], "[True]"),
        (None, "None"),
    ],
)
def test_bad_cutoffs(cutoffs, shown):
    with pytest.raises(ConfigError) as err:
        evaluate_rankings(RECS, REL, cutoffs=cutoffs)
    assert str(err.value) == (
        f"eval.cutoffs: expected strictly ascending positive integers, got {shown}"
    )


def test_cutoff_longer_than_the_lists():
    with pytest.raises(ConfigError, match=r"eval.cutoffs: expected values <= 3 .*got \[1, 4\]"):
        evaluate_rankings(RECS, REL, cutoffs=[1, 4])


def test_single_int_cutoff_is_accepted():
    assert list(evaluate_rankings(RECS, REL, cutoffs=3, metrics="mrr").per_user) == ["mrr@3"]


def test_unknown_metric_lists_the_known_ones():
    with pytest.raises(
        ConfigError,
        match=r"expected names from \['precision', 'recall', 'ndcg', "
        r"'map', 'mrr', 'hit_rate'\].*unknown: \['auc'\]",
    ):
        evaluate_rankings(RECS, REL, cutoffs=(3,), metrics=("ndcg", "auc"))
    with pytest.raises(ConfigError, match=r"eval\.metrics"):
        evaluate_rankings(RECS, REL, cutoffs=(3,), metrics=())


def test_bad_options():
    with pytest.raises(ConfigError, match=r"eval\.map_denominator"):
        evaluate_rankings(RECS, REL, cutoffs=(3,), map_denominator="k")
    with pytest.raises(ConfigError, match=r"eval\.graded"):
        evaluate_rankings(RECS, REL, cutoffs=(3,), graded="yes")


def test_row_count_mismatch():
    with pytest.raises(EvaluationError, match="5 lists and 4 relevance rows"):
        evaluate_rankings(RECS, REL[:4], cutoffs=(3,))


def test_no_relevant_item_at_all():
    with pytest.raises(
        EvaluationError,
        match="test set has no relevant item for any user; check the relevance threshold",
    ):
        evaluate_rankings(RECS, sp.csr_matrix((5, 6)), cutoffs=(3,))


# ------------------------------------------------------------------ keys
def test_metric_key():
    assert metric_key("ndcg", 10) == "ndcg@10"
    assert metric_key("hit_rate", np.int64(5)) == "hit_rate@5"
    for bad in [("ndcg", 0), ("ndcg", True), ("", 5), ("a@b", 5)]:
        with pytest.raises(ConfigError):
            metric_key(*bad)


def test_mlflow_key():
    assert mlflow_key("ndcg@10") == "ndcg_at_10"
    assert mlflow_key("ndcg@10.cold") == "ndcg_at_10.cold"
    assert mlflow_key("recall@20.1-5") == "recall_at_20.1-5"
    assert mlflow_key("precision@5.21+") == "precision_at_5.21plus"
    assert mlflow_key("map@5.a:b") == "map_at_5.a_b"
    assert mlflow_key("rmse") == "rmse"


# ------------------------------------------------------------------ properties
@st.composite
def ranking_inputs(draw):
    n_items = draw(st.integers(3, 12))
    width = draw(st.integers(1, n_items))
    n_users = draw(st.integers(1, 6))
    rows, rel_rows = [], []
    for _ in range(n_users):
        perm = draw(st.permutations(range(n_items)))
        length = draw(st.integers(0, width))
        rows.append(list(perm[:length]) + [-1] * (width - length))
        rel_rows.append(draw(st.sets(st.integers(0, n_items - 1), max_size=n_items)))
    rel_rows[0] = rel_rows[0] or {0}  # at least one user can be evaluated
    cutoffs = sorted(draw(st.sets(st.integers(1, width), min_size=1, max_size=3)))
    return np.array(rows), csr([dict.fromkeys(s, 1.0) for s in rel_rows], n_items), cutoffs


def naive(recs_row, relevant_set, k):
    """Loop-based reference for one user."""
    ranked = list(recs_row[:k])
    hits = [int(item in relevant_set) for item in ranked]
    n = len(relevant_set)
    dcg = sum(hit / math.log2(i + 2) for i, hit in enumerate(hits))
    idcg = sum(1 / math.log2(i + 2) for i in range(min(k, n)))
    ap = sum(sum(hits[: i + 1]) / (i + 1) for i, hit in enumerate(hits) if hit) / n
    rr = next((1 / (i + 1) for i, hit in enumerate(hits) if hit), 0.0)
    return {
        "precision": sum(hits) / k,
        "recall": sum(hits) / n,
        "ndcg": dcg / idcg,
        "map": ap,
        "mrr": rr,
        "hit_rate": float(any(hits)),
    }


@settings(max_examples=60, deadline=None)
@given(ranking_inputs())
def test_matches_a_loop_reference_and_unit_interval(inputs):
    recs, rel, cutoffs = inputs
    ev = evaluate_rankings(recs, rel, cutoffs=cutoffs)
    for j, u in enumerate(ev.users.tolist()):
        relevant_set = set(rel[u].indices.tolist())
        for k in cutoffs:
            expected = naive(recs[u], relevant_set, k)
            for name, value in expected.items():
                got = ev.per_user[metric_key(name, k)][j]
                assert got == pytest.approx(value, abs=1e-12)
                assert 0.0 <= got <= 1.0 + 1e-12
    assert ev.n_excluded == int((np.diff(rel.indptr) == 0).sum())


@settings(max_examples=40, deadline=None)
@given(ranking_inputs())
def test_batch_mean_equals_mean_of_single_user_evaluations(inputs):
    recs, rel, cutoffs = inputs
    batch = evaluate_rankings(recs, rel, cutoffs=cutoffs)
    singles = [
        evaluate_rankings(recs[u : u + 1], rel[u : u + 1], cutoffs=cutoffs)
        for u in batch.users.tolist()
    ]
    for key, value in batch.mean().items():
        assert value == pytest.approx(np.mean([s.per_user[key][0] for s in singles]), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(ranking_inputs())
def test_recall_never_falls_as_k_grows(inputs):
    recs, rel, _ = inputs
    ev = evaluate_rankings(
        recs, rel, cutoffs=list(range(1, recs.shape[1] + 1)), metrics=("recall", "hit_rate")
    )
    for name in ("recall", "hit_rate"):
        stacked = np.stack([ev.per_user[metric_key(name, k)] for k in range(1, recs.shape[1] + 1)])
        assert np.all(np.diff(stacked, axis=0) >= 0)
