"""What one run is made of while it runs: its mutable state and the engine's commands.

The engine (:mod:`stepkit.engine._level`) yields the commands; the drivers
(:mod:`stepkit.engine._drivers`) perform them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping
from typing import Any

from stepkit.engine._position import Frame, position_of
from stepkit.events import RecordTuple

log = logging.getLogger("stepkit")

# Commands. A command is a tuple whose first element is one of these.
CALL = 0  # (CALL, fn, arg) -> fn(arg), awaited if it returns an awaitable
CALL_TIMEOUT = 1  # (CALL_TIMEOUT, fn, arg, seconds, step_name)
EMIT = 2  # (EMIT, handlers, event) -> each handler(event), in order, awaited
ERROR_HOOKS = 3  # (ERROR_HOOKS, handlers, step_name, exc) -> each handler(step_name, exc)
SLEEP = 4  # (SLEEP, seconds)
PARALLEL = 5  # (PARALLEL, [generator, ...]) -> [(True, value) | (False, exc), ...]
START_HOOKS = 6  # (START_HOOKS, handlers, start_event) -> each handler(start_event)
PERSIST = 7  # (PERSIST, persister, step_name, changed keys, removed keys) -> persister.save(...)

# Level outcomes.
DONE = 0
STOPPED = 1
ENDED = 2  # on_error="skip_remaining": this level ends early

Command = tuple[Any, ...]
Gen = Generator[Command, Any, Any]


class Run:
    """The mutable state of one run, shared by every level and item."""

    __slots__ = (
        "abort",
        "ctx",
        "debug",
        "encoder",
        "error_hooks",
        "handlers",
        "last_step",
        "persister",
        "records",
        "root",
        "run_id",
        "start_hooks",
        "stopped",
        "stopped_at",
    )

    def __init__(
        self,
        ctx: dict[str, Any],
        run_id: str,
        *,
        handlers: tuple[Callable[..., Any], ...] = (),
        start_hooks: tuple[Callable[..., Any], ...] = (),
        error_hooks: tuple[Callable[..., Any], ...] = (),
        abort: Any = None,
        encoder: Callable[[Any, str | None, Mapping[str, Any]], str],
    ) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.handlers = handlers
        self.start_hooks = start_hooks
        self.error_hooks = error_hooks
        self.abort = abort
        self.encoder = encoder
        self.root = Frame(ctx)
        self.records: list[RecordTuple] = []
        self.stopped = False
        self.stopped_at: str | None = None
        self.last_step: str | None = None
        self.debug = log.isEnabledFor(logging.DEBUG)  # decided once, not per step
        self.persister: Any = None  # set for durable runs (stores)

    def snapshot(self, step_name: str | None = None) -> str:
        """Encode the current state as a checkpoint string."""
        return self.encoder(position_of(self.root), step_name or self.last_step, self.ctx)

    def snapshot_now(self) -> Callable[[], str]:
        """A thunk for the checkpoint of the state as it is now (for errors)."""
        pos, step, ctx = position_of(self.root), self.last_step, dict(self.ctx)
        return lambda: self.encoder(pos, step, ctx)

    def stop(self, step_name: str) -> None:
        if not self.stopped:
            self.stopped, self.stopped_at = True, step_name


class StepFailure(Exception):
    """Internal: a step function failed after ``attempts`` attempts."""

    def __init__(self, exc: BaseException, attempts: int) -> None:
        super().__init__(str(exc))
        self.exc, self.attempts = exc, attempts
