"""``PostgresStore``: runs shared by workers on any number of machines, in one PostgreSQL.

psycopg 3 with two connection pools: ``psycopg_pool``'s for the sync methods,
and async connections kept for the async twins, which are natively async. Every
statement runs on its own (autocommit): saving a step is ONE conditional
``UPDATE ... RETURNING`` joined to the ``INSERT`` of its version; a claim reads
the run and writes it back with a compare-and-set on its revision. Needs the extra:
``pip install 'stepkit[postgres]'``.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
import psycopg_pool

from stepkit.errors import InvalidArgumentError, RunConflictError, RunNotFoundError, StoreError
from stepkit.stores import _postgres_sql as q
from stepkit.stores import _transitions
from stepkit.stores._base import Change
from stepkit.stores._chain import checked_chain, target_version
from stepkit.stores._postgres_pool import AsyncPool, Lost, broken
from stepkit.stores._records import (
    RunRecord,
    SignalRecord,
    VersionRecord,
    check_seconds,
    version_problem,
)
from stepkit.stores._server_base import ServerStore
from stepkit.stores._server_ops import Op, adrive, drive, safe_url
from stepkit.stores._sync_base import Loaded
from stepkit.stores._transitions import PurgeRule
from stepkit.stores._wake_base import due_order

__all__ = ["PostgresStore"]

_T = TypeVar("_T")


class PostgresStore(ServerStore):
    """A store in PostgreSQL, safe for any number of threads, processes and machines.

    ``url`` is a libpq URL (``postgresql://user:password@host:5432/db``; query
    parameters such as ``sslmode`` pass through). Tables ``stepkit_runs`` and
    ``stepkit_versions`` are created if missing in ``schema`` (default
    ``public``). ``max_size`` bounds each pool (sync and async); ``timeout``
    (seconds) is how long a call waits to connect before :class:`StoreError`.
    Errors name the URL without its password::

        store = PostgresStore("postgresql://app@db.internal/app")
    """

    _backend_errors = (psycopg.Error, psycopg_pool.PoolTimeout, OSError)

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        max_size: int = 10,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock=clock)
        if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
            raise InvalidArgumentError(
                f"PostgresStore needs a postgresql:// URL, got {url!r}"
                if not isinstance(url, str)
                else f"PostgresStore needs a postgresql:// URL, got {safe_url(url)!r}"
            )
        self._schema = q.check_schema(schema)
        if type(max_size) is not int or max_size < 1:
            raise InvalidArgumentError(f"max_size must be an int >= 1, got {max_size!r}")
        check_seconds(timeout, "timeout", allow_zero=False)
        self._conninfo = url
        self._url = safe_url(url)
        self._password = urlsplit(url).password or ""
        self._timeout = float(timeout)
        self._max_size = max_size
        self._sql: dict[str, str] = {}
        self._apool = AsyncPool(url, max_size, self._timeout)
        try:  # one direct connection first: an unreachable server fails fast and clearly
            with (
                psycopg.connect(url, connect_timeout=max(1, int(timeout))) as conn,
                conn.transaction(),
            ):
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (q.SCHEMA_LOCK,))
                for statement in q.SCHEMA:
                    conn.execute(self._q(statement).encode())
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        self._pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True},
            timeout=self._timeout,
            open=False,
            name=f"stepkit {self._url}",
        )
        self._pool.open(wait=False)

    def __repr__(self) -> str:
        return f"PostgresStore({self._url!r}, schema={self._schema!r})"

    def _q(self, sql: str) -> str:
        found = self._sql.get(sql)
        if found is None:
            found = self._sql[sql] = q.in_schema(sql, self._schema)
        return found

    def _error(self, exc: BaseException) -> StoreError:
        text = str(exc).strip() or type(exc).__name__
        if self._password:
            text = text.replace(self._password, "***")
        if isinstance(exc, (psycopg.OperationalError, psycopg_pool.PoolTimeout, Lost)):
            text = f"cannot reach or lost the connection to PostgreSQL: {text}"
        return StoreError(f"PostgresStore at {self._url}: {text}")

    # -- running ops -----------------------------------------------------------------------

    def _run(self, op: Op[_T]) -> _T:
        try:
            with self._pool.connection() as conn:
                holder = [conn]

                def execute(request: tuple[str, Any]) -> Any:
                    sql, params = request
                    c = holder[0]
                    try:
                        cur = c.execute(self._q(sql), params)
                    except psycopg.OperationalError as exc:
                        if not broken(c):
                            raise
                        self._pool.putconn(c)  # discarded, being broken
                        self._pool.check()  # a restarted server broke the idle ones too
                        holder[0] = self._pool.getconn()
                        raise Lost(str(exc)) from exc
                    return (cur.fetchall() if cur.description is not None else None), cur.rowcount

                try:
                    return drive(op, execute, (psycopg.Error, Lost))
                finally:
                    if holder[0] is not conn:  # give back the replacement, keep the original
                        self._pool.putconn(holder[0])
                        holder[0] = conn
        except (psycopg.Error, psycopg_pool.PoolTimeout, Lost) as exc:
            raise self._error(exc) from exc

    async def _arun(self, op: Op[_T]) -> _T:
        pool = self._apool
        try:
            holder = [await pool.get()]

            async def execute(request: tuple[str, Any]) -> Any:
                sql, params = request
                c = holder[0]
                try:
                    cur = await c.execute(self._q(sql), params)
                except psycopg.OperationalError as exc:
                    if not broken(c):
                        raise
                    pool.put(c)
                    pool.check()
                    holder[0] = await pool.get()
                    raise Lost(str(exc)) from exc
                rows = await cur.fetchall() if cur.description is not None else None
                return rows, cur.rowcount

            try:
                return await adrive(op, execute, (psycopg.Error, Lost))
            finally:
                pool.put(holder[0])
        except (psycopg.Error, Lost) as exc:
            raise self._error(exc) from exc

    def _close(self) -> None:
        self._pool.close()
        self._apool.close()

    # -- ops -------------------------------------------------------------------------------

    @staticmethod
    def _ask(sql: str, params: Any) -> Op[Any]:
        """A read: asked again, on a fresh connection, if the connection broke."""
        try:
            return (yield sql, params)
        except Lost:
            return (yield sql, params)

    def _op_get(self, run_id: str) -> Op[RunRecord | None]:
        rows, _ = yield from self._ask(q.GET, (run_id,))
        return q.run_row(rows[0]) if rows else None

    def _op_insert(self, record: RunRecord, first: VersionRecord | None) -> Op[None]:
        if first is None:
            request = q.INSERT_RUN, q.run_params(record)
        else:
            request = q.INSERT_RUN_AND_FIRST, (*q.run_params(record), *q.version_params(first))
        try:
            _, count = yield request
        except Lost:  # did it land? only if the run now stands as we wrote it
            found = yield from self._op_get(record.run_id)
            if found == record:
                return
            _, count = (None, 0) if found is not None else (yield request)
        if count != 1:
            raise RunConflictError(f"run {record.run_id!r} already exists", run_id=record.run_id)

    def _read(self, run_id: str) -> Op[tuple[RunRecord, int, int]]:
        rows, _ = yield from self._ask(q.GET, (run_id,))
        if not rows:
            raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
        return q.run_row(rows[0]), rows[0][14], rows[0][15]

    def _op_cas(
        self, record: RunRecord, seq: int, rev: int, new: RunRecord, version: VersionRecord | None
    ) -> Op[bool]:
        """Write ``new`` over ``record`` (read at ``seq``/``rev``); whether it was applied."""
        cas = (*q.set_params(new), new.run_id, seq, rev)
        if version is None:
            request = q.CAS, cas
        else:
            request = q.CAS_AND_VERSION, (*cas, *q.version_params(version))
        try:
            _, count = yield request
        except Lost:
            rows, _ = yield from self._ask(q.GET, (record.run_id,))
            return bool(rows) and rows[0][14:16] == (seq, rev + 1) and q.run_row(rows[0]) == new
        except psycopg.errors.UniqueViolation:  # a version row left by a corrupt store
            raise RunConflictError(
                f"run {record.run_id!r} changed concurrently", run_id=record.run_id
            ) from None
        return bool(count == 1)

    def _op_update(
        self, run_id: str, change: Change, version: VersionRecord | None
    ) -> Op[RunRecord]:
        while True:  # optimistic: read, decide with the pure rules, compare-and-set
            record, seq, rev = yield from self._read(run_id)
            new = change(record, self._clock())
            if (yield from self._op_cas(record, seq, rev, new, version)):
                return new

    def _op_claim_and_load(
        self, run_id: str, change: Change, upto: int | None, seen: builtins.list[RunRecord]
    ) -> Op[Loaded]:
        wanted = upto if type(upto) is int and upto >= 1 else None  # else change() says why
        while True:
            rows, _ = yield from self._ask(q.RUN_AND_CHAIN, {"run_id": run_id, "upto": wanted})
            if not rows:
                raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
            record, seq, rev = q.run_row(rows[0]), rows[0][14], rows[0][15]
            claimed = change(record, self._clock())
            target = target_version(claimed, run_id, upto)
            chain = [q.version_row(row[16:]) for row in rows if row[16] is not None]
            chain = checked_chain(run_id, target, chain)  # before claiming: nothing to undo
            if (yield from self._op_cas(record, seq, rev, claimed, None)):
                return seen[-1], claimed, chain

    def _op_append(self, version: VersionRecord, owner: str, lease: float | None) -> Op[None]:
        v, now = version, self._clock()
        params = {
            "run_id": v.run_id,
            "version": v.version,
            "parent": v.parent,
            "step_name": v.step_name,
            "changes": v.changes,
            "removed": "[]" if not v.removed else q.version_params(v)[4],
            "position": v.position,
            "snapshot": v.snapshot,
            "created_at": v.created_at,
            "kind": v.kind,
            "now": now,
            "owner": owner,
            "lease_until": None if lease is None else now + lease,
        }
        for attempt in (1, 2):
            lost = False
            try:
                _, count = yield q.APPEND, params
                if count == 1:
                    return
            except Lost:
                lost = True  # landed or not: the version row says
            except psycopg.errors.UniqueViolation:
                pass
            rows, _ = yield from self._ask(q.VERSION, (v.run_id, v.version))
            record = yield from self._op_get(v.run_id)
            ours = record is not None and record.owner == owner and record.version == v.version
            if ours and rows and q.version_row(rows[0]) == v:
                return  # our own write, applied before the connection broke
            if record is None:
                raise RunNotFoundError(f"no run {v.run_id!r}", run_id=v.run_id)
            _transitions.append(record, now, version=v, owner=owner, lease=lease)  # says why
            if not (lost and attempt == 1):
                break  # else: not applied, and still ours to write: once more
        raise RunConflictError(f"run {v.run_id!r} changed concurrently", run_id=v.run_id)

    def _op_list(
        self, pipeline: str | None, status: str | None, limit: int | None
    ) -> Op[builtins.list[RunRecord]]:
        sql, params = q.list_query(pipeline, status, limit)
        rows, _ = yield from self._ask(sql, params)
        return [q.run_row(row) for row in rows]

    def _op_delete(self, run_id: str) -> Op[bool]:
        _, count = yield q.DELETE, (run_id, run_id, run_id)
        return bool(count == 1)

    def _op_purge(self, rule: PurgeRule) -> Op[int]:
        now = self._clock()
        expired = now if rule.expired else float("-inf")
        stale = float("-inf") if rule.older_than is None else now - rule.older_than
        rows, _ = yield from self._ask(q.PURGE_CANDIDATES, {"expired": expired, "stale": stale})
        doomed = [row for row in rows if rule.matches(q.run_row(row), now)]
        if not doomed:
            return 0
        ids, seqs, revs = ([row[i] for row in doomed] for i in (0, 14, 15))
        rows, _ = yield q.PURGE, (ids, seqs, revs)
        return int(rows[0][0])

    def _op_deliver(self, signal: SignalRecord, change: Change) -> Op[RunRecord | None]:
        run_id, key = signal.run_id, signal.idempotency_key
        while True:
            record, seq, rev = yield from self._read(run_id)
            if key is not None:
                rows, _ = yield from self._ask(q.DUPLICATE, (run_id, key))
                if rows:
                    return None
            now = self._clock()
            new = change(record, now)
            cas = (*q.set_params(new), run_id, seq, rev)
            message = (signal.signal, signal.data, key, now)
            try:
                _, count = yield q.DELIVER, (*cas, *message)
            except Lost:
                if key is None:  # landed or not: without a key, nothing can tell
                    raise
                count = 0  # the next round finds it by its key, or delivers it
            except psycopg.errors.UniqueViolation:
                count = 0  # a concurrent delivery with the same key: the next round says
            if count == 1:
                return record

    def _op_signals(self, run_id: str) -> Op[builtins.list[SignalRecord] | None]:
        rows, _ = yield from self._ask(q.EXISTS, (run_id,))
        if not rows:
            return None
        rows, _ = yield from self._ask(q.SIGNALS, (run_id,))
        return [SignalRecord(*row) for row in rows]

    def _op_due(self, now: float, limit: int | None) -> Op[builtins.list[RunRecord]]:
        rows, _ = yield from self._ask(q.DUE, {"now": now, "limit": limit})
        found = sorted((q.run_row(row) for row in rows), key=due_order)
        return found if limit is None else found[:limit]

    def _op_waiting(self, signal: str, limit: int | None) -> Op[builtins.list[RunRecord]]:
        rows, _ = yield from self._ask(q.WAITING, {"signal": signal, "limit": limit})
        return [q.run_row(row) for row in rows]

    def _op_version(self, run_id: str, number: int) -> Op[VersionRecord | None]:
        rows, _ = yield from self._ask(q.VERSION, (run_id, number))
        return q.version_row(rows[0]) if rows else None

    def _op_chain(self, run_id: str, upto: int | None) -> Op[builtins.list[VersionRecord]]:
        record = yield from self._op_get(run_id)
        target = target_version(record, run_id, upto)
        rows, _ = yield from self._ask(q.CHAIN, {"run_id": run_id, "target": target})
        return checked_chain(run_id, target, [q.version_row(row) for row in rows])

    def _op_history(self, run_id: str) -> Op[builtins.list[VersionRecord] | None]:
        rows, _ = yield from self._ask(q.EXISTS, (run_id,))
        if not rows:
            return None
        rows, _ = yield from self._ask(q.HISTORY, (run_id,))
        found = [q.version_row(row) for row in rows]
        for v in found:
            problem = version_problem(v)
            if problem is not None:
                raise StoreError(f"corrupt row in stepkit_versions: {problem}")
        return found
