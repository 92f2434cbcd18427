"""Holding a claimed run: its lease, the heartbeat that renews it, and the release at the end.

Every durable claim has an owner token and a lease (:data:`DEFAULT_LEASE`
seconds unless ``lease=`` says otherwise). The lease is renewed by each
persisted step (``append(..., lease=)``) and, while a step runs, by a
heartbeat every ``lease / 3`` seconds: under ``run()`` one daemon thread per
process (:data:`KEEPER`) renews every held run, so a run starts no thread of
its own; under ``arun()`` an asyncio task per run. A renew refused because
the claim was lost stops the heartbeat and marks the persister, so the run
writes nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from typing import Any

from stepkit.durable._store_calls import StoreGen
from stepkit.errors import (
    PipelineAbortedError,
    RunConflictError,
    RunNotFoundError,
    StepkitError,
)

log = logging.getLogger("stepkit")

#: The lease of a durable run's claim, in seconds of the store's clock, unless ``lease=``.
DEFAULT_LEASE = 30.0


def heartbeat_interval(lease: float) -> float:
    """Seconds between two renewals of a lease of ``lease`` seconds."""
    return lease / 3


class Hold:
    """Our claim on a stored run while it runs: owner, lease, heartbeat; released at the end."""

    __slots__ = (
        "_task",
        "lease",
        "lost",
        "owner",
        "persister",
        "run_id",
        "store",
    )

    def __init__(self, store: Any, run_id: str, owner: str, lease: float, persister: Any) -> None:
        self.store, self.run_id, self.owner, self.lease = store, run_id, owner, lease
        self.persister = persister
        self.lost: StepkitError | None = None
        self._task: asyncio.Task[None] | None = None

    # -- heartbeat --------------------------------------------------------------------

    def _renewed(self, error: Exception | None) -> bool:
        """Account for one renewal; False once the claim is lost (stop beating)."""
        if error is None:
            return True
        if isinstance(error, RunConflictError | RunNotFoundError):
            self.lost = error
            self.persister.lost = error  # its next save raises instead of writing
            log.warning("run %s lost its claim: %s", self.run_id, error)
            return False
        log.warning("could not renew the lease of run %s (will retry): %s", self.run_id, error)
        return True

    def renew(self) -> bool:
        """Renew the lease once; False once the claim is lost (stop renewing)."""
        error: Exception | None = None
        try:
            self.store.renew(self.run_id, owner=self.owner, lease=self.lease)
        except Exception as exc:
            error = exc
        return self._renewed(error)

    async def _abeat(self) -> None:
        interval = heartbeat_interval(self.lease)
        while True:
            await asyncio.sleep(interval)
            error: Exception | None = None
            try:
                await self.store.arenew(self.run_id, owner=self.owner, lease=self.lease)
            except Exception as exc:
                error = exc
            if not self._renewed(error):
                return

    def start(self) -> None:
        """Start the heartbeat (under ``run()``): the process's keeper renews us."""
        KEEPER.add(self)

    def astart(self) -> None:
        """Start the heartbeat task (under ``arun()``)."""
        self._task = asyncio.get_running_loop().create_task(self._abeat())

    def stop(self) -> None:
        """Stop the heartbeat; no renewal of ours is in flight once this returns."""
        KEEPER.remove(self)

    async def astop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- release ----------------------------------------------------------------------

    def finish(self, stopped: bool, error: BaseException | None) -> StoreGen:
        """Release the run: completed, paused (stopped, aborted, interrupted) or failed."""
        if error is None:
            outcome, message = ("paused" if stopped else "completed"), None
        elif isinstance(error, PipelineAbortedError) or not isinstance(error, Exception):
            outcome, message = "paused", None
        else:
            outcome, message = "failed", f"{type(error).__name__}: {error}"
        try:
            yield (
                "finish",
                (self.run_id,),
                {"owner": self.owner, "status": outcome, "error": message},
            )
        except StepkitError as exc:
            if error is None:
                raise
            log.warning("could not record run %s as %s: %s", self.run_id, outcome, exc)


class Keeper:
    """One daemon thread renewing the leases of every run this process holds under ``run()``.

    Started on first use; idle while nothing is held. A forked child starts
    afresh: it never renews the runs its parent holds.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._due: dict[Hold, float] = {}  # hold -> when to renew it (time.monotonic)
        self._busy: Hold | None = None  # the hold being renewed, outside the lock
        self._wake = float("inf")  # when the thread wakes up next, unless notified
        self._thread: threading.Thread | None = None

    def held(self) -> int:
        """How many runs are held (renewed by this keeper) right now."""
        with self._cond:
            return len(self._due)

    def add(self, hold: Hold) -> None:
        if self._pid != os.getpid():  # forked: the parent's holds and thread are not ours
            self._reset()
        with self._cond:
            due = self._due[hold] = time.monotonic() + heartbeat_interval(hold.lease)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="stepkit-lease-keeper", daemon=True
                )
                self._thread.start()
            elif due < self._wake:  # sooner than the thread planned to look again
                self._cond.notify_all()

    def remove(self, hold: Hold) -> None:
        with self._cond:
            self._due.pop(hold, None)
            while self._busy is hold:  # a renewal in flight: let it land first
                self._cond.wait()

    def _loop(self) -> None:
        with self._cond:
            while True:
                if not self._due:
                    self._wake = float("inf")
                    self._cond.wait()
                    continue
                hold = min(self._due, key=self._due.__getitem__)
                self._wake = self._due[hold]
                wait = self._wake - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                self._busy = hold
                self._cond.release()
                try:
                    keep = hold.renew()
                finally:
                    self._cond.acquire()
                    self._busy = None
                    self._cond.notify_all()
                if hold in self._due:
                    if keep:
                        self._due[hold] = time.monotonic() + heartbeat_interval(hold.lease)
                    else:
                        del self._due[hold]


#: The keeper of this process.
KEEPER = Keeper()
