"""How a step ends: completed (recorded, persisted, announced) or failed (hooks, error mode).

Also the two steps that need no level of their own: a transform, and a
function item of a parallel step.

Generators like the engine's: they yield commands and never perform them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from time import perf_counter as _clock
from types import MappingProxyType
from typing import Any

from stepkit.engine._attempts import call_with_policy, check_output, merge
from stepkit.engine._commands import (
    DONE,
    ENDED,
    STOPPED,
    Emit,
    ErrorHooks,
    Gen,
    Persist,
    StartHooks,
)
from stepkit.engine._frames import Frame, ItemState, item_output
from stepkit.engine._run import Run, StepFailure, log
from stepkit.errors import StepFailedError
from stepkit.events import StepEvent, StepStartEvent
from stepkit.pipeline._plan import FnItem, Node, Policy

__all__ = [
    "complete",
    "complete_container",
    "complete_item",
    "failed",
    "record_failure",
    "run_fn_item",
    "run_transform",
]


def complete(
    run: Run,
    frame: Frame,
    name: str,
    path: str,
    out: Any,
    duration: float,
    attempts: int,
    removed: tuple[str, ...] = (),
) -> Gen:
    """Record a completed step and emit its event; return DONE or STOPPED."""
    frame.done = name
    frame.child = None
    run.records.append((path, "completed", duration, attempts, None))
    run.last_step = path
    if run.persister is not None:
        yield _persist(run, frame, path, out, removed)
    if run.debug and path not in run.quiet:
        log.debug("step %s completed in %.6fs (attempts: %d)", path, duration, attempts)
    if run.handlers:
        event = StepEvent(path, frame.view, out, duration, attempts, run.run_id, run)
        try:
            yield Emit(run.handlers, event)
        finally:
            event._close()
        if run.stopped:
            return STOPPED
    return DONE


def complete_item(
    run: Run,
    state: ItemState,
    path: str,
    before: Mapping[str, Any],
    out: Mapping[str, Any] | None,
    duration: float,
    attempts: int,
) -> Gen:
    """Record a parallel function item that succeeded and emit its event; DONE or STOPPED.

    Its output is kept in the parallel progress first, so the item's checkpoint
    (and a durable run's version) resumes without running it again. The
    event's context is the item's own: the context before the step with the
    item's output over it.
    """
    state.out = {} if out is None else dict(out)
    run.records.append((path, "completed", duration, attempts, None))
    run.last_step = path
    if run.persister is not None:
        yield Persist(run.persister, path, (), ())  # the position carries the output
    if run.debug and path not in run.quiet:
        log.debug("step %s completed in %.6fs (attempts: %d)", path, duration, attempts)
    if run.handlers:
        view = MappingProxyType({**before, **state.out})
        event = StepEvent(path, view, out, duration, attempts, run.run_id, run)
        try:
            yield Emit(run.handlers, event)
        finally:
            event._close()
        if run.stopped:
            return STOPPED
    return DONE


def complete_container(
    run: Run, frame: Frame, inner: Frame, node: Node, policy: Policy, path: str, t0: float
) -> Gen:
    """Complete a nested pipeline or branch; merge its writes if it ran on its own copy.

    The container's merge= rule is judged against the context as it was when
    the container started (which its own copy left untouched).
    """
    if inner.ctx is frame.ctx:
        return (yield from complete(run, frame, node.name, path, None, _clock() - t0, 1))
    out, removed = item_output(inner, frame.ctx)
    merge(frame.ctx, out, policy, path)
    for key in removed:
        frame.ctx.pop(key, None)
    if frame.written is not None:
        frame.written.update(out)
    duration = _clock() - t0
    return (yield from complete(run, frame, node.name, path, out, duration, 1, tuple(removed)))


def _persist(run: Run, frame: Frame, path: str, out: Any, removed: tuple[str, ...]) -> Persist:
    """The Persist command for a step: which top-level keys of the run context it changed.

    Steps inside a parallel item change the item's own context, which the
    position carries; they change no top-level key.
    """
    if frame.ctx is not run.ctx or out is None:
        return Persist(run.persister, path, (), ())
    return Persist(run.persister, path, tuple(out), removed)


def failed(
    run: Run,
    frame: Frame,
    node: Node,
    policy: Policy,
    path: str,
    exc: BaseException,
    attempts: int,
) -> Gen:
    log.warning(
        "step %s failed after %d attempt(s): %s: %s", path, attempts, type(exc).__name__, exc
    )
    if run.error_hooks:
        yield ErrorHooks(run.error_hooks, path, exc)
    if policy.on_error == "raise":
        run.records.append((path, "failed", 0.0, attempts, exc))  # for the summary
        raise StepFailedError(
            failure_message(path, attempts, exc),
            step_name=path,
            attempts=attempts,
            context=frame.ctx,
            checkpoint=run.snapshot_now(),
            run_id=run.run_id,
        ) from exc
    return (yield from record_failure(run, frame, node, policy, path, exc, attempts))


def failure_message(path: str, attempts: int, exc: BaseException) -> str:
    """What a :class:`StepFailedError` says: the step, its attempts, the cause, and a hint."""
    message = f"step {path!r} failed after {attempts} attempt(s): {type(exc).__name__}: {exc}"
    if isinstance(exc, TypeError) and "'mappingproxy' object does not support item" in str(exc):
        message += (
            " (the context a step receives is read-only: return the changes instead, "
            "e.g. `return {'key': value}`)"
        )
    return message


def record_failure(
    run: Run,
    frame: Frame,
    node: Node,
    policy: Policy,
    path: str,
    exc: BaseException,
    attempts: int,
) -> Gen:
    """A failure its error mode lets pass: record it, persist the new position."""
    run.records.append((path, "failed", 0.0, attempts, exc))
    frame.child = None
    frame.done = node.name
    if run.persister is not None:
        yield _persist(run, frame, path, None, ())
    return ENDED if policy.on_error == "skip_remaining" else DONE


def run_transform(run: Run, frame: Frame, node: Node, policy: Policy, path: str) -> Gen:
    """A transform: its function returns the whole new context, which replaces it."""
    t0 = _clock()
    item = node.items[0]
    assert isinstance(item, FnItem)
    out, attempts = yield from call_with_policy(item.fn, frame.view, policy, path)
    if not isinstance(out, Mapping):
        raise StepFailure(
            TypeError(
                f"transform {path!r} returned {type(out).__name__}; a transform must "
                "return the whole new context as a mapping (use .step() to return "
                "only the changes"
                + ("; return {} to clear the context on purpose)" if out is None else ")")
            ),
            attempts,
        )
    new = dict(out)
    removed = tuple(k for k in frame.ctx if k not in new) if run.persister is not None else ()
    frame.ctx.clear()
    frame.ctx.update(new)
    if frame.written is not None:
        frame.written.update(new)
    return (yield from complete(run, frame, node.name, path, new, _clock() - t0, attempts, removed))


def run_fn_item(
    run: Run,
    state: ItemState,
    fn: Callable[..., Any],
    view: Mapping[str, Any],
    policy: Policy,
    path: str,
) -> Gen:
    """One function item of a parallel step: a step of its own, named ``<step>/<item>``."""
    if run.debug and path not in run.quiet:
        log.debug("step %s starting", path)
    if run.start_hooks:
        yield StartHooks(run.start_hooks, StepStartEvent(path, view, run.run_id))
    t0 = _clock()
    out, attempts = yield from call_with_policy(fn, view, policy, path)
    if out is not None:
        check_output(out, path, attempts)
    return (yield from complete_item(run, state, path, view, out, _clock() - t0, attempts))
