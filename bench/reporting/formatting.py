"""How numbers are shown in markdown (reports, PR comments): never rounded upstream, only here.

Each function takes anything ``float()`` accepts and shows "—" for a missing value
(None, NaN, or something that is not a number).
"""

from __future__ import annotations

import math

__all__ = ["fmt_num", "fmt_p", "fmt_pct"]


def _float(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def fmt_num(v, digits: int = 4) -> str:
    """``0.1234``; "∞" / "−∞" for infinities."""
    v = _float(v)
    if v is None:
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.{digits}f}"


def fmt_pct(v) -> str:
    """A relative change: ``+12%``; "—" when not finite."""
    v = _float(v)
    return "—" if v is None or math.isinf(v) else f"{v:+.0%}"


def fmt_p(v) -> str:
    """A p-value: ``0.0123``, or ``< 0.0001``."""
    v = _float(v)
    if v is None:
        return "—"
    return "< 0.0001" if v < 1e-4 else f"{v:.4f}"
