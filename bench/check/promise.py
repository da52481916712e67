"""What a baseline promises, and whether a run lets the gate keep the promise.

A baseline lists models and, for each, one per-user row per evaluated (fold, user) of the
split its evaluation card describes, with a value of every gated metric (``NaN`` only
where the metric is undefined for that user, e.g. a new-items metric for a user with no
new relevant item) and the segment labels. A run with the same card evaluates the same
users, so the gate promises, for every model in both and every gated (metric, segment),
a paired test on **exactly** the baseline's users with a value. Anything less would let
the gate pass while comparing fewer users than it claims, or none at all.

Each function returns the mismatches it finds, one sentence each, naming the model, fold,
metric or segment that did not match; :func:`raise_mismatches` turns them into one
:class:`~bench.errors.IncomparableError` line (exit code 2).
"""

from __future__ import annotations

import pandas as pd

from bench.errors import IncomparableError

__all__ = ["key_mismatches", "label_mismatches", "raise_mismatches", "value_mismatch"]

SAME_USERS = "expected the same users (is this the same split?)"
SAME_FOLDS = "expected the same folds (is this the same split?)"
REWRITE = ("update the baseline with `bench check --update-baseline` if the change is "
           "intended")


def raise_mismatches(path, mismatches: list[str]) -> None:
    """Raise one ``IncomparableError`` line for ``mismatches`` (the first, and a count)."""
    if not mismatches:
        return
    more = f" (and {len(mismatches) - 1} more mismatch(es))" if len(mismatches) > 1 else ""
    raise IncomparableError(f"baseline {path}: {mismatches[0]}{more}")


def keys(frame: pd.DataFrame) -> set[tuple]:
    """The (fold, user_id) pairs of ``frame``, as plain Python values (1 == 1.0, '1' != 1)."""
    return set(zip(frame["fold"].tolist(), frame["user_id"].tolist(), strict=True))


def _folds(values) -> list:
    """The distinct fold numbers, sorted (by type first: a text '0' is not the fold 0)."""
    return sorted(set(values), key=lambda v: (type(v).__name__, v))


def key_mismatches(model: str, ref: pd.DataFrame, cur: pd.DataFrame) -> list[str]:
    """Folds and users of ``model`` in the baseline (``ref``) but not the run, or back."""
    out = []
    ref_folds, cur_folds = _folds(ref["fold"].tolist()), _folds(cur["fold"].tolist())
    for fold in ref_folds:
        base = keys(ref[ref["fold"] == fold])
        if fold not in cur_folds:
            out.append(f"model {model} fold {fold!r} ({len(base)} users) is not a fold of "
                       f"this run (it has fold(s) {cur_folds}); {SAME_FOLDS}")
            continue
        run = keys(cur[cur["fold"] == fold])
        if base != run:
            common = len(base & run)
            other = f" (this run has {len(run) - common} others)" if len(run) > common else ""
            out.append(f"model {model} fold {fold!r} has {common} of {len(base)} users in "
                       f"common with this run{other}; {SAME_USERS}")
    for fold in cur_folds:
        if fold not in ref_folds:
            n = len(keys(cur[cur["fold"] == fold]))
            out.append(f"model {model} fold {fold!r} of this run ({n} users) is not in the "
                       f"baseline (it has fold(s) {ref_folds}); {SAME_FOLDS}")
    return out


def label_mismatches(kind: str, ref: pd.DataFrame, cur: pd.DataFrame) -> list[str]:
    """Users whose ``kind`` label (history bucket, rule segment) differs between the sides.

    ``ref`` and ``cur`` are the per-user rows of the models in both; call it once their
    keys match. A label missing on both sides of a user is the same label.
    """
    ref_has = kind in ref and ref[kind].notna().any()
    cur_has = kind in cur and cur[kind].notna().any()
    if not ref_has and not cur_has:
        return [f"check.segments gates {kind!r} but neither the baseline nor this run has "
                f"{kind} labels; remove it from check.segments"]
    if not ref_has:
        return [f"check.segments gates {kind!r} but the baseline has no {kind} labels (this "
                f"run has); {REWRITE}"]
    if not cur_has:
        return [f"check.segments gates {kind!r} but this run has no {kind} labels (the "
                "baseline has)"]
    on = ["model", "fold", "user_id"]
    both = ref[[*on, kind]].merge(cur[[*on, kind]], on=on, suffixes=(".b", ".r"))
    a, b = both[f"{kind}.b"], both[f"{kind}.r"]
    differ = both[~((a == b) | (a.isna() & b.isna()))]
    if differ.empty:
        return []
    first = {k: _plain(v) for k, v in differ.iloc[0].items()}
    return [f"{len(differ)} of {len(both)} per-user rows have another {kind} in this run than "
            f"in the baseline (e.g. model {first['model']} fold {first['fold']!r} user "
            f"{first['user_id']!r}: baseline {first[f'{kind}.b']!r}, run "
            f"{first[f'{kind}.r']!r}); expected the same segments; {REWRITE}"]


def value_mismatch(model: str, column: str, label: str, ref: pd.DataFrame,
                   cur: pd.DataFrame) -> str | None:
    """Users with a ``column`` value on one side only (the paired test would drop them).

    A column absent from a side is a column without values there: a new-items metric is
    only written when some user has a new relevant item, on both sides alike.
    """
    base = keys(ref[ref[column].notna()]) if column in ref else set()
    run = keys(cur[cur[column].notna()]) if column in cur else set()
    if base == run:
        return None
    where = f"model {model} {column} [{label}]"
    if not base:
        what = "values" if column in ref else "column"
        return (f"{where}: the baseline has no {column} {what} (this run has values for "
                f"{len(run)} users); expected values for the same users; {REWRITE}")
    if not run:
        return (f"{where}: this run has no {column} values (the baseline has them for "
                f"{len(base)} users); expected values for the same users")
    gaps = []
    if base - run:
        gaps.append(f"this run has no value for {len(base - run)} of the baseline's "
                    f"{len(base)} users with one")
    if run - base:
        gaps.append(f"the baseline has no value for {len(run - base)} of this run's "
                    f"{len(run)} users with one")
    return f"{where}: {' and '.join(gaps)}; expected values for the same users; {REWRITE}"


def _plain(value):
    """A numpy scalar as the Python value it holds (its repr then reads as in the data);
    a missing label (NaN) as ``None``."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and value != value else value
