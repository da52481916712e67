"""A shard's evaluation: the harness's evaluators per block, merged exactly across shards."""

import numpy as np
import scipy.sparse as sp

from bench.metrics import beyond_accuracy, evaluate_rankings
from bench.perf.shards import item_counts, shard_blocks, synthetic_block
from bench.shards.evaluate import ShardEvaluator, exposure_counts, summarize_evaluation
from bench.shards.merge import merge_partials
from bench.shards.partition import split_by_shard, user_keys
from tests.shards.helpers import exact_mean, same_float, same_summary

N_ITEMS, K = 211, 10
COUNTS = item_counts(N_ITEMS)


def make_evaluator(**kw):
    return ShardEvaluator(("A", "B"), n_items=N_ITEMS, cutoffs=(5, K), metrics=("ndcg", "recall"),
                          pairs=[("A", "B")], item_counts=COUNTS, n_train_users=3000,
                          n_resamples=30, seed=2, **kw)


def evaluate_sharded(ids, recs, rel, n_shards, block=700):
    parts = []
    for rows in split_by_shard(user_keys(ids), n_shards):
        ev = make_evaluator()
        for start in range(0, rows.size, block):
            r = rows[start : start + block]
            ev.add(ids[r], {m: v[r] for m, v in recs.items()}, rel[r])
        parts.append(ev.partial())
    return summarize_evaluation(merge_partials(parts), item_counts=COUNTS)


def test_sharded_evaluation_equals_one_shard_and_the_harness_evaluators():
    ids = np.arange(3000, dtype=np.int64) + 10**9
    recs, rel = synthetic_block(ids, n_items=N_ITEMS, k=K, seed=4)
    single, single_lists = evaluate_sharded(ids, recs, rel, 1, block=3000)
    for n_shards in (3, 8):
        summary, lists = evaluate_sharded(ids, recs, rel, n_shards)
        assert same_summary(summary, single) and lists == single_lists
    ranking = {m: evaluate_rankings(recs[m], rel, (5, K), ("ndcg", "recall")) for m in recs}
    assert single.n_users == ranking["A"].users.size
    for m in ("A", "B"):
        kept = recs[m][ranking[m].users]
        beyond = beyond_accuracy(kept, (5, K), item_counts=COUNTS, n_train_users=3000)
        for key, values in ranking[m].per_user.items():
            col = single.columns[f"{m}/{key}"]
            assert same_float(col.mean, exact_mean(values))  # exact mean, rounded once
            assert abs(col.mean - values.mean()) <= 1e-15  # numpy's mean, to rounding
        for key in ("arp@5", "arp@10", "novelty@10"):
            assert same_float(single.columns[f"{m}/{key}"].mean,
                              exact_mean(beyond.per_user[key]))
        for key in ("coverage@5", "coverage@10", "gini@5", "gini@10"):
            assert single_lists[f"{m}/{key}"] == beyond.aggregate[key]  # bit for bit
    pair = single.pairs[("A/ndcg@10", "B/ndcg@10")]
    d = ranking["B"].per_user["ndcg@10"] - ranking["A"].per_user["ndcg@10"]
    assert same_float(pair.diff, exact_mean(d)) and pair.low < pair.diff < pair.high


def test_short_and_empty_lists_and_users_without_relevant_items():
    ids = np.arange(400)
    recs, rel = synthetic_block(ids, n_items=N_ITEMS, k=K, seed=1)
    assert (recs["A"] == -1).any() and ((recs["A"] == -1).all(axis=1)).any()
    excluded = int((np.diff(rel.indptr) == 0).sum())
    assert excluded > 0
    ev = make_evaluator()
    ev.add(ids[:0], {m: v[:0] for m, v in recs.items()}, rel[:0])
    empty = sp.csr_matrix((3, N_ITEMS))  # a block where nobody has a relevant item
    ev.add(np.array([-1, -2, -3]), {m: v[:3] for m, v in recs.items()}, empty)
    ev.add(ids, recs, rel)
    part = ev.partial()
    assert part.counts["excluded"].tolist() == [excluded + 3]
    assert part.n_users == 400 - excluded
    arp = summarize_evaluation(part)[0].columns["A/arp@10"]
    assert arp.n < part.n_users  # empty lists have no ARP


def test_exposure_counts_skip_padding():
    recs = np.array([[0, 2, -1], [2, 1, 0]])
    assert exposure_counts(recs, (1, 3), 4).tolist() == [[1, 0, 1, 0], [2, 1, 2, 0]]


def test_synthetic_rows_depend_on_seed_and_id_only():
    ids = np.arange(1000)
    recs, rel = synthetic_block(ids, n_items=N_ITEMS, k=K, seed=3)
    pick = np.array([999, 5, 17, 400])
    sub_recs, sub_rel = synthetic_block(ids[pick], n_items=N_ITEMS, k=K, seed=3)
    assert all(np.array_equal(sub_recs[m], recs[m][pick]) for m in recs)
    assert (sub_rel != rel[pick]).nnz == 0
    for m in recs:  # distinct items per list, padding only at the tail
        real = recs[m] >= 0
        assert all(np.unique(r[r >= 0]).size == (r >= 0).sum() for r in recs[m])
        assert np.all(np.diff(real.astype(int), axis=1) <= 0)
    blocks = list(shard_blocks(1000, 3, 1, block=100))
    mine = np.concatenate(blocks)
    assert all(b.size <= 100 for b in blocks)
    assert np.array_equal(mine, split_by_shard(user_keys(ids), 3)[1])
