"""``ServerStore``: a store on a database server, sync and natively async from one implementation.

Each primitive is written once as an *op*: a generator that yields requests for
the server (a backend-specific value: SQL and parameters, a Lua script call...)
and receives their results, or has the server's exception thrown in. A backend
runs ops with its sync client (:meth:`ServerStore._run`) or its async one
(:meth:`ServerStore._arun`), so the async twins never run sync code in a thread.
"""

from __future__ import annotations

import builtins
from typing import TypeVar

from stepkit.stores._base import Change
from stepkit.stores._records import (
    RunRecord,
    SignalRecord,
    StepRow,
    VersionKind,
    VersionRecord,
)
from stepkit.stores._server_async import AsyncTwins
from stepkit.stores._sync_base import Loaded
from stepkit.stores._transitions import PurgeRule

__all__ = ["ServerStore"]

_T = TypeVar("_T")


class ServerStore(AsyncTwins):
    """A :class:`BaseStore` whose primitives are ops, run by a sync or an async client.

    A backend implements the ``_op_*`` generators below, :meth:`_run` and
    :meth:`_arun`; the sync primitives and every async twin come from here.
    """

    _url = ""

    # -- sync primitives -----------------------------------------------------------------

    def _insert(self, record: RunRecord, first: VersionRecord | None) -> None:
        self._run(self._op_insert(record, first))

    def _update(
        self, run_id: str, change: Change, version: VersionRecord | None = None
    ) -> RunRecord:
        return self._run(self._op_update(run_id, change, version))

    def _get(self, run_id: str) -> RunRecord | None:
        return self._run(self._op_get(run_id))

    def _list(
        self, pipeline: str | None, status: str | None, limit: int | None
    ) -> builtins.list[RunRecord]:
        return self._run(self._op_list(pipeline, status, limit))

    def _delete(self, run_id: str) -> bool:
        return self._run(self._op_delete(run_id))

    def _purge(self, rule: PurgeRule) -> int:
        return self._run(self._op_purge(rule))

    def _version(self, run_id: str, version: int) -> VersionRecord | None:
        return self._run(self._op_version(run_id, version))

    def _chain(self, run_id: str, upto: int | None) -> builtins.list[VersionRecord]:
        return self._run(self._op_chain(run_id, upto))

    def _history(self, run_id: str) -> builtins.list[VersionRecord] | None:
        return self._run(self._op_history(run_id))

    def _append(self, version: VersionRecord, owner: str, lease: float | None) -> None:
        self._run(self._op_append(version, owner, lease))

    def _deliver(self, signal: SignalRecord, change: Change) -> RunRecord | None:
        return self._run(self._op_deliver(signal, change))

    def _signals(self, run_id: str) -> builtins.list[SignalRecord] | None:
        return self._run(self._op_signals(run_id))

    def _due(self, now: float, limit: int | None) -> builtins.list[RunRecord]:
        return self._run(self._op_due(now, limit))

    def _waiting(self, signal: str, limit: int | None) -> builtins.list[RunRecord]:
        return self._run(self._op_waiting(signal, limit))

    def _append_step(
        self, row: StepRow, owner: str, lease: float | None, kind: VersionKind = "step"
    ) -> None:
        self._run(self._op_append(VersionRecord(*row, kind), owner, lease))

    def _claim_and_load(
        self,
        run_id: str,
        change: Change,
        upto: int | None,
        seen: builtins.list[RunRecord],
        owner: str,
    ) -> Loaded:
        return self._run(self._op_claim_and_load(run_id, change, upto, seen))
