"""What the command line prints: data made safe for a terminal, JSON values, tables, times.

Everything shown comes from checkpoints and stores, which are untrusted: control
characters (C0, DEL, C1), bidirectional overrides and other invisible format
characters are escaped before they reach the terminal, so a run id holding
``\\x1b[2J`` prints as that text instead of clearing the screen.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["dump_json", "escape", "escape_lines", "jsonable", "table", "when"]

# C0 and C1 controls, DEL, the Arabic letter mark, zero-width and bidi marks,
# line/paragraph separators, bidi embeddings/overrides/isolates, word joiners, BOM.
_FORMAT = r"\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
_UNSAFE = re.compile(rf"[\x00-\x1f{_FORMAT}]")
_UNSAFE_IN_JSON = re.compile(rf"[{_FORMAT}]")  # json.dumps escapes C0 itself
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _terminal_escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape(text: str) -> str:
    """``text`` on one line, with every control or invisible format character escaped."""
    return _UNSAFE.sub(_terminal_escape, text)


def escape_lines(text: str) -> str:
    """Like :func:`escape`, but keeping line breaks (for multi-line output)."""
    return "\n".join(escape(line) for line in text.split("\n"))


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _key(key: Any) -> str:
    value = jsonable(key)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: the form a non-Python reader of ``inspect --json`` wants.

    datetimes, dates and times become ISO 8601 text, a timedelta its seconds, a
    Decimal or UUID its text, bytes base64 text, tuples lists, sets sorted lists,
    non-finite floats ``"NaN"``/``"Infinity"``/``"-Infinity"``, dict keys text.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, Mapping):
        return {_key(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=_sort_key)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return str(value)  # a registered type: its own text form


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def dump_json(doc: Any) -> str:
    """Indented, strict JSON (no NaN), with unsafe characters as ``\\u`` escapes."""
    text = json.dumps(jsonable(doc), indent=2, ensure_ascii=False, allow_nan=False)
    # What json leaves raw (DEL, C1, format characters) can only stand inside
    # strings, where a \\u escape means the same character.
    return _UNSAFE_IN_JSON.sub(_json_escape, text)


def table(rows: list[tuple[str, ...]]) -> str:
    """Left-aligned columns; cells are escaped first so the widths hold."""
    cells = [tuple(escape(c) for c in row) for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def when(ts: float | None) -> str:
    """A store timestamp as UTC ``YYYY-MM-DD HH:MM:SS``, or ``-``."""
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
