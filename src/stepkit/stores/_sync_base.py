"""``SyncBase``: the sync half of :class:`~stepkit.stores.BaseStore`, over a backend's primitives.

Argument checks, the claim/renew/append/finish transitions and error translation
are written here once; ``BaseStore`` adds the async twins.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, ParamSpec, TypeVar

from stepkit.errors import (
    InvalidArgumentError,
    StepkitError,
    StoreError,
)
from stepkit.stores import _requests as requests
from stepkit.stores import _transitions
from stepkit.stores._chain import target_version, walk_chain
from stepkit.stores._records import (
    RunRecord,
    RunStatus,
    StepRow,
    VersionKind,
    VersionRecord,
    check_id,
    check_version_number,
)
from stepkit.stores._transitions import PurgeRule

__all__ = ["Change", "Loaded", "SyncBase"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: A pure update of a run record at the store clock's ``now``: what ``_update`` applies.
Change = Callable[[RunRecord, float], RunRecord]
#: What :meth:`SyncBase.claim_and_load` returns: the record before, the claimed one, the chain.
Loaded = tuple[RunRecord, RunRecord, builtins.list[VersionRecord]]


class SyncBase:
    """The primitives a backend implements and the sync store API built on them.

    Subclass :class:`~stepkit.stores.BaseStore`, not this: see its docstring.
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

    def _append_step(
        self, row: StepRow, owner: str, lease: float | None, kind: VersionKind = "step"
    ) -> None:
        self._append(VersionRecord(*row, kind), owner, lease)

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
        requests.check_create(record, first)
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
        due: bool = False,
    ) -> RunRecord:
        """See :meth:`Store.claim`; ``due=True`` claims only a due run (see :meth:`due`)."""
        change = _transitions.claim_change(
            run_id, owner, lease, recover, expect_version, dead_owner, due
        )
        with self._guard("claim"):
            return self._update(run_id, change)

    def claim_and_load(
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
        """Claim a run and read the versions that rebuild it: what a resume needs, at once.

        ``check(record)`` sees the run first, under the same lock, and may raise to
        refuse (then nothing is written). Returns the record before the claim, the
        claimed record, and :meth:`versions` up to ``upto`` (default: the latest).
        If the versions cannot be read, the claim is undone. Backends may do it all
        in one transaction (``_claim_and_load``; SQLiteStore does). Used by
        ``resume``; not part of the :class:`Store` protocol.
        """
        seen: builtins.list[RunRecord] = []
        change = requests.claim_and_load_change(
            run_id, owner, lease, recover, dead_owner, upto, check, seen
        )
        with self._guard("claim"):
            return self._claim_and_load(run_id, change, upto, seen, owner)

    def _claim_and_load(
        self,
        run_id: str,
        change: Change,
        upto: int | None,
        seen: builtins.list[RunRecord],
        owner: str,
    ) -> Loaded:
        """Apply ``change`` (a claim by ``owner`` that appends the record it saw to ``seen``),
        then read the chain; undo the claim if that fails."""
        claimed = self._update(run_id, change)
        before = seen[-1]
        try:  # nothing else appends while we hold the claim
            chain = self._chain(run_id, upto)
        except BaseException:
            undo = functools.partial(_transitions.undo_claim, before=before, owner=owner)
            with contextlib.suppress(Exception):  # the original error matters more
                self._update(run_id, undo)
            raise
        return before, claimed, chain

    def renew(self, run_id: str, *, owner: str, lease: float) -> RunRecord:
        """See :meth:`Store.renew`."""
        change = requests.renew_change(run_id, owner, lease)
        with self._guard("renew"):
            return self._update(run_id, change)

    def append(self, version: VersionRecord, *, owner: str, lease: float | None = None) -> None:
        """See :meth:`Store.append`."""
        requests.check_append(version, owner, lease)
        with self._guard("append"):
            self._append(version, owner, lease)

    def save_step(
        self, row: StepRow, owner: str, lease: float | None, kind: VersionKind = "step"
    ) -> None:
        """:meth:`append` of a version that stepkit built itself (``kind`` ``"step"`` or ``"op"``).

        The durable-run engine calls this once per persisted step, and a
        workflow once per op, with the fields it made (so no record is built
        nor re-validated); it is not part of the :class:`Store` protocol (other
        stores get :meth:`append`). A backend's ``_append_step`` receives
        ``kind=`` only for a kind other than ``"step"``.
        """
        if self._closed:
            raise StoreError(f"{type(self).__name__} is closed")
        try:
            if kind == "step":
                self._append_step(row, owner, lease)
            else:
                self._append_step(row, owner, lease, kind)
        except StepkitError:
            raise
        except self._backend_errors as exc:
            raise StoreError(f"{type(self).__name__}.append() failed: {exc}") from exc

    def finish(
        self,
        run_id: str,
        *,
        owner: str,
        status: RunStatus,
        error: str | None = None,
        wake_at: float | None = None,
        waiting_for: str | None = None,
    ) -> RunRecord:
        """See :meth:`Store.finish`.

        ``status`` may also be ``sleeping`` (needs ``wake_at``) or ``waiting``
        (``wake_at`` is its timeout, ``None`` for none; ``waiting_for`` the
        signal names, one per line): the run is released until it is due.
        """
        change = requests.finish_change(run_id, owner, status, error, wake_at, waiting_for)
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
        requests.check_list(pipeline, status, limit)
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
        rule = requests.purge_rule(expired, older_than, status)
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
        result: builtins.list[VersionRecord] = requests.found_or_missing(found, run_id)
        return result

    def now(self) -> float:
        """See :meth:`Store.now`."""
        return self._clock()

    def snapshot(self, run_id: str, version: int | None = None) -> dict[str, Any]:
        """See :meth:`Store.snapshot`."""
        return requests.snapshot_of(self.versions(run_id, upto=version), run_id)

    def close(self) -> None:
        """See :meth:`Store.close`; closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._close()
