"""The pure rules of a run's life in a store: claim, renew, append, finish, purge, list order.

A backend loads a run under its lock (or in a transaction), calls one of these
with the store clock's ``now``, and persists the record it returns; they never
do I/O, so every backend (and a third-party one) applies the same rules.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from stepkit.errors import InvalidArgumentError, RunConflictError, RunExpiredError
from stepkit.stores._records import (
    SUSPENDED,
    RunRecord,
    RunStatus,
    VersionRecord,
    check_id,
    check_seconds,
    check_version_number,
)

__all__ = [
    "PurgeRule",
    "append",
    "cancel",
    "claim",
    "deliver",
    "finish",
    "is_due",
    "lease_is_live",
    "newest_first",
    "renew",
]


def lease_is_live(record: RunRecord, now: float) -> bool:
    """Whether ``record`` is held under a lease that has not run out (``lease_until > now``)."""
    return (
        record.status == "running" and record.lease_until is not None and record.lease_until > now
    )


def is_due(record: RunRecord, now: float) -> bool:
    """Whether a worker should pick ``record`` up now (see :meth:`Store.due`).

    A ``sleeping`` or ``waiting`` run whose ``wake_at`` has come, or a
    ``running`` run whose lease has run out (its process died).
    """
    if record.status in SUSPENDED:
        return record.wake_at is not None and record.wake_at <= now
    return (
        record.status == "running" and record.lease_until is not None and record.lease_until <= now
    )


def _when(moment: float, now: float) -> str:
    try:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
    except (OverflowError, OSError, ValueError):
        stamp = repr(moment)
    return f"{stamp} (in {moment - now:.3g} s)"


def _running_conflict(
    record: RunRecord, now: float, *, recover: bool, dead_owner: str | None
) -> RunConflictError | None:
    """Why a ``running`` run cannot be taken over now, or ``None`` if it can."""
    run_id, lease_until = record.run_id, record.lease_until
    if lease_until is not None and lease_until <= now:
        return None  # the lease ran out: its holder stopped renewing it
    if recover and dead_owner is not None:
        if dead_owner == record.owner:
            return None  # the caller names the holder as dead
        return RunConflictError(
            f"run {run_id!r} is held by owner {record.owner!r}, not by the dead_owner "
            f"{dead_owner!r} named: that process may still be running it",
            run_id=run_id,
        )
    if lease_until is None:
        if recover:
            return None  # no lease to wait for (a run claimed without one)
        return RunConflictError(
            f"run {run_id!r} is already running (claimed without a lease); "
            "pass recover=True if its process is gone",
            run_id=run_id,
        )
    named = "recover=True takes over only an expired lease; " if recover else ""
    return RunConflictError(
        f"run {run_id!r} is already running, held by a live owner {record.owner!r} until "
        f"{_when(lease_until, now)}: {named}wait for the lease to expire, or, if that "
        f"process is gone, pass recover=True with dead_owner={record.owner!r}",
        run_id=run_id,
    )


def claim(
    record: RunRecord,
    now: float,
    *,
    owner: str,
    lease: float | None,
    recover: bool,
    expect_version: int | None,
    dead_owner: str | None = None,
    due: bool = False,
) -> RunRecord:
    """Return ``record`` claimed by ``owner``, or raise why it cannot be claimed.

    From ``paused``, ``failed``, ``sleeping`` or ``waiting``: always. From
    ``running``: only once its lease has expired, or with ``recover=True`` when
    ``dead_owner`` is its owner or it has no lease at all; a live lease is never
    taken over otherwise. Never from ``completed`` or ``cancelled``. With
    ``due=True`` only a run that :func:`is_due` (a worker's claim: of N workers
    that saw the run due, exactly one wins). The claim clears ``wake_at`` and
    ``waiting_for``.
    """
    run_id = record.run_id
    if record.expires_at is not None and record.expires_at < now:
        raise RunExpiredError(f"run {run_id!r} expired; it cannot be resumed", run_id=run_id)
    if expect_version is not None and record.version != expect_version:
        raise RunConflictError(
            f"run {run_id!r} is at version {record.version}, not {expect_version}: "
            "it moved on since it was read",
            run_id=run_id,
        )
    if record.status in ("completed", "cancelled"):
        raise RunConflictError(
            f"run {run_id!r} is {record.status}; nothing to resume", run_id=run_id
        )
    if due and not is_due(record, now):
        raise RunConflictError(
            f"run {run_id!r} is {record.status} and not due: another worker took it",
            run_id=run_id,
        )
    if record.status == "running":
        conflict = _running_conflict(record, now, recover=recover, dead_owner=dead_owner)
        if conflict is not None:
            raise conflict
    return dataclasses.replace(
        record,
        status="running",
        owner=owner,
        lease_until=None if lease is None else now + lease,
        error=None,
        updated_at=now,
        wake_at=None,
        waiting_for=None,
    )


def undo_claim(record: RunRecord, now: float, *, before: RunRecord, owner: str) -> RunRecord:
    """Return ``record``, claimed by ``owner`` from ``before`` and not used, as ``before`` was.

    Only while ``owner`` still holds it and nothing was appended since.
    """
    lost = _lost_claim(record, owner)
    if lost is not None:
        raise lost
    if record.version != before.version:
        raise RunConflictError(f"run {record.run_id!r} moved on since", run_id=record.run_id)
    return dataclasses.replace(
        record,
        status=before.status,
        error=before.error,
        owner=before.owner,
        lease_until=before.lease_until,
        updated_at=before.updated_at,
        wake_at=before.wake_at,
        waiting_for=before.waiting_for,
    )


def claim_change(
    run_id: str,
    owner: str,
    lease: float | None,
    recover: bool,
    expect_version: int | None,
    dead_owner: str | None,
    due: bool = False,
) -> Callable[[RunRecord, float], RunRecord]:
    """The claim ``store.claim(...)`` applies (see :func:`claim`), its arguments checked."""
    check_id(run_id, "run_id")
    check_id(owner, "owner")
    check_seconds(lease, "lease", allow_zero=False)
    check_version_number(expect_version, "expect_version", 0)
    if dead_owner is not None:
        check_id(dead_owner, "dead_owner")
        if not recover:
            raise InvalidArgumentError(
                "dead_owner= names a process that is gone, for a recovery: "
                "pass recover=True with it"
            )
    return functools.partial(
        claim,
        owner=owner,
        lease=lease,
        recover=bool(recover),
        expect_version=expect_version,
        dead_owner=dead_owner,
        due=bool(due),
    )


def _lost_claim(record: RunRecord, owner: str) -> RunConflictError | None:
    if record.status != "running" or record.owner != owner:
        holder = "nobody" if record.owner is None else "another owner"
        return RunConflictError(
            f"run {record.run_id!r} is {record.status} and claimed by {holder}: "
            "this process lost the claim",
            run_id=record.run_id,
        )
    return None


def renew(record: RunRecord, now: float, *, owner: str, lease: float) -> RunRecord:
    """Return ``record`` with its lease extended to ``now + lease`` (the heartbeat).

    Only while ``owner`` holds the run; ``version`` and ``updated_at`` stay as they are.
    """
    lost = _lost_claim(record, owner)
    if lost is not None:
        raise lost
    return dataclasses.replace(record, lease_until=now + lease)


def append(
    record: RunRecord,
    now: float,
    *,
    version: VersionRecord,
    owner: str,
    lease: float | None,
) -> RunRecord:
    """Return ``record`` advanced to ``version`` (a compare-and-set on owner and version)."""
    lost = _lost_claim(record, owner)
    if lost is not None:
        raise lost
    if record.version != version.version - 1:
        raise RunConflictError(
            f"run {record.run_id!r} is at version {record.version}, so version "
            f"{version.version} cannot follow it: this process lost the claim",
            run_id=record.run_id,
        )
    return dataclasses.replace(
        record,
        version=version.version,
        step_name=version.step_name,
        updated_at=now,
        lease_until=record.lease_until if lease is None else now + lease,
    )


def finish(
    record: RunRecord,
    now: float,
    *,
    owner: str,
    status: RunStatus,
    error: str | None,
    wake_at: float | None = None,
    waiting_for: str | None = None,
) -> RunRecord:
    """Return ``record`` released with its final, paused or suspended ``status``.

    ``sleeping``/``waiting`` keep ``wake_at`` (and ``waiting_for``); a run that
    goes ``waiting`` after a signal came while it ran (a poke) is due at once.
    """
    lost = _lost_claim(record, owner)
    if lost is not None:
        raise lost
    if status not in SUSPENDED:
        wake_at = waiting_for = None
    elif status == "waiting" and record.wake_at is not None:
        wake_at = record.wake_at if wake_at is None else min(wake_at, record.wake_at)
    return dataclasses.replace(
        record,
        status=status,
        error=error,
        owner=None,
        lease_until=None,
        updated_at=now,
        wake_at=wake_at,
        waiting_for=waiting_for if status == "waiting" else None,
    )


def cancel(record: RunRecord, now: float, *, reason: str | None) -> RunRecord:
    """Return ``record`` cancelled: its holder, if any, loses the claim at its next write.

    Cancelling a cancelled run changes nothing; a completed run cannot be cancelled.
    """
    if record.status == "cancelled":
        return record
    if record.status == "completed":
        raise RunConflictError(
            f"run {record.run_id!r} is completed; it cannot be cancelled", run_id=record.run_id
        )
    return dataclasses.replace(
        record,
        status="cancelled",
        error=reason,
        owner=None,
        lease_until=None,
        updated_at=now,
        wake_at=None,
        waiting_for=None,
    )


def deliver(record: RunRecord, now: float, *, signal: str) -> RunRecord:
    """Return ``record`` after a signal came into its mailbox.

    A run waiting on ``signal`` becomes due now; a running run is poked (see
    :class:`RunRecord`); a completed or cancelled run takes no signal
    (``RunConflictError``, nothing is stored).
    """
    if record.status in ("completed", "cancelled"):
        raise RunConflictError(
            f"run {record.run_id!r} is {record.status}; it takes no signal", run_id=record.run_id
        )
    if record.waits_for(signal) or record.status == "running":
        return dataclasses.replace(record, wake_at=now)
    return record


def newest_first(
    created_order: Iterable[RunRecord],
    *,
    pipeline: str | None,
    status: str | None,
    limit: int | None,
) -> list[RunRecord]:
    """What :meth:`Store.list` returns, from runs given in the order they were created.

    Most recently updated first; on equal ``updated_at`` the later created one
    first (never by run id).
    """
    found = [
        r
        for r in created_order
        if (pipeline is None or r.pipeline == pipeline) and (status is None or r.status == status)
    ]
    found.reverse()  # later created first; the sort below is stable
    found.sort(key=lambda r: r.updated_at, reverse=True)
    return found if limit is None else found[:limit]


@dataclass(frozen=True, slots=True)
class PurgeRule:
    """Which runs :meth:`Store.purge` deletes; see its docstring for the semantics.

    Backends may pre-select candidates with an index on ``expires_at`` or
    ``updated_at`` (any match has one of them in range), then must call
    :meth:`matches` on each candidate, under their lock, before deleting it.
    """

    expired: bool
    older_than: float | None
    status: str | None

    def matches(self, record: RunRecord, now: float) -> bool:
        """Whether ``record`` is to be deleted at time ``now``."""
        if self.status is not None and record.status != self.status:
            return False
        if lease_is_live(record, now):
            return False  # its holder is still writing
        if self.expired and record.expires_at is not None and record.expires_at < now:
            return True
        return self.older_than is not None and record.updated_at < now - self.older_than
