"""Content-based user profiles: a weighted sum of history item vectors, cosine-scored."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from bench.models.content.common import ContentModel


class ContentProfile(ContentModel):
    """Score items by the cosine between a user's content profile and each item's vector.

    The profile of user ``u`` is ``p_u = sum_i w_ui v_i`` over the items ``i`` in the user's
    history (training rows plus any fold-in rows), where ``v_i`` are the item vectors of
    :func:`~bench.models.content.vectors.build_item_vectors` and the weights ``w_ui`` follow
    ``weighting`` (see :meth:`ContentModel.history_weights`): ``centred`` (rating minus
    the user's mean, so disliked items push the profile away), ``rating`` or ``binary``.
    The score of item ``j`` is ``cos(p_u, v_j) = p_u . v_j / (|p_u| |v_j|)``.

    Assumes a user's taste is stable and expressed by the item attributes (genres, title
    words, era, tags) of what they rated, and that attributes alone say which new items
    match it. It scores items never seen in training, provided they have features, so it
    can rank new items on an item cold-start split; it scores users absent from training
    when fold-in history is given. It cannot score (NaN): items without any feature;
    users with an empty history; users whose weighted profile is the zero vector (e.g.
    centred weights that cancel out exactly). All-equal ratings under ``centred`` weights
    are read as binary weights, a documented part of the method, not a fallback model.

    Args:
        weights: weight of each feature block (``genres``, ``title``, ``year``, ``tags``);
            ``None`` = ``{genres: 1.0, title: 0.5, year: 0.5, tags: 1.0}``.
        min_df: minimum number of items a title word or tag must occur in to be a feature.
        year_bin: width of the release-year bins, in years.
        weighting: ``centred``, ``rating`` or ``binary`` history weights.
    """

    def __init__(
        self,
        *,
        weights: Mapping[str, float] | None = None,
        min_df: int = 5,
        year_bin: int = 10,
        weighting: str = "centred",
    ):
        self.weights = weights
        self.min_df = min_df
        self.year_bin = year_bin
        self.weighting = weighting

    def _fit(self, train, item_features, user_features) -> None:
        self._fit_content(train, item_features)

    def user_profiles(self, users: np.ndarray, history: sp.csr_matrix) -> sp.csr_matrix:
        """Users x features CSR of the (unnormalised) profiles of a batch."""
        return sp.csr_matrix(self.history_weights(users, history) @ self.item_matrix_)

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        profiles = self.user_profiles(users, history)
        norms = np.sqrt(np.asarray(profiles.multiply(profiles).sum(axis=1)).ravel())
        ok = norms > 1e-12
        scores = np.full((len(users), self.item_matrix_.shape[0]), np.nan, dtype=np.float32)
        if ok.any():
            p = (sp.diags((1.0 / norms[ok]).astype(np.float32)) @ profiles[ok]).toarray()
            scores[ok] = (self.item_matrix_ @ p.T).T  # sparse @ dense: batch x features dense
        scores[:, ~self.item_mask_] = np.nan
        return scores
