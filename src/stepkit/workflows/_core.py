"""The replay core: what each ``step.*`` call does, decided once for sync and async workflows.

A :class:`Replay` is built from a run's versions and mailbox. Each ``step.*``
call takes an identity ``(id, n)`` at call time (:meth:`Replay.begin`), then an
op generator decides: a recorded op returns its stored value (always a
codec-decoded copy) without yielding; a new one yields commands that a driver
performs (:data:`CALL` a step body, :data:`PERSIST` an op record as a version,
:data:`CHILD` create a child run, :data:`HOOK` call observers) and sends back.
Waiting raises :class:`Suspend` (a ``BaseException``, so ``except Exception``
in user code cannot swallow it) after noting when the run is due again.
"""

from __future__ import annotations

import time
import uuid as uuid_module
from collections.abc import Callable, Generator, Iterable
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

from stepkit.checkpoints._decode import from_json
from stepkit.checkpoints._encode import dumps, to_json
from stepkit.errors import (
    InvalidArgumentError,
    InvalidInputError,
    NestedStepError,
    StepFailedError,
    StepTimeoutError,
    WorkflowDeterminismError,
)
from stepkit.stores import SignalRecord, VersionRecord
from stepkit.workflows._events import WorkflowStepEvent
from stepkit.workflows._history import (
    decoded,
    describe,
    failed_error,
    is_failure,
    load_json,
    read_ops,
)
from stepkit.workflows._policy import StepPolicy, next_delay
from stepkit.workflows._schema import validate

__all__ = ["CALL", "CHILD", "HOOK", "PERSIST", "Frontier", "Replay", "Suspend", "child_signal"]

CALL, PERSIST, CHILD, HOOK = "call", "persist", "child", "hook"
OpGen = Generator[tuple[Any, ...], Any, Any]
#: The Replay whose ``step.run`` body is running in this context (NestedStepError guard).
IN_STEP: ContextVar[Any] = ContextVar("stepkit_workflow_in_step", default=None)
#: Signal names that start with this are the runtime's own (a child's completion).
INTERNAL = "stepkit:"


def child_signal(key: str) -> str:
    """The internal signal by which the child run of op ``key`` reports its outcome."""
    return f"{INTERNAL}child:{key}"


class Suspend(BaseException):
    """Unwinds a workflow function that must wait; the run is released until it is due."""


class Frontier(Suspend):
    """A dry replay (``assert_replays``) reached an op that was never recorded."""


class Replay:
    """One execution of a workflow run: recorded ops, identities, mailbox, suspension."""

    def __init__(
        self,
        *,
        run_id: str,
        versions: Iterable[VersionRecord],
        signals: Iterable[SignalRecord] = (),
        clock: Callable[[], float] = time.time,
        policy: StepPolicy | None = None,
        hooks: tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]] = ((), (), ()),
        dry: bool = False,
        deadline: float | None = None,
    ) -> None:
        self.run_id = run_id
        self.clock = clock
        self.policy = policy or StepPolicy()
        self.hooks = hooks
        self.dry = dry
        self.deadline = deadline
        self.counts: dict[str, int] = {}
        self.visited: set[str] = set()
        self.wake_at: float | None = None
        self.waits: set[str] = set()
        self.fatal: BaseException | None = None  # drift or timeout: fail the run, never retry
        self.current: str | None = None
        self.lost: Exception | None = None  # set when the claim was lost (heartbeat or append)
        self.version, self.input_json, self.records, self.attempt = read_ops(versions, run_id)
        self.mailbox = list(signals)
        self.consumed = {
            r["seq"] for r in self.records.values() if r.get("kind") == "signal" and "seq" in r
        }

    def restart(self) -> None:
        """Begin a new attempt of the whole workflow: failed ops run again, the rest replay."""
        self.records = {k: r for k, r in self.records.items() if not is_failure(r)}
        self.counts.clear()
        self.visited.clear()
        self.attempt += 1
        self.wake_at = None
        self.waits.clear()

    # -- identity and determinism --------------------------------------------------------

    def begin(self, step_id: str, kind: str) -> tuple[str, dict[str, Any] | None]:
        """Take the identity ``(id, n)`` of a ``step.*`` call; check its recorded kind."""
        if IN_STEP.get() is self:
            raise NestedStepError(
                f"step.{kind}({step_id!r}) was called inside the body of step.run "
                f"{self.current!r}: call steps from the workflow function only"
            )
        if type(step_id) is not str or not step_id:
            raise InvalidArgumentError(f"a step id must be a non-empty str, got {step_id!r}")
        n = self.counts.get(step_id, 0)
        self.counts[step_id] = n + 1
        key = f"{step_id}#{n}"
        self.visited.add(key)
        record = self.records.get(key)
        if record is not None and record.get("kind") != kind:
            recorded = record.get("kind")
            error = WorkflowDeterminismError(
                f"step {key!r} was recorded as a {recorded!r} step but the workflow now calls "
                f"step.{_method(kind)}() there: the code changed under a running workflow. "
                "Restore the old call (or give the new one another id), then resume the run",
                step_key=key,
                recorded=str(recorded),
                called=kind,
            )
            if self.fatal is None:
                self.fatal = error
            raise error
        if self.deadline is not None and record is None and self.clock() >= self.deadline:
            raise self._out_of_time(key)
        return key, record

    def _out_of_time(self, key: str) -> StepTimeoutError:
        """The run passed its workflow ``timeout=``: it fails (once, never retried)."""
        error = StepTimeoutError(f"workflow run {self.run_id!r} ran out of time at {key!r}")
        if self.fatal is None:
            self.fatal = error
        return error

    def idempotency_key(self, step_id: str) -> str:
        """A key stable across replays for the op ``step_id`` in flight (or the latest one)."""
        if self.current is not None and self.current.rpartition("#")[0] == step_id:
            return f"{self.run_id}/{self.current}"
        n = max(self.counts.get(step_id, 1) - 1, 0)
        return f"{self.run_id}/{step_id}#{n}"

    def suspend(self, key: str, wake_at: float | None, signal: str | None = None) -> BaseException:
        """Note when the run is due again (the earliest of all waits) and what it waits on.

        Past the workflow's deadline, the run fails instead (``StepTimeoutError``).
        """
        if self.deadline is not None:
            if self.clock() >= self.deadline:
                return self._out_of_time(key)
            wake_at = self.deadline if wake_at is None else min(wake_at, self.deadline)
        if wake_at is not None:
            self.wake_at = wake_at if self.wake_at is None else min(self.wake_at, wake_at)
        if signal is not None:
            self.waits.add(signal)
        return Frontier() if self.dry else Suspend()

    def _new(self) -> None:
        if self.dry:
            raise Frontier()

    def _event(self, key: str, kind: str, attempt: int, **fields: Any) -> WorkflowStepEvent:
        return WorkflowStepEvent(
            run_id=self.run_id, step_key=key, kind=kind, attempt=attempt, **fields
        )

    # -- the ops -------------------------------------------------------------------------

    def run(
        self,
        key: str,
        record: dict[str, Any] | None,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        policy: StepPolicy,
    ) -> OpGen:
        attempt = 1
        if record is not None:
            if "value" in record:
                return decoded(record["value"], key)
            if "retry" not in record:
                raise failed_error(key, record, self.run_id)
            self._new()
            if self.clock() < record["at"]:
                raise self.suspend(key, record["at"])
            attempt = int(record["retry"]) + 1
        self._new()
        start, complete, error = self.hooks
        while True:
            if start:
                yield (HOOK, start, self._event(key, "run", attempt))
            began = time.perf_counter()
            self.current = key
            try:
                out = yield (CALL, fn, args, policy.timeout)
            except Exception as exc:
                if error:
                    yield (HOOK, error, self._event(key, "run", attempt, error=exc))
                delay = next_delay(policy, attempt, exc)
                if delay is None:
                    failure = {"kind": "run", "error": describe(exc), "attempts": attempt}
                    yield (PERSIST, key, failure)
                    raise StepFailedError(
                        f"step {key!r} failed after {attempt} attempt(s): "
                        f"{type(exc).__name__}: {exc}",
                        step_name=key,
                        attempts=attempt,
                        run_id=self.run_id,
                    ) from exc
                if delay > 0:
                    at = self.clock() + delay
                    retry = {"kind": "run", "retry": attempt, "at": at, "error": describe(exc)}
                    yield (PERSIST, key, retry)
                    raise self.suspend(key, at) from None
                attempt += 1
                continue
            finally:
                self.current = None
            encoded = to_json(out, path=f"the value of step {key!r}")
            yield (PERSIST, key, {"kind": "run", "value": encoded})
            value = from_json(encoded)
            if complete:
                duration = time.perf_counter() - began
                event = self._event(key, "run", attempt, duration=duration, output=value)
                yield (HOOK, complete, event)
            return value

    def sleep(self, key: str, record: dict[str, Any] | None, until: float | None) -> OpGen:
        if record is not None:
            until = float(record["until"])
        else:
            self._new()
            assert until is not None
            yield (PERSIST, key, {"kind": "sleep", "until": until})
        if self.clock() < until:
            raise self.suspend(key, until)
        return None

    def wait(
        self,
        key: str,
        record: dict[str, Any] | None,
        signal: str,
        timeout: float | None,
        schema: Any,
    ) -> OpGen:
        if record is not None:
            if "value" in record:
                return decoded(record["value"], key)
            if record.get("timeout"):
                return None
            if "error" in record:
                raise InvalidInputError(str(record["error"].get("message", "")))
        self._new()
        message = next(
            (m for m in self.mailbox if m.signal == signal and m.seq not in self.consumed), None
        )
        if message is not None:
            self.consumed.add(message.seq)
            encoded = load_json(message.data, f"signal {message.seq} of run {self.run_id!r}")
            data = decoded(encoded, key)
            base = {"kind": "signal", "signal": signal, "seq": message.seq}
            if schema is not None:
                try:
                    validate(schema, data, f"signal {signal!r}")
                except InvalidInputError as exc:
                    yield (PERSIST, key, {**base, "error": describe(exc)})
                    raise
            yield (PERSIST, key, {**base, "value": encoded})
            return decoded(encoded, key)
        if record is None:
            until = None if timeout is None else self.clock() + timeout
            yield (PERSIST, key, {"kind": "signal", "signal": signal, "until": until})
        else:
            until = record.get("until")
        if until is not None and self.clock() >= until:
            yield (PERSIST, key, {"kind": "signal", "signal": signal, "timeout": True})
            return None
        raise self.suspend(key, until, signal)

    def invoke(
        self,
        key: str,
        record: dict[str, Any] | None,
        workflow_id: str,
        data: Any,
        timeout: float | None,
    ) -> OpGen:
        child_id = f"{self.run_id}/{key}"
        if record is not None:
            if "value" in record:
                return decoded(record["value"], key)
            if "error" in record:
                raise failed_error(key, record, self.run_id)
        self._new()
        name = child_signal(key)
        message = next((m for m in self.mailbox if m.signal == name), None)
        if message is not None:
            outcome = load_json(message.data, f"outcome of child {child_id!r}")
            if "value" in outcome:
                yield (
                    PERSIST,
                    key,
                    {"kind": "invoke", "child": child_id, "value": outcome["value"]},
                )
                return decoded(outcome["value"], key)
            failure = {"kind": "invoke", "child": child_id, "error": outcome.get("error", {})}
            yield (PERSIST, key, failure)
            raise failed_error(key, failure, self.run_id)
        if record is None:
            encoded = to_json(data, path=f"the input of child {child_id!r}")
            yield (CHILD, child_id, workflow_id, encoded, key)
            until = None if timeout is None else self.clock() + timeout
            yield (PERSIST, key, {"kind": "invoke", "child": child_id, "until": until})
        else:
            until = record.get("until")
        if until is not None and self.clock() >= until:
            failure = {
                "kind": "invoke",
                "child": child_id,
                "error": {"type": "StepTimeoutError", "message": f"child {child_id!r} timed out"},
            }
            yield (PERSIST, key, failure)
            raise failed_error(key, failure, self.run_id)
        raise self.suspend(key, until, name)

    def memo(self, key: str, record: dict[str, Any] | None, kind: str) -> OpGen:
        if record is not None:
            return decoded(record["value"], key)
        self._new()
        value: Any = (
            datetime.fromtimestamp(self.clock(), timezone.utc)
            if kind == "now"
            else uuid_module.uuid4()
        )
        encoded = to_json(value)
        yield (PERSIST, key, {"kind": kind, "value": encoded})
        return from_json(encoded)

    def op_fields(self, key: str, record: dict[str, Any]) -> tuple[int, str]:
        """Take the next version number of the run for op ``key``; its changes (JSON text)."""
        self.version += 1
        self.records[key] = record
        return self.version, dumps({key: record})

    def op_version(self, key: str, record: dict[str, Any], created_at: float) -> VersionRecord:
        """The version that records op ``key`` (the next one of the run)."""
        number, changes = self.op_fields(key, record)
        parent = number - 1 if number > 1 else None
        return VersionRecord(
            self.run_id, number, parent, key, changes, (), "", None, created_at, "op"
        )


def _method(kind: str) -> str:
    return {"signal": "wait_for_signal"}.get(kind, kind)
