"""``BaseStore``: the store seam. A backend implements a few primitives; the rules come from here.

Argument checks, the claim/append/finish/renew transitions, error translation and
the async twins are written once; see :class:`BaseStore` for the primitives.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, ClassVar, ParamSpec, TypeVar

from stepkit.checkpoints import decode_context
from stepkit.errors import (
    CheckpointError,
    InvalidArgumentError,
    RunNotFoundError,
    StepkitError,
    StoreError,
)
from stepkit.stores import _transitions
from stepkit.stores._chain import target_version, walk_chain
from stepkit.stores._records import (
    RunRecord,
    RunStatus,
    VersionRecord,
    check_id,
    check_seconds,
    check_status,
    check_version_number,
    rebuild,
    run_problem,
    version_problem,
)
from stepkit.stores._transitions import PurgeRule

__all__ = ["BaseStore", "Change"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_B = TypeVar("_B", bound="BaseStore")

#: A pure update of a run record at the store clock's ``now``: what ``_update`` applies.
Change = Callable[[RunRecord, float], RunRecord]


class BaseStore:
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

    **Optional** (defaults here): ``_history(run_id)`` (``None`` for no such run;
    the default reads versions one by one), ``_close()``, ``_append`` (the
    per-step hot path, by default an ``_update``), ``_chain`` (the versions a
    rebuild reads, by default one ``_version`` per link) and ``_acall`` (how the
    async twins run the sync methods: a worker thread by default). List the
    backend's own exception types in ``_backend_errors`` so that they surface as
    :class:`StoreError`. A natively async backend may instead override the
    ``a``-prefixed methods (see :class:`AsyncStore`)::

        class MyStore(BaseStore):
            def _get(self, run_id): ...
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
        raise NotImplementedError

    def _get(self, run_id: str) -> RunRecord | None:
        raise NotImplementedError

    def _list(
        self, pipeline: str | None, status: str | None, limit: int | None
    ) -> builtins.list[RunRecord]:
        raise NotImplementedError

    def _delete(self, run_id: str) -> bool:
        raise NotImplementedError

    def _purge(self, rule: PurgeRule) -> int:
        raise NotImplementedError

    def _version(self, run_id: str, version: int) -> VersionRecord | None:
        raise NotImplementedError

    def _history(self, run_id: str) -> builtins.list[VersionRecord] | None:
        record = self._get(run_id)
        if record is None:
            return None
        found = (self._version(run_id, n) for n in range(1, record.version + 1))
        return [dataclasses.replace(v, snapshot=None) for v in found if v is not None]

    def _close(self) -> None:
        pass

    def _append(self, version: VersionRecord, owner: str, lease: float | None) -> None:
        change = functools.partial(_transitions.append, version=version, owner=owner, lease=lease)
        self._update(version.run_id, change, version)

    def _chain(self, run_id: str, upto: int | None) -> builtins.list[VersionRecord]:
        target = target_version(self._get(run_id), run_id, upto)
        return walk_chain(functools.partial(self._version, run_id), run_id, target)

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
        import asyncio  # only async callers pay for it

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
        check_seconds(lease, "lease", allow_zero=False)
        check_version_number(expect_version, "expect_version", 0)
        if dead_owner is not None:
            check_id(dead_owner, "dead_owner")
            if not recover:
                raise InvalidArgumentError(
                    "dead_owner= names a process that is gone, for a recovery: "
                    "pass recover=True with it"
                )
        change = functools.partial(
            _transitions.claim,
            owner=owner,
            lease=lease,
            recover=bool(recover),
            expect_version=expect_version,
            dead_owner=dead_owner,
        )
        with self._guard("claim"):
            return self._update(run_id, change)

    def renew(self, run_id: str, *, owner: str, lease: float) -> RunRecord:
        """See :meth:`Store.renew`."""
        check_id(run_id, "run_id")
        check_id(owner, "owner")
        if lease is None:
            raise InvalidArgumentError("renew() needs lease=, a positive number of seconds")
        check_seconds(lease, "lease", allow_zero=False)
        change = functools.partial(_transitions.renew, owner=owner, lease=lease)
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

    def save_step(self, version: VersionRecord, owner: str, lease: float | None = None) -> None:
        """:meth:`append` for records stepkit built itself: the same, minus re-validation.

        The durable-run engine calls this once per step; it is not part of the
        :class:`Store` protocol (other stores get :meth:`append`).
        """
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
        change = functools.partial(_transitions.finish, owner=owner, status=status, error=error)
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
        rule = PurgeRule(expired=bool(expired), older_than=older_than, status=status)
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
        encoded, last = rebuild(self.versions(run_id, upto=version))
        try:
            return decode_context(encoded)
        except CheckpointError as exc:
            where = f"version {last.version} of run {run_id!r}"
            raise StoreError(f"corrupt stored context of {where}: {exc}") from exc

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

    async def asave_step(
        self, version: VersionRecord, owner: str, lease: float | None = None
    ) -> None:
        """Async :meth:`save_step`."""
        return await self._acall(self.save_step, version, owner, lease)

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
