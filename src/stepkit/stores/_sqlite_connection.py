"""The connections, transactions and retries under :class:`~stepkit.stores.SQLiteStore`.

Each thread has its own connection (closed when the thread ends); ``":memory:"``
is one connection shared under a lock; a forked child never uses its parent's.
Writes run in ``BEGIN IMMEDIATE`` transactions, retried while the database is busy.
"""

from __future__ import annotations

import builtins
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Literal, TypeVar

from stepkit.errors import InvalidArgumentError, StoreError
from stepkit.stores._base import BaseStore
from stepkit.stores._records import RunRecord, check_seconds
from stepkit.stores._sqlite_sql import GET_RUN, SCHEMA, WAKE_SCHEMA, is_busy, migrate, run_row

__all__ = ["Handle", "SQLiteConnections"]

_T = TypeVar("_T")


class Handle:
    """One thread's connection; closed when that thread ends and drops it."""

    __slots__ = ("__weakref__", "db")

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __del__(self) -> None:
        with suppress(Exception):
            self.db.close()


class SQLiteConnections(BaseStore):
    """What :class:`~stepkit.stores.SQLiteStore` runs its SQL on (see its docstring)."""

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
        self._handles: weakref.WeakSet[Handle] = weakref.WeakSet()
        self._handles_lock = threading.Lock()
        self._pid = os.getpid()
        self._forked: builtins.list[object] = []
        # ":memory:" is per connection, so all threads share one, one at a time.
        self._shared_lock = threading.Lock() if self._path == ":memory:" else None
        self._shared: Handle | None = None
        with self._guard("open"):
            if self._shared_lock is not None:
                self._shared = self._open()
            self._transaction(self._create_schema)

    # -- connections and transactions ------------------------------------------------------

    def _open(self) -> Handle:
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
        handle = Handle(db)
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
        handle: Handle | None = getattr(self._local, "handle", None)
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

    @staticmethod
    def _row(db: sqlite3.Connection, run_id: str) -> RunRecord | None:
        row = db.execute(GET_RUN, (run_id,)).fetchone()
        return None if row is None else run_row(row)

    def _read(self, body: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``body`` outside an explicit transaction (one statement), retrying when busy."""

        def attempt() -> _T:
            with self._connection() as db:
                return body(db)

        return self._retry(attempt)
