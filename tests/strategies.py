"""Hypothesis strategies for checkpoint context values, and ``same`` to compare them exactly.

Importing this module registers ``Color``, ``Point`` and ``Box`` on the default registry
(names ``tests.Color``, ``tests.Point``, ``tests.Box``) so generated values can use them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import math
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from stepkit.checkpoints._registry import register_type
from stepkit.checkpoints._tags import MAX_INT_DIGITS

__all__ = ["Box", "Color", "Point", "context_values", "contexts", "json_values", "same"]


class Color(enum.Enum):
    RED = "red"
    GREEN = 2
    PAIR = (1, 2)


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int = 0


@dataclasses.dataclass
class Box:
    item: Any
    label: str = ""


register_type(Color, name="tests.Color")
register_type(Point, name="tests.Point")
register_type(Box, name="tests.Box")


def _zones() -> list[dt.tzinfo]:
    zones: list[dt.tzinfo] = []
    for key in ("UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Etc/GMT+5"):
        with contextlib.suppress(Exception):  # no tz database on this machine
            zones.append(ZoneInfo(key))
    return zones


_OFFSETS = st.timedeltas(
    min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59)
)
tzinfos: st.SearchStrategy[dt.tzinfo | None] = st.one_of(
    st.none(),
    st.sampled_from([dt.timezone.utc, *_zones()]),
    _OFFSETS.map(dt.timezone),
    st.builds(dt.timezone, _OFFSETS, st.text(max_size=6)),
)
_folds = st.integers(0, 1)
datetimes = st.builds(lambda d, f: d.replace(fold=f), st.datetimes(timezones=tzinfos), _folds)
times = st.builds(lambda t, f: t.replace(fold=f), st.times(timezones=tzinfos), _folds)
_big_ints = st.builds(  # ints of exactly MAX_INT_DIGITS digits
    lambda lead, tail: lead * 10 ** (MAX_INT_DIGITS - 1) + tail, st.integers(1, 9), st.integers(0)
)
ints = st.one_of(st.integers(), _big_ints, _big_ints.map(lambda i: -i))
_nans = st.sampled_from(["sNaN", "-sNaN7", "NaN", "-NaN12", "-0", "1E+999999", "-0.000"])
decimals = st.one_of(st.decimals(allow_nan=True, allow_infinity=True), _nans.map(Decimal))

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
_keys = st.one_of(st.text(max_size=8), st.sampled_from(["$t", "v", "n", "tz", ""]))

_hashable_scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.dates(),
    datetimes,
    times,
    st.timedeltas(),
    decimals.filter(lambda d: not d.is_snan()),  # a signaling NaN cannot be hashed
    st.uuids(),
    st.sampled_from(Color),
    st.builds(Point, st.integers(), st.integers()),
)
hashables: st.SearchStrategy[Any] = st.recursive(
    _hashable_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(tuple), st.frozensets(inner, max_size=3)
    ),
    max_leaves=6,
)


def json_values() -> st.SearchStrategy[Any]:
    """Plain JSON data (no ``'$t'`` keys): what ``to_json`` passes through unchanged."""
    return st.recursive(
        _json_scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(_keys.filter(lambda k: k != "$t"), inner, max_size=4),
        ),
        max_leaves=15,
    )


def context_values() -> st.SearchStrategy[Any]:
    """Every supported value type, nested, of bounded size."""
    scalars = st.one_of(
        _hashable_scalars, decimals, st.binary(max_size=8).map(bytearray), _json_scalars
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.lists(inner, max_size=4).map(tuple),
            st.sets(hashables, max_size=4),
            st.frozensets(hashables, max_size=4),
            st.dictionaries(_keys, inner, max_size=4),
            st.dictionaries(hashables, inner, max_size=3),
            st.builds(Box, inner, st.text(max_size=4)),
        ),
        max_leaves=15,
    )


def contexts() -> st.SearchStrategy[dict[str, Any]]:
    """A run context: ``str`` keys (never ``'$t'``) to supported values."""
    return st.dictionaries(_keys.filter(lambda k: k != "$t"), context_values(), max_size=5)


def _same_tz(a: dt.tzinfo | None, b: dt.tzinfo | None) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, ZoneInfo) and isinstance(b, ZoneInfo):
        return a.key == b.key
    if isinstance(a, dt.timezone) and isinstance(b, dt.timezone):
        return a.utcoffset(None) == b.utcoffset(None) and a.tzname(None) == b.tzname(None)
    return a is b


def same(a: Any, b: Any) -> bool:
    """True if ``a`` and ``b`` have exactly the same types and values, recursively.

    NaNs equal NaNs, ``-0.0`` differs from ``0.0``, Decimals compare by their text
    (exponent and sign included), datetimes and times compare wall clock, fold and zone.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, Decimal):
        return str(a) == str(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if isinstance(a, (dt.datetime, dt.time)):
        return (
            a.replace(tzinfo=None) == b.replace(tzinfo=None)
            and a.fold == b.fold
            and _same_tz(a.tzinfo, b.tzinfo)
        )
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return bool(a == b)
