"""Record builders shared by the store tests."""

from __future__ import annotations

import json
from typing import Any

from stepkit.stores import RunRecord, RunStatus, VersionRecord


def run(
    run_id: str = "run-1",
    *,
    now: float,
    status: RunStatus = "paused",
    version: int = 0,
    pipeline: str = "approval",
    owner: str | None = None,
    expires_at: float | None = None,
    meta: str = '{"fingerprint": "abc"}',
) -> RunRecord:
    """A run record as the engine would create it."""
    return RunRecord(
        run_id=run_id,
        pipeline=pipeline,
        status=status,
        version=version,
        step_name=None if version == 0 else f"step-{version}",
        error=None,
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
        owner=owner,
        lease_until=None,
        meta=meta,
    )


def version(
    number: int,
    run_id: str = "run-1",
    *,
    parent: int | None = None,
    changes: dict[str, Any] | None = None,
    removed: tuple[str, ...] = (),
    snapshot: dict[str, Any] | None = None,
    now: float = 0.0,
) -> VersionRecord:
    """Version ``number``, deriving from ``parent`` (default: the previous one)."""
    return VersionRecord(
        run_id=run_id,
        version=number,
        parent=parent if parent is not None else (number - 1 or None),
        step_name=f"step-{number}",
        changes=json.dumps(changes if changes is not None else {f"k{number}": number}),
        removed=removed,
        position=json.dumps({"after": f"step-{number}"}),
        snapshot=None if snapshot is None else json.dumps(snapshot),
        created_at=now,
    )
