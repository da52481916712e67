"""Beyond-accuracy metrics over top-k lists: novelty, popularity, diversity, coverage.

Inputs
------
``recs``
    Integer array ``(n_users, K)`` of item codes in rank order, ``-1`` where the list is
    short (padding). A metric "@k" reads only the first ``k`` columns; padding is skipped
    wherever it appears, so a user's list ``L_u`` is the set of *real* items among them
    (possibly fewer than ``k``, possibly none). An item may appear once per list.
``item_counts``
    ``(n_items,)`` training interactions per item (a model's ``item_counts_``); 0 means the
    item was never seen in training. Its length fixes the item vocabulary.
``n_train_users``
    Number of users with training history ``N`` (the denominator of popularity shares).
``features``
    Item features ``(n_items, n_features)`` (SciPy sparse, e.g. genre multi-hot, or a dense
    array). Rows may be all zero.

Per-user metrics (float64, one value per row of ``recs``)
---------------------------------------------------------
- **Novelty@k** (mean self-information) = ``(1 / |L_u|) sum_{i in L_u} -log2(p_i)`` with
  ``p_i = max(count_i, 1) / N``: an item never seen in training is treated as seen by one
  user, so it is as novel as the rarest training item can be (``log2 N`` bits) instead of
  infinitely novel. NaN for an empty list.
- **ARP@k** (average recommendation popularity; Abdollahpouri et al., 2019) =
  ``(1 / |L_u|) sum_{i in L_u} count_i``. NaN for an empty list.
- **ILD@k** (intra-list diversity) = mean over the unordered pairs ``{i, j}`` of the user's
  *usable* items of ``1 - cos(f_i, f_j)``. Items whose feature row is all zero have no
  direction, so they are left out of the pairs (they neither add nor dilute diversity).
  With ``n`` usable items and unit rows ``f^_i = f_i / ||f_i||``, the identity
  ``sum_{i != j} cos(f_i, f_j) = ||sum_i f^_i||^2 - n`` gives
  ``ILD = 1 - (||sum_i f^_i||^2 - n) / (n (n - 1))``, computed as a sparse product
  (users x items binary matrix) @ (unit feature rows; kept dense when there are at most
  :data:`_DENSE_FEATURES` columns, e.g. genres). NaN when ``n < 2``. With
  non-negative features (genres, tag counts) ILD lies in ``[0, 1]``; with signed
  features in ``[0, 2]``.

Aggregate metrics (one float over all lists)
--------------------------------------------
The *training catalogue* ``C`` is the set of items with ``count > 0``.

- **Coverage@k** = ``|(union_u L_u) ∩ C| / |C|``. Recommended items never seen in
  training are not counted in the numerator (the denominator does not hold them either),
  so coverage stays in ``[0, 1]``. NaN when ``C`` is empty.
- **Gini@k** (concentration of exposure) over every item of ``C``, recommended or not: with
  ``x_j`` the number of lists item ``j`` appears in, sorted ascending (``j = 1..n``,
  ``n = |C|``), ``G = sum_j (2j - n - 1) x_j / (n sum_j x_j)``. 0 = every catalogue item
  equally exposed; ``(n - 1) / n`` (-> 1) = all exposure on one item. Exposure of items
  outside ``C`` is ignored. NaN when no catalogue item is recommended (or ``C`` is empty).
- **Personalisation@k** = ``1 - mean`` over unordered pairs of users with a non-empty list
  of the cosine similarity of their binary item vectors, ``|L_u ∩ L_v| / sqrt(|L_u| |L_v|)``.
  By the same identity, with ``m`` such users and ``s = sum_u b_u / sqrt(|L_u|)``,
  the mean is ``(||s||^2 - m) / (m (m - 1))``; ``s`` is accumulated block by block
  (``np.bincount``). 0 = every list identical, 1 = pairwise disjoint lists. NaN when
  ``m < 2``.

Values are never rounded; identities are exact up to float64 rounding (a list of identical
items may give an ILD of about ``-1e-16`` rather than 0).

:func:`beyond_accuracy` evaluates every metric at every cutoff in one pass over blocks of
users (:data:`_BLOCK_ROWS`), so temporary memory is bounded by the block, not by the
number of users: per-user sums are prefix sums along the ranks read at the cutoffs, and
ILD / exposure are accumulated segment by segment between consecutive cutoffs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from bench import validate
from bench.errors import ConfigError, EvaluationError
from bench.metrics.keys import MetricKey, check_cutoffs

__all__ = [
    "AGGREGATE_METRICS",
    "PER_USER_METRICS",
    "BeyondEvaluation",
    "arp_at_k",
    "beyond_accuracy",
    "coverage_at_k",
    "gini_at_k",
    "ild_at_k",
    "novelty_at_k",
    "personalisation_at_k",
]

#: Per-user metric names, in output order (``ild`` only when features are given).
PER_USER_METRICS = ("novelty", "arp", "ild")
#: Aggregate (list-set) metric names, in output order.
AGGREGATE_METRICS = ("coverage", "gini", "personalisation")

#: Users per block; bounds the temporary (block x K) arrays and sparse products.
_BLOCK_ROWS = 8_192
#: Up to this many feature columns, ILD multiplies by dense unit rows (faster: 19 genres,
#: 8,192 users x 50 items, 4.6 ms against 22 ms sparse); wider features stay sparse (100
#: columns at 5 % density: 50 ms sparse against 107 ms dense).
_DENSE_FEATURES = 32


@dataclass(frozen=True, eq=False)
class BeyondEvaluation:
    """Beyond-accuracy metrics of one set of recommendation lists.

    Attributes:
        per_user: ``{"novelty@10": float64 array, ...}``, one value per row of ``recs`` (NaN
            where undefined: an empty list, or fewer than two usable items for ILD); keys
            ordered metric by metric (novelty, arp, ild), cutoffs ascending.
        aggregate: ``{"coverage@10": float, ...}`` for coverage, gini and personalisation
            (NaN where undefined), same key order.
    """

    per_user: dict[str, np.ndarray]
    aggregate: dict[str, float]

    def mean(self) -> dict[str, float]:
        """Mean of each per-user metric over the users where it is defined (NaN if none)."""
        out = {}
        for key, values in self.per_user.items():
            defined = values[~np.isnan(values)]
            out[key] = float(defined.mean()) if defined.size else float("nan")
        return out

    def n_undefined(self) -> dict[str, int]:
        """Number of users whose value is NaN (left out of :meth:`mean`), per key."""
        return {key: int(np.isnan(values).sum()) for key, values in self.per_user.items()}


# --------------------------------------------------------------------------- public API
def novelty_at_k(recs: np.ndarray, item_counts, n_train_users: int, k: int) -> np.ndarray:
    """Novelty@k = mean over the user's real items of ``-log2(max(count_i, 1) / N)``.

    ``N = n_train_users``. An item never seen in training (``count_i = 0``) counts as seen
    by one user (``log2 N`` bits, the most a training item can have).

    Args:
        recs: ``(n_users, K)`` int item codes in rank order, ``-1`` = padding.
        item_counts: ``(n_items,)`` training interactions per item (>= 0, at most ``N``).
        n_train_users: users with training history, ``>= 1``.
        k: cutoff ``>= 1``; a ``k`` beyond ``K`` reads all ``K`` columns.

    Returns:
        float64 ``(n_users,)`` in ``[0, log2 N]``; NaN for an empty list.
    """
    return _single(recs, k, "novelty", item_counts=item_counts, n_train_users=n_train_users)


def arp_at_k(recs: np.ndarray, item_counts, k: int) -> np.ndarray:
    """ARP@k = mean training count of the user's real recommended items.

    Args:
        recs: ``(n_users, K)`` int item codes in rank order, ``-1`` = padding.
        item_counts: ``(n_items,)`` training interactions per item (>= 0).
        k: cutoff ``>= 1``; a ``k`` beyond ``K`` reads all ``K`` columns.

    Returns:
        float64 ``(n_users,)``; NaN for an empty list.
    """
    return _single(recs, k, "arp", item_counts=item_counts)


def ild_at_k(recs: np.ndarray, features, k: int) -> np.ndarray:
    """ILD@k = mean over unordered pairs of usable items of ``1 - cos(f_i, f_j)``.

    Items with an all-zero feature row are left out of the pairs.

    Args:
        recs: ``(n_users, K)`` int item codes in rank order, ``-1`` = padding.
        features: ``(n_items, n_features)`` SciPy sparse matrix or 2-D array (finite).
        k: cutoff ``>= 1``; a ``k`` beyond ``K`` reads all ``K`` columns.

    Returns:
        float64 ``(n_users,)`` (``[0, 1]`` for non-negative features); NaN where fewer than
        two of the user's items have a non-zero feature row.
    """
    return _single(recs, k, "ild", features=features)


def coverage_at_k(recs: np.ndarray, item_counts, k: int) -> float:
    """Coverage@k = distinct recommended catalogue items / catalogue size.

    The catalogue is the items with ``count > 0``; recommended items outside it do not
    count. NaN when the catalogue is empty.
    """
    return _single(recs, k, "coverage", item_counts=item_counts)


def gini_at_k(recs: np.ndarray, item_counts, k: int) -> float:
    """Gini@k of exposure over the catalogue (items with ``count > 0``, recommended or not).

    ``G = sum_j (2j - n - 1) x_j / (n sum_j x_j)`` with ``x`` the number of lists each
    catalogue item appears in, sorted ascending. 0 = equal exposure; ``(n - 1) / n`` = all
    exposure on one item. NaN when no catalogue item is recommended.
    """
    return _single(recs, k, "gini", item_counts=item_counts)


def personalisation_at_k(recs: np.ndarray, k: int) -> float:
    """Personalisation@k = 1 - mean pairwise cosine of the users' binary top-k vectors.

    Pairs are unordered pairs of users with a non-empty list; the cosine of two lists is
    ``|L_u ∩ L_v| / sqrt(|L_u| |L_v|)``. 0 = identical lists, 1 = disjoint lists. NaN with
    fewer than two non-empty lists.
    """
    return _single(recs, k, "personalisation")


def beyond_accuracy(
    recs: np.ndarray,
    cutoffs: Sequence[int] = (10,),
    *,
    item_counts,
    n_train_users: int,
    item_features=None,
) -> BeyondEvaluation:
    """Every beyond-accuracy metric at every cutoff, in one blocked pass over the lists.

    Args:
        recs: ``(n_users, K)`` int item codes in rank order, ``-1`` = padding; codes index
            ``item_counts``. Only the first ``max(cutoffs)`` columns are read (and checked
            for repeated items).
        cutoffs: strictly ascending positive integers, the largest ``<= K``.
        item_counts: ``(n_items,)`` training interactions per item (>= 0, at most
            ``n_train_users``).
        n_train_users: users with training history (``>= 1``).
        item_features: ``(n_items, n_features)`` sparse or dense features, or None (then
            ILD is not computed).

    Returns:
        A :class:`BeyondEvaluation`: per-user ``novelty@k``, ``arp@k`` (and ``ild@k``), and
        aggregate ``coverage@k``, ``gini@k``, ``personalisation@k``.

    Raises:
        ConfigError: bad cutoffs (not ascending positive integers, or beyond ``K``).
        EvaluationError: malformed inputs (shapes, codes out of range, repeated items in a
            list, negative or non-finite counts, counts above ``n_train_users``,
            ``item_features`` rows not matching ``item_counts``).
    """
    ks = check_cutoffs(cutoffs)
    recs = _as_recs(recs)
    if ks[-1] > recs.shape[1]:
        raise ConfigError(
            f"eval.cutoffs: expected values <= {recs.shape[1]} (the length of the "
            f"recommendation lists), got {list(ks)}"
        )
    counts = _as_item_counts(item_counts)
    n_items = counts.size
    _check_codes(recs[:, : ks[-1]], n_items, "item_counts")
    n_train = _as_n_train_users(n_train_users, counts)
    names = ["novelty", "arp", *(["ild"] if item_features is not None else [])]
    features = None
    if item_features is not None:
        features = _as_features(item_features)
        if features.shape[0] != n_items:
            raise EvaluationError(
                f"item_features: expected {n_items} rows (one per item of item_counts), got "
                f"{features.shape[0]}"
            )
    table = _table(
        recs,
        ks,
        (*names, *AGGREGATE_METRICS),
        n_items=n_items,
        counts=counts,
        n_train_users=n_train,
        features=features,
    )
    per_user = {
        str(MetricKey(m, k)): table[m][:, j].copy() for m in names for j, k in enumerate(ks)
    }
    aggregate = {
        str(MetricKey(m, k)): float(table[m][j])
        for m in AGGREGATE_METRICS for j, k in enumerate(ks)
    }
    return BeyondEvaluation(per_user=per_user, aggregate=aggregate)


# --------------------------------------------------------------------------- checks
def _as_recs(recs) -> np.ndarray:
    recs = np.asarray(recs)
    if recs.ndim != 2 or not np.issubdtype(recs.dtype, np.integer):
        raise EvaluationError(
            f"recs: expected a 2-D integer array (users x ranks), got {recs.ndim}-D "
            f"{recs.dtype} array"
        )
    return recs


def _check_codes(recs: np.ndarray, n_items: int | None, source: str) -> None:
    if not recs.size:
        return
    lo, hi = int(recs.min()), int(recs.max())
    if lo < -1 or (n_items is not None and hi >= n_items):
        upper = "" if n_items is None else f" below {n_items} (the items of {source})"
        raise EvaluationError(
            f"recs: expected item codes >= 0{upper}, or -1 for padding, got values from "
            f"{lo} to {hi}"
        )


def _check_k(k) -> int:
    return validate.positive_integer("k", k)


def _as_item_counts(item_counts) -> np.ndarray:
    try:
        counts = np.asarray(item_counts, dtype=np.float64)
    except (TypeError, ValueError):
        raise EvaluationError(
            f"item_counts: expected a 1-D numeric array (one count per item), got "
            f"{type(item_counts).__name__}"
        ) from None
    if counts.ndim != 1:
        raise EvaluationError(
            f"item_counts: expected a 1-D array (one count per item), got shape {counts.shape}"
        )
    if counts.size and not (np.isfinite(counts).all() and counts.min() >= 0):
        bad = int((~np.isfinite(counts) | (counts < 0)).sum())
        raise EvaluationError(
            f"item_counts: expected finite counts >= 0, got {bad} negative or non-finite value(s)"
        )
    return counts


def _as_n_train_users(n_train_users, counts: np.ndarray) -> int:
    if not validate.is_integer(n_train_users) or n_train_users < 1:
        raise EvaluationError(
            f"n_train_users: expected a positive integer (users with training history), got "
            f"{n_train_users!r}"
        )
    top = float(counts.max()) if counts.size else 0.0
    if top > n_train_users:
        raise EvaluationError(
            f"item_counts: expected at most n_train_users = {int(n_train_users)} per item "
            f"(a popularity share cannot exceed 1), got a count of {top:g}"
        )
    return int(n_train_users)


def _as_features(features) -> sp.csr_matrix:
    if sp.issparse(features):
        f = sp.csr_matrix(features, dtype=np.float64)
    else:
        try:
            dense = np.asarray(features, dtype=np.float64)
        except (TypeError, ValueError):
            dense = None
        if dense is None or dense.ndim != 2:
            raise EvaluationError(
                "item_features: expected a 2-D scipy.sparse matrix or array (items x "
                f"features), got {type(features).__name__}"
            )
        f = sp.csr_matrix(dense)
    if f.nnz and not np.isfinite(f.data).all():
        raise EvaluationError(
            f"item_features: expected finite values, got {int((~np.isfinite(f.data)).sum())} "
            "non-finite entries"
        )
    return f


def _unit_rows(f: sp.csr_matrix) -> tuple[sp.csr_matrix | np.ndarray, np.ndarray]:
    """Rows scaled to unit L2 norm plus one zero row (the padding sentinel), and usable flags.

    Dense when there are at most :data:`_DENSE_FEATURES` columns, CSR otherwise.
    """
    norms = np.sqrt(np.asarray(f.multiply(f).sum(axis=1)).ravel())
    usable = norms > 0
    inv = np.zeros_like(norms)
    np.divide(1.0, norms, out=inv, where=usable)
    unit = sp.vstack([sp.diags(inv) @ f, sp.csr_matrix((1, f.shape[1]))], format="csr")
    if f.shape[1] <= _DENSE_FEATURES:
        unit = unit.toarray()
    return unit, np.append(usable, False)


# --------------------------------------------------------------------------- core
def _single(recs, k, name, *, item_counts=None, n_train_users=None, features=None):
    """One metric at one cutoff (the public per-metric functions)."""
    k = _check_k(k)
    recs = _as_recs(recs)
    counts = None if item_counts is None else _as_item_counts(item_counts)
    n_train = None if n_train_users is None else _as_n_train_users(n_train_users, counts)
    f = None if features is None else _as_features(features)
    if counts is not None:
        n_items, source = counts.size, "item_counts"
    elif f is not None:
        n_items, source = f.shape[0], "features"
    else:
        n_items, source = None, ""
    head = recs[:, :k]
    _check_codes(head, n_items, source)
    if n_items is None:  # personalisation: the codes themselves bound the vocabulary
        n_items = int(head.max()) + 1 if head.size else 0
    table = _table(
        recs, (k,), (name,), n_items=n_items, counts=counts, n_train_users=n_train, features=f
    )
    return table[name][:, 0].copy() if name in PER_USER_METRICS else float(table[name][0])


def _table(recs, ks, names, *, n_items, counts=None, n_train_users=None, features=None):
    """``{name: (n_users, len(ks)) array}`` per-user, ``{name: (len(ks),) array}`` aggregate.

    Inputs are checked; ``ks`` ascending positive ints (values beyond ``K`` read all ``K``
    columns). One pass over blocks of users; each block is cut into segments between
    consecutive cutoffs for the sparse accumulations.
    """
    n_users, width = recs.shape
    cols = np.minimum(np.asarray(ks, dtype=np.int64), width)  # columns read per cutoff
    kmax = int(cols[-1])
    recs = recs[:, :kmax]
    n_k = cols.size
    per_user = {m: np.full((n_users, n_k), np.nan) for m in names if m in PER_USER_METRICS}
    sentinel = n_items  # padding maps to an extra index holding neutral values

    if "novelty" in names:
        info = np.zeros(n_items + 1)
        info[:n_items] = -np.log2(np.maximum(counts, 1.0) / n_train_users)
    if "arp" in names:
        pop = np.append(counts, 0.0)
    if "ild" in names:
        unit, usable = _unit_rows(features)
    need_exposure = "coverage" in names or "gini" in names
    exposure = np.zeros((n_k, n_items + 1))  # times each item is in a top-k list
    pers_sum = np.zeros((n_k, n_items + 1))  # s = sum_u b_u / sqrt(|L_u|)
    pers_users = np.zeros(n_k, dtype=np.int64)
    starts = np.concatenate(([0], cols[:-1]))

    for lo in range(0, n_users if kmax else 0, _BLOCK_ROWS):
        hi = min(n_users, lo + _BLOCK_ROWS)
        r = recs[lo:hi]
        b = hi - lo
        _check_distinct(r, lo)
        valid = r >= 0
        codes = np.where(valid, r, sentinel)
        n_real = np.cumsum(valid, axis=1)[:, cols - 1]  # |L_u| at each cutoff
        has = n_real > 0
        if "novelty" in names:
            total = np.cumsum(info[codes], axis=1)[:, cols - 1]
            np.divide(total, n_real, out=per_user["novelty"][lo:hi], where=has)
        if "arp" in names:
            total = np.cumsum(pop[codes], axis=1)[:, cols - 1]
            np.divide(total, n_real, out=per_user["arp"][lo:hi], where=has)
        if "ild" in names:
            n_use = np.cumsum(usable[codes], axis=1)[:, cols - 1].astype(np.float64)
            summed = None  # sum of unit rows of the list so far: (b, n_features)
            for j in range(n_k):
                a, c = int(starts[j]), int(cols[j])
                if c > a:
                    part = _binary_rows(codes[:, a:c], n_items + 1) @ unit
                    summed = part if summed is None else summed + part
                if summed is None:
                    continue
                if sp.issparse(summed):
                    sq = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
                else:
                    sq = np.einsum("ij,ij->i", summed, summed)
                n = n_use[:, j]
                pairs = n * (n - 1.0)
                ok = n >= 2
                out = per_user["ild"][lo:hi, j]
                np.divide(sq - n, pairs, out=out, where=ok)
                np.subtract(1.0, out, out=out, where=ok)
        if need_exposure:
            for j in range(n_k):
                a, c = int(starts[j]), int(cols[j])
                if c > a:
                    exposure[j] += np.bincount(codes[:, a:c].ravel(), minlength=n_items + 1)
        if "personalisation" in names:
            for j in range(n_k):
                c = int(cols[j])
                n = n_real[:, j]
                w = np.zeros(b)
                np.divide(1.0, np.sqrt(n), out=w, where=n > 0)
                weights = np.broadcast_to(w[:, None], (b, c)).ravel()
                pers_sum[j] += np.bincount(
                    codes[:, :c].ravel(), weights=weights, minlength=n_items + 1
                )
                pers_users[j] += int(np.count_nonzero(n))

    out: dict[str, np.ndarray] = dict(per_user)
    if need_exposure:
        exposure = np.cumsum(exposure, axis=0)[:, :n_items]  # segments -> cutoffs
        catalogue = counts > 0
        n_cat = int(catalogue.sum())
        x = exposure[:, catalogue]
        if "coverage" in names:
            out["coverage"] = (x > 0).sum(axis=1) / n_cat if n_cat else np.full(n_k, np.nan)
        if "gini" in names:
            out["gini"] = _gini(x)
    if "personalisation" in names:
        s = pers_sum[:, :n_items]
        m = pers_users.astype(np.float64)
        mean_cos = np.full(n_k, np.nan)
        np.divide((s * s).sum(axis=1) - m, m * (m - 1.0), out=mean_cos, where=m >= 2)
        out["personalisation"] = 1.0 - mean_cos
    return out


def _gini(x: np.ndarray) -> np.ndarray:
    """Gini of each row of ``x`` (exposure per catalogue item); NaN where the row sums to 0."""
    n_k, n = x.shape
    out = np.full(n_k, np.nan)
    if n == 0:
        return out
    xs = np.sort(x, axis=1)
    coef = 2.0 * np.arange(1, n + 1) - n - 1.0
    total = xs.sum(axis=1)
    np.divide(xs @ coef, n * total, out=out, where=total > 0)
    return out


def _binary_rows(codes: np.ndarray, width: int) -> sp.csr_matrix:
    """CSR ``(rows, width)`` with a 1 at each code (codes distinct per row, sentinel included)."""
    b, c = codes.shape
    indptr = np.arange(0, b * c + 1, c, dtype=np.int64)
    data = np.ones(b * c)
    return sp.csr_matrix((data, codes.ravel(), indptr), shape=(b, width))


def _check_distinct(r: np.ndarray, row_offset: int) -> None:
    """Raise if a list repeats an item (padding may repeat)."""
    if r.shape[1] < 2:
        return
    ordered = np.sort(r, axis=1)
    clash = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    if clash.any():
        rows = np.flatnonzero(clash.any(axis=1))
        first = int(rows[0])
        repeated = np.unique(ordered[first, 1:][clash[first]])
        raise EvaluationError(
            f"recs: expected distinct items within each list, got repeated items in "
            f"{rows.size} list(s) of a block (first: row {first + row_offset} repeats item "
            f"code(s) {repeated[:5].tolist()})"
        )
