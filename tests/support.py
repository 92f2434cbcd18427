"""Test support: a runner for both drivers and a recording event handler."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from stepkit import Pipeline, RunResult


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

    def __repr__(self) -> str:
        return f"Runner({self.mode})"


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
