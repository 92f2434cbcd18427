"""The engine's commands and level outcomes: what the pure core asks a driver to do.

The core (:mod:`stepkit.engine._level`) yields one command at a time; a driver
(:mod:`stepkit.engine._drivers`) performs it and sends the result back into the
core (or throws the exception in). Commands are slotted values that a driver
reads and drops; it never keeps one after sending its result.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from stepkit.events import StepEvent, StepStartEvent

__all__ = [
    "DONE",
    "ENDED",
    "STOPPED",
    "Call",
    "CallTimeout",
    "Command",
    "Emit",
    "ErrorHooks",
    "Gen",
    "Outcome",
    "Parallel",
    "Persist",
    "Sleep",
    "StartHooks",
]

Handlers = tuple[Callable[..., Any], ...]


@dataclass(slots=True)
class Call:
    """``fn(arg)``, awaited if it returns an awaitable; sends back its value.

    The hot path: one per step function call, so a driver checks for it first.
    """

    fn: Callable[[Any], Any]
    arg: Any


@dataclass(slots=True)
class CallTimeout:
    """``fn(arg)`` with a per-attempt timeout of ``seconds`` (a sync ``fn`` runs in a thread).

    Raises :class:`~stepkit.errors.StepTimeoutError` (naming ``step_name``) into
    the core when the call does not finish in time.
    """

    fn: Callable[[Any], Any]
    arg: Any
    seconds: float
    step_name: str


@dataclass(slots=True)
class Emit:
    """Call each ``on_step_complete`` handler with ``event``, in order, awaiting each."""

    handlers: Handlers
    event: StepEvent


@dataclass(slots=True)
class StartHooks:
    """Call each ``on_step_start`` handler with ``event``, in order, awaiting each."""

    handlers: Handlers
    event: StepStartEvent


@dataclass(slots=True)
class ErrorHooks:
    """Call each ``on_error`` handler with ``(step_name, exc)``, in order, awaiting each."""

    handlers: Handlers
    step_name: str
    exc: BaseException


@dataclass(slots=True)
class Sleep:
    """Wait ``seconds`` with the run's ``sleep`` (a retry delay)."""

    seconds: float


@dataclass(slots=True)
class Parallel:
    """Drive each generator concurrently (threads or tasks); send back their outcomes.

    The result is a list, in the generators' order, of ``(True, return value)``
    or ``(False, exception)``: one failing item never hides the others.
    """

    gens: Sequence[Gen]


@dataclass(slots=True)
class Persist:
    """Save a completed step of a durable run (``persister.save`` / ``asave``).

    ``keys`` are the top-level context keys the step changed, ``removed`` the
    ones it removed; the persister reads their values and the position itself.
    """

    persister: Any
    step_name: str
    keys: tuple[str, ...]
    removed: tuple[str, ...]


Command = Call | CallTimeout | Emit | StartHooks | ErrorHooks | Sleep | Parallel | Persist
Gen = Generator[Command, Any, Any]

# How a level (or one node of it) ended.
Outcome = Literal[0, 1, 2]
DONE: Final = 0  # ran to its end
STOPPED: Final = 1  # a handler called stop_pipeline(): nothing more runs at any level
ENDED: Final = 2  # on_error="skip_remaining": this level ends early; its container completes
