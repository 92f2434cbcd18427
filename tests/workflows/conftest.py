"""Fixtures of the workflow tests: every driver, and each workflow as ``def`` and ``async def``.

A test writes its workflow once, as an ``async def`` body; the ``flavor``
fixture registers it either as that ``async def`` or as a plain ``def``
workflow whose ``step`` calls are the sync ones (see :func:`as_def`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stepkit.errors import NestedStepError
from stepkit.testing import FakeClock
from stepkit.workflows import Client, FileSystemDriver, InMemoryDriver, SQLiteDriver
from stepkit.workflows._perform import Ready


class _Awaitify:
    """Wraps a sync ``step``: each op runs at once; its outcome is returned as an awaitable."""

    def __init__(self, step: Any) -> None:
        self._step = step

    def __getattr__(self, name: str) -> Any:
        op = getattr(self._step, name)

        def call(*args: Any, **kwargs: Any) -> Ready:
            try:
                return Ready(op(*args, **kwargs), None)
            except NestedStepError:
                raise  # refused at call time, inside a step body
            except Exception as exc:
                return Ready(None, exc)

        return call


def as_def(body: Callable[..., Any]) -> Callable[..., Any]:
    """A plain ``def`` workflow running an ``async def`` body on the sync ``step``."""

    def workflow(ctx: Any, step: Any) -> Any:
        coro = body(ctx, _Awaitify(step))
        try:
            coro.send(None)
        except StopIteration as stop:
            return stop.value
        raise AssertionError("the body awaited something other than a step")  # pragma: no cover

    workflow.__name__ = body.__name__
    return workflow


DRIVERS = ["memory", "file", "sqlite"]


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        return InMemoryDriver()
    if request.param == "file":
        return FileSystemDriver(tmp_path / "runs")
    return SQLiteDriver(tmp_path / "runs.db")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(driver: Any, clock: FakeClock) -> Client:
    return Client(driver=driver, clock=clock, owner="worker-1")


@pytest.fixture(params=["def", "async"])
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def register(client: Client, flavor: str) -> Callable[..., Any]:
    """``register(body, id=..., **options)``: the body as a workflow of the test's flavor."""

    def make(body: Callable[..., Any], **options: Any) -> Any:
        options.setdefault("id", body.__name__)
        fn = body if flavor == "async" else as_def(body)
        return client.workflow(**options)(fn)

    return make
