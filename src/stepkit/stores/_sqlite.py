"""``SQLiteStore``: the embedded default, stdlib ``sqlite3`` in WAL mode, safe across processes.

Writes run in ``BEGIN IMMEDIATE`` transactions (retried while the database is
busy); reads by primary key; the version chain is one recursive query.
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3

from stepkit.errors import RunConflictError, RunNotFoundError
from stepkit.stores import _transitions
from stepkit.stores._base import Change
from stepkit.stores._chain import checked_chain, target_version
from stepkit.stores._records import RunRecord, StepRow, VersionRecord, run_to_json
from stepkit.stores._sqlite_connection import Handle
from stepkit.stores._sqlite_sql import (
    APPEND,
    CHAIN,
    HISTORY_COLUMNS,
    PURGE_CANDIDATES,
    RUN_COLUMNS,
    VERSION_FIELDS,
    is_busy,
    list_query,
    run_row,
    version_row,
)
from stepkit.stores._sqlite_wake import SQLiteWake
from stepkit.stores._sync_base import Loaded
from stepkit.stores._transitions import PurgeRule

__all__ = ["SQLiteStore"]


class SQLiteStore(SQLiteWake):
    """A store in one SQLite file (WAL mode), safe for many threads and processes.

    ``synchronous`` chooses durability. ``"FULL"`` (the default, as in SQLite
    itself) fsyncs the write-ahead log on every commit: a claimed run or a
    persisted step survives a power loss or OS crash. ``"NORMAL"`` fsyncs only
    at checkpoints: commits still survive a crash of the process, but the
    last ones may be lost on power loss (the file stays consistent), so a
    resumed run could repeat its last steps. Durable runs promise that a step
    is not executed twice, hence FULL by default; choose NORMAL for speed.

    ``busy_timeout`` (seconds) is how long a write waits for another writer
    before :class:`StoreError`. Each thread uses its own connection;
    ``":memory:"`` gives a private in-memory database shared by the threads.
    Tables are prefixed ``stepkit_``, so the file can hold other tables too::

        store = SQLiteStore("runs.db")
    """

    _backend_errors = (sqlite3.Error, OSError, UnicodeError)

    def __repr__(self) -> str:
        return f"SQLiteStore({self._path!r}, synchronous={self._synchronous!r})"

    # -- primitives ------------------------------------------------------------------------

    @staticmethod
    def _insert_version(db: sqlite3.Connection, v: VersionRecord) -> None:
        params = {name: getattr(v, name) for name in VERSION_FIELDS}
        db.execute(
            f"INSERT INTO stepkit_versions ({', '.join(VERSION_FIELDS)}) "
            f"VALUES ({', '.join(':' + name for name in VERSION_FIELDS)})",
            {**params, "removed": json.dumps(v.removed)},
        )

    def _insert(self, record: RunRecord, first: VersionRecord | None) -> None:
        def body(db: sqlite3.Connection) -> None:
            inserted = db.execute(
                f"INSERT OR IGNORE INTO stepkit_runs ({RUN_COLUMNS}) VALUES "
                f"({', '.join(':' + name for name in RUN_COLUMNS.split(', '))})",
                run_to_json(record),
            ).rowcount
            if inserted != 1:
                raise RunConflictError(
                    f"run {record.run_id!r} already exists", run_id=record.run_id
                )
            if first is not None:
                self._insert_version(db, first)

        self._transaction(body)

    def _change_row(
        self,
        db: sqlite3.Connection,
        run_id: str,
        change: Change,
        version: VersionRecord | None = None,
    ) -> RunRecord:
        """Inside a write transaction: apply ``change`` to the run, store it (and ``version``)."""
        record = self._row(db, run_id)
        if record is None:
            raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
        new = change(record, self._clock())
        if version is not None:
            self._insert_version(db, version)
        # The write lock is held, so the compare-and-set below always matches; it
        # spells out the condition a store without one (PostgreSQL) would rely on.
        # The row stores the run as it stands (its version may be behind: see APPEND).
        updated = db.execute(
            "UPDATE stepkit_runs SET status = :status, version = :version, "
            "step_name = :step_name, error = :error, updated_at = :updated_at, "
            "owner = :owner, lease_until = :lease_until, wake_at = :wake_at, "
            "waiting_for = :waiting_for "
            "WHERE run_id = :run_id AND status = :was_status AND owner IS :was_owner",
            {**run_to_json(new), "was_status": record.status, "was_owner": record.owner},
        ).rowcount
        if updated != 1:
            raise RunConflictError(f"run {run_id!r} changed concurrently", run_id=run_id)
        return new

    def _update(
        self, run_id: str, change: Change, version: VersionRecord | None = None
    ) -> RunRecord:
        return self._transaction(lambda db: self._change_row(db, run_id, change, version))

    def _claim_and_load(
        self,
        run_id: str,
        change: Change,
        upto: int | None,
        seen: builtins.list[RunRecord],
        owner: str,
    ) -> Loaded:
        """Claim and read the chain in ONE transaction: if the read fails, no claim was made."""

        def body(db: sqlite3.Connection) -> Loaded:
            claimed = self._change_row(db, run_id, change)
            target = target_version(claimed, run_id, upto)
            rows = db.execute(CHAIN, (run_id, target))
            chain = [version_row(row, checked=False) for row in rows]
            return seen[-1], claimed, checked_chain(run_id, target, chain)

        return self._transaction(body)

    def _append(self, version: VersionRecord, owner: str, lease: float | None) -> None:
        v = version
        row = (v.run_id, v.version, v.parent, v.step_name, v.changes, v.removed, v.position)
        self._append_step((*row, v.snapshot, v.created_at), owner, lease, v.kind)

    def _append_step(
        self, row: StepRow, owner: str, lease: float | None, kind: str = "step"
    ) -> None:
        """One conditional INSERT, committed on its own (see ``APPEND``)."""
        run_id, version, parent, step_name, changes, removed, position, snapshot, created_at = row
        now = self._clock()
        params = (
            run_id,
            version,
            parent,
            step_name,
            changes,
            json.dumps(removed) if removed else "[]",
            position,
            snapshot,
            created_at,
            now,
            None if lease is None else now + lease,
            owner,
            kind,
        )

        def attempt() -> int:
            with self._connection() as db:
                return int(db.execute(APPEND, params).rowcount)

        handle: Handle | None = getattr(self._local, "handle", None)
        try:  # the common case first: this thread's open connection, no retry machinery
            if handle is not None and self._shared_lock is None and self._pid == os.getpid():
                inserted = handle.db.execute(APPEND, params).rowcount
            else:
                inserted = attempt()
        except sqlite3.Error as exc:
            if not is_busy(exc):
                raise
            inserted = self._retry(attempt)
        if inserted == 1:
            return
        record = self._get(run_id)  # say precisely why, with the shared rule
        if record is None:
            raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
        v = VersionRecord(
            run_id, version, parent, step_name, changes, removed, position, snapshot, created_at
        )
        _transitions.append(record, self._clock(), version=v, owner=owner, lease=lease)
        raise RunConflictError(f"run {run_id!r} changed concurrently", run_id=run_id)

    def _get(self, run_id: str) -> RunRecord | None:
        def body(db: sqlite3.Connection) -> RunRecord | None:
            return self._row(db, run_id)

        return self._read(body)

    def _list(
        self, pipeline: str | None, status: str | None, limit: int | None
    ) -> builtins.list[RunRecord]:
        sql, params = list_query(pipeline, status, limit)

        def body(db: sqlite3.Connection) -> builtins.list[RunRecord]:
            return [run_row(row) for row in db.execute(sql, params)]

        return self._read(body)

    def _delete(self, run_id: str) -> bool:
        def body(db: sqlite3.Connection) -> bool:
            db.execute("DELETE FROM stepkit_versions WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM stepkit_signals WHERE run_id = ?", (run_id,))
            return db.execute("DELETE FROM stepkit_runs WHERE run_id = ?", (run_id,)).rowcount == 1

        return self._transaction(body)

    def _purge(self, rule: PurgeRule) -> int:
        def body(db: sqlite3.Connection) -> int:
            now = self._clock()
            # Candidates through the indexes; the rule itself decides (one source of truth).
            expired_before = now if rule.expired else float("-inf")
            stale_before = float("-inf") if rule.older_than is None else now - rule.older_than
            rows = db.execute(PURGE_CANDIDATES, (expired_before, stale_before)).fetchall()
            doomed = [(r.run_id,) for r in map(run_row, rows) if rule.matches(r, now)]
            db.executemany("DELETE FROM stepkit_versions WHERE run_id = ?", doomed)
            db.executemany("DELETE FROM stepkit_signals WHERE run_id = ?", doomed)
            db.executemany("DELETE FROM stepkit_runs WHERE run_id = ?", doomed)
            return len(doomed)

        return self._transaction(body)

    def _chain(self, run_id: str, upto: int | None) -> builtins.list[VersionRecord]:
        def body(db: sqlite3.Connection) -> tuple[int, builtins.list[VersionRecord]]:
            target = target_version(self._row(db, run_id), run_id, upto)
            rows = db.execute(CHAIN, (run_id, target))
            return target, [version_row(row, checked=False) for row in rows]

        target, chain = self._transaction(body, write=False)
        return checked_chain(run_id, target, chain)  # checks every version once

    def _history(self, run_id: str) -> builtins.list[VersionRecord] | None:
        def body(db: sqlite3.Connection) -> builtins.list[VersionRecord] | None:
            if self._row(db, run_id) is None:
                return None
            rows = db.execute(
                f"SELECT {HISTORY_COLUMNS} FROM stepkit_versions WHERE run_id = ? ORDER BY version",
                (run_id,),
            )
            return [version_row(row) for row in rows]

        return self._transaction(body, write=False)
