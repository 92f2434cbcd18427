"""A workflow run's stored ops: reading its versions, decoded copies, recorded failures.

Op versions hold ``{"id#n": record}`` (see ``docs/workflows.md``); the whole
run is read in one ``json.loads``. Store contents are untrusted: a malformed
version is a :class:`~stepkit.errors.StoreError`, a stored error is rebuilt
from its text (never unpickled).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from stepkit.checkpoints._decode import from_json
from stepkit.errors import CheckpointError, StepFailedError, StoreError
from stepkit.stores import VersionRecord

__all__ = [
    "RecordedFailure",
    "decoded",
    "describe",
    "failed_error",
    "is_failure",
    "load_json",
    "parse_ops",
    "read_ops",
]


class RecordedFailure(Exception):
    """The stored form of a step's exception: ``type_name: message`` (never unpickled)."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name


def describe(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc)}


def load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise StoreError(f"corrupt {what}: not valid JSON") from exc


def decoded(encoded: Any, key: str) -> Any:
    """A fresh decoded copy of a stored value."""
    try:
        return from_json(encoded)
    except CheckpointError as exc:
        raise StoreError(f"corrupt stored value of step {key!r}: {exc}") from exc


def parse_ops(versions: list[VersionRecord], run_id: str) -> list[dict[str, Any]]:
    """The changes of a run's op versions, parsed in one ``json.loads`` (a replay's main cost).

    When the joined text does not parse into one object per version, each is
    parsed alone, so that the error names the corrupt version. (Joining cannot
    let a store's writer say more than it could with well-formed versions.)
    """
    if not versions:
        return []
    try:
        parsed = json.loads("[" + ",".join(v.changes for v in versions) + "]")
    except (ValueError, RecursionError):
        parsed = None
    if (
        isinstance(parsed, list)
        and len(parsed) == len(versions)
        and all(type(p) is dict for p in parsed)
    ):
        return parsed
    found = []
    for v in versions:
        changes = load_json(v.changes, f"version {v.version} of run {run_id!r}")
        if not isinstance(changes, dict):
            raise StoreError(f"corrupt version {v.version} of run {run_id!r}: not an object")
        found.append(changes)
    return found


def is_failure(record: dict[str, Any]) -> bool:
    return record.get("kind") == "run" and ("error" in record or "retry" in record)


def read_ops(
    versions: Iterable[VersionRecord], run_id: str
) -> tuple[int, Any, dict[str, dict[str, Any]], int]:
    """(last version number, encoded input, op records by key, whole-workflow attempt)."""
    version, input_json, attempt = 0, None, 1
    records: dict[str, dict[str, Any]] = {}
    ops: list[VersionRecord] = []
    for v in versions:
        version = v.version
        if v.kind == "start":
            start = load_json(v.changes, f"start of run {run_id!r}")
            input_json = start.get("input") if isinstance(start, dict) else None
        elif v.kind == "op":
            ops.append(v)
    for changes in parse_ops(ops, run_id):
        for key, record in changes.items():
            if key in ("error", "resume"):  # a new attempt of the whole workflow
                records = {k: r for k, r in records.items() if not is_failure(r)}
                attempt = attempt + 1 if key == "error" else 1
            elif key != "result" and isinstance(record, dict):
                records[key] = record
    return version, input_json, records, attempt


def failed_error(key: str, record: dict[str, Any], run_id: str) -> StepFailedError:
    info = record.get("error") or {}
    cause = RecordedFailure(str(info.get("type", "Exception")), str(info.get("message", "")))
    error = StepFailedError(
        f"step {key!r} failed after {record.get('attempts', 1)} attempt(s): {cause}",
        step_name=key,
        attempts=int(record.get("attempts", 1)),
        run_id=run_id,
    )
    error.__cause__ = cause
    return error
