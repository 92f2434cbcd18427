"""Tagged-value JSON codec for checkpoint contexts.

JSON types pass through unchanged; other supported values become ``{"$t": tag, "v": payload}``
dicts. Decoding treats its input as untrusted: it never imports, evaluates or unpickles
anything, and creates user types only through a :class:`TypeRegistry`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from ._registry import DEFAULT_REGISTRY, TypeRegistry, _short, _type_name
from .errors import CheckpointEncodeError, InvalidCheckpointError

MAX_DEPTH: int = 64  # JSON containers a value may nest (a tagged wrapper counts as a level)
MAX_INT_DIGITS: int = 4300
_ENVELOPE_DEPTH = 16  # decoding also allows this many levels for the document around the values
_DECODE_DEPTH = MAX_DEPTH + _ENVELOPE_DEPTH
_TAG = "$t"
_INT_LIMIT = 10**MAX_INT_DIGITS
_PLAIN = frozenset({str, bool, type(None)})
_ZONE_KEY = re.compile(r"[A-Za-z0-9_+\-]{1,64}(?:/[A-Za-z0-9_+\-]{1,64}){0,3}")
_SUPPORTED = (
    "None, bool, int, float, str, list, dict, datetime, date, time, timedelta, Decimal, "
    "UUID, bytes, bytearray, tuple, set, frozenset"
)
_TOO_DEEP = f"value too deeply nested or circular (more than {MAX_DEPTH} levels)"

_Encoder = Callable[[Any, int, "TypeRegistry"], Any]


# ---------------------------------------------------------------- encoding


class _Fail(Exception):
    """Internal: an encoding failure; containers add path segments as it unwinds."""

    def __init__(self, value: object, reason: str) -> None:
        self.type_name = _type_name(type(value))
        self.reason = reason
        self.segments: list[str] = []

    def error(self, root: str) -> CheckpointEncodeError:
        path = root + "".join(reversed(self.segments))
        return CheckpointEncodeError(f"{path}: {self.reason}", path=path, type_name=self.type_name)


def _unsupported(value: object) -> _Fail:
    t = type(value)
    subclass = issubclass(t, (int, float, str, list, dict, *_ENCODERS))
    hint = " (subclasses of supported types are not converted implicitly)" if subclass else ""
    return _Fail(
        value,
        f"cannot encode a value of type {_type_name(t)} in a checkpoint{hint}. Register the type "
        "with stepkit.register_type (Enums and dataclasses work as they are; other classes pass "
        f"encode= and decode=), or convert it to a supported type ({_SUPPORTED}).",
    )


def _enc(v: Any, depth: int, reg: TypeRegistry) -> Any:
    """Encode ``v`` enclosed by ``depth`` JSON containers."""
    t = type(v)
    if t in _PLAIN:
        return v
    if t is int:
        if -_INT_LIMIT < v < _INT_LIMIT:
            return v
        raise _Fail(v, f"int with more than {MAX_INT_DIGITS} digits; convert it to str or Decimal")
    if t is float and math.isfinite(v):
        return v
    if depth >= MAX_DEPTH:
        raise _Fail(v, _TOO_DEEP)
    if t is dict:
        out: dict[str, Any] = {}
        k: Any = None
        try:
            for k, x in v.items():
                if type(k) is not str or k == _TAG:
                    break
                out[k] = x if type(x) in _PLAIN else _enc(x, depth + 1, reg)
            else:
                return out
        except _Fail as e:
            e.segments.append(f"[{_short(k)}]")
            raise
        return _enc_pairs(v, depth, reg)
    if t is list:
        return _enc_items(v, depth + 1, reg)
    encoder = _ENCODERS.get(t)
    if encoder is not None:
        return encoder(v, depth, reg)
    entry = reg._by_type.get(t)
    if entry is None:
        raise _unsupported(v)
    try:
        payload = entry.encode(v)
    except Exception as exc:
        raise _Fail(v, f"the encoder registered for {_type_name(t)} raised {exc!r}") from exc
    return {_TAG: "type", "n": entry.name, "v": _enc(payload, depth + 1, reg)}


def _enc_items(v: Any, depth: int, reg: TypeRegistry) -> list[Any]:
    out: list[Any] = []
    append = out.append
    try:
        for x in v:
            append(x if type(x) in _PLAIN else _enc(x, depth, reg))
    except _Fail as e:
        e.segments.append(f"[{len(out)}]")
        raise
    return out


def _enc_pairs(v: dict[Any, Any], depth: int, reg: TypeRegistry) -> dict[str, Any]:
    if depth + 3 > MAX_DEPTH:
        raise _Fail(v, _TOO_DEEP)
    out = []
    for k, x in v.items():
        try:
            key = _enc(k, depth + 3, reg)
        except _Fail as e:
            e.reason, e.segments = "dict key: " + e.reason, [f"[{_short(k)}]"]
            raise
        try:
            out.append([key, _enc(x, depth + 3, reg)])
        except _Fail as e:
            e.segments.append(f"[{_short(k)}]")
            raise
    return {_TAG: "dict", "v": out}


def _seq(tag: str) -> _Encoder:
    def encode(v: Any, depth: int, reg: TypeRegistry) -> Any:
        if depth + 2 > MAX_DEPTH:
            raise _Fail(v, _TOO_DEEP)
        return {_TAG: tag, "v": _enc_items(v, depth + 2, reg)}

    return encode


def _clock(tag: str) -> _Encoder:
    """Encoder for ``datetime`` / ``time``: ISO text, zone key or fixed offset, and fold."""

    def encode(v: Any, depth: int, reg: TypeRegistry) -> Any:
        out: dict[str, Any] = {_TAG: tag}
        tz = v.tzinfo
        if tz is None:
            out["v"] = v.isoformat()
        elif type(tz) is ZoneInfo and tz.key is not None and _ZONE_KEY.fullmatch(tz.key):
            out["v"], out["tz"] = v.replace(tzinfo=None).isoformat(), tz.key
        elif type(tz) is dt.timezone:
            off = tz.utcoffset(None)
            if off.microseconds:  # fromisoformat misreads "+00:00:00.000001"; keep it exact
                out["v"], out["off"] = v.replace(tzinfo=None).isoformat(), _td(off)
            else:
                out["v"] = v.isoformat()
            if tz.tzname(None) != dt.timezone(off).tzname(None):
                out["tzn"] = tz.tzname(None)
        else:
            raise _Fail(
                v,
                f"{tag} with tzinfo of type {_type_name(type(tz))} cannot be encoded; "
                "use zoneinfo.ZoneInfo (with an IANA key) or datetime.timezone",
            )
        if v.fold:
            out["fold"] = 1
        return out

    return encode


def _td(v: dt.timedelta) -> list[int]:
    return [v.days, v.seconds, v.microseconds]


def _text(tag: str, conv: Callable[[Any], str] = str) -> _Encoder:
    return lambda v, depth, reg: {_TAG: tag, "v": conv(v)}


_ENCODERS: dict[type, _Encoder] = {
    float: _text("float", lambda v: "nan" if v != v else "inf" if v > 0 else "-inf"),
    dt.datetime: _clock("datetime"),
    dt.time: _clock("time"),
    dt.date: _text("date", dt.date.isoformat),
    dt.timedelta: lambda v, d, r: {_TAG: "timedelta", "v": _td(v)},
    Decimal: _text("Decimal"),
    uuid.UUID: _text("UUID"),
    bytes: _text("bytes", lambda v: base64.b64encode(v).decode()),
    bytearray: _text("bytearray", lambda v: base64.b64encode(v).decode()),
    tuple: _seq("tuple"),
    set: _seq("set"),
    frozenset: _seq("frozenset"),
}


def is_native(cls: type) -> bool:
    """Whether ``cls`` is encoded natively (so it must not be registered)."""
    return cls in _ENCODERS or cls in _PLAIN or cls in (int, float, list, dict)


def to_json(value: Any, *, path: str = "context", registry: TypeRegistry | None = None) -> Any:
    """Encode ``value`` to JSON-ready data; ``path`` prefixes error messages."""
    try:
        return _enc(value, 0, DEFAULT_REGISTRY if registry is None else registry)
    except _Fail as e:
        raise e.error(path) from e.__cause__


def encode_context(
    context: Mapping[str, Any], *, registry: TypeRegistry | None = None
) -> dict[str, Any]:
    """Encode a context mapping key by key; keys must be ``str`` and not ``'$t'``."""
    reg = DEFAULT_REGISTRY if registry is None else registry
    out: dict[str, Any] = {}
    for key, value in context.items():
        if type(key) is not str or key == _TAG:
            raise CheckpointEncodeError(
                f"context[{_short(key)}]: context keys must be str other than '$t', got "
                f"{_type_name(type(key))}; convert the key to str",
                path=f"context[{_short(key)}]",
                type_name=_type_name(type(key)),
            )
        try:
            out[key] = value if type(value) in _PLAIN else _enc(value, 0, reg)
        except _Fail as e:
            raise e.error(f"context[{_short(key)}]") from e.__cause__
    return out


_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(obj: Any) -> str:
    """Compact JSON text of JSON-ready data (from :func:`to_json` / :func:`encode_context`)."""
    return _JSON_ENCODER.encode(obj)


# ---------------------------------------------------------------- decoding


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
