"""The retry policy of one ``step.run`` (§2's options) and the decision after a failed attempt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stepkit._checks import check_count, check_seconds
from stepkit.errors import InvalidArgumentError, NonRetryableError, RetryAfter
from stepkit.pipeline._plan import RETRY_ON_HELP, retry_on_of

__all__ = ["StepPolicy", "next_delay", "step_policy"]

RetryDelay = float | Callable[[int, BaseException], float] | None
RetryOn = tuple[type[BaseException], ...] | Callable[[BaseException], bool]


@dataclass(frozen=True, slots=True)
class StepPolicy:
    """``retries`` after the first attempt, the delay before each, what to retry, a timeout."""

    retries: int = 3
    retry_delay: RetryDelay = None
    retry_on: RetryOn = (Exception,)
    timeout: float | None = None


def check_retry_delay(value: object) -> RetryDelay:
    if value is None or callable(value):
        return value
    check_seconds(value, "retry_delay", allow_zero=True)
    return float(value)  # type: ignore[arg-type]


def check_retry_on(value: object) -> RetryOn:
    checked = retry_on_of(value)
    if checked is None:
        raise InvalidArgumentError(f"{RETRY_ON_HELP}, got {value!r}")
    return checked


_UNSET: Any = object()


def step_policy(
    defaults: StepPolicy,
    retries: Any = _UNSET,
    retry_delay: Any = _UNSET,
    retry_on: Any = _UNSET,
    timeout: Any = _UNSET,
) -> StepPolicy:
    """``defaults`` (the workflow's) with the options given to one ``step.run``, checked."""
    if retries is _UNSET and retry_delay is _UNSET and retry_on is _UNSET and timeout is _UNSET:
        return defaults
    return StepPolicy(
        retries=defaults.retries if retries is _UNSET else check_count(retries, "retries"),
        retry_delay=(
            defaults.retry_delay if retry_delay is _UNSET else check_retry_delay(retry_delay)
        ),
        retry_on=defaults.retry_on if retry_on is _UNSET else check_retry_on(retry_on),
        timeout=defaults.timeout if timeout is _UNSET else check_seconds(timeout, "timeout"),
    )


def next_delay(policy: StepPolicy, attempt: int, exc: BaseException) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or ``None``: no more attempts.

    ``NonRetryableError`` stops at once; ``RetryAfter(seconds)`` sets the delay
    (and still counts against ``retries``); ``retry_on`` filters the rest.
    """
    if isinstance(exc, NonRetryableError) or attempt > policy.retries:
        return None
    if isinstance(exc, RetryAfter):
        return max(0.0, float(exc.seconds))
    retry_on = policy.retry_on
    if isinstance(retry_on, tuple):
        if not isinstance(exc, retry_on):
            return None
    elif not retry_on(exc):
        return None
    delay = policy.retry_delay
    if delay is None:
        return 0.0
    return max(0.0, float(delay(attempt, exc) if callable(delay) else delay))
