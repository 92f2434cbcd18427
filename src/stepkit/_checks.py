"""Argument checks shared by every layer: durations, counts, ids, callables, mappings.

Each check returns the value it accepted (so a caller can check and assign in
one line) or raises :class:`~stepkit.errors.InvalidArgumentError` with a
message that names the option, shows the bad value and says what is valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

from stepkit.errors import InvalidArgumentError

__all__ = [
    "MAX_SECONDS",
    "check_callable",
    "check_count",
    "check_event",
    "check_id",
    "check_mapping",
    "check_seconds",
]

#: The longest duration stepkit accepts anywhere (ten years): beyond it, a
#: value is a bug (milliseconds passed as seconds), and ``float`` time stamps lose precision.
MAX_SECONDS = 10 * 365 * 24 * 3600.0

_T = TypeVar("_T")


def check_seconds(value: object, name: str, *, allow_zero: bool = False) -> float | None:
    """A duration in seconds: a finite real number, > 0 (or >= 0), at most :data:`MAX_SECONDS`."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
        or value > MAX_SECONDS
    ):
        kind = ">= 0" if allow_zero else "> 0"
        raise InvalidArgumentError(
            f"{name}= must be a number of seconds {kind} and at most {MAX_SECONDS:.0f} "
            f"(ten years), or None; got {value!r}"
        )
    return float(value)


def check_count(value: object, name: str, *, minimum: int = 0) -> int:
    """A whole number >= ``minimum`` (``bool`` is refused: ``True`` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name}= must be an int >= {minimum}, got {value!r}")
    return value


def check_id(value: object, name: str) -> str:
    """An identifier (run id, owner): a non-empty str of valid Unicode without NUL."""
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{name}= must be a non-empty str, got {value!r}")
    if "\x00" in value:
        raise InvalidArgumentError(f"{name}= must not contain NUL characters: {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"{name}= must be valid Unicode text: {value!r}") from None
    return value


def check_callable(value: _T, name: str) -> _T:
    """A callable, or ``None``."""
    if value is not None and not callable(value):
        raise InvalidArgumentError(f"{name}= must be a callable, got {value!r}")
    return value


def check_event(value: _T, name: str) -> _T:
    """A ``threading.Event``-like object (anything with ``is_set()``), or ``None``."""
    if value is not None and not callable(getattr(value, "is_set", None)):
        raise InvalidArgumentError(
            f"{name}= must be a threading.Event or an object with is_set(), got {value!r}"
        )
    return value


def check_mapping(value: object, what: str) -> Mapping[str, Any] | None:
    """A mapping (or ``None``): the shape of a run's input and of override data."""
    if value is not None and not isinstance(value, Mapping):
        raise InvalidArgumentError(f"{what} must be a mapping or None, got {type(value).__name__}")
    return value
