"""``BaseStore``: argument checks, error translation and async twins, written once.

A backend subclasses it and implements a handful of ``_primitives`` by primary
key; the public methods and their ``a``-prefixed twins come from here.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, ClassVar, ParamSpec, TypeVar

from stepkit.errors import InvalidArgumentError, RunNotFoundError, StepkitError, StoreError
from stepkit.stores import _rules
from stepkit.stores._records import (
    RunRecord,
    RunStatus,
    VersionRecord,
    check_id,
    check_seconds,
    check_status,
    check_version_number,
    decode_context,
    rebuild,
    run_problem,
    version_problem,
)

__all__ = ["BaseStore", "Change"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_B = TypeVar("_B", bound="BaseStore")

#: A pure update of a run record at the store clock's ``now`` (see ``_rules``).
Change = Callable[[RunRecord, float], RunRecord]


class BaseStore:
    """Shared front of the stores: validates, translates errors, provides async twins.

    Subclasses implement the ``_insert``, ``_update``, ``_get``, ``_list``,
    ``_delete``, ``_purge``, ``_version``, ``_history`` and ``_close``
    primitives, and list their backend's exception types in
    ``_backend_errors`` so that they surface as :class:`StoreError`.
    """

    _backend_errors: ClassVar[tuple[type[Exception], ...]] = (OSError,)

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        if not callable(clock):
            raise InvalidArgumentError(f"clock must be callable, got {clock!r}")
        self._clock = clock
        self._closed = False

    # -- the primitives a backend implements -------------------------------------------

    def _insert(self, record: RunRecord, first: VersionRecord | None) -> None:
        raise NotImplementedError

    def _update(
        self, run_id: str, change: Change, version: VersionRecord | None = None
    ) -> RunRecord:
        """Atomically: load the run, apply ``change``, store ``version`` and the result."""
        raise NotImplementedError

    def _get(self, run_id: str) -> RunRecord | None:
        raise NotImplementedError

    def _list(
        self, pipeline: str | None, status: str | None, limit: int | None
    ) -> builtins.list[RunRecord]:
        raise NotImplementedError

    def _delete(self, run_id: str) -> bool:
        raise NotImplementedError

    def _purge(self, rule: _rules.PurgeRule) -> int:
        raise NotImplementedError

    def _version(self, run_id: str, version: int) -> VersionRecord | None:
        raise NotImplementedError

    def _history(self, run_id: str) -> builtins.list[VersionRecord] | None:
        raise NotImplementedError

    def save_step(self, version: VersionRecord, owner: str, lease: float | None = None) -> None:
        """:meth:`append` for records stepkit built itself: the same, minus re-validation.

        The durable-run engine calls this once per step; it is not part of the
        :class:`Store` protocol (other stores get :meth:`append`).
        """
        with self._guard("append"):
            self._append(version, owner, lease)

    async def asave_step(
        self, version: VersionRecord, owner: str, lease: float | None = None
    ) -> None:
        """Async :meth:`save_step`."""
        return await self._acall(self.save_step, version, owner, lease)

    def _append(self, version: VersionRecord, owner: str, lease: float | None) -> None:
        """Append ``version`` under the claim of ``owner`` (the hot path; override to speed up)."""
        change = functools.partial(_rules.append, version=version, owner=owner, lease=lease)
        self._update(version.run_id, change, version)

    def _close(self) -> None:
        pass

    def _chain(self, run_id: str, upto: int | None) -> builtins.list[VersionRecord]:
        """Walk parent links back from ``upto`` to a snapshot: one lookup per version."""
        record = self._get(run_id)
        if record is None:
            raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
        target = record.version if upto is None else upto
        if not 1 <= target <= record.version:
            raise RunNotFoundError(f"run {run_id!r} has no version {target}", run_id=run_id)
        chain: builtins.list[VersionRecord] = []
        number: int | None = target
        while number is not None:
            found = self._version(run_id, number)
            if found is None:
                break
            problem = version_problem(found)
            if problem is None and found.version != number:
                problem = f"version {number} is stored as {found.version}"
            if problem is not None:  # also stops a corrupt parent link from looping
                raise StoreError(f"corrupt version {number} of run {run_id!r}: {problem}")
            chain.append(found)
            number = None if found.snapshot is not None else found.parent
        chain.reverse()
        return self._checked_chain(run_id, target, chain)

    @staticmethod
    def _checked_chain(
        run_id: str, target: int, chain: builtins.list[VersionRecord]
    ) -> builtins.list[VersionRecord]:
        """Verify a chain read from storage, so that corruption is a StoreError."""
        if not chain or chain[-1].version != target:
            raise RunNotFoundError(f"run {run_id!r} has no version {target}", run_id=run_id)
        for i, found in enumerate(chain):
            problem = version_problem(found)
            if problem is None and found.run_id != run_id:
                problem = f"it belongs to run {found.run_id!r}"
            if problem is None and i == 0 and found.snapshot is None and found.parent is not None:
                problem = f"its parent {found.parent} is missing"
            if problem is None and i > 0 and found.parent != chain[i - 1].version:
                problem = f"its parent {found.parent} is missing"
            if problem is not None:
                raise StoreError(f"corrupt version {found.version} of run {run_id!r}: {problem}")
        return chain

    # -- error translation and async plumbing --------------------------------------------

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        if self._closed:
            raise StoreError(f"{type(self).__name__} is closed")
        try:
            yield
        except StepkitError:
            raise  # conflicts, not-found and our own StoreErrors pass through unchanged
        except self._backend_errors as exc:
            raise StoreError(f"{type(self).__name__}.{action}() failed: {exc}") from exc

    async def _acall(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run a sync method for its async twin; backends with no blocking I/O override."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- the public sync API -------------------------------------------------------------

    def create(self, record: RunRecord, first: VersionRecord | None = None) -> None:
        """See :meth:`Store.create`."""
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
            self._insert(record, first)

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
        """See :meth:`Store.claim`."""
        check_id(run_id, "run_id")
        check_id(owner, "owner")
        if dead_owner is not None:
            check_id(dead_owner, "dead_owner")
        check_seconds(lease, "lease", allow_zero=False)
        check_version_number(expect_version, "expect_version", 0)
        change = functools.partial(
            _rules.claim,
            owner=owner,
            lease=lease,
            recover=bool(recover),
            expect_version=expect_version,
            dead_owner=dead_owner,
        )
        with self._guard("claim"):
            return self._update(run_id, change)

    def renew(self, run_id: str, *, owner: str, lease: float) -> RunRecord:
        """Extend the lease of ``owner`` on ``run_id`` to now + ``lease``.

        The heartbeat of a running durable run; ``RunConflictError`` if
        ``owner`` no longer holds the run (it lost its claim).
        """
        check_id(run_id, "run_id")
        check_id(owner, "owner")
        check_seconds(lease, "lease", allow_zero=False)
        if lease is None:
            raise InvalidArgumentError("renew() needs lease= (seconds > 0)")
        change = functools.partial(_rules.renew, owner=owner, lease=lease)
        with self._guard("renew"):
            return self._update(run_id, change)

    def append(self, version: VersionRecord, *, owner: str, lease: float | None = None) -> None:
        """See :meth:`Store.append`."""
        problem = version_problem(version)
        if problem is not None:
            raise InvalidArgumentError(f"append(): {problem}")
        check_id(version.run_id, "run_id")
        check_id(owner, "owner")
        check_seconds(lease, "lease", allow_zero=False)
        with self._guard("append"):
            self._append(version, owner, lease)

    def finish(
        self, run_id: str, *, owner: str, status: RunStatus, error: str | None = None
    ) -> RunRecord:
        """See :meth:`Store.finish`."""
        check_id(run_id, "run_id")
        check_id(owner, "owner")
        check_status(status, ("paused", "completed", "failed"))
        if status is None:
            raise InvalidArgumentError("finish() needs a status: paused, completed or failed")
        if error is not None and not isinstance(error, str):
            raise InvalidArgumentError(f"error must be a str or None, got {error!r}")
        change = functools.partial(_rules.finish, owner=owner, status=status, error=error)
        with self._guard("finish"):
            return self._update(run_id, change)

    def get(self, run_id: str) -> RunRecord | None:
        """See :meth:`Store.get`."""
        check_id(run_id, "run_id")
        with self._guard("get"):
            return self._get(run_id)

    def list(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = 100,
    ) -> builtins.list[RunRecord]:
        """See :meth:`Store.list`."""
        if pipeline is not None and not isinstance(pipeline, str):
            raise InvalidArgumentError(f"pipeline must be a str or None, got {pipeline!r}")
        check_status(status)
        check_version_number(limit, "limit", 0)
        with self._guard("list"):
            return self._list(pipeline, status, limit)

    def delete(self, run_id: str) -> bool:
        """See :meth:`Store.delete`."""
        check_id(run_id, "run_id")
        with self._guard("delete"):
            return self._delete(run_id)

    def purge(
        self,
        *,
        expired: bool = True,
        older_than: float | None = None,
        status: str | None = None,
    ) -> int:
        """See :meth:`Store.purge`."""
        check_seconds(older_than, "older_than", allow_zero=True)
        check_status(status)
        if not expired and older_than is None:
            raise InvalidArgumentError(
                "purge() with expired=False and no older_than has no criterion; refusing to "
                "delete every run (use older_than=0 to mean any age)"
            )
        rule = _rules.PurgeRule(expired=bool(expired), older_than=older_than, status=status)
        with self._guard("purge"):
            return self._purge(rule)

    def versions(self, run_id: str, *, upto: int | None = None) -> builtins.list[VersionRecord]:
        """See :meth:`Store.versions`."""
        check_id(run_id, "run_id")
        check_version_number(upto, "upto", 1)
        with self._guard("versions"):
            return self._chain(run_id, upto)

    def history(self, run_id: str) -> builtins.list[VersionRecord]:
        """See :meth:`Store.history`."""
        check_id(run_id, "run_id")
        with self._guard("history"):
            found = self._history(run_id)
        if found is None:
            raise RunNotFoundError(f"no run {run_id!r}", run_id=run_id)
        return found

    def now(self) -> float:
        """See :meth:`Store.now`."""
        return self._clock()

    def snapshot(self, run_id: str, version: int | None = None) -> dict[str, Any]:
        """See :meth:`Store.snapshot`."""
        encoded, _last = rebuild(self.versions(run_id, upto=version))
        return decode_context(encoded, f"run {run_id!r}")

    def close(self) -> None:
        """See :meth:`Store.close`; closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._close()

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
        )

    async def arenew(self, run_id: str, *, owner: str, lease: float) -> RunRecord:
        """Async :meth:`renew`."""
        return await self._acall(self.renew, run_id, owner=owner, lease=lease)

    async def aappend(
        self, version: VersionRecord, *, owner: str, lease: float | None = None
    ) -> None:
        """Async :meth:`append`."""
        return await self._acall(self.append, version, owner=owner, lease=lease)

    async def afinish(
        self, run_id: str, *, owner: str, status: RunStatus, error: str | None = None
    ) -> RunRecord:
        """Async :meth:`finish`."""
        return await self._acall(self.finish, run_id, owner=owner, status=status, error=error)

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
