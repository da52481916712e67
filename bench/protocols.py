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

Both produce one row per (model, level, evaluated user) with every ranking metric, in
the frame :func:`run_cold_start` returns (``protocol``, ``level``, ``model``,
``family``, ``user_id``, metrics...). ``level`` is the fold-in size (user protocol) or
-1 (item protocol). Each (model, protocol) is one MLflow child run whose metrics are keyed
``ndcg_at_10.fold_in_3`` / ``ndcg_at_10.item_cold``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.config import ColdStartSettings, EvalSettings
from bench.data.dataset import Dataset
from bench.errors import SplitError
from bench.evaluation import relevance
from bench.metrics import evaluate_rankings, mlflow_key
from bench.models.base import Recommender
from bench.splits.base import Split, time_rank
from bench.splits.cold_start import ItemColdStartSplitter, UserColdStartSplitter
from bench.targets import build

log = logging.getLogger("bench")

__all__ = ["ITEM_COLD", "USER_COLD", "fold_in_levels", "run_cold_start"]

USER_COLD = "user_cold_start"
ITEM_COLD = "item_cold_start"


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


def run_cold_start(
    dataset: Dataset,
    models_cfg,
    settings: EvalSettings,
    cold: ColdStartSettings,
    *,
    tracker,
    parent,
    out: Path | None = None,
    failures: list | None = None,
) -> pd.DataFrame:
    """Run the enabled cold-start protocols for every model; return the per-user frame.

    A model that raises is recorded in ``failures`` (see
    :class:`~bench.runner.ModelFailure`, traceback under ``out``) and the others go on.
    """
    out = Path(out) if out is not None else Path(".")
    failures = failures if failures is not None else []
    frames = []
    if cold.user_fraction is not None:
        splitter = UserColdStartSplitter(
            fraction=cold.user_fraction, fold_in=max(cold.user_fold_in), seed=cold.user_seed
        )
        split = _protocol_split(splitter, dataset, "cold_start.user")
        relevant, users, _ = relevance(split, settings)
        levels = fold_in_levels(split, users, cold.user_fold_in)
        log.info(
            "user cold start: %d held-out users evaluated, fold-in n = %s",
            len(users), list(cold.user_fold_in),
        )
        frames += _protocol(USER_COLD, dataset, split, relevant, users, levels, models_cfg,
                            settings, tracker, parent, out, failures)
    if cold.item_fraction is not None:
        splitter = ItemColdStartSplitter(fraction=cold.item_fraction, seed=cold.item_seed)
        split = _protocol_split(splitter, dataset, "cold_start.item")
        relevant, users, _ = relevance(split, settings)
        log.info("item cold start: %d users with a held-out relevant item", len(users))
        frames += _protocol(ITEM_COLD, dataset, split, relevant, users, {-1: None}, models_cfg,
                            settings, tracker, parent, out, failures)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _protocol_split(splitter, dataset: Dataset, key: str) -> Split:
    """The protocol's split; a refusal names the ``cold_start`` key, not ``split``."""
    try:
        return splitter.split(dataset.interactions)[0]
    except SplitError as exc:
        raise SplitError(f"{key}: {exc}".replace("split.fold_in", f"{key}.fold_in")
                         .replace("split.fraction", f"{key}.fraction")) from None


def _protocol(protocol, dataset, split, relevant, users, levels, models_cfg, settings,
              tracker, parent, out, failures) -> list[pd.DataFrame]:
    from bench.runner import record_failure

    frames = []
    rel = relevant[users]
    uid = split.test.user_ids[users]
    for model_name, model_cfg in models_cfg.items():
        where = f"models.{model_name}"
        model: Recommender = build(model_cfg, where)
        child = tracker.start_run(
            f"{model_name}/{protocol}", parent_id=parent,
            tags={"model": model_name, "family": model.family, "protocol": protocol,
                  "split.fingerprint": split.fingerprint},
        )
        status = "FAILED"
        mine: list[pd.DataFrame] = []
        try:
            t = time.perf_counter()
            model.fit(split.train, item_features=dataset.item_features,
                      user_features=dataset.user_features, train_order=split.train_order)
            fit_s = time.perf_counter() - t
            logged: dict[str, float] = {"fit_seconds": fit_s}
            for level, history in levels.items():
                top = model.recommend_codes(
                    users, settings.k_max, exclude_seen=settings.exclude_seen,
                    history=history, batch_size=settings.batch_size,
                )
                ev = evaluate_rankings(
                    top.items, rel, cutoffs=settings.cutoffs, metrics=settings.metrics,
                    graded=settings.graded, map_denominator=settings.map_denominator,
                )
                frame = pd.DataFrame({"protocol": protocol, "level": level, "model": model_name,
                                      "family": model.family, "user_id": uid[ev.users],
                                      "n_relevant": ev.n_relevant})
                for key, values in ev.per_user.items():
                    frame[key] = values
                mine.append(frame)
                suffix = f"fold_in_{level}" if protocol == USER_COLD else "item_cold"
                logged.update({f"{mlflow_key(k)}.{suffix}": v for k, v in ev.mean().items()})
            tracker.log_metrics(child, logged)
            log.info("%s %s: fit %.2fs", protocol, model_name, fit_s)
            status = "FINISHED"
            frames += mine
        except Exception as exc:  # the other models still run
            failures.append(record_failure(exc, model_name, None, protocol,
                                           out / "artifacts" / model_name / protocol,
                                           tracker, child))
        finally:
            tracker.end_run(child, status)
    return frames
