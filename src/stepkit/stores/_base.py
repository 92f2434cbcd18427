"""``BaseStore``: the store seam. A backend implements a few primitives; the rules come from here.

The sync API over the primitives lives in :mod:`stepkit.stores._sync_base`; this
adds the async twins (the :class:`AsyncStore` protocol) and the context managers.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from stepkit.stores._records import (
    RunRecord,
    RunStatus,
    SignalRecord,
    StepRow,
    VersionKind,
    VersionRecord,
)
from stepkit.stores._sync_base import Change, Loaded
from stepkit.stores._wake_base import DeliveryStatus, WakeBase

__all__ = ["BaseStore", "Change"]

_B = TypeVar("_B", bound="BaseStore")


class BaseStore(WakeBase):
    """The base of every store: subclass it and implement the primitives below.

    **Required primitives** (by primary key; each must be atomic):

    - ``_insert(record, first)``: add a new run (and its first version, if any);
      ``RunConflictError`` if ``record.run_id`` exists.
    - ``_update(run_id, change, version=None)``: under the run's lock (or in a
      transaction) load the record, call ``change(record, self.now())``, then
      store ``version`` (if given) and the returned record, and return it. If
      ``change`` raises, write nothing. ``RunNotFoundError`` if there is no such
      run. Claims, appends, finishes and renewals all go through it, so this is
      where the compare-and-set lives.
    - ``_get(run_id)``: the record or ``None``.
    - ``_list(pipeline, status, limit)``: see :meth:`list`; the helper
      ``stepkit.stores.newest_first`` sorts and filters runs given in creation order.
    - ``_delete(run_id)``: remove a run and its versions; ``True`` if it existed.
    - ``_purge(rule)``: delete every run for which ``rule.matches(record, self.now())``
      (checked under the lock); return how many.
    - ``_version(run_id, number)``: one version, snapshot included, or ``None``.
    - for durable workflows: ``_deliver`` and ``_signals`` (the signal mailbox;
      see :class:`~stepkit.stores._wake_base.WakeBase`). A store without them
      runs everything but workflows that wait for signals or invoke children.

    **Optional** (defaults here): ``_history(run_id)`` (``None`` for no such run;
    the default reads versions one by one), ``_close()``, ``_append`` (the
    per-step hot path, by default an ``_update``; ``_append_step`` is its
    field-by-field form, which receives ``kind="op"`` for workflow ops), ``_chain`` (the versions a
    rebuild reads, by default one ``_version`` per link), ``_claim_and_load`` (a
    resume's claim and read, by default an ``_update`` then a ``_chain``; one
    transaction where the backend can) and ``_acall`` (how the
    async twins run the sync methods: a worker thread by default). List the
    backend's own exception types in ``_backend_errors`` so that they surface as
    :class:`StoreError`. A natively async backend may instead override the
    ``a``-prefixed methods (see :class:`AsyncStore`). ``_due`` and ``_waiting``
    (the queries of workflow workers) default to a scan of :meth:`_list`::

        class MyStore(BaseStore):
            def _get(self, run_id): ...
    """

    # -- async twins ---------------------------------------------------------------------

    async def acreate(self, record: RunRecord, first: VersionRecord | None = None) -> None:
        """Async :meth:`create`."""
        return await self._acall(self.create, record, first)

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
        return await self._acall(
            self.claim,
            run_id,
            owner=owner,
            lease=lease,
            recover=recover,
            expect_version=expect_version,
            dead_owner=dead_owner,
            due=due,
        )

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
        return await self._acall(
            self.claim_and_load,
            run_id,
            owner=owner,
            lease=lease,
            recover=recover,
            dead_owner=dead_owner,
            upto=upto,
            check=check,
        )

    async def arenew(self, run_id: str, *, owner: str, lease: float) -> RunRecord:
        """Async :meth:`renew`."""
        return await self._acall(self.renew, run_id, owner=owner, lease=lease)

    async def aappend(
        self, version: VersionRecord, *, owner: str, lease: float | None = None
    ) -> None:
        """Async :meth:`append`."""
        return await self._acall(self.append, version, owner=owner, lease=lease)

    async def asave_step(
        self, row: StepRow, owner: str, lease: float | None, kind: VersionKind = "step"
    ) -> None:
        """Async :meth:`save_step`."""
        return await self._acall(self.save_step, row, owner, lease, kind)

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
        return await self._acall(
            self.finish,
            run_id,
            owner=owner,
            status=status,
            error=error,
            wake_at=wake_at,
            waiting_for=waiting_for,
        )

    async def acancel(self, run_id: str, *, reason: str | None = None) -> RunRecord:
        """Async :meth:`cancel`."""
        return await self._acall(self.cancel, run_id, reason=reason)

    async def adeliver(
        self, run_id: str, signal: str, data: str, *, idempotency_key: str | None = None
    ) -> DeliveryStatus:
        """Async :meth:`deliver`."""
        return await self._acall(
            self.deliver, run_id, signal, data, idempotency_key=idempotency_key
        )

    async def asignals(self, run_id: str) -> builtins.list[SignalRecord]:
        """Async :meth:`signals`."""
        return await self._acall(self.signals, run_id)

    async def adue(self, *, limit: int | None = None) -> builtins.list[RunRecord]:
        """Async :meth:`due`."""
        return await self._acall(self.due, limit=limit)

    async def awaiting(self, signal: str, *, limit: int | None = None) -> builtins.list[RunRecord]:
        """Async :meth:`waiting`."""
        return await self._acall(self.waiting, signal, limit=limit)

    async def aget(self, run_id: str) -> RunRecord | None:
        """Async :meth:`get`."""
        return await self._acall(self.get, run_id)

    async def alist(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = 100,
    ) -> builtins.list[RunRecord]:
        """Async :meth:`list`."""
        return await self._acall(self.list, pipeline=pipeline, status=status, limit=limit)

    async def adelete(self, run_id: str) -> bool:
        """Async :meth:`delete`."""
        return await self._acall(self.delete, run_id)

    async def apurge(
        self,
        *,
        expired: bool = True,
        older_than: float | None = None,
        status: str | None = None,
    ) -> int:
        """Async :meth:`purge`."""
        return await self._acall(self.purge, expired=expired, older_than=older_than, status=status)

    async def aversions(
        self, run_id: str, *, upto: int | None = None
    ) -> builtins.list[VersionRecord]:
        """Async :meth:`versions`."""
        return await self._acall(self.versions, run_id, upto=upto)

    async def ahistory(self, run_id: str) -> builtins.list[VersionRecord]:
        """Async :meth:`history`."""
        return await self._acall(self.history, run_id)

    async def asnapshot(self, run_id: str, version: int | None = None) -> dict[str, Any]:
        """Async :meth:`snapshot`."""
        return await self._acall(self.snapshot, run_id, version)

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        return await self._acall(self.close)

    def __enter__(self: _B) -> _B:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self: _B) -> _B:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
