"""Where a decorated call's event values come from: the extractors users write, compiled once.

A `str` names an argument of the call, `argument(name, transform)` transforms one, and any other
callable is given the return value. Arguments are found by position without binding the
signature on every call: that is most of a decorated call's cost.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Argument:
    """Extracts a value from one argument of the call, optionally transformed."""

    name: str
    transform: Callable[[Any], object] | None = None


def argument(name: str, transform: Callable[[Any], object] | None = None) -> Argument:
    """The call's argument `name`, passed through `transform` when given (e.g. a payload's model)."""
    return Argument(name, transform)


#: A str names an argument; an Argument transforms one; any other callable gets the return value.
Extractor = str | Argument | Callable[[Any], object]


class Arguments:
    """Finds named arguments in (args, kwargs) by position, without binding the signature per call."""

    def __init__(self, function: Callable[..., Any], names: set[str]) -> None:
        self._qualname = getattr(function, "__qualname__", repr(function))
        signature = inspect.signature(function)
        parameters = list(signature.parameters.values())
        self._static = isinstance(function, staticmethod)
        self._takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        self._positions: dict[str, int | None] = {}
        self._defaults: dict[str, object] = {}
        for name in names:
            parameter = signature.parameters.get(name)
            if parameter is None or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                if not self._takes_kwargs:
                    raise TypeError(f"{self._qualname}() has no argument {name!r} to extract")
                self._positions[name] = None
                continue
            positional = parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
            self._positions[name] = parameters.index(parameter) if positional else None
            self._defaults[name] = None if parameter.default is parameter.empty else parameter.default

    def get(self, name: str, instance: object, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> object:
        if name in kwargs:
            return kwargs[name]
        position = self._positions[name]
        if position is not None:
            # wrapt passes a bound call's arguments without `self`/`cls`.
            position -= 1 if instance is not None and not self._static else 0
            if 0 <= position < len(args):
                return args[position]
        return self._defaults.get(name)


@dataclass(frozen=True)
class Field:
    """One compiled extractor: a wire key and where its value comes from."""

    key: str
    argument: str | None
    transform: Callable[[Any], object] | None

    @classmethod
    def compile(cls, key: str, extractor: Extractor) -> Field:
        if isinstance(extractor, str):
            return cls(key, extractor, None)
        if isinstance(extractor, Argument):
            return cls(key, extractor.name, extractor.transform)
        if callable(extractor):
            return cls(key, None, extractor)
        raise TypeError(f"extractor for {key!r} must be an argument name, argument(...) or a callable")

    @property
    def from_result(self) -> bool:
        return self.argument is None

    def value(
        self,
        arguments: Arguments,
        instance: object,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        result: Any,
    ) -> object:
        """The extracted value; whatever the extractor raises propagates (the engine logs it)."""
        raw = result if self.argument is None else arguments.get(self.argument, instance, args, kwargs)
        return raw if self.transform is None else self.transform(raw)
