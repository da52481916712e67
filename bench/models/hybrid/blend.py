"""Weighted blend of several models' per-user-normalised scores."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bench import validate
from bench.errors import ConfigError
from bench.models.base import Recommender, mask_history
from bench.models.hybrid.base import Composite
from bench.models.hybrid.normalise import METHODS, normalise

MISSING = ("renormalise", "nan")

#: about this many cells are blended at a time (a few rows of the user block): the float64
#: working arrays then stay in the CPU cache instead of streaming through memory
BLEND_CELLS = 1 << 16


class WeightedBlend(Composite):
    """``score = sum_c w_c * norm_c(s_c)`` over the components.

    Assumes each component's scores order items sensibly per user, but that their
    scales differ, so each is normalised per user (``minmax``, ``zscore`` or ``rank``)
    over the items the user can be shown (history items excluded) before weighting.

    Where a component cannot score an item (NaN), ``missing`` decides:
    ``renormalise`` blends the components that can, with their weights rescaled to sum
    to the full weight (so an item only one model can score is not pushed down just for
    that); ``nan`` makes the item unscorable unless every component scores it.
    An item no component can score is NaN.

    ``source`` of a recommendation is the component with the largest weighted
    contribution to its blended score.

    Args:
        components: label -> model.
        weights: label -> non-negative weight; ``None`` = equal weights.
        normalisation: ``minmax`` | ``zscore`` | ``rank``.
        missing: ``renormalise`` | ``nan``.
    """

    def __init__(
        self,
        *,
        components: Mapping[str, Recommender],
        weights: Mapping[str, float] | None = None,
        normalisation: str = "minmax",
        missing: str = "renormalise",
    ):
        self.components = components
        self.weights = weights
        self.normalisation = normalisation
        self.missing = missing

    def _fit(self, train, item_features, user_features) -> None:
        self._check_components(minimum=2)
        if self.normalisation not in METHODS:
            raise ConfigError(
                f"WeightedBlend normalisation: expected one of {list(METHODS)}, "
                f"got {self.normalisation!r}"
            )
        if self.missing not in MISSING:
            raise ConfigError(
                f"WeightedBlend missing: expected one of {list(MISSING)}, got {self.missing!r}"
            )
        if self.weights and not isinstance(self.weights, Mapping):
            raise ConfigError(
                f"WeightedBlend weights: expected a mapping of component to weight or null, "
                f"got {self.weights!r}"
            )
        weights = dict(self.weights) if self.weights else {k: 1.0 for k in self.components}
        unknown = sorted(set(weights) - set(self.components))
        absent = sorted(set(self.components) - set(weights))
        if unknown or absent:
            raise ConfigError(
                f"WeightedBlend weights: expected one weight per component "
                f"{sorted(self.components)}; unknown {unknown}, missing {absent}"
            )
        bad = {k: w for k, w in weights.items()
               if not validate.is_number(w) or not np.isfinite(float(w)) or float(w) < 0}
        if bad or sum(float(w) for w in weights.values()) <= 0:
            raise ConfigError(
                f"WeightedBlend weights: expected non-negative numbers with a positive sum, "
                f"got {weights}"
            )
        self.weights_ = {k: float(weights[k]) for k in self.components}
        self._fit_children(train, item_features, user_features)

    def _combine(self, users, history):
        children = []
        for key, w in self.weights_.items():
            scores, codes = self.child_scores(key, users, history)
            mask_history(scores, history)
            children.append((scores, codes, w))
        n_rows, n_items = children[0][0].shape
        out = np.empty((n_rows, n_items), dtype=np.float32)
        src = np.empty((n_rows, n_items), dtype=np.int16)
        # a few rows at a time, so the float64 working arrays stay in cache: every row is
        # normalised and blended on its own, so the rows come out the same either way
        step = max(1, BLEND_CELLS // max(1, n_items))
        for r0 in range(0, n_rows, step):
            rows = slice(r0, r0 + step)
            out[rows], src[rows] = self._blend_rows(
                [(scores[rows], codes[rows], w) for scores, codes, w in children])
        return out, src

    def _blend_rows(self, children):
        total_w = sum(self.weights_.values())
        acc = wsum = best = best_src = None
        for scores, codes, w in children:
            part = np.multiply(normalise(scores, self.normalisation), w, dtype=np.float64)
            missing = np.isnan(part)
            ok = ~missing
            if acc is None:
                acc = np.zeros(part.shape, dtype=np.float64)
                wsum = np.zeros(part.shape, dtype=np.float64)
                n_ok = np.zeros(part.shape, dtype=np.int32)
                best = np.full(part.shape, -np.inf)
                best_src = np.zeros(part.shape, dtype=np.int16)
            better = part > best  # False where the part is NaN
            np.copyto(best_src, codes, where=better)
            np.fmax(best, part, out=best)  # the larger (NaN never wins); only compared
            n_ok += ok
            # where the component cannot score, add 0: acc is never -0.0, so that leaves
            # it as it is
            np.copyto(part, 0.0, where=missing)
            acc += part
            np.add(wsum, w, out=wsum, where=ok)
        with np.errstate(all="ignore"):
            if self.missing == "renormalise":
                out = np.where(wsum > 0, acc * (total_w / np.where(wsum > 0, wsum, 1.0)), np.nan)
                out[n_ok == 0] = np.nan
            else:
                out = np.where(n_ok == len(self.weights_), acc, np.nan)
        return out.astype(np.float32), best_src
