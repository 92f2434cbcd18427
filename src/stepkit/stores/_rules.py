"""The pure decisions behind claim, append, finish and purge, shared by every backend.

A backend loads a run under its lock (or transaction), calls one of these with
the store clock's ``now``, and persists the record it returns; they never do I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from stepkit.errors import RunConflictError, RunExpiredError
from stepkit.stores._records import RunRecord, RunStatus, VersionRecord

__all__ = ["PurgeRule", "append", "claim", "finish", "renew"]


def claim(
    record: RunRecord,
    now: float,
    *,
    owner: str,
    lease: float | None,
    recover: bool,
    expect_version: int | None,
    dead_owner: str | None = None,
) -> RunRecord:
    """Return ``record`` claimed by ``owner``, or raise why it cannot be claimed.

    A ``running`` run is taken over only if its lease has expired, or with
    ``recover=True`` if the caller names its owner as dead (``dead_owner``) or
    it has no lease at all. A live lease is never taken over.
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
    if record.status == "completed":
        raise RunConflictError(f"run {run_id!r} is completed; nothing to resume", run_id=run_id)
    if record.status == "running":
        expired = record.lease_until is not None and record.lease_until < now
        named_dead = recover and dead_owner is not None and dead_owner == record.owner
        unleased = recover and record.lease_until is None
        if not (expired or named_dead or unleased):
            if record.lease_until is None:
                hint = "pass recover=True if its process is gone"
            else:
                hint = (
                    f"its owner {record.owner!r} holds a live lease until {record.lease_until} "
                    "(store clock); wait for the lease to expire, or, if that process is gone, "
                    f"pass recover=True, dead_owner={record.owner!r}"
                )
            raise RunConflictError(f"run {run_id!r} is already running; {hint}", run_id=run_id)
    return dataclasses.replace(
        record,
        status="running",
        owner=owner,
        lease_until=None if lease is None else now + lease,
        error=None,
        updated_at=now,
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


def renew(record: RunRecord, now: float, *, owner: str, lease: float) -> RunRecord:
    """Return ``record`` with the lease of ``owner`` extended to ``now + lease``."""
    lost = _lost_claim(record, owner)
    if lost is not None:
        raise lost
    return dataclasses.replace(record, lease_until=now + lease)


def finish(
    record: RunRecord,
    now: float,
    *,
    owner: str,
    status: RunStatus,
    error: str | None,
) -> RunRecord:
    """Return ``record`` released with its final (or paused) ``status``."""
    lost = _lost_claim(record, owner)
    if lost is not None:
        raise lost
    return dataclasses.replace(
        record, status=status, error=error, owner=None, lease_until=None, updated_at=now
    )


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
        if (
            record.status == "running"
            and record.lease_until is not None
            and record.lease_until >= now
        ):
            return False  # a live lease: its holder is still writing
        if self.expired and record.expires_at is not None and record.expires_at < now:
            return True
        return self.older_than is not None and record.updated_at < now - self.older_than
