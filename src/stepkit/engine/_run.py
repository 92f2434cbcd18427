"""What one run is made of while it runs: its mutable state, shared by every level.

The commands the engine yields are in :mod:`stepkit.engine._commands`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from stepkit.engine._frames import Frame
from stepkit.engine._position import position_tree
from stepkit.events import RecordTuple

log = logging.getLogger("stepkit")


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
        "max_steps",
        "persister",
        "quiet",
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
        # step paths left out of debug logs and the summary (log=False); set when logging
        self.quiet: frozenset[str] = frozenset()
        # a graph's max_steps given on resume (run_checkpoint/resume), for the top-level graph
        self.max_steps: int | None = None

    def snapshot(self, step_name: str | None = None) -> str:
        """Encode the current state as a checkpoint string."""
        return self.encoder(position_tree(self.root), step_name or self.last_step, self.ctx)

    def snapshot_now(self) -> Callable[[], str]:
        """A thunk for the checkpoint of the state as it is now (for errors)."""
        pos, step, ctx = position_tree(self.root), self.last_step, dict(self.ctx)
        return lambda: self.encoder(pos, step, ctx)

    def stop(self, step_name: str) -> None:
        if not self.stopped:
            self.stopped, self.stopped_at = True, step_name


class StepFailure(Exception):
    """Internal: a step function failed after ``attempts`` attempts."""

    def __init__(self, exc: BaseException, attempts: int) -> None:
        super().__init__(str(exc))
        self.exc, self.attempts = exc, attempts
