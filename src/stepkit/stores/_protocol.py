"""The ``Store`` protocol: what the durable-run engine needs from a backend, sync and async.

Every backend (memory, file, SQLite; Redis and PostgreSQL later) implements it
and passes the one contract suite in ``tests/stores/test_contract.py``.
"""

from __future__ import annotations

import builtins
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

from stepkit.stores._records import RunRecord, RunStatus, VersionRecord

__all__ = ["Store"]

_S = TypeVar("_S", bound="Store")


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
    with the cause chained. Each method has an async twin named with an ``a``
    prefix (``get``/``aget``). Stores are context managers (``with``/``async with``).
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
    ) -> RunRecord:
        """Atomically make ``owner`` the one process running ``run_id``; return the record.

        Allowed from ``paused`` and ``failed``; from ``running`` only with
        ``recover=True`` or once its lease has expired. ``lease`` (seconds)
        sets ``lease_until``. Raises ``RunNotFoundError``, ``RunExpiredError``
        (past ``expires_at``), or ``RunConflictError`` (completed, running,
        or not at ``expect_version``). Of N concurrent claims exactly one wins.
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

    async def acreate(self, record: RunRecord, first: VersionRecord | None = None) -> None:
        """Async :meth:`create`."""

    async def aclaim(
        self,
        run_id: str,
        *,
        owner: str,
        lease: float | None = None,
        recover: bool = False,
        expect_version: int | None = None,
    ) -> RunRecord:
        """Async :meth:`claim`."""

    async def aappend(
        self, version: VersionRecord, *, owner: str, lease: float | None = None
    ) -> None:
        """Async :meth:`append`."""

    async def afinish(
        self, run_id: str, *, owner: str, status: RunStatus, error: str | None = None
    ) -> RunRecord:
        """Async :meth:`finish`."""

    async def aget(self, run_id: str) -> RunRecord | None:
        """Async :meth:`get`."""

    async def alist(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = 100,
    ) -> builtins.list[RunRecord]:
        """Async :meth:`list`."""

    async def adelete(self, run_id: str) -> bool:
        """Async :meth:`delete`."""

    async def apurge(
        self,
        *,
        expired: bool = True,
        older_than: float | None = None,
        status: str | None = None,
    ) -> int:
        """Async :meth:`purge`."""

    async def aversions(
        self, run_id: str, *, upto: int | None = None
    ) -> builtins.list[VersionRecord]:
        """Async :meth:`versions`."""

    async def ahistory(self, run_id: str) -> builtins.list[VersionRecord]:
        """Async :meth:`history`."""

    async def asnapshot(self, run_id: str, version: int | None = None) -> dict[str, Any]:
        """Async :meth:`snapshot`."""

    async def aclose(self) -> None:
        """Async :meth:`close`."""

    def __enter__(self: _S) -> _S: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def __aenter__(self: _S) -> _S: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
