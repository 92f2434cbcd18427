"""How a step ends: completed (recorded, persisted, announced) or failed (hooks, error mode).

Generators like the engine's: they yield commands and never perform them.
"""

from __future__ import annotations

from typing import Any

from stepkit.engine._commands import DONE, ENDED, STOPPED, Emit, ErrorHooks, Gen, Persist
from stepkit.engine._position import Frame
from stepkit.engine._run import Run, log
from stepkit.errors import StepFailedError
from stepkit.events import StepEvent
from stepkit.pipeline._plan import Node, Policy

__all__ = ["complete", "failed", "record_failure"]


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
    if run.debug:
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
        raise StepFailedError(
            f"step {path!r} failed after {attempts} attempt(s): {type(exc).__name__}: {exc}",
            step_name=path,
            attempts=attempts,
            context=frame.ctx,
            checkpoint=run.snapshot_now(),
            run_id=run.run_id,
        ) from exc
    return (yield from record_failure(run, frame, node, policy, path, exc, attempts))


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
