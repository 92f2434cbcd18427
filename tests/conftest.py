"""Shared fixtures: every pipeline test runs through both run() and arun()."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from support import Recorder, Runner

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(params=["sync", "async"], ids=["run", "arun"])
def runner(request: pytest.FixtureRequest) -> Runner:
    """A runner for each driver: the test body is written once."""
    return Runner(request.param)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
