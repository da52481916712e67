"""Cold-start protocols, run alongside the main split on the same dataset and models.

* **User cold start, one temporal sweep over fold-in history.** A global cut in time
  (``cold_start.user.quantile``; by default the main split's own cut): the training
  rows are every row strictly before it, and the held-out users are the users whose
  first interaction is at or after it (:class:`~bench.splits.temporal.GlobalTemporalSplitter`
  with ``cold_users="only"`` and ``fold_in = max(n)``). Each held-out user's first
  ``max(n)`` interactions by time are the fold-in pool (a same-second group at its end
  joins it whole) and their strictly later interactions are their test set, so every
  level is scored on the *same* users and the *same* test items, and no training or
  history row is as late as a tested one. Each model is fitted once; then, for every
  ``n`` in ``cold_start.user.fold_in`` (default 0, 1, 3, 5, 10), it recommends with
  ``n`` rows of the pool as history: the earliest ``n``, same-second rows in a seeded
  random order (:func:`fold_in_levels`). Users with ``max(n)`` rows or fewer have
  nothing to test and are counted, not scored.
* **Item cold start.** A share of items is held out
  (:class:`~bench.splits.cold_start.ItemColdStartSplitter`): every relevant test item is
  one the models never saw in training. It is not temporal: its training rows include
  interactions later than the tested ones, which the leakage audit reports.

When a protocol's training rows are exactly a main fold's (the sweep on the main
split's cut), the main cell evaluates it with the model it already fitted
(:attr:`bench.cells.MainEvaluation.protocols`): one fit instead of two. Otherwise each
(model, protocol) is its own cell (:mod:`bench.cells`), run by the same code. Both
produce one row per (model, level, evaluated user) with every ranking metric and the
length of the list (``n_recommended``; 0 = the model could not serve the user):
``protocol``, ``level``, ``model``, ``family``, ``user_id``, metrics... ``level`` is the
fold-in size (user protocol) or -1 (item protocol). Each (model, protocol) is one MLflow
child run whose metrics are keyed ``ndcg_at_10.fold_in_3`` / ``ndcg_at_10.item_cold``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.cells import ITEM_COLD, USER_COLD, Cell, CellInputs, ProtocolEvaluation
from bench.config import ColdStartSettings, EvalSettings
from bench.data.dataset import Dataset
from bench.errors import EmptySplitError, SplitError
from bench.evaluation import relevance
from bench.splits.base import Split, shuffled_time_rank
from bench.splits.cold_start import ItemColdStartSplitter
from bench.splits.temporal import GlobalTemporalSplitter

log = logging.getLogger("bench")

__all__ = ["ITEM_COLD", "USER_COLD", "fold_in_levels", "protocol_cells", "protocol_evaluations",
           "user_cold_start_splitter"]

#: the sweep's cut when neither ``cold_start.user.quantile`` nor the main split gives one
FALLBACK_QUANTILE = 0.5


def fold_in_levels(
    split: Split, users: np.ndarray, sizes: tuple[int, ...], seed: int = 0
) -> dict[int, sp.csr_matrix | None]:
    """History matrices (rows = ``users``) holding ``n`` of each user's fold-in rows.

    ``n = 0`` maps to ``None`` (no history). Level ``n`` takes each user's earliest ``n``
    fold-in rows by time; rows at the same second are ordered by a random permutation
    seeded by ``seed`` (:func:`~bench.splits.base.shuffled_time_rank`), so a level that
    cuts through a same-second group takes a random subset of it rather than the
    lowest item codes. Every level is a prefix of the next. The split puts whole
    same-second groups on one side of the pool's end, so every level is strictly
    earlier than every tested row.
    """
    pool = split.fold_in
    out: dict[int, sp.csr_matrix | None] = {}
    if pool is None or len(pool) == 0:
        return {n: None for n in sizes}
    rank = shuffled_time_rank(pool, np.random.default_rng(seed))
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


def user_cold_start_splitter(cold: ColdStartSettings,
                             main_cut: int | None) -> GlobalTemporalSplitter:
    """The sweep's splitter: at ``cold_start.user.quantile``, else at the main split's
    cut, else at the :data:`FALLBACK_QUANTILE` of all rows."""
    max_n = max(cold.user_fold_in)
    if cold.user_quantile is not None:
        return GlobalTemporalSplitter(quantile=cold.user_quantile, cold_users="only",
                                      fold_in=max_n)
    if main_cut is not None:
        date = pd.Timestamp(int(main_cut), unit="s", tz="UTC").isoformat()
        return GlobalTemporalSplitter(date=date, cold_users="only", fold_in=max_n)
    return GlobalTemporalSplitter(quantile=FALLBACK_QUANTILE, cold_users="only", fold_in=max_n)


def protocol_evaluations(dataset: Dataset, settings: EvalSettings, cold: ColdStartSettings,
                         main_cut: int | None = None) -> list[ProtocolEvaluation]:
    """The enabled cold-start protocols, each with its split, users and levels.

    ``main_cut`` is the main split's temporal cut (``Split.cut``), if it has one: the
    user sweep uses it unless ``cold_start.user.quantile`` is set.
    """
    out = []
    if cold.user_enabled:
        user = _user_sweep(dataset, settings, cold, main_cut)
        out += [user] if user is not None else []
    if cold.item_fraction is not None:
        splitter = ItemColdStartSplitter(fraction=cold.item_fraction, seed=cold.item_seed)
        split = _protocol_split(splitter, dataset, "cold_start.item")
        relevant, users, _ = relevance(split, settings)
        log.info("item cold start: %d users with a held-out relevant item", len(users))
        out.append(ProtocolEvaluation(ITEM_COLD, split, relevant[users], users, {-1: None},
                                      settings))
    return out


def _user_sweep(dataset: Dataset, settings: EvalSettings, cold: ColdStartSettings,
                main_cut: int | None) -> ProtocolEvaluation | None:
    """The user sweep's evaluation; ``None`` (with a warning) when nobody is new at the cut."""
    data = dataset.interactions
    if not data.has_timestamps:
        raise SplitError(
            f"cold_start.user: {data.source} has no timestamps; the user cold-start sweep "
            "holds out the users new after a cut in time (set cold_start.user=null)"
        )
    splitter = user_cold_start_splitter(cold, main_cut)
    try:
        split = _protocol_split(splitter, dataset, "cold_start.user")
    except EmptySplitError as exc:
        if exc.part != "test":
            raise
        log.warning(
            "cold_start.user: no user of %s is new at the cut with more than %d "
            "interactions to give as history; the user cold-start sweep is skipped (an "
            "earlier cut, cold_start.user.quantile, finds more new users)",
            data.source, max(cold.user_fold_in),
        )
        return None
    relevant, users, _ = relevance(split, settings)
    levels = fold_in_levels(split, users, cold.user_fold_in, cold.user_seed)
    log.info("user cold start: %d users new at the cut %s evaluated, fold-in n = %s",
             len(users), split.summary()["cut_utc"], list(cold.user_fold_in))
    return ProtocolEvaluation(USER_COLD, split, relevant[users], users, levels, settings)


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
    splitter.where = key  # parameters are cold_start.user.quantile, ..., in messages
    try:
        return splitter.split(dataset.interactions)[0]
    except EmptySplitError as exc:
        raise EmptySplitError(f"{key}: {exc}", exc.part) from None
    except SplitError as exc:
        raise SplitError(f"{key}: {exc}") from None
