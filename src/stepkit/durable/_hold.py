"""Holding a claimed run: its lease, the heartbeat that renews it, and the release at the end.

Every durable claim has an owner token and a lease (:data:`DEFAULT_LEASE`
seconds unless ``lease=`` says otherwise). The lease is renewed by each
persisted step (``append(..., lease=)``) and, while a step runs, by a
heartbeat every ``lease / 3`` seconds: a daemon thread under ``run()``, an
asyncio task under ``arun()``. A renew refused because the claim was lost
stops the heartbeat and marks the persister, so the run writes nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
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
        "_stop",
        "_task",
        "_thread",
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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
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

    def _beat(self) -> None:
        interval = heartbeat_interval(self.lease)
        while not self._stop.wait(interval):
            error: Exception | None = None
            try:
                self.store.renew(self.run_id, owner=self.owner, lease=self.lease)
            except Exception as exc:
                error = exc
            if not self._renewed(error):
                return

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
        """Start the heartbeat thread (under ``run()``)."""
        self._thread = threading.Thread(
            target=self._beat, name=f"stepkit-lease-{self.run_id}", daemon=True
        )
        self._thread.start()

    def astart(self) -> None:
        """Start the heartbeat task (under ``arun()``)."""
        self._task = asyncio.get_running_loop().create_task(self._abeat())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()  # at most one renew in flight; it never outlives the run
            self._thread = None

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
