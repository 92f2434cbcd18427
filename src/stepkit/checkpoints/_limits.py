"""The limits a checkpoint must keep, and the scan that checks a JSON document against them.

The decoder applies them to untrusted input before parsing it; the encoder applies
the same checks to what it writes, so every checkpoint it hands out decodes. The
limits bound the time and the memory a decode may take (SPEC §2.4 "Limits").
"""

from __future__ import annotations

import re
from itertools import accumulate

from stepkit.checkpoints._tags import MAX_DEPTH

MAX_SIZE = 1 << 20  # characters of checkpoint text
MAX_DOCUMENT = 8 << 20  # bytes of the (decompressed) JSON document
# the document object, the context object, then a value of up to MAX_DEPTH levels
MAX_DOCUMENT_DEPTH = MAX_DEPTH + 2
MAX_CONTAINERS = 1 << 16  # JSON arrays and objects in one document (tagged values included)
MAX_VALUES = 1 << 19  # JSON values in one document: containers, members and items
# members of one set, frozenset or non-str-keyed dict that may share one hash value:
# more would let crafted ints (hash = value mod 2**61-1) make building it quadratic
MAX_SAME_HASH = 8

_STRUCTURE = b'"[]{},'
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in _STRUCTURE)
_QUOTED = re.compile(rb'"[^"]*(?:"|\Z)')  # no escaped quotes left: linear, never fails
_DELTA = [0] * 256
_DELTA[ord("[")] = _DELTA[ord("{")] = 1
_DELTA[ord("]")] = _DELTA[ord("}")] = -1


def document_problem(data: bytes) -> str | None:
    """Which limit JSON ``data`` breaks (nesting, arrays and objects, values), or ``None``.

    Exact for valid JSON, linear and all in C: cheap byte counts decide most
    documents; only those that could break a limit are scanned with their strings
    removed.
    """
    brackets = data.count(b"[") + data.count(b"{")
    if brackets <= MAX_DOCUMENT_DEPTH and len(data) < 2 * MAX_VALUES:
        return None  # too few brackets to nest or count too many; values need 2 bytes each
    shape = _structure(data)
    containers = shape.count(b"[") + shape.count(b"{")
    if containers > MAX_CONTAINERS:
        return f"{containers:,} JSON arrays and objects, more than the limit of {MAX_CONTAINERS:,}"
    values = containers + shape.count(b",")
    if values > MAX_VALUES:
        return f"about {values:,} JSON values, more than the limit of {MAX_VALUES:,}"
    if containers > MAX_DOCUMENT_DEPTH:
        depths = accumulate(map(_DELTA.__getitem__, shape.translate(None, b'",')))
        if next(filter(MAX_DOCUMENT_DEPTH.__lt__, depths), None) is not None:
            return f"JSON nested deeper than {MAX_DOCUMENT_DEPTH} levels"
    return None


def _structure(data: bytes) -> bytes:
    """The brackets and commas of JSON ``data`` outside its strings.

    Drop escapes and everything but quotes, brackets and commas, drop quoted text.
    """
    data = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    data = data.replace(b'""', b"")  # keeps the parity of quotes before every bracket
    return _QUOTED.sub(b"", data) if b'"' in data else data


def value_count(data: bytes) -> int:
    """How many JSON values (containers, members, items) JSON ``data`` holds, about."""
    shape = _structure(data)
    return shape.count(b"[") + shape.count(b"{") + shape.count(b",")
