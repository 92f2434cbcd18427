"""Stores for durable runs: one :class:`Store` protocol, memory, file and SQLite backends.

Stores persist the JSON text the checkpoint codec produced, never pickles; pick
one directly (``SQLiteStore("runs.db")``) or by URL with :func:`open_store`.
"""

from stepkit.stores._file import FileStore
from stepkit.stores._memory import MemoryStore
from stepkit.stores._protocol import Store
from stepkit.stores._records import RunRecord, RunStatus, VersionRecord, rebuild
from stepkit.stores._sqlite import SQLiteStore
from stepkit.stores._url import open_store

__all__ = [
    "FileStore",
    "MemoryStore",
    "RunRecord",
    "RunStatus",
    "SQLiteStore",
    "Store",
    "VersionRecord",
    "open_store",
    "rebuild",
]
