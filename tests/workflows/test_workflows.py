"""Durable workflows through every driver, as ``def`` and ``async def`` workflows (SPEC §4)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from stepkit.errors import (
    CheckpointEncodeError,
    InvalidInputError,
    NestedStepError,
    NonRetryableError,
    RetryAfter,
    SignalConflictError,
    StepFailedError,
    WorkflowCancelledError,
    WorkflowDeterminismError,
)
from stepkit.testing import assert_replays
from stepkit.workflows import Client


def test_a_run_completes_inline_and_memoizes_its_steps(client: Client, register: Any) -> None:
    """start_workflow runs until completion; each step body runs once; result() returns it."""
    calls: Counter[str] = Counter()

    async def greet(ctx: Any, step: Any) -> Any:
        a = await step.run("hello", lambda: calls.update(["hello"]) or "hi " + ctx.input["name"])
        return {"greeting": a}

    flow = register(greet)
    handle = client.start_workflow(flow, {"name": "ana"})
    assert handle.status().status == "completed"
    assert handle.result() == {"greeting": "hi ana"}
    assert calls == {"hello": 1}
    kinds = [(v.kind, v.step_name) for v in client.store.history(handle.run_id)]
    assert kinds == [("start", None), ("op", "hello#0"), ("op", "result")]


def test_a_one_hour_sleep_with_a_fake_clock(client: Client, register: Any, clock: Any) -> None:
    """sleep suspends the run (no process holds it); run_due continues it once the clock passed."""
    calls: Counter[str] = Counter()

    async def nap(ctx: Any, step: Any) -> Any:
        await step.run("before", lambda: calls.update(["before"]))
        await step.sleep("nap", dt.timedelta(hours=1))
        return await step.run("after", lambda: calls.update(["after"]) or "done")

    handle = client.start_workflow(register(nap))
    record = handle.status()
    assert (record.status, record.wake_at, record.owner) == ("sleeping", clock.now + 3600, None)
    clock.advance(3599)
    assert client.run_due() == 0
    clock.advance(1)
    assert client.run_due() == 1
    assert handle.result() == "done"
    assert calls == {"before": 1, "after": 1}


def test_a_signal_sent_before_its_wait_is_kept(client: Client, register: Any) -> None:
    """The mailbox keeps an early signal; the wait consumes it without suspending."""

    async def approve(ctx: Any, step: Any) -> Any:
        await step.sleep("first", 10)
        return await step.wait_for_signal("ok", signal="approve")

    handle = client.start_workflow(register(approve))
    receipt = client.send_signal("approve", {"by": "ana"}, run_id=handle.run_id)
    assert receipt.status == "buffered"
    client.store._clock.advance(10)  # type: ignore[attr-defined]
    assert client.run_due() == 1
    assert handle.result() == {"by": "ana"}


def test_each_wait_consumes_exactly_one_signal(client: Client, register: Any) -> None:
    """Two waits on one name take two signals in order; a double click is a duplicate."""

    async def twice(ctx: Any, step: Any) -> Any:
        first = await step.wait_for_signal("w", signal="go")
        second = await step.wait_for_signal("w", signal="go")
        return [first, second]

    handle = client.start_workflow(register(twice))
    assert handle.status().status == "waiting"
    assert handle.signal("go", 1, idempotency_key="click").status == "delivered"
    assert handle.signal("go", 1, idempotency_key="click").status == "duplicate"
    assert client.run_due() == 1
    assert handle.status().status == "waiting"
    assert client.send_signal("go", 2).status == "delivered"  # to the one run waiting on "go"
    client.run_due()
    assert handle.result() == [1, 2]


def test_a_wait_times_out_with_none(client: Client, register: Any, clock: Any) -> None:
    """wait_for_signal returns None once its timeout passed."""

    async def expire(ctx: Any, step: Any) -> Any:
        got = await step.wait_for_signal("approval", signal="approve", timeout=3600)
        return "expired" if got is None else got

    handle = client.start_workflow(register(expire))
    assert handle.status().wake_at == clock.now + 3600
    clock.advance(3600)
    client.run_due()
    assert handle.result() == "expired"


def test_two_waiters_on_one_name_are_a_conflict(client: Client, register: Any) -> None:
    """Without run_id, a signal that several runs wait on is not delivered at all."""

    async def waiter(ctx: Any, step: Any) -> Any:
        return await step.wait_for_signal("w", signal="go")

    flow = register(waiter)
    a = client.start_workflow(flow, run_id="a")
    client.start_workflow(flow, run_id="b")
    with pytest.raises(SignalConflictError):
        client.send_signal("go", 1)
    assert client.store.signals("a") == []
    assert client.send_signal("nobody-waits", 1).status == "undelivered"
    assert a.signal("go", 1).status == "delivered"


def test_signal_schema_is_checked_at_send(client: Client, register: Any) -> None:
    """A declared signal schema rejects bad data with InvalidInputError before delivery."""

    def positive(data: Any) -> bool:
        return isinstance(data, int) and data > 0

    async def gated(ctx: Any, step: Any) -> Any:
        return await step.wait_for_signal("w", signal="n")

    handle = client.start_workflow(register(gated, signals={"n": positive}))
    with pytest.raises(InvalidInputError):
        handle.signal("n", -1)
    assert client.store.signals(handle.run_id) == []
    handle.signal("n", 3)
    client.run_due()
    assert handle.result() == 3


def test_input_schema_rejects_before_anything_is_stored(client: Client, register: Any) -> None:
    """Invalid input raises InvalidInputError and stores no run; valid input is stored as given."""

    class Schema:
        @staticmethod
        def model_validate(data: Any) -> Any:
            if "amount" not in data:
                raise ValueError("amount is required")
            return {"coerced": True}

    async def order(ctx: Any, step: Any) -> Any:
        return ctx.input

    flow = register(order, input_schema=Schema)
    with pytest.raises(InvalidInputError):
        client.start_workflow(flow, {}, run_id="bad")
    assert client.store.get("bad") is None
    assert client.start_workflow(flow, {"amount": 1}).result() == {"amount": 1}


def test_retries_then_step_failed_at_the_call_site(client: Client, register: Any) -> None:
    """A failing step is retried; after the last attempt StepFailedError reaches the workflow."""
    calls: Counter[str] = Counter()

    def flaky() -> None:
        calls.update(["flaky"])
        raise ValueError("boom")

    async def catches(ctx: Any, step: Any) -> Any:
        try:
            await step.run("flaky", flaky, retries=2)
        except StepFailedError as exc:
            return {"failed": exc.step_name, "attempts": exc.attempts}
        return "unreachable"

    handle = client.start_workflow(register(catches))
    assert handle.result() == {"failed": "flaky#0", "attempts": 3}
    assert calls == {"flaky": 3}


def test_non_retryable_and_retry_after(client: Client, register: Any, clock: Any) -> None:
    """NonRetryableError stops at once; RetryAfter(s) makes the retry a durable sleep of s."""
    calls: Counter[str] = Counter()

    def later() -> str:
        calls.update(["later"])
        if calls["later"] == 1:
            raise RetryAfter(120)
        return "ok"

    def never() -> None:
        calls.update(["never"])
        raise NonRetryableError("no")

    async def mixed(ctx: Any, step: Any) -> Any:
        value = await step.run("later", later)
        try:
            await step.run("never", never)
        except StepFailedError:
            return value
        return None

    handle = client.start_workflow(register(mixed))
    assert handle.status().status == "sleeping"
    assert handle.status().wake_at == clock.now + 120
    clock.advance(120)
    client.run_due()
    assert handle.result() == "ok"
    assert calls == {"later": 2, "never": 1}


def test_a_failed_run_raises_its_error_and_resumes_after_a_fix(
    client: Client, register: Any
) -> None:
    """An uncaught StepFailedError fails the run; resume() after a fix replays completed ops."""
    calls: Counter[str] = Counter()
    broken = {"yes": True}

    def fragile() -> str:
        calls.update(["fragile"])
        if broken["yes"]:
            raise NonRetryableError("down")
        return "up"

    async def fails(ctx: Any, step: Any) -> Any:
        first = await step.run("first", lambda: calls.update(["first"]) or 1)
        return [first, await step.run("fragile", fragile)]

    handle = client.start_workflow(register(fails))
    assert handle.status().status == "failed"
    with pytest.raises(StepFailedError) as info:
        handle.result()
    assert info.value.step_name == "fragile#0"
    broken["yes"] = False
    client.resume(handle.run_id)
    assert handle.result() == [1, "up"]
    assert calls == {"first": 1, "fragile": 2}


def test_whole_workflow_retries_keep_completed_ops(client: Client, register: Any) -> None:
    """retries= re-runs the function after an error; completed ops are not repeated."""
    calls: Counter[str] = Counter()

    async def shaky(ctx: Any, step: Any) -> Any:
        await step.run("once", lambda: calls.update(["once"]))
        if ctx.attempt < 3:
            raise RuntimeError("not yet")
        return ctx.attempt

    handle = client.start_workflow(register(shaky, retries=2))
    assert handle.result() == 3
    assert calls == {"once": 1}


def test_a_changed_kind_fails_once_and_resumes_after_a_fix(
    driver: Any, clock: Any, flavor: str
) -> None:
    """Kind drift raises WorkflowDeterminismError naming step and kinds; failed once, resumable."""
    from .conftest import as_def

    v1 = Client(driver=driver, clock=clock)

    async def body_v1(ctx: Any, step: Any) -> Any:
        await step.sleep("pause", 10)
        return "v1"

    v1.workflow(id="drift")(body_v1 if flavor == "async" else as_def(body_v1))
    handle = v1.start_workflow("drift", run_id="r")
    v2 = Client(driver=driver, clock=clock)

    async def body_v2(ctx: Any, step: Any) -> Any:
        await step.run("pause", lambda: None)
        return "v2"

    v2.workflow(id="drift")(body_v2 if flavor == "async" else as_def(body_v2))
    clock.advance(10)
    assert v2.run_due() == 1
    assert v2.run_due() == 0  # failed once, never retried in a loop
    with pytest.raises(WorkflowDeterminismError) as info:
        handle.result()
    assert (info.value.step_key, info.value.recorded, info.value.called) == (
        "pause#0",
        "sleep",
        "run",
    )
    v3 = Client(driver=driver, clock=clock)
    v3.workflow(id="drift")(body_v1 if flavor == "async" else as_def(body_v1))
    v3.resume("r")
    assert handle.result() == "v1"


def test_a_step_inserted_between_recorded_ones_simply_runs(
    driver: Any, clock: Any, flavor: str
) -> None:
    """Version 2 recovers a run of version 1: new ids run, recorded ones replay."""
    from .conftest import as_def

    calls: Counter[str] = Counter()

    async def v1(ctx: Any, step: Any) -> Any:
        a = await step.run("a", lambda: calls.update(["a"]) or 1)
        await step.sleep("s", 5)
        return [a, await step.run("b", lambda: calls.update(["b"]) or 2)]

    async def v2(ctx: Any, step: Any) -> Any:
        a = await step.run("a", lambda: calls.update(["a"]) or 1)
        extra = await step.run("new", lambda: calls.update(["new"]) or 9)
        await step.sleep("s", 5)
        assert ctx.definition_changed
        assert ctx.version == "2"
        return [a, extra, await step.run("b", lambda: calls.update(["b"]) or 2)]

    wrap = (lambda f: f) if flavor == "async" else as_def
    old = Client(driver=driver, clock=clock)
    old.workflow(id="ins", version="1")(wrap(v1))
    handle = old.start_workflow("ins")
    new = Client(driver=driver, clock=clock)
    new.workflow(id="ins", version="2")(wrap(v2))
    clock.advance(5)
    new.run_due()
    assert handle.result() == [1, 9, 2]
    assert calls == {"a": 1, "new": 1, "b": 1}


def test_stored_values_are_decoded_copies(client: Client, register: Any) -> None:
    """A step's value is the codec's copy (tuples stay tuples, mutation does not leak back)."""
    original = {"items": (1, 2), "when": dt.date(2024, 1, 2)}

    async def copies(ctx: Any, step: Any) -> Any:
        got = await step.run("v", lambda: original)
        return got is not original and got == original

    assert client.start_workflow(register(copies)).result() is True


def test_an_unencodable_value_fails_naming_the_step(client: Client, register: Any) -> None:
    """A value the codec cannot hold raises CheckpointEncodeError naming the step."""

    async def bad(ctx: Any, step: Any) -> Any:
        try:
            await step.run("obj", object)
        except CheckpointEncodeError as exc:
            return str(exc)
        return None

    assert "obj#0" in client.start_workflow(register(bad)).result()


def test_nested_steps_are_refused(client: Client, register: Any) -> None:
    """step.* inside a step.run body raises NestedStepError."""

    async def nested(ctx: Any, step: Any) -> Any:
        def inner() -> Any:
            step.uuid("inside")

        try:
            await step.run("outer", inner, retries=0)
        except StepFailedError as exc:
            return type(exc.__cause__).__name__
        return None

    assert client.start_workflow(register(nested)).result() == "NestedStepError"
    assert issubclass(NestedStepError, Exception)


def test_now_uuid_and_idempotency_keys_are_stable(
    client: Client, register: Any, clock: Any
) -> None:
    """now()/uuid() are memoized, and ctx.idempotency_key is the same on every replay."""
    seen: list[Any] = []

    async def stable(ctx: Any, step: Any) -> Any:
        when = await step.now("t")
        ident = await step.uuid("id")
        key = await step.run("charge", lambda: ctx.idempotency_key("charge"))
        seen.append((when, ident, key))
        await step.sleep("s", 1)
        return key

    handle = client.start_workflow(register(stable))
    clock.advance(5)
    client.run_due()
    assert handle.result() == f"{handle.run_id}/charge#0"
    assert seen[0] == seen[1]


def test_child_workflow_result_reaches_the_parent(client: Client, register: Any) -> None:
    """invoke starts the child "<parent>/<id>#<n>" once; its completion wakes the parent."""

    async def child(ctx: Any, step: Any) -> Any:
        return await step.run("double", lambda: ctx.input * 2)

    async def parent(ctx: Any, step: Any) -> Any:
        return await step.invoke("kid", register(child), 21)

    handle = client.start_workflow(register(parent), run_id="p")
    assert handle.status().status == "waiting"
    assert client.run_due() == 2  # the child, then the parent it woke
    assert handle.result() == 42
    assert client.get_handle("p/kid#0").result() == 42


def test_cancel(client: Client, register: Any) -> None:
    """A cancelled run never continues; result() raises WorkflowCancelledError."""

    async def slow(ctx: Any, step: Any) -> Any:
        await step.sleep("s", 5)
        return 1

    handle = client.start_workflow(register(slow))
    handle.cancel("changed my mind")
    client.store._clock.advance(5)  # type: ignore[attr-defined]
    assert client.run_due() == 0
    with pytest.raises(WorkflowCancelledError):
        handle.result()
    assert [r.status for r in client.list_runs()] == ["cancelled"]


def test_hooks_see_every_new_op(client: Client, register: Any) -> None:
    """on_step_start/on_step_complete get run id, key, kind, attempt and output."""
    events: list[Any] = []

    async def hooked(ctx: Any, step: Any) -> Any:
        return await step.run("x", lambda: 5)

    handle = client.start_workflow(
        register(hooked, on_step_start=events.append, on_step_complete=events.append)
    )
    assert [(e.step_key, e.kind, e.attempt, e.output) for e in events] == [
        ("x#0", "run", 1, None),
        ("x#0", "run", 1, 5),
    ]
    assert events[1].run_id == handle.run_id


def test_start_is_idempotent_on_run_id(client: Client, register: Any) -> None:
    """Starting a run id again returns a handle on the same run, running nothing."""
    calls: Counter[str] = Counter()

    async def once(ctx: Any, step: Any) -> Any:
        return await step.run("x", lambda: calls.update(["x"]) or 1)

    flow = register(once)
    client.start_workflow(flow, run_id="r")
    assert client.start_workflow(flow, run_id="r").result() == 1
    assert calls == {"x": 1}


def test_assert_replays_detects_drift(client: Client, register: Any) -> None:
    """assert_replays passes on the same code and raises WorkflowDeterminismError on drift."""

    async def steady(ctx: Any, step: Any) -> Any:
        await step.run("a", lambda: 1)
        return await step.wait_for_signal("w", signal="go")

    flow = register(steady)
    handle = client.start_workflow(flow)
    assert_replays(flow, client.driver, handle.run_id)

    async def changed(ctx: Any, step: Any) -> Any:
        await step.sleep("a", 1)
        return None

    other = Client(driver=client.driver)
    drifted = other.workflow(id=flow.id)(changed if flow.is_async else _def(changed))
    with pytest.raises(WorkflowDeterminismError):
        assert_replays(drifted, client.store, handle.run_id)


def _def(body: Any) -> Any:
    from .conftest import as_def

    return as_def(body)


def test_cancelling_a_parent_cancels_its_unfinished_children(
    client: Client, register: Any, clock: Any
) -> None:
    """cancel() reaches sleeping and waiting children, and theirs; finished ones stay."""

    async def done(ctx: Any, step: Any) -> Any:
        return "done"

    async def naps(ctx: Any, step: Any) -> Any:
        await step.sleep("s", 100)
        return "woke"

    async def waits(ctx: Any, step: Any) -> Any:
        return await step.invoke("grandchild", naps_flow)  # waits on its own child

    naps_flow, waits_flow, done_flow = register(naps), register(waits), register(done)

    async def parent(ctx: Any, step: Any) -> Any:
        return [await step.invoke("done", done_flow), await step.invoke("wait", waits_flow)]

    handle = client.start_workflow(register(parent), run_id="p")
    client.run_due()  # "done" completes; the parent then starts "wait", which starts its own
    statuses = {r.run_id: r.status for r in client.list_runs()}
    assert statuses == {
        "p": "waiting",
        "p/done#0": "completed",
        "p/wait#0": "waiting",
        "p/wait#0/grandchild#0": "sleeping",
    }
    handle.cancel("order withdrawn")
    why = "its parent run 'p' was cancelled: order withdrawn"
    assert {r.run_id: (r.status, r.error) for r in client.list_runs()} == {
        "p": ("cancelled", "order withdrawn"),
        "p/done#0": ("completed", None),
        "p/wait#0": ("cancelled", why),
        "p/wait#0/grandchild#0": ("cancelled", why),
    }
    clock.advance(100)
    assert client.run_due() == 0


def test_a_corrupt_op_version_is_a_store_error_naming_it() -> None:
    """Replay parses all op versions at once; a corrupt one is reported by its number."""
    from stepkit.errors import StoreError
    from stepkit.stores import VersionRecord
    from stepkit.workflows._core import Replay

    def op(n: int, changes: str) -> VersionRecord:
        return VersionRecord("r", n, n - 1, f"x#{n}", changes, (), "", None, 0.0, "op")

    good = op(2, '{"x#0": {"kind": "run", "value": 1}}')
    core = Replay(run_id="r", versions=[good, op(3, '{"x#1": {"kind": "run", "value": 2}}')])
    assert sorted(core.records) == ["x#0", "x#1"]
    for bad in ('{"x#1": ', "[1]", '{"a": 1}, {"b": 2}'):
        with pytest.raises(StoreError, match="version 3 of run 'r'"):
            Replay(run_id="r", versions=[good, op(3, bad)])


def test_resume_takes_over_a_dead_workers_run_only_when_named(
    client: Client, register: Any, clock: Any
) -> None:
    """A run held under a live lease: recover=True alone is refused; dead_owner= takes it over."""
    from stepkit.errors import InvalidArgumentError, RunConflictError

    async def nap(ctx: Any, step: Any) -> Any:
        await step.sleep("nap", 60)
        return await step.run("after", lambda: "done")

    handle = client.start_workflow(register(nap))
    clock.advance(60)  # due: a worker claims it, then dies holding a live lease
    client.store.claim(handle.run_id, owner="dead-worker", lease=3600, due=True)
    with pytest.raises(RunConflictError):
        client.resume(handle.run_id, recover=True)
    with pytest.raises(InvalidArgumentError, match="recover=True"):
        client.resume(handle.run_id, dead_owner="dead-worker")
    client.resume(handle.run_id, recover=True, dead_owner="dead-worker")
    assert handle.result() == "done"
