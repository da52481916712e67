"""Cascade: one model proposes candidates, another re-ranks them."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bench import validate
from bench.errors import ConfigError
from bench.models.base import Recommender, mask_history, top_k
from bench.models.hybrid.base import Composite, row_ranks


class CascadeHybrid(Composite):
    """Re-rank the ``candidates`` component's top ``n_candidates`` with ``reranker``.

    Assumes the first stage has good recall (e.g. collaborative filtering) and the
    second orders a short list better (e.g. a content profile). Only candidates are
    ever recommended. Candidates the re-ranker cannot score (NaN) follow the re-ranked
    ones in candidate order when ``keep_unscored`` is true, else they are dropped.
    ``source`` is the re-ranker for re-ranked items and the candidate model otherwise.

    Scores: ``n_candidates + (n_candidates - r)`` for re-ranked items (``r`` = rank by
    re-ranker score) and ``n_candidates - r`` for the rest (``r`` = candidate rank).

    Args:
        components: exactly two models, labelled ``candidates`` and ``reranker``.
        n_candidates: length of the candidate list per user.
        keep_unscored: keep candidates the re-ranker cannot score, after the others.
    """

    def __init__(
        self,
        *,
        components: Mapping[str, Recommender],
        n_candidates: int = 100,
        keep_unscored: bool = True,
    ):
        self.components = components
        self.n_candidates = n_candidates
        self.keep_unscored = keep_unscored

    def _fit(self, train, item_features, user_features) -> None:
        self._check_components(required=("candidates", "reranker"), minimum=2)
        if len(self.components) != 2:
            raise ConfigError(
                f"CascadeHybrid components: expected exactly 'candidates' and 'reranker', got "
                f"{sorted(self.components)}"
            )
        validate.positive_integer("n_candidates", self.n_candidates)
        self._fit_children(train, item_features, user_features)

    def _combine(self, users, history):
        n_users, n_items = len(users), self.n_items
        n = min(int(self.n_candidates), n_items)
        cand_scores, cand_codes = self.child_scores("candidates", users, history)
        mask_history(cand_scores, history)
        cand, _ = top_k(cand_scores, n)  # (users x n) item codes, -1 padded
        ok = cand >= 0
        safe = np.maximum(cand, 0)
        rr_scores, rr_codes = self.child_scores("reranker", users, history)
        rr = np.take_along_axis(rr_scores, safe, axis=1)
        rr[~ok] = np.nan
        scored = ~np.isnan(rr)
        ranks = row_ranks(rr)  # among candidates; unscored get rank n
        value = np.where(scored, 2 * n - ranks, np.nan)
        if self.keep_unscored:
            cand_rank = np.arange(n)[None, :]
            value = np.where(ok & ~scored, n - cand_rank, value)
        value = np.where(ok, value, np.nan)
        source = np.where(scored, np.take_along_axis(rr_codes, safe, axis=1),
                          np.take_along_axis(cand_codes, safe, axis=1))
        out = np.full((n_users, n_items), np.nan, dtype=np.float32)
        src = np.zeros((n_users, n_items), dtype=np.int16)
        rows = np.repeat(np.arange(n_users), n).reshape(n_users, n)
        out[rows[ok], cand[ok]] = value[ok]
        src[rows[ok], cand[ok]] = source[ok]
        return out, src
