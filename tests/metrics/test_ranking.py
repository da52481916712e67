"""Per-user ranking functions: hand-computed cases (arithmetic in comments) and properties."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.errors import ConfigError, EvaluationError
from bench.metrics import (
    average_precision_at_k,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank_at_k,
)

T, F = True, False
LOG2_3 = math.log2(3)  # discount of rank 2 is 1 / log2(3) = 0.6309...


def h(*rows):
    return np.array(rows, dtype=bool)


# ------------------------------------------------------------------ a mixed list
# hits = [1, 0, 1, 0, 0], |R| = 3
MIXED = h([T, F, T, F, F])
MIXED_R = np.array([3])


def test_precision_mixed():
    # P@1 = 1/1; P@3 = 2/3; P@5 = 2/5
    assert precision_at_k(MIXED, 1)[0] == pytest.approx(1.0)
    assert precision_at_k(MIXED, 3)[0] == pytest.approx(2 / 3)
    assert precision_at_k(MIXED, 5)[0] == pytest.approx(2 / 5)


def test_recall_mixed():
    # R@1 = 1/3; R@3 = 2/3; R@5 = 2/3 (the third relevant item is never recommended)
    assert recall_at_k(MIXED, MIXED_R, 1)[0] == pytest.approx(1 / 3)
    assert recall_at_k(MIXED, MIXED_R, 3)[0] == pytest.approx(2 / 3)
    assert recall_at_k(MIXED, MIXED_R, 5)[0] == pytest.approx(2 / 3)


def test_ndcg_mixed():
    # DCG@5 = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5
    # IDCG@5 = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.63093 + 0.5   (min(5, 3) = 3 ones)
    assert ndcg_at_k(MIXED, MIXED_R, 5)[0] == pytest.approx(1.5 / (1 + 1 / LOG2_3 + 0.5))
    # NDCG@2: DCG = 1, IDCG = 1 + 1/log2(3)
    assert ndcg_at_k(MIXED, MIXED_R, 2)[0] == pytest.approx(1 / (1 + 1 / LOG2_3))
    assert ndcg_at_k(MIXED, MIXED_R, 1)[0] == pytest.approx(1.0)


def test_average_precision_mixed():
    # hit ranks 1 and 3: P@1 = 1, P@3 = 2/3 ; AP@5 = (1 + 2/3) / |R| = (5/3) / 3 = 5/9
    assert average_precision_at_k(MIXED, MIXED_R, 5)[0] == pytest.approx(5 / 9)
    # AP@2 = P@1 / 3 = 1/3
    assert average_precision_at_k(MIXED, MIXED_R, 2)[0] == pytest.approx(1 / 3)
    # min(k, |R|) denominator: AP@2 = 1 / min(2, 3) = 1/2 ; AP@5 = (5/3) / 3 = 5/9
    assert average_precision_at_k(MIXED, MIXED_R, 2, "min_k_relevant")[0] == pytest.approx(0.5)
    assert average_precision_at_k(MIXED, MIXED_R, 5, "min_k_relevant")[0] == pytest.approx(5 / 9)


def test_rr_and_hit_rate_mixed():
    assert reciprocal_rank_at_k(MIXED, 5)[0] == 1.0
    assert hit_rate_at_k(MIXED, 5)[0] == 1.0


# ------------------------------------------------------------------ padding / short lists
def test_list_shorter_than_k():
    # recs = [4, 7, -1, -1], relevant = {7, 9} -> hits = [0, 1, 0, 0], |R| = 2
    hits, n_rel = h([F, T, F, F]), np.array([2])
    assert precision_at_k(hits, 4)[0] == pytest.approx(1 / 4)  # k, not the 2 real items
    assert recall_at_k(hits, n_rel, 4)[0] == pytest.approx(1 / 2)
    # DCG = 1/log2(3); IDCG = 1 + 1/log2(3)
    assert ndcg_at_k(hits, n_rel, 4)[0] == pytest.approx((1 / LOG2_3) / (1 + 1 / LOG2_3))
    # AP = P@2 / |R| = (1/2) / 2
    assert average_precision_at_k(hits, n_rel, 4)[0] == pytest.approx(0.25)
    assert reciprocal_rank_at_k(hits, 4)[0] == pytest.approx(0.5)
    assert hit_rate_at_k(hits, 4)[0] == 1.0


def test_empty_list_scores_zero():
    # recs all -1 -> no hit; |R| = 2 -> every metric is 0 (not NaN)
    hits, n_rel = h([F, F, F]), np.array([2])
    for value in (
        precision_at_k(hits, 3),
        recall_at_k(hits, n_rel, 3),
        ndcg_at_k(hits, n_rel, 3),
        average_precision_at_k(hits, n_rel, 3),
        reciprocal_rank_at_k(hits, 3),
        hit_rate_at_k(hits, 3),
    ):
        assert value[0] == 0.0


def test_more_relevant_than_k():
    # |R| = 5, k = 2, hits = [1, 1]
    hits, n_rel = h([T, T]), np.array([5])
    assert precision_at_k(hits, 2)[0] == 1.0
    assert recall_at_k(hits, n_rel, 2)[0] == pytest.approx(2 / 5)
    assert ndcg_at_k(hits, n_rel, 2)[0] == pytest.approx(1.0)  # IDCG uses min(2, 5) = 2 ones
    # AP = (P@1 + P@2) / |R| = 2 / 5 ; with min(k, |R|) = 2: 2 / 2 = 1
    assert average_precision_at_k(hits, n_rel, 2)[0] == pytest.approx(2 / 5)
    assert average_precision_at_k(hits, n_rel, 2, "min_k_relevant")[0] == pytest.approx(1.0)


def test_single_hit_at_rank_one():
    hits, n_rel = h([T, F, F]), np.array([1])
    assert precision_at_k(hits, 3)[0] == pytest.approx(1 / 3)
    assert recall_at_k(hits, n_rel, 3)[0] == 1.0
    assert ndcg_at_k(hits, n_rel, 3)[0] == pytest.approx(1.0)
    assert average_precision_at_k(hits, n_rel, 3)[0] == pytest.approx(1.0)
    assert reciprocal_rank_at_k(hits, 3)[0] == 1.0


def test_single_hit_at_rank_k():
    hits, n_rel = h([F, F, T]), np.array([1])
    assert precision_at_k(hits, 3)[0] == pytest.approx(1 / 3)
    assert recall_at_k(hits, n_rel, 3)[0] == 1.0
    # DCG = 1/log2(4) = 0.5 ; IDCG = 1
    assert ndcg_at_k(hits, n_rel, 3)[0] == pytest.approx(0.5)
    # AP = P@3 / 1 = 1/3 ; RR = 1/3
    assert average_precision_at_k(hits, n_rel, 3)[0] == pytest.approx(1 / 3)
    assert reciprocal_rank_at_k(hits, 3)[0] == pytest.approx(1 / 3)
    # one rank earlier, the hit is outside the cutoff
    assert reciprocal_rank_at_k(hits, 2)[0] == 0.0
    assert hit_rate_at_k(hits, 2)[0] == 0.0
    assert ndcg_at_k(hits, n_rel, 2)[0] == 0.0


def test_graded_ndcg():
    # gains at ranks 1..3 = [3, 0, 1]; the user's relevant gains sorted: ideal = [3, 2, 1]
    hits = h([T, F, T])
    gains = np.array([[3.0, 0.0, 1.0]])
    ideal = np.array([[3.0, 2.0, 1.0]])
    n_rel = np.array([3])
    # k=3: DCG = 3/1 + 0 + 1/log2(4) = 3.5 ; IDCG = 3 + 2/log2(3) + 1/2
    assert ndcg_at_k(hits, n_rel, 3, gains, ideal)[0] == pytest.approx(3.5 / (3.5 + 2 / LOG2_3))
    # k=2: DCG = 3 ; IDCG = 3 + 2/log2(3)
    assert ndcg_at_k(hits, n_rel, 2, gains, ideal)[0] == pytest.approx(3 / (3 + 2 / LOG2_3))
    # k=1: DCG = IDCG = 3
    assert ndcg_at_k(hits, n_rel, 1, gains, ideal)[0] == pytest.approx(1.0)


def test_graded_ndcg_accepts_complete_narrow_ideal_only():
    hits = h([T, F, F])
    gains = np.array([[2.0, 0.0, 0.0]])
    # ideal of width 2 ending with 0 is complete (one relevant item): NDCG@3 = 2/2
    assert ndcg_at_k(hits, np.array([1]), 3, gains, np.array([[2.0, 0.0]]))[0] == 1.0
    with pytest.raises(EvaluationError, match="ideal"):
        ndcg_at_k(hits, np.array([3]), 3, gains, np.array([[2.0, 1.0]]))
    with pytest.raises(ConfigError, match="both"):
        ndcg_at_k(hits, np.array([1]), 3, gains=gains)


def test_no_relevant_items_gives_nan_where_undefined():
    hits, n_rel = h([F, F]), np.array([0])
    assert np.isnan(recall_at_k(hits, n_rel, 2)[0])
    assert np.isnan(ndcg_at_k(hits, n_rel, 2)[0])
    assert np.isnan(average_precision_at_k(hits, n_rel, 2)[0])
    assert precision_at_k(hits, 2)[0] == 0.0
    assert reciprocal_rank_at_k(hits, 2)[0] == 0.0


def test_several_users_at_once():
    # rows: [1,0], [0,1], [0,0] with |R| = 1, 2, 1
    hits, n_rel = h([T, F], [F, T], [F, F]), np.array([1, 2, 1])
    np.testing.assert_allclose(precision_at_k(hits, 2), [0.5, 0.5, 0.0])
    np.testing.assert_allclose(recall_at_k(hits, n_rel, 2), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(reciprocal_rank_at_k(hits, 2), [1.0, 0.5, 0.0])
    # AP: [1/1, (1/2)/2, 0]
    np.testing.assert_allclose(average_precision_at_k(hits, n_rel, 2), [1.0, 0.25, 0.0])
    assert precision_at_k(hits, 2).dtype == np.float64


def test_numeric_hits_count_values_above_zero():
    gains = np.array([[0.0, 4.0, 1.0]])
    np.testing.assert_allclose(precision_at_k(gains, 3), [2 / 3])
    np.testing.assert_allclose(reciprocal_rank_at_k(gains, 3), [0.5])


@pytest.mark.parametrize("k", [0, -1, 4, True, 2.0, "2", None])
def test_bad_k_is_a_config_error(k):
    with pytest.raises(ConfigError, match=r"k: expected an integer in \[1, 3\]"):
        precision_at_k(h([T, F, T]), k)


def test_bad_shapes_are_evaluation_errors():
    with pytest.raises(EvaluationError, match="2-D"):
        precision_at_k(np.array([True, False]), 1)
    with pytest.raises(EvaluationError, match="n_relevant"):
        recall_at_k(h([T, F]), np.array([1, 2]), 1)


def test_unknown_map_denominator():
    with pytest.raises(ConfigError, match="min_k_relevant"):
        average_precision_at_k(MIXED, MIXED_R, 2, denominator="k")


# ------------------------------------------------------------------ properties
@st.composite
def hit_matrices(draw):
    n_users = draw(st.integers(1, 6))
    width = draw(st.integers(1, 8))
    rows = draw(
        st.lists(
            st.lists(st.booleans(), min_size=width, max_size=width),
            min_size=n_users,
            max_size=n_users,
        )
    )
    hits = np.array(rows, dtype=bool)
    extra = draw(st.lists(st.integers(0, 5), min_size=n_users, max_size=n_users))
    n_rel = hits.sum(axis=1) + np.array(extra)  # |R| >= hits in the list
    return hits, n_rel


@settings(max_examples=60, deadline=None)
@given(hit_matrices(), st.data())
def test_values_in_unit_interval(hm, data):
    hits, n_rel = hm
    k = data.draw(st.integers(1, hits.shape[1]))
    ok = n_rel > 0
    for values in (
        precision_at_k(hits, k),
        recall_at_k(hits, n_rel, k)[ok],
        ndcg_at_k(hits, n_rel, k)[ok],
        average_precision_at_k(hits, n_rel, k)[ok],
        average_precision_at_k(hits, n_rel, k, "min_k_relevant")[ok],
        reciprocal_rank_at_k(hits, k),
        hit_rate_at_k(hits, k),
    ):
        assert np.all((values >= 0) & (values <= 1 + 1e-12))


@settings(max_examples=60, deadline=None)
@given(hit_matrices())
def test_precision_times_k_is_hit_count_and_recall_grows(hm):
    hits, n_rel = hm
    ok = n_rel > 0
    previous = np.zeros(int(ok.sum()))
    for k in range(1, hits.shape[1] + 1):
        np.testing.assert_allclose(
            precision_at_k(hits, k) * k, hits[:, :k].sum(axis=1), rtol=0, atol=1e-12
        )
        recall = recall_at_k(hits, n_rel, k)[ok]
        assert np.all(recall >= previous)
        previous = recall


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.integers(1, 8), st.integers(0, 4))
def test_perfect_ranking(width, n_rel, tail):
    # all relevant items first, then misses: NDCG = 1 at every k; AP = 1 when |R| <= k
    hits = np.zeros((1, width + tail), dtype=bool)
    hits[0, : min(n_rel, width + tail)] = True
    rel = np.array([n_rel])
    for k in range(1, width + tail + 1):
        assert ndcg_at_k(hits, rel, k)[0] == pytest.approx(1.0)
        if n_rel <= k:
            assert average_precision_at_k(hits, rel, k)[0] == pytest.approx(1.0)
        assert average_precision_at_k(hits, rel, k, "min_k_relevant")[0] == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=8), st.integers(0, 3))
def test_perfect_graded_ranking(levels, tail):
    # items recommended in descending gain order, then misses: graded NDCG = 1 at every k
    ideal = np.array([sorted(levels, reverse=True) + [0] * tail], dtype=float)
    hits = ideal > 0
    for k in range(1, ideal.shape[1] + 1):
        assert ndcg_at_k(hits, np.array([len(levels)]), k, ideal, ideal)[0] == pytest.approx(1.0)
