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
    # Older databases advanced the run row from a trigger on every saved step; the
    # run's latest version is now read from the versions table instead (see RUN_SELECT).
    "DROP TRIGGER IF EXISTS stepkit_versions_advance",
)
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
# A run as it stands: its row, advanced by its latest version if that is newer (a step
# saved by APPEND). ``FROM stepkit_runs AS r`` and a WHERE on ``r`` follow it.
_NEWER = "v.version > r.version"
RUN_SELECT = f"""
SELECT r.run_id, r.pipeline, r.status,
    CASE WHEN {_NEWER} THEN v.version ELSE r.version END AS version,
    CASE WHEN {_NEWER} THEN v.step_name ELSE r.step_name END AS step_name,
    r.error, r.created_at,
    CASE WHEN {_NEWER} THEN COALESCE(v.saved_at, r.updated_at) ELSE r.updated_at END
        AS updated_at,
    r.expires_at, r.owner,
    CASE WHEN {_NEWER} THEN COALESCE(v.renew_lease, r.lease_until) ELSE r.lease_until END
        AS lease_until,
    r.meta, r.wake_at, r.waiting_for"""
LATEST = """LEFT JOIN stepkit_versions AS v ON v.run_id = r.run_id
    AND v.version = (SELECT max(version) FROM stepkit_versions WHERE run_id = r.run_id)"""
GET_RUN = f"{RUN_SELECT} FROM stepkit_runs AS r {LATEST} WHERE r.run_id = ?1"
# Saving a step (the hot path) is ONE statement that writes ONE row: insert the version
# if the run is held by the owner and stands at the previous version (the compare-and-
# set). The run row is not touched: a version newer than the row carries the run's new
# version, step name, update time (saved_at) and lease (renew_lease; without a new
# lease, the current one), and every read of a run applies it (RUN_SELECT). Any other
# write of the run row (claim, renew, finish) stores those derived values, so a run
# that is not running has an exact row.
APPEND = f"""
INSERT INTO stepkit_versions (run_id, version, parent, step_name, changes, removed, position,
    snapshot, created_at, saved_at, renew_lease, kind)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
    COALESCE(?11, (SELECT lease_until FROM ({GET_RUN}))), ?13
WHERE EXISTS (SELECT 1 FROM stepkit_runs AS r
    WHERE r.run_id = ?1 AND r.owner = ?12 AND r.status = 'running'
    AND max(r.version, COALESCE(
        (SELECT max(version) FROM stepkit_versions WHERE run_id = ?1), 0)) = ?2 - 1)
"""
# purge(): the candidates, through the indexes (the rule itself decides). Running runs
# are read as they stand (advanced by their latest version: its lease and update time),
# never from their possibly older rows.
PURGE_CANDIDATES = f"""
SELECT {RUN_COLUMNS} FROM stepkit_runs WHERE expires_at < ?1 AND status != 'running'
UNION SELECT {RUN_COLUMNS} FROM stepkit_runs WHERE updated_at < ?2 AND status != 'running'
UNION SELECT * FROM ({RUN_SELECT} FROM stepkit_runs AS r {LATEST} WHERE r.status = 'running')
    WHERE expires_at < ?1 OR updated_at < ?2
"""
DUE = f"""
SELECT * FROM ({RUN_SELECT} FROM stepkit_runs AS r {LATEST}
    WHERE r.status IN ('sleeping', 'waiting') AND r.wake_at IS NOT NULL AND r.wake_at <= ?1
    ORDER BY r.wake_at LIMIT ?2)
UNION ALL
SELECT * FROM ({RUN_SELECT} FROM stepkit_runs AS r {LATEST}
    WHERE r.status = 'running') WHERE lease_until <= ?1
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
    by_latest = " ORDER BY updated_at DESC, seq DESC LIMIT ?"  # the derived updated_at
    rows = -1 if limit is None else limit  # LIMIT -1: no limit
    # settled runs: their rows are exact (see APPEND), read in index order
    select = f"SELECT {RUN_COLUMNS}, rowid AS seq FROM stepkit_runs WHERE "
    # running runs: advanced by their latest version, then sorted (there are few)
    running = f"{RUN_SELECT}, r.rowid AS seq FROM stepkit_runs AS r {LATEST} WHERE "
    if status == "running":
        return f"{running}status = 'running'{filters}{by_latest}", [*params, rows]
    if status is not None:  # "!= 'running'" lets the planner pick a settled index
        return f"{select}status = ? AND status != 'running'{filters}{order}", [
            status,
            *params,
            rows,
        ]
    settled = f"SELECT * FROM ({select}status != 'running'{filters}{order})"
    held = f"SELECT * FROM ({running}status = 'running'{filters}{by_latest})"
    sql = f"{settled} UNION ALL {held} ORDER BY updated_at DESC, seq DESC LIMIT ?"
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


def version_row(row: tuple[Any, ...], *, checked: bool = True) -> VersionRecord:
    """A version read back; ``checked=False`` when the caller checks it (``checked_chain``)."""
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
    if not checked:
        return record
    problem = version_problem(record)
    if problem is not None:
        raise StoreError(f"corrupt row in stepkit_versions: {problem}")
    return record
