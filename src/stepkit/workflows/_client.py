"""``Client``: registers workflows, starts runs, sends signals, runs what is due; sync and async.

Every client method is one conversation with the store (a generator of store
calls, see :mod:`stepkit.workflows._conversations`), performed with the store's
sync methods or, by the ``a``-prefixed twin, with its async ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from stepkit._checks import check_count, check_event, check_id, check_seconds
from stepkit.durable._store_calls import adrive_store, drive_store
from stepkit.errors import InvalidArgumentError
from stepkit.workflows import _conversations as talk
from stepkit.workflows._conversations import SignalReceipt
from stepkit.workflows._definition import Workflow, hooks_of
from stepkit.workflows._drivers import store_of
from stepkit.workflows._execute import aexecute, execute
from stepkit.workflows._handle import WorkflowHandle

__all__ = ["Client"]

F = TypeVar("F", bound=Callable[..., Any])
_DEFAULT_LEASE = 30.0


class Client:
    """The entry point of durable workflows::

        client = Client(driver=SQLiteDriver("runs.db"))

        @client.workflow(id="greet")
        def greet(ctx, step):
            return step.run("hello", lambda: f"hello {ctx.input['name']}")

        handle = client.start_workflow(greet, {"name": "ana"})

    ``clock`` (default ``time.time``) drives timers, timeouts and leases: a
    ``stepkit.testing.FakeClock`` controls them all. ``owner`` names this
    process in claims (default: host, pid and a random suffix); ``lease`` is
    the claim's lease in seconds, renewed by a heartbeat while a run executes.
    """

    def __init__(
        self,
        driver: Any,
        *,
        clock: Callable[[], float] | None = None,
        owner: str | None = None,
        lease: float = _DEFAULT_LEASE,
        on_step_start: Any = None,
        on_step_complete: Any = None,
        on_error: Any = None,
    ) -> None:
        if clock is not None and not callable(clock):
            raise InvalidArgumentError(f"clock= must be callable, got {clock!r}")
        self.clock: Callable[[], float] = clock or time.time
        self.store = store_of(driver, self.clock)
        self.driver = driver
        default_owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.owner = check_id(owner, "owner") if owner is not None else default_owner
        lease_seconds = check_seconds(lease, "lease")
        if lease_seconds is None:
            raise InvalidArgumentError("lease= must be a number of seconds > 0")
        self.lease = lease_seconds
        self.hooks = hooks_of(on_step_start, on_step_complete, on_error)
        self._workflows: dict[str, Workflow[Any]] = {}

    def __repr__(self) -> str:
        return f"Client({self.driver!r}, owner={self.owner!r})"

    # -- registering ---------------------------------------------------------------------

    def workflow(
        self,
        *,
        id: str,
        input_schema: Any = None,
        version: str = "1",
        retries: int = 0,
        step_retries: int = 3,
        retry_delay: Any = None,
        timeout: float | None = None,
        ttl: float | None = None,
        migrations: Mapping[str, Callable[[Any], Any]] | None = None,
        signals: Mapping[str, Any] | None = None,
        on_step_start: Any = None,
        on_step_complete: Any = None,
        on_error: Any = None,
    ) -> Callable[[Callable[..., Any]], Workflow[Any]]:
        """Register a ``def`` or ``async def`` function ``(ctx, step)`` as workflow ``id``.

        ``retries`` re-runs the whole function after an error (completed ops
        stay memoized); ``step_retries`` and ``retry_delay`` are the defaults of
        every ``step.run``; ``timeout`` bounds the whole run, ``ttl`` its life
        in the store; ``migrations`` upgrade the input of runs started by an
        older ``version``; ``signals`` maps signal names to schemas checked
        when sent and received.
        """
        hooks = hooks_of(on_step_start, on_step_complete, on_error)

        def register(fn: Callable[..., Any]) -> Workflow[Any]:
            flow: Workflow[Any] = Workflow(
                fn,
                id=id,
                input_schema=input_schema,
                version=version,
                retries=retries,
                step_retries=step_retries,
                retry_delay=retry_delay,
                timeout=timeout,
                ttl=ttl,
                migrations=migrations,
                signals=signals,
                hooks=hooks,
            )
            self._workflows[flow.id] = flow
            return flow

        return register

    def workflow_named(self, workflow_id: str) -> Workflow[Any] | None:
        """The registered workflow with this id, or ``None``."""
        return self._workflows.get(workflow_id)

    def _resolve(self, workflow: Any) -> Workflow[Any]:
        flow = (
            self._workflows.get(workflow if isinstance(workflow, str) else workflow.id)
            if (isinstance(workflow, str | Workflow))
            else None
        )
        if flow is None:
            raise InvalidArgumentError(
                f"{workflow!r} is not a workflow of this client: register it with "
                "@client.workflow(id=...) first"
            )
        return flow

    def child_records(self, child_id: str, workflow_id: str, encoded: Any, key: str) -> Any:
        """The run record and first version of a child run (for ``step.invoke``)."""
        parent = child_id[: -(len(key) + 1)]
        return talk.new_run(
            self, self._resolve(workflow_id), child_id, encoded, wait=False, parent=(parent, key)
        )

    # -- starting ------------------------------------------------------------------------

    def start_workflow(
        self, workflow: Any, input: Any = None, *, run_id: str | None = None, wait: bool = True
    ) -> WorkflowHandle:
        """Start a run (idempotent on ``run_id``); run it inline until it completes or suspends.

        With ``wait=False`` the run is only stored, due at once for ``run_due()``.
        Returns a handle whatever the outcome; raises only for bad arguments or
        input (``InvalidInputError``, before anything is stored).
        """
        flow = self._resolve(workflow)
        plan = talk.start(self, flow, input, run_id, wait)
        record, first = self._perform(plan)
        if record is not None and wait:
            execute(self, flow, record, [first])
        return WorkflowHandle(self, first.run_id)

    async def astart_workflow(
        self, workflow: Any, input: Any = None, *, run_id: str | None = None, wait: bool = True
    ) -> WorkflowHandle:
        """Async :meth:`start_workflow`."""
        flow = self._resolve(workflow)
        plan = talk.start(self, flow, input, run_id, wait)
        record, first = await self._aperform(plan)
        if record is not None and wait:
            await aexecute(self, flow, record, [first])
        return WorkflowHandle(self, first.run_id)

    def get_handle(self, run_id: str) -> WorkflowHandle:
        """A handle on an existing run (``RunNotFoundError`` later, from its methods, if none)."""
        return WorkflowHandle(self, check_id(run_id, "run_id"))

    # -- signals and cancelling ----------------------------------------------------------

    def send_signal(
        self,
        signal: str,
        data: Any = None,
        *,
        run_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> SignalReceipt:
        """Put ``signal`` into a run's mailbox (kept if the run does not wait yet).

        Without ``run_id``, to the one run waiting on ``signal`` (``undelivered``
        if none; ``SignalConflictError`` if several, and nothing is delivered).
        ``idempotency_key`` makes a repeated send a ``duplicate``.
        """
        result: SignalReceipt = self._perform(
            talk.send_signal(self, signal, data, run_id, idempotency_key)
        )
        return result

    async def asend_signal(
        self,
        signal: str,
        data: Any = None,
        *,
        run_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> SignalReceipt:
        """Async :meth:`send_signal`."""
        result: SignalReceipt = await self._aperform(
            talk.send_signal(self, signal, data, run_id, idempotency_key)
        )
        return result

    def cancel(self, run_id: str, reason: str | None = None) -> None:
        """Cancel a run: it never continues; a worker running it stops at its next op.

        Its running, sleeping or waiting child runs (``step.invoke``) are
        cancelled too, and theirs. ``RunConflictError`` for a completed run.
        """
        self._perform(talk.cancel(self, run_id, reason))

    async def acancel(self, run_id: str, reason: str | None = None) -> None:
        """Async :meth:`cancel`."""
        await self._aperform(talk.cancel(self, run_id, reason))

    def list_runs(
        self, *, workflow: Any = None, status: str | None = None, limit: int | None = 100
    ) -> list[Any]:
        """Workflow runs (``RunRecord``), most recently updated first."""
        name = None if workflow is None else getattr(workflow, "id", workflow)
        runs = self.store.list(pipeline=name, status=status, limit=limit)
        return [r for r in runs if talk.is_workflow_run(r)]

    async def alist_runs(
        self, *, workflow: Any = None, status: str | None = None, limit: int | None = 100
    ) -> list[Any]:
        """Async :meth:`list_runs`."""
        name = None if workflow is None else getattr(workflow, "id", workflow)
        runs = await self.store.alist(pipeline=name, status=status, limit=limit)
        return [r for r in runs if talk.is_workflow_run(r)]

    # -- running what is due -------------------------------------------------------------

    def run_due(self, *, run_id: str | None = None, limit: int | None = None) -> int:
        """Claim and advance every due run of this client's workflows; return how many.

        Due: sleeping or waiting runs whose time came (or whose signal or child
        arrived), and runs whose worker died (expired lease). Repeats until
        nothing is due, so a parent woken by its child continues in the same call.
        """
        result: int = self._perform(talk.run_due(self, run_id, limit))
        return result

    async def arun_due(self, *, run_id: str | None = None, limit: int | None = None) -> int:
        """Async :meth:`run_due`."""
        result: int = await self._aperform(talk.run_due(self, run_id, limit))
        return result

    def resume(
        self, run_id: str, *, recover: bool = False, dead_owner: str | None = None
    ) -> WorkflowHandle:
        """Continue a ``failed`` run after its cause was fixed (completed ops replay).

        ``recover=True`` also takes over a run left ``running`` whose lease has
        expired (or that has none); with ``dead_owner=`` (its owner token, from
        ``get_handle(run_id).status().owner``) it takes over at once a run whose
        worker the caller knows is gone. A live lease is never taken over.
        """
        claim = talk.claim_for_resume(self, run_id, recover, dead_owner)
        record, flow = self._perform(claim)
        execute(self, flow, record, None, resumed=True)
        return WorkflowHandle(self, run_id)

    async def aresume(
        self, run_id: str, *, recover: bool = False, dead_owner: str | None = None
    ) -> WorkflowHandle:
        """Async :meth:`resume`."""
        claim = talk.claim_for_resume(self, run_id, recover, dead_owner)
        record, flow = await self._aperform(claim)
        await aexecute(self, flow, record, None, resumed=True)
        return WorkflowHandle(self, run_id)

    def run_worker(
        self, *, concurrency: int = 1, poll_interval: float = 0.5, stop: Any = None
    ) -> None:
        """Run due runs until ``stop`` (a ``threading.Event``) is set; ``concurrency`` threads."""
        check_count(concurrency, "concurrency", minimum=1)
        interval = check_seconds(poll_interval, "poll_interval") or 0.5
        check_event(stop, "stop")
        halt = stop if stop is not None else threading.Event()

        def loop() -> None:
            while not halt.is_set():
                if self.run_due() == 0:
                    wait = getattr(halt, "wait", None)
                    if callable(wait):
                        wait(interval)
                    else:
                        time.sleep(interval)

        if concurrency == 1:
            loop()
            return
        threads = [threading.Thread(target=loop, daemon=True) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    async def arun_worker(
        self, *, concurrency: int = 1, poll_interval: float = 0.5, stop: Any = None
    ) -> None:
        """Async :meth:`run_worker` (``concurrency`` tasks).

        ``stop`` may be an ``asyncio.Event`` or a ``threading.Event``; setting it
        ends a poll's wait at once.
        """
        check_count(concurrency, "concurrency", minimum=1)
        interval = check_seconds(poll_interval, "poll_interval") or 0.5
        check_event(stop, "stop")

        async def idle() -> None:  # until the next poll, or until stop is set
            wait = getattr(stop, "wait", None)
            if isinstance(stop, asyncio.Event):
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
            elif callable(wait):  # a threading.Event: wait in a thread, end when it is set
                await asyncio.to_thread(wait, interval)
            else:
                await asyncio.sleep(interval)

        async def loop() -> None:
            while stop is None or not stop.is_set():
                if await self.arun_due() == 0:
                    await idle()

        await asyncio.gather(*(loop() for _ in range(concurrency)))

    # -- performing conversations ----------------------------------------------------------

    def _perform(self, gen: Any) -> Any:
        return drive_store(gen, self.store, {talk.EXECUTE: partial(execute, self)})

    async def _aperform(self, gen: Any) -> Any:
        return await adrive_store(gen, self.store, {talk.EXECUTE: partial(aexecute, self)})
