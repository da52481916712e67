"""How numbers are shown in markdown (reports, PR comments): never rounded upstream, only here.

Each function takes anything ``float()`` accepts and shows "—" for a missing value
(None, NaN, or something that is not a number).
"""

from __future__ import annotations

import math

__all__ = ["fmt_bound", "fmt_diff_ci", "fmt_level", "fmt_num", "fmt_p", "fmt_pct"]


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


def fmt_bound(v) -> str:
    """A signed difference or interval bound: ``+0.0123``. A non-zero value that would
    print as ``±0.0000`` keeps two significant digits (``+3.1e-05``), so a printed interval
    shows whether it excludes 0 exactly as the computed one does; "—" when missing."""
    v = _float(v)
    if v is None:
        return "—"
    if math.isinf(v):
        return "+∞" if v > 0 else "−∞"
    text = f"{v:+.4f}"
    if v != 0 and float(text) == 0:
        return f"{v:+.1e}"
    return text


def fmt_diff_ci(row) -> str:
    """``+0.0634* [+0.0064, +0.1395]``: a paired difference, ``*`` when ``significant``, and
    its interval (``low``, ``high``), which the report only prints when it agrees with the
    verdict (see :func:`bench.reporting.analysis.correct_family`)."""
    star = "*" if bool(row.get("significant", False)) else ""
    return f"{fmt_bound(row['diff'])}{star} [{fmt_bound(row['low'])}, {fmt_bound(row['high'])}]"


def fmt_level(v) -> str:
    """A confidence level: ``95%``, ``99.87%``, ``99.996%`` (whole when whole, else at least
    two decimals and as many as it takes not to round up to 100%)."""
    v = _float(v)
    if v is None:
        return "—"
    pct = v * 100
    for digits in range(7):
        text = f"{pct:.{digits}f}"
        if abs(float(text) - pct) < 1e-9 or (digits >= 2 and float(text) < 100):
            return f"{text}%"
    return f"{pct}%"
