"""Metric keys: ``<metric>[@<k>][.<segment>]`` — one type, one parser, one formatter.

Every number a run records is named by a key, a :class:`MetricKey`:

========================  ===============  =====  ====================================
key                       metric           k      segment (who the value is over)
========================  ===============  =====  ====================================
``ndcg@10``               ``ndcg``         10     every evaluated user
``ndcg@10.hist_1-5``      ``ndcg``         10     history bucket ``1-5``
``ndcg@10.seg_heavy``     ``ndcg``         10     rule segment ``heavy``
``ndcg@10.new_items``     ``ndcg``         10     scored against new relevant items only
``ndcg@10.fold_in_3``     ``ndcg``         10     user cold start, 3 fold-in interactions
``ndcg@10.item_cold``     ``ndcg``         10     the item cold-start protocol
``coverage@10``           ``coverage``     10     (a list-set aggregate)
``users.hist_1-5``        ``users``        —      number of users in the bucket
``n_relevant.new_items``  ``n_relevant``   —      new relevant items per user
``rmse``                  ``rmse``         —      every predictable test pair
========================  ===============  =====  ====================================

Grammar: the metric name is a letter followed by letters, digits and ``_``; ``k`` a
positive integer without leading zeros (so a key formats back to the text it was parsed
from); the segment is any non-empty text after the first ``.`` (rule-segment labels come
from data and may hold ``.``, ``+`` or ``@``). The segment labels are built by
:func:`history_segment`, :func:`rule_segment`, :func:`fold_in_segment` and the constants
:data:`NEW_ITEMS` and :data:`ITEM_COLD`; :func:`segment_kind` reads one back.

:attr:`MetricKey.mlflow` is the form MLflow accepts: ``@`` becomes ``_at_``, ``+`` becomes
``plus`` and any other character MLflow refuses (it allows letters, digits, ``_ - . /``
and space) becomes ``_``: ``ndcg@10.hist_101+`` -> ``ndcg_at_10.hist_101plus``.

Which metrics exist, and which way each is better, is the registry's business
(:mod:`bench.metrics.registry`); a key is only syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np

from bench.errors import ConfigError, describe

__all__ = [
    "FOLD_IN_PREFIX",
    "HISTORY_PREFIX",
    "ITEM_COLD",
    "NEW_ITEMS",
    "RULE_PREFIX",
    "MetricKey",
    "check_cutoffs",
    "fold_in_segment",
    "history_segment",
    "rule_segment",
    "segment_kind",
]

#: Segment of per-user values computed against relevant items new at test time only.
NEW_ITEMS = "new_items"
#: Segment of the item cold-start protocol (every relevant test item is held out).
ITEM_COLD = "item_cold"
#: Prefix of a history-bucket segment: ``hist_1-5``.
HISTORY_PREFIX = "hist_"
#: Prefix of a rule-segment segment: ``seg_<label>``.
RULE_PREFIX = "seg_"
#: Prefix of a user cold-start level: ``fold_in_3``.
FOLD_IN_PREFIX = "fold_in_"

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_CUTOFF = re.compile(r"[1-9][0-9]*")
_MLFLOW_UNSAFE = re.compile(r"[^0-9A-Za-z_\-. /]")
_GRAMMAR = "<metric>[@<k>][.<segment>] such as 'ndcg@10' or 'ndcg@10.hist_1-5'"


@dataclass(frozen=True)
class MetricKey:
    """The name of one recorded number: metric, optional cutoff, optional segment.

    Attributes:
        metric: metric name (``ndcg``, ``coverage``, ``rmse``, or a count such as
            ``users``); a letter, then letters, digits and ``_``.
        k: the cutoff, a positive integer, or None for a metric without one.
        segment: who the value is over (``hist_1-5``, ``new_items``, ...), or None for
            every evaluated user.

    ``str(key)`` is the text form (``ndcg@10.hist_1-5``), :meth:`parse` its inverse.
    Invalid fields raise :class:`~bench.errors.ConfigError`.
    """

    metric: str
    k: int | None = None
    segment: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not _NAME.fullmatch(self.metric):
            raise ConfigError(describe(
                "metric name", "a letter followed by letters, digits or '_'", repr(self.metric)
            ))
        k = self.k
        if k is not None:
            if isinstance(k, bool | np.bool_) or not isinstance(k, int | np.integer) or k <= 0:
                raise ConfigError(describe("metric cutoff", "a positive integer", repr(k)))
            object.__setattr__(self, "k", int(k))
        if self.segment is not None and (not isinstance(self.segment, str) or not self.segment):
            raise ConfigError(describe("metric segment", "a non-empty string", repr(self.segment)))

    @classmethod
    def parse(cls, text: str, where: str | None = None) -> MetricKey:
        """Read ``"ndcg@10.hist_1-5"`` back into its parts (the inverse of ``str``).

        Args:
            text: the key.
            where: where the text came from (a config key such as ``stats.metrics``); it
                starts the error message when given.

        Raises:
            ConfigError: one line naming ``where`` (or "metric key") and the text.
        """
        if not isinstance(text, str):
            raise ConfigError(describe(where or "metric key", _GRAMMAR, repr(text)))
        head, dot, segment = text.partition(".")
        name, at, cut = head.partition("@")
        if (
            not _NAME.fullmatch(name)
            or (at and not _CUTOFF.fullmatch(cut))
            or (dot and not segment)
        ):
            raise ConfigError(describe(where or "metric key", _GRAMMAR, repr(text)))
        return cls(name, int(cut) if at else None, segment if dot else None)

    @classmethod
    def try_parse(cls, text: object) -> MetricKey | None:
        """:meth:`parse`, or None when ``text`` is not a key (e.g. a column such as ``user_id``
        parses, ``n relevant`` does not)."""
        try:
            return cls.parse(text)  # type: ignore[arg-type]
        except ConfigError:
            return None

    def __str__(self) -> str:
        out = self.metric if self.k is None else f"{self.metric}@{self.k}"
        return out if self.segment is None else f"{out}.{self.segment}"

    @property
    def mlflow(self) -> str:
        """The key as MLflow accepts it: ``ndcg@10.hist_101+`` -> ``ndcg_at_10.hist_101plus``."""
        return _MLFLOW_UNSAFE.sub("_", str(self).replace("@", "_at_").replace("+", "plus"))

    @property
    def overall(self) -> MetricKey:
        """The same metric and cutoff over every evaluated user (no segment)."""
        return replace(self, segment=None)

    def over(self, segment: str | None) -> MetricKey:
        """The same metric and cutoff over ``segment`` (e.g. :func:`history_segment`)."""
        return replace(self, segment=segment)

    @property
    def is_cutoff_metric(self) -> bool:
        """A metric@k over every evaluated user (``ndcg@10``; not ``users`` or ``ndcg@10.x``)."""
        return self.k is not None and self.segment is None


def history_segment(label: str) -> str:
    """Segment of a history bucket: ``history_segment("1-5") == "hist_1-5"``."""
    return f"{HISTORY_PREFIX}{label}"


def rule_segment(label: str) -> str:
    """Segment of a rule-model segment label: ``rule_segment("heavy") == "seg_heavy"``."""
    return f"{RULE_PREFIX}{label}"


def fold_in_segment(level: int) -> str:
    """Segment of a user cold-start level: ``fold_in_segment(3) == "fold_in_3"``."""
    return f"{FOLD_IN_PREFIX}{int(level)}"


def segment_kind(segment: str | None) -> tuple[str, str | None]:
    """What a segment is: ``(kind, label)``.

    ``None`` -> ``("all", None)``; ``hist_1-5`` -> ``("history_bucket", "1-5")``;
    ``seg_heavy`` -> ``("segment", "heavy")``; ``new_items`` -> ``("new_items", None)``;
    ``fold_in_3`` -> ``("fold_in", "3")``; ``item_cold`` -> ``("item_cold", None)``;
    anything else -> ``("other", segment)``. The kinds ``history_bucket`` and ``segment``
    are the per-user label columns the segments come from.
    """
    if segment is None:
        return "all", None
    if segment in (NEW_ITEMS, ITEM_COLD):
        return segment, None
    for prefix, kind in ((HISTORY_PREFIX, "history_bucket"), (RULE_PREFIX, "segment"),
                         (FOLD_IN_PREFIX, "fold_in")):
        if segment.startswith(prefix) and len(segment) > len(prefix):
            return kind, segment[len(prefix):]
    return "other", segment


def check_cutoffs(cutoffs) -> tuple[int, ...]:
    """Cutoffs as a tuple of ints: strictly ascending positive integers (one int is a list).

    Raises:
        ConfigError: anything else (naming ``eval.cutoffs``, where cutoffs come from).
    """
    if isinstance(cutoffs, int | np.integer) and not isinstance(cutoffs, bool):
        cutoffs = (cutoffs,)
    try:
        values = list(cutoffs)
    except TypeError:
        values = None
    ok = (
        values is not None
        and len(values) > 0
        and all(isinstance(k, int | np.integer) and not isinstance(k, bool) for k in values)
        and all(k > 0 for k in values)
        and all(b > a for a, b in pairwise(values))
    )
    if not ok:
        shown = values if values is not None else cutoffs
        raise ConfigError(
            f"eval.cutoffs: expected strictly ascending positive integers, got {shown!r}"
        )
    return tuple(int(k) for k in values)
