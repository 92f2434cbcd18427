"""The options of one run, checked once when ``run()``/``run_checkpoint()`` is called.

``Pipeline``'s typed methods build a :class:`RunOptions` with :func:`run_options`
and hand it down; nothing below re-reads keyword arguments or re-checks them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stepkit._checks import check_callable, check_event, check_id, check_seconds
from stepkit.errors import InvalidArgumentError
from stepkit.pipeline._plan import as_hooks

__all__ = ["RunOptions", "run_options"]

Hooks = tuple[Callable[..., Any], ...]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What the caller of one run asked for (the pipeline's own options are on the pipeline)."""

    on_step_complete: Hooks = ()
    on_step_start: Hooks = ()
    on_error: Hooks = ()
    abort: Any = None
    run_id: str | None = None
    checkpoint_ttl: float | None = None
    sleep: Callable[[float], Any] | None = None
    clock: Callable[[], float] | None = None
    log: bool | None = None
    strict: bool = False
    max_steps: int | None = None  # a graph's step limit, replaced for the rest of the run


#: A run with no options at all (the common call, built once).
NO_OPTIONS = RunOptions()


def run_options(
    *,
    on_step_complete: Any = None,
    on_step_start: Any = None,
    on_error: Any = None,
    abort: Any = None,
    run_id: Any = None,
    checkpoint_ttl: Any = None,
    sleep: Any = None,
    clock: Any = None,
    log: Any = None,
    strict: Any = False,
    max_steps: Any = None,
) -> RunOptions:
    """Check the run options a caller gave and freeze them (types are not trusted at run time)."""
    if (
        on_step_complete is None
        and on_step_start is None
        and on_error is None
        and abort is None
        and run_id is None
        and checkpoint_ttl is None
        and sleep is None
        and clock is None
        and log is None
        and strict is False
        and max_steps is None
    ):
        return NO_OPTIONS
    if log is not None and not isinstance(log, bool):
        raise InvalidArgumentError(f"log= must be True, False or None, got {log!r}")
    if not isinstance(strict, bool):
        raise InvalidArgumentError(f"strict= must be True or False, got {strict!r}")
    if max_steps is not None and (
        isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1
    ):
        raise InvalidArgumentError(
            f"max_steps= must be an int >= 1 (the node executions the graph may run in "
            f"all, those before the checkpoint included), got {max_steps!r}"
        )
    return RunOptions(
        on_step_complete=as_hooks(on_step_complete, "on_step_complete", InvalidArgumentError),
        on_step_start=as_hooks(on_step_start, "on_step_start", InvalidArgumentError),
        on_error=as_hooks(on_error, "on_error", InvalidArgumentError),
        abort=check_event(abort, "abort"),
        run_id=None if run_id is None else check_id(run_id, "run_id"),
        checkpoint_ttl=check_seconds(checkpoint_ttl, "checkpoint_ttl"),
        sleep=check_callable(sleep, "sleep"),
        clock=check_callable(clock, "clock"),
        log=log,
        strict=strict,
        max_steps=max_steps,
    )
