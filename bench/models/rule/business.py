"""Business rules on top of any model: exclusions, restrictions, boosts and pins.

:class:`BusinessRules` wraps a built child :class:`~bench.models.base.Recommender` (in
a config, the ``model:`` key holds the child's ``_target_`` node, usually composed
from another model config with a Hydra defaults list ``/model@model: <name>``) and
rewrites the child's scores **before** top-k, so lists stay full after exclusions.

Rules are an ordered list; each has one action key and an optional ``for`` (a user
predicate, :mod:`bench.models.rule.predicates`, over the attributes of
:mod:`bench.models.rule.attributes`, plus ``segment`` when the child segments users)::

    rules:
      - exclude: [2571, 318]                 # item ids
      - exclude: {genre: Horror}             # an item predicate
        for: {age_band: "<18"}               # ... only for these users
      - include_only: {year: {gte: 1970}}    # only items matching the predicate
      - boost: {genre: Comedy}               # raise matching items
        amount: 5
        mode: rank                           # add | multiply | rank
      - bury: {popularity: {lt: 5}}          # lower matching items
        amount: 0.5
        mode: multiply
      - pin: [356, 296]                      # forced to the top, in this order

Item predicates test ``item_id``, ``genre`` (an item matches when it has any listed
genre), ``year`` and ``popularity`` (training interactions).

**The score-scale problem.** Children score on very different scales (popularity
counts in the hundreds, ALS dot products below 1, negative values possible), so a
boost's ``amount`` means nothing without knowing the child. Three modes:

``add``
    ``score + amount`` (bury: ``score - amount``): exact but scale-dependent; tune
    ``amount`` per child.
``multiply``
    ``score * amount`` (bury: ``score / amount``) for non-negative scores; a negative
    score is divided instead (multiplied for bury) so a boost always moves an item up.
    ``amount > 0``; relative, but still meaningless around zero.
``rank`` (default)
    scale-free: the user's current ranking (finite scores, best first, ties toward the
    lower item code) is turned into positions and a matching item moves ``amount``
    positions up (bury: down), landing just ahead of (behind) the item it overtakes.
    The scores become negated positions, so later ``add``/``multiply`` rules act on
    that scale.

**Pins** are applied after every other rule, whatever their place in the list: the
pinned items go to the top in the given order (across several pin rules, the earlier
rule's items first), above all other items, even those a rule excluded — a pin is an
explicit editorial decision. Items the user has already seen are still masked, so a
user who saw a pinned item simply gets the next one. Pinned items are labelled
``rules:pin`` in the recommendation sources; every other cell keeps the child's label,
so wrappers nest (business rules over business rules over a hybrid keep the hybrid's
components).

Item ids in rules must exist in the dataset's item vocabulary; an unknown id is a
``ConfigError`` listing a few of them, unless ``ignore_unknown_items: true`` (then they
are dropped and logged).

``family`` is the child's family: rules re-order what the child knows, they do not
change the rung of the spectrum (``rule_business_popular`` is therefore ``rule``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from bench.errors import ConfigError
from bench.models.base import Recommender, ScoreGroups
from bench.models.rule.attributes import (
    DEFAULT_ACTIVITY_THRESHOLDS,
    check_thresholds,
    item_attributes,
    set_genre_domain,
    user_attributes,
    user_rows,
    user_table,
)
from bench.models.rule.predicates import compile_predicate

log = logging.getLogger(__name__)

ACTIONS = ("exclude", "include_only", "boost", "bury", "pin")
MODES = ("add", "multiply", "rank")
PIN_SOURCE = "rules:pin"
#: Most groups of users (distinct combinations of the child's group and the rules that
#: apply) a batch may have for the group path; beyond it, or beyond a quarter of the
#: batch, the generic path scores the whole batch.
MAX_GROUPS = 64


class BusinessRules(Recommender):
    """Declarative business rules applied to a child model's scores before top-k.

    Assumes the child's ranking is right except where the business says otherwise. It
    scores what the child scores (NaN stays NaN, except for pinned items) and cannot
    score anything the child cannot, bar pins. ``fit`` fits the child with the same
    arguments; ``get_params`` lists the child as the ``model`` parameter.

    Args:
        model: the built child recommender.
        rules: ordered list of rules, each one of ``exclude``, ``include_only``,
            ``boost``, ``bury`` (with ``amount`` and ``mode``) or ``pin``, with an
            optional ``for`` user predicate (see the module docs).
        ignore_unknown_items: drop item ids absent from the item vocabulary instead of
            raising ``ConfigError``.
        activity_thresholds: ``[t1, t2]`` bounds of ``activity_band`` in ``for``.

    **Over a child with shared scores** (one row for every user, e.g. the popularity
    rules: the child's ``shared_score_codes`` says so), the rules never build a
    ``(batch, n_items)`` block. The users of a batch fall into groups by the child's
    group and which rules and pins apply to them (their ``for`` masks, the unknown user
    included); each group's row is rewritten by exactly the code of the generic path
    (:meth:`_rewrite` on one row per group), ranked once, and every user of the group
    gets that ranking with their history skipped. Lists, scores and sources are the
    generic path's, bit for bit. The group path runs when a batch has at most
    ``MAX_GROUPS`` (64) groups and at most a quarter as many groups as users (else the
    generic path scores the batch, which is then no dearer). It also announces the
    groups through ``shared_score_codes``, so business rules over business rules over
    such a child take it too.
    """

    forwards_user_segments = True
    #: its fit reads the data's item vocabulary (``data_item_ids_``); its child shares
    shares_fits = False

    def __init__(
        self,
        *,
        model: Recommender,
        rules: list,
        ignore_unknown_items: bool = False,
        activity_thresholds: list | tuple = DEFAULT_ACTIVITY_THRESHOLDS,
    ):
        self.model = model
        self.rules = rules
        self.ignore_unknown_items = ignore_unknown_items
        self.activity_thresholds = activity_thresholds

    @property
    def family(self) -> str:
        """The child's rung: rules do not move a model along the spectrum."""
        return getattr(self.model, "family", "rule")

    @property
    def predicts_ratings(self) -> bool:
        return False

    def vocabulary_sources(self) -> frozenset[str]:
        """The child's, plus the catalogue of item features (a pin may name an item
        that has no training row yet)."""
        child = self.model.vocabulary_sources() if isinstance(self.model, Recommender) \
            else frozenset()
        return frozenset(child | {"item_features"})

    # ------------------------------------------------------------------ fit
    def _fit(self, train, item_features, user_features) -> None:
        name = type(self).__name__
        if not isinstance(self.model, Recommender):
            raise ConfigError(
                f"{name} model: expected a built recommender (a `_target_` node), got "
                f"{type(self.model).__name__}"
            )
        if not isinstance(self.ignore_unknown_items, bool):
            raise ConfigError(f"{name} ignore_unknown_items: expected true or false, got "
                              f"{self.ignore_unknown_items!r}")
        thresholds = check_thresholds(name, self.activity_thresholds)
        if not isinstance(self.rules, list | tuple):
            raise ConfigError(f"{name} rules: expected a list of rules, got {self.rules!r}")
        self.model.fit(train, item_features, user_features, train_order=self.train_order_)

        items = item_attributes(train.item_ids, item_features, self.item_counts_,
                                known_ids=self.data_item_ids_)
        users = None
        if any(isinstance(r, Mapping) and r.get("for") is not None for r in self.rules):
            frame = user_attributes(train, item_features, user_features,
                                    activity_thresholds=thresholds)
            extra = {}
            segs = self.model.user_segments(np.arange(-1, train.n_users))
            if segs is not None:
                labels = np.append(segs[1:], segs[:1])  # the unknown user goes last
                names = getattr(self.model, "segment_names_", None)
                extra["segment"] = (labels, tuple(names or dict.fromkeys(labels.tolist())))
            users = user_table(frame, extra)
            set_genre_domain(users, item_features)

        lenient = ("item_id",) if self.ignore_unknown_items else ()
        dropped: dict = {}
        compiled, pins = [], []
        for i, rule in enumerate(self.rules):
            where = f"{name} rules[{i}]"
            action, rule = _parse_rule(where, rule)
            user_mask = None
            if rule.get("for") is not None:
                pred = compile_predicate(rule["for"], users, f"{where}.for")
                user_mask = pred.mask(users)
            if action == "pin":
                codes = _pin_codes(f"{where}.pin", rule["pin"], train.item_ids,
                                   self.ignore_unknown_items, dropped,
                                   known=self.data_item_ids_)
                pins.append((codes, user_mask))
                continue
            target = rule[action]
            if isinstance(target, list | tuple):
                target = {"item_id": list(target)}
            pred = compile_predicate(target, items, f"{where}.{action}", lenient=lenient,
                                     dropped=dropped)
            compiled.append({
                "action": action,
                "items": pred.mask(items),
                "users": user_mask,
                "amount": rule.get("amount"),
                "mode": rule.get("mode", "rank"),
            })
        for where, ids in dropped.items():
            log.warning("%s: ignored %d unknown item id(s), e.g. %s", where, len(ids), ids[:5])
        self.compiled_rules_ = compiled
        self.pins_ = pins
        self.unknown_items_ignored_ = {k: list(v) for k, v in dropped.items()}
        child_names = tuple(self.model.source_names())
        self.child_source_names_ = child_names
        if PIN_SOURCE in child_names:
            self.pin_source_ = child_names.index(PIN_SOURCE)
            self.source_names_ = child_names
        else:
            self.pin_source_ = len(child_names)
            self.source_names_ = (*child_names, PIN_SOURCE)

    # ------------------------------------------------------------------ score
    def _score_sources(self, users: np.ndarray, history: sp.csr_matrix):
        scores, sources = self.model.score_codes(users, history)
        return self._rewrite(scores, sources, user_rows(users, len(self.user_index_)))

    def _rewrite(self, scores: np.ndarray, sources: np.ndarray | None, rows: np.ndarray):
        """The rules and pins applied to a block of the child's scores and sources, one
        row per user table row in ``rows``; returns new (scores float32, sources int16)."""
        scores = np.array(scores, dtype=np.float32, copy=True)
        if sources is None:
            sources = np.zeros(scores.shape, dtype=np.int16)
        else:
            sources = np.array(sources, dtype=np.int16, copy=True)
        for rule in self.compiled_rules_:
            who = np.ones(len(rows), dtype=bool) if rule["users"] is None else rule["users"][rows]
            if who.any():
                _apply(scores, who, rule)
        if self.pins_:
            finite = np.isfinite(scores)
            top = np.where(finite.any(axis=1), np.nanmax(np.where(finite, scores, -np.inf),
                                                         axis=1), 0.0)
            step = np.maximum(1.0, np.abs(top)) * 1e-2
            flat = [(c, mask) for codes, mask in self.pins_ for c in codes]
            for rank_from_bottom, (code, mask) in enumerate(reversed(flat), start=1):
                who = np.ones(len(rows), dtype=bool) if mask is None else mask[rows]
                scores[who, code] = top[who] + step[who] * rank_from_bottom
                sources[who, code] = self.pin_source_
        return scores, sources

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return self._score_sources(users, history)[0]

    def _shared_scores(self, users: np.ndarray) -> ScoreGroups | None:
        """One rewritten row per group of users when the child shares its scores (see
        the class doc); ``None`` when it does not, or when the batch has too many groups."""
        child = self.model.shared_score_codes(users)
        if child is None:
            return None
        rows = user_rows(users, len(self.user_index_))
        masks = [m for m in [r["users"] for r in self.compiled_rules_]
                 + [m for _, m in self.pins_] if m is not None]
        key = np.empty((len(users), 1 + len(masks)), dtype=np.int64)
        key[:, 0] = child.group
        for j, mask in enumerate(masks, start=1):
            key[:, j] = mask[rows]
        _, first, group = np.unique(key, axis=0, return_index=True, return_inverse=True)
        if len(first) > min(MAX_GROUPS, max(1, len(users) // 4)):
            return None
        rep = child.group[first]
        scores, sources = self._rewrite(
            child.scores[rep], None if child.sources is None else child.sources[rep],
            rows[first])
        return ScoreGroups(group.reshape(-1).astype(np.int64), scores, sources)

    def _top_k_sources(self, users, history, k, exclude_seen):
        """The group path (see the class doc) when the child shares its scores."""
        shared = self._shared_scores(users)
        if shared is None:
            return None
        return shared.top_k(history, k, exclude_seen)

    def source_names(self) -> tuple[str, ...]:
        names = getattr(self, "source_names_", None)
        return names if names is not None else (*self.model.source_names(), PIN_SOURCE)

    def _user_segments(self, users: np.ndarray):
        """The child's segments (rules do not segment users themselves)."""
        return self.model.user_segments(users)


# ---------------------------------------------------------------------- application
def _apply(scores: np.ndarray, who: np.ndarray, rule: dict) -> None:
    """Apply one non-pin rule in place to the rows ``who`` of ``scores``."""
    action, items = rule["action"], rule["items"]
    block = scores[who]
    if action == "exclude":
        block[:, items] = np.nan
    elif action == "include_only":
        block[:, ~items] = np.nan
    else:
        up = action == "boost"
        amount = float(rule["amount"])
        sub = block[:, items]
        if rule["mode"] == "add":
            block[:, items] = sub + amount if up else sub - amount
        elif rule["mode"] == "multiply":
            grow = np.where(sub >= 0, sub * amount, sub / amount)
            shrink = np.where(sub >= 0, sub / amount, sub * amount)
            block[:, items] = grow if up else shrink
        else:  # rank: positions, moved by `amount` (half a place more to pass the item)
            pos = _positions(block)
            shift = (amount + 0.5) * (1.0 if up else -1.0)
            pos[:, items] -= shift
            block[:] = -pos
    scores[who] = block


def _positions(block: np.ndarray) -> np.ndarray:
    """0-based position of every finite score in its row (best first, ties to lower code).

    NaN cells stay NaN.
    """
    nan = np.isnan(block)
    key = np.where(nan, np.float32(np.inf), -block)
    order = np.argsort(key, axis=1, kind="stable")
    pos = np.empty(block.shape, dtype=np.float32)
    np.put_along_axis(pos, order, np.arange(block.shape[1], dtype=np.float32)[None, :], axis=1)
    pos[nan] = np.nan
    return pos


# ---------------------------------------------------------------------- parsing
def _parse_rule(where: str, rule) -> tuple[str, dict]:
    if not isinstance(rule, Mapping):
        raise ConfigError(f"{where}: expected a mapping with one of {list(ACTIONS)}, got {rule!r}")
    actions = [a for a in ACTIONS if a in rule]
    if len(actions) != 1:
        raise ConfigError(
            f"{where}: expected exactly one action key of {list(ACTIONS)}, got "
            f"{sorted(map(str, rule))}"
        )
    action = actions[0]
    allowed = {action, "for"} | ({"amount", "mode"} if action in ("boost", "bury") else set())
    unknown = sorted(set(map(str, rule)) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} for a {action!r} rule; expected "
                          f"some of {sorted(allowed)}")
    target = rule[action]
    if action == "pin":
        if not isinstance(target, list | tuple) or not target:
            raise ConfigError(f"{where}.pin: expected a non-empty list of item ids, got "
                              f"{target!r}")
    elif not isinstance(target, list | tuple | Mapping):
        raise ConfigError(
            f"{where}.{action}: expected a list of item ids or an item predicate such as "
            f"{{genre: Horror}}, got {target!r}"
        )
    if action in ("boost", "bury"):
        mode = rule.get("mode", "rank")
        if mode not in MODES:
            raise ConfigError(f"{where}.mode: expected one of {list(MODES)}, got {mode!r}")
        amount = rule.get("amount")
        ok = isinstance(amount, int | float) and not isinstance(amount, bool) and bool(
            np.isfinite(amount)
        )
        if not ok or (mode == "multiply" and amount <= 0) or (mode == "rank" and amount < 0):
            need = {"add": "a number", "multiply": "a number > 0",
                    "rank": "a number of positions >= 0"}[mode]
            raise ConfigError(f"{where}.amount: expected {need} for mode {mode!r}, "
                              f"got {amount!r}")
    return action, dict(rule)


def _pin_codes(where: str, ids, item_ids, lenient: bool, dropped: dict,
               known=None) -> np.ndarray:
    """Model codes of the pinned ids; an id the data knows (``known``) but the model's
    vocabulary does not (no training row, no features) cannot be shown and is skipped."""
    ids = list(dict.fromkeys(ids))
    codes = item_ids.get_indexer(ids)
    in_data = set() if known is None else set(known[known.isin(ids)].tolist())
    unknown = [i for i, c in zip(ids, codes, strict=True) if c < 0 and i not in in_data]
    if unknown and not lenient:
        raise ConfigError(
            f"{where}: unknown item id(s) {unknown[:5]}"
            f"{f' ({len(unknown)} in all)' if len(unknown) > 5 else ''}; they are not in the "
            f"dataset's item vocabulary (set ignore_unknown_items: true to skip them)"
        )
    if unknown:
        dropped.setdefault(where, []).extend(unknown)
    return codes[codes >= 0].astype(np.int64)
