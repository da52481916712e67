"""Cross-check against trec_eval (through pytrec_eval) on random inputs, per user, to 1e-9.

Mapping: precision@k = ``P_k``, recall@k = ``recall_k``, ndcg@k = ``ndcg_cut_k`` (binary
and graded), map@k = ``map_cut_k``. The cutoffs come from trec_eval's default set
(5, 10, 15, 20, 30, 100, ...), which is what it reports when a measure is asked for
without parameters; the lists have length K = 30.

``recip_rank`` is *not* cut in trec_eval: it uses the whole run of a query. So it is
compared twice: with the full run against our mrr@K (K = the full list length), and with
runs truncated at k before they are given to pytrec_eval against our mrr@k.

trec_eval only reports queries present in both the qrels and the run:
* users with no relevant item are left out of the qrels; we exclude and count them;
* users with an empty list cannot appear in the run (it has no document for them), so
  they are absent from pytrec_eval's results; we check they score exactly 0 with us.
Ranks are fixed with distinct scores ``K - rank`` (trec_eval sorts by score).
"""

import numpy as np
import pytest
import scipy.sparse as sp

from bench.metrics import evaluate_rankings, metric_key

pytrec_eval = pytest.importorskip("pytrec_eval")

K = 30
CUTOFFS = (5, 10, 15, 20, 30)
TREC = {"precision": "P", "recall": "recall", "ndcg": "ndcg_cut", "map": "map_cut"}


def random_input(seed, n_users=300, n_items=150):
    """Lists (with empty and short ones), relevance (with |R| = 0 and |R| > K), levels 1-4."""
    rng = np.random.default_rng(seed)
    recs = np.full((n_users, K), -1, dtype=np.int64)
    rows, cols, levels = [], [], []
    for u in range(n_users):
        kind = rng.random()
        n_rel = 0 if kind < 0.1 else rng.integers(K + 1, 61) if kind < 0.25 else rng.integers(1, 16)
        items = rng.choice(n_items, size=n_rel, replace=False)
        rows += [u] * n_rel
        cols += items.tolist()
        levels += rng.integers(1, 5, n_rel).tolist()
        kind = rng.random()
        length = 0 if kind < 0.1 else rng.integers(1, K) if kind < 0.3 else K
        score = rng.random(n_items)
        score[items] += 0.4  # make hits common enough
        recs[u, :length] = np.argsort(-score)[:length]
    levels = np.array(levels, dtype=float)
    shape = (n_users, n_items)
    binary = sp.csr_matrix((np.ones_like(levels), (rows, cols)), shape=shape)
    graded = sp.csr_matrix((levels, (rows, cols)), shape=shape)
    return recs, binary, graded


def trec_qrels(relevant):
    return {
        str(u): {str(i): int(g) for i, g in zip(relevant[u].indices, relevant[u].data, strict=True)}
        for u in range(relevant.shape[0])
        if relevant[u].nnz
    }


def trec_run(recs, depth=K):
    return {
        str(u): {str(item): float(K - rank) for rank, item in enumerate(row[:depth]) if item >= 0}
        for u, row in enumerate(recs.tolist())
        if row[0] >= 0
    }


def compare(ev, recs, results, pairs):
    """pairs: [(our key, trec measure)]; users absent from results must have empty lists."""
    in_results = 0
    for j, u in enumerate(ev.users.tolist()):
        got = results.get(str(u))
        if got is None:
            assert (recs[u] < 0).all(), f"user {u} has a list but trec_eval skipped it"
            for ours, _ in pairs:
                assert ev.per_user[ours][j] == 0.0
            continue
        in_results += 1
        for ours, theirs in pairs:
            assert ev.per_user[ours][j] == pytest.approx(got[theirs], abs=1e-9), (u, ours)
    return in_results


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_binary_metrics_match_trec_eval(seed):
    recs, binary, _ = random_input(seed)
    ev = evaluate_rankings(recs, binary, cutoffs=CUTOFFS)
    n_rel = np.diff(binary.indptr)
    assert ev.n_excluded == int((n_rel == 0).sum()) > 0
    assert ev.users.tolist() == np.flatnonzero(n_rel > 0).tolist()
    # the generator covers every edge case among evaluated users
    lengths = (recs[ev.users] >= 0).sum(axis=1)
    assert (lengths == 0).any() and ((lengths > 0) & (lengths < K)).any()
    assert (ev.n_relevant > K).any()

    qrels = trec_qrels(binary)
    measures = {"P", "recall", "ndcg_cut", "map_cut", "recip_rank"}
    results = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(trec_run(recs))
    pairs = [(metric_key(m, k), f"{t}_{k}") for m, t in TREC.items() for k in CUTOFFS]
    pairs.append((metric_key("mrr", K), "recip_rank"))  # full run: recip_rank == MRR@K
    assert compare(ev, recs, results, pairs) > 200


@pytest.mark.parametrize("seed", [0, 1])
def test_reciprocal_rank_at_k_matches_trec_eval_on_truncated_runs(seed):
    recs, binary, _ = random_input(seed)
    ev = evaluate_rankings(recs, binary, cutoffs=CUTOFFS, metrics=("mrr",))
    evaluator = pytrec_eval.RelevanceEvaluator(trec_qrels(binary), {"recip_rank"})
    for k in (5, 10, 20):
        results = evaluator.evaluate(trec_run(recs, depth=k))
        compare(ev, recs, results, [(metric_key("mrr", k), "recip_rank")])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_graded_ndcg_matches_trec_eval(seed):
    recs, _, graded = random_input(seed)
    ev = evaluate_rankings(recs, graded, cutoffs=CUTOFFS, graded=True)
    measures = {"P", "recall", "ndcg_cut", "map_cut"}
    results = pytrec_eval.RelevanceEvaluator(trec_qrels(graded), measures).evaluate(trec_run(recs))
    # graded levels change NDCG only; trec_eval counts every level >= 1 as relevant elsewhere
    pairs = [(metric_key(m, k), f"{t}_{k}") for m, t in TREC.items() for k in CUTOFFS]
    assert compare(ev, recs, results, pairs) > 200
    binary = evaluate_rankings(recs, graded, cutoffs=(10,), metrics=("ndcg",))
    assert not np.allclose(binary.per_user["ndcg@10"], ev.per_user["ndcg@10"])
