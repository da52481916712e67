"""Cold-start protocols, run after the main split on the same dataset and models.

* **User cold start, one sweep over fold-in history.** A share of users is held out of
  training (:class:`~bench.splits.cold_start.UserColdStartSplitter` with
  ``fold_in = max(n)``). Each held-out user's first ``max(n)`` interactions (by time) are
  the fold-in pool and the rest is their test set, so every level is scored on the *same*
  users and the *same* test items. Each model is fitted once; then, for every ``n`` in
  ``cold_start.user.fold_in`` (default 0, 1, 3, 5, 10), it recommends with the first
  ``n`` rows of the pool as history. Users with ``max(n)`` rows or fewer have nothing
  to test and are counted, not scored.
* **Item cold start.** A share of items is held out
  (:class:`~bench.splits.cold_start.ItemColdStartSplitter`): every relevant test item is
  one the models never saw in training.

Each (model, protocol) is one cell (:mod:`bench.cells`), run by the same code as the
main split's cells. Both produce one row per (model, level, evaluated user) with every
ranking metric: ``protocol``, ``level``, ``model``, ``family``, ``user_id``, metrics...
``level`` is the fold-in size (user protocol) or -1 (item protocol). Each (model,
protocol) is one MLflow child run whose metrics are keyed ``ndcg_at_10.fold_in_3`` /
``ndcg_at_10.item_cold``.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from bench.cells import ITEM_COLD, USER_COLD, Cell, CellInputs, ProtocolEvaluation
from bench.config import ColdStartSettings, EvalSettings
from bench.data.dataset import Dataset
from bench.errors import SplitError
from bench.evaluation import relevance
from bench.splits.base import Split, time_rank
from bench.splits.cold_start import ItemColdStartSplitter, UserColdStartSplitter

log = logging.getLogger("bench")

__all__ = ["ITEM_COLD", "USER_COLD", "fold_in_levels", "protocol_cells", "protocol_evaluations"]


def fold_in_levels(
    split: Split, users: np.ndarray, sizes: tuple[int, ...]
) -> dict[int, sp.csr_matrix | None]:
    """History matrices (rows = ``users``) holding each user's first ``n`` fold-in rows.

    ``n = 0`` maps to ``None`` (no history). Rows are ranked by time within each user
    (ties by item code), the order the splitter used to pick the pool.
    """
    pool = split.fold_in
    out: dict[int, sp.csr_matrix | None] = {}
    if pool is None or len(pool) == 0:
        return {n: None for n in sizes}
    rank = time_rank(pool)
    for n in sizes:
        if n == 0:
            out[n] = None
            continue
        keep = rank < n
        m = sp.csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.float32), (pool.users[keep], pool.items[keep])),
            shape=(pool.n_users, pool.n_items),
        )
        out[n] = m[users]
    return out


def protocol_evaluations(dataset: Dataset, settings: EvalSettings,
                         cold: ColdStartSettings) -> list[ProtocolEvaluation]:
    """The enabled cold-start protocols, each with its split, users and levels."""
    out = []
    if cold.user_fraction is not None:
        splitter = UserColdStartSplitter(
            fraction=cold.user_fraction, fold_in=max(cold.user_fold_in), seed=cold.user_seed
        )
        split = _protocol_split(splitter, dataset, "cold_start.user")
        relevant, users, _ = relevance(split, settings)
        levels = fold_in_levels(split, users, cold.user_fold_in)
        log.info("user cold start: %d held-out users evaluated, fold-in n = %s",
                 len(users), list(cold.user_fold_in))
        out.append(ProtocolEvaluation(USER_COLD, split, relevant[users], users, levels,
                                      settings))
    if cold.item_fraction is not None:
        splitter = ItemColdStartSplitter(fraction=cold.item_fraction, seed=cold.item_seed)
        split = _protocol_split(splitter, dataset, "cold_start.item")
        relevant, users, _ = relevance(split, settings)
        log.info("item cold start: %d users with a held-out relevant item", len(users))
        out.append(ProtocolEvaluation(ITEM_COLD, split, relevant[users], users, {-1: None},
                                      settings))
    return out


def protocol_cells(evaluations: list[ProtocolEvaluation], models_cfg,
                   dataset: Dataset) -> tuple[list[Cell], list[CellInputs]]:
    """One cell per (protocol, model), protocols in order, models in config order."""
    cells, inputs = [], []
    for ev in evaluations:
        for name, model_cfg in models_cfg.items():
            cells.append(Cell(model=name, protocol=ev.protocol, fold=None))
            inputs.append(CellInputs(model_cfg=model_cfg, evaluation=ev,
                                     item_features=dataset.item_features,
                                     user_features=dataset.user_features))
    return cells, inputs


def _protocol_split(splitter, dataset: Dataset, key: str) -> Split:
    """The protocol's split; a refusal names the ``cold_start`` key, not ``split``."""
    splitter.where = key  # parameters are cold_start.user.fraction, ..., in messages
    try:
        return splitter.split(dataset.interactions)[0]
    except SplitError as exc:
        raise SplitError(f"{key}: {exc}") from None
