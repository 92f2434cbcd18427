"""The async twins of :class:`ServerStore`, natively async: the sync methods' checks, then an op.

Each primitive is written once as an *op*: a generator that yields requests for
the server (a backend-specific value: SQL and parameters, a Lua script call...)
and receives their results, or has the server's exception thrown in. A backend
runs ops with its sync client (:meth:`ServerStore._run`) or its async one
(:meth:`ServerStore._arun`), so the async twins never run sync code in a thread.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any, TypeVar

from stepkit.errors import (
    RunConflictError,
    StoreError,
)
from stepkit.stores import _requests as requests
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
    check_version_number,
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
        requests.check_create(record, first)
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
        seen: builtins.list[RunRecord] = []
        change = requests.claim_and_load_change(
            run_id, owner, lease, recover, dead_owner, upto, check, seen
        )
        with self._guard("claim"):
            return await self._arun(self._op_claim_and_load(run_id, change, upto, seen))

    async def arenew(self, run_id: str, *, owner: str, lease: float) -> RunRecord:
        """Async :meth:`renew`."""
        change = requests.renew_change(run_id, owner, lease)
        with self._guard("renew"):
            return await self._arun(self._op_update(run_id, change, None))

    async def aappend(
        self, version: VersionRecord, *, owner: str, lease: float | None = None
    ) -> None:
        """Async :meth:`append`."""
        requests.check_append(version, owner, lease)
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
        change = requests.finish_change(run_id, owner, status, error, wake_at, waiting_for)
        with self._guard("finish"):
            return await self._arun(self._op_update(run_id, change, None))

    async def acancel(self, run_id: str, *, reason: str | None = None) -> RunRecord:
        """Async :meth:`cancel`."""
        change = requests.cancel_change(run_id, reason)
        with self._guard("cancel"):
            return await self._arun(self._op_update(run_id, change, None))

    async def adeliver(
        self, run_id: str, signal: str, data: str, *, idempotency_key: str | None = None
    ) -> DeliveryStatus:
        """Async :meth:`deliver`."""
        message, change = requests.delivery(run_id, signal, data, idempotency_key)
        try:
            with self._guard("deliver"):
                before = await self._arun(self._op_deliver(message, change))
        except RunConflictError:
            return "undelivered"
        return requests.delivery_status(before, signal)

    async def asignals(self, run_id: str) -> builtins.list[SignalRecord]:
        """Async :meth:`signals`."""
        check_id(run_id, "run_id")
        with self._guard("signals"):
            found = await self._arun(self._op_signals(run_id))
        result: builtins.list[SignalRecord] = requests.found_or_missing(found, run_id)
        return result

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
        requests.check_list(pipeline, status, limit)
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
        rule = requests.purge_rule(expired, older_than, status)
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
        result: builtins.list[VersionRecord] = requests.found_or_missing(found, run_id)
        return result

    async def asnapshot(self, run_id: str, version: int | None = None) -> dict[str, Any]:
        """Async :meth:`snapshot`."""
        return requests.snapshot_of(await self.aversions(run_id, upto=version), run_id)

    async def aclose(self) -> None:
        """Async :meth:`close`: closes the async connections too; closing twice is harmless."""
        if not self._closed:
            self._closed = True
            await self._aclose()
            self._close()

    async def _aclose(self) -> None:
        pass
