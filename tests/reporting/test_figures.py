"""Report figures: structure of each built figure, saved PNG bytes, and bad frames."""

from __future__ import annotations

import struct

import matplotlib
import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from bench.reporting import figures as F

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, which always follows the signature."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def by_gid(ax, prefix: str) -> dict[str, object]:
    """Artists of ``ax`` whose gid starts with ``prefix``, keyed by the rest of the gid."""
    artists = [*ax.lines, *ax.collections]
    return {a.get_gid()[len(prefix):]: a for a in artists if (a.get_gid() or "").startswith(prefix)}


def rgb(colour) -> tuple[float, float, float]:
    return matplotlib.colors.to_rgb(colour)


# --------------------------------------------------------------------------- frames


@pytest.fixture
def headline() -> pd.DataFrame:
    return pd.DataFrame({
        "model": ["cf_als", "rule_popular", "content_knn", "rule_random", "hybrid_fb", "cf_knn"],
        "family": ["collaborative", "rule", "content", "rule", "hybrid", "collaborative"],
        "mean": [0.30, 0.10, 0.20, 0.02, 0.35, 0.32],
        "low": [0.28, 0.08, 0.18, 0.01, 0.33, 0.29],
        "high": [0.32, 0.12, 0.22, 0.03, 0.37, 0.35],
    })


@pytest.fixture
def lift() -> pd.DataFrame:
    return pd.DataFrame({
        "step": ["rule_popular -> content_knn"] * 3 + ["content_knn -> cf_als"] * 2,
        "segment": ["1-5", "all", "6-20", "all", "1-5"],
        "diff": [0.01, 0.05, 0.07, 0.10, np.nan],
        "low": [-0.01, 0.03, 0.04, 0.08, np.nan],
        "high": [0.03, 0.07, 0.10, 0.12, np.nan],
        "p_holm": [0.40, 0.001, 0.049, 0.0001, np.nan],
        "n": [12, 100, 40, 100, 0],
    })


@pytest.fixture
def cold() -> pd.DataFrame:
    rows = []
    for model, family in [("rule_popular", "rule"), ("cf_als", "collaborative")]:
        for label, order in [("10", 10), ("0", 0), ("3", 3), ("1", 1)]:
            mean = 0.1 + order / 100
            n = 0 if (model == "cf_als" and label == "0") else 50
            rows.append({"model": model, "family": family, "x": label, "x_order": order,
                         "mean": mean, "low": mean - 0.01, "high": mean + 0.01, "n": n})
    return pd.DataFrame(rows)


@pytest.fixture
def tradeoff() -> pd.DataFrame:
    return pd.DataFrame({
        "model": ["rule_popular", "content_knn", "cf_als", "hybrid_fb"],
        "family": ["rule", "content", "collaborative", "hybrid"],
        "ndcg@10": [0.1, 0.2, 0.3, np.nan],
        "coverage@10": [0.01, 0.4, 0.2, 0.3],
        "novelty@10": [8.0, np.nan, 10.0, 11.0],
    })


@pytest.fixture
def at_k() -> pd.DataFrame:
    rows = []
    models = [("rule_popular", "rule"), ("content_knn", "content"), ("cf_als", "collaborative")]
    for metric in ["recall", "ndcg"]:
        for model, family in models:
            for k in [20, 1, 5, 10]:  # unsorted on purpose
                rows.append({"model": model, "family": family, "metric": metric, "k": k,
                             "value": k / 100})
    return pd.DataFrame(rows)


def many_models(n: int = 30) -> list[tuple[str, str]]:
    fams = [*F.FAMILY_ORDER, "experimental"]
    return [(f"model_with_a_long_name_{i}", fams[i % len(fams)]) for i in range(n)]


# --------------------------------------------------------------------------- styles


def test_model_styles_fixed_family_colours_and_distinct_markers_within_family():
    frame = pd.DataFrame({
        "model": ["m10", "m2", "c", "x", "h"],
        "family": ["rule", "rule", "collaborative", "mystery", "hybrid"],
    })
    styles = F.model_styles(frame)
    # rung order, then natural name order; unknown family last and grey
    assert list(styles) == ["m2", "m10", "c", "h", "x"]
    assert styles["m2"].colour == styles["m10"].colour == "#E69F00"
    assert styles["c"].colour == F.FAMILY_COLOURS["collaborative"]
    assert styles["x"].colour == F.UNKNOWN_COLOUR
    assert (styles["m2"].marker, styles["m2"].linestyle) == ("o", "-")
    assert (styles["m10"].marker, styles["m10"].linestyle) == ("s", "--")
    assert (styles["c"].marker, styles["c"].linestyle) == ("o", "-")


def test_model_styles_give_44_distinct_pairs_in_one_family():
    frame = pd.DataFrame({"model": [f"m{i}" for i in range(44)], "family": "content"})
    pairs = {(s.marker, s.linestyle) for s in F.model_styles(frame).values()}
    assert len(pairs) == 44


def test_model_in_two_families_is_rejected():
    frame = pd.DataFrame({"model": ["a", "a"], "family": ["rule", "hybrid"]})
    msg = r"model 'a': expected one family, got \['hybrid', 'rule'\]"
    with pytest.raises(ValueError, match=msg):
        F.model_styles(frame)


# --------------------------------------------------------------------------- 1. headline


def test_headline_rows_grouped_by_rung_best_on_top(headline):
    fig = F.headline_figure(headline, metric="ndcg@10", baseline="rule_popular")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    ticks = {t.get_position()[1]: t.get_text() for t in ax.get_yticklabels()}
    top_to_bottom = [ticks[y] for y in sorted(ticks, reverse=True)]
    assert top_to_bottom == ["rule_popular", "rule_random", "content_knn",
                             "cf_knn", "cf_als", "hybrid_fb"]
    means = by_gid(ax, "mean:")
    cis = by_gid(ax, "ci:")
    assert set(means) == set(cis) == set(headline["model"])
    # the dot sits at the mean on its row, the bar spans low..high, coloured by family
    y_of = {name: y for y, name in ticks.items()}
    assert means["cf_als"].get_xdata()[0] == pytest.approx(0.30)
    assert means["cf_als"].get_ydata()[0] == y_of["cf_als"]
    assert list(cis["cf_knn"].get_xdata()) == pytest.approx([0.29, 0.35])
    assert rgb(cis["cf_knn"].get_color()) == rgb(F.FAMILY_COLOURS["collaborative"])
    assert rgb(means["rule_random"].get_color()) == rgb(F.FAMILY_COLOURS["rule"])
    # the two rule models differ by marker
    assert means["rule_popular"].get_marker() != means["rule_random"].get_marker()
    (base,) = [line for line in ax.lines if line.get_gid() == "baseline"]
    assert list(base.get_xdata()) == [0.10, 0.10]
    assert base.get_linestyle() == "--"
    assert ax.get_xlabel() == "ndcg@10"
    assert "95% bootstrap CI" in ax.get_title() and "ndcg@10" in ax.get_title()
    legend_labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend_labels[:4] == ["rule", "content", "collaborative", "hybrid"]
    assert legend_labels[4].startswith("baseline: rule_popular")


def test_headline_without_baseline_has_no_baseline_line(headline):
    fig = F.headline_figure(headline, metric="recall@20")
    assert not [a for a in fig.axes[0].lines if a.get_gid() == "baseline"]
    assert len(fig.legends[0].get_texts()) == 4


def test_headline_unknown_baseline_and_duplicate_model_are_rejected(headline):
    with pytest.raises(ValueError, match="headline_figure: baseline 'nope' is not a model"):
        F.headline_figure(headline, metric="ndcg@10", baseline="nope")
    with pytest.raises(ValueError, match="headline_figure: expected one row per model"):
        F.headline_figure(pd.concat([headline, headline]), metric="ndcg@10")


def test_headline_grows_with_rows():
    small = pd.DataFrame({"model": ["a"], "family": ["rule"], "mean": [0.1], "low": [0.0],
                          "high": [0.2]})
    names = many_models()
    big = pd.DataFrame({"model": [m for m, _ in names], "family": [f for _, f in names],
                        "mean": 0.1, "low": 0.05, "high": 0.15})
    h_small = F.headline_figure(small, metric="m").get_figheight()
    h_big = F.headline_figure(big, metric="m").get_figheight()
    assert h_big > 2 * h_small


# --------------------------------------------------------------------------- 2. lift ladder


def test_lift_ladder_panels_segments_and_significance(lift):
    fig = F.lift_ladder_figure(lift, metric="ndcg@10", alpha=0.05)
    assert len(fig.axes) == 2
    first, second = fig.axes
    assert first.get_title(loc="left") == "rule_popular -> content_knn"
    assert second.get_title(loc="left") == "content_knn -> cf_als"
    labels = [t.get_text() for t in sorted(first.get_yticklabels(),
                                           key=lambda t: -t.get_position()[1])]
    assert labels == ["all (n=100)", "1-5 (n=12)", "6-20 (n=40)"]
    dots = by_gid(first, "diff:rule_popular -> content_knn|")
    assert set(dots) == {"all", "1-5", "6-20"}
    # filled when p_holm <= alpha: face colour equals edge colour; hollow: white face
    assert rgb(dots["all"].get_markerfacecolor()) == rgb(dots["all"].get_markeredgecolor())
    assert rgb(dots["6-20"].get_markerfacecolor()) == rgb(dots["6-20"].get_markeredgecolor())
    assert rgb(dots["1-5"].get_markerfacecolor()) == (1.0, 1.0, 1.0)
    assert dots["6-20"].get_xdata()[0] == pytest.approx(0.07)
    cis = by_gid(first, "ci:rule_popular -> content_knn|")
    assert list(cis["1-5"].get_xdata()) == pytest.approx([-0.01, 0.03])
    # the NaN segment keeps its label but draws nothing
    assert set(by_gid(second, "diff:content_knn -> cf_als|")) == {"all"}
    assert [t.get_text() for t in second.get_yticklabels()] == ["all (n=100)", "1-5 (n=0)"]
    # a vertical line at zero in every panel
    for ax in fig.axes:
        assert any(list(ln.get_xdata()) == [0.0, 0.0] for ln in ax.lines)
    assert fig.get_suptitle() == (
        "Lift between the rungs (ndcg@10, 95% CI, Holm-corrected)")
    assert "ndcg@10" in second.get_xlabel()


def test_lift_ladder_alpha_moves_the_significance_cut(lift):
    fig = F.lift_ladder_figure(lift, metric="ndcg@10", alpha=0.01)
    dots = by_gid(fig.axes[0], "diff:rule_popular -> content_knn|")
    assert rgb(dots["6-20"].get_markerfacecolor()) == (1.0, 1.0, 1.0)  # 0.049 >= 0.01
    assert "Holm p <= 0.01" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_lift_ladder_marks_the_verdict_it_is_given(lift):
    # p_holm == alpha is significant under Holm's rule (<=); an explicit column wins
    at_alpha = lift.assign(p_holm=lift["p_holm"].where(lift["segment"] != "1-5", 0.05))
    dots = by_gid(F.lift_ladder_figure(at_alpha, metric="ndcg@10", alpha=0.05).axes[0],
                  "diff:rule_popular -> content_knn|")
    assert rgb(dots["1-5"].get_markerfacecolor()) != (1.0, 1.0, 1.0)
    told = lift.assign(significant=False)
    dots = by_gid(F.lift_ladder_figure(told, metric="ndcg@10", alpha=0.05).axes[0],
                  "diff:rule_popular -> content_knn|")
    assert rgb(dots["all"].get_markerfacecolor()) == (1.0, 1.0, 1.0)


def test_lift_ladder_colours_by_optional_family(lift):
    fig = F.lift_ladder_figure(lift.assign(family="content"), metric="ndcg@10")
    dot = by_gid(fig.axes[0], "diff:rule_popular -> content_knn|")["all"]
    assert rgb(dot.get_color()) == rgb(F.FAMILY_COLOURS["content"])


# --------------------------------------------------------------------------- 3. cold start


def test_cold_start_one_panel_per_family_lines_follow_x_order_and_skip_empty_points(cold):
    fig = F.cold_start_figure(cold, metric="ndcg@10", xlabel="fold-in history n")
    rule, collab = fig.axes
    assert (rule.get_title(), collab.get_title()) == ("rule (1 model)", "collaborative (1 model)")
    for ax in (rule, collab):
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "3", "10"]
        assert ax.get_xlabel() == "fold-in history n"
    assert set(by_gid(rule, "line:")) == {"rule_popular"}
    assert set(by_gid(rule, "context:")) == {"cf_als"}  # the other family, in grey
    assert rgb(by_gid(rule, "context:")["cf_als"].get_color()) == rgb("0.8")
    assert set(by_gid(collab, "line:")) == {"cf_als"}
    np.testing.assert_allclose(by_gid(rule, "line:")["rule_popular"].get_ydata(),
                               [0.10, 0.11, 0.13, 0.20])
    cf = np.asarray(by_gid(collab, "line:")["cf_als"].get_ydata(), dtype=float)
    assert np.isnan(cf[0])  # n == 0: skipped, the line breaks there
    np.testing.assert_allclose(cf[1:], [0.11, 0.13, 0.20])
    assert set(by_gid(collab, "band:")) == {"cf_als"}
    assert rgb(by_gid(collab, "line:")["cf_als"].get_color()) == rgb(
        F.FAMILY_COLOURS["collaborative"])
    assert rule.get_ylabel() == "ndcg@10"
    assert rule.get_shared_y_axes().joined(rule, collab)  # panels compare on one scale
    assert "95% bootstrap CI" in fig.get_suptitle()
    # the legend says where a model could serve nobody
    assert [t.get_text() for t in collab.get_legend().get_texts()] == ["cf_als: n/a at 0"]
    assert [t.get_text() for t in rule.get_legend().get_texts()] == ["rule_popular"]


def test_cold_start_model_serving_nobody_is_labelled_cannot_serve(cold):
    cold.loc[cold["model"] == "cf_als", ["mean", "low", "high"]] = np.nan
    cold.loc[cold["model"] == "cf_als", "n"] = 0
    collab = F.cold_start_figure(cold, metric="m", xlabel="n").axes[1]
    assert [t.get_text() for t in collab.get_legend().get_texts()] == [
        "cf_als: n/a (cannot serve)"]
    assert np.isnan(np.asarray(by_gid(collab, "line:")["cf_als"].get_ydata(), float)).all()


def test_cold_start_nan_mean_is_skipped(cold):
    cold.loc[(cold["model"] == "rule_popular") & (cold["x"] == "3"), "mean"] = np.nan
    ax = F.cold_start_figure(cold, metric="m", xlabel="bucket").axes[0]
    ys = np.asarray(by_gid(ax, "line:")["rule_popular"].get_ydata(), dtype=float)
    assert np.isnan(ys[2]) and np.isfinite(ys[[0, 1, 3]]).all()


# --------------------------------------------------------------------------- 4. trade-offs


def test_tradeoff_one_panel_per_metric_nan_skipped_and_annotated(tradeoff):
    fig = F.tradeoff_figure(tradeoff, accuracy="ndcg@10", others=["coverage@10", "novelty@10"])
    assert len(fig.axes) == 2
    cov, nov = fig.axes
    assert (cov.get_xlabel(), cov.get_ylabel()) == ("coverage@10", "ndcg@10")
    assert nov.get_xlabel() == "novelty@10"
    # hybrid_fb has no ndcg: absent everywhere; content_knn has no novelty
    assert set(by_gid(cov, "point:")) == {"rule_popular", "content_knn", "cf_als"}
    assert set(by_gid(nov, "point:")) == {"rule_popular", "cf_als"}
    assert sorted(t.get_text() for t in nov.texts) == ["cf_als", "rule_popular"]
    point = by_gid(cov, "point:")["content_knn"]
    np.testing.assert_allclose(point.get_offsets(), [[0.4, 0.2]])
    assert rgb(point.get_facecolor()[0][:3]) == rgb(F.FAMILY_COLOURS["content"])
    assert all(t.get_fontsize() >= 8 for t in cov.texts)


def test_tradeoff_needs_other_metrics(tradeoff):
    with pytest.raises(ValueError, match="tradeoff_figure: expected at least one metric"):
        F.tradeoff_figure(tradeoff, accuracy="ndcg@10", others=[])
    msg = r"tradeoff_figure: frame is missing column\(s\) \['ild@10'\]"
    with pytest.raises(ValueError, match=msg):
        F.tradeoff_figure(tradeoff, accuracy="ndcg@10", others=["ild@10"])


# --------------------------------------------------------------------------- 5. metric@k


def test_metric_at_k_grid_of_metrics_by_families(at_k):
    fig = F.metric_at_k_figure(at_k)
    assert len(fig.axes) == 6  # 2 metrics x 3 families
    assert [ax.get_title() for ax in fig.axes[:3]] == ["rule", "content", "collaborative"]
    assert [fig.axes[0].get_ylabel(), fig.axes[3].get_ylabel()] == ["recall", "ndcg"]
    families = ["rule_popular", "content_knn", "cf_als"]
    for i, ax in enumerate(fig.axes):
        own = families[i % 3]
        assert set(by_gid(ax, "line:")) == {own}
        assert set(by_gid(ax, "context:")) == set(families) - {own}
    for ax in fig.axes[3:]:
        assert ax.get_xlabel() == "k (list length)"
    line = by_gid(fig.axes[1], "line:")["content_knn"]
    assert list(line.get_xdata()) == [1, 5, 10, 20]  # sorted by k
    np.testing.assert_allclose(line.get_ydata(), [0.01, 0.05, 0.10, 0.20])
    # one k axis: its tick labels under the bottom row only
    assert [t.get_text() for t in fig.axes[3].get_xticklabels()] == ["1", "5", "10", "20"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == []
    assert fig.axes[0].get_shared_x_axes().joined(fig.axes[0], fig.axes[5])
    assert [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes[:3]] == [
        ["rule_popular"], ["content_knn"], ["cf_als"]]


# --------------------------------------------------------------------------- shared checks


def _all_builders(headline, lift, cold, tradeoff, at_k):
    return {
        "headline_figure": lambda f: F.headline_figure(f, metric="ndcg@10"),
        "lift_ladder_figure": lambda f: F.lift_ladder_figure(f, metric="ndcg@10"),
        "cold_start_figure": lambda f: F.cold_start_figure(f, metric="ndcg@10", xlabel="n"),
        "tradeoff_figure": lambda f: F.tradeoff_figure(f, accuracy="ndcg@10",
                                                       others=["coverage@10"]),
        "metric_at_k_figure": F.metric_at_k_figure,
    }, {"headline_figure": headline, "lift_ladder_figure": lift, "cold_start_figure": cold,
        "tradeoff_figure": tradeoff, "metric_at_k_figure": at_k}


def test_empty_frame_raises_naming_the_figure(headline, lift, cold, tradeoff, at_k):
    builders, frames = _all_builders(headline, lift, cold, tradeoff, at_k)
    for name, build in builders.items():
        empty = frames[name].iloc[0:0]
        with pytest.raises(ValueError, match=f"^{name}: frame is empty"):
            build(empty)


def test_missing_column_names_figure_and_columns(cold):
    with pytest.raises(ValueError, match=r"cold_start_figure: frame is missing column\(s\) "
                                         r"\['x_order'\]; found"):
        F.cold_start_figure(cold.drop(columns="x_order"), metric="m", xlabel="x")


def test_save_figure_writes_png_atomically_and_deterministically(tmp_path, headline, lift,
                                                                 cold, tradeoff, at_k):
    builders, frames = _all_builders(headline, lift, cold, tradeoff, at_k)
    for name, build in builders.items():
        fig = build(frames[name])
        path = F.save_figure(fig, tmp_path / "deep" / "er" / f"{name}.png")
        assert path == tmp_path / "deep" / "er" / f"{name}.png"
        data = path.read_bytes()
        width, height = png_size(data)
        # dpi 120 and a tight box: about the figure size in pixels
        assert 0.5 * fig.get_figwidth() * 120 < width < 1.3 * fig.get_figwidth() * 120
        assert 0.5 * fig.get_figheight() * 120 < height < 1.3 * fig.get_figheight() * 120
        assert b"Software" not in data
        if name in ("tradeoff_figure", "cold_start_figure"):  # label placement, bands
            # a second build of the same frame gives the same bytes
            again = F.save_figure(build(frames[name]), tmp_path / f"{name}_again.png")
            assert again.read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "deep" / "er").iterdir()) == sorted(
        f"{n}.png" for n in builders)  # no temporary files left behind
    image = pytest.importorskip("PIL.Image")
    path = tmp_path / "deep" / "er" / "metric_at_k_figure.png"
    with image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == png_size(path.read_bytes())


def test_save_figure_ignores_callers_rcparams(tmp_path, headline):
    first = F.save_figure(F.headline_figure(headline, metric="m"), tmp_path / "a.png")
    with matplotlib.rc_context({"font.size": 22, "lines.linewidth": 7, "axes.grid": False}):
        second = F.save_figure(F.headline_figure(headline, metric="m"), tmp_path / "b.png")
    assert first.read_bytes() == second.read_bytes()


def test_save_figure_rejects_other_suffix_and_overwrites(tmp_path, at_k):
    fig = F.metric_at_k_figure(at_k)
    with pytest.raises(ValueError, match=r"save_figure: expected a path ending in \.png"):
        F.save_figure(fig, tmp_path / "k.svg")
    target = tmp_path / "k.png"
    target.write_bytes(b"old")
    F.save_figure(fig, target)
    assert target.read_bytes()[:8] == PNG_SIGNATURE


def test_thirty_models_render_legibly(tmp_path):
    names = many_models(30)
    rng = np.random.default_rng(0)
    rows = [{"model": m, "family": f, "metric": metric, "k": k, "value": rng.uniform()}
            for m, f in names for metric in ("ndcg", "recall") for k in (1, 5, 10)]
    fig = F.metric_at_k_figure(pd.DataFrame(rows))
    assert len(fig.axes) == 10  # 2 metrics x 5 families
    legends = [ax.get_legend() for ax in fig.axes[:5]]
    assert sum(len(lg.get_texts()) for lg in legends) == 30  # each model once
    assert max(len(lg.get_texts()) for lg in legends) == 6  # no legend of 30 entries
    assert all(t.get_fontsize() >= 8 for lg in legends for t in lg.get_texts())
    for ax in fig.axes:
        assert len(ax.lines) == 30  # six in colour, the rest grey context
        assert len(by_gid(ax, "line:")) == 6
    grey = [ln for ln in fig.axes[4].lines if rgb(ln.get_color()) == rgb(F.UNKNOWN_COLOUR)]
    assert len(grey) == 6  # the "experimental" family
    cold = pd.DataFrame([{"model": m, "family": f, "x": str(n), "x_order": n, "mean": 0.1,
                          "low": 0.05, "high": 0.15, "n": 10} for m, f in names
                         for n in (0, 1, 3)])
    fig_cold = F.cold_start_figure(cold, metric="ndcg@10", xlabel="n")
    assert len([ax for ax in fig_cold.axes if ax.get_visible()]) == 5
    assert max(len(ax.get_legend().get_texts()) for ax in fig_cold.axes
               if ax.get_visible()) == 6
    scatter = pd.DataFrame({"model": [m for m, _ in names], "family": [f for _, f in names],
                            "ndcg@10": rng.uniform(size=30), "coverage@10": rng.uniform(size=30)})
    fig2 = F.tradeoff_figure(scatter, accuracy="ndcg@10", others=["coverage@10"])
    assert len(fig2.axes[0].texts) == 30
    data = F.save_figure(fig2, tmp_path / "t.png").read_bytes()
    assert png_size(data)[1] > 500


def _texts_outside_canvas(fig) -> list[str]:
    """What of a laid-out figure leaves its canvas: each visible axes with everything drawn
    around it (tick labels, axis labels, title, legend), each text placed in an axes (also
    those kept out of the layout), and each figure-level text and legend."""
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    boxes = []
    for ax in fig.axes:
        if ax.get_visible():
            boxes.append((f"axes {ax.get_title() or ax.get_title(loc='left')!r}",
                          ax.get_tightbbox(renderer)))
            boxes += [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts]
    boxes += [(t.get_text(), t.get_window_extent(renderer)) for t in fig.texts
              if t.get_visible() and t.get_text().strip()]
    boxes += [("legend", lg.get_window_extent(renderer)) for lg in fig.legends]
    return [what for what, box in boxes
            if box.x0 < canvas.x0 - 1 or box.y0 < canvas.y0 - 1 or box.x1 > canvas.x1 + 1
            or box.y1 > canvas.y1 + 1]


def _overlapping_axis_texts(fig) -> list[tuple[str, str]]:
    """Pairs of axis labels and titles (of different visible axes) whose extents overlap."""
    renderer = fig.canvas.get_renderer()
    texts = [(i, t) for i, ax in enumerate(fig.axes) if ax.get_visible()
             for t in (ax.xaxis.label, ax.yaxis.label, ax.title, ax._left_title)
             if t.get_visible() and t.get_text().strip()]
    boxes = [(i, t.get_text(), t.get_window_extent(renderer)) for i, t in texts]
    return [(a, b) for n, (i, a, p) in enumerate(boxes) for j, b, q in boxes[n + 1:]
            if i != j and p.overlaps(q)]


def test_every_text_stays_inside_the_canvas_with_many_long_model_names(tmp_path):
    """Titles, legends, tick and point labels of every figure, with 30 long-named models
    in five families, are inside the saved canvas (checked after the saving layout), and no
    panel's axis label or title runs into another panel's."""
    names = many_models(30)
    rng = np.random.default_rng(1)
    models = pd.DataFrame({"model": [m for m, _ in names], "family": [f for _, f in names]})
    head = models.assign(mean=rng.uniform(0.1, 0.4, 30)).assign(
        low=lambda d: d["mean"] - 0.02, high=lambda d: d["mean"] + 0.02)
    lift = pd.DataFrame([{"step": f"{a} -> {b}: {m} -> {n}", "segment": seg,
                          "diff": 0.01, "low": -0.01, "high": 0.03, "p_holm": 0.2, "n": 40,
                          "family": b}
                         for (a, m), (b, n) in [(("rule", names[0][0]),
                                                 ("collaborative", names[2][0]))]
                         for seg in ("all", "1-5", "newcomers")])
    cold = pd.DataFrame([{"model": m, "family": f, "x": str(n), "x_order": n, "mean": 0.1,
                          "low": 0.05, "high": 0.15, "n": 10} for m, f in names
                         for n in (0, 1, 3)])
    trade = models.assign(**{"ndcg@10": rng.uniform(size=30),
                             "coverage@10": rng.uniform(size=30),
                             "novelty@10": rng.uniform(1, 8, size=30),
                             "arp@10": rng.uniform(0, 150, size=30)})
    at_k = pd.DataFrame([{"model": m, "family": f, "metric": metric, "k": k,
                          "value": rng.uniform()} for m, f in names
                         for metric in ("precision", "recall", "ndcg") for k in (1, 5, 10)])
    figures = {
        "headline": F.headline_figure(head, metric="ndcg@10", baseline=names[0][0]),
        "lift": F.lift_ladder_figure(lift, metric="ndcg@10",
                                     ci="paired t CI at each row's Holm level"),
        "cold": F.cold_start_figure(cold, metric="ndcg@10", xlabel="fold-in history given "
                                    "to the model (interactions), held-out users"),
        "cold_2x2": F.cold_start_figure(cold[cold["family"] != "experimental"],
                                        metric="ndcg@10", xlabel="training history of the "
                                        "evaluated user (interactions)"),
        "trade": F.tradeoff_figure(trade, accuracy="ndcg@10",
                                   others=["coverage@10", "novelty@10", "arp@10"]),
        "at_k": F.metric_at_k_figure(at_k),
    }
    for name, fig in figures.items():
        F.save_figure(fig, tmp_path / f"{name}.png")  # lays the figure out as saved
        assert _texts_outside_canvas(fig) == [], name
        assert _overlapping_axis_texts(fig) == [], name
    # the check itself sees a text that leaves the canvas
    figures["headline"].text(0.99, 0.5, "sticks out of the right edge")
    assert _texts_outside_canvas(figures["headline"]) == ["sticks out of the right edge"]
