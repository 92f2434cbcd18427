"""``WakeBase``: what suspended runs (durable workflows) need of a store, over a few primitives.

A workflow run suspends (``sleeping``/``waiting`` with a ``wake_at``), takes
signals into a per-run mailbox, is found when due and is cancelled. The rules
are the pure functions of :mod:`stepkit.stores._transitions`; a backend adds
two primitives (``_deliver``, ``_signals``) and may speed up two queries
(``_due``, ``_waiting``) whose defaults read :meth:`_list`.
"""

from __future__ import annotations

import builtins

from stepkit.errors import RunConflictError
from stepkit.stores import _requests as requests
from stepkit.stores import _transitions
from stepkit.stores._records import (
    SUSPENDED,
    RunRecord,
    SignalRecord,
    check_id,
    check_version_number,
)
from stepkit.stores._sync_base import Change, SyncBase

__all__ = ["DeliveryStatus", "WakeBase", "due_order"]

DeliveryStatus = requests.DeliveryStatus


def due_order(record: RunRecord) -> tuple[float, str]:
    """The order :meth:`WakeBase.due` returns runs in: earliest wake time (or lease end) first."""
    moment = record.wake_at if record.status in SUSPENDED else record.lease_until
    return (float("inf") if moment is None else moment, record.run_id)


class WakeBase(SyncBase):
    """The sync API of suspended runs; subclass :class:`~stepkit.stores.BaseStore`, not this.

    **Primitives** a backend implements for signals (each atomic):

    - ``_deliver(signal, change)``: if the run ``signal.run_id`` already holds a
      message with ``signal.idempotency_key`` (not ``None``), return ``None`` and
      write nothing. Otherwise load the run (``RunNotFoundError`` if none), call
      ``change(record, self.now())`` (if it raises, write nothing), store the
      message with ``seq`` = the run's message count + 1 and ``created_at`` =
      now, store the returned record, and return the record *as it was before*.
    - ``_signals(run_id)``: the run's messages by ``seq``, or ``None`` for no run.

    **Optional** (defaults read :meth:`_list`, a full scan): ``_due(now, limit)``
    and ``_waiting(signal, limit)``; a store with many runs answers them from an index.
    """

    # -- primitives ----------------------------------------------------------------------

    def _deliver(self, signal: SignalRecord, change: Change) -> RunRecord | None:
        raise NotImplementedError(
            f"{type(self).__name__} keeps no signal mailbox: implement _deliver and _signals "
            "(see docs/stores.md) to run workflows that wait for signals on it"
        )

    def _signals(self, run_id: str) -> builtins.list[SignalRecord] | None:
        raise NotImplementedError(
            f"{type(self).__name__} keeps no signal mailbox: implement _deliver and _signals"
        )

    def _due(self, now: float, limit: int | None) -> builtins.list[RunRecord]:
        found = [
            r
            for status in ("sleeping", "waiting", "running")
            for r in self._list(None, status, None)
            if _transitions.is_due(r, now)
        ]
        found.sort(key=due_order)
        return found if limit is None else found[:limit]

    def _waiting(self, signal: str, limit: int | None) -> builtins.list[RunRecord]:
        found = [r for r in self._list(None, "waiting", None) if r.waits_for(signal)]
        found.reverse()  # oldest first
        return found if limit is None else found[:limit]

    # -- the public sync API -------------------------------------------------------------

    def cancel(self, run_id: str, *, reason: str | None = None) -> RunRecord:
        """Mark a run ``cancelled`` (a no-op if it is); its holder loses the claim.

        ``RunConflictError`` for a completed run, ``RunNotFoundError`` for none.
        """
        change = requests.cancel_change(run_id, reason)
        with self._guard("cancel"):
            return self._update(run_id, change)

    def deliver(
        self, run_id: str, signal: str, data: str, *, idempotency_key: str | None = None
    ) -> DeliveryStatus:
        """Put a signal into a run's mailbox, atomically; say what became of it.

        ``data`` is JSON text (the codec's). ``"duplicate"``: a message with this
        ``idempotency_key`` is already there (nothing is stored); ``"delivered"``:
        the run was waiting on ``signal`` and is now due; ``"buffered"``: kept
        for a later wait; ``"undelivered"``: the run is completed or cancelled
        (nothing is stored). ``RunNotFoundError`` for no such run.
        """
        message, change = requests.delivery(run_id, signal, data, idempotency_key)
        try:
            with self._guard("deliver"):
                before = self._deliver(message, change)
        except RunConflictError:
            return "undelivered"
        return requests.delivery_status(before, signal)

    def signals(self, run_id: str) -> builtins.list[SignalRecord]:
        """The run's signal mailbox, in delivery order (``RunNotFoundError`` for no run)."""
        check_id(run_id, "run_id")
        with self._guard("signals"):
            found = self._signals(run_id)
        result: builtins.list[SignalRecord] = requests.found_or_missing(found, run_id)
        return result

    def due(self, *, limit: int | None = None) -> builtins.list[RunRecord]:
        """Runs a worker should pick up now, earliest first.

        ``sleeping``/``waiting`` runs whose ``wake_at`` has come, and ``running``
        runs whose lease has run out (their process died). Claim each with
        ``claim(run_id, owner=..., due=True)``: of several workers, one wins.
        """
        check_version_number(limit, "limit", 0)
        with self._guard("due"):
            return self._due(self.now(), limit)

    def waiting(self, signal: str, *, limit: int | None = None) -> builtins.list[RunRecord]:
        """Runs ``waiting`` on ``signal``, oldest first."""
        check_id(signal, "signal")
        check_version_number(limit, "limit", 0)
        with self._guard("waiting"):
            return self._waiting(signal, limit)
