"""The one error tree of stepkit: every error the library raises on purpose.

Each error also subclasses the built-in exception a caller would naturally
catch (``ValueError`` for malformed input, ``KeyError`` for a missing run,
``TimeoutError`` for a timeout), and carries its context as attributes::

    StepkitError
    ├── InvalidArgumentError        (ValueError, TypeError) bad argument to a public call
    ├── PipelineDefinitionError     (ValueError)  bad pipeline, found at build time
    ├── EventLoopError              (RuntimeError) run() with async code inside a running loop
    ├── StepFailedError                           a step failed after its retries
    ├── StepTimeoutError            (TimeoutError) one attempt of a step ran out of time
    ├── PipelineAbortedError                      the run's abort signal was set
    ├── GraphStepLimitError                       a graph ran ``max_steps`` nodes
    ├── GraphRoutingError                         a graph's selector chose no node
    ├── CheckpointError
    │   ├── InvalidCheckpointError  (ValueError)  not a well-formed checkpoint
    │   ├── CheckpointSignatureError              unsigned, tampered or wrongly signed
    │   ├── CheckpointExpiredError                past its ``expires_at``
    │   ├── CheckpointMismatchError               another pipeline, or a step path that is gone
    │   └── CheckpointEncodeError   (TypeError)   a context value that cannot be encoded
    ├── StoreError                                a store failed (cause chained)
    │   ├── RunNotFoundError        (KeyError)
    │   ├── RunConflictError                      the run is claimed, unfinished or already exists
    │   └── RunExpiredError                       the run's ttl has passed
    └── WorkflowError
        ├── WorkflowDeterminismError              a replay met a recorded step of another kind
        ├── SignalConflictError                   several runs wait on the signal sent
        ├── WorkflowCancelledError                the run was cancelled
        ├── InvalidInputError       (ValueError)  workflow input or signal data failed its schema
        ├── NestedStepError                       ``step.*`` called inside ``step.run``
        ├── NonRetryableError                     raise it to stop retrying at once
        └── RetryAfter                            raise it to retry after ``seconds``

User exceptions are never swallowed or re-typed silently: a failing step's
exception is the ``__cause__`` of the :class:`StepFailedError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "CheckpointEncodeError",
    "CheckpointError",
    "CheckpointExpiredError",
    "CheckpointMismatchError",
    "CheckpointSignatureError",
    "EventLoopError",
    "GraphRoutingError",
    "GraphStepLimitError",
    "InvalidArgumentError",
    "InvalidCheckpointError",
    "InvalidInputError",
    "NestedStepError",
    "NonRetryableError",
    "PipelineAbortedError",
    "PipelineDefinitionError",
    "RunConflictError",
    "RunExpiredError",
    "RetryAfter",
    "RunNotFoundError",
    "SignalConflictError",
    "StepFailedError",
    "StepTimeoutError",
    "StepkitError",
    "StoreError",
    "WorkflowCancelledError",
    "WorkflowDeterminismError",
    "WorkflowError",
]


class StepkitError(Exception):
    """Base class of every error stepkit raises on purpose."""


class InvalidArgumentError(StepkitError, ValueError, TypeError):
    """A public function was called with an argument it cannot accept.

    The message names the argument, what was given and what is expected.
    """


class PipelineDefinitionError(StepkitError, ValueError):
    """The pipeline is malformed: found when it is built, never mid-run."""


class EventLoopError(StepkitError, RuntimeError):
    """``run()`` met async code while an event loop runs in this thread.

    Use ``await pipeline.arun(...)`` from async code instead.
    """


class _LazyCheckpoint:
    """Mixin: a ``checkpoint`` attribute that is encoded only when read.

    Failures are rare, but encoding the context is not free and may itself
    fail (an unencodable value); so the error holds a thunk and encodes on
    first access.
    """

    _checkpoint_thunk: Callable[[], str | None] | None
    _checkpoint_value: str | None

    def _set_checkpoint(self, checkpoint: str | Callable[[], str | None] | None) -> None:
        if callable(checkpoint):
            self._checkpoint_thunk, self._checkpoint_value = checkpoint, None
        else:
            self._checkpoint_thunk, self._checkpoint_value = None, checkpoint

    @property
    def checkpoint(self) -> str | None:
        """The checkpoint after the last completed step (``None`` if none)."""
        if self._checkpoint_thunk is not None:
            thunk, self._checkpoint_thunk = self._checkpoint_thunk, None
            self._checkpoint_value = thunk()
        return self._checkpoint_value


class StepFailedError(_LazyCheckpoint, StepkitError):
    """A step failed after all its attempts.

    Attributes: ``step_name`` (full path), ``attempts``, ``context`` (a copy
    of the context before the step), ``checkpoint`` (after the last completed
    step: fix the cause, then ``pipeline.run_checkpoint(err.checkpoint)``),
    ``run_id``. The step's own exception is ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        step_name: str,
        attempts: int = 1,
        context: Mapping[str, Any] | None = None,
        checkpoint: str | Callable[[], str | None] | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.step_name = step_name
        self.attempts = attempts
        self.context: Mapping[str, Any] = dict(context or {})
        self.run_id = run_id
        self._set_checkpoint(checkpoint)


class StepTimeoutError(StepkitError, TimeoutError):
    """One attempt of a step ran longer than its ``timeout``."""

    def __init__(self, message: str, *, step_name: str = "", timeout: float = 0.0) -> None:
        super().__init__(message)
        self.step_name = step_name
        self.timeout = timeout


class PipelineAbortedError(_LazyCheckpoint, StepkitError):
    """The run's ``abort`` signal was set; ``checkpoint`` resumes it."""

    def __init__(
        self,
        message: str,
        *,
        step_name: str | None = None,
        checkpoint: str | Callable[[], str | None] | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.step_name = step_name
        self.run_id = run_id
        self._set_checkpoint(checkpoint)


class GraphStepLimitError(_LazyCheckpoint, StepkitError):
    """A graph would run more than ``max_steps`` node executions.

    Attributes: ``node`` (the node it would have run next), ``limit``,
    ``steps`` (node executions so far), ``run_id`` and ``checkpoint`` (after
    the last node, not yet routed): resume it with a higher limit, e.g.
    ``graph.run_checkpoint(err.checkpoint, max_steps=200)``.
    """

    def __init__(
        self,
        message: str,
        *,
        node: str,
        limit: int,
        steps: int,
        checkpoint: str | Callable[[], str | None] | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.node = node
        self.limit = limit
        self.steps = steps
        self.run_id = run_id
        self._set_checkpoint(checkpoint)


class GraphRoutingError(_LazyCheckpoint, StepkitError):
    """A conditional edge's selector returned a key its ``path_map`` does not have (or raised).

    Attributes: ``node`` (the node being left), ``key`` (what the selector
    returned), ``allowed`` (the keys of the path map), ``run_id`` and
    ``checkpoint`` (after the node, not yet routed: the node does not run
    again when the run resumes; the selector is asked again). A selector's own
    exception is ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        node: str,
        key: Any,
        allowed: tuple[str, ...],
        checkpoint: str | Callable[[], str | None] | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.node = node
        self.key = key
        self.allowed = allowed
        self.run_id = run_id
        self._set_checkpoint(checkpoint)


class CheckpointError(StepkitError):
    """Base class of the checkpoint errors."""


class InvalidCheckpointError(CheckpointError, ValueError):
    """Not a well-formed stepkit checkpoint (type, base64, JSON, structure, size)."""


class CheckpointSignatureError(CheckpointError):
    """The checkpoint is unsigned, tampered with, or signed with another key."""


class CheckpointExpiredError(CheckpointError):
    """The checkpoint's ``expires_at`` has passed."""

    def __init__(self, message: str, *, expires_at: object = None) -> None:
        super().__init__(message)
        self.expires_at = expires_at


class CheckpointMismatchError(CheckpointError):
    """The checkpoint belongs to another pipeline, or its step path is gone."""


class CheckpointEncodeError(CheckpointError, TypeError):
    """A context value cannot be encoded; ``path`` names where it is."""

    def __init__(self, message: str, *, path: str = "context", type_name: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.type_name = type_name


class StoreError(StepkitError):
    """A store operation failed; the backend's exception is ``__cause__``."""


class RunNotFoundError(StoreError, KeyError):
    """No run with this id exists in the store."""

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RunConflictError(StoreError):
    """The run is claimed by another resume, unfinished, or already exists."""

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


class RunExpiredError(StoreError):
    """The run's ttl has passed: it can no longer be resumed."""

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


class WorkflowError(StepkitError):
    """Base class of the durable-workflow errors."""


class InvalidInputError(WorkflowError, ValueError):
    """Workflow input failed its ``input_schema``; nothing ran."""


class NonRetryableError(WorkflowError):
    """Raise from a step to fail it at once, without further attempts."""


class NestedStepError(WorkflowError):
    """A ``step.*`` call was made inside ``step.run``."""


class WorkflowDeterminismError(WorkflowError):
    """A replayed workflow reached a recorded step ``(id, n)`` with another kind of step.

    ``step_key`` is the step's key (``"id#n"``), ``recorded`` and ``called`` the
    two kinds. The run is marked ``failed`` once (never retried): fix the code
    (or move the changed step to a new id), then ``client.resume(run_id)``.
    """

    def __init__(
        self, message: str, *, step_key: str = "", recorded: str = "", called: str = ""
    ) -> None:
        super().__init__(message)
        self.step_key = step_key
        self.recorded = recorded
        self.called = called


class SignalConflictError(WorkflowError):
    """A signal sent without ``run_id`` matches several waiting runs; nothing was delivered."""

    def __init__(self, message: str, *, signal: str = "", run_ids: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.signal = signal
        self.run_ids = run_ids


class WorkflowCancelledError(WorkflowError):
    """The workflow run was cancelled (``client.cancel(run_id)``); ``reason`` says why."""

    def __init__(
        self, message: str, *, run_id: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.reason = reason


class RetryAfter(WorkflowError):
    """Raise from a ``step.run`` body to retry it after ``seconds`` (a durable sleep).

    The attempt counts against the step's ``retries``.
    """

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"retry after {seconds} s")
        self.seconds = seconds
