"""Encoding contexts as tagged-value JSON (decoding is in :mod:`stepkit.checkpoints._decode`).

JSON types pass through unchanged; other supported values become ``{"$t": tag, "v": payload}``
dicts; anything else is a :class:`CheckpointEncodeError` naming its key path.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import json.encoder
import math
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from stepkit.checkpoints._limits import MAX_SAME_HASH
from stepkit.checkpoints._registry import DEFAULT_REGISTRY, TypeRegistry
from stepkit.checkpoints._tags import (
    INT_LIMIT,
    MAX_DEPTH,
    MAX_INT_DIGITS,
    PLAIN,
    TAG,
    is_zone_key,
    short,
    type_name,
)
from stepkit.errors import CheckpointEncodeError

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
        self.type_name = type_name(type(value))
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
        f"cannot encode a value of type {type_name(t)} in a checkpoint{hint}. Register the type "
        "with stepkit.register_type (Enums and dataclasses work as they are; other classes pass "
        f"encode= and decode=), or convert it to a supported type ({_SUPPORTED}).",
    )


def _enc(v: Any, depth: int, reg: TypeRegistry) -> Any:
    """Encode ``v`` enclosed by ``depth`` JSON containers."""
    t = type(v)
    if t in PLAIN:
        return v
    if t is int:
        if -INT_LIMIT < v < INT_LIMIT:
            return v
        raise _Fail(v, f"int with more than {MAX_INT_DIGITS} digits; convert it to str or Decimal")
    if t is float and math.isfinite(v):
        return v
    if depth >= MAX_DEPTH:
        raise _Fail(v, _TOO_DEEP)
    if t is dict:
        return _enc_dict(v, depth, reg)
    if t is list:
        return _enc_list(v, depth + 1, reg)
    encoder = _ENCODERS.get(t)
    if encoder is not None:
        return encoder(v, depth, reg)
    entry = reg._by_type.get(t)
    if entry is None:
        raise _unsupported(v)
    try:
        payload = entry.encode(v)
    except Exception as exc:
        raise _Fail(v, f"the encoder registered for {type_name(t)} raised {exc!r}") from exc
    return {TAG: "type", "n": entry.name, "v": _enc(payload, depth + 1, reg)}


def _enc_dict(v: dict[Any, Any], depth: int, reg: TypeRegistry) -> Any:
    """A str-keyed dict as a JSON object: ``v`` itself when no value needs encoding."""
    out: dict[str, Any] | None = None
    k: Any = None
    try:
        for k, x in v.items():
            if type(k) is not str or k == TAG:
                break
            if type(x) in PLAIN:
                if out is not None:
                    out[k] = x
                continue
            encoded = _enc(x, depth + 1, reg)
            if out is not None:
                out[k] = encoded
            elif encoded is not x:  # copy on the first change only
                out = {}
                for k2, x2 in v.items():
                    if k2 == k:
                        break
                    out[k2] = x2
                out[k] = encoded
        else:
            return v if out is None else out
    except _Fail as e:
        e.segments.append(f"[{short(k)}]")
        raise
    return _enc_pairs(v, depth, reg)


def _enc_list(v: list[Any], depth: int, reg: TypeRegistry) -> list[Any]:
    """A list as a JSON array: ``v`` itself when no item needs encoding."""
    for i, x in enumerate(v):
        if type(x) not in PLAIN:
            try:
                encoded = _enc(x, depth, reg)
            except _Fail as e:
                e.segments.append(f"[{i}]")
                raise
            if encoded is not x:
                out = v[:i]
                out.append(encoded)
                out += _enc_items(v[i + 1 :], depth, reg, offset=i + 1)
                return out
    return v


def _enc_items(v: Any, depth: int, reg: TypeRegistry, offset: int = 0) -> list[Any]:
    out: list[Any] = []
    append = out.append
    try:
        for x in v:
            append(x if type(x) in PLAIN else _enc(x, depth, reg))
    except _Fail as e:
        e.segments.append(f"[{offset + len(out)}]")
        raise
    return out


def _enc_pairs(v: dict[Any, Any], depth: int, reg: TypeRegistry) -> dict[str, Any]:
    if depth + 3 > MAX_DEPTH:
        raise _Fail(v, _TOO_DEEP)
    if len(v) > MAX_SAME_HASH:
        _check_hashes(v, "keys")
    out = []
    for k, x in v.items():
        try:
            key = _enc(k, depth + 3, reg)
        except _Fail as e:
            e.reason, e.segments = "dict key: " + e.reason, [f"[{short(k)}]"]
            raise
        try:
            out.append([key, _enc(x, depth + 3, reg)])
        except _Fail as e:
            e.segments.append(f"[{short(k)}]")
            raise
    return {TAG: "dict", "v": out}


def _seq(tag: str, hashed: bool = False) -> _Encoder:
    def encode(v: Any, depth: int, reg: TypeRegistry) -> Any:
        if depth + 2 > MAX_DEPTH:
            raise _Fail(v, _TOO_DEEP)
        if hashed and len(v) > MAX_SAME_HASH:
            _check_hashes(v, "members")
        return {TAG: tag, "v": _enc_items(v, depth + 2, reg)}

    return encode


def _check_hashes(v: Any, what: str) -> None:
    """Refuse what the decoder would: more than MAX_SAME_HASH members with one hash."""
    hashes = list(map(hash, v))
    if len(set(hashes)) < len(hashes):
        same = Counter(hashes).most_common(1)[0][1]
        if same > MAX_SAME_HASH:
            raise _Fail(
                v,
                f"{same} {what} share one hash value; a checkpoint holds at most "
                f"{MAX_SAME_HASH} per set or dict (so that decoding stays fast); use a list",
            )


def _clock(tag: str) -> _Encoder:
    """Encoder for ``datetime`` / ``time``: ISO text, zone key or fixed offset, and fold."""

    def encode(v: Any, depth: int, reg: TypeRegistry) -> Any:
        out: dict[str, Any] = {TAG: tag}
        tz = v.tzinfo
        if tz is None:
            out["v"] = v.isoformat()
        elif type(tz) is ZoneInfo and is_zone_key(tz.key):
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
                f"{tag} with tzinfo of type {type_name(type(tz))} cannot be encoded; "
                "use zoneinfo.ZoneInfo (with an IANA key) or datetime.timezone",
            )
        if v.fold:
            out["fold"] = 1
        return out

    return encode


def _td(v: dt.timedelta) -> list[int]:
    return [v.days, v.seconds, v.microseconds]


def _text(tag: str, conv: Callable[[Any], str] = str) -> _Encoder:
    return lambda v, depth, reg: {TAG: tag, "v": conv(v)}


_ENCODERS: dict[type, _Encoder] = {
    float: _text("float", lambda v: "nan" if v != v else "inf" if v > 0 else "-inf"),
    dt.datetime: _clock("datetime"),
    dt.time: _clock("time"),
    dt.date: _text("date", dt.date.isoformat),
    dt.timedelta: lambda v, d, r: {TAG: "timedelta", "v": _td(v)},
    Decimal: _text("Decimal"),
    uuid.UUID: _text("UUID"),
    bytes: _text("bytes", lambda v: base64.b64encode(v).decode()),
    bytearray: _text("bytearray", lambda v: base64.b64encode(v).decode()),
    tuple: _seq("tuple"),
    set: _seq("set", hashed=True),
    frozenset: _seq("frozenset", hashed=True),
}


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
    out: dict[str, Any] | None = None if type(context) is dict else {}
    for key, value in context.items():
        if type(key) is not str or key == TAG:
            raise CheckpointEncodeError(
                f"context[{short(key)}]: context keys must be str other than '$t', got "
                f"{type_name(type(key))}; convert the key to str",
                path=f"context[{short(key)}]",
                type_name=type_name(type(key)),
            )
        if type(value) in PLAIN:
            encoded = value
        else:
            try:
                encoded = _enc(value, 0, reg)
            except _Fail as e:
                raise e.error(f"context[{short(key)}]") from e.__cause__
        if out is not None:
            out[key] = encoded
        elif encoded is not value:  # copy on the first change only
            out = {}
            for k, v in context.items():
                if k == key:
                    break
                out[k] = v
            out[key] = encoded
    return context if out is None else out  # type: ignore[return-value]


_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# The C encoder JSONEncoder.encode would build on every call, built once. No cycle markers:
# what it serialises comes from to_json / encode_context, which refuse circular values.
_make_c_encoder = getattr(json.encoder, "c_make_encoder", None)  # not in typeshed
_C_ENCODER: Callable[[Any, int], list[str]] | None = (
    None
    if _make_c_encoder is None
    else _make_c_encoder(
        None,  # no markers
        _JSON_ENCODER.default,
        json.encoder.encode_basestring,
        None,  # no indent
        ":",
        ",",
        False,  # sort_keys
        False,  # skipkeys
        False,  # allow_nan
    )
)


def dumps(obj: Any) -> str:
    """Compact JSON text of JSON-ready data (from :func:`to_json` / :func:`encode_context`)."""
    if _C_ENCODER is None:  # pragma: no cover - Pythons without the _json accelerator
        return _JSON_ENCODER.encode(obj)
    return "".join(_C_ENCODER(obj, 0))
