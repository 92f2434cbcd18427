"""The workflow primitives of :class:`~stepkit.stores.SQLiteStore`: mailbox and wake queries.

A signal and the wake of its run are one transaction; ``due`` and ``waiting``
read the indexes on ``wake_at`` and ``waiting_for`` (see ``_sqlite_sql``).
"""

from __future__ import annotations

import builtins
import sqlite3

from stepkit.errors import RunNotFoundError
from stepkit.stores._base import Change
from stepkit.stores._records import RunRecord, SignalRecord
from stepkit.stores._sqlite_connection import SQLiteConnections
from stepkit.stores._sqlite_sql import DUE, WAITING, run_row
from stepkit.stores._wake_base import due_order

__all__ = ["SQLiteWake"]


class SQLiteWake(SQLiteConnections):
    """Signals into a run's mailbox, due runs and waiting runs, on SQLite."""

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
