"""Drivers: where a client keeps its runs, as §3 stores (memory, files, SQLite, any store)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from stepkit.errors import InvalidArgumentError
from stepkit.stores import BaseStore, MemoryStore

__all__ = ["Driver", "FileSystemDriver", "InMemoryDriver", "SQLiteDriver", "store_of"]


class Driver:
    """Opens the store a client uses, once; every client given this driver shares that store.

    The store is opened with the clock of the first client that uses it, so a
    ``FakeClock`` given to that client drives leases and wake times too.
    """

    def __init__(self) -> None:
        self._store: BaseStore | None = None
        self._lock = threading.Lock()

    def _open(self, clock: Callable[[], float]) -> BaseStore:
        raise NotImplementedError

    def open(self, clock: Callable[[], float]) -> BaseStore:
        with self._lock:
            if self._store is None:
                self._store = self._open(clock)
            return self._store

    @property
    def store(self) -> BaseStore | None:
        """The store, once a client opened it (``None`` before)."""
        return self._store


class InMemoryDriver(Driver):
    """Runs in this process's memory (a ``MemoryStore``): for tests and scripts."""

    def _open(self, clock: Callable[[], float]) -> BaseStore:
        return MemoryStore(clock=clock)

    def __repr__(self) -> str:
        return "InMemoryDriver()"


class FileSystemDriver(Driver):
    """Runs in a folder (a ``FileStore``), safe with several processes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = os.fspath(path)

    def _open(self, clock: Callable[[], float]) -> BaseStore:
        from stepkit.stores import FileStore

        return FileStore(self.path, clock=clock)

    def __repr__(self) -> str:
        return f"FileSystemDriver({self.path!r})"


class SQLiteDriver(Driver):
    """Runs in one SQLite file (a ``SQLiteStore``), safe with several processes."""

    def __init__(self, path: str | os.PathLike[str], **options: Any) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.options = options

    def _open(self, clock: Callable[[], float]) -> BaseStore:
        from stepkit.stores import SQLiteStore

        return SQLiteStore(self.path, clock=clock, **self.options)

    def __repr__(self) -> str:
        return f"SQLiteDriver({self.path!r})"


def store_of(driver: Any, clock: Callable[[], float]) -> BaseStore:
    """The store behind ``driver``: a :class:`Driver`, or a store (any ``BaseStore``) itself."""
    if isinstance(driver, Driver):
        return driver.open(clock)
    if isinstance(driver, BaseStore):
        return driver
    raise InvalidArgumentError(
        f"driver= must be InMemoryDriver(), FileSystemDriver(path), SQLiteDriver(path) "
        f"or a stepkit store, got {driver!r}"
    )
