"""The only code that performs the engine's commands: a sync and an async driver.

Both drivers send results into the core generator and throw exceptions into
it; neither makes a decision of its own. ``drive`` runs async step functions
on a private event loop when none is running in the thread.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from functools import partial
from typing import Any

from stepkit.engine._commands import (
    Call,
    CallTimeout,
    Command,
    Emit,
    ErrorHooks,
    Gen,
    Parallel,
    Persist,
    Sleep,
    StartHooks,
)
from stepkit.engine._threads import PARALLEL_THREADS, timed_calls
from stepkit.errors import EventLoopError, StepTimeoutError

SleepFn = Callable[[float], Any]


class SyncLoop:
    """A private event loop for async code met by ``run()``, created on first use."""

    __slots__ = ("_loop",)

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def wait(self, awaitable: Awaitable[Any]) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never awaited: close it so Python does not warn
            raise EventLoopError(
                "run() met an async step or handler while an event loop is running in "
                "this thread; use `await pipeline.arun(...)` (or arun_checkpoint) instead"
            )
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(_as_coroutine(awaitable))

    def close(self) -> None:
        if self._loop is not None:
            loop, self._loop = self._loop, None
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


isawaitable = inspect.isawaitable


def _awaitable(value: Any) -> bool:
    return value is not None and type(value) is not dict and inspect.isawaitable(value)


def drive(
    gen: Gen, loop: SyncLoop, sleep: SleepFn = time.sleep, lock: threading.Lock | None = None
) -> Any:
    """Perform ``gen``'s commands synchronously; return its return value.

    ``lock`` is set while parallel items run in threads: the core's own code
    and the handlers then run under it (one at a time, so a checkpoint read in
    a handler sees a consistent state); step functions run outside it.
    """
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                if lock is None:
                    cmd = gen.send(value) if error is None else gen.throw(error)
                else:
                    with lock:
                        cmd = gen.send(value) if error is None else gen.throw(error)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                if type(cmd) is Call:  # the hot path, checked first and cheaply
                    value = cmd.fn(cmd.arg)
                    # _awaitable(), inlined: a step returns a dict or None far more often
                    if value is not None and type(value) is not dict and isawaitable(value):
                        value = loop.wait(value)
                elif type(cmd) is Emit and lock is None:  # once a step when handlers are set
                    event = cmd.event
                    for handler in cmd.handlers:
                        if (result := handler(event)) is not None and isawaitable(result):
                            loop.wait(result)
                elif lock is None or type(cmd) not in _HOOK_COMMANDS:
                    value = _perform(cmd, loop, sleep, lock)
                else:
                    with lock:
                        value = _perform(cmd, loop, sleep, lock)
            except EventLoopError:
                raise  # a misuse of run(), not a failure of the step
            except Exception as exc:
                value, error = None, exc
    finally:
        gen.close()


# commands whose user code (handlers, store I/O) runs under the lock of parallel threads
_HOOK_COMMANDS = (Emit, StartHooks, ErrorHooks, Persist)


def _perform(cmd: Command, loop: SyncLoop, sleep: SleepFn, lock: threading.Lock | None) -> Any:
    # class patterns without sub-patterns: positional ones cost ~200 ns a command on 3.11
    match cmd:
        case Emit() | StartHooks():
            for handler in cmd.handlers:
                if _awaitable(result := handler(cmd.event)):
                    loop.wait(result)
        case Persist():
            cmd.persister.save(cmd.step_name, cmd.keys, cmd.removed)
        case ErrorHooks():
            for handler in cmd.handlers:
                if _awaitable(result := handler(cmd.step_name, cmd.exc)):
                    loop.wait(result)
        case Sleep():
            if _awaitable(result := sleep(cmd.seconds)):
                loop.wait(result)
        case Parallel():
            return _parallel_threads(cmd.gens, loop, sleep, lock)
        case CallTimeout():
            return _call_in_thread(cmd.fn, cmd.arg, cmd.seconds, cmd.step_name, loop)
        case Call():  # not reached from drive(), which performs it inline
            value = cmd.fn(cmd.arg)
            return loop.wait(value) if _awaitable(value) else value
    return None


def _parallel_threads(
    gens: Sequence[Gen], loop: SyncLoop, sleep: SleepFn, lock: threading.Lock | None
) -> list[tuple[bool, Any]]:
    """Drive the parallel items on at most PARALLEL_THREADS threads (one item runs inline)."""
    if len(gens) == 1:
        return [_settle(partial(drive, gens[0], loop, sleep, lock))]
    shared = lock or threading.Lock()
    workers = min(PARALLEL_THREADS, len(gens))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stepkit") as pool:
        futures = [pool.submit(_drive_in_thread, gen, sleep, shared) for gen in gens]
        return [future.result() for future in futures]


def _drive_in_thread(gen: Gen, sleep: SleepFn, lock: threading.Lock) -> tuple[bool, Any]:
    loop = SyncLoop()  # an event loop belongs to one thread
    try:
        return _settle(partial(drive, gen, loop, sleep, lock))
    finally:
        loop.close()


def _settle(fn: Callable[[], Any]) -> tuple[bool, Any]:
    try:
        return True, fn()
    except Exception as exc:
        return False, exc


def _timeout_error(step_name: str, seconds: float) -> StepTimeoutError:
    return StepTimeoutError(
        f"step {step_name!r} did not finish within its timeout of {seconds:g}s",
        step_name=step_name,
        timeout=seconds,
    )


def _call_in_thread(
    fn: Callable[..., Any], arg: Any, seconds: float, step_name: str, loop: SyncLoop
) -> Any:
    """Run a sync step on stepkit's timed-call threads; on timeout, abandon the call.

    Python cannot interrupt a running thread safely: the abandoned call runs
    on to its end in the background, and its result is discarded. A call still
    queued when its time is up never starts.
    """
    if inspect.iscoroutinefunction(fn):
        return loop.wait(_with_timeout(fn(arg), seconds, step_name))
    future = timed_calls().submit(partial(_call_to_the_end, fn), arg)
    # wait() rather than result(timeout): a TimeoutError raised by the step itself stays its own
    if not futures_wait((future,), seconds).done:
        future.cancel()
        raise _timeout_error(step_name, seconds)
    return future.result()


def _call_to_the_end(fn: Callable[[Any], Any], arg: Any) -> Any:
    return _finish_in_thread(fn(arg))


def _finish_in_thread(value: Any) -> Any:
    if _awaitable(value):
        return asyncio.run(_as_coroutine(value))
    return value


async def _with_timeout(awaitable: Awaitable[Any], seconds: float, step_name: str) -> Any:
    task = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.wait_for(task, seconds)
    except asyncio.TimeoutError:
        if not task.cancelled():
            raise  # a TimeoutError the step raised itself: its own failure
        raise _timeout_error(step_name, seconds) from None


async def adrive(gen: Gen, sleep: SleepFn = asyncio.sleep) -> Any:
    """Perform ``gen``'s commands on the running event loop; return its value."""
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                cmd = gen.send(value) if error is None else gen.throw(error)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                if type(cmd) is Call:  # the hot path, checked first and cheaply
                    value = cmd.fn(cmd.arg)
                    if value is not None and type(value) is not dict and isawaitable(value):
                        value = await value
                elif type(cmd) is Emit:  # once a step when handlers are set
                    event = cmd.event
                    for handler in cmd.handlers:
                        if (result := handler(event)) is not None and isawaitable(result):
                            await result
                else:
                    value = await _aperform(cmd, sleep)
            except Exception as exc:
                value, error = None, exc
    finally:
        gen.close()


async def _aperform(cmd: Command, sleep: SleepFn) -> Any:
    match cmd:
        case Emit() | StartHooks():
            for handler in cmd.handlers:
                if _awaitable(result := handler(cmd.event)):
                    await result
        case Persist():
            await cmd.persister.asave(cmd.step_name, cmd.keys, cmd.removed)
        case ErrorHooks():
            for handler in cmd.handlers:
                if _awaitable(result := handler(cmd.step_name, cmd.exc)):
                    await result
        case Sleep():
            if _awaitable(result := sleep(cmd.seconds)):
                await result
        case Parallel():
            return await asyncio.gather(*(_asettle(g, sleep) for g in cmd.gens))
        case CallTimeout():
            fn, arg, seconds, step_name = cmd.fn, cmd.arg, cmd.seconds, cmd.step_name
            if inspect.iscoroutinefunction(fn):
                return await _with_timeout(fn(arg), seconds, step_name)
            # stepkit's own threads: a hung step never fills the loop's default executor
            future = asyncio.wrap_future(timed_calls().submit(fn, arg))
            result = await _with_timeout(future, seconds, step_name)
            if _awaitable(result):
                result = await result
            return result
        case Call():  # not reached from adrive(), which performs it inline
            value = cmd.fn(cmd.arg)
            return (await value) if _awaitable(value) else value
    return None


async def _asettle(gen: Gen, sleep: SleepFn) -> tuple[bool, Any]:
    try:
        return True, await adrive(gen, sleep)
    except Exception as exc:
        return False, exc
