"""The async twins of :class:`ServerStore`, natively async: the sync methods' checks, then an op.

Each primitive is written once as an *op*: a generator that yields requests for
the server (a backend-specific value: SQL and parameters, a Lua script call...)
and receives their results, or has the server's exception thrown in. A backend
runs ops with its sync client (:meth:`ServerStore._run`) or its async one
(:meth:`ServerStore._arun`), so the async twins never run sync code in a thread.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from stepkit.checkpoints import decode_context
from stepkit.errors import (
    CheckpointError,
    InvalidArgumentError,
    RunConflictError,
    RunNotFoundError,
    StoreError,
)
from stepkit.stores import _transitions
from stepkit.stores._base import BaseStore, Change
from stepkit.stores._records import (
    RunRecord,
    RunStatus,
    SignalRecord,
    StepRow,
    VersionKind,
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
from stepkit.stores._server_ops import Op
from stepkit.stores._sync_base import Loaded
from stepkit.stores._transitions import PurgeRule
from stepkit.stores._wake_base import DeliveryStatus

__all__ = ["AsyncTwins"]

_T = TypeVar("_T")


class AsyncTwins(BaseStore):
    """The ops a server backend writes, and the async twins that run them with its async client."""

    # -- ops a backend writes ------------------------------------------------------------

    def _op_insert(self, record: RunRecord, first: VersionRecord | None) -> Op[None]:
        raise NotImplementedError

    def _op_update(
        self, run_id: str, change: Change, version: VersionRecord | None
    ) -> Op[RunRecord]:
        raise NotImplementedError

    def _op_get(self, run_id: str) -> Op[RunRecord | None]:
        raise NotImplementedError

    def _op_list(
        self, pipeline: str | None, status: str | None, limit: int | None
    ) -> Op[builtins.list[RunRecord]]:
        raise NotImplementedError

    def _op_delete(self, run_id: str) -> Op[bool]:
        raise NotImplementedError

    def _op_purge(self, rule: PurgeRule) -> Op[int]:
        raise NotImplementedError

    def _op_version(self, run_id: str, number: int) -> Op[VersionRecord | None]:
        raise NotImplementedError

    def _op_chain(self, run_id: str, upto: int | None) -> Op[builtins.list[VersionRecord]]:
        raise NotImplementedError

    def _op_history(self, run_id: str) -> Op[builtins.list[VersionRecord] | None]:
        raise NotImplementedError

    def _op_append(self, version: VersionRecord, owner: str, lease: float | None) -> Op[None]:
        raise NotImplementedError

    def _op_claim_and_load(
        self, run_id: str, change: Change, upto: int | None, seen: builtins.list[RunRecord]
    ) -> Op[Loaded]:
        raise NotImplementedError

    def _op_deliver(self, signal: SignalRecord, change: Change) -> Op[RunRecord | None]:
        raise NotImplementedError

    def _op_signals(self, run_id: str) -> Op[builtins.list[SignalRecord] | None]:
        raise NotImplementedError

    def _op_due(self, now: float, limit: int | None) -> Op[builtins.list[RunRecord]]:
        raise NotImplementedError

    def _op_waiting(self, signal: str, limit: int | None) -> Op[builtins.list[RunRecord]]:
        raise NotImplementedError

    def _run(self, op: Op[_T]) -> _T:
        raise NotImplementedError

    async def _arun(self, op: Op[_T]) -> _T:
        raise NotImplementedError

    # -- natively async twins (the same checks as the sync methods, then an op) ----------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{type(self).__name__} is closed")

    async def acreate(self, record: RunRecord, first: VersionRecord | None = None) -> None:
        """Async :meth:`create`."""
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
        with self._guard("create"):
            await self._arun(self._op_insert(record, first))

    async def aclaim(
        self,
        run_id: str,
        *,
        owner: str,
        lease: float | None = None,
        recover: bool = False,
        expect_version: int | None = None,
        dead_owner: str | None = None,
        due: bool = False,
    ) -> RunRecord:
        """Async :meth:`claim`."""
        change = _transitions.claim_change(
            run_id, owner, lease, recover, expect_version, dead_owner, due
        )
        with self._guard("claim"):
            return await self._arun(self._op_update(run_id, change, None))

    async def aclaim_and_load(
        self,
        run_id: str,
        *,
        owner: str,
        lease: float | None = None,
        recover: bool = False,
        dead_owner: str | None = None,
        upto: int | None = None,
        check: Callable[[RunRecord], None] | None = None,
    ) -> Loaded:
        """Async :meth:`claim_and_load`."""
        claim = _transitions.claim_change(run_id, owner, lease, recover, None, dead_owner)
        seen: builtins.list[RunRecord] = []

        def change(record: RunRecord, now: float) -> RunRecord:
            if check is not None:
                check(record)
            check_version_number(upto, "upto", 1)
            seen.append(record)
            return claim(record, now)

        with self._guard("claim"):
            return await self._arun(self._op_claim_and_load(run_id, change, upto, seen))

    async def arenew(self, run_id: str, *, owner: str, lease: float) -> RunRecord:
        """Async :meth:`renew`."""
        check_id(run_id, "run_id")
        check_id(owner, "owner")
        if lease is None:
            raise InvalidArgumentError("renew() needs lease=, a positive number of seconds")
        check_seconds(lease, "lease", allow_zero=False)
        change = functools.partial(_transitions.renew, owner=owner, lease=lease)
        with self._guard("renew"):
            return await self._arun(self._op_update(run_id, change, None))

    async def aappend(
        self, version: VersionRecord, *, owner: str, lease: float | None = None
    ) -> None:
        """Async :meth:`append`."""
        problem = version_problem(version)
        if problem is not None:
            raise InvalidArgumentError(f"append(): {problem}")
        check_id(version.run_id, "run_id")
        check_id(owner, "owner")
        check_seconds(lease, "lease", allow_zero=False)
        with self._guard("append"):
            await self._arun(self._op_append(version, owner, lease))

    async def asave_step(
        self, row: StepRow, owner: str, lease: float | None, kind: VersionKind = "step"
    ) -> None:
        """Async :meth:`save_step`."""
        with self._guard("append"):
            await self._arun(self._op_append(VersionRecord(*row, kind), owner, lease))

    async def afinish(
        self,
        run_id: str,
        *,
        owner: str,
        status: RunStatus,
        error: str | None = None,
        wake_at: float | None = None,
        waiting_for: str | None = None,
    ) -> RunRecord:
        """Async :meth:`finish`."""
        check_id(run_id, "run_id")
        check_id(owner, "owner")
        check_status(status, ("paused", "completed", "failed", "sleeping", "waiting"))
        if status is None:
            raise InvalidArgumentError("finish() needs a status: paused, completed or failed")
        if error is not None and not isinstance(error, str):
            raise InvalidArgumentError(f"error must be a str or None, got {error!r}")
        if wake_at is not None or waiting_for is not None or status in ("sleeping", "waiting"):
            check_wake(status, wake_at, waiting_for)
        change = functools.partial(
            _transitions.finish,
            owner=owner,
            status=status,
            error=error,
            wake_at=wake_at,
            waiting_for=waiting_for,
        )
        with self._guard("finish"):
            return await self._arun(self._op_update(run_id, change, None))

    async def acancel(self, run_id: str, *, reason: str | None = None) -> RunRecord:
        """Async :meth:`cancel`."""
        check_id(run_id, "run_id")
        if reason is not None and not isinstance(reason, str):
            raise InvalidArgumentError(f"reason= must be a str or None, got {reason!r}")
        change = functools.partial(_transitions.cancel, reason=reason)
        with self._guard("cancel"):
            return await self._arun(self._op_update(run_id, change, None))

    async def adeliver(
        self, run_id: str, signal: str, data: str, *, idempotency_key: str | None = None
    ) -> DeliveryStatus:
        """Async :meth:`deliver`."""
        check_id(run_id, "run_id")
        check_id(signal, "signal")
        if not isinstance(data, str):
            raise InvalidArgumentError(f"data must be JSON text (a str), got {data!r}")
        if idempotency_key is not None:
            check_id(idempotency_key, "idempotency_key")
        message = SignalRecord(run_id, 0, signal, data, idempotency_key, 0.0)
        change = functools.partial(_transitions.deliver, signal=signal)
        try:
            with self._guard("deliver"):
                before = await self._arun(self._op_deliver(message, change))
        except RunConflictError:
            return "undelivered"
        if before is None:
            return "duplicate"
        return "delivered" if before.waits_for(signal) else "buffered"

    async def asignals(self, run_id: str) -> builtins.list[SignalRecord]:
        """Async :meth:`signals`."""
        check_id(run_id, "run_id")
        with self._guard("signals"):
            found = await self._arun(self._op_signals(run_id))
        if found is None:
            raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
        return found

    async def adue(self, *, limit: int | None = None) -> builtins.list[RunRecord]:
        """Async :meth:`due`."""
        check_version_number(limit, "limit", 0)
        with self._guard("due"):
            return await self._arun(self._op_due(self.now(), limit))

    async def awaiting(self, signal: str, *, limit: int | None = None) -> builtins.list[RunRecord]:
        """Async :meth:`waiting`."""
        check_id(signal, "signal")
        check_version_number(limit, "limit", 0)
        with self._guard("waiting"):
            return await self._arun(self._op_waiting(signal, limit))

    async def aget(self, run_id: str) -> RunRecord | None:
        """Async :meth:`get`."""
        check_id(run_id, "run_id")
        with self._guard("get"):
            return await self._arun(self._op_get(run_id))

    async def alist(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = 100,
    ) -> builtins.list[RunRecord]:
        """Async :meth:`list`."""
        if pipeline is not None and not isinstance(pipeline, str):
            raise InvalidArgumentError(f"pipeline must be a str or None, got {pipeline!r}")
        check_status(status)
        check_version_number(limit, "limit", 0)
        with self._guard("list"):
            return await self._arun(self._op_list(pipeline, status, limit))

    async def adelete(self, run_id: str) -> bool:
        """Async :meth:`delete`."""
        check_id(run_id, "run_id")
        with self._guard("delete"):
            return await self._arun(self._op_delete(run_id))

    async def apurge(
        self,
        *,
        expired: bool = True,
        older_than: float | None = None,
        status: str | None = None,
    ) -> int:
        """Async :meth:`purge`."""
        check_seconds(older_than, "older_than", allow_zero=True)
        check_status(status)
        if not expired and older_than is None:
            raise InvalidArgumentError(
                "purge() with expired=False and no older_than has no criterion; refusing to "
                "delete every run (use older_than=0 to mean any age)"
            )
        rule = PurgeRule(expired=bool(expired), older_than=older_than, status=status)
        with self._guard("purge"):
            return await self._arun(self._op_purge(rule))

    async def aversions(
        self, run_id: str, *, upto: int | None = None
    ) -> builtins.list[VersionRecord]:
        """Async :meth:`versions`."""
        check_id(run_id, "run_id")
        check_version_number(upto, "upto", 1)
        with self._guard("versions"):
            return await self._arun(self._op_chain(run_id, upto))

    async def ahistory(self, run_id: str) -> builtins.list[VersionRecord]:
        """Async :meth:`history`."""
        check_id(run_id, "run_id")
        with self._guard("history"):
            found = await self._arun(self._op_history(run_id))
        if found is None:
            raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
        return found

    async def asnapshot(self, run_id: str, version: int | None = None) -> dict[str, Any]:
        """Async :meth:`snapshot`."""
        encoded, last = rebuild(await self.aversions(run_id, upto=version))
        try:
            return decode_context(encoded)
        except CheckpointError as exc:
            where = f"version {last.version} of run {run_id!r}"
            raise StoreError(f"corrupt stored context of {where}: {exc}") from exc

    async def aclose(self) -> None:
        """Async :meth:`close`: closes the async connections too; closing twice is harmless."""
        if not self._closed:
            self._closed = True
            await self._aclose()
            self._close()

    async def _aclose(self) -> None:
        pass
