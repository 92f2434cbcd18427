"""Stores for durable runs: the ``Store``/``AsyncStore`` protocols, ``BaseStore``, and backends.

Stores persist the JSON text the checkpoint codec produced, never pickles; pick
one directly (``SQLiteStore("runs.db")``) or by URL with :func:`open_store`. A new
backend subclasses :class:`BaseStore` and implements a handful of primitives
(see ``docs/stores.md``). The file and SQLite backends load on first use; the
PostgreSQL and Redis ones too, and need the extras ``stepkit[postgres]`` /
``stepkit[redis]``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from stepkit.stores._base import BaseStore, Change
from stepkit.stores._memory import MemoryStore
from stepkit.stores._protocol import AsyncStore, Store, is_async_store, is_store
from stepkit.stores._records import (
    RunRecord,
    RunStatus,
    SignalRecord,
    StepRow,
    VersionKind,
    VersionRecord,
    rebuild,
)
from stepkit.stores._transitions import PurgeRule, newest_first

if TYPE_CHECKING:
    from stepkit.stores._file import FileStore
    from stepkit.stores._postgres import PostgresStore
    from stepkit.stores._redis import RedisStore
    from stepkit.stores._sqlite import SQLiteStore
    from stepkit.stores._url import open_store

__all__ = [
    "AsyncStore",
    "BaseStore",
    "Change",
    "FileStore",
    "MemoryStore",
    "PostgresStore",
    "PurgeRule",
    "RedisStore",
    "RunRecord",
    "RunStatus",
    "SQLiteStore",
    "SignalRecord",
    "StepRow",
    "Store",
    "VersionKind",
    "VersionRecord",
    "is_async_store",
    "is_store",
    "newest_first",
    "open_store",
    "rebuild",
]

# backends with heavy imports (sqlite3, fcntl, psycopg, redis...) load when first named
_LAZY = {
    "FileStore": "stepkit.stores._file",
    "PostgresStore": "stepkit.stores._postgres",
    "RedisStore": "stepkit.stores._redis",
    "SQLiteStore": "stepkit.stores._sqlite",
    "open_store": "stepkit.stores._url",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
