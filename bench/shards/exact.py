"""Exact sums of float64 values: digits on a fixed binary grid, integers all the way.

Float addition is not associative, so adding per-shard float sums gives a total that
depends on how users were split. Here sums are exact instead: every finite float64 is an
integer multiple of a power of two, ``x = m * 2**e`` with ``|m| < 2**53`` (``m, e`` from
``numpy.frexp``), and a sum of such numbers is an integer multiple of ``2**E0`` for a low
enough ``E0``. Integer addition is associative, so any sharding, any order and any
grouping gives the same integer, and a mean computed from it is the same float.

Representation: a sum is a vector of :data:`N_DIGITS` int64 *digits* ``a_j`` with value
``sum_j a_j * 2**(32 j + E0)``, ``E0 = -2304`` (:data:`E0`). Every finite float64 and the
square of every finite float64 lies on this grid: the smallest subnormal is
``2**-1074 = 2**52 * 2**-1126`` and its square ``2**104 * 2**-2252``; the largest square is
below ``2**2048``. Digit ``j`` of a value ``t * 2**e`` (``|t| < 2**54``): with
``p = e - E0``, ``j = p // 32``, ``s = p % 32``, ``t * 2**s`` is cut into three 32-bit
pieces that go to digits ``j, j + 1, j + 2`` (each piece below ``2**33``, with the sign of
``t``). A square ``m**2 * 2**(2e)`` is added as three exact products,
``m = h * 2**26 + l``: ``h**2 * 2**(2e + 52) + 2 h l * 2**(2e + 26) + l**2 * 2**(2e)``.

Adding digits: per block of at most :data:`CHUNK` values, pieces are summed with
``numpy.bincount`` in float64 -- every partial sum is an integer below ``2**53``, so the
float arithmetic is exact whatever order it runs in -- and added to int64 digits.
:func:`normalize` propagates carries (``a_j`` into ``[0, 2**32)``, the top digit keeps
the sign), after which the digits are canonical: two equal sums have equal digits.
:func:`to_int` turns canonical digits into the Python integer ``S`` with
``sum = S * 2**E0``; ``S / (n << -E0)`` (Python's integer division, correctly rounded) is
then the mean, rounded once.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CHUNK",
    "E0",
    "N_DIGITS",
    "dense_digits",
    "normalize",
    "split_floats",
    "sum_digits",
    "sumsq_digits",
    "to_int",
]

#: exponent of the grid's unit: digit 0 counts multiples of 2**E0
E0 = -2304
#: digits per sum (32 bits each; the top ones are headroom for carries)
N_DIGITS = 140
#: values per float64 bincount, so every partial sum stays below 2**53
CHUNK = 1 << 18
_BITS = 32
_MASK = np.int64(0xFFFFFFFF)


def split_floats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(m, e)`` int64 arrays with ``x = m * 2**e`` exactly, ``|m| < 2**53`` (0 for 0).

    ``x`` must be finite (NaN cells are the caller's to mask: pass them as 0).
    """
    frac, exp = np.frexp(np.asarray(x, dtype=np.float64))
    m = np.ldexp(frac, 53).astype(np.int64)
    return m, exp.astype(np.int64) - 53


def _pieces(t: np.ndarray, e: np.ndarray):
    """Digit index ``j`` and the three pieces of ``t * 2**e`` (``|t| < 2**54``)."""
    p = e - E0
    j = p >> 5
    s = p & 31
    neg = t < 0
    a = np.abs(t)
    low = (a & _MASK) << s
    high = (a >> _BITS) << s
    d0 = low & _MASK
    d1 = (low >> _BITS) + (high & _MASK)
    d2 = high >> _BITS
    for d in (d0, d1, d2):
        np.negative(d, out=d, where=neg)
    return j, d0, d1, d2


def _square_terms(m: np.ndarray, e: np.ndarray):
    a = np.abs(m)
    h = a >> 26
    lo = a & np.int64((1 << 26) - 1)
    return ((h * h, 2 * e + 52), (2 * h * lo, 2 * e + 26), (lo * lo, 2 * e))


def _bin(out: np.ndarray, t: np.ndarray, e: np.ndarray) -> None:
    j, d0, d1, d2 = _pieces(t, e)
    for shift, d in enumerate((d0, d1, d2)):
        out += np.bincount(j + shift, weights=d.astype(np.float64), minlength=N_DIGITS).astype(
            np.int64
        )


def sum_digits(x: np.ndarray) -> np.ndarray:
    """Normalized digits (int64) of the exact sum of the finite values ``x``."""
    out = np.zeros(N_DIGITS, dtype=np.int64)
    x = np.asarray(x, dtype=np.float64).ravel()
    for start in range(0, x.size, CHUNK):
        m, e = split_floats(x[start : start + CHUNK])
        _bin(out, m, e)
        normalize(out)  # each chunk adds < 2**53 per digit: room for the next one
    return out


def sumsq_digits(x: np.ndarray) -> np.ndarray:
    """Normalized digits (int64) of the exact sum of squares of the finite values ``x``."""
    out = np.zeros(N_DIGITS, dtype=np.int64)
    x = np.asarray(x, dtype=np.float64).ravel()
    for start in range(0, x.size, CHUNK):
        m, e = split_floats(x[start : start + CHUNK])
        for t, te in _square_terms(m, e):
            _bin(out, t, te)
        normalize(out)
    return out


def dense_digits(x: np.ndarray) -> tuple[int, np.ndarray]:
    """``(j0, D)``: each value's digits as a float64 row, columns ``j0, j0 + 1, ...``.

    ``D[u] @ 2**(32 (j0 + c) + E0)`` over columns ``c`` is ``x[u]`` exactly, and every
    entry of ``D`` is an integer below ``2**33`` in magnitude, so ``W @ D`` for integer
    weights ``W`` is exact in float64 while ``sum_u |W_ru| * 2**33 < 2**53``. Zeros take
    no column; an array of zeros gives ``(0, an (n, 0) array)``.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    m, e = split_floats(x)
    j, d0, d1, d2 = _pieces(m, e)
    nonzero = m != 0
    if not nonzero.any():
        return 0, np.zeros((x.size, 0))
    j0 = int(j[nonzero].min())
    width = int(j[nonzero].max()) - j0 + 3
    col = np.where(nonzero, j - j0, 0)
    rows = np.arange(x.size)
    dense = np.zeros((x.size, width))
    dense[rows, col] = d0
    dense[rows, col + 1] += d1
    dense[rows, col + 2] += d2
    return j0, dense


def normalize(digits: np.ndarray) -> np.ndarray:
    """Propagate carries along the last axis, in place: digits ``0..N-2`` end in
    ``[0, 2**32)`` and the top digit holds the rest (and the sign). Returns ``digits``."""
    for j in range(digits.shape[-1] - 1):
        carry = digits[..., j] >> _BITS
        digits[..., j] -= carry << _BITS
        digits[..., j + 1] += carry
    return digits


def to_int(digits: np.ndarray) -> list:
    """The Python integers ``S`` (``sum = S * 2**E0``) of normalized digits.

    ``digits`` is ``(..., N_DIGITS)``; returns nested lists shaped like ``digits.shape[:-1]``
    (a plain int for a 1-D input).
    """
    digits = np.asarray(digits, dtype=np.int64)
    shape = digits.shape[:-1]
    flat = digits.reshape(-1, digits.shape[-1])
    low = flat[:, :-1].astype("<u4")
    top_shift = _BITS * (flat.shape[1] - 1)
    values = [
        int.from_bytes(low[i].tobytes(), "little") + (int(flat[i, -1]) << top_shift)
        for i in range(flat.shape[0])
    ]
    if not shape:
        return values[0]
    return np.array(values, dtype=object).reshape(shape).tolist()
