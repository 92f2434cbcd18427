"""How :class:`~stepkit.stores.RedisStore` writes records into Redis and reads them back.

Every field is JSON-encoded by Python (floats round-trip exactly); Lua scripts
compare and store the text, never re-encode it. Malformed contents are a StoreError.
"""

from __future__ import annotations

import builtins
import json

from stepkit.errors import StoreError
from stepkit.stores import _redis_lua as lua
from stepkit.stores._records import RunRecord, VersionRecord, run_problem

__all__ = ["parse_run", "parse_version", "run_args", "text", "version_args"]


def text(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def run_args(r: RunRecord) -> builtins.list[str]:
    """The 14 JSON-encoded fields (see ``lua.FIELDS``)."""
    return [json.dumps(getattr(r, name)) for name in lua.FIELDS]


def version_args(v: VersionRecord | None) -> builtins.list[str]:
    """n, json (no snapshot), link, snapshot; or four empty strings."""
    if v is None:
        return ["", "", "", ""]
    body = [
        v.run_id,
        v.version,
        v.parent,
        v.step_name,
        v.changes,
        builtins.list(v.removed),
        v.position,
        v.created_at,
        v.kind,
    ]
    link = "s" if v.snapshot is not None else ("" if v.parent is None else str(v.parent))
    return [str(v.version), json.dumps(body), link, v.snapshot or ""]


def parse_run(flat: builtins.list[bytes] | dict[bytes, bytes]) -> tuple[RunRecord, bytes, bytes]:
    """A run hash (a dict, or a flat field/value list from a script) as a record, its
    ``seq`` and ``rev``."""
    h = flat if isinstance(flat, dict) else dict(zip(flat[::2], flat[1::2], strict=True))
    try:
        record = RunRecord(*(json.loads(h[name.encode()]) for name in lua.FIELDS))
        seq, rev = h[b"seq"], h[b"rev"]
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        raise StoreError(f"corrupt run hash in Redis: {exc!r}") from exc
    problem = run_problem(record)
    if problem is not None:
        raise StoreError(f"corrupt run hash in Redis: {problem}")
    return record, seq, rev


def parse_version(body: bytes, snapshot: bytes | None) -> VersionRecord:
    try:
        run_id, n, parent, step_name, changes, removed, position, created_at, kind = json.loads(
            body
        )
        record = VersionRecord(
            run_id,
            n,
            parent,
            step_name,
            changes,
            tuple(removed),
            position,
            None if snapshot is None else snapshot.decode(),
            created_at,
            kind,
        )
    except (ValueError, TypeError, RecursionError, UnicodeError) as exc:
        raise StoreError(f"corrupt version in Redis: {exc!r}") from exc
    return record
