"""A small, safe predicate language for rules written in YAML (no ``eval``).

A predicate is a mapping from attribute names to conditions; all keys must hold (AND)::

    {gender: M}                           # equality
    {age_band: ["18-24", "25-34"]}        # membership (any of)
    {activity: {gte: 5, lt: 20}}          # comparisons; several operators are ANDed
    {favourite_genre: null}               # the value is missing
    {genre: Comedy, year: {gte: 1990}}    # two attributes, both must hold
    {any: [{gender: F}, {age_band: "<18"}]}   # OR of predicates
    {not: {genre: Horror}}                # negation
    {}                                    # matches everything

Operators (the mapping form): ``eq``, ``ne``, ``in``, ``not_in``, ``lt``, ``lte``,
``gt``, ``gte`` and ``missing`` (``true``/``false``). A scalar is shorthand for ``eq``,
a list for ``in``, ``null`` for ``missing: true``. ``any`` and ``not`` are the only
reserved keys.

Attributes have a kind that fixes the operators they accept:

* ``number`` (activity, year, ...): every operator; values must be numbers.
* ``category`` (gender, age_band, ...): ``eq ne in not_in missing``; when the attribute
  has a known domain (the age bands, the genres of the dataset, ...) every value must
  belong to it, so a typo is an error instead of a rule that never fires.
* ``set`` (an item's genres): ``eq``/``in`` hold when the item has *any* of the values,
  ``ne``/``not_in`` when it has none of them, ``missing`` when it has no value at all.

Missing values (NaN, ``None``, an empty set) never satisfy ``eq in lt lte gt gte``;
``ne`` and ``not_in`` are the exact negations of ``eq`` and ``in``, so they do hold.

Every mistake — an unknown attribute, an unknown operator, a value of the wrong type or
outside the domain, an attribute this dataset lacks — raises
:class:`~bench.errors.ConfigError` naming the config path and listing what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bench.errors import ConfigError

NUMBER, CATEGORY, SET = "number", "category", "set"
OPERATORS = ("eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "missing")
ORDER_OPS = ("lt", "lte", "gt", "gte")
COMBINATORS = ("any", "not")
_OPS_BY_KIND = {
    NUMBER: OPERATORS,
    CATEGORY: ("eq", "ne", "in", "not_in", "missing"),
    SET: ("eq", "ne", "in", "not_in", "missing"),
}


@dataclass
class AttributeTable:
    """Attribute values for ``n`` rows (users or items), ready for predicates.

    Attributes:
        n: number of rows.
        numbers: name -> float64 array (NaN = missing).
        categories: name -> object array (``None`` = missing).
        sets: name -> (CSR ``n x len(values)`` 0/1 matrix, the value names).
        domains: category name -> allowed values (checked when a predicate is compiled).
        unavailable: attribute name -> why this data lacks it (e.g. no demographics).
        hints: attribute name -> a sentence added to "unknown value" errors (then the
            domain itself is not listed; use it for large domains such as item ids).
    """

    n: int
    numbers: dict[str, np.ndarray] = field(default_factory=dict)
    categories: dict[str, np.ndarray] = field(default_factory=dict)
    sets: dict[str, tuple[sp.csr_matrix, tuple]] = field(default_factory=dict)
    domains: dict[str, tuple] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)

    def kind(self, name: str) -> str | None:
        if name in self.numbers:
            return NUMBER
        if name in self.categories:
            return CATEGORY
        if name in self.sets:
            return SET
        return None

    @property
    def names(self) -> list[str]:
        return sorted([*self.numbers, *self.categories, *self.sets])

    def domain(self, name: str) -> tuple | None:
        if name in self.sets:
            return tuple(self.sets[name][1])
        return self.domains.get(name)


@dataclass(frozen=True)
class Predicate:
    """A compiled predicate: evaluate it on the table it was compiled against."""

    clauses: tuple  # (name, op, value) triples
    any_of: tuple = ()  # tuple of tuples of Predicate (one tuple per ``any`` key)
    negated: tuple = ()  # Predicates under ``not``
    source: object = None  # the YAML it came from, for messages

    def mask(self, table: AttributeTable, rows: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask over the table's rows (or over ``rows``, an index array)."""
        n = table.n if rows is None else len(rows)
        out = np.ones(n, dtype=bool)
        for name, op, value in self.clauses:
            out &= _clause(table, name, op, value, rows)
        for group in self.any_of:
            hit = np.zeros(n, dtype=bool)
            for p in group:
                hit |= p.mask(table, rows)
            out &= hit
        for p in self.negated:
            out &= ~p.mask(table, rows)
        return out

    def names(self) -> set[str]:
        """Every attribute name the predicate reads."""
        found = {c[0] for c in self.clauses}
        for group in self.any_of:
            for p in group:
                found |= p.names()
        for p in self.negated:
            found |= p.names()
        return found


def compile_predicate(
    spec,
    table: AttributeTable,
    where: str,
    *,
    lenient: Sequence[str] = (),
    dropped: dict | None = None,
) -> Predicate:
    """Check ``spec`` against ``table``'s attributes and return a :class:`Predicate`.

    ``where`` is the config path used in messages. Values outside the domain of an
    attribute named in ``lenient`` are dropped (and recorded in ``dropped[where]``)
    instead of raising.
    """
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"{where}: expected a predicate mapping such as {{gender: M}} or "
            f"{{activity: {{lt: 5}}}}, got {spec!r}"
        )
    clauses, any_of, negated = [], [], []
    for key, cond in spec.items():
        path = f"{where}.{key}"
        if key == "any":
            if not isinstance(cond, list | tuple) or not cond:
                raise ConfigError(f"{path}: expected a non-empty list of predicates, got {cond!r}")
            any_of.append(
                tuple(
                    compile_predicate(c, table, f"{path}[{i}]", lenient=lenient, dropped=dropped)
                    for i, c in enumerate(cond)
                )
            )
            continue
        if key == "not":
            negated.append(compile_predicate(cond, table, path, lenient=lenient, dropped=dropped))
            continue
        kind = table.kind(key)
        if kind is None:
            if key in table.unavailable:
                raise ConfigError(f"{path}: attribute {key!r} is not available: "
                                  f"{table.unavailable[key]}")
            raise ConfigError(
                f"{path}: unknown attribute {key!r}; expected one of {table.names} "
                f"(or the combinators {list(COMBINATORS)})"
            )
        for op, value in _operators(cond, path):
            allowed = _OPS_BY_KIND[kind]
            if op not in allowed:
                if op in OPERATORS:
                    raise ConfigError(
                        f"{path}: operator {op!r} does not apply to {kind} attribute {key!r}; "
                        f"expected one of {list(allowed)}"
                    )
                raise ConfigError(
                    f"{path}: unknown operator {op!r}; expected one of {list(allowed)}"
                )
            clauses.append(
                _check_value(table, key, kind, op, value, f"{path}.{op}", lenient, dropped)
            )
    return Predicate(tuple(clauses), tuple(any_of), tuple(negated), spec)


def _operators(cond, path: str) -> list[tuple[str, object]]:
    if cond is None:
        return [("missing", True)]
    if isinstance(cond, Mapping):
        if not cond:
            raise ConfigError(f"{path}: expected at least one operator of {list(OPERATORS)}")
        return [(str(op), v) for op, v in cond.items()]
    if isinstance(cond, list | tuple):
        return [("in", list(cond))]
    return [("eq", cond)]


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _check_value(table, key, kind, op, value, path, lenient, dropped) -> tuple:
    """The clause ``(key, op, value)`` after checking the value's type and domain."""
    if op == "missing":
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return key, op, value
    if op in ("in", "not_in"):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list of values, got {value!r}")
        values = list(value)
    else:
        if isinstance(value, list | tuple | Mapping):
            raise ConfigError(f"{path}: expected a single value, got {value!r}")
        values = [value]
    if kind == NUMBER:
        bad = [v for v in values if not (_is_number(v) or (v is None and op in ("in", "not_in")))]
        if bad:
            raise ConfigError(f"{path}: attribute {key!r} is a number; got {bad[0]!r}")
    else:
        domain = table.domain(key)
        if domain is not None:
            known = set(domain)
            unknown = [v for v in values if v is not None and v not in known]
            if unknown and key in lenient:
                if dropped is not None:
                    dropped.setdefault(path, []).extend(unknown)
                values = [v for v in values if v is None or v in known]
                op = {"eq": "in", "ne": "not_in"}.get(op, op)  # the list may now be empty
            elif unknown:
                shown = list(domain) if len(domain) <= 30 else [*list(domain)[:30], "..."]
                hint = table.hints.get(key, f"expected one of {shown}")
                raise ConfigError(
                    f"{path}: unknown value(s) {unknown[:5]} for attribute {key!r}"
                    f"{f' ({len(unknown)} in all)' if len(unknown) > 5 else ''}; {hint}"
                )
        if kind == SET and None in values:
            raise ConfigError(f"{path}: use {{missing: true}} for an item without {key!r}")
    return key, op, (values if op in ("in", "not_in") else values[0])


def _clause(table: AttributeTable, name: str, op: str, value, rows) -> np.ndarray:
    if name in table.sets:
        return _set_clause(table.sets[name], op, value, rows)
    if name in table.numbers:
        x = table.numbers[name]
        x = x if rows is None else x[rows]
        missing = np.isnan(x)
        if op == "missing":
            return missing == value
        if op in ("eq", "ne"):
            hit = x == value
        elif op in ("in", "not_in"):
            nums = [v for v in value if v is not None]
            hit = np.isin(x, np.asarray(nums, dtype=np.float64))
            if None in value:
                hit |= missing
        else:
            with np.errstate(invalid="ignore"):
                hit = {"lt": np.less, "lte": np.less_equal, "gt": np.greater,
                       "gte": np.greater_equal}[op](x, value)
            return hit & ~missing
        return ~hit if op in ("ne", "not_in") else hit
    x = table.categories[name]
    x = x if rows is None else x[rows]
    s = pd.Series(x, dtype=object)
    missing = s.isna().to_numpy()
    if op == "missing":
        return missing == value
    if op in ("eq", "ne"):
        hit = (s == value).to_numpy() & ~missing
    else:
        hit = s.isin([v for v in value if v is not None]).to_numpy() & ~missing
        if None in value:
            hit |= missing
    return ~hit if op in ("ne", "not_in") else hit


def _set_clause(entry, op: str, value, rows) -> np.ndarray:
    matrix, names = entry
    m = matrix if rows is None else matrix[rows]
    if op == "missing":
        return (np.diff(m.indptr) == 0) == value
    wanted = [value] if op in ("eq", "ne") else list(value)
    cols = pd.Index(names).get_indexer(wanted)
    cols = cols[cols >= 0]
    hit = np.asarray(m[:, cols].sum(axis=1)).ravel() > 0 if len(cols) else np.zeros(
        m.shape[0], dtype=bool
    )
    return ~hit if op in ("ne", "not_in") else hit


__all__ = ["AttributeTable", "Predicate", "compile_predicate"]
