"""Decoding tagged-value JSON: untrusted input in, values or InvalidCheckpointError out.

The inverse of :mod:`stepkit.checkpoints._encode`, and no more: what the encoder
never writes (lone surrogates, infinite floats, duplicate set members) is refused.
It never imports, evaluates or unpickles anything, creates user types only through a
:class:`TypeRegistry`, and checks the limits of :mod:`~stepkit.checkpoints._limits`
(depth, size, number of values, integer digits, hash collisions) before or while parsing.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Callable, Hashable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from stepkit.checkpoints._limits import MAX_SAME_HASH, document_problem
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
    if not is_zone_key(key):
        raise ValueError(f"'tz' is not the key of a time zone known here: {short(key)}")
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
            raise ValueError(f"'fold' must be 0 or 1, got {short(fold)}")
        return value.replace(fold=fold) if fold else value

    return decode


def _d_float(d: dict[str, Any], reg: TypeRegistry) -> float:
    v = d["v"]
    if type(v) is not str or v not in ("nan", "inf", "-inf"):
        raise ValueError("'v' must be 'nan', 'inf' or '-inf'")
    return float(v)  # a fresh NaN each time, so sets of NaNs keep their size


def _timedelta(v: Any) -> dt.timedelta:
    if type(v) is not list or len(v) != 3 or any(type(x) is not int for x in v):
        raise ValueError("a timedelta must be [days, seconds, microseconds] ints")
    return dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2])


def check_hashes(members: list[Any]) -> None:
    """Refuse members of which more than MAX_SAME_HASH share one hash value.

    Python's int, float, Decimal and UUID hashes are the value modulo 2**61-1, so
    crafted members could all collide and make building the set or dict quadratic.
    The hashes are themselves ints below that modulus, whose own hashes are
    themselves: counting them cannot be flooded.
    """
    if len(members) > MAX_SAME_HASH:
        hashes = list(map(hash, members))  # TypeError for an unhashable member
        if len(set(hashes)) < len(hashes):
            same = Counter(hashes).most_common(1)[0][1]
            if same > MAX_SAME_HASH:
                raise ValueError(
                    f"{same} members share one hash value, more than the limit of "
                    f"{MAX_SAME_HASH} (values crafted to collide)"
                )


def _d_set(kind: Callable[[list[Hashable]], Any]) -> Callable[[dict[str, Any], TypeRegistry], Any]:
    def decode(d: dict[str, Any], reg: TypeRegistry) -> Any:
        members = _list(d["v"])
        check_hashes(members)
        out = kind(members)
        if len(out) != len(members):
            raise ValueError("duplicate members")
        return out

    return decode


def _d_dict(d: dict[str, Any], reg: TypeRegistry) -> dict[Any, Any]:
    pairs = _list(d["v"])
    if any(type(p) is not list or len(p) != 2 for p in pairs):
        raise ValueError("'v' must be a list of [key, value] pairs")
    check_hashes([p[0] for p in pairs])
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate keys")
    return out


def _d_type(d: dict[str, Any], reg: TypeRegistry) -> Any:
    name = _str(d["n"], "'n'")
    entry = reg._by_name.get(name)
    if entry is None:
        raise InvalidCheckpointError(
            f"unknown registered type name {short(name)}; register the type with "
            "stepkit.register_type before decoding"
        )
    try:
        return entry.decode(d["v"])
    except Exception as exc:
        raise InvalidCheckpointError(
            f"decoding registered type {short(name)} failed: {short(exc, 200)}"
        ) from exc


_V = frozenset({TAG, "v"})
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
    "set": (_V, _d_set(set)),
    "frozenset": (_V, _d_set(frozenset)),
    "dict": (_V, _d_dict),
    "type": (_V | {"n"}, _d_type),
}


def _decode_tag(d: dict[str, Any], reg: TypeRegistry) -> Any:
    """Decode a dict holding ``'$t'`` whose payload is already decoded."""
    tag = d[TAG]
    spec = _DECODERS.get(tag) if type(tag) is str else None
    if spec is None:
        raise InvalidCheckpointError(f"unknown tag {short(tag)} (a dict with a '$t' key)")
    keys, decode = spec
    if "v" not in d or not keys.issuperset(d) or (tag == "type" and "n" not in d):
        raise InvalidCheckpointError(
            f"malformed {tag!r} tagged value: keys must be {sorted(keys)}, got {short(list(d))}"
        )
    try:
        return decode(d, reg)
    except InvalidCheckpointError:
        raise
    except Exception as exc:  # bad ISO text, base64, zone key, unhashable member, ...
        raise InvalidCheckpointError(f"malformed {tag!r} tagged value: {str(exc)[:200]}") from exc


def _dec(x: Any, depth: int, reg: TypeRegistry) -> Any:
    t = type(x)
    if t is str:
        if _SURROGATE.search(x):
            raise InvalidCheckpointError("a string holds a lone surrogate, which is not UTF-8")
        return x
    if t in PLAIN or (t is int and -INT_LIMIT < x < INT_LIMIT):
        return x
    if t is float and math.isfinite(x):
        return x
    if t is int or t is float:
        raise InvalidCheckpointError(f"int too large or float not finite: {short(x)}")
    if depth >= MAX_DEPTH:
        raise InvalidCheckpointError(f"value nested deeper than {MAX_DEPTH} levels")
    if t is list:
        return [_dec(i, depth + 1, reg) for i in x]
    if t is dict:
        if any(type(k) is not str for k in x):
            raise InvalidCheckpointError("JSON object keys must be strings")
        out = {_dec(k, depth, reg): _dec(i, depth + 1, reg) for k, i in x.items()}
        return _decode_tag(out, reg) if TAG in out else out
    raise InvalidCheckpointError(f"not JSON data: {type_name(t)}")


def from_json(data: Any, *, registry: TypeRegistry | None = None) -> Any:
    """Decode one value from already-parsed JSON data produced by :func:`to_json`."""
    return _dec(data, 0, DEFAULT_REGISTRY if registry is None else registry)


_SURROGATE = re.compile("[\ud800-\udfff]")
# JSON escapes of a lone surrogate (escaped backslashes are removed before searching)
_LONE_ESCAPE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def _parse_int(s: str) -> int:
    if len(s) > MAX_INT_DIGITS and len(s.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidCheckpointError(f"integer with more than {MAX_INT_DIGITS} digits")
    return int(s)


def _parse_finite(s: str) -> float:
    """A JSON number with a fraction or exponent; ``1e999`` would be infinity."""
    value = float(s)
    if not math.isfinite(value):
        raise InvalidCheckpointError(f"number {short(s)} is too large for a float")
    return value


def _reject_constant(s: str) -> Any:
    raise InvalidCheckpointError(f"JSON constant {s} is not allowed")


_JSON_DECODERS: dict[int, tuple[TypeRegistry, json.JSONDecoder]] = {}


def _decoder(reg: TypeRegistry) -> json.JSONDecoder:
    """The JSON decoder for ``reg``, made once: building one per checkpoint cost ~2 us."""
    found = _JSON_DECODERS.get(id(reg))
    if found is not None and found[0] is reg:
        return found[1]

    def hook(pairs: list[tuple[str, Any]]) -> Any:
        d = dict(pairs)
        if len(d) != len(pairs):
            dup = next(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
            raise InvalidCheckpointError(f"duplicate JSON object key {short(dup)}")
        return _decode_tag(d, reg) if TAG in d else d

    decoder = json.JSONDecoder(  # stateless between calls, so shared by threads
        object_pairs_hook=hook,
        parse_int=_parse_int,
        parse_float=_parse_finite,
        parse_constant=_reject_constant,
    )
    if len(_JSON_DECODERS) > 64:  # registries are few; never let a cache grow without bound
        _JSON_DECODERS.clear()
    _JSON_DECODERS[id(reg)] = (reg, decoder)
    return decoder


def loads(text: str | bytes, *, registry: TypeRegistry | None = None) -> Any:
    """Parse JSON text and decode tagged values in one pass; bad input raises only
    :class:`InvalidCheckpointError`."""
    if isinstance(text, (bytes, bytearray)):
        data = bytes(text)
    elif isinstance(text, str):
        data = text.encode("utf-8", "surrogatepass")
    else:
        raise InvalidCheckpointError(f"expected JSON text, got {type(text).__name__}")
    problem = document_problem(data)
    if problem is not None:
        raise InvalidCheckpointError(f"the document holds {problem}")
    if b"\\u" in data and _LONE_ESCAPE.search(data.replace(b"\\\\", b"")):
        raise InvalidCheckpointError("a string holds a lone surrogate, which is not UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidCheckpointError(f"not valid UTF-8: {exc}") from None
    decoder = _decoder(DEFAULT_REGISTRY if registry is None else registry)
    try:
        return decoder.decode(text)
    except InvalidCheckpointError:
        raise
    except RecursionError:  # unbalanced brackets, deeper than the C stack allows
        raise InvalidCheckpointError("not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError
        raise InvalidCheckpointError(f"not valid JSON: {str(exc)[:200]}") from None
