"""``SQLiteStore``: the embedded default, stdlib ``sqlite3`` in WAL mode, safe across processes.

Writes run in ``BEGIN IMMEDIATE`` transactions (retried while the database is
busy); reads by primary key; the version chain is one recursive query.
"""

from __future__ import annotations

import builtins
import json
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Literal, TypeVar

from stepkit.errors import (
    InvalidArgumentError,
    RunConflictError,
    RunNotFoundError,
    StoreError,
)
from stepkit.stores import _transitions
from stepkit.stores._base import BaseStore, Change
from stepkit.stores._chain import checked_chain, target_version
from stepkit.stores._records import (
    RunRecord,
    SignalRecord,
    VersionRecord,
    check_seconds,
    run_to_json,
)
from stepkit.stores._sqlite_sql import (
    APPEND,
    CHAIN,
    DUE,
    GET_RUN,
    HISTORY_COLUMNS,
    PURGE_CANDIDATES,
    RUN_COLUMNS,
    SCHEMA,
    VERSION_FIELDS,
    WAITING,
    WAKE_SCHEMA,
    is_busy,
    list_query,
    migrate,
    run_row,
    version_row,
)
from stepkit.stores._sync_base import Loaded
from stepkit.stores._transitions import PurgeRule
from stepkit.stores._wake_base import due_order

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")


class _Handle:
    """One thread's connection; closed when that thread ends and drops it."""

    __slots__ = ("__weakref__", "db")

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __del__(self) -> None:
        with suppress(Exception):
            self.db.close()


class SQLiteStore(BaseStore):
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

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["NORMAL", "FULL"] = "FULL",
        busy_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock=clock)
        if synchronous not in ("NORMAL", "FULL"):
            raise InvalidArgumentError(
                f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}"
            )
        check_seconds(busy_timeout, "busy_timeout", allow_zero=True)
        self._path = os.fspath(path)
        self._synchronous = synchronous
        self._timeout = float(busy_timeout)
        self._local = threading.local()
        self._handles: weakref.WeakSet[_Handle] = weakref.WeakSet()
        self._handles_lock = threading.Lock()
        self._pid = os.getpid()
        self._forked: builtins.list[object] = []
        # ":memory:" is per connection, so all threads share one, one at a time.
        self._shared_lock = threading.Lock() if self._path == ":memory:" else None
        self._shared: _Handle | None = None
        with self._guard("open"):
            if self._shared_lock is not None:
                self._shared = self._open()
            self._transaction(self._create_schema)

    def __repr__(self) -> str:
        return f"SQLiteStore({self._path!r}, synchronous={self._synchronous!r})"

    # -- connections and transactions ------------------------------------------------------

    def _open(self) -> _Handle:
        db = sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            mode = self._retry(lambda: db.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            if mode not in ("wal", "memory"):
                raise StoreError(f"SQLiteStore could not enable WAL mode (got {mode!r})")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
        except BaseException:
            db.close()
            raise
        handle = _Handle(db)
        with self._handles_lock:
            self._handles.add(handle)
        return handle

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._shared_lock is not None:
            with self._shared_lock:
                assert self._shared is not None
                yield self._shared.db
            return
        if self._pid != os.getpid():
            # Forked: a child must never use (nor close) its parent's connections.
            self._forked.append((self._local, self._handles))
            self._local, self._handles = threading.local(), weakref.WeakSet()
            self._pid = os.getpid()
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is None:
            handle = self._local.handle = self._open()
        yield handle.db

    def _retry(self, attempt: Callable[[], _T]) -> _T:
        """Call ``attempt`` again while SQLite reports busy, until ``busy_timeout``."""
        deadline = time.monotonic() + self._timeout
        delay = 0.001
        while True:
            try:
                return attempt()
            except sqlite3.Error as exc:
                if not is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)

    def _transaction(self, body: Callable[[sqlite3.Connection], _T], *, write: bool = True) -> _T:
        """Run ``body`` in one transaction (IMMEDIATE when writing), retrying when busy."""

        def attempt() -> _T:
            with self._connection() as db:
                try:
                    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    result = body(db)
                    db.execute("COMMIT")
                    return result
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise

        return self._retry(attempt)

    @staticmethod
    def _create_schema(db: sqlite3.Connection) -> None:
        for statement in SCHEMA:
            db.execute(statement)
        migrate(db)
        for statement in WAKE_SCHEMA:
            db.execute(statement)

    def _close(self) -> None:
        with self._handles_lock:
            handles = builtins.list(self._handles)
        for handle in handles:
            handle.db.close()

    # -- primitives ------------------------------------------------------------------------

    @staticmethod
    def _row(db: sqlite3.Connection, run_id: str) -> RunRecord | None:
        row = db.execute(GET_RUN, (run_id,)).fetchone()
        return None if row is None else run_row(row)

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
        self._append_step(
            v.run_id,
            v.version,
            v.parent,
            v.step_name,
            v.changes,
            v.removed,
            v.position,
            v.snapshot,
            v.created_at,
            owner,
            lease,
            v.kind,
        )

    def _append_step(
        self,
        run_id: str,
        version: int,
        parent: int | None,
        step_name: str | None,
        changes: str,
        removed: tuple[str, ...],
        position: str,
        snapshot: str | None,
        created_at: float,
        owner: str,
        lease: float | None,
        kind: str = "step",
    ) -> None:
        """One conditional INSERT, committed on its own (see ``APPEND``)."""
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

        handle: _Handle | None = getattr(self._local, "handle", None)
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

    def _deliver(self, signal: SignalRecord, change: Change) -> RunRecord | None:
        def body(db: sqlite3.Connection) -> RunRecord | None:
            run_id, key = signal.run_id, signal.idempotency_key
            record = self._row(db, run_id)
            if record is None:
                raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
            if (
                key is not None
                and db.execute(
                    "SELECT 1 FROM stepkit_signals WHERE run_id = ? AND idempotency_key = ?",
                    (run_id, key),
                ).fetchone()
            ):
                return None
            now = self._clock()
            new = change(record, now)
            db.execute(
                "INSERT INTO stepkit_signals (run_id, seq, signal, data, idempotency_key, "
                "created_at) SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5 "
                "FROM stepkit_signals WHERE run_id = ?1",
                (run_id, signal.signal, signal.data, key, now),
            )
            if new is not record:
                db.execute(
                    "UPDATE stepkit_runs SET wake_at = ? WHERE run_id = ?", (new.wake_at, run_id)
                )
            return record

        return self._transaction(body)

    def _signals(self, run_id: str) -> builtins.list[SignalRecord] | None:
        def body(db: sqlite3.Connection) -> builtins.list[SignalRecord] | None:
            if self._row(db, run_id) is None:
                return None
            rows = db.execute(
                "SELECT run_id, seq, signal, data, idempotency_key, created_at "
                "FROM stepkit_signals WHERE run_id = ? ORDER BY seq",
                (run_id,),
            )
            return [SignalRecord(*row) for row in rows]

        return self._transaction(body, write=False)

    def _due(self, now: float, limit: int | None) -> builtins.list[RunRecord]:
        rows = -1 if limit is None else limit

        def body(db: sqlite3.Connection) -> builtins.list[RunRecord]:
            return [run_row(row) for row in db.execute(DUE, (now, rows))]

        found = sorted(self._read(body), key=due_order)
        return found if limit is None else found[:limit]

    def _waiting(self, signal: str, limit: int | None) -> builtins.list[RunRecord]:
        rows = -1 if limit is None else limit

        def body(db: sqlite3.Connection) -> builtins.list[RunRecord]:
            return [run_row(row) for row in db.execute(WAITING, (signal, rows))]

        return self._read(body)

    def _read(self, body: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``body`` outside an explicit transaction (one statement), retrying when busy."""

        def attempt() -> _T:
            with self._connection() as db:
                return body(db)

        return self._retry(attempt)

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
