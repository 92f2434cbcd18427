"""Test support: a runner for both drivers and a recording event handler."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from stepkit import Pipeline, RunResult
from stepkit.testing import EventRecorder


class Runner:
    """Runs a pipeline through ``run()`` or ``arun()`` with one call shape."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def run(
        self, pipeline: Pipeline, input: Mapping[str, Any] | None = None, **kw: Any
    ) -> RunResult:
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

    def resume_stored(self, flow: Any, run_id: str, **kw: Any) -> RunResult:
        """``flow.resume(run_id, ...)`` or ``aresume``: a stored run, by id."""
        if self.mode == "sync":
            return flow.resume(run_id, **kw)
        return asyncio.run(flow.aresume(run_id, **kw))

    def __repr__(self) -> str:
        return f"Runner({self.mode})"


def resume(runner: Runner, flow: Any, run_id: str, **kw: Any) -> RunResult:
    """The stored run ``run_id`` resumed through ``runner``'s driver."""
    return runner.resume_stored(flow, run_id, **kw)


class Recorder(EventRecorder):
    """stepkit.testing.EventRecorder, with the views these tests read most."""

    def __init__(self, stop_at: str | None = None) -> None:
        super().__init__(stop_at=stop_at)

    @property
    def contexts(self) -> list[dict[str, Any]]:
        return [e.context for e in self.events]

    @property
    def checkpoints(self) -> dict[str, str]:
        return {e.step_name: e.checkpoint for e in self.events if e.checkpoint is not None}
