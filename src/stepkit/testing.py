"""Helpers for testing code that uses stepkit: record events, fake time, stop on cue.

>>> from stepkit import Pipeline
>>> from stepkit.testing import EventRecorder
>>> recorder = EventRecorder(stop_at="double")
>>> p = Pipeline("p").step("add", lambda c: {"a": 1}).step("double", lambda c: {"a": 2})
>>> p.run(on_step_complete=recorder).status
'stopped'
>>> recorder.names
['add', 'double']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stepkit.events import StepEvent

__all__ = ["EventRecorder", "FakeClock", "FakeSleep", "RecordedEvent"]


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """A step event as it was during its handler call (context copied)."""

    step_name: str
    context: dict[str, Any]
    output: Any
    attempt: int
    checkpoint: str | None


class EventRecorder:
    """An ``on_step_complete`` handler that keeps every event.

    ``checkpoints=True`` (the default) reads each event's checkpoint, so that
    ``recorder.checkpoint("step")`` can resume from any step later; pass
    ``False`` for contexts that cannot be encoded. ``stop_at`` names a step
    after which the run stops (``event.stop_pipeline()``).
    """

    def __init__(self, *, stop_at: str | None = None, checkpoints: bool = True) -> None:
        self.events: list[RecordedEvent] = []
        self.stop_at = stop_at
        self._checkpoints = checkpoints

    def __call__(self, event: StepEvent) -> None:
        self.events.append(
            RecordedEvent(
                step_name=event.step_name,
                context=dict(event.context),
                output=event.output,
                attempt=event.attempt,
                checkpoint=event.checkpoint if self._checkpoints else None,
            )
        )
        if event.step_name == self.stop_at:
            event.stop_pipeline()

    @property
    def names(self) -> list[str]:
        """The step paths, in the order their events fired."""
        return [e.step_name for e in self.events]

    def checkpoint(self, step_name: str) -> str:
        """The checkpoint taken after ``step_name`` (the last one, if it ran twice)."""
        for event in reversed(self.events):
            if event.step_name == step_name and event.checkpoint is not None:
                return event.checkpoint
        raise KeyError(f"no recorded checkpoint for step {step_name!r}; recorded: {self.names}")


class FakeClock:
    """A clock for ``clock=`` options and stores: ``clock.now`` seconds, moved by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSleep:
    """A ``sleep=`` that records the delays instead of waiting (works sync and async)."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.delays: list[float] = []
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.clock is not None:
            self.clock.advance(seconds)


def assert_replays(workflow: Any, store_or_driver: Any, run_id: str) -> None:
    """Replay a stored workflow run against today's code, writing nothing.

    Raises :class:`~stepkit.errors.WorkflowDeterminismError` when the code calls
    another kind of step where the run recorded one, or when a run that
    completed now completes without reaching a recorded step.
    """
    from stepkit.workflows._replay_check import check_replay  # workflows load when used

    check_replay(workflow, store_or_driver, run_id)
