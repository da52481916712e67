"""What latent-factor models share: keeping the learned arrays and scoring from them.

Users absent from training but given a history at recommend time (the user cold-start
protocol's fold-in rows) can be scored by models that know how to place a new user in
the factor space: they override :meth:`LatentFactorModel._fold_in_factors`. ALS does so
exactly (its user step is a closed-form least-squares solve, see :func:`als_user_step`);
BPR does not, and keeps NaN for those users.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bench.models.base import Recommender
from bench.models.topk import BLOCK_ROWS, factor_top_k

#: Padded history cells (users x longest history) per block of the batched fold-in solve.
FOLD_IN_BLOCK_CELLS = 1 << 16
#: Floats of the (users, f, f) systems per block of the batched fold-in solve.
FOLD_IN_BLOCK_FLOATS = 1 << 20
#: Users per ``recommend_codes`` batch on the fused path (a multiple of ``BLOCK_ROWS``):
#: its memory is the batch's factors and history, not a ``(batch, n_items)`` array.
FUSED_BATCH_USERS = 512 * BLOCK_ROWS


class LatentFactorModel(Recommender):
    """Base of models that score ``user_factors_ @ item_factors_.T`` (ALS, BPR).

    Subclasses fit their library model and hand its arrays to :meth:`_store_factors`.
    Items never seen in training score NaN: the factors carry no information about them.
    Users without training interactions score NaN unless the subclass can fold them in
    from the history rows passed to ``_score`` (:meth:`_fold_in_factors`); users with
    training interactions always keep their learned factors, whatever extra history
    they are given.
    """

    family = "collaborative"

    def _store_factors(self, user_factors, item_factors) -> None:
        self.user_factors_ = np.ascontiguousarray(user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(item_factors, dtype=np.float32)
        self.item_mask_ = self.known_items()

    def _fold_in_factors(self, history: sp.csr_matrix) -> np.ndarray | None:
        """Factors (float32, one row per history row) for users absent from training.

        ``history`` holds only rows with at least one item. Return ``None`` when the
        model cannot fold users in (the default); a row of NaN marks a user it cannot
        place (e.g. a history made only of items never seen in training).
        """
        return None

    def batch_size_for(self, n_items: int) -> int:
        """Users per ``recommend_codes`` batch: large, as the fused path never holds
        a ``(batch, n_items)`` score array (see :meth:`_top_k_fast`)."""
        return FUSED_BATCH_USERS

    def _batch_factors(self, users: np.ndarray, history: sp.csr_matrix | None) -> np.ndarray:
        """Float32 factors per user of the batch: learned, folded in, or a NaN row."""
        known = self.known_users(users)
        factors = np.full((len(users), self.user_factors_.shape[1]), np.nan, dtype=np.float32)
        factors[known] = self.user_factors_[users[known]]
        if history is not None and not known.all():
            cold = np.flatnonzero(~known & (np.diff(history.indptr) > 0))
            if len(cold):
                folded = self._fold_in_factors(sp.csr_matrix(history[cold]))
                if folded is not None:
                    factors[cold] = folded  # NaN rows stay NaN
        return factors

    def _top_k_fast(
        self, users: np.ndarray, history: sp.csr_matrix, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fused, blocked ``factors @ item_factors_.T`` + masking + top-k
        (:func:`~bench.models.topk.factor_top_k`): the lists :meth:`_score` + masking +
        ``top_k`` give, with memory bounded by the block size, not the batch size.

        Scores come from ``sgemm`` on blocks of ``BLOCK_ROWS`` users, so a score may
        differ in the last bit from :meth:`_score` (one product over the whole batch),
        which can swap exact near-ties; the order of the scores it returns is exact.
        """
        return factor_top_k(
            self._batch_factors(users, history),
            self.item_factors_,
            k,
            exclude=history if exclude_seen else None,
            item_mask=self.item_mask_,
        )

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        known = self.known_users(users)
        scores = np.full((len(users), self.item_factors_.shape[0]), np.nan, dtype=np.float32)
        if known.any():
            scores[known] = self.user_factors_[users[known]] @ self.item_factors_.T
        if history is not None and not known.all():
            cold = np.flatnonzero(~known & (np.diff(history.indptr) > 0))
            if len(cold):
                factors = self._fold_in_factors(sp.csr_matrix(history[cold]))
                if factors is not None:
                    scores[cold] = factors @ self.item_factors_.T  # NaN rows stay NaN
        scores[:, ~self.item_mask_] = np.nan
        return scores


def als_user_step(
    confidence: sp.csr_matrix,
    item_factors: np.ndarray,
    regularization: float,
    *,
    block_cells: int = FOLD_IN_BLOCK_CELLS,
) -> np.ndarray:
    """The exact implicit-ALS user step for every row of ``confidence``, batched.

    For user u with confidences ``c_ui`` (the non-zeros of its row) and item factors
    ``Y`` (all items), solves ``A_u x_u = b_u`` with

        A_u = YᵀY + regularization·I + Σ_i (|c_ui| − 1) y_i y_iᵀ
        b_u = Σ_{i: c_ui > 0} c_ui y_i

    which is what ``implicit`` (0.7, CPU) solves in ``recalculate_user`` (its Cholesky
    solver; training uses by default a few conjugate-gradient steps towards the same
    solution): preference ``p_ui = 1`` where ``c_ui > 0`` (a negative value is a
    dislike with confidence ``|c_ui|``), ``c = 1`` and ``p = 0`` everywhere else. The
    caller applies ``alpha`` (``implicit`` scales the matrix by it).

    Users are solved in blocks of similar history length: each block's histories are
    padded into a ``(B, L, f)`` array, the ``(B, f, f)`` systems are built with one
    batched einsum and solved with one batched ``np.linalg.solve`` (float64).
    ``block_cells`` bounds ``B x L`` and ``FOLD_IN_BLOCK_FLOATS`` bounds ``B x f x f``,
    so memory stays bounded whatever the batch. Returns float32 ``(n_rows, f)``.
    """
    confidence = sp.csr_matrix(confidence)
    confidence.sum_duplicates()
    y = np.asarray(item_factors, dtype=np.float64)
    n_rows, f = confidence.shape[0], y.shape[1]
    base = y.T @ y + float(regularization) * np.eye(f)
    c = confidence.data.astype(np.float64)
    positive = np.where(c > 0, c, 0.0)
    b = sp.csr_matrix((positive, confidence.indices, confidence.indptr), shape=confidence.shape) @ y
    out = np.empty((n_rows, f), dtype=np.float32)
    lengths = np.diff(confidence.indptr)
    # rows grouped by their length rounded up to a power of two (padding wastes at most
    # half of a block), each group cut into blocks of at most block_cells padded cells.
    width = 1 << np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64)
    order = np.lexsort((lengths, width))
    for w in np.unique(width):
        group = order[width[order] == w]
        per_block = max(1, min(block_cells // int(w), FOLD_IN_BLOCK_FLOATS // (f * f)))
        for start in range(0, len(group), per_block):  # blocks, not users
            rows = group[start : start + per_block]
            out[rows] = _solve_block(confidence[rows], y, base, b[rows])
    return out


def _solve_block(sub: sp.csr_matrix, y: np.ndarray, base: np.ndarray, b: np.ndarray):
    """Solve the systems of the rows of ``sub`` (see :func:`als_user_step`) at once."""
    n, f = sub.shape[0], y.shape[1]
    sub_len = np.diff(sub.indptr)
    longest = max(1, int(sub_len.max()))
    row_of = np.repeat(np.arange(n), sub_len)
    pos = np.arange(sub.nnz) - sub.indptr[row_of]
    padded = np.zeros((n, longest, f))
    weight = np.zeros((n, longest))
    padded[row_of, pos] = y[sub.indices]
    weight[row_of, pos] = np.abs(sub.data.astype(np.float64)) - 1.0
    # sum_l w_bl y_bl y_blᵀ; einsum's optimised path is ~3x faster than a stacked matmul
    a = base + np.einsum("blf,blg->bfg", padded * weight[:, :, None], padded, optimize=True)
    return np.linalg.solve(a, b[:, :, None])[:, :, 0]
