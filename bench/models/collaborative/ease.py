"""EASE: a closed-form linear item-item autoencoder (Steck, 2019)."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from bench import validate
from bench.errors import ConfigError
from bench.models.base import Recommender
from bench.models.collaborative.item_knn import check_values, weighted_history

#: Bytes per item pair at the peak of the fit, an upper bound: the sparse float64 Gram
#: matrix (value + column index, up to 12 when dense), its float32 copy (8) and the dense
#: float32 inverse that becomes ``B`` (4).
BYTES_PER_PAIR = 24


class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder: score = history @ B, B learned in closed form.

    Assumes a user's next items are a linear function of the items they already have.
    ``B`` is the item x item weight matrix minimising ``||X - X B||^2 + l2 ||B||^2`` with a
    zero diagonal (an item may not predict itself); its solution is ``P = (X^T X + l2
    I)^-1``, ``B = I - P diag(1 / diag(P))``, i.e. ``B_ij = -P_ij / P_jj`` off the
    diagonal. The Gram matrix is summed in float64 and inverted in float32 (``B`` is kept
    in float32); each user batch is scored with one sparse x dense product.

    ``implicit: true`` fits on the binary matrix (Steck's setting); ``false`` on the
    ratings, and then scores with rating-weighted history (a history item without a
    training rating -- fold-in -- weighs the mean training rating, ``fold_in_weight_``).

    Memory is quadratic in the catalogue: fitting needs up to about 24 bytes per item
    pair (the sparse float64 Gram matrix, its float32 copy and the dense float32 inverse;
    ``n`` = items seen in training), so ``fit`` refuses, before allocating anything, a
    catalogue whose estimate exceeds ``max_memory_gb``.

    Scores any user with a non-empty history, including fold-in users absent from
    training. Cannot score: users with no history (NaN row) and items never seen in
    training (not in ``B``; NaN column).

    Args:
        l2: ridge penalty ``lambda`` on ``B`` (> 0; hundreds for binary MovieLens data).
        implicit: ``true`` = binary interactions, ``false`` = rating values.
        max_memory_gb: refuse to fit when ``24 x n^2`` bytes exceed this many GiB.
    """

    family = "collaborative"

    def __init__(self, *, l2: float = 500.0, implicit: bool = True, max_memory_gb: float = 4.0):
        self.l2 = l2
        self.implicit = implicit
        self.max_memory_gb = max_memory_gb

    def _check_params(self, train) -> None:
        name = type(self).__name__
        validate.positive_number("l2", self.l2)
        validate.positive_number("max_memory_gb", self.max_memory_gb)
        validate.boolean("implicit", self.implicit)
        check_values(name, "ones" if self.implicit else "rating", train)

    def _fit(self, train, item_features, user_features) -> None:
        self._check_params(train)
        items = np.flatnonzero(self.known_items())
        n = len(items)
        need = BYTES_PER_PAIR * n * n
        limit = float(self.max_memory_gb) * 1024**3
        if need > limit:
            raise ConfigError(
                f"EASE: {n} training items need about {need / 1024**3:.1f} GiB for the "
                f"item x item matrices ({n} x {n} pairs at up to {BYTES_PER_PAIR} bytes), "
                f"more than max_memory_gb={self.max_memory_gb}; raise "
                "models.<name>.max_memory_gb if "
                "the machine has the memory, or shrink the catalogue (filter items with few "
                "interactions, e.g. a minimum item count, before fitting)"
            )
        values = "ones" if self.implicit else "rating"
        matrix = train.to_csr(values, dtype=np.float64)
        x = matrix[:, items]
        # The Gram matrix is summed exactly in float64 (sparse), then inverted in float32:
        # single-precision Cholesky runs about twice as fast and moves half the memory,
        # and the ridge keeps the system well conditioned (on movielens_small, l2 = 2000,
        # B differs from the float64 inverse by ~4e-6 relative, and the top-50 lists are
        # the same). P is symmetric, so its C-ordered view is divided in place and kept
        # as B without a copy.
        gram = (x.T @ x).astype(np.float32).toarray()
        gram[np.diag_indices(n)] += np.float32(self.l2)
        # one BLAS thread: OpenBLAS's blocked Cholesky rounds differently with another
        # thread count, so B (and the lists' ties) would depend on the machine's cores
        # and on where the cell runs (executor=ray pins a cell to its CPUs)
        with threadpool_limits(limits=1, user_api="blas"):
            p = spd_inverse(gram)
        del gram
        p = np.ascontiguousarray(p.T) if not p.flags.c_contiguous else p  # no copy: F -> C
        p /= -np.diag(p)[None, :]  # column j divided by -P_jj
        p[np.diag_indices(n)] = 0.0
        self.weights_ = p
        del p
        self.items_ = items
        self.values_ = train.to_csr(values, dtype=np.float32)
        self.fold_in_weight_ = float(matrix.data.mean()) if not self.implicit else 1.0

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        if self.implicit:
            weights = sp.csr_matrix(history, dtype=np.float32)
        else:
            weights = weighted_history(users, history, self.values_, self.fold_in_weight_)
        weights = sp.csr_matrix(weights[:, self.items_], dtype=np.float32)
        scores = np.full((len(users), self.n_items), np.nan, dtype=np.float32)
        scores[:, self.items_] = weights @ self.weights_
        scores[np.diff(history.indptr) == 0] = np.nan
        return scores


def spd_inverse(a: np.ndarray, block: int = 1024) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix, computed in place in ``a``.

    Cholesky factorisation then inversion from the factor (LAPACK ``potrf``/``potri``):
    about a third of the work of a general LU inverse and no second ``n x n`` buffer.
    LAPACK fills one triangle; the other is mirrored block by block. A float32 matrix is
    inverted in single precision (``spotrf``/``spotri``), anything else in float64.
    """
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if a.flags.c_contiguous:
        a = a.T  # symmetric: the transpose is the same matrix, Fortran-ordered, no copy
    potrf, potri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "potri"), (a,))
    factor, info = potrf(a, lower=False, clean=False, overwrite_a=True)
    if info == 0:
        inv, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"matrix is not positive definite (LAPACK info {info})")
    n = inv.shape[0]
    for start in range(0, n, block):  # blocks of rows, not users: upper -> lower triangle
        stop = min(start + block, n)
        inv[start:stop, :start] = inv[:start, start:stop].T
        rows = inv[start:stop, start:stop]
        rows[np.tril_indices(stop - start, -1)] = rows.T[np.tril_indices(stop - start, -1)]
    return inv
