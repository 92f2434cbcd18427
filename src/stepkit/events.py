"""Public value objects: what handlers receive and what runs return.

``StepEvent`` and ``RunResult`` compute their checkpoint only when it is
read, so runs whose callers never look at one do no encoding work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from stepkit.errors import StepkitError

__all__ = ["Checkpoint", "RunResult", "StepEvent", "StepRecord", "StepStartEvent"]

StepStatus = Literal["completed", "skipped", "failed"]
RunStatus = Literal["completed", "stopped"]


@dataclass(frozen=True, slots=True)
class StepRecord:
    """How one step went: ``name`` (full path), ``status``, ``duration``, ``attempts``.

    ``status`` is ``"completed"``, ``"skipped"`` (``when`` was false or a
    branch selected nothing) or ``"failed"`` (with ``error`` set, for steps
    whose ``on_error`` let the run go on).
    """

    name: str
    status: StepStatus
    duration: float
    attempts: int
    error: BaseException | None = None


class _EventOwner(Protocol):
    def snapshot(self, step_name: str | None) -> str: ...
    def stop(self, step_name: str) -> None: ...


class StepEvent:
    """Passed to ``on_step_complete`` handlers after every successful step.

    ``context`` is a read-only *live* view of the context, exact during the
    handler call; copy it (``dict(event.context)``) to keep it. Read
    ``checkpoint`` and call ``stop_pipeline()`` inside the handler.
    """

    __slots__ = (
        "_checkpoint",
        "_open",
        "_run",
        "attempt",
        "context",
        "duration",
        "output",
        "run_id",
        "step_name",
    )

    def __init__(
        self,
        step_name: str,
        context: Mapping[str, Any],
        output: Mapping[str, Any] | None,
        duration: float,
        attempt: int,
        run_id: str,
        run: _EventOwner,
    ) -> None:
        self.step_name = step_name
        self.context = context
        self.output = output
        self.duration = duration
        self.attempt = attempt
        self.run_id = run_id
        self._run = run
        self._checkpoint: str | None = None
        self._open = True

    @property
    def checkpoint(self) -> str:
        """The base64 checkpoint of the state right after this step.

        Encoded on first read. Read it during the handler call: afterwards the
        run has moved on and the state it describes is gone.
        """
        if self._checkpoint is None:
            if not self._open:
                raise StepkitError(
                    f"the checkpoint of step {self.step_name!r} was not read during its "
                    "on_step_complete handler, and the run has moved on since; read "
                    "event.checkpoint inside the handler"
                )
            self._checkpoint = self._run.snapshot(self.step_name)
        return self._checkpoint

    def stop_pipeline(self) -> None:
        """Stop the run after this step: no further step runs at any level."""
        if not self._open:
            raise StepkitError("stop_pipeline() must be called during the on_step_complete handler")
        self._run.stop(self.step_name)

    def _close(self) -> None:
        self._open = False

    def __repr__(self) -> str:
        return f"StepEvent(step_name={self.step_name!r}, run_id={self.run_id!r})"


class StepStartEvent:
    """Passed to ``on_step_start`` handlers before a step runs (after its ``when``)."""

    __slots__ = ("context", "run_id", "step_name")

    def __init__(self, step_name: str, context: Mapping[str, Any], run_id: str) -> None:
        self.step_name = step_name
        self.context = context
        self.run_id = run_id

    def __repr__(self) -> str:
        return f"StepStartEvent(step_name={self.step_name!r}, run_id={self.run_id!r})"


RecordTuple = tuple[str, StepStatus, float, int, "BaseException | None"]


class RunResult(Mapping[str, Any]):
    """The outcome of a run: a read-only mapping over the final context.

    ``status`` is ``"completed"`` or ``"stopped"``; ``stopped_at`` names the
    step whose handler stopped the run; ``checkpoint`` resumes after the last
    completed step; ``steps`` lists a :class:`StepRecord` per step.
    """

    __slots__ = (
        "_checkpoint",
        "_context",
        "_records",
        "_snapshot",
        "definition_changed",
        "run_id",
        "status",
        "stopped_at",
    )

    def __init__(
        self,
        context: dict[str, Any],
        *,
        status: RunStatus,
        stopped_at: str | None,
        run_id: str,
        records: list[RecordTuple],
        snapshot: Callable[[], str] | None = None,
        checkpoint: str | None = None,
        definition_changed: bool = False,
    ) -> None:
        self._context = context
        self.status: RunStatus = status
        self.stopped_at = stopped_at
        self.run_id = run_id
        self._records = records
        self._snapshot = snapshot
        self._checkpoint = checkpoint
        self.definition_changed = definition_changed

    def __getitem__(self, key: str) -> Any:
        return self._context[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._context)

    def __len__(self) -> int:
        return len(self._context)

    def __repr__(self) -> str:
        return f"RunResult({self._context!r}, status={self.status!r}, run_id={self.run_id!r})"

    @property
    def context(self) -> Mapping[str, Any]:
        """The final context (read-only)."""
        from types import MappingProxyType

        return MappingProxyType(self._context)

    @property
    def checkpoint(self) -> str:
        """The checkpoint after the last completed step (encoded on first read)."""
        if self._checkpoint is None:
            assert self._snapshot is not None
            self._checkpoint = self._snapshot()
        return self._checkpoint

    @property
    def steps(self) -> tuple[StepRecord, ...]:
        """One record per step that ran or was skipped, in completion order."""
        return tuple(StepRecord(*r) for r in self._records)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A decoded checkpoint, from :func:`stepkit.decode_checkpoint`.

    ``verified`` is true only when a secret was given and the signature
    matched; a checkpoint decoded without a secret is for inspection only.
    """

    pipeline: str
    step_name: str | None
    context: Mapping[str, Any]
    run_id: str
    created_at: datetime
    expires_at: datetime | None
    version: str | None
    fingerprint: str
    position: Any
    format: int = 1
    signed: bool = False
    verified: bool = False
    compressed: bool = False
