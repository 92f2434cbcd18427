"""What tagged values are made of: the tag key, the natively encoded types, zone keys, names.

The bottom of the codec: the type registry, the encoder and the decoder all import
from here, and this module imports nothing from stepkit.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from decimal import Decimal

TAG = "$t"
PLAIN: frozenset[type] = frozenset({str, bool, type(None)})
MAX_DEPTH: int = 64  # JSON containers a value may nest (a tagged wrapper counts as a level)
MAX_INT_DIGITS: int = 4300
INT_LIMIT = 10**MAX_INT_DIGITS
NATIVE: frozenset[type] = frozenset(
    {type(None), bool, int, float, str, list, dict, bytes, bytearray, tuple, set, frozenset}
    | {dt.datetime, dt.date, dt.time, dt.timedelta, Decimal, uuid.UUID}
)
# IANA time-zone keys: letters, digits and _ + -, at most four components separated by
# "/", 1-64 characters each: no ".", so no "..", and no leading "/".
_ZONE_KEY = re.compile(r"[A-Za-z0-9_+\-]{1,64}(?:/[A-Za-z0-9_+\-]{1,64}){0,3}")
_known_zones: set[str] = set()  # keys found as zone files (bounded by the zones that exist)


def is_native(cls: type) -> bool:
    """Whether ``cls`` is encoded natively (so it must not be registered)."""
    return cls in NATIVE


def is_zone_key(key: object) -> bool:
    """Whether ``key`` is a well-formed IANA key naming a zone file on this machine.

    The pattern is checked first, then the file is looked for on ``zoneinfo.TZPATH``
    and in the ``tzdata`` package, so ``ZoneInfo(key)`` is only ever called for a zone
    that exists: a key from a checkpoint never makes ``zoneinfo`` import a module
    named after it.
    """
    if type(key) is not str:
        return False
    if key in _known_zones:
        return True
    if _ZONE_KEY.fullmatch(key) is not None and _zone_file_exists(key):
        _known_zones.add(key)
        return True
    return False


def _zone_file_exists(key: str) -> bool:
    import zoneinfo

    if any(os.path.isfile(os.path.join(root, key)) for root in zoneinfo.TZPATH):
        return True
    try:  # the fallback zoneinfo uses; importing "tzdata" is a fixed name
        from importlib import resources

        return resources.files("tzdata").joinpath("zoneinfo", *key.split("/")).is_file()
    except (ImportError, OSError, ValueError):
        return False


def short(x: object, limit: int = 80) -> str:
    """``repr(x)`` cut to ``limit`` characters; never raises."""
    try:
        r = repr(x)
    except Exception:
        r = f"<{type(x).__name__} object>"
    return r if len(r) <= limit else r[: limit - 3] + "..."


def type_name(t: type) -> str:
    """``QualName`` for built-ins, else ``module.QualName``."""
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
