"""Checking a config against :mod:`bench.schema`, with one message shape for every failure.

:func:`conform` takes a plain mapping (a composed config after interpolation, or what a
test or the Python API passes), checks its keys and value types strictly (``"yes"`` is
not a bool, ``True`` is not an integer), fills the defaults through OmegaConf and runs
the rules declared on each field. :func:`message_for` turns the OmegaConf errors Hydra
raises while composing into the same line. Every failure reads
``<full.key>: expected <what the field declares>, got <value>``, or
``<group>: unknown key(s) [...]; expected some of [...]``.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
    ValidationError,
)

from bench.errors import ConfigError, describe

#: what an element of a typed list is called in a message about that element
_ELEMENT_PHRASES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def conform(schema: type, raw: Mapping, *, skip: frozenset[str] = frozenset()) -> Any:
    """``raw`` checked against ``schema`` and filled with its defaults, as a schema instance.

    Keys in ``skip`` are left out (free-form nodes, checked where they are built).

    Raises:
        ConfigError: an unknown key, a value of the wrong type or one that breaks a rule.
    """
    check_types(schema, raw, "")
    typed = {k: v for k, v in raw.items() if k not in skip}
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), typed)
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(message_for(exc) or f"config: {exc}".splitlines()[0]) from None
    check_rules(obj, "")
    return obj


def check_types(schema: type, raw: object, path: str) -> None:
    """Reject unknown keys and values whose type the schema does not allow (strictly)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(describe(path or "config", "a mapping of keys", repr(raw)))
    fields = {f.name: f for f in dataclasses.fields(schema)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(unknown_keys_message(path, unknown, schema))
    hints = _hints(schema)
    for name, value in raw.items():
        _check_value(hints[name], value, _join(path, name), fields[name].metadata["expected"])


def check_rules(obj: object, path: str) -> None:
    """Run the rules declared on each field of a schema instance (nested groups too)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        where = _join(path, f.name)
        if value is not None:
            for holds, expected in f.metadata.get("rules", ()):
                if not holds(value):
                    raise ConfigError(
                        describe(where, expected or f.metadata["expected"], repr(value))
                    )
        if dataclasses.is_dataclass(value):
            check_rules(value, where)
        elif isinstance(value, dict):
            for key, sub in value.items():
                if dataclasses.is_dataclass(sub):
                    check_rules(sub, f"{where}.{key}")


def unknown_keys_message(path: str, unknown: list[str], schema: type) -> str:
    """``eval: unknown key(s) ['x']; expected some of [...]`` (the root says ``config``)."""
    allowed = sorted(f.name for f in dataclasses.fields(schema))
    if not path:
        return f"config: unknown top-level key(s) {unknown}; expected some of {allowed}"
    return f"{path}: unknown key(s) {unknown}; expected some of {allowed}"


def message_for(exc: BaseException, root: type | None = None) -> str | None:
    """The house line for an OmegaConf error against the schema, or None if it is not one.

    Hydra raises these while composing (the OmegaConf error is the ``__cause__`` of its
    own); they carry the full key and the rejected value.
    """
    from bench.schema import RunConfig

    root = root or RunConfig
    cause = exc if isinstance(exc, OmegaConfBaseException) else exc.__cause__
    key = getattr(cause, "full_key", None)
    if not isinstance(cause, OmegaConfBaseException) or not key:
        return None
    if isinstance(cause, ConfigKeyError | ConfigAttributeError):
        parent, _, name = key.rpartition(".")
        schema = _schema_at(root, parent)
        return unknown_keys_message(parent, [name], schema) if schema else None
    if isinstance(cause, ValidationError):
        element = re.fullmatch(r"(.+)\[\d+\]", key)
        f = _field_at(root, element.group(1) if element else key)
        if f is None:
            return None
        expected = f.metadata["expected"]
        if element:
            item = typing.get_args(_strip_optional(_hints_of_field(root, element.group(1))))
            expected = _ELEMENT_PHRASES.get(item[0], expected) if item else expected
        return describe(key, expected, repr(cause.value))
    return None


# ---------------------------------------------------------------------- type checks
def _check_value(hint, value, path: str, expected: str) -> None:
    if value is None and _is_optional(hint):
        return
    target = _strip_optional(hint)
    if dataclasses.is_dataclass(target):
        if not isinstance(value, Mapping):
            raise ConfigError(describe(path, expected, repr(value)))
        check_types(target, value, path)
        return
    args = typing.get_args(target)
    if typing.get_origin(target) is dict and args and dataclasses.is_dataclass(args[1]):
        if not isinstance(value, Mapping):
            raise ConfigError(describe(path, expected, repr(value)))
        for key, sub in value.items():
            _check_value(args[1], sub, f"{path}.{key}", "a mapping of keys")
        return
    if not _conforms(target, value):
        raise ConfigError(describe(path, expected, repr(value)))


def _conforms(hint, value) -> bool:
    """Strict type test: bools are not numbers, numbers are not strings."""
    if hint is Any:
        return True
    if _is_union(hint):
        return any(_conforms(a, value) for a in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        return isinstance(value, list | tuple) and all(_conforms(args[0], v) for v in value)
    if origin is dict:
        return isinstance(value, Mapping) and all(
            isinstance(k, str) and _conforms(args[1], v) for k, v in value.items()
        )
    return isinstance(value, hint)


# ---------------------------------------------------------------------- schema lookups
@cache
def _hints(schema: type) -> dict[str, object]:
    return typing.get_type_hints(schema)


def _is_union(hint) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _is_optional(hint) -> bool:
    return hint is Any or (_is_union(hint) and type(None) in typing.get_args(hint))


def _strip_optional(hint):
    if _is_union(hint):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return hint


def _walk(root: type, path: str):
    """(owning schema, field name) of a dotted path, or None outside the typed schema.

    A mapping of groups (``check.tolerance.<metric>.abs``) skips the entry's name.
    """
    schema, parts, i = root, path.split(".") if path else [], 0
    while i < len(parts):
        if parts[i] not in _hints(schema):
            return None
        if i == len(parts) - 1:
            return schema, parts[i]
        target = _strip_optional(_hints(schema)[parts[i]])
        args = typing.get_args(target)
        if dataclasses.is_dataclass(target):
            schema, i = target, i + 1
        elif typing.get_origin(target) is dict and dataclasses.is_dataclass(args[1]):
            schema, i = args[1], i + 2
        else:
            return None
    return None


def _schema_at(root: type, path: str) -> type | None:
    if not path:
        return root
    found = _walk(root, path)
    if found is None:
        return None
    target = _strip_optional(_hints(found[0])[found[1]])
    return target if dataclasses.is_dataclass(target) else None


def _field_at(root: type, path: str):
    found = _walk(root, path)
    if found is None:
        return None
    return {f.name: f for f in dataclasses.fields(found[0])}[found[1]]


def _hints_of_field(root: type, path: str):
    schema, name = _walk(root, path)
    return _hints(schema)[name]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
