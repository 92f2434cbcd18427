"""Decoding tagged-value JSON: untrusted input in, values or InvalidCheckpointError out.

The inverse of :mod:`stepkit.checkpoints._encode`. It never imports, evaluates or unpickles
anything, creates user types only through a :class:`TypeRegistry`, and bounds
depth, integer size and time before parsing.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from stepkit.checkpoints._encode import (
    _DECODE_DEPTH,
    _INT_LIMIT,
    _PLAIN,
    _TAG,
    _ZONE_KEY,
    MAX_INT_DIGITS,
)
from stepkit.checkpoints._registry import DEFAULT_REGISTRY, TypeRegistry, _short, _type_name
from stepkit.errors import InvalidCheckpointError


def _str(x: Any, what: str = "'v'") -> str:
    if type(x) is not str:
        raise TypeError(f"{what} must be a string, got {type(x).__name__}")
    return x


def _list(x: Any) -> list[Any]:
    if type(x) is not list:
        raise TypeError(f"'v' must be a list, got {type(x).__name__}")
    return x


def _zone(key: Any) -> ZoneInfo:
    if type(key) is not str or not _ZONE_KEY.fullmatch(key):
        raise ValueError(f"'tz' is not a time zone key: {_short(key)}")
    return ZoneInfo(key)


def _d_clock(parse: Callable[[str], Any]) -> Callable[[dict[str, Any], TypeRegistry], Any]:
    def decode(d: dict[str, Any], reg: TypeRegistry) -> Any:
        value = parse(_str(d["v"]))
        if "tz" in d or "off" in d:
            if value.tzinfo is not None or ("tz" in d and ("off" in d or "tzn" in d)):
                raise ValueError("'tz' or 'off' needs a local time without an offset, and no 'tzn'")
            tz = _zone(d["tz"]) if "tz" in d else dt.timezone(_timedelta(d["off"]))
            value = value.replace(tzinfo=tz)
        if "tzn" in d:
            if type(value.tzinfo) is not dt.timezone:
                raise ValueError("'tzn' needs a fixed offset")
            value = value.replace(tzinfo=dt.timezone(value.utcoffset(), _str(d["tzn"], "'tzn'")))
        fold = d.get("fold", 0)
        if type(fold) is not int or fold not in (0, 1):
            raise ValueError(f"'fold' must be 0 or 1, got {_short(fold)}")
        return value.replace(fold=fold) if fold else value

    return decode


def _d_float(d: dict[str, Any], reg: TypeRegistry) -> float:
    if d["v"] not in ("nan", "inf", "-inf"):
        raise ValueError("'v' must be 'nan', 'inf' or '-inf'")
    return float(d["v"])  # a fresh NaN each time, so sets of NaNs keep their size


def _timedelta(v: Any) -> dt.timedelta:
    if type(v) is not list or len(v) != 3 or any(type(x) is not int for x in v):
        raise ValueError("a timedelta must be [days, seconds, microseconds] ints")
    return dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2])


def _d_dict(d: dict[str, Any], reg: TypeRegistry) -> dict[Any, Any]:
    pairs = _list(d["v"])
    if any(type(p) is not list or len(p) != 2 for p in pairs):
        raise ValueError("'v' must be a list of [key, value] pairs")
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate keys")
    return out


def _d_type(d: dict[str, Any], reg: TypeRegistry) -> Any:
    name = _str(d["n"], "'n'")
    entry = reg._by_name.get(name)
    if entry is None:
        raise InvalidCheckpointError(
            f"unknown registered type name {_short(name)}; register the type with "
            "stepkit.register_type before decoding"
        )
    try:
        return entry.decode(d["v"])
    except Exception as exc:
        raise InvalidCheckpointError(
            f"decoding registered type {_short(name)} failed: {_short(exc, 200)}"
        ) from exc


_V = frozenset({_TAG, "v"})
_CLOCK_KEYS = _V | {"tz", "off", "tzn", "fold"}
_DECODERS: dict[str, tuple[frozenset[str], Callable[[dict[str, Any], TypeRegistry], Any]]] = {
    "float": (_V, _d_float),
    "datetime": (_CLOCK_KEYS, _d_clock(dt.datetime.fromisoformat)),
    "time": (_CLOCK_KEYS, _d_clock(dt.time.fromisoformat)),
    "date": (_V, lambda d, r: dt.date.fromisoformat(_str(d["v"]))),
    "timedelta": (_V, lambda d, r: _timedelta(d["v"])),
    "Decimal": (_V, lambda d, r: Decimal(_str(d["v"]))),
    "UUID": (_V, lambda d, r: uuid.UUID(_str(d["v"]))),
    "bytes": (_V, lambda d, r: base64.b64decode(_str(d["v"]), validate=True)),
    "bytearray": (_V, lambda d, r: bytearray(base64.b64decode(_str(d["v"]), validate=True))),
    "tuple": (_V, lambda d, r: tuple(_list(d["v"]))),
    "set": (_V, lambda d, r: set(_list(d["v"]))),
    "frozenset": (_V, lambda d, r: frozenset(_list(d["v"]))),
    "dict": (_V, _d_dict),
    "type": (_V | {"n"}, _d_type),
}


def _decode_tag(d: dict[str, Any], reg: TypeRegistry) -> Any:
    """Decode a dict holding ``'$t'`` whose payload is already decoded."""
    tag = d[_TAG]
    spec = _DECODERS.get(tag) if type(tag) is str else None
    if spec is None:
        raise InvalidCheckpointError(f"unknown tag {_short(tag)} (a dict with a '$t' key)")
    keys, decode = spec
    if "v" not in d or not keys.issuperset(d) or (tag == "type" and "n" not in d):
        raise InvalidCheckpointError(
            f"malformed {tag!r} tagged value: keys must be {sorted(keys)}, got {_short(list(d))}"
        )
    try:
        return decode(d, reg)
    except InvalidCheckpointError:
        raise
    except Exception as exc:  # bad ISO text, base64, zone key, unhashable member, ...
        raise InvalidCheckpointError(f"malformed {tag!r} tagged value: {str(exc)[:200]}") from exc


def _dec(x: Any, depth: int, reg: TypeRegistry) -> Any:
    t = type(x)
    if t in _PLAIN or (t is int and -_INT_LIMIT < x < _INT_LIMIT):
        return x
    if t is float and math.isfinite(x):
        return x
    if t is int or t is float:
        raise InvalidCheckpointError(f"int too large or float not finite: {_short(x)}")
    if depth >= _DECODE_DEPTH:
        raise InvalidCheckpointError(f"value nested deeper than {_DECODE_DEPTH} levels")
    if t is list:
        return [_dec(i, depth + 1, reg) for i in x]
    if t is dict:
        if any(type(k) is not str for k in x):
            raise InvalidCheckpointError("JSON object keys must be strings")
        out = {k: _dec(i, depth + 1, reg) for k, i in x.items()}
        return _decode_tag(out, reg) if _TAG in out else out
    raise InvalidCheckpointError(f"not JSON data: {_type_name(t)}")


def from_json(data: Any, *, registry: TypeRegistry | None = None) -> Any:
    """Decode already-parsed JSON data produced by :func:`to_json`."""
    return _dec(data, 0, DEFAULT_REGISTRY if registry is None else registry)


_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'"[]{}')
_QUOTED = re.compile(rb'"[^"]*(?:"|\Z)')  # no escaped quotes left: linear, never fails
_DELTA = [0] * 256
_DELTA[ord("[")] = _DELTA[ord("{")] = 1
_DELTA[ord("]")] = _DELTA[ord("}")] = -1


def _too_deep(data: bytes) -> bool:
    """Whether JSON ``data`` nests deeper than the decoding limit (exact for valid JSON).

    All in C: drop escapes and everything but quotes and brackets, drop quoted text,
    then stop at the first running depth past the limit.
    """
    if data.count(b"[") + data.count(b"{") <= _DECODE_DEPTH:
        return False
    data = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    data = data.replace(b'""', b"")  # keeps the parity of quotes before every bracket
    if b'"' in data:
        data = _QUOTED.sub(b"", data)
    depths = accumulate(map(_DELTA.__getitem__, data))
    return next(filter(_DECODE_DEPTH.__lt__, depths), None) is not None


def _parse_int(s: str) -> int:
    if len(s) > MAX_INT_DIGITS and len(s.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidCheckpointError(f"integer with more than {MAX_INT_DIGITS} digits")
    return int(s)


def _reject_constant(s: str) -> Any:
    raise InvalidCheckpointError(f"JSON constant {s} is not allowed")


def loads(text: str | bytes, *, registry: TypeRegistry | None = None) -> Any:
    """Parse JSON text and decode tagged values in one pass; bad input raises only
    :class:`InvalidCheckpointError`."""
    if isinstance(text, (bytes, bytearray)):
        data = bytes(text)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidCheckpointError(f"not valid UTF-8: {exc}") from None
    elif isinstance(text, str):
        data = text.encode("utf-8", "surrogatepass")
    else:
        raise InvalidCheckpointError(f"expected JSON text, got {type(text).__name__}")
    if _too_deep(data):
        raise InvalidCheckpointError(f"JSON nested deeper than {_DECODE_DEPTH} levels")
    reg = DEFAULT_REGISTRY if registry is None else registry

    def hook(pairs: list[tuple[str, Any]]) -> Any:
        d = dict(pairs)
        if len(d) != len(pairs):
            dup = next(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
            raise InvalidCheckpointError(f"duplicate JSON object key {_short(dup)}")
        return _decode_tag(d, reg) if _TAG in d else d

    decoder = json.JSONDecoder(
        object_pairs_hook=hook, parse_int=_parse_int, parse_constant=_reject_constant
    )
    try:
        return decoder.decode(text)
    except InvalidCheckpointError:
        raise
    except RecursionError:  # unbalanced brackets, deeper than the C stack allows
        raise InvalidCheckpointError("not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError
        raise InvalidCheckpointError(f"not valid JSON: {str(exc)[:200]}") from None
