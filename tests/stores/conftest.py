"""Fixtures for the store tests: every backend with a fake clock, driven sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stepkit.stores import FileStore, MemoryStore, SQLiteStore
from stepkit.stores._base import BaseStore
from stepkit.testing import FakeClock

BACKENDS: dict[str, Callable[[Path, Callable[[], float]], BaseStore]] = {
    "memory": lambda path, clock: MemoryStore(clock=clock),
    "file": lambda path, clock: FileStore(path / "runs", clock=clock),
    "sqlite": lambda path, clock: SQLiteStore(path / "runs.db", clock=clock),
}


class Api:
    """Calls ``store.name(...)``, or runs ``store.aname(...)`` to completion when async."""

    def __init__(self, store: BaseStore, loop: asyncio.AbstractEventLoop | None) -> None:
        self.store = store
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        if self._loop is None:
            return getattr(self.store, name)
        twin = getattr(self.store, "a" + name)
        loop = self._loop
        return lambda *args, **kwargs: loop.run_until_complete(twin(*args, **kwargs))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path, clock: FakeClock) -> Iterator[BaseStore]:
    with BACKENDS[backend](tmp_path, clock) as opened:
        yield opened


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, store: BaseStore) -> Iterator[Api]:
    if request.param == "sync":
        yield Api(store, None)
        return
    loop = asyncio.new_event_loop()
    try:
        yield Api(store, loop)
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
