"""Each public store call, checked once and turned into what a backend performs.

The sync base (:mod:`stepkit.stores._sync_base`, :mod:`~stepkit.stores._wake_base`)
and natively async backends (:mod:`stepkit.stores._server_async`) both take
their requests from here, so an argument check or the change a write applies
is written once, whatever performs it.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable
from typing import Any, Literal

from stepkit.checkpoints import decode_context
from stepkit.errors import CheckpointError, InvalidArgumentError, RunNotFoundError, StoreError
from stepkit.stores import _transitions
from stepkit.stores._records import (
    RunRecord,
    RunStatus,
    SignalRecord,
    VersionRecord,
    check_id,
    check_seconds,
    check_status,
    check_version_number,
    check_wake,
    rebuild,
    run_problem,
    version_problem,
)
from stepkit.stores._transitions import PurgeRule

__all__ = [
    "check_append",
    "check_create",
    "check_list",
    "claim_and_load_change",
    "cancel_change",
    "delivery",
    "delivery_status",
    "finish_change",
    "found_or_missing",
    "purge_rule",
    "renew_change",
    "snapshot_of",
]

Change = Callable[[RunRecord, float], RunRecord]
#: What ``deliver`` did with a signal.
DeliveryStatus = Literal["delivered", "buffered", "duplicate", "undelivered"]


def check_create(record: RunRecord, first: VersionRecord | None) -> None:
    """``create(record, first)``: a valid record and first version that agree."""
    problem = run_problem(record)
    if problem is None and first is not None:
        problem = version_problem(first)
        if problem is None and first.run_id != record.run_id:
            problem = f"first.run_id {first.run_id!r} differs from {record.run_id!r}"
    if problem is None and record.version != (0 if first is None else first.version):
        problem = (
            f"record.version must be {0 if first is None else first.version} "
            f"({'no' if first is None else 'the first'} version), got {record.version}"
        )
    if problem is not None:
        raise InvalidArgumentError(f"create(): {problem}")
    check_id(record.run_id, "run_id")


def claim_and_load_change(
    run_id: str,
    owner: str,
    lease: float | None,
    recover: bool,
    dead_owner: str | None,
    upto: int | None,
    check: Callable[[RunRecord], None] | None,
    seen: builtins.list[RunRecord],
) -> Change:
    """The claim of ``claim_and_load``: ``check(record)`` first, the record seen to ``seen``."""
    claim = _transitions.claim_change(run_id, owner, lease, recover, None, dead_owner)

    def change(record: RunRecord, now: float) -> RunRecord:
        if check is not None:
            check(record)
        check_version_number(upto, "upto", 1)  # after check(), which may say it better
        seen.append(record)
        return claim(record, now)

    return change


def renew_change(run_id: str, owner: str, lease: float) -> Change:
    check_id(run_id, "run_id")
    check_id(owner, "owner")
    if lease is None:
        raise InvalidArgumentError("renew() needs lease=, a positive number of seconds")
    check_seconds(lease, "lease", allow_zero=False)
    return functools.partial(_transitions.renew, owner=owner, lease=lease)


def check_append(version: VersionRecord, owner: str, lease: float | None) -> None:
    problem = version_problem(version)
    if problem is not None:
        raise InvalidArgumentError(f"append(): {problem}")
    check_id(version.run_id, "run_id")
    check_id(owner, "owner")
    check_seconds(lease, "lease", allow_zero=False)


def finish_change(
    run_id: str,
    owner: str,
    status: RunStatus,
    error: str | None,
    wake_at: float | None,
    waiting_for: str | None,
) -> Change:
    check_id(run_id, "run_id")
    check_id(owner, "owner")
    check_status(status, ("paused", "completed", "failed", "sleeping", "waiting"))
    if status is None:
        raise InvalidArgumentError("finish() needs a status: paused, completed or failed")
    if error is not None and not isinstance(error, str):
        raise InvalidArgumentError(f"error must be a str or None, got {error!r}")
    if wake_at is not None or waiting_for is not None or status in ("sleeping", "waiting"):
        check_wake(status, wake_at, waiting_for)
    return functools.partial(
        _transitions.finish,
        owner=owner,
        status=status,
        error=error,
        wake_at=wake_at,
        waiting_for=waiting_for,
    )


def cancel_change(run_id: str, reason: str | None) -> Change:
    check_id(run_id, "run_id")
    if reason is not None and not isinstance(reason, str):
        raise InvalidArgumentError(f"reason= must be a str or None, got {reason!r}")
    return functools.partial(_transitions.cancel, reason=reason)


def delivery(
    run_id: str, signal: str, data: str, idempotency_key: str | None
) -> tuple[SignalRecord, Change]:
    """The message ``deliver`` stores (its ``seq`` and time are the store's) and the change."""
    check_id(run_id, "run_id")
    check_id(signal, "signal")
    if not isinstance(data, str):
        raise InvalidArgumentError(f"data must be JSON text (a str), got {data!r}")
    if idempotency_key is not None:
        check_id(idempotency_key, "idempotency_key")
    message = SignalRecord(run_id, 0, signal, data, idempotency_key, 0.0)
    return message, functools.partial(_transitions.deliver, signal=signal)


def delivery_status(before: RunRecord | None, signal: str) -> DeliveryStatus:
    """What became of a delivered message: ``_deliver`` returned the run as it was, or None."""
    if before is None:
        return "duplicate"
    return "delivered" if before.waits_for(signal) else "buffered"


def check_list(pipeline: str | None, status: str | None, limit: int | None) -> None:
    if pipeline is not None and not isinstance(pipeline, str):
        raise InvalidArgumentError(f"pipeline must be a str or None, got {pipeline!r}")
    check_status(status)
    check_version_number(limit, "limit", 0)


def purge_rule(expired: bool, older_than: float | None, status: str | None) -> PurgeRule:
    check_seconds(older_than, "older_than", allow_zero=True)
    check_status(status)
    if not expired and older_than is None:
        raise InvalidArgumentError(
            "purge() with expired=False and no older_than has no criterion; refusing to "
            "delete every run (use older_than=0 to mean any age)"
        )
    return PurgeRule(expired=bool(expired), older_than=older_than, status=status)


def found_or_missing(found: Any, run_id: str) -> Any:
    """What a per-run read found; ``RunNotFoundError`` for ``None`` (no such run)."""
    if found is None:
        raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
    return found


def snapshot_of(chain: builtins.list[VersionRecord], run_id: str) -> dict[str, Any]:
    """The decoded context a chain of versions rebuilds; corrupt contents are a StoreError."""
    encoded, last = rebuild(chain)
    try:
        context: dict[str, Any] = decode_context(encoded)
        return context
    except CheckpointError as exc:
        where = f"version {last.version} of run {run_id!r}"
        raise StoreError(f"corrupt stored context of {where}: {exc}") from exc
