"""Sharded evaluation with exact merges, for user sets too large for one process.

Users are hashed into shards by a stable hash of their id; each shard evaluates its users
block by block and returns a partial of mergeable statistics; the partials merge into
the same numbers, bit for bit, whatever the number of shards (one shard is the
single-process evaluation).

- :mod:`bench.shards.partition`: stable 64-bit user keys (SplitMix64, FNV-1a for strings)
  and the shard of each key.
- :mod:`bench.shards.weights`: Poisson(1) bootstrap weights from a counter-based
  generator keyed by (seed, user key, resample).
- :mod:`bench.shards.exact`: exact sums of float64 values as integer digits.
- :mod:`bench.shards.partial`: :class:`ShardPartial` (counts, exact sums and sums of
  squares per metric and per compared pair, Poisson-bootstrap sums, exposure counts) and
  :class:`ShardAccumulator`, which builds it with bounded memory.
- :mod:`bench.shards.merge`: :func:`merge_partials`, and :func:`summarize` (means,
  paired t-tests, bootstrap intervals), :func:`list_metrics` (coverage, Gini).
- :mod:`bench.shards.evaluate`: :class:`ShardEvaluator`, a shard's top-k lists through
  the harness's evaluators into a partial.

The method is described in ``docs/scale-out.md``; ``bench perf shards`` measures it.
"""

from bench.shards.evaluate import ShardEvaluator, exposure_counts, summarize_evaluation
from bench.shards.merge import (
    ColumnSummary,
    MergedSummary,
    PairSummary,
    list_metrics,
    merge_partials,
    summarize,
)
from bench.shards.partial import ShardAccumulator, ShardPartial, load_partial
from bench.shards.partition import shard_of, split_by_shard, user_keys
from bench.shards.weights import poisson_weights

__all__ = [
    "ColumnSummary",
    "MergedSummary",
    "PairSummary",
    "ShardAccumulator",
    "ShardEvaluator",
    "ShardPartial",
    "exposure_counts",
    "list_metrics",
    "load_partial",
    "merge_partials",
    "poisson_weights",
    "shard_of",
    "split_by_shard",
    "summarize",
    "summarize_evaluation",
    "user_keys",
]
