"""Exactly once across workers, and identity assigned at call time (async gather)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from stepkit.testing import FakeClock
from stepkit.workflows import Client, SQLiteDriver


def test_gather_numbers_ops_in_source_order_after_a_crash(tmp_path: Path) -> None:
    """Replayed gathers give each op the value recorded under its call-order identity."""
    clock = FakeClock()
    client = Client(driver=SQLiteDriver(tmp_path / "r.db"), clock=clock)
    calls: Counter[str] = Counter()

    second_done: list[asyncio.Event] = []

    async def slow(tag: str) -> str:
        calls.update([tag])
        if not second_done:
            second_done.append(asyncio.Event())
        if tag == "first":
            await second_done[0].wait()  # finishes after the second: the other order
        else:
            second_done[0].set()
        return tag

    @client.workflow(id="fan")
    async def fan(ctx: Any, step: Any) -> Any:
        got = await asyncio.gather(step.run("x", slow, "first"), step.run("x", slow, "second"))
        await step.sleep("s", 1)
        return got

    handle = client.start_workflow(fan)
    history = [v.step_name for v in client.store.history(handle.run_id)]
    assert history[1:3] == ["x#1", "x#0"]  # stored in completion order
    clock.advance(1)
    client.run_due()
    assert handle.result() == ["first", "second"]
    assert calls == {"first": 1, "second": 1}


def test_eight_threads_run_the_next_step_exactly_once(tmp_path: Path) -> None:
    """8 threads calling run_due on a run woken by a signal: the next step runs once."""
    clock = FakeClock()
    driver = SQLiteDriver(tmp_path / "r.db")
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    def after() -> str:
        with lock:
            calls.update(["after"])
        return "done"

    clients = [Client(driver=driver, clock=clock, owner=f"w{i}") for i in range(8)]
    for c in clients:

        @c.workflow(id="gate")
        def gate(ctx: Any, step: Any) -> Any:
            step.wait_for_signal("w", signal="go")
            return step.run("after", after)

    handle = clients[0].start_workflow("gate")
    clients[0].send_signal("go", run_id=handle.run_id)
    barrier = threading.Barrier(8)
    advanced: list[int] = []

    def work(c: Client) -> None:
        barrier.wait()
        advanced.append(c.run_due())

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(advanced) == 1
    assert calls == {"after": 1}
    assert handle.result() == "done"
