"""User and item attributes that segment and business rules can test.

User attributes (:func:`user_attributes`), one row per user code of the training
vocabulary. Demographics come from the dataset's user table when it has them; the
behavioural ones are derived from the *training* interactions only, vectorised
(bincounts and one sparse product), never with a loop over users.

==================  ========  ==============================================================
attribute           kind      definition (missing when ...)
==================  ========  ==============================================================
age                 number    years, from ``user_features.age`` (no demographics)
age_band            category  ``<18 18-24 25-34 35-44 45-54 55+`` from ``age``
gender              category  ``user_features.gender`` as given (``M``/``F`` in MovieLens)
occupation          category  ``user_features.occupation`` as given
activity            number    training interactions of the user (0 for no history)
activity_band       category  ``none`` (0), ``light`` (1 to t1-1), ``medium`` (t1 to t2-1),
                              ``heavy`` (t2 or more); ``(t1, t2) = activity_thresholds``,
                              default ``(20, 100)``
favourite_genre     category  the genre of most of the user's training interactions (an
                              item counts once for each of its genres; ties go to the
                              alphabetically first genre); missing without history or genres
recency_days        number    days from the user's last training interaction to the cut (the
                              latest training timestamp); missing without history/timestamps
mean_rating         number    mean training rating; missing without history or ratings
==================  ========  ==============================================================

Item attributes (:func:`item_attributes`): ``item_id`` (category over the item
vocabulary), ``genre`` (set: an item may have several), ``year`` (number, missing when
unknown) and ``popularity`` (number of training interactions).

:func:`user_table` / :func:`item_table` wrap these as an
:class:`~bench.models.rule.predicates.AttributeTable` for the predicate language. The
user table carries one extra last row, :data:`UNKNOWN_USER_ROW`, for user codes ``-1``
(users outside the vocabulary): no demographics, no history.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.data.features import ItemFeatures
from bench.data.interactions import Interactions
from bench.errors import ConfigError
from bench.models.rule.predicates import AttributeTable

AGE_BANDS = ("<18", "18-24", "25-34", "35-44", "45-54", "55+")
_AGE_EDGES = (18, 25, 35, 45, 55)
ACTIVITY_BANDS = ("none", "light", "medium", "heavy")
DEFAULT_ACTIVITY_THRESHOLDS = (20, 100)
DEMOGRAPHICS = ("age", "age_band", "gender", "occupation")
USER_NUMBERS = ("age", "activity", "recency_days", "mean_rating")
USER_CATEGORIES = ("age_band", "gender", "occupation", "activity_band", "favourite_genre")
SECONDS_PER_DAY = 86_400.0
UNKNOWN_USER_ROW = -1
"""Index of the unknown-user row in a :func:`user_table` (its last row)."""


def check_thresholds(owner: str, thresholds) -> tuple[int, int]:
    """Validate ``activity_thresholds``: two integers ``1 <= t1 < t2``."""
    ok = (
        isinstance(thresholds, list | tuple)
        and len(thresholds) == 2
        and all(isinstance(t, int) and not isinstance(t, bool) for t in thresholds)
        and 1 <= thresholds[0] < thresholds[1]
    )
    if not ok:
        raise ConfigError(
            f"{owner} activity_thresholds: expected two integers [t1, t2] with "
            f"1 <= t1 < t2 (light below t1, heavy from t2), got {thresholds!r}"
        )
    return int(thresholds[0]), int(thresholds[1])


def age_band(age: np.ndarray) -> np.ndarray:
    """Age in years -> band label (object array, ``None`` where age is NaN)."""
    age = np.asarray(age, dtype=np.float64)
    idx = np.searchsorted(np.asarray(_AGE_EDGES, dtype=np.float64), age, side="right")
    out = np.asarray(AGE_BANDS, dtype=object)[np.minimum(idx, len(AGE_BANDS) - 1)]
    out[np.isnan(age)] = None
    return out


def activity_band(activity: np.ndarray, thresholds: Sequence[int]) -> np.ndarray:
    """Interaction counts -> ``none``/``light``/``medium``/``heavy``."""
    t1, t2 = thresholds
    idx = np.where(activity <= 0, 0, np.where(activity < t1, 1, np.where(activity < t2, 2, 3)))
    return np.asarray(ACTIVITY_BANDS, dtype=object)[idx]


def user_attributes(
    train: Interactions,
    item_features: ItemFeatures | None = None,
    user_features: pd.DataFrame | None = None,
    *,
    activity_thresholds: Sequence[int] = DEFAULT_ACTIVITY_THRESHOLDS,
) -> pd.DataFrame:
    """One row per user code (``0 .. n_users - 1``) with the attributes in the module table.

    Columns a source cannot provide are absent: the demographics without
    ``user_features`` (or without that column), ``favourite_genre`` without genres,
    ``recency_days`` without timestamps, ``mean_rating`` without ratings.
    """
    n = train.n_users
    out: dict[str, np.ndarray] = {}
    if user_features is not None:
        demo = user_features.reindex(train.user_ids)
        if "age" in demo.columns:
            age = pd.to_numeric(demo["age"], errors="coerce").to_numpy(dtype=np.float64)
            out["age"] = age
            out["age_band"] = age_band(age)
        for col in ("gender", "occupation"):
            if col in demo.columns:
                vals = demo[col].to_numpy(dtype=object)
                out[col] = np.where(pd.isna(vals), None, vals).astype(object)
    activity = np.bincount(train.users, minlength=n)
    out["activity"] = activity.astype(np.float64)
    out["activity_band"] = activity_band(activity, activity_thresholds)
    if item_features is not None and len(item_features.genre_names):
        genres = item_features.align(train.item_ids).genres
        per_user = (train.to_csr() @ genres).toarray()  # users x genres, interaction counts
        best = per_user.argmax(axis=1)  # first maximum = alphabetically first genre
        fav = np.asarray(item_features.genre_names, dtype=object)[best]
        fav[per_user.max(axis=1) <= 0] = None
        out["favourite_genre"] = fav
    if train.has_timestamps and len(train):
        cut = float(train.timestamps.max())
        last = np.full(n, -np.inf)
        np.maximum.at(last, train.users, train.timestamps.astype(np.float64))
        recency = (cut - last) / SECONDS_PER_DAY
        recency[activity == 0] = np.nan
        out["recency_days"] = recency
    if train.has_ratings:
        total = np.bincount(train.users, weights=train.ratings, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["mean_rating"] = np.where(activity > 0, total / np.maximum(activity, 1), np.nan)
    return pd.DataFrame(out, index=pd.RangeIndex(n, name="user_code"))


def _user_unavailable(frame: pd.DataFrame) -> dict[str, str]:
    reasons = {
        "favourite_genre": "the item features have no genres",
        "recency_days": "the interactions have no timestamps",
        "mean_rating": "the interactions have no ratings",
    }
    missing = {}
    for name in DEMOGRAPHICS:
        if name not in frame.columns:
            missing[name] = (
                "this dataset has no user demographics (user_features); choose a dataset "
                "that has them (e.g. ml_100k) or segment on behaviour (activity, "
                "activity_band, favourite_genre, recency_days, mean_rating)"
            )
    for name, why in reasons.items():
        if name not in frame.columns:
            missing[name] = why
    return missing


def user_table(frame: pd.DataFrame, extra: dict[str, tuple] | None = None) -> AttributeTable:
    """An :class:`AttributeTable` over ``frame``'s rows plus the unknown-user last row.

    ``extra``: further categories, ``name -> (values per row incl. the last, domain)``
    (e.g. the ``segment`` of a wrapped segment model).
    """
    n = len(frame) + 1
    table = AttributeTable(n=n, unavailable=_user_unavailable(frame))
    for name in frame.columns:
        col = frame[name].to_numpy()
        if name in USER_NUMBERS:
            pad = 0.0 if name == "activity" else np.nan
            table.numbers[name] = np.append(col.astype(np.float64), pad)
        else:
            pad = "none" if name == "activity_band" else None
            table.categories[name] = np.append(col.astype(object), np.array([pad], dtype=object))
    table.domains["age_band"] = AGE_BANDS
    table.domains["activity_band"] = ACTIVITY_BANDS
    for name in ("gender", "occupation"):
        if name in table.categories:
            vals = pd.unique(pd.Series(table.categories[name]).dropna())
            table.domains[name] = tuple(sorted(vals, key=str))
    for name, (values, domain) in (extra or {}).items():
        table.categories[name] = np.asarray(values, dtype=object)
        table.domains[name] = tuple(domain)
    return table


def set_genre_domain(table: AttributeTable, item_features: ItemFeatures | None) -> None:
    """Declare the dataset's genre names as the domain of ``favourite_genre``."""
    if item_features is not None and "favourite_genre" in table.categories:
        table.domains["favourite_genre"] = tuple(item_features.genre_names)


def item_attributes(
    item_ids: pd.Index,
    item_features: ItemFeatures | None,
    item_counts: np.ndarray,
    *,
    known_ids: pd.Index | None = None,
) -> AttributeTable:
    """Item attributes (``item_id``, ``genre``, ``year``, ``popularity``) as a table.

    ``known_ids``: further ids a rule may name without error (the data's vocabulary: an
    item a model cannot score in this fold is valid, it just matches no row).
    """
    n = len(item_ids)
    table = AttributeTable(n=n)
    table.categories["item_id"] = np.asarray(item_ids, dtype=object)
    table.domains["item_id"] = tuple(_union(item_ids, known_ids))
    table.hints["item_id"] = (
        "item ids must be in the dataset's item vocabulary (set ignore_unknown_items: true "
        "to skip unknown ones)"
    )
    table.numbers["popularity"] = np.asarray(item_counts, dtype=np.float64)
    if item_features is None:
        why = "the dataset has no item features"
        table.unavailable.update({"genre": why, "year": why})
        return table
    feats = item_features.align(item_ids)
    if len(feats.genre_names):
        table.sets["genre"] = (sp.csr_matrix(feats.genres), tuple(feats.genre_names))
    else:
        table.unavailable["genre"] = "the item features have no genres"
    table.numbers["year"] = np.asarray(feats.years, dtype=np.float64)
    return table


def _union(ids: pd.Index, more: pd.Index | None) -> pd.Index:
    """``ids`` followed by the ids of ``more`` not in it."""
    if more is None:
        return ids
    return ids.append(more[~more.isin(ids)])


def user_rows(users: np.ndarray, n_users: int) -> np.ndarray:
    """Row of each user code in a :func:`user_table` (code ``-1`` -> the last row)."""
    users = np.asarray(users, dtype=np.int64)
    return np.where(users >= 0, users, n_users)


__all__ = [
    "ACTIVITY_BANDS",
    "AGE_BANDS",
    "DEFAULT_ACTIVITY_THRESHOLDS",
    "activity_band",
    "age_band",
    "item_attributes",
    "user_attributes",
    "user_rows",
    "user_table",
]
