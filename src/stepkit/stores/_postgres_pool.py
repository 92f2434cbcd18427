"""The connections of :class:`~stepkit.stores.PostgresStore`'s async twins, and lost ones."""

from __future__ import annotations

import builtins
import contextlib
import threading
from typing import Any

import psycopg

__all__ = ["AsyncPool", "Lost", "broken"]


class Lost(Exception):
    """The connection broke during a request: it may or may not have been applied."""


def broken(conn: Any) -> bool:
    return bool(conn.broken or conn.closed)


class AsyncPool:
    """The async connections: idle ones are kept for the next call, from any event loop.

    ``psycopg_pool.AsyncConnectionPool`` belongs to the event loop that opened it,
    while a store is often shared by several (``asyncio.run`` per call, threads);
    a psycopg ``AsyncConnection`` is not tied to a loop, so one list serves them all.
    """

    def __init__(self, conninfo: str, keep: int, timeout: float) -> None:
        self._conninfo = conninfo
        self._keep = keep
        self._timeout = max(1, round(timeout))
        self._idle: builtins.list[psycopg.AsyncConnection[Any]] = []
        self._lock = threading.Lock()
        self._closed = False

    async def get(self) -> psycopg.AsyncConnection[Any]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is not None and not broken(conn):
            return conn
        return await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=self._timeout
        )

    def put(self, conn: psycopg.AsyncConnection[Any]) -> None:
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if not broken(conn) and idle:
            with self._lock:
                if not self._closed and len(self._idle) < self._keep:
                    self._idle.append(conn)
                    return
        finish(conn)

    def check(self) -> None:
        """Forget the idle connections: after a lost one, the server may have restarted."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            finish(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.check()


def finish(conn: psycopg.AsyncConnection[Any]) -> None:
    """Close an async connection without awaiting (its socket, at once)."""
    with contextlib.suppress(Exception):
        conn.pgconn.finish()
