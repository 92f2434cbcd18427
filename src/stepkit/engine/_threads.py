"""The threads stepkit starts: a bounded pool of daemon threads for timed sync steps.

A sync step cannot be interrupted: when its timeout passes, its thread is
abandoned and runs on to its end. Those calls run here, never on an event
loop's default executor (which the application's own ``asyncio.to_thread``
calls share), and on daemon threads, so a hung step never blocks shutdown.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

__all__ = ["PARALLEL_THREADS", "TIMED_STEP_THREADS", "DaemonPool", "timed_calls"]

#: At most this many threads run the timed sync steps of a process at once;
#: further calls queue (their timeout runs while they wait).
TIMED_STEP_THREADS = 32

#: Under ``run()``, a parallel step runs its items on at most this many threads
#: (``min(PARALLEL_THREADS, items)``); further items wait for a free thread.
PARALLEL_THREADS = 32


class DaemonPool:
    """At most ``size`` daemon threads, started on demand, performing queued calls.

    Unlike :class:`concurrent.futures.ThreadPoolExecutor`, whose threads are
    joined at interpreter exit, an abandoned call here never delays shutdown.
    A call whose future was cancelled before it started does not run.
    """

    __slots__ = ("_idle", "_lock", "_name", "_queue", "_size", "_threads")

    def __init__(self, size: int, name: str) -> None:
        self._size, self._name = size, name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], Any]] = (
            queue.SimpleQueue()
        )
        self._idle = threading.Semaphore(0)  # released by a thread waiting for work
        self._lock = threading.Lock()
        self._threads = 0

    @property
    def threads(self) -> int:
        """How many threads this pool has started (they live as long as the process)."""
        return self._threads

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Future[Any]:
        """Queue ``fn(arg)``; a new thread starts only when none is idle and the pool has room."""
        future: Future[Any] = Future()
        self._queue.put((future, fn, arg))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._threads < self._size:
                    self._threads += 1
                    threading.Thread(
                        target=self._work, name=f"{self._name}-{self._threads}", daemon=True
                    ).start()
        return future

    def _work(self) -> None:
        while True:
            future, fn, arg = self._queue.get()
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(arg)
                except BaseException as exc:  # handed to the waiting caller, never lost
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, fn, arg  # do not keep the last call's values alive while idle
            self._idle.release()


_timed: DaemonPool | None = None
_timed_lock = threading.Lock()


def timed_calls() -> DaemonPool:
    """The process's pool for timed sync steps (created on first use)."""
    global _timed
    if _timed is None:
        with _timed_lock:
            if _timed is None:
                _timed = DaemonPool(TIMED_STEP_THREADS, "stepkit-timed")
    return _timed
