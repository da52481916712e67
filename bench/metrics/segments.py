"""Segments: who a metric is averaged over.

Every evaluation is broken down three ways (see docs/protocols.md, "Segments"):

* **history buckets** — users by the length of the history the model had for them
  (training rows plus fold-in rows), cut at configurable lower edges; the default edges
  ``[0, 1, 6, 21, 101]`` give the buckets ``0``, ``1-5``, ``6-20``, ``21-100``, ``101+``;
* **rule segments** — the labels a rule-based segment model assigns to users (for
  example activity or demographic segments), applied to every model in the run;
* **new items** — each user's relevant test items that never occur in training. The
  ranking metrics are recomputed against that relevant set alone, for the users who have
  at least one such item; everyone else has no value (NaN) in that segment.

The functions here are vectorised and pure; the runner stores the labels in each model's
per-user table, and reports average any metric column by any label column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.config import history_labels
from bench.metrics.keys import NEW_ITEMS

__all__ = ["NEW_ITEMS", "history_buckets", "new_item_relevance", "segment_means"]


def history_buckets(lengths: np.ndarray, edges) -> np.ndarray:
    """The bucket label of each history length.

    Args:
        lengths: non-negative integer history lengths, one per user.
        edges: strictly ascending lower edges starting at 0, e.g. ``[0, 1, 6, 21, 101]``.

    Returns:
        An object array of labels such as ``"0"``, ``"1-5"`` or ``"101+"``: bucket ``j``
        holds lengths in ``[edges[j], edges[j+1] - 1]``; the last bucket is open-ended.
    """
    labels = np.asarray(history_labels(edges), dtype=object)
    pos = np.searchsorted(np.asarray(edges, dtype=np.int64), np.asarray(lengths), side="right")
    return labels[pos - 1]


def new_item_relevance(relevant: sp.csr_matrix, train_item_counts: np.ndarray) -> sp.csr_matrix:
    """``relevant`` restricted to items with no training interaction (same shape).

    Args:
        relevant: CSR (users x items) of relevant test items (values = gains).
        train_item_counts: training interactions per item code (length ``n_items``).
    """
    counts = np.asarray(train_item_counts)
    if counts.shape[0] != relevant.shape[1]:
        raise ValueError(
            f"train_item_counts: expected {relevant.shape[1]} items, got {counts.shape[0]}"
        )
    keep = (counts == 0).astype(np.float64)
    out = sp.csr_matrix(relevant @ sp.diags(keep))
    out.eliminate_zeros()
    out.sort_indices()
    return out


def segment_means(
    per_user: pd.DataFrame, by: str, columns: list[str]
) -> pd.DataFrame:
    """Mean of each metric column per label of column ``by``, with the users counted.

    NaN cells (a user without a value for that metric, e.g. no new relevant item) are
    left out of that column's mean; ``users`` counts the users with the label. Labels keep
    their order of first appearance unless ``by`` is categorical.
    """
    groups = per_user.groupby(by, sort=False, observed=True)
    frame = groups[columns].mean()
    frame.insert(0, "users", groups.size())
    return frame.reset_index()
