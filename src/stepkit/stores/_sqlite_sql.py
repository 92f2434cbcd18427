"""The SQL of :class:`~stepkit.stores.SQLiteStore`, and rows turned back into records."""

from __future__ import annotations

import builtins
import json
import sqlite3
from typing import Any

from stepkit.errors import StoreError
from stepkit.stores._records import RunRecord, VersionRecord, run_problem, version_problem

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS stepkit_runs (
    run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL,
    version INTEGER NOT NULL, step_name TEXT, error TEXT, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, expires_at REAL, owner TEXT, lease_until REAL, meta TEXT NOT NULL
)
""",
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_by_pipeline ON stepkit_runs (pipeline)
""",
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_by_status ON stepkit_runs (status)
""",
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_expires ON stepkit_runs (expires_at)
    WHERE expires_at IS NOT NULL
""",
    """
CREATE TABLE IF NOT EXISTS stepkit_versions (
    run_id TEXT NOT NULL, version INTEGER NOT NULL, parent INTEGER, step_name TEXT,
    changes TEXT NOT NULL, removed TEXT NOT NULL, position TEXT NOT NULL, snapshot TEXT,
    created_at REAL NOT NULL, saved_at REAL, renew_lease REAL, PRIMARY KEY (run_id, version)
) WITHOUT ROWID
""",
    """
CREATE TRIGGER IF NOT EXISTS stepkit_versions_advance AFTER INSERT ON stepkit_versions
WHEN NEW.saved_at IS NOT NULL BEGIN
    UPDATE stepkit_runs SET version = NEW.version, step_name = NEW.step_name,
        updated_at = NEW.saved_at, lease_until = COALESCE(NEW.renew_lease, lease_until)
    WHERE run_id = NEW.run_id;
END
""",
)
# Saving a step (the hot path) is ONE statement: insert the version if the run is at
# the previous version and held by the owner (the compare-and-set); the trigger above
# then advances the run (saved_at and renew_lease carry the store's clock and lease).
# No index covers the columns it changes, so a save writes one run row and one version.
APPEND = """
INSERT INTO stepkit_versions (run_id, version, parent, step_name, changes, removed, position,
    snapshot, created_at, saved_at, renew_lease)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11
WHERE EXISTS (SELECT 1 FROM stepkit_runs
    WHERE run_id = ?1 AND owner = ?12 AND version = ?2 - 1 AND status = 'running')
"""
RUN_COLUMNS = (
    "run_id, pipeline, status, version, step_name, error, created_at, updated_at, "
    "expires_at, owner, lease_until, meta"
)
VERSION_COLUMNS = "run_id, version, parent, step_name, changes, removed, position"
VERSION_FIELDS = (*VERSION_COLUMNS.split(", "), "snapshot", "created_at")
# Walk parent links from the wanted version down to the nearest snapshot (or root).
# UNION, not UNION ALL: a corrupt cyclic parent link ends the walk instead of looping.
CHAIN = f"""
WITH RECURSIVE chain(v) AS (
    SELECT ?2
    UNION
    SELECT x.parent FROM stepkit_versions AS x JOIN chain ON x.run_id = ?1 AND x.version = chain.v
    WHERE x.snapshot IS NULL AND x.parent IS NOT NULL
)
SELECT {VERSION_COLUMNS}, snapshot, created_at FROM stepkit_versions
WHERE run_id = ?1 AND version IN (SELECT v FROM chain) ORDER BY version
"""


def is_busy(exc: sqlite3.Error) -> bool:
    message = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message)


def run_row(row: tuple[Any, ...]) -> RunRecord:
    record = RunRecord(*row)
    problem = run_problem(record)
    if problem is not None:
        raise StoreError(f"corrupt row in stepkit_runs: {problem}")
    return record


def version_row(row: tuple[Any, ...]) -> VersionRecord:
    run_id, version, parent, step_name, changes, removed, position, snapshot, created = row
    try:
        names = json.loads(removed)
    except (ValueError, TypeError, RecursionError) as exc:
        raise StoreError(f"corrupt row in stepkit_versions: removed={removed!r}") from exc
    if not isinstance(names, builtins.list):
        raise StoreError(f"corrupt row in stepkit_versions: removed={removed!r}")
    record = VersionRecord(
        run_id, version, parent, step_name, changes, tuple(names), position, snapshot, created
    )
    problem = version_problem(record)
    if problem is not None:
        raise StoreError(f"corrupt row in stepkit_versions: {problem}")
    return record
