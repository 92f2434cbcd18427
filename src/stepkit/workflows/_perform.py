"""The two performers of the core's commands: plain calls (``def``) and awaits (``async def``).

They decide nothing: they call a step body (under ``IN_STEP`` and its timeout),
append an op's version under the run's claim, create a child run, call hooks.
A store error while appending means the claim is lost (cancelled, or taken
over after the lease ran out): :class:`Abandon` unwinds the function, which
writes nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from stepkit.errors import EventLoopError, RunConflictError, StepTimeoutError, StoreError
from stepkit.stores import BaseStore
from stepkit.stores._records import StepRow
from stepkit.workflows._core import CALL, CHILD, HOOK, IN_STEP, PERSIST, OpGen, Replay
from stepkit.workflows._step import ready

__all__ = ["Abandon", "AsyncPerformer", "Ready", "SyncPerformer", "run_awaitable"]

log = logging.getLogger("stepkit")


class Abandon(BaseException):
    """This process lost the run's claim: stop the function, write nothing more."""


class Ready:
    """An awaitable that is already decided (a replayed op): no task, no event loop trip."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value, self.error = value, error

    def __await__(self) -> Generator[Any, None, Any]:
        if self.error is not None:
            raise self.error
        return self.value
        yield  # pragma: no cover - makes this a generator


def run_awaitable(awaitable: Any) -> Any:
    """Run a coroutine to completion from sync code (no event loop may be running here)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        raise EventLoopError(
            "a def workflow met async code inside a running event loop; "
            "use the client's a-prefixed methods (await client.astart_workflow(...))"
        )

    async def wait() -> Any:
        return await awaitable

    return asyncio.run(wait())


def _timed_out(fn: Any, timeout: float) -> StepTimeoutError:
    name = getattr(fn, "__name__", repr(fn))
    return StepTimeoutError(f"step body {name} ran longer than {timeout} s", timeout=timeout)


class _Performer:
    def __init__(
        self,
        core: Replay,
        store: Any,
        owner: str,
        lease: float,
        create_child: Callable[[str, str, Any, str], tuple[Any, Any]],
    ) -> None:
        self.core, self.store, self.owner, self.lease = core, store, owner, lease
        self.create_child = create_child
        # stepkit's own stores take an op's fields as they are (no record to re-check)
        self.fast = isinstance(store, BaseStore)

    def _save(self, key: str, record: dict[str, Any]) -> StepRow:
        """The row ``save_step`` takes for op ``key`` (its version numbered now)."""
        core = self.core
        number, changes = core.op_fields(key, record)
        parent = number - 1 if number > 1 else None
        return (core.run_id, number, parent, key, changes, (), "", None, core.clock())

    def _lost(self, exc: Exception) -> Abandon:
        self.core.lost = exc
        log.warning("workflow run %s lost its claim: %s", self.core.run_id, exc)
        return Abandon()


class SyncPerformer(_Performer):
    """Performs commands with plain calls and the store's sync methods."""

    def drive(self, gen: OpGen) -> Any:
        value: Any = None
        error: Exception | None = None
        while True:
            try:
                command = gen.send(value) if error is None else gen.throw(error)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                value = self.perform(command)
            except Exception as exc:
                error = exc

    def perform(self, command: tuple[Any, ...]) -> Any:
        op = command[0]
        if op == CALL:
            _, fn, args, timeout = command
            token = IN_STEP.set(self.core)
            try:
                out = fn(*args) if timeout is None else self._call_timed(fn, args, timeout)
                if inspect.isawaitable(out):
                    out = run_awaitable(out)
                return out
            finally:
                IN_STEP.reset(token)
        if op == PERSIST:
            try:
                if self.fast:
                    self.store.save_step(
                        self._save(command[1], command[2]), self.owner, self.lease, "op"
                    )
                else:
                    version = self.core.op_version(command[1], command[2], self.core.clock())
                    self.store.append(version, owner=self.owner, lease=self.lease)
            except StoreError as exc:
                raise self._lost(exc) from exc
            return None
        if op == CHILD:
            record, first = self.create_child(*command[1:])
            with contextlib.suppress(RunConflictError):  # created before a crash: same child
                self.store.create(record, first)
            return None
        if op == HOOK:
            for handler in command[1]:
                try:
                    out = handler(command[2])
                    if inspect.isawaitable(out):
                        run_awaitable(out)
                except Exception as exc:
                    log.warning("workflow hook %r failed: %s", handler, exc)
            return None
        raise AssertionError(f"unknown command {op!r}")  # pragma: no cover

    @staticmethod
    def _call_timed(fn: Any, args: tuple[Any, ...], timeout: float) -> Any:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stepkit-step")
        future = pool.submit(contextvars.copy_context().run, fn, *args)
        pool.shutdown(wait=False)  # a sync body cannot be stopped: it runs on, its result unused
        try:
            return future.result(timeout)
        except FutureTimeout:
            raise _timed_out(fn, timeout) from None


class AsyncPerformer(_Performer):
    """Performs commands with awaits and the store's async twins; tracks ops in flight."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.inflight: set[asyncio.Task[Any]] = set()
        self.lock = asyncio.Lock()

    def start(self, gen: OpGen) -> Awaitable[Any]:
        done, value, error, command = ready(gen)
        if done:
            return Ready(value, error)
        task = asyncio.get_running_loop().create_task(self._continue(gen, command))
        self.inflight.add(task)
        return task

    async def settle(self) -> bool:
        """Let every op in flight land (persisted or failed); False if the claim was lost."""
        lost = False
        while self.inflight:
            tasks, self.inflight = list(self.inflight), set()
            for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                lost = lost or isinstance(outcome, Abandon)
        return not lost

    async def _continue(self, gen: OpGen, command: tuple[Any, ...]) -> Any:
        while True:
            value: Any = None
            error: Exception | None = None
            try:
                value = await self.perform(command)
            except Exception as exc:
                error = exc
            try:
                command = gen.send(value) if error is None else gen.throw(error)
            except StopIteration as stop:
                return stop.value

    async def perform(self, command: tuple[Any, ...]) -> Any:
        op = command[0]
        if op == CALL:
            _, fn, args, timeout = command
            token = IN_STEP.set(self.core)
            try:
                if timeout is None:
                    out = fn(*args)
                    return (await out) if inspect.isawaitable(out) else out
                if inspect.iscoroutinefunction(fn):
                    awaitable: Any = fn(*args)
                else:
                    awaitable = asyncio.to_thread(fn, *args)
                try:
                    return await asyncio.wait_for(awaitable, timeout)
                except asyncio.TimeoutError:
                    raise _timed_out(fn, timeout) from None
            finally:
                IN_STEP.reset(token)
        if op == PERSIST:
            async with self.lock:  # versions are numbered in the order they are stored
                try:
                    if self.fast:
                        await self.store.asave_step(
                            self._save(command[1], command[2]), self.owner, self.lease, "op"
                        )
                    else:
                        version = self.core.op_version(command[1], command[2], self.core.clock())
                        await self.store.aappend(version, owner=self.owner, lease=self.lease)
                except StoreError as exc:
                    raise self._lost(exc) from exc
            return None
        if op == CHILD:
            record, first = self.create_child(*command[1:])
            with contextlib.suppress(RunConflictError):
                await self.store.acreate(record, first)
            return None
        if op == HOOK:
            for handler in command[1]:
                try:
                    out = handler(command[2])
                    if inspect.isawaitable(out):
                        await out
                except Exception as exc:
                    log.warning("workflow hook %r failed: %s", handler, exc)
            return None
        raise AssertionError(f"unknown command {op!r}")  # pragma: no cover
