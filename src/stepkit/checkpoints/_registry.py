"""The registry of user types that checkpoints may hold (enums, dataclasses, your own).

A registered name is only a key in this registry: decoding looks names up here
and never imports anything.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar, overload

from stepkit.checkpoints._tags import is_native, short
from stepkit.errors import InvalidArgumentError

_C = TypeVar("_C", bound=type)


class _Entry(NamedTuple):
    cls: type
    name: str
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


class TypeRegistry:
    """Registered user types: the only objects decoding may create besides built-ins."""

    def __init__(self) -> None:
        self._by_type: dict[type, _Entry] = {}
        self._by_name: dict[str, _Entry] = {}

    def register(
        self,
        cls: type,
        *,
        name: str | None = None,
        encode: Callable[[Any], Any] | None = None,
        decode: Callable[[Any], Any] | None = None,
    ) -> None:
        """Register ``cls`` under ``name`` (default ``module.QualName``, only a lookup key)."""
        if not isinstance(cls, type):
            raise InvalidArgumentError(f"register_type() expects a class, got {short(cls)}")
        if is_native(cls):
            raise InvalidArgumentError(
                f"{cls.__qualname__} is supported natively; do not register it"
            )
        name = f"{cls.__module__}.{cls.__qualname__}" if name is None else name
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(
                f"register_type(name=...) must be a non-empty str, got {name!r}"
            )
        if (encode is not None and not callable(encode)) or (
            decode is not None and not callable(decode)
        ):
            raise InvalidArgumentError("register_type(encode=..., decode=...) must be callables")
        if issubclass(cls, enum.Enum):
            encode, decode = encode or attrgetter("value"), decode or cls
        elif dataclasses.is_dataclass(cls):
            fields = tuple(f.name for f in dataclasses.fields(cls) if f.init)
            encode = encode or (lambda obj: {f: getattr(obj, f) for f in fields})
            decode = decode or (lambda data: cls(**data))
        elif encode is None or decode is None:
            raise InvalidArgumentError(
                f"register_type({cls.__qualname__}): a class that is neither an Enum nor a "
                "dataclass needs both encode= and decode= callables"
            )
        taken = self._by_name.get(name)
        if taken is not None and taken.cls is not cls:
            raise InvalidArgumentError(
                f"type name {name!r} is already registered for {taken.cls!r}"
            )
        known = self._by_type.get(cls)
        if known is not None:
            if known.name != name:
                raise InvalidArgumentError(f"{cls!r} is already registered as {known.name!r}")
            return
        self._by_type[cls] = self._by_name[name] = _Entry(cls, name, encode, decode)

    def copy(self) -> TypeRegistry:
        """An independent registry holding the same registrations."""
        new = TypeRegistry()
        new._by_type, new._by_name = dict(self._by_type), dict(self._by_name)
        return new


DEFAULT_REGISTRY: TypeRegistry = TypeRegistry()


@overload
def register_type(
    cls: _C,
    *,
    name: str | None = ...,
    encode: Callable[[Any], Any] | None = ...,
    decode: Callable[[Any], Any] | None = ...,
    registry: TypeRegistry | None = ...,
) -> _C: ...
@overload
def register_type(
    cls: None = ...,
    *,
    name: str | None = ...,
    encode: Callable[[Any], Any] | None = ...,
    decode: Callable[[Any], Any] | None = ...,
    registry: TypeRegistry | None = ...,
) -> Callable[[_C], _C]: ...
def register_type(
    cls: _C | None = None,
    *,
    name: str | None = None,
    encode: Callable[[Any], Any] | None = None,
    decode: Callable[[Any], Any] | None = None,
    registry: TypeRegistry | None = None,
) -> _C | Callable[[_C], _C]:
    """Register a type for checkpoints: ``register_type(C)``, ``@register_type(name=...)``."""
    reg = DEFAULT_REGISTRY if registry is None else registry

    def apply(c: _C) -> _C:
        reg.register(c, name=name, encode=encode, decode=decode)
        return c

    return apply if cls is None else apply(cls)
