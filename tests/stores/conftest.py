"""Fixtures for the store tests: every backend with a fake clock, driven sync and async.

The backends are declared once, here: the built-in stores, the third-party
example of docs/stores.md (``examples/custom_store.py``), so the same contract
suite runs against a store written outside the package, and the server stores
when ``STEPKIT_TEST_POSTGRES_URL`` / ``STEPKIT_TEST_REDIS_URL`` name real servers
(``eval "$(.ci/servers start)"``); each test then gets its own schema or key prefix.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stepkit.stores import BaseStore, FileStore, MemoryStore, SQLiteStore
from stepkit.testing import FakeClock

from . import servers

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_store.py"


def _example_store_class() -> type[BaseStore]:
    spec = importlib.util.spec_from_file_location("example_custom_store", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls: type[BaseStore] = module.DictStore
    return cls


DictStore = _example_store_class()

BACKENDS: dict[str, Callable[[Path, Callable[[], float]], BaseStore]] = {
    "memory": lambda path, clock: MemoryStore(clock=clock),
    "file": lambda path, clock: FileStore(path / "runs", clock=clock),
    "sqlite": lambda path, clock: SQLiteStore(path / "runs.db", clock=clock),
    "example": lambda path, clock: DictStore(clock=clock),
    "postgres": servers.postgres_store,
    "redis": servers.redis_store,
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
    servers.skip_unless_available(str(request.param))
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path, clock: FakeClock) -> Iterator[BaseStore]:
    with BACKENDS[backend](tmp_path, clock) as opened:
        yield opened
    servers.drop(opened)


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, store: BaseStore) -> Iterator[Api]:
    if request.param == "sync":
        yield Api(store, None)
        return
    loop = asyncio.new_event_loop()
    try:
        yield Api(store, loop)
    finally:
        if servers.is_server_store(store):  # its async pool lives on this loop
            loop.run_until_complete(store.aclose())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
