"""Hyperparameters read from the constructor, for models and splitters alike."""

from __future__ import annotations

import inspect
from collections.abc import Mapping


class HasParams:
    """``get_params()`` and ``repr`` from the keyword arguments ``__init__`` stores as-is."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = False) -> dict[str, object]:
        """The constructor's hyperparameters and their current values.

        With ``deep=True`` nested objects (children of a composite model, alone or in a
        mapping) are replaced by their own parameters under dotted keys
        (``components.cf_als.factors``), with ``<key>._target_`` naming each one's class,
        which is what a flat parameter store such as MLflow needs.
        """
        params = {name: getattr(self, name) for name in self._param_names()}
        if not deep:
            return params
        flat: dict[str, object] = {}
        for name, value in params.items():
            flat.update(_flatten(name, value))
        return flat

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _flatten(prefix: str, value: object) -> dict[str, object]:
    if isinstance(value, HasParams):
        cls = type(value)
        out: dict[str, object] = {f"{prefix}._target_": f"{cls.__module__}.{cls.__qualname__}"}
        for name, sub in value.get_params().items():
            out.update(_flatten(f"{prefix}.{name}", sub))
        return out
    if isinstance(value, Mapping) and any(isinstance(v, HasParams) for v in value.values()):
        out = {}
        for key, sub in value.items():
            out.update(_flatten(f"{prefix}.{key}", sub))
        return out
    return {prefix: value}
