"""One step function call under its policy: timeout, retries, output checks, merging.

Pure decisions: sleeping and calling are commands for the driver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stepkit.engine._commands import Call, CallTimeout, Gen, Sleep
from stepkit.engine._merge import merge_into
from stepkit.engine._run import StepFailure, log
from stepkit.errors import NonRetryableError
from stepkit.pipeline._plan import Policy, RetryOn


def call_with_policy(fn: Callable[..., Any], arg: Any, policy: Policy, path: str) -> Gen:
    """Call ``fn(arg)`` with the policy's timeout and retries; return (out, attempts)."""
    attempt = 1
    timeout = policy.timeout
    while True:
        try:
            if timeout is None:
                out = yield Call(fn, arg)
            else:
                out = yield CallTimeout(fn, arg, timeout, path)
            return out, attempt
        except Exception as exc:
            if not should_retry(policy.retries, policy.retry_on, attempt, exc):
                raise StepFailure(exc, attempt) from exc
            delay = policy.retry_delay
            seconds = float(delay(attempt, exc)) if callable(delay) else float(delay)
            log.info(
                "step %s attempt %d failed (%s: %s); retrying in %.3gs",
                path,
                attempt,
                type(exc).__name__,
                exc,
                seconds,
            )
            if seconds > 0:
                yield Sleep(seconds)
            attempt += 1


def should_retry(retries: int, retry_on: RetryOn, attempt: int, exc: BaseException) -> bool:
    """Whether attempt number ``attempt``, which raised ``exc``, is followed by another.

    ``NonRetryableError`` ends the retries at once, whatever ``retry_on`` says.
    A pure decision, shared by every caller that retries (pipelines, workflows).
    """
    if attempt > retries or isinstance(exc, NonRetryableError):
        return False
    if isinstance(retry_on, tuple):
        return isinstance(exc, retry_on)
    return bool(retry_on(exc))


def check_output(out: Any, path: str, attempts: int) -> None:
    if type(out) is not dict and not isinstance(out, Mapping):
        raise StepFailure(
            TypeError(
                f"step {path!r} returned {type(out).__name__}; a step must return a "
                "mapping of changes to merge into the context, or None"
            ),
            attempts,
        )


def merge(ctx: dict[str, Any], out: Mapping[str, Any], policy: Policy, path: str) -> None:
    try:
        merge_into(ctx, out, policy.merge, path)
    except ValueError as exc:
        raise StepFailure(exc, 1) from exc
