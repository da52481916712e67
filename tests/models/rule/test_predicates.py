"""The predicate mini-language: semantics on a hand-made table, and its error messages."""

import numpy as np
import pytest
import scipy.sparse as sp

from bench.errors import ConfigError
from bench.models.rule.predicates import AttributeTable, compile_predicate


@pytest.fixture
def table():
    return AttributeTable(
        n=4,
        numbers={"activity": np.array([0.0, 3, 10, np.nan])},
        categories={"band": np.array(["none", "light", "heavy", None], dtype=object),
                    "gender": np.array(["F", "M", "F", None], dtype=object)},
        sets={"genre": (sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 1], [0, 0]])),
                        ("Comedy", "Drama"))},
        domains={"band": ("none", "light", "heavy"), "gender": ("F", "M")},
        unavailable={"age": "no demographics here"},
    )


def mask(spec, table):
    return compile_predicate(spec, table, "p").mask(table).tolist()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, [True, True, True, True]),
        ({"gender": "F"}, [True, False, True, False]),
        ({"band": ["light", "heavy"]}, [False, True, True, False]),
        ({"gender": None}, [False, False, False, True]),
        ({"gender": {"ne": "F"}}, [False, True, False, True]),  # missing satisfies ne
        ({"activity": {"lt": 5}}, [True, True, False, False]),  # NaN never compares
        ({"activity": {"gte": 3, "lt": 10}}, [False, True, False, False]),
        ({"activity": {"missing": True}}, [False, False, False, True]),
        ({"activity": [0, 10]}, [True, False, True, False]),
        ({"gender": "F", "activity": {"gt": 1}}, [False, False, True, False]),  # AND
        ({"any": [{"gender": "M"}, {"activity": {"gt": 5}}]}, [False, True, True, False]),
        ({"not": {"gender": "F"}}, [False, True, False, True]),
        ({"genre": "Comedy"}, [True, False, True, False]),  # the item has the genre
        ({"genre": ["Comedy", "Drama"]}, [True, True, True, False]),  # any of them
        ({"genre": {"not_in": ["Drama"]}}, [True, False, False, True]),  # none of them
        ({"genre": {"missing": True}}, [False, False, False, True]),
    ],
)
def test_semantics(table, spec, expected):
    assert mask(spec, table) == expected


def test_rows_subset(table):
    p = compile_predicate({"gender": "F"}, table, "p")
    assert p.mask(table, np.array([2, 2, 1])).tolist() == [True, True, False]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"colour": "red"}, r"p\.colour: unknown attribute 'colour'; expected one of "
                            r"\['activity', 'band', 'gender', 'genre'\]"),
        ({"age": {"lt": 18}}, r"p\.age: attribute 'age' is not available: no demographics"),
        ({"activity": {"below": 5}}, r"p\.activity: unknown operator 'below'; expected one of "
                                     r"\['eq', 'ne', 'in', 'not_in', 'lt', 'lte', 'gt', 'gte'"),
        ({"gender": {"lt": "M"}}, r"operator 'lt' does not apply to category attribute 'gender';"
                                  r" expected one of \['eq', 'ne', 'in', 'not_in', 'missing'\]"),
        ({"genre": {"gte": "Comedy"}}, r"does not apply to set attribute 'genre'"),
        ({"band": "meduim"}, r"p\.band\.eq: unknown value\(s\) \['meduim'\] for attribute "
                             r"'band'; expected one of \['none', 'light', 'heavy'\]"),
        ({"genre": ["Comdy"]}, r"unknown value\(s\) \['Comdy'\] for attribute 'genre'"),
        ({"activity": {"lt": "five"}}, r"p\.activity\.lt: attribute 'activity' is a number; "
                                       r"got 'five'"),
        ({"activity": {"in": 3}}, r"p\.activity\.in: expected a list of values, got 3"),
        ({"activity": {}}, r"p\.activity: expected at least one operator"),
        ({"gender": {"missing": "yes"}}, r"expected true or false, got 'yes'"),
        ({"any": []}, r"p\.any: expected a non-empty list of predicates"),
        ({"not": {"nope": 1}}, r"p\.not\.nope: unknown attribute 'nope'"),
        ("gender == 'F'", r"p: expected a predicate mapping"),
    ],
)
def test_bad_predicates_name_the_key(table, spec, message):
    with pytest.raises(ConfigError, match=message):
        compile_predicate(spec, table, "p")


def test_lenient_values_are_dropped_and_recorded(table):
    dropped = {}
    p = compile_predicate({"gender": "X"}, table, "p", lenient=("gender",), dropped=dropped)
    assert p.mask(table).tolist() == [False, False, False, False]
    assert dropped == {"p.gender.eq": ["X"]}
