"""The SQL of :class:`~stepkit.stores.PostgresStore`, and rows turned back into records.

Every statement names its tables through ``{s}``, the store's schema (quoted).
Runs carry ``seq`` (creation order, never reused) and ``rev`` (bumped by every
write): a write is a compare-and-set on both, so a run deleted and created
again under the same id is never mistaken for the one that was read.
"""

from __future__ import annotations

import builtins
import json
import re
from typing import Any

from stepkit.errors import InvalidArgumentError, StoreError
from stepkit.stores._records import RunRecord, VersionRecord, run_problem

SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

#: Serialises schema creation across processes (CREATE ... IF NOT EXISTS races otherwise).
SCHEMA_LOCK = 0x5374_6570_6B69_74  # "Stepkit"

SCHEMA = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    """
CREATE TABLE IF NOT EXISTS {s}.stepkit_runs (
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL,
    version INTEGER NOT NULL, step_name TEXT, error TEXT,
    created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION, owner TEXT, lease_until DOUBLE PRECISION, meta TEXT NOT NULL,
    wake_at DOUBLE PRECISION, waiting_for TEXT, rev BIGINT NOT NULL DEFAULT 0
)""",
    # workflows: suspended runs by wake time (due()), and a mailbox of signals per run
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_wake
    ON {s}.stepkit_runs (wake_at) WHERE status IN ('sleeping', 'waiting')""",
    """
CREATE TABLE IF NOT EXISTS {s}.stepkit_signals (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, signal TEXT NOT NULL, data TEXT NOT NULL,
    idempotency_key TEXT, created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (run_id, seq)
)""",
    """
CREATE UNIQUE INDEX IF NOT EXISTS stepkit_signals_key
    ON {s}.stepkit_signals (run_id, idempotency_key) WHERE idempotency_key IS NOT NULL""",
    # list() reads runs that are not running in order from these partial indexes
    # (backwards); saving a step moves updated_at of a running run only, so it adds
    # no entry to them (a partial index skips rows outside its predicate).
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_settled
    ON {s}.stepkit_runs (updated_at, seq) WHERE status <> 'running'""",
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_settled_by_pipeline
    ON {s}.stepkit_runs (pipeline, updated_at, seq) WHERE status <> 'running'""",
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_settled_by_status
    ON {s}.stepkit_runs (status, updated_at, seq) WHERE status <> 'running'""",
    # the running runs (as many as there are workers, or crashed runs): found, then sorted
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_running
    ON {s}.stepkit_runs (seq) WHERE status = 'running'""",
    """
CREATE INDEX IF NOT EXISTS stepkit_runs_expires
    ON {s}.stepkit_runs (expires_at) WHERE expires_at IS NOT NULL""",
    """
CREATE TABLE IF NOT EXISTS {s}.stepkit_versions (
    run_id TEXT NOT NULL, version INTEGER NOT NULL, parent INTEGER, step_name TEXT,
    changes TEXT NOT NULL, removed TEXT NOT NULL, position TEXT NOT NULL, snapshot TEXT,
    created_at DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL DEFAULT 'step',
    PRIMARY KEY (run_id, version)
)""",
)

RUN_COLUMNS = (
    "run_id, pipeline, status, version, step_name, error, created_at, updated_at, "
    "expires_at, owner, lease_until, meta, wake_at, waiting_for"
)
VERSION_COLUMNS = (
    "run_id, version, parent, step_name, changes, removed, position, snapshot, created_at, kind"
)
HISTORY_COLUMNS = VERSION_COLUMNS.replace("snapshot", "NULL")

GET = f"SELECT {RUN_COLUMNS}, seq, rev FROM {{s}}.stepkit_runs WHERE run_id = %s"

INSERT_RUN = (
    f"INSERT INTO {{s}}.stepkit_runs ({RUN_COLUMNS}) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (run_id) DO NOTHING"
)
# a run and its first version in one statement: the version only if the run was new
INSERT_RUN_AND_FIRST = f"""
WITH r AS ({INSERT_RUN} RETURNING run_id)
INSERT INTO {{s}}.stepkit_versions ({VERSION_COLUMNS})
SELECT r.run_id, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM r"""

_SET_RUN = (
    "status = %s, version = %s, step_name = %s, error = %s, updated_at = %s, "
    "expires_at = %s, owner = %s, lease_until = %s, meta = %s, wake_at = %s, "
    "waiting_for = %s, rev = rev + 1"
)
# the compare-and-set every write of a run goes through (claims, renewals, finishes)
CAS = f"UPDATE {{s}}.stepkit_runs SET {_SET_RUN} WHERE run_id = %s AND seq = %s AND rev = %s"
# ... and with the version it adds, in the same statement
CAS_AND_VERSION = f"""
WITH r AS ({CAS} RETURNING run_id)
INSERT INTO {{s}}.stepkit_versions ({VERSION_COLUMNS})
SELECT r.run_id, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM r"""

# Saving a step (the hot path): ONE statement, committed on its own. The run advances
# only if this owner holds it at the previous version; the version row is written only
# if it did. Nothing else is read first.
APPEND = """
WITH r AS (
    UPDATE {s}.stepkit_runs
    SET version = %(version)s, step_name = %(step_name)s, updated_at = %(now)s,
        lease_until = COALESCE(%(lease_until)s, lease_until), rev = rev + 1
    WHERE run_id = %(run_id)s AND owner = %(owner)s AND status = 'running'
        AND version = %(version)s - 1
    RETURNING run_id
)
INSERT INTO {s}.stepkit_versions (run_id, version, parent, step_name, changes, removed,
    position, snapshot, created_at, kind)
SELECT r.run_id, %(version)s, %(parent)s, %(step_name)s, %(changes)s, %(removed)s,
    %(position)s, %(snapshot)s, %(created_at)s, %(kind)s FROM r"""

# Walk parent links from the wanted version down to the nearest snapshot (or root).
# UNION, not UNION ALL: a corrupt cyclic parent link ends the walk instead of looping.
_CHAIN_CTE = """
WITH RECURSIVE chain(v) AS (
    SELECT {target}
    UNION
    SELECT x.parent FROM {s}.stepkit_versions AS x JOIN chain ON x.run_id = %(run_id)s
        AND x.version = chain.v
    WHERE x.snapshot IS NULL AND x.parent IS NOT NULL
)"""
CHAIN = (
    _CHAIN_CTE.replace("{target}", "%(target)s::integer")
    + f"""
SELECT {VERSION_COLUMNS} FROM {{s}}.stepkit_versions
WHERE run_id = %(run_id)s AND version IN (SELECT v FROM chain) ORDER BY version"""
)
# A resume's read: the run (with seq and rev) and the versions that rebuild it at
# ``upto`` (default: its latest), in ONE statement, so one snapshot of the database.
RUN_AND_CHAIN = (
    _CHAIN_CTE.replace(
        "{target}",
        "COALESCE(%(upto)s::integer, (SELECT version FROM {s}.stepkit_runs "
        "WHERE run_id = %(run_id)s))",
    )
    + """
SELECT r.run_id, r.pipeline, r.status, r.version, r.step_name, r.error, r.created_at,
    r.updated_at, r.expires_at, r.owner, r.lease_until, r.meta, r.wake_at, r.waiting_for,
    r.seq, r.rev,
    w.run_id, w.version, w.parent, w.step_name, w.changes, w.removed, w.position,
    w.snapshot, w.created_at, w.kind
FROM {s}.stepkit_runs AS r
LEFT JOIN {s}.stepkit_versions AS w
    ON w.run_id = r.run_id AND w.version IN (SELECT chain.v FROM chain)
WHERE r.run_id = %(run_id)s ORDER BY w.version"""
)

VERSION = f"SELECT {VERSION_COLUMNS} FROM {{s}}.stepkit_versions WHERE run_id = %s AND version = %s"
HISTORY = f"SELECT {HISTORY_COLUMNS} FROM {{s}}.stepkit_versions WHERE run_id = %s ORDER BY version"
EXISTS = "SELECT 1 FROM {s}.stepkit_runs WHERE run_id = %s"
DELETE = """
WITH v AS (DELETE FROM {s}.stepkit_versions WHERE run_id = %s),
    m AS (DELETE FROM {s}.stepkit_signals WHERE run_id = %s)
DELETE FROM {s}.stepkit_runs WHERE run_id = %s"""
# purge(): the candidates through the indexes (the rule itself decides), then deleted
# with a compare-and-set, so a run that changed since it was read is kept.
PURGE_CANDIDATES = f"""
SELECT {RUN_COLUMNS}, seq, rev FROM {{s}}.stepkit_runs WHERE expires_at < %(expired)s
UNION
SELECT {RUN_COLUMNS}, seq, rev FROM {{s}}.stepkit_runs WHERE updated_at < %(stale)s"""
# A signal into a run's mailbox, with the compare-and-set of the run (which serialises
# deliveries: the next seq is read under the run's row lock).
DELIVER = f"""
WITH r AS ({CAS} RETURNING run_id)
INSERT INTO {{s}}.stepkit_signals (run_id, seq, signal, data, idempotency_key, created_at)
SELECT r.run_id, COALESCE((SELECT max(seq) FROM {{s}}.stepkit_signals WHERE run_id = r.run_id), 0)
    + 1, %s, %s, %s, %s FROM r"""
DUPLICATE = "SELECT 1 FROM {s}.stepkit_signals WHERE run_id = %s AND idempotency_key = %s"
SIGNALS = (
    "SELECT run_id, seq, signal, data, idempotency_key, created_at "
    "FROM {s}.stepkit_signals WHERE run_id = %s ORDER BY seq"
)
# due(): suspended runs whose wake time came, and running runs whose lease ran out,
# each in due order (the caller merges them).
DUE = f"""
(SELECT {RUN_COLUMNS} FROM {{s}}.stepkit_runs
    WHERE status IN ('sleeping', 'waiting') AND wake_at <= %(now)s
    ORDER BY wake_at, run_id LIMIT %(limit)s)
UNION ALL
(SELECT {RUN_COLUMNS} FROM {{s}}.stepkit_runs
    WHERE status = 'running' AND lease_until <= %(now)s
    ORDER BY lease_until, run_id LIMIT %(limit)s)"""
WAITING = f"""
SELECT {RUN_COLUMNS} FROM {{s}}.stepkit_runs
WHERE status = 'waiting' AND %(signal)s = ANY(string_to_array(waiting_for, E'\n'))
ORDER BY updated_at, seq LIMIT %(limit)s"""
PURGE = """
WITH d AS (
    DELETE FROM {s}.stepkit_runs AS r
    USING unnest(%s::text[], %s::bigint[], %s::bigint[]) AS doomed(run_id, seq, rev)
    WHERE r.run_id = doomed.run_id AND r.seq = doomed.seq AND r.rev = doomed.rev
    RETURNING r.run_id
), v AS (DELETE FROM {s}.stepkit_versions WHERE run_id IN (SELECT run_id FROM d)),
    m AS (DELETE FROM {s}.stepkit_signals WHERE run_id IN (SELECT run_id FROM d))
SELECT count(*) FROM d"""


def check_schema(schema: object) -> str:
    if not isinstance(schema, str) or not SCHEMA_NAME.fullmatch(schema):
        raise InvalidArgumentError(
            f"schema must be a PostgreSQL identifier (letters, digits, _; at most 63), "
            f"got {schema!r}"
        )
    return schema


def in_schema(sql: str, schema: str) -> str:
    """``sql`` with ``{s}`` replaced by the quoted schema name."""
    return sql.replace("{s}", f'"{schema}"')


def list_query(
    pipeline: str | None, status: str | None, limit: int | None
) -> tuple[str, builtins.list[object]]:
    """The SQL and parameters of ``list()``: most recently updated first, then later created.

    Runs that are not running are read backwards from a partial index in exactly
    this order (O(limit)); running runs are found by status and sorted; both are
    merged (O(limit + running runs)).
    """
    filters = ""
    params: builtins.list[object] = []
    if pipeline is not None:
        filters += " AND pipeline = %s"
        params.append(pipeline)
    order = " ORDER BY updated_at DESC, seq DESC"
    cap = "" if limit is None else " LIMIT %s"
    rows = [] if limit is None else [limit]
    select = f"SELECT {RUN_COLUMNS}, seq FROM {{s}}.stepkit_runs WHERE "
    if status == "running":
        return f"{select}status = 'running'{filters}{order}{cap}", [*params, *rows]
    if status is not None:  # "<> 'running'" lets the planner use a partial index
        sql = f"{select}status = %s AND status <> 'running'{filters}{order}{cap}"
        return sql, [status, *params, *rows]
    settled = f"({select}status <> 'running'{filters}{order}{cap})"
    held = f"({select}status = 'running'{filters}{order}{cap})"
    sql = f"SELECT {RUN_COLUMNS} FROM ({settled} UNION ALL {held}) AS u{order}{cap}"
    return sql, [*params, *rows, *params, *rows, *rows]


def run_row(row: tuple[Any, ...]) -> RunRecord:
    record = RunRecord(*row[:14])
    problem = run_problem(record)
    if problem is not None:
        raise StoreError(f"corrupt row in stepkit_runs: {problem}")
    return record


def run_params(record: RunRecord) -> tuple[Any, ...]:
    r = record
    return (
        r.run_id,
        r.pipeline,
        r.status,
        r.version,
        r.step_name,
        r.error,
        r.created_at,
        r.updated_at,
        r.expires_at,
        r.owner,
        r.lease_until,
        r.meta,
        r.wake_at,
        r.waiting_for,
    )


def set_params(record: RunRecord) -> tuple[Any, ...]:
    """The parameters of ``_SET_RUN``."""
    r = record
    return (
        r.status,
        r.version,
        r.step_name,
        r.error,
        r.updated_at,
        r.expires_at,
        r.owner,
        r.lease_until,
        r.meta,
        r.wake_at,
        r.waiting_for,
    )


def version_params(v: VersionRecord) -> tuple[Any, ...]:
    """A version's columns after ``run_id``."""
    return (
        v.version,
        v.parent,
        v.step_name,
        v.changes,
        json.dumps(v.removed) if v.removed else "[]",
        v.position,
        v.snapshot,
        v.created_at,
        v.kind,
    )


def version_row(row: tuple[Any, ...]) -> VersionRecord:
    """A version read back (checked by the caller: ``checked_chain`` or ``version_problem``)."""
    run_id, version, parent, step_name, changes, removed, position, snapshot, created, kind = row
    try:
        names = json.loads(removed)
    except (ValueError, TypeError, RecursionError) as exc:
        raise StoreError(f"corrupt row in stepkit_versions: removed={removed!r}") from exc
    if not isinstance(names, builtins.list):
        raise StoreError(f"corrupt row in stepkit_versions: removed={removed!r}")
    return VersionRecord(
        run_id, version, parent, step_name, changes, tuple(names), position, snapshot, created, kind
    )
