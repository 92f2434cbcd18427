"""The client's async twins, workflow-level options (timeout=, ttl=, migrations=) and workers."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest

from stepkit.errors import (
    InvalidArgumentError,
    RunExpiredError,
    StepTimeoutError,
    WorkflowCancelledError,
)
from stepkit.workflows import Client

from .conftest import as_def


def test_async_twins_drive_a_run_from_start_to_result(client: Client, register: Any) -> None:
    """astart_workflow, asend_signal, arun_due, alist_runs and the handle's a-methods."""
    calls: Counter[str] = Counter()

    async def order(ctx: Any, step: Any) -> Any:
        await step.run("charge", lambda: calls.update(["charge"]) or ctx.input["amount"])
        approval = await step.wait_for_signal("approval", signal="approve")
        return {"charged": ctx.input["amount"], "by": approval["by"]}

    flow = register(order)

    async def scenario() -> Any:
        handle = await client.astart_workflow(flow, {"amount": 10}, run_id="o1")
        assert (await handle.astatus()).status == "waiting"
        assert [r.run_id for r in await client.alist_runs(status="waiting")] == ["o1"]
        assert await client.arun_due() == 0
        receipt = await client.asend_signal("approve", {"by": "ana"}, run_id="o1")
        assert (receipt.run_id, receipt.status) == ("o1", "delivered")
        assert await client.arun_due() == 1
        late = await handle.asignal("approve", {"by": "bo"})
        assert late.status == "undelivered"  # the run has completed
        assert [r.run_id for r in await client.alist_runs(workflow=flow)] == ["o1"]
        return await handle.aresult(timeout=0)

    assert asyncio.run(scenario()) == {"charged": 10, "by": "ana"}
    assert calls == {"charge": 1}


def test_acancel_and_aresume(client: Client, register: Any, clock: Any) -> None:
    """acancel (client and handle) stops a run for good; aresume continues a failed one."""
    broken = {"yes": True}

    def fragile() -> str:
        if broken["yes"]:
            raise RuntimeError("down")
        return "up"

    async def sleeper(ctx: Any, step: Any) -> Any:
        await step.sleep("s", 10)
        return 1

    async def fails(ctx: Any, step: Any) -> Any:
        return await step.run("fragile", fragile, retries=0)

    nap, fail = register(sleeper), register(fails)

    async def scenario() -> Any:
        a = await client.astart_workflow(nap)
        b = await client.astart_workflow(nap)
        await a.acancel("no longer needed")
        await client.acancel(b.run_id)
        clock.advance(10)
        assert await client.arun_due() == 0
        with pytest.raises(WorkflowCancelledError, match="no longer needed"):
            await a.aresult()
        failed = await client.astart_workflow(fail)
        assert (await failed.astatus()).status == "failed"
        broken["yes"] = False
        resumed = await client.aresume(failed.run_id)
        return await resumed.aresult()

    assert asyncio.run(scenario()) == "up"


def test_aresult_waits_for_a_run_advanced_elsewhere(client: Client, register: Any) -> None:
    """aresult(timeout=) polls until another task's worker finishes the run; then its value."""

    async def gate(ctx: Any, step: Any) -> Any:
        return await step.wait_for_signal("w", signal="go")

    flow = register(gate)

    async def scenario() -> Any:
        handle = await client.astart_workflow(flow)
        with pytest.raises(StepTimeoutError):
            await handle.aresult(timeout=0)
        waiter = asyncio.ensure_future(handle.aresult(timeout=30))
        await handle.asignal("go", 5)
        await client.arun_due()
        return await waiter

    assert asyncio.run(scenario()) == 5


def test_workflow_timeout_fails_a_run_that_outlives_it(
    client: Client, register: Any, clock: Any
) -> None:
    """timeout= bounds the whole run: a sleep past it wakes at the deadline and the run fails."""
    calls: Counter[str] = Counter()

    async def slow(ctx: Any, step: Any) -> Any:
        await step.run("first", lambda: calls.update(["first"]))
        await step.sleep("long", 3600)
        await step.run("after", lambda: calls.update(["after"]))
        return "done"

    handle = client.start_workflow(register(slow, timeout=60))
    record = handle.status()
    assert (record.status, record.wake_at) == ("sleeping", record.created_at + 60)
    clock.advance(60)
    assert client.run_due() == 1
    assert handle.status().status == "failed"
    with pytest.raises(StepTimeoutError, match="ran out of time"):
        handle.result()
    assert calls == {"first": 1}
    assert client.run_due() == 0  # failed once, not retried in a loop


def test_workflow_timeout_leaves_a_run_that_finishes_in_time(
    client: Client, register: Any, clock: Any
) -> None:
    """A run that completes before its timeout is unaffected by it."""

    async def quick(ctx: Any, step: Any) -> Any:
        await step.sleep("nap", 30)
        return await step.run("x", lambda: "ok")

    handle = client.start_workflow(register(quick, timeout=60))
    clock.advance(30)
    client.run_due()
    assert handle.result() == "ok"


def test_ttl_expires_a_run_for_workers_and_purge(client: Client, register: Any, clock: Any) -> None:
    """ttl= sets expires_at; an expired sleeping run is never advanced and purge() removes it."""

    async def nap(ctx: Any, step: Any) -> Any:
        await step.sleep("s", 100)
        return 1

    handle = client.start_workflow(register(nap, ttl=50))
    record = handle.status()
    assert record.expires_at == record.created_at + 50
    clock.advance(100)
    assert client.run_due() == 0
    with pytest.raises(RunExpiredError):
        client.store.claim(handle.run_id, owner="w", lease=30, due=True)
    assert client.store.purge() == 1
    assert client.list_runs() == []


def test_a_run_of_version_1_is_recovered_by_version_2_with_a_migration(
    driver: Any, clock: Any, flavor: str
) -> None:
    """migrations= upgrade the stored input of a run that version 1 started; ops replay."""
    calls: Counter[str] = Counter()
    wrap = (lambda f: f) if flavor == "async" else as_def

    async def v1(ctx: Any, step: Any) -> Any:
        await step.run("charge", lambda: calls.update(["charge"]) or ctx.input["cents"])
        await step.sleep("cool-off", 5)
        return "v1"

    async def v2(ctx: Any, step: Any) -> Any:
        charged = await step.run("charge", lambda: calls.update(["charge"]) or -1)
        await step.sleep("cool-off", 5)
        note = await step.run("ship", lambda: calls.update(["ship"]) or ctx.input["amount"])
        return [charged, note, ctx.input, ctx.started_version, ctx.definition_changed]

    old = Client(driver=driver, clock=clock, owner="old")
    old.workflow(id="order", version="1")(wrap(v1))
    handle = old.start_workflow("order", {"cents": 1250}, run_id="r1")
    assert handle.status().status == "sleeping"

    def upgrade(data: Any) -> Any:
        return {"amount": data["cents"] / 100, "currency": "EUR"}

    new = Client(driver=driver, clock=clock, owner="new")
    new.workflow(id="order", version="2", migrations={"1": upgrade})(wrap(v2))
    clock.advance(5)
    assert new.run_due() == 1
    assert handle.result() == [
        1250,
        12.5,
        {"amount": 12.5, "currency": "EUR"},
        "1",
        True,
    ]
    assert calls == {"charge": 1, "ship": 1}
    start = client_history_input(new, "r1")
    assert start == {"cents": 1250}  # the stored input itself is never rewritten


def client_history_input(client: Client, run_id: str) -> Any:
    import json

    from stepkit.checkpoints._decode import from_json

    first = client.store.history(run_id)[0]
    return from_json(json.loads(first.changes)["input"])


def test_migrations_chain_from_any_older_version(driver: Any, clock: Any) -> None:
    """Version 3 upgrades a version-1 input through 1 -> 2 -> 3."""
    old = Client(driver=driver, clock=clock)

    @old.workflow(id="chain", version="1")
    def first(ctx: Any, step: Any) -> Any:
        step.sleep("s", 1)
        return ctx.input

    old.start_workflow("chain", {"n": 1}, run_id="c")
    new = Client(driver=driver, clock=clock)

    @new.workflow(
        id="chain",
        version="3",
        migrations={"1": lambda d: {"n": d["n"], "v2": True}, "2": lambda d: {**d, "v3": True}},
    )
    def third(ctx: Any, step: Any) -> Any:
        step.sleep("s", 1)
        return ctx.input

    clock.advance(1)
    new.run_due()
    assert new.get_handle("c").result() == {"n": 1, "v2": True, "v3": True}


# -- workers ------------------------------------------------------------------------------


class StopAfter:
    """A stop event that sets itself after ``n`` idle polls; records each poll's interval."""

    def __init__(self, n: int, on_poll: Any = None) -> None:
        self.n, self.on_poll = n, on_poll
        self.polls: list[float] = []
        self._set = threading.Event()
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self._set.is_set()

    def wait(self, timeout: float | None = None) -> bool:  # never sleeps
        with self._lock:
            self.polls.append(float(timeout or 0.0))
            if self.on_poll is not None:
                self.on_poll(len(self.polls))
            if len(self.polls) >= self.n:
                self._set.set()
        return self._set.is_set()


def test_run_worker_advances_due_runs_between_polls_until_stopped(
    client: Client, register: Any, clock: Any
) -> None:
    """run_worker polls every poll_interval (via stop.wait), runs what is due, ends on stop."""

    async def nap(ctx: Any, step: Any) -> Any:
        await step.sleep("s", 10)
        return "woke"

    handle = client.start_workflow(register(nap))
    stop = StopAfter(3, on_poll=lambda n: clock.advance(10) if n == 1 else None)
    client.run_worker(poll_interval=7.5, stop=stop)
    assert stop.polls == [7.5, 7.5, 7.5]  # idle, (advanced the run), idle, idle
    assert handle.result() == "woke"


def test_run_worker_with_concurrency_runs_each_due_run_once(
    client: Client, register: Any, clock: Any
) -> None:
    """concurrency=4 threads share the due runs: each run advances exactly once."""
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    def effect(run: str) -> str:
        with lock:
            calls.update([run])
        return run

    async def nap(ctx: Any, step: Any) -> Any:
        await step.sleep("s", 1)
        return await step.run("after", effect, ctx.run_id)

    flow = register(nap)
    handles = [client.start_workflow(flow, run_id=f"r{i}") for i in range(6)]
    clock.advance(1)
    stop = StopAfter(8)
    client.run_worker(concurrency=4, poll_interval=0.01, stop=stop)
    assert [h.result() for h in handles] == [f"r{i}" for i in range(6)]
    assert calls == {f"r{i}": 1 for i in range(6)}


def test_arun_worker_stops_on_its_event(client: Client, register: Any, clock: Any) -> None:
    """arun_worker runs due runs in tasks and returns once stop is set (polls end at once)."""

    async def nap(ctx: Any, step: Any) -> Any:
        await step.sleep("s", 10)
        return "woke"

    flow = register(nap)

    async def scenario() -> Any:
        handle = await client.astart_workflow(flow)
        stop = asyncio.Event()
        worker = asyncio.ensure_future(
            client.arun_worker(concurrency=2, poll_interval=3600, stop=stop)
        )
        clock.advance(10)
        while (await handle.astatus()).status != "completed":
            await asyncio.sleep(0)  # let the worker's tasks run (it polls once an hour)
            if worker.done():
                break
        stop.set()
        await asyncio.wait_for(worker, 30)  # an hour-long poll ends when stop is set
        return await handle.aresult()

    assert asyncio.run(scenario()) == "woke"


@pytest.mark.parametrize(
    "options",
    [{"concurrency": 0}, {"poll_interval": -1}, {"stop": object()}],
)
def test_run_worker_refuses_bad_options(client: Client, options: dict[str, Any]) -> None:
    """Bad concurrency=, poll_interval= or stop= raise InvalidArgumentError before any work."""
    with pytest.raises(InvalidArgumentError):
        client.run_worker(**options)
    with pytest.raises(InvalidArgumentError):
        asyncio.run(client.arun_worker(**options))
