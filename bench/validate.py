"""Small checkers for constructor and function parameters.

Library code (models, splitters, loaders, statistics) checks its own parameters with
these and knows nothing of config keys: each checker names the parameter only and
raises :class:`~bench.errors.ParameterError`, whose message reads
``<name>: expected <...>, got <value>``. Whoever knows where the value came from adds
the path (:func:`bench.config.build` turns ``factors: ...`` into
``models.cf_als.factors: ...``).

A bool is never accepted as a number (``True`` is not 1 here), and each checker
returns the value, converted to a plain ``int``/``float``, so it can be used inline.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

from bench.errors import ParameterError


def is_integer(value: object) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A real number (Python or NumPy), not a bool; may be inf or nan."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(name: str, value: object, minimum: int | None = None, *,
            maximum: int | None = None, expected: str | None = None) -> int:
    """An integer in ``[minimum, maximum]`` (either bound optional)."""
    ok = is_integer(value) and (minimum is None or value >= minimum) and (
        maximum is None or value <= maximum
    )
    if not ok:
        raise ParameterError(name, expected or _integer_phrase(minimum, maximum), value)
    return int(value)


def positive_integer(name: str, value: object) -> int:
    """An integer >= 1, described as "a positive integer"."""
    return integer(name, value, 1, expected="a positive integer")


def optional_integer(name: str, value: object, minimum: int | None = None, *,
                     expected: str | None = None) -> int | None:
    """None, or an integer >= ``minimum``."""
    if value is None:
        return None
    return integer(name, value, minimum,
                   expected=expected or f"{_integer_phrase(minimum, None)} or null")


def number(name: str, value: object, *, minimum: float | None = None,
           above: float | None = None, maximum: float | None = None,
           expected: str | None = None) -> float:
    """A finite number ``>= minimum`` / ``> above`` / ``<= maximum`` (bounds optional)."""
    ok = is_number(value) and math.isfinite(value) and (
        minimum is None or value >= minimum) and (above is None or value > above) and (
        maximum is None or value <= maximum)
    if not ok:
        raise ParameterError(name, expected or _number_phrase(minimum, above, maximum), value)
    return float(value)


def positive_number(name: str, value: object, *, expected: str | None = None) -> float:
    """A finite number > 0."""
    return number(name, value, above=0, expected=expected)


def fraction(name: str, value: object, *, expected: str = "a number in (0, 1)") -> float:
    """A number strictly between 0 and 1."""
    if not (is_number(value) and math.isfinite(value) and 0 < value < 1):
        raise ParameterError(name, expected, value)
    return float(value)


def boolean(name: str, value: object) -> bool:
    """``True`` or ``False`` (not 1, not ``"yes"``)."""
    if not isinstance(value, bool):
        raise ParameterError(name, "true or false", value)
    return value


def one_of(name: str, value: object, choices: Iterable[object]) -> object:
    """One of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise ParameterError(name, f"one of {choices}", value)
    return value


def seed(name: str, value: object) -> int:
    """A seed for ``numpy.random.default_rng``: a non-negative integer."""
    return integer(name, value, 0, expected="a non-negative integer")


def _integer_phrase(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"an integer in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"an integer >= {minimum}"
    if maximum is not None:
        return f"an integer <= {maximum}"
    return "an integer"


def _number_phrase(minimum, above, maximum) -> str:
    parts = [f">= {minimum:g}" if minimum is not None else None,
             f"> {above:g}" if above is not None else None,
             f"<= {maximum:g}" if maximum is not None else None]
    bounds = " and ".join(p for p in parts if p)
    return f"a number {bounds}" if bounds else "a number"
