"""Report figures: matplotlib drawings of tidy frames the runner has already computed.

Nothing here computes a statistic. Each ``*_figure(frame, ...)`` builder takes a tidy pandas
frame (one row per plotted value, columns documented on the builder), checks it, and returns a
:class:`matplotlib.figure.Figure`; :func:`save_figure` writes it as a PNG.

Conventions shared by every figure:

- The object-oriented API only (``Figure``, ``add_subplot``, ``savefig``), never ``pyplot``:
  no global figure registry, no GUI backend, safe to build many figures in one process. Each
  figure gets its own Agg canvas, so no ``MPLBACKEND`` is needed.
- Builders and :func:`save_figure` run under matplotlib's default style plus a few house
  settings, so a caller's ``rcParams`` changes cannot alter the picture, and the same frame
  always gives the same PNG bytes (the PNG carries no software or date stamp).
- Families are the rungs of the personalization spectrum and keep one colour everywhere:
  rule, content, collaborative, hybrid (:data:`FAMILY_COLOURS`, colour-blind safe Okabe-Ito
  hues); a family outside these is grey and sorts after them. Models of one family are told
  apart by marker and line style, assigned by model name within the family
  (:func:`model_styles`), so a model looks the same in every figure of a report.
- Legends sit outside the axes; fonts are at least 8 pt; a figure grows with its rows.
- An empty frame or a missing column raises ``ValueError`` naming the figure: these frames
  come from the runner, so a bad one is a programming error, not user input.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.colors
import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Annotation, Text

from bench.atomic import atomic_write

FAMILY_ORDER: tuple[str, ...] = ("rule", "content", "collaborative", "hybrid")
"""The spectrum rungs, in the order every figure lists them."""

FAMILY_COLOURS: dict[str, str] = {
    "rule": "#E69F00",  # orange
    "content": "#009E73",  # bluish green
    "collaborative": "#0072B2",  # blue
    "hybrid": "#CC79A7",  # reddish purple
}
"""One fixed colour per family (Okabe-Ito palette)."""

UNKNOWN_COLOUR = "#7F7F7F"
"""Colour of any family not in :data:`FAMILY_ORDER`."""

MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*")
"""Markers within a family (11 of them: co-prime with the 4 line styles, so the first 44
models of a family all get a distinct marker and line-style pair)."""

LINESTYLES: tuple[object, ...] = ("-", "--", ":", "-.")
"""Line styles within a family."""

CI_LABEL = "95% bootstrap CI"
"""Default description of the interval bars and bands."""

DPI = 120
"""Resolution of saved PNGs (also the figures' own dpi, so the layout pass and the drawing
share matplotlib's text-extent cache instead of measuring every text at two resolutions)."""

PNG_COMPRESSION = 3
"""zlib level of saved PNGs: level 6 (Pillow's default) spends half as much again encoding
the default run's figures, for files 1-9% smaller."""

_HOUSE_RC = {
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 11,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
}

_MIN_FONT = 8
_LEGEND_ROWS = 18  # legend entries per column before a second column is added


@dataclass(frozen=True)
class ModelStyle:
    """How one model is drawn: its family's colour plus a marker and line style."""

    family: str
    colour: str
    marker: str
    linestyle: object


# --------------------------------------------------------------------------- shared helpers


@contextlib.contextmanager
def _house_style() -> Iterator[None]:
    """matplotlib's default style plus the house settings, whatever the caller's rcParams."""
    with matplotlib.style.context("default"), matplotlib.rc_context(_HOUSE_RC):
        yield


def family_rank(family: str) -> tuple[int, str]:
    """Sort key putting families in spectrum order, unknown families after, by name."""
    if family in FAMILY_ORDER:
        return (FAMILY_ORDER.index(family), "")
    return (len(FAMILY_ORDER), str(family))


def family_colour(family: str) -> str:
    """The family's fixed colour; grey for a family outside :data:`FAMILY_ORDER`."""
    return FAMILY_COLOURS.get(family, UNKNOWN_COLOUR)


def _natural_key(name: str) -> tuple[object, ...]:
    """Sort key ordering ``m2`` before ``m10``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _text_colour(family: str) -> tuple[float, float, float]:
    """The family colour darkened a quarter, for text on white."""
    r, g, b = matplotlib.colors.to_rgb(family_colour(family))
    return (0.75 * r, 0.75 * g, 0.75 * b)


def model_styles(frame: pd.DataFrame) -> dict[str, ModelStyle]:
    """Colour, marker and line style per model, from a frame with ``model`` and ``family``.

    Within a family, models are numbered by name (natural sort: ``m2`` before ``m10``), the
    i-th getting ``MARKERS[i % 11]`` and ``LINESTYLES[i % 4]``; so the same set of models is
    drawn the same way in every figure. The returned dict is ordered by family rung, then
    model name (the legend order). A model listed under two families raises ``ValueError``.
    """
    pairs = frame[["model", "family"]].drop_duplicates()
    clash = pairs["model"][pairs["model"].duplicated()]
    if len(clash):
        name = clash.iloc[0]
        fams = sorted(pairs.loc[pairs["model"] == name, "family"].astype(str))
        raise ValueError(f"model {name!r}: expected one family, got {fams}")
    family_of = dict(zip(pairs["model"].astype(str), pairs["family"].astype(str), strict=True))
    styles: dict[str, ModelStyle] = {}
    for fam in sorted(set(family_of.values()), key=family_rank):
        names = sorted((m for m, f in family_of.items() if f == fam), key=_natural_key)
        for i, name in enumerate(names):
            styles[name] = ModelStyle(
                family=fam,
                colour=family_colour(fam),
                marker=MARKERS[i % len(MARKERS)],
                linestyle=LINESTYLES[i % len(LINESTYLES)],
            )
    return styles


def _check(frame: pd.DataFrame, figure: str, columns: Iterable[str]) -> pd.DataFrame:
    """Raise ``ValueError`` naming ``figure`` for a non-frame, missing columns or no rows."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{figure}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{figure}: frame is missing column(s) {missing}; found {list(frame.columns)}"
        )
    if frame.empty:
        raise ValueError(f"{figure}: frame is empty, nothing to draw")
    return frame.reset_index(drop=True)


def _new_figure(width: float, height: float) -> Figure:
    """A figure with its own Agg canvas and constrained layout (no pyplot involved)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _legend_columns(n_entries: int) -> int:
    return max(1, math.ceil(n_entries / _LEGEND_ROWS))


def _family_handles(families: Iterable[str]) -> list[Patch]:
    present = sorted(set(families), key=family_rank)
    return [Patch(facecolor=family_colour(f), edgecolor="none", label=f) for f in present]


def _model_handles(styles: dict[str, ModelStyle], *, lines: bool) -> list[Line2D]:
    return [
        Line2D(
            [], [], color=s.colour, marker=s.marker, markersize=6,
            linestyle=s.linestyle if lines else "none", label=name,
        )
        for name, s in styles.items()
    ]


def _outside_legend(fig: Figure, handles: Sequence[object], title: str | None = None) -> None:
    """A figure legend to the right of all axes (constrained layout makes room for it)."""
    fig.legend(
        handles=list(handles), loc="outside right upper", title=title, frameon=False,
        ncols=_legend_columns(len(handles)), fontsize=9, title_fontsize=9,
    )


def _wrap(text: str, width_in: float, size_pt: float = 10) -> str:
    """Wrap each line of ``text`` to about ``width_in`` inches at ``size_pt``.

    Titles are not part of the space constrained layout keeps free for an outside legend,
    so a long one would run into it; ~0.55 em per character is a safe average width.
    """
    chars = max(20, int(width_in * 72 / (0.55 * size_pt)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def _finite(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


# --------------------------------------------------------------------------- 1. headline


def headline_figure(
    frame: pd.DataFrame, *, metric: str, baseline: str | None = None, ci: str = CI_LABEL
) -> Figure:
    """Forest plot of one metric: a dot at each model's mean and a horizontal CI bar.

    ``frame`` columns: ``model, family, mean, low, high`` (one row per model). Rows are grouped
    by family in rung order, best mean on top within a family (a model whose mean is NaN is
    listed last in its family and marked "n/a (cannot serve)": it recommended nothing to any
    evaluated user). ``baseline`` names a model whose mean is
    marked by a dashed vertical line (none when that mean is NaN); naming a model not in the
    frame raises ``ValueError``.

    Artists carry gids for inspection: ``"mean:<model>"``, ``"ci:<model>"``, ``"baseline"``.
    """
    name = "headline_figure"
    frame = _check(frame, name, ["model", "family", "mean", "low", "high"])
    if frame["model"].duplicated().any():
        dup = frame.loc[frame["model"].duplicated(), "model"].iloc[0]
        raise ValueError(f"{name}: expected one row per model, got {dup!r} twice")
    if baseline is not None and baseline not in set(frame["model"]):
        raise ValueError(
            f"{name}: baseline {baseline!r} is not a model in the frame "
            f"(models: {sorted(frame['model'].astype(str))})"
        )
    with _house_style():
        styles = model_styles(frame)
        data = frame.assign(
            _rank=[family_rank(str(f)) for f in frame["family"]],
            _mean=_finite(frame["mean"]),
            _low=_finite(frame["low"]),
            _high=_finite(frame["high"]),
        )
        data["_nan"] = data["_mean"].isna()
        data = data.sort_values(["_rank", "_nan", "_mean", "model"],
                                ascending=[True, True, False, True], kind="mergesort")
        n = len(data)
        fig = _new_figure(7.5, max(2.6, 1.3 + 0.3 * n))
        ax = fig.add_subplot()
        ys = np.arange(n)[::-1]  # first row on top
        cols = (data["model"].astype(str), data["_mean"], data["_low"], data["_high"])
        for y, model, mean, low, high in zip(ys, *cols, strict=True):
            st = styles[model]
            if np.isfinite(low) and np.isfinite(high):
                (bar,) = ax.plot([low, high], [y, y], color=st.colour, lw=2.2,
                                 solid_capstyle="butt", alpha=0.75)
                bar.set_gid(f"ci:{model}")
            if np.isfinite(mean):
                (dot,) = ax.plot([mean], [y], color=st.colour, marker=st.marker,
                                 markersize=7, markeredgecolor="black", markeredgewidth=0.6,
                                 linestyle="none")
                dot.set_gid(f"mean:{model}")
            else:
                ax.text(0.01, y, "n/a (cannot serve)", transform=ax.get_yaxis_transform(),
                        va="center",
                        fontsize=_MIN_FONT, color="0.45", style="italic")
        # thin separators between family blocks
        fams = data["family"].astype(str).to_numpy()
        for i in range(1, n):
            if fams[i] != fams[i - 1]:
                ax.axhline(ys[i] + 0.5, color="0.7", lw=0.8, zorder=0)
        ax.set_yticks(ys, [str(m) for m in data["model"]])
        for label, fam in zip(ax.get_yticklabels(), fams, strict=True):
            label.set_color(_text_colour(fam))
        ax.set_ylim(-0.7, n - 0.3)
        ax.grid(axis="y", visible=False)
        handles: list[object] = _family_handles(fams)
        if baseline is not None:
            base = float(data.loc[data["model"] == baseline, "_mean"].iloc[0])
            if np.isfinite(base):
                line = ax.axvline(base, color="0.25", linestyle="--", lw=1.1, zorder=1)
                line.set_gid("baseline")
                handles.append(Line2D([], [], color="0.25", linestyle="--",
                                      label=f"baseline: {baseline}\n({metric} = {base:.4g})"))
        ax.set_xlabel(metric)
        ax.set_ylabel("model (grouped by family)")
        ax.set_title(_wrap(f"{metric} per model: mean (dot) and {ci} (bar)", 5.0))
        _outside_legend(fig, handles, title="family")
    return fig


# --------------------------------------------------------------------------- 2. lift ladder


def lift_ladder_figure(
    frame: pd.DataFrame, *, metric: str, alpha: float = 0.05, ci: str = "95% CI"
) -> Figure:
    """Lift between rungs: paired differences with CIs, per segment.

    ``frame`` columns: ``step`` (e.g. ``"rule_popular -> content_knn"``), ``segment``,
    ``diff, low, high`` (later minus earlier model), ``p_holm`` (Holm-adjusted p-value), ``n``
    (paired users); optional ``family`` (the rung climbed to) colours the step, else dark grey;
    optional ``significant`` (the verdict the intervals agree with), else ``p_holm <= alpha``
    (Holm's rule).

    One panel per step, in frame order, sharing the x axis. Rows are segments: ``"all"``
    first, then the others in frame order, labelled ``"<segment> (n=<n>)"``. A marker at the
    difference is filled when significant, hollow otherwise; a vertical line marks 0.
    Artists carry gids ``"diff:<step>|<segment>"`` and ``"ci:<step>|<segment>"``.
    """
    name = "lift_ladder_figure"
    frame = _check(frame, name, ["step", "segment", "diff", "low", "high", "p_holm", "n"])
    with _house_style():
        steps = list(dict.fromkeys(frame["step"].astype(str)))
        seg_order = list(dict.fromkeys(frame["segment"].astype(str)))
        if "all" in seg_order:
            seg_order.remove("all")
            seg_order.insert(0, "all")
        seg_rank = {s: i for i, s in enumerate(seg_order)}
        data = frame.assign(
            _step=frame["step"].astype(str),
            _seg=frame["segment"].astype(str),
            _diff=_finite(frame["diff"]),
            _low=_finite(frame["low"]),
            _high=_finite(frame["high"]),
            _p=_finite(frame["p_holm"]),
            _sig=(frame["significant"].astype(bool) if "significant" in frame.columns
                  else _finite(frame["p_holm"]) <= alpha),
        )
        sizes = [int((data["_step"] == s).sum()) for s in steps]
        height = 1.1 + sum(0.55 + 0.3 * k for k in sizes)
        fig = _new_figure(7.5, max(2.6, height))
        axes = fig.subplots(len(steps), 1, sharex=True, squeeze=False,
                            gridspec_kw={"height_ratios": [0.6 + k for k in sizes]})[:, 0]
        for ax, step in zip(axes, steps, strict=True):
            rows = data[data["_step"] == step]
            rows = rows.iloc[np.argsort([seg_rank[s] for s in rows["_seg"]], kind="stable")]
            fam = str(rows["family"].iloc[0]) if "family" in rows.columns else None
            colour = family_colour(fam) if fam is not None else "#333333"
            ys = np.arange(len(rows))[::-1]
            labels = []
            cols = (rows["_seg"], rows["n"], rows["_diff"], rows["_low"], rows["_high"],
                    rows["_sig"])
            for y, seg, n, diff, low, high, sig in zip(ys, *cols, strict=True):
                key = f"{step}|{seg}"
                labels.append(f"{seg} (n={int(n)})" if pd.notna(n) else f"{seg} (n=?)")
                if np.isfinite(low) and np.isfinite(high):
                    (bar,) = ax.plot([low, high], [y, y], color=colour, lw=2.2,
                                     solid_capstyle="butt", alpha=0.75)
                    bar.set_gid(f"ci:{key}")
                if np.isfinite(diff):
                    significant = bool(sig)
                    (dot,) = ax.plot([diff], [y], marker="o", markersize=7,
                                     linestyle="none", color=colour, markeredgecolor=colour,
                                     markeredgewidth=1.5,
                                     markerfacecolor=colour if significant else "white")
                    dot.set_gid(f"diff:{key}")
                else:
                    ax.annotate("no data", (0.0, y), xytext=(6, 0), textcoords="offset points",
                                va="center", fontsize=_MIN_FONT, color="0.45", style="italic")
            ax.axvline(0.0, color="0.2", lw=0.9, zorder=0)
            ax.set_yticks(ys, labels)
            ax.set_ylim(-0.6, len(rows) - 0.4)
            ax.grid(axis="y", visible=False)
            ax.set_title(_wrap(step, 5.5, 9.5), loc="left", fontsize=9.5)
        axes[-1].set_xlabel(f"difference in {metric} (later rung − earlier rung)")
        fig.suptitle(_wrap(
            f"Lift between the rungs ({metric}, {ci}, Holm-corrected)", 7.0, 11))
        handles = [
            Line2D([], [], marker="o", linestyle="none", color="#333333",
                   markerfacecolor="#333333", label=f"Holm p <= {alpha:g}"),
            Line2D([], [], marker="o", linestyle="none", color="#333333",
                   markerfacecolor="white", markeredgewidth=1.5, label="not significant"),
            Line2D([], [], color="#333333", lw=2.2, alpha=0.75, label=ci),
        ]
        if "family" in data.columns:
            handles += _family_handles(data["family"].astype(str))
        # below the panels: to the right it would collide with the centred suptitle
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4),
                   frameon=False, fontsize=9)
    return fig


# --------------------------------------------------------------------------- 3. cold start


def cold_start_figure(
    frame: pd.DataFrame, *, metric: str, xlabel: str, ci: str = CI_LABEL
) -> Figure:
    """Small multiples over ordered categories (history size): one panel per family.

    ``frame`` columns: ``model, family, x`` (category label), ``x_order`` (sorts the x axis),
    ``mean, low, high, n``. Each panel draws its family's models in colour (line, markers,
    a light CI band) over every other model in thin grey for context, on x and y axes
    shared by all panels (x tick labels and label under each column's lowest panel), so
    14-30 models stay readable. Points with ``n == 0`` or a NaN mean are
    not drawn (the line breaks there): the model could serve nobody at that x, and its
    legend entry says "n/a at ..." (or "cannot serve" when it has no point at all). Lines
    carry gid ``"line:<model>"``, bands ``"band:<model>"``, grey context ``"context:<model>"``.
    """
    name = "cold_start_figure"
    frame = _check(frame, name, ["model", "family", "x", "x_order", "mean", "low", "high", "n"])
    with _house_style():
        styles = model_styles(frame)
        cats = (frame[["x", "x_order"]].assign(x=frame["x"].astype(str))
                .drop_duplicates("x").sort_values(["x_order", "x"], kind="mergesort"))
        pos = {x: i for i, x in enumerate(cats["x"])}
        labels = list(pos)
        data = frame.assign(
            _x=frame["x"].astype(str).map(pos),
            _mean=_finite(frame["mean"]),
            _low=_finite(frame["low"]),
            _high=_finite(frame["high"]),
            _n=_finite(frame["n"]),
        )
        skip = data["_mean"].isna() | (data["_n"] == 0)
        data.loc[skip, ["_mean", "_low", "_high"]] = np.nan
        series = {}
        for model in styles:
            rows = data[data["model"].astype(str) == model]
            xs = rows["_x"].to_numpy(dtype=int)
            arrays = [np.full(len(pos), np.nan) for _ in range(3)]
            for arr, col in zip(arrays, ("_mean", "_low", "_high"), strict=True):
                arr[xs] = rows[col].to_numpy()
            series[model] = arrays
        fig, panels = _family_panels(styles, width=4.6, height=3.6)
        grid_x = np.arange(len(pos), dtype=float)
        for fam, ax in panels.items():
            for model, (mean, _, _) in series.items():
                if styles[model].family != fam:
                    (ctx,) = ax.plot(grid_x, mean, color="0.8", lw=0.9, zorder=1)
                    ctx.set_gid(f"context:{model}")
            handles = []
            for model, st in styles.items():
                if st.family != fam:
                    continue
                mean, low, high = series[model]
                (line,) = ax.plot(grid_x, mean, color=st.colour, marker=st.marker,
                                  linestyle=st.linestyle, lw=1.6, markersize=6, zorder=3)
                line.set_gid(f"line:{model}")
                ok = np.isfinite(low) & np.isfinite(high)
                if ok.any():
                    band = ax.fill_between(grid_x, low, high, where=ok, color=st.colour,
                                           alpha=0.12, linewidth=0, interpolate=False)
                    band.set_gid(f"band:{model}")
                handles.append(Line2D([], [], color=st.colour, marker=st.marker,
                                      linestyle=st.linestyle, markersize=5,
                                      label=_served_label(model, mean, labels)))
            ax.set_xticks(grid_x, labels)
            ax.set_xlim(-0.3, len(pos) - 0.7)
            ax.set_title(f"{fam} ({len(handles)} model{'s' if len(handles) != 1 else ''})",
                         color=_text_colour(fam))
            if _is_lowest(ax, len(panels)):  # one x label per column, under its tick labels
                ax.set_xlabel(_wrap(xlabel, 4.0))  # wrapped: it would run into its neighbour
            ax.legend(handles=handles, fontsize=_MIN_FONT, loc="best", framealpha=0.85)
        for ax in fig.axes:
            if ax.get_visible() and ax.get_subplotspec().is_first_col():
                ax.set_ylabel(metric)
        # wrapped to the canvas (two columns for four families), so it is never clipped
        fig.suptitle(_wrap(f"{metric} by {xlabel}: mean (line) and {ci} (band); each panel "
                           "one family, the other models in grey", fig.get_figwidth() - 0.4,
                           11))
    return fig


def _family_panels(styles: dict[str, ModelStyle], *, width: float,
                   height: float) -> tuple[Figure, dict[str, Axes]]:
    """One panel per family present (rung order), sharing both axes: 2x2 for four.

    x tick labels are shown on the lowest panel of each column only (also when the panel
    below it is an unused cell); :func:`_is_lowest` tells which panels those are.
    """
    families = list(dict.fromkeys(st.family for st in styles.values()))
    ncols = 2 if len(families) == 4 else min(3, len(families))
    nrows = math.ceil(len(families) / ncols)
    fig = _new_figure(width * ncols, height * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    for ax in axes[len(families):]:
        ax.set_visible(False)
    for i, ax in enumerate(axes[:len(families)]):
        if i + ncols >= len(families):  # nothing drawn below it
            ax.xaxis.set_tick_params(labelbottom=True)
    return fig, dict(zip(families, axes, strict=False))


def _is_lowest(ax: Axes, n_panels: int) -> bool:
    """Whether ``ax`` is the lowest used panel of its column in :func:`_family_panels`."""
    spec = ax.get_subplotspec()
    ncols = spec.get_gridspec().ncols
    return spec.rowspan.start * ncols + spec.colspan.start + ncols >= n_panels


def _served_label(model: str, mean: np.ndarray, labels: Sequence[str]) -> str:
    """A legend label that says where the model could serve nobody."""
    missing = [lab for lab, v in zip(labels, mean, strict=True) if not np.isfinite(v)]
    if len(missing) == len(labels):
        return f"{model}: n/a (cannot serve)"
    if missing:
        return f"{model}: n/a at {', '.join(missing)}"
    return model


# --------------------------------------------------------------------------- 4. trade-offs


def tradeoff_figure(
    frame: pd.DataFrame, *, accuracy: str, others: Sequence[str]
) -> Figure:
    """Accuracy against other qualities: one scatter panel per metric in ``others``.

    ``frame`` columns: ``model, family, <accuracy>, *others`` (one row per model). In each
    panel x is the other metric and y the accuracy metric; each model is one point (its own
    scatter collection, gid ``"point:<model>"``) coloured by family, marker by model, annotated
    with the model name at a small offset chosen to avoid the labels already placed. Models
    with NaN in either coordinate are left out of that panel.
    """
    name = "tradeoff_figure"
    others = list(others)
    if not others:
        raise ValueError(f"{name}: expected at least one metric in others, got []")
    frame = _check(frame, name, ["model", "family", accuracy, *others])
    with _house_style():
        styles = model_styles(frame)
        ncols = min(3, len(others))
        nrows = math.ceil(len(others) / ncols)
        grow = 0.09 * max(0, len(styles) - 12)  # more points need more room for their names
        fig = _new_figure((4.6 + grow) * ncols + 1.6, (4.2 + grow) * nrows + 0.4)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        y_all = _finite(frame[accuracy])
        to_label = []
        for ax, other in zip(axes, others, strict=False):
            x_all = _finite(frame[other])
            ok = np.isfinite(x_all) & np.isfinite(y_all)
            placed = []
            for i in np.flatnonzero(ok):
                model = str(frame["model"].iloc[i])
                st = styles[model]
                coll = ax.scatter([x_all[i]], [y_all[i]], color=st.colour, marker=st.marker,
                                  s=42, edgecolors="black", linewidths=0.5, zorder=3)
                coll.set_gid(f"point:{model}")
                placed.append((model, x_all[i], y_all[i]))
            ax.set_xlabel(other)
            ax.set_ylabel(accuracy)
            ax.set_title(_wrap(f"{accuracy} vs {other}", 4.0))
            ax.margins(0.12)
            to_label.append((ax, placed))
        for ax in axes[len(others):]:
            ax.set_visible(False)
        fig.suptitle(_wrap(
            f"Trade-offs: {accuracy} against {', '.join(others)} (one point per model)",
            4.6 * ncols, 11))
        _outside_legend(fig, _family_handles(frame["family"].astype(str)), title="family")
        _lay_out_once(fig)  # pixel positions are now final
        for ax, placed in to_label:
            ax.autoscale_view()  # data limits as they will be drawn
            _annotate_points(fig, ax, placed)
    return fig


def _lay_out_once(fig: Figure) -> None:
    """Run the figure's layout engine now and detach it, so the layout is final.

    For builders that place artists in pixels after the layout (the trade-off labels, kept
    out of the layout); :func:`save_figure` then draws the figure as it is, without laying
    it out again.
    """
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
        fig.set_layout_engine("none")


_OFFSETS = (
    (5, 4), (5, -11), (-5, 4), (-5, -11), (7, -3), (-7, -3),  # next to the point
    (5, 12), (-5, 12), (5, -19), (-5, -19), (0, 20), (0, -27),  # one line further
    (12, 24), (-12, 24), (12, -31), (-12, -31), (20, -3), (-20, -3),  # further, with a leader
)
"""Candidate label offsets in points from the point (x, y); negative x is right-aligned."""


def _annotate_points(fig: Figure, ax: Axes, points: list[tuple[str, float, float]]) -> None:
    """Label each point with its model name, greedily avoiding overlap with earlier labels.

    Needs a layout pass first (pixel transforms and text extents final). Each label is
    measured once, then its box is shifted to each of :data:`_OFFSETS` in turn (the
    left-hand ones first for points in the right half of the axes); the first box that
    overlaps no earlier label, no point and does not stick out of the axes is kept; when
    none is free, the one with the least overlap. Labels are kept out of
    the layout so placing them does not move the axes.
    """
    if not points:
        return
    renderer = fig.canvas.get_renderer()
    frame_box = ax.get_window_extent(renderer)
    inside = np.array([frame_box.x0, frame_box.y0, frame_box.x1, frame_box.y1])
    pix = ax.transData.transform([(x, y) for _, x, y in points])
    px_per_pt = fig.dpi / 72.0
    r = 4.0 * px_per_pt  # marker half-size in pixels
    taken = [np.array([px - r, py - r, px + r, py + r]) for px, py in pix]
    for (model, x, y), (px, _) in zip(points, pix, strict=True):
        right_half = px > (inside[0] + inside[2]) / 2
        offsets = sorted(_OFFSETS, key=lambda o: (o[0] >= 0) if right_half else False)
        # the label's size does not depend on where it goes: measure it once, left-aligned
        # at the point, and shift that box to each candidate offset
        probe = ax.annotate(model, (x, y), xytext=(0, 0), textcoords="offset points",
                            fontsize=_MIN_FONT, annotation_clip=False)
        at_point = _extent(probe, renderer)
        probe.remove()
        width = at_point[2] - at_point[0]
        best, best_cost = offsets[0], math.inf
        for dx, dy in offsets:
            shift_x = dx * px_per_pt - (width if dx < 0 else 0.0)  # right-aligned if dx < 0
            shift_y = dy * px_per_pt
            box = at_point + np.array([shift_x, shift_y, shift_x, shift_y])
            area = (box[2] - box[0]) * (box[3] - box[1])
            # sticking out of the axes is worse than overlapping: it hits tick labels; less
            # than a thousandth of a square pixel is rounding, not overlap
            cost = sum(_overlap(box, t) for t in taken) + 10 * (area - _overlap(box, inside))
            cost = 0.0 if cost < 1e-3 else cost
            if cost < best_cost:
                best, best_cost = (dx, dy), cost
            if cost == 0:
                break
        far = abs(best[1]) > 12 or abs(best[0]) > 8 or best[0] == 0  # leader line
        leader = {"arrowstyle": "-", "color": "0.55", "lw": 0.6, "shrinkA": 1, "shrinkB": 3}
        ann = ax.annotate(model, (x, y), xytext=best, textcoords="offset points",
                          ha="right" if best[0] < 0 else "left", fontsize=_MIN_FONT,
                          color="0.15", annotation_clip=False, zorder=4,
                          arrowprops=leader if far else None)
        ann.set_in_layout(False)
        taken.append(_extent(ann, renderer))


def _extent(ann: Annotation, renderer: object) -> np.ndarray:
    """Pixel box ``[x0, y0, x1, y1]`` of an annotation's text (without its leader line)."""
    ann.update_positions(renderer)
    ext = Text.get_window_extent(ann, renderer)
    return np.array([ext.x0, ext.y0, ext.x1, ext.y1])


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return float(w * h) if w > 0 and h > 0 else 0.0


# --------------------------------------------------------------------------- 5. metric@k


def metric_at_k_figure(frame: pd.DataFrame) -> Figure:
    """Each metric against the cutoff k: a grid of metrics (rows) x families (columns).

    ``frame`` columns: ``model, family, metric, k, value``. Metrics follow their order of
    first appearance, families the rung order. Each panel draws its family's models in
    colour over the same metric's other models in thin grey, on a y axis shared along the
    row and one k axis for all (its tick labels on the bottom row only, which leaves the
    panels more room and the layout fewer texts to measure), so 14-30 models stay
    readable; each column's top panel carries the legend of its family. Lines are sorted
    by k and carry gid ``"line:<model>"`` (grey context: ``"context:<model>"``).
    """
    name = "metric_at_k_figure"
    frame = _check(frame, name, ["model", "family", "metric", "k", "value"])
    with _house_style():
        styles = model_styles(frame)
        metrics = list(dict.fromkeys(frame["metric"].astype(str)))
        families = list(dict.fromkeys(st.family for st in styles.values()))
        nrows, ncols = len(metrics), len(families)
        fig = _new_figure(3.6 * ncols + 0.4, 2.9 * nrows + 0.8)
        grid = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey="row")
        data = frame.assign(_metric=frame["metric"].astype(str), _k=_finite(frame["k"]),
                            _v=_finite(frame["value"]), _model=frame["model"].astype(str))
        ks = np.unique(data["_k"][np.isfinite(data["_k"])])
        for i, metric in enumerate(metrics):
            sub = data[data["_metric"] == metric]
            lines = {model: sub[sub["_model"] == model].sort_values("_k", kind="mergesort")
                     for model in styles}
            for j, fam in enumerate(families):
                ax = grid[i, j]
                for model, rows in lines.items():
                    if not rows.empty and styles[model].family != fam:
                        (ctx,) = ax.plot(rows["_k"], rows["_v"], color="0.8", lw=0.9, zorder=1)
                        ctx.set_gid(f"context:{model}")
                for model, rows in lines.items():
                    st = styles[model]
                    if rows.empty or st.family != fam:
                        continue
                    # markers on about ten points per line: the style stays legible at k = 50
                    (line,) = ax.plot(rows["_k"], rows["_v"], color=st.colour, marker=st.marker,
                                      linestyle=st.linestyle, lw=1.5, markersize=5, label=model,
                                      markevery=max(1, len(rows) // 10), zorder=3)
                    line.set_gid(f"line:{model}")
                if i == 0:
                    ax.set_title(fam, color=_text_colour(fam))
                    ax.legend(fontsize=_MIN_FONT, loc="best", framealpha=0.85)
                if j == 0:
                    ax.set_ylabel(metric)
                if i == nrows - 1:
                    ax.set_xlabel("k (list length)")
                if 0 < len(ks) <= 10:
                    ax.set_xticks(ks, [f"{k:g}" for k in ks])
        fig.suptitle("Metrics at cutoff k (mean over served users); each column one family, "
                     "the other models in grey")
    return fig


# --------------------------------------------------------------------------- saving


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG at ``path`` (parents created, atomically); return the path.

    The image is rendered into a temporary file in the same folder, then moved into place
    with ``os.replace``, so a reader never sees half a file. Every builder lays its figure
    out with constrained layout, which already keeps titles and outside legends inside the
    canvas, so the PNG is the canvas as drawn: no ``bbox_inches="tight"`` (which measures
    the figure with an extra draw), and the layout runs once (:func:`_save_laid_out`). The PNG
    carries no ``Software`` stamp, so equal figures give equal bytes.
    A path not ending in ``.png`` raises ``ValueError``.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"save_figure: expected a path ending in .png, got {str(path)!r}")

    def render(tmp: Path) -> None:
        with open(tmp, "wb") as fh, _house_style():
            _save_laid_out(fig, fh, dpi)

    atomic_write(path, render)
    return path


def _save_laid_out(fig: Figure, fh, dpi: int) -> None:
    """``savefig`` with one layout pass and one draw.

    With a layout engine, ``savefig`` draws the figure twice (a silent draw so the layout
    is final, then the real one) and each draw runs the layout again. Here the layout runs
    once, the engine is detached for the single rendering draw, then put back.
    """
    engine = fig.get_layout_engine()
    if engine is None:
        _print_png(fig, fh, dpi)
        return
    engine.execute(fig)
    fig.set_layout_engine(None)
    try:
        _print_png(fig, fh, dpi)
    finally:
        fig.set_layout_engine(engine)


def _print_png(fig: Figure, fh, dpi: int) -> None:
    fig.savefig(fh, format="png", dpi=dpi, metadata={"Software": None},
                pil_kwargs={"compress_level": PNG_COMPRESSION})
