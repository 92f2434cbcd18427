"""The ``Store`` and ``AsyncStore`` protocols: what durable runs need from a backend.

``Store`` holds the sync methods and ``AsyncStore`` their ``a``-prefixed twins, so
a backend can be natively async. :class:`~stepkit.stores.BaseStore` implements
both; every backend passes the one contract suite in ``tests/stores/``.
:func:`is_store` / :func:`is_async_store` are the cheap checks for hot paths
(an ``isinstance`` against a runtime-checkable protocol costs 12-17 us).
"""

from __future__ import annotations

import builtins
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

from stepkit.stores._base import BaseStore
from stepkit.stores._records import RunRecord, RunStatus, VersionRecord

__all__ = ["AsyncStore", "Store", "is_async_store", "is_store"]

_S = TypeVar("_S", bound="Store")
_A = TypeVar("_A", bound="AsyncStore")


@runtime_checkable
class Store(Protocol):
    """Persistence for durable runs: one record per run plus its versions.

    Stores persist the JSON text the codec produced and never parse it.
    Operations on one run are by primary key; the three writes that move a run
    forward are atomic compare-and-sets, safe across threads and processes:

    - :meth:`claim` moves a run to ``running`` for one ``owner`` token;
    - :meth:`append` adds the next version only while that owner holds the run;
    - :meth:`finish` releases it as ``paused``, ``completed`` or ``failed``.

    Bad arguments raise :class:`~stepkit.errors.InvalidArgumentError`; backend
    failures and corrupt contents raise :class:`~stepkit.errors.StoreError`
    with the cause chained. The async twins (``get``/``aget``) form the
    :class:`AsyncStore` protocol. Stores are context managers.
    """

    def create(self, record: RunRecord, first: VersionRecord | None = None) -> None:
        """Insert a new run (and its first version) atomically.

        ``record.version`` must be 0 without ``first``, else ``first.version``.
        An existing ``run_id`` raises ``RunConflictError``. The record's times
        are stored as given; later ``updated_at`` and lease stamps come from
        the store's ``clock``.
        """

    def claim(
        self,
        run_id: str,
        *,
        owner: str,
        lease: float | None = None,
        recover: bool = False,
        expect_version: int | None = None,
        dead_owner: str | None = None,
    ) -> RunRecord:
        """Atomically make ``owner`` the one process running ``run_id``; return the record.

        Allowed from ``paused`` and ``failed``. From ``running`` only if its
        lease has expired (``lease_until <= now``), or with ``recover=True``
        when ``dead_owner`` is its current owner (the caller names the dead
        process) or when it was claimed without a lease. A live lease is never
        taken over by ``recover=True`` alone. ``lease`` (seconds) sets
        ``lease_until``. Raises ``RunNotFoundError``, ``RunExpiredError``
        (past ``expires_at``), or ``RunConflictError`` (completed, held, or
        not at ``expect_version``). Of N concurrent claims exactly one wins.
        """

    def renew(self, run_id: str, *, owner: str, lease: float) -> RunRecord:
        """Extend the lease of a run ``owner`` holds to ``now + lease``; return the record.

        The heartbeat of a long step. ``RunConflictError`` if ``owner`` no longer
        holds the run (it lost the claim); ``version`` and ``updated_at`` stay.
        """

    def append(self, version: VersionRecord, *, owner: str, lease: float | None = None) -> None:
        """Persist the next version of a run held by ``owner``.

        Succeeds only if ``owner`` holds the claim and the run is at
        ``version.version - 1``; otherwise ``RunConflictError`` (lost the
        claim). Updates the run's ``version``, ``step_name``, ``updated_at``
        and, when ``lease`` is given, renews ``lease_until``.
        """

    def finish(
        self, run_id: str, *, owner: str, status: RunStatus, error: str | None = None
    ) -> RunRecord:
        """Release a run held by ``owner`` as ``paused``, ``completed`` or ``failed``.

        Clears ``owner`` and ``lease_until``; ``RunConflictError`` if ``owner``
        no longer holds the claim.
        """

    def get(self, run_id: str) -> RunRecord | None:
        """The run's record, or ``None``."""

    def list(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = 100,
    ) -> builtins.list[RunRecord]:
        """Runs matching the filters, most recently updated first; ``limit=None`` for all."""

    def delete(self, run_id: str) -> bool:
        """Delete a run and all its versions; ``False`` if there was no such run."""

    def purge(
        self,
        *,
        expired: bool = True,
        older_than: float | None = None,
        status: str | None = None,
    ) -> int:
        """Delete old runs; return how many were deleted.

        A run is deleted when it is **expired** (``expired=True`` and
        ``expires_at < now``) **or** stale (``updated_at < now - older_than``),
        **and** it has ``status`` (when given). A run held under a live lease
        is never purged. With ``expired=False`` and no ``older_than`` there
        is no criterion, which raises ``InvalidArgumentError`` rather than
        deleting everything: ``purge(expired=False, older_than=0,
        status="failed")`` deletes every failed run.
        """

    def versions(self, run_id: str, *, upto: int | None = None) -> builtins.list[VersionRecord]:
        """The versions needed to rebuild version ``upto`` (default: the latest).

        Starts at the nearest snapshot at or before ``upto`` on its parent
        chain and follows ``parent`` links, in order; pass it to
        :func:`rebuild`. ``RunNotFoundError`` if the run or version is missing.
        """

    def history(self, run_id: str) -> builtins.list[VersionRecord]:
        """Every version of a run, ascending, with ``snapshot`` set to ``None``.

        ``RunNotFoundError`` if there is no such run; ``[]`` before its first version.
        """

    def now(self) -> float:
        """The store's clock (epoch seconds): what its records are stamped with."""

    def snapshot(self, run_id: str, version: int | None = None) -> dict[str, Any]:
        """The decoded context of ``run_id`` at ``version`` (default: the latest)."""

    def close(self) -> None:
        """Release connections and handles; the store is unusable afterwards."""

    def __enter__(self: _S) -> _S: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class AsyncStore(Protocol):
    """The async twins of :class:`Store` (``claim``/``aclaim``...), for natively async backends.

    Same semantics, argument for argument; ``now()`` stays sync (a clock read).
    """

    async def acreate(self, record: RunRecord, first: VersionRecord | None = None) -> None:
        """Async :meth:`Store.create`."""

    async def aclaim(
        self,
        run_id: str,
        *,
        owner: str,
        lease: float | None = None,
        recover: bool = False,
        expect_version: int | None = None,
        dead_owner: str | None = None,
    ) -> RunRecord:
        """Async :meth:`Store.claim`."""

    async def arenew(self, run_id: str, *, owner: str, lease: float) -> RunRecord:
        """Async :meth:`Store.renew`."""

    async def aappend(
        self, version: VersionRecord, *, owner: str, lease: float | None = None
    ) -> None:
        """Async :meth:`Store.append`."""

    async def afinish(
        self, run_id: str, *, owner: str, status: RunStatus, error: str | None = None
    ) -> RunRecord:
        """Async :meth:`Store.finish`."""

    async def aget(self, run_id: str) -> RunRecord | None:
        """Async :meth:`Store.get`."""

    async def alist(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = 100,
    ) -> builtins.list[RunRecord]:
        """Async :meth:`Store.list`."""

    async def adelete(self, run_id: str) -> bool:
        """Async :meth:`Store.delete`."""

    async def apurge(
        self,
        *,
        expired: bool = True,
        older_than: float | None = None,
        status: str | None = None,
    ) -> int:
        """Async :meth:`Store.purge`."""

    async def aversions(
        self, run_id: str, *, upto: int | None = None
    ) -> builtins.list[VersionRecord]:
        """Async :meth:`Store.versions`."""

    async def ahistory(self, run_id: str) -> builtins.list[VersionRecord]:
        """Async :meth:`Store.history`."""

    async def asnapshot(self, run_id: str, version: int | None = None) -> dict[str, Any]:
        """Async :meth:`Store.snapshot`."""

    async def aclose(self) -> None:
        """Async :meth:`Store.close`."""

    def now(self) -> float:
        """The store's clock (epoch seconds): what its records are stamped with."""

    async def __aenter__(self: _A) -> _A: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


_SYNC_NAMES = ("create", "claim", "renew", "append", "finish", "get", "versions", "now")
_ASYNC_NAMES = ("acreate", "aclaim", "arenew", "aappend", "afinish", "aget", "aversions", "now")


def is_store(obj: object) -> bool:
    """Whether ``obj`` looks like a :class:`Store`: cheap enough to call on every run.

    True for any :class:`~stepkit.stores.BaseStore` instance (one ``isinstance``),
    else when the core methods durable runs call are there (a class is not a store).
    """
    if isinstance(obj, BaseStore):
        return True
    return not isinstance(obj, type) and all(
        callable(getattr(obj, name, None)) for name in _SYNC_NAMES
    )


def is_async_store(obj: object) -> bool:
    """Whether ``obj`` looks like an :class:`AsyncStore` (see :func:`is_store`)."""
    if isinstance(obj, BaseStore):
        return True
    return not isinstance(obj, type) and all(
        callable(getattr(obj, name, None)) for name in _ASYNC_NAMES
    )
