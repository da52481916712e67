"""Segment targeting: users fall into declared segments, each segment is shown a rule.

The first rung above "the same list for everyone": a marketing-style ruleset, written
entirely in YAML. Segments are an ordered list of ``{name, when, show, fallback}``;
``when`` is a user predicate (:mod:`bench.models.rule.predicates`) over the user
attributes of :mod:`bench.models.rule.attributes`, the **first** segment whose
predicate holds wins, and a user matching none is in the ``default`` segment.

``show`` says what a segment sees (items not shown score NaN):

``popular``
    shorthand for ``{rank_by: segment}``.
``{rank_by: segment | global, window_days: N, popular_in: favourite_genre, filter: ...}``
    items ranked by their training interactions among the segment's members
    (``segment``, ties broken by global popularity) or among everybody (``global``);
    ``window_days`` counts only the interactions of the last ``N`` days before the cut
    (the latest training timestamp; needs timestamps; ``null`` = all time);
    ``popular_in: favourite_genre`` keeps only items of the user's favourite genre;
    ``filter`` keeps only items matching an item predicate (``{genre: Comedy}``,
    ``{year: {gte: 1990}}``, ``{popularity: {gte: 20}}``). All keys are optional.

With ``rank_by: segment`` an item no member of the segment interacted with has no
evidence and scores NaN; a segment with no training interactions at all therefore shows
nothing. ``fallback: global`` (per segment, explicit) shows such users the global
popularity list instead — any user whose rule shows no item at all (empty segment, no
favourite genre, a filter matching nothing the segment saw). Without it they get an
empty list: a segment rule never falls back silently.

Segments are assigned once, at fit, from the training data; fold-in history at
recommend time only masks seen items. A user with demographics (user features) but no
training row is placed by them, with no history (``activity_band: none``); a user
outside both has no demographics either.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.errors import ConfigError
from bench.models.base import Recommender
from bench.models.rule.attributes import (
    DEFAULT_ACTIVITY_THRESHOLDS,
    SECONDS_PER_DAY,
    check_thresholds,
    item_attributes,
    set_genre_domain,
    user_attributes,
    user_rows,
    user_table,
)
from bench.models.rule.predicates import compile_predicate

DEFAULT_SEGMENT = "default"
SEGMENT_KEYS = ("name", "when", "show", "fallback")
SHOW_KEYS = ("rank_by", "window_days", "popular_in", "filter")
RANK_BY = ("segment", "global")
POPULAR_IN = ("favourite_genre",)
FALLBACKS = (None, "global")


class SegmentRecommender(Recommender):
    """Declarative segment targeting: each user is shown their segment's rule.

    Assumes users who share attributes (demographics, activity, favourite genre, ...)
    want what their segment consumed. Cannot score items the rule does not show (NaN),
    items without evidence in the segment (``rank_by: segment``), nor — unless the
    segment declares ``fallback: global`` — users whose rule shows nothing. Predicates
    over attributes the dataset lacks (demographics on ``movielens_small``) are a
    ``ConfigError`` at fit.

    Args:
        segments: ordered list of ``{name, when, show, fallback}`` mappings; ``name`` is
            unique and not ``default``; ``when`` a user predicate (``{}`` = everyone);
            ``show`` as in the module docs; ``fallback``: ``null`` or ``global``.
        default: ``{show, fallback}`` for users matching no segment.
        activity_thresholds: ``[t1, t2]`` bounds of the ``activity_band`` attribute
            (light below t1, heavy from t2).
    """

    family = "rule"
    #: demographics are side information: a user with features but no training row is
    #: placed in a segment by them (``activity_band: none``)
    extra_vocabulary = frozenset({"user_features"})

    def __init__(
        self,
        *,
        segments: list,
        default: Mapping,
        activity_thresholds: list | tuple = DEFAULT_ACTIVITY_THRESHOLDS,
    ):
        self.segments = segments
        self.default = default
        self.activity_thresholds = activity_thresholds

    #: its fit reads the data's item vocabulary (``data_item_ids_``), beyond its own
    shares_fits = False

    # ------------------------------------------------------------------ fit
    def _fit(self, train, item_features, user_features) -> None:
        name = type(self).__name__
        thresholds = check_thresholds(name, self.activity_thresholds)
        specs = _parse_segments(name, self.segments, self.default)
        frame = user_attributes(
            train, item_features, user_features, activity_thresholds=thresholds
        )
        users = user_table(frame)
        set_genre_domain(users, item_features)
        items = item_attributes(train.item_ids, item_features, self.item_counts_,
                                known_ids=self.data_item_ids_)
        n_users, n_items = train.n_users, train.n_items

        # Segment of every user row (training vocabulary + the unknown-user row).
        seg = np.full(users.n, len(specs) - 1, dtype=np.int64)
        free = np.ones(users.n, dtype=bool)
        for s, spec in enumerate(specs[:-1]):
            pred = compile_predicate(spec["when"], users, f"{name} segments[{s}].when")
            hit = free & pred.mask(users)
            seg[hit] = s
            free &= ~hit
        self.segment_names_ = tuple(spec["name"] for spec in specs)
        self.segment_of_ = seg

        # Interaction counts per (segment, item): one sparse product.
        onehot = sp.csr_matrix(
            (np.ones(n_users, dtype=np.float32), (np.arange(n_users), seg[:n_users])),
            shape=(n_users, len(specs)),
        )
        windows = {}  # window_days -> (segment x item counts, global item counts)
        for spec in specs:
            w = spec["show"]["window_days"]
            if w not in windows:
                seen = self.seen_ if w is None else _window_matrix(name, train, w)
                counts = np.asarray((onehot.T @ seen).todense(), dtype=np.float64)
                windows[w] = (counts, np.asarray(seen.sum(axis=0), dtype=np.float64).ravel())
        glob_all = self.item_counts_.astype(np.float64)
        self.global_scores_ = np.where(glob_all > 0, glob_all, np.nan).astype(np.float32)

        rule = np.full((len(specs), n_items), np.nan, dtype=np.float32)
        uses_fav = np.zeros(len(specs), dtype=bool)
        fallback = np.zeros(len(specs), dtype=bool)
        for s, spec in enumerate(specs):
            where = f"{name} {spec['where']}.show"
            show = spec["show"]
            seg_counts, glob = windows[show["window_days"]]
            tie = glob / (glob.max() + 1.0)  # < 1: only breaks ties between segment counts
            if show["rank_by"] == "segment":
                base = np.where(seg_counts[s] > 0, seg_counts[s] + tie, np.nan)
            else:
                base = np.where(glob > 0, glob, np.nan)
            if show["filter"] is not None:
                pred = compile_predicate(show["filter"], items, f"{where}.filter")
                base = np.where(pred.mask(items), base, np.nan)
            if show["popular_in"] is not None:
                if "favourite_genre" not in users.categories:
                    raise ConfigError(
                        f"{where}.popular_in: 'favourite_genre' is not available: "
                        f"{users.unavailable.get('favourite_genre', 'no genres')}"
                    )
                uses_fav[s] = True
            rule[s] = base
            fallback[s] = spec["fallback"] == "global"
        self.rule_scores_ = rule
        self.uses_favourite_ = uses_fav
        self.fallback_ = fallback

        if uses_fav.any():
            genres = item_features.genres.tocsc().T.tocsr()  # genres x items
            fav = users.categories["favourite_genre"]
            self.favourite_code_ = pd.Index(item_features.genre_names).get_indexer(fav)
            # one extra all-False row for "no favourite genre"
            self.genre_items_ = np.vstack(
                [genres.toarray() > 0, np.zeros((1, n_items), dtype=bool)]
            )
        self.segment_sizes_ = dict(
            zip(self.segment_names_, np.bincount(seg[:n_users][self.user_counts_ > 0],
                                                 minlength=len(specs)).tolist(), strict=True)
        )
        all_time = np.asarray((onehot.T @ self.seen_).sum(axis=1)).ravel()
        self.segment_interactions_ = dict(
            zip(self.segment_names_, all_time.astype(int).tolist(), strict=True)
        )

    # ------------------------------------------------------------------ score
    def _score_sources(self, users: np.ndarray, history: sp.csr_matrix):
        rows = user_rows(users, len(self.user_index_))
        seg = self.segment_of_[rows]
        scores = self.rule_scores_[seg]  # fancy indexing copies
        fav_rows = self.uses_favourite_[seg]
        if fav_rows.any():
            code = self.favourite_code_[rows[fav_rows]]
            allowed = self.genre_items_[code]  # -1 picks the all-False row
            scores[fav_rows] = np.where(allowed, scores[fav_rows], np.nan)
        n_seg = len(self.segment_names_)
        sources = seg.astype(np.int16)
        fb = self.fallback_[seg]
        if fb.any():
            empty = fb & np.isnan(scores).all(axis=1)
            scores[empty] = self.global_scores_
            sources[empty] += n_seg
        return scores, np.broadcast_to(sources[:, None], scores.shape)

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return self._score_sources(users, history)[0]

    def source_names(self) -> tuple[str, ...]:
        names = getattr(self, "segment_names_", None)
        if names is None:
            return (type(self).__name__,)
        return tuple(f"segment:{n}" for n in names) + tuple(
            f"segment:{n}:fallback" for n in names
        )

    def _user_segments(self, users: np.ndarray) -> np.ndarray:
        """Segment label of each user code (``-1``, an unknown user, gets its segment too)."""
        self._check_fitted()
        rows = user_rows(users, len(self.user_index_))
        return np.asarray(self.segment_names_, dtype=object)[self.segment_of_[rows]]


# ---------------------------------------------------------------------- parsing
def _parse_segments(owner: str, segments, default) -> list[dict]:
    if segments is None:
        segments = []
    if not isinstance(segments, list | tuple):
        raise ConfigError(
            f"{owner} segments: expected a list of {{name, when, show}} mappings, got "
            f"{segments!r}"
        )
    specs, seen = [], set()
    for i, seg in enumerate(segments):
        where = f"segments[{i}]"
        if not isinstance(seg, Mapping):
            raise ConfigError(f"{owner} {where}: expected a mapping with keys "
                              f"{list(SEGMENT_KEYS)}, got {seg!r}")
        unknown = sorted(set(seg) - set(SEGMENT_KEYS))
        if unknown:
            raise ConfigError(
                f"{owner} {where}: unknown key(s) {unknown}; expected some of {list(SEGMENT_KEYS)}"
            )
        name = seg.get("name")
        if not isinstance(name, str) or not name or name == DEFAULT_SEGMENT or name in seen:
            raise ConfigError(
                f"{owner} {where}.name: expected a unique non-empty name other than "
                f"{DEFAULT_SEGMENT!r}, got {name!r}"
            )
        seen.add(name)
        if "show" not in seg:
            raise ConfigError(f"{owner} {where}: missing 'show' (what the segment is shown)")
        specs.append({
            "name": name,
            "where": where,
            "when": seg.get("when") or {},
            "show": _parse_show(owner, f"{where}.show", seg["show"]),
            "fallback": _parse_fallback(owner, f"{where}.fallback", seg.get("fallback")),
        })
    if not isinstance(default, Mapping) or "show" not in default:
        raise ConfigError(
            f"{owner} default: expected a mapping {{show: ..., fallback: ...}} for users in no "
            f"segment, got {default!r}"
        )
    unknown = sorted(set(default) - {"show", "fallback"})
    if unknown:
        raise ConfigError(
            f"{owner} default: unknown key(s) {unknown}; expected some of ['fallback', 'show']"
        )
    specs.append({
        "name": DEFAULT_SEGMENT,
        "where": "default",
        "when": {},
        "show": _parse_show(owner, "default.show", default["show"]),
        "fallback": _parse_fallback(owner, "default.fallback", default.get("fallback")),
    })
    return specs


def _parse_show(owner: str, where: str, show) -> dict:
    if show == "popular":
        show = {}
    if not isinstance(show, Mapping):
        raise ConfigError(
            f"{owner} {where}: expected 'popular' or a mapping with keys {list(SHOW_KEYS)}, "
            f"got {show!r}"
        )
    unknown = sorted(set(show) - set(SHOW_KEYS))
    if unknown:
        raise ConfigError(
            f"{owner} {where}: unknown key(s) {unknown}; expected some of {list(SHOW_KEYS)}"
        )
    rank_by = show.get("rank_by", "segment")
    if rank_by not in RANK_BY:
        raise ConfigError(f"{owner} {where}.rank_by: expected one of {list(RANK_BY)}, "
                          f"got {rank_by!r}")
    popular_in = show.get("popular_in")
    if popular_in is not None and popular_in not in POPULAR_IN:
        raise ConfigError(
            f"{owner} {where}.popular_in: expected one of {list(POPULAR_IN)}, got {popular_in!r}"
        )
    window = show.get("window_days")
    if window is not None and (
        isinstance(window, bool) or not isinstance(window, int | float) or not window > 0
    ):
        raise ConfigError(
            f"{owner} {where}.window_days: expected a number of days > 0 or null, got {window!r}"
        )
    return {"rank_by": rank_by, "window_days": window, "popular_in": popular_in,
            "filter": show.get("filter")}


def _window_matrix(owner: str, train, window_days: float) -> sp.csr_matrix:
    """Users x items 0/1 of the training interactions in the last ``window_days`` days."""
    if not train.has_timestamps:
        raise ConfigError(f"{owner}: show.window_days needs timestamps; {train.source} has none")
    ts = train.timestamps
    keep = ts >= ts.max() - float(window_days) * SECONDS_PER_DAY
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (train.users[keep], train.items[keep])),
        shape=(train.n_users, train.n_items),
    )


def _parse_fallback(owner: str, where: str, value):
    if value not in FALLBACKS:
        raise ConfigError(f"{owner} {where}: expected null or 'global', got {value!r}")
    return value
