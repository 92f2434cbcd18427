"""Shared fixtures: every pipeline test runs through both run() and arun()."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings
from support import Recorder, Runner

from stepkit.stores import FileStore, MemoryStore, SQLiteStore
from stepkit.testing import FakeClock

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", deadline=None, max_examples=2000)
# for debugging: report the first failing example without shrinking it
settings.register_profile(
    "noshrink", deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(params=["sync", "async"], ids=["run", "arun"])
def runner(request: pytest.FixtureRequest) -> Runner:
    """A runner for each driver: the test body is written once."""
    return Runner(request.param)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(params=["memory", "file", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path):  # type: ignore[no-untyped-def]
    """Each embedded store on a FakeClock (``store.test_clock``); ``store.kind`` names it.

    The store contract suite (tests/stores/) declares its own, with every backend.
    """
    clock = FakeClock(1_900_000_000.0)
    made = {
        "memory": lambda: MemoryStore(clock=clock),
        "file": lambda: FileStore(tmp_path / "runs", clock=clock),
        "sqlite": lambda: SQLiteStore(tmp_path / "runs.db", clock=clock),
    }[request.param]()
    made.test_clock = clock
    made.kind = request.param
    yield made
    made.close()
