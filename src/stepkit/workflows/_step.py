"""``step``: the ops a workflow calls, as plain calls (``Step``) or awaitables (``AsyncStep``).

Both take the op's identity and ask the replay core at call time; they differ
only in how the commands of a new op are performed (:mod:`stepkit.workflows._perform`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from stepkit._checks import check_id, check_seconds
from stepkit.errors import InvalidArgumentError
from stepkit.workflows._core import INTERNAL, OpGen, Replay
from stepkit.workflows._policy import _UNSET, step_policy

__all__ = ["AsyncStep", "Step"]

T = TypeVar("T")


def seconds_of(value: object, name: str) -> float:
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    seconds = check_seconds(value, name, allow_zero=True)
    if seconds is None:
        raise InvalidArgumentError(f"{name}= must be seconds or a timedelta, got None")
    return seconds


def optional_seconds(value: object, name: str) -> float | None:
    return None if value is None else seconds_of(value, name)


def check_signal(signal: object) -> str:
    name = check_id(signal, "signal")
    if name.startswith(INTERNAL):
        raise InvalidArgumentError(
            f"signal names starting with {INTERNAL!r} are reserved: {name!r}"
        )
    return name


class _Ops:
    """The op calls shared by both facades: identity, argument checks, the core's generator."""

    __slots__ = ("_client", "_core", "_workflow")

    def __init__(self, core: Replay, workflow: Any, client: Any) -> None:
        self._core, self._workflow, self._client = core, workflow, client

    def _run(
        self,
        step_id: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        retries: Any,
        retry_delay: Any,
        retry_on: Any,
        timeout: Any,
    ) -> OpGen:
        core = self._core
        key, record = core.begin(step_id, "run")
        if not callable(fn):
            raise InvalidArgumentError(
                f"step.run({step_id!r}, fn): fn must be callable, got {fn!r}"
            )
        policy = step_policy(core.policy, retries, retry_delay, retry_on, timeout)
        return core.run(key, record, fn, args, policy)

    def _sleep(self, step_id: str, seconds: float | None, until: float | None) -> OpGen:
        key, record = self._core.begin(step_id, "sleep")
        if record is None and until is None:
            until = self._core.clock() + (seconds or 0.0)
        return self._core.sleep(key, record, until)

    def _until(self, when: object) -> float:
        if not isinstance(when, dt.datetime) or when.tzinfo is None:
            raise InvalidArgumentError(
                f"sleep_until() needs an aware datetime (with a tzinfo), got {when!r}"
            )
        return when.timestamp()

    def _wait(self, step_id: str, signal: str, timeout: Any, schema: Any) -> OpGen:
        name = check_signal(signal)
        seconds = optional_seconds(timeout, "timeout")
        if schema is None:
            schema = self._workflow.signals.get(name)
        elif name not in self._workflow.signals:
            self._workflow.signals[name] = schema  # senders in this process check it too
        key, record = self._core.begin(step_id, "signal")
        return self._core.wait(key, record, name, seconds, schema)

    def _invoke(self, step_id: str, workflow: Any, data: Any, timeout: Any) -> OpGen:
        child_id = workflow if isinstance(workflow, str) else getattr(workflow, "id", None)
        if not isinstance(child_id, str) or self._client.workflow_named(child_id) is None:
            raise InvalidArgumentError(
                f"step.invoke({step_id!r}, ...): {workflow!r} is not a workflow of this client; "
                "register it with @client.workflow first"
            )
        seconds = optional_seconds(timeout, "timeout")
        key, record = self._core.begin(step_id, "invoke")
        return self._core.invoke(key, record, child_id, data, seconds)

    def _memo(self, step_id: str, kind: str) -> OpGen:
        key, record = self._core.begin(step_id, kind)
        return self._core.memo(key, record, kind)


class Step(_Ops):
    """The ``step`` of a plain ``def`` workflow: each op returns its value."""

    __slots__ = ("_drive",)

    def __init__(
        self, core: Replay, workflow: Any, client: Any, drive: Callable[[OpGen], Any]
    ) -> None:
        super().__init__(core, workflow, client)
        self._drive = drive

    def run(
        self,
        id: str,
        fn: Callable[..., T],
        /,
        *args: Any,
        retries: int = _UNSET,
        retry_delay: Any = _UNSET,
        retry_on: Any = _UNSET,
        timeout: float | None = _UNSET,
    ) -> T:
        """Run ``fn(*args)`` once per run (memoized); retried under the step policy."""
        value: T = self._drive(self._run(id, fn, args, retries, retry_delay, retry_on, timeout))
        return value

    def sleep(self, id: str, duration: float | dt.timedelta) -> None:
        """Suspend the run for ``duration`` (seconds or a timedelta); no process waits."""
        self._drive(self._sleep(id, seconds_of(duration, "duration"), None))

    def sleep_until(self, id: str, when: dt.datetime) -> None:
        """Suspend the run until the aware datetime ``when``."""
        self._drive(self._sleep(id, None, self._until(when)))

    def wait_for_signal(
        self,
        id: str,
        *,
        signal: str,
        timeout: float | dt.timedelta | None = None,
        schema: Any = None,
    ) -> Any:
        """The data of the next ``signal`` sent to this run, or ``None`` after ``timeout``."""
        return self._drive(self._wait(id, signal, timeout, schema))

    def invoke(
        self,
        id: str,
        workflow: Any,
        data: Any = None,
        *,
        timeout: float | dt.timedelta | None = None,
    ) -> Any:
        """Start the child run ``"<run>/<id>#<n>"`` once and return its result."""
        return self._drive(self._invoke(id, workflow, data, timeout))

    def now(self, id: str) -> dt.datetime:
        """The current time (aware, UTC), recorded: replays see the same value."""
        value: dt.datetime = self._drive(self._memo(id, "now"))
        return value

    def uuid(self, id: str) -> Any:
        """A random UUID, recorded: replays see the same value."""
        return self._drive(self._memo(id, "uuid"))


class AsyncStep(_Ops):
    """The ``step`` of an ``async def`` workflow: each op returns an awaitable.

    The identity is taken when the op is called, so ``asyncio.gather`` numbers
    ops in source order whatever finishes first.
    """

    __slots__ = ("_start",)

    def __init__(
        self, core: Replay, workflow: Any, client: Any, start: Callable[[OpGen], Awaitable[Any]]
    ) -> None:
        super().__init__(core, workflow, client)
        self._start = start

    def run(
        self,
        id: str,
        fn: Callable[..., Any],
        /,
        *args: Any,
        retries: int = _UNSET,
        retry_delay: Any = _UNSET,
        retry_on: Any = _UNSET,
        timeout: float | None = _UNSET,
    ) -> Awaitable[Any]:
        """Run ``fn(*args)`` (sync or async) once per run (memoized); retried under the policy."""
        return self._start(self._run(id, fn, args, retries, retry_delay, retry_on, timeout))

    def sleep(self, id: str, duration: float | dt.timedelta) -> Awaitable[None]:
        """Suspend the run for ``duration`` (seconds or a timedelta); no process waits."""
        return self._start(self._sleep(id, seconds_of(duration, "duration"), None))

    def sleep_until(self, id: str, when: dt.datetime) -> Awaitable[None]:
        """Suspend the run until the aware datetime ``when``."""
        return self._start(self._sleep(id, None, self._until(when)))

    def wait_for_signal(
        self,
        id: str,
        *,
        signal: str,
        timeout: float | dt.timedelta | None = None,
        schema: Any = None,
    ) -> Awaitable[Any]:
        """The data of the next ``signal`` sent to this run, or ``None`` after ``timeout``."""
        return self._start(self._wait(id, signal, timeout, schema))

    def invoke(
        self,
        id: str,
        workflow: Any,
        data: Any = None,
        *,
        timeout: float | dt.timedelta | None = None,
    ) -> Awaitable[Any]:
        """Start the child run ``"<run>/<id>#<n>"`` once and return its result."""
        return self._start(self._invoke(id, workflow, data, timeout))

    def now(self, id: str) -> Awaitable[dt.datetime]:
        """The current time (aware, UTC), recorded: replays see the same value."""
        return self._start(self._memo(id, "now"))

    def uuid(self, id: str) -> Awaitable[Any]:
        """A random UUID, recorded: replays see the same value."""
        return self._start(self._memo(id, "uuid"))


def ready(gen: OpGen) -> tuple[bool, Any, BaseException | None, Any]:
    """Advance a new op to its first command: (done, value, error, command)."""
    try:
        command = next(gen)
    except StopIteration as stop:
        return True, stop.value, None, None
    except BaseException as exc:
        return True, None, exc, None
    return False, None, None, command
