"""Shared fixtures: every pipeline test runs through both run() and arun()."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from stepkit import Pipeline, RunResult

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


class Runner:
    """Runs a pipeline through ``run()`` or ``arun()`` with one call shape."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def run(self, pipeline: Pipeline, input: Mapping[str, Any] | None = None, **kw: Any) -> RunResult:
        if self.mode == "sync":
            return pipeline.run(input, **kw)
        return asyncio.run(pipeline.arun(input, **kw))

    def resume(
        self,
        pipeline: Pipeline,
        checkpoint: str,
        override_data: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> RunResult:
        if self.mode == "sync":
            return pipeline.run_checkpoint(checkpoint, override_data, **kw)
        return asyncio.run(pipeline.arun_checkpoint(checkpoint, override_data, **kw))

    def __repr__(self) -> str:
        return f"Runner({self.mode})"


@pytest.fixture(params=["sync", "async"], ids=["run", "arun"])
def runner(request: pytest.FixtureRequest) -> Runner:
    """A runner for each driver: the test body is written once."""
    return Runner(request.param)


class Recorder:
    """An on_step_complete handler that keeps names, copied contexts and checkpoints."""

    def __init__(self, stop_at: str | None = None) -> None:
        self.names: list[str] = []
        self.contexts: list[dict[str, Any]] = []
        self.checkpoints: dict[str, str] = {}
        self.stop_at = stop_at

    def __call__(self, event: Any) -> None:
        self.names.append(event.step_name)
        self.contexts.append(dict(event.context))
        self.checkpoints[event.step_name] = event.checkpoint
        if event.step_name == self.stop_at:
            event.stop_pipeline()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
