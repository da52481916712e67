"""Hyperparameters read from the constructor, for models and splitters alike."""

from __future__ import annotations

import inspect


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

    def get_params(self) -> dict[str, object]:
        """The constructor's hyperparameters and their current values."""
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
