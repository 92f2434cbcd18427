"""The SQL of :class:`~stepkit.stores.SQLiteStore`, and rows turned back into records."""

from __future__ import annotations

import builtins
import json
import sqlite3
from typing import Any

from stepkit.errors import StoreError
from stepkit.stores._records import RunRecord, VersionRecord, run_problem, version_problem

#: Columns added since the first schema, as (table, column, definition): see ``migrate``.
ADDED_COLUMNS = (
    ("stepkit_versions", "kind", "TEXT NOT NULL DEFAULT 'step'"),
    ("stepkit_runs", "wake_at", "REAL"),
    ("stepkit_runs", "waiting_for", "TEXT"),
)
SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS stepkit_runs (
    run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL,
    version INTEGER NOT NULL, step_name TEXT, error TEXT, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, expires_at REAL, owner TEXT, lease_until REAL, meta TEXT NOT NULL,
    wake_at REAL, waiting_for TEXT
)
""",
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_by_status ON stepkit_runs (status)
""",
    # list() reads the runs that are not running through one of these, backwards (see
    # list_query). They are partial so that saving a step, which moves updated_at of a
    # running run only, never touches them: an index entry costs ~10 us per save.
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_settled ON stepkit_runs (updated_at)
    WHERE status != 'running'
""",
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_settled_by_pipeline
    ON stepkit_runs (pipeline, updated_at) WHERE status != 'running'
""",
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_settled_by_status
    ON stepkit_runs (status, updated_at) WHERE status != 'running'
""",
    "DROP INDEX IF EXISTS stepkit_runs_by_pipeline",  # superseded by the one above
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_expires ON stepkit_runs (expires_at)
    WHERE expires_at IS NOT NULL
""",
    """
CREATE TABLE IF NOT EXISTS stepkit_versions (
    run_id TEXT NOT NULL, version INTEGER NOT NULL, parent INTEGER, step_name TEXT,
    changes TEXT NOT NULL, removed TEXT NOT NULL, position TEXT NOT NULL, snapshot TEXT,
    created_at REAL NOT NULL, saved_at REAL, renew_lease REAL,
    kind TEXT NOT NULL DEFAULT 'step', PRIMARY KEY (run_id, version)
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
    snapshot, created_at, saved_at, renew_lease, kind)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?13
WHERE EXISTS (SELECT 1 FROM stepkit_runs
    WHERE run_id = ?1 AND owner = ?12 AND version = ?2 - 1 AND status = 'running')
"""
# Made after ``migrate`` (they index columns an older database gains there).
WAKE_SCHEMA = (
    # the signal mailbox of workflow runs: messages are never changed nor consumed here
    """
CREATE TABLE IF NOT EXISTS stepkit_signals (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, signal TEXT NOT NULL, data TEXT NOT NULL,
    idempotency_key TEXT, created_at REAL NOT NULL, PRIMARY KEY (run_id, seq)
) WITHOUT ROWID
""",
    """
CREATE UNIQUE INDEX IF NOT EXISTS stepkit_signals_key ON stepkit_signals (run_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL
""",
    # due(): suspended runs by wake time; partial, so running runs never touch it
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_due ON stepkit_runs (wake_at)
    WHERE status IN ('sleeping', 'waiting') AND wake_at IS NOT NULL
""",
    # waiting(): who waits on a signal name
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_waiting ON stepkit_runs (waiting_for)
    WHERE status = 'waiting'
""",
)
RUN_COLUMNS = (
    "run_id, pipeline, status, version, step_name, error, created_at, updated_at, "
    "expires_at, owner, lease_until, meta, wake_at, waiting_for"
)
DUE = f"""
SELECT * FROM (SELECT {RUN_COLUMNS} FROM stepkit_runs
    WHERE status IN ('sleeping', 'waiting') AND wake_at IS NOT NULL AND wake_at <= ?1
    ORDER BY wake_at LIMIT ?2)
UNION ALL
SELECT * FROM (SELECT {RUN_COLUMNS} FROM stepkit_runs
    WHERE status = 'running' AND lease_until <= ?1 ORDER BY lease_until LIMIT ?2)
"""
# Exact names through the index; runs waiting on several names (one per line) by a scan
# of the waiting runs whose waiting_for holds a newline.
WAITING = f"""
SELECT {RUN_COLUMNS} FROM stepkit_runs WHERE status = 'waiting' AND (waiting_for = ?1
    OR (instr(waiting_for, char(10)) > 0
        AND instr(char(10) || waiting_for || char(10), char(10) || ?1 || char(10)) > 0))
ORDER BY created_at, rowid LIMIT ?2
"""
VERSION_FIELDS = (
    "run_id",
    "version",
    "parent",
    "step_name",
    "changes",
    "removed",
    "position",
    "snapshot",
    "created_at",
    "kind",
)
VERSION_COLUMNS = ", ".join(VERSION_FIELDS)
#: history() leaves the snapshots out
HISTORY_COLUMNS = VERSION_COLUMNS.replace("snapshot", "NULL")
# Walk parent links from the wanted version down to the nearest snapshot (or root).
# UNION, not UNION ALL: a corrupt cyclic parent link ends the walk instead of looping.
CHAIN = f"""
WITH RECURSIVE chain(v) AS (
    SELECT ?2
    UNION
    SELECT x.parent FROM stepkit_versions AS x JOIN chain ON x.run_id = ?1 AND x.version = chain.v
    WHERE x.snapshot IS NULL AND x.parent IS NOT NULL
)
SELECT {VERSION_COLUMNS} FROM stepkit_versions
WHERE run_id = ?1 AND version IN (SELECT v FROM chain) ORDER BY version
"""


def is_busy(exc: sqlite3.Error) -> bool:
    message = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message)


def list_query(
    pipeline: str | None, status: str | None, limit: int | None
) -> tuple[str, builtins.list[object]]:
    """The SQL and parameters of ``list()``: most recently updated first, then later created.

    The rowid is the creation order (a new row gets the highest) and ends every
    index entry, so a ``stepkit_runs_settled*`` index read backwards yields the
    runs that are not running in exactly this order, with no sort: O(limit).
    Running runs (as many as there are workers, or crashed runs) are found by
    status and sorted, then both are merged: O(limit + running runs).
    """
    filters = ""
    params: builtins.list[object] = []
    if pipeline is not None:
        filters += " AND pipeline = ?"
        params.append(pipeline)
    order = " ORDER BY updated_at DESC, rowid DESC LIMIT ?"
    rows = -1 if limit is None else limit  # LIMIT -1: no limit
    select = f"SELECT {RUN_COLUMNS}, rowid AS seq FROM stepkit_runs WHERE "
    if status == "running":
        return f"{select}status = 'running'{filters}{order}", [*params, rows]
    if status is not None:  # "!= 'running'" lets the planner pick a settled index
        return f"{select}status = ? AND status != 'running'{filters}{order}", [
            status,
            *params,
            rows,
        ]
    settled = f"SELECT * FROM ({select}status != 'running'{filters}{order})"
    running = f"SELECT * FROM ({select}status = 'running'{filters}{order})"
    sql = f"{settled} UNION ALL {running} ORDER BY updated_at DESC, seq DESC LIMIT ?"
    return sql, [*params, rows, *params, rows, rows]


def migrate(db: sqlite3.Connection) -> None:
    """Add the columns a database made by an older stepkit lacks (inside the schema transaction)."""
    for table, column, definition in ADDED_COLUMNS:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


def run_row(row: tuple[Any, ...]) -> RunRecord:
    record = RunRecord(*row[:14])  # list() rows end with the rowid
    problem = run_problem(record)
    if problem is not None:
        raise StoreError(f"corrupt row in stepkit_runs: {problem}")
    return record


def version_row(row: tuple[Any, ...]) -> VersionRecord:
    run_id, version, parent, step_name, changes, removed, position, snapshot, created, kind = row
    try:
        names = json.loads(removed)
    except (ValueError, TypeError, RecursionError) as exc:
        raise StoreError(f"corrupt row in stepkit_versions: removed={removed!r}") from exc
    if not isinstance(names, builtins.list):
        raise StoreError(f"corrupt row in stepkit_versions: removed={removed!r}")
    record = VersionRecord(
        run_id, version, parent, step_name, changes, tuple(names), position, snapshot, created, kind
    )
    problem = version_problem(record)
    if problem is not None:
        raise StoreError(f"corrupt row in stepkit_versions: {problem}")
    return record
