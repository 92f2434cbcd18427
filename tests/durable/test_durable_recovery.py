"""Leases, heartbeats and recovery: a crashed run continues exactly once, a live one is left alone.

Every claim has a lease (``DEFAULT_LEASE`` seconds unless ``lease=``), renewed
by each persisted step and by a heartbeat while a step runs. ``recover=True``
takes over only an expired lease or an owner the caller names as dead
(``dead_owner=``). ``expect_version=`` resumes only a run still at that version.
No test sleeps: store clocks are fakes (or run ahead), waits are bounded events.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from durable_worker import (
    STEPS,
    Child,
    crash_pipeline,
    log_lines,
    open_kind,
    owner_of,
    reference_context,
)
from support import Recorder, resume

from stepkit import InvalidArgumentError, Pipeline, RunConflictError
from stepkit.durable._hold import DEFAULT_LEASE, KEEPER
from stepkit.stores import MemoryStore
from stepkit.testing import FakeClock

WAIT = 30.0  # bound of every wait on an event


def three_steps(calls: list[str]) -> Pipeline:
    def step(name: str) -> Any:
        def fn(ctx: Any) -> dict[str, Any]:
            calls.append(name)
            return {name: True}

        fn.__name__ = name
        return fn

    return Pipeline("three").step("a", step("a")).step("b", step("b")).step("c", step("c"))


def crashed(runner, store, calls: list[str], owner: str = "dead", lease: float = 30) -> Pipeline:
    """A run paused after ``a`` and then claimed by ``owner`` (whose process we let 'die')."""
    pipeline = three_steps(calls)
    runner.run(pipeline, {}, store=store, run_id="r", on_step_complete=Recorder("a"))
    store.claim("r", owner=owner, lease=lease)
    calls.clear()
    return pipeline


class TestLeases:
    def test_every_claim_has_a_lease_by_default(self, runner, store):
        """Without lease=, a running run holds a lease of DEFAULT_LEASE seconds (store clock)."""
        seen: list[Any] = []
        pipeline = Pipeline("p").step("look", lambda ctx: seen.append(store.get("r")) or {})
        runner.run(pipeline, {}, store=store, run_id="r")
        assert DEFAULT_LEASE == 30.0
        assert seen[0].lease_until == store.test_clock.now + DEFAULT_LEASE
        assert store.get("r").lease_until is None  # released at the end

    def test_lease_option_sets_the_lease_of_a_resume_too(self, runner, store):
        """lease= overrides the default, for run() and for resume()."""
        seen: list[Any] = []
        pipeline = (
            Pipeline("p")
            .step("a", lambda ctx: {})
            .step("look", lambda ctx: seen.append(store.get("r")) or {})
        )
        runner.run(pipeline, {}, store=store, run_id="r", lease=5, on_step_complete=Recorder("a"))
        resume(runner, pipeline, "r", store=store, lease=7)
        assert seen[0].lease_until == store.test_clock.now + 7

    @pytest.mark.parametrize("bad", [0, -1, "30", True, float("nan")])
    def test_a_bad_lease_is_refused_before_anything_is_stored(self, runner, store, bad):
        """lease= must be seconds > 0."""
        with pytest.raises(InvalidArgumentError, match="lease="):
            runner.run(
                Pipeline("p").step("a", lambda ctx: {}), {}, store=store, run_id="r", lease=bad
            )
        assert store.get("r") is None


class TestRecover:
    def test_recover_never_takes_over_a_live_lease(self, runner, store):
        """recover=True alone is refused while the owner's lease is live; nothing changes."""
        calls: list[str] = []
        pipeline = crashed(runner, store, calls)
        record = store.get("r")
        with pytest.raises(RunConflictError, match="dead_owner='dead'"):
            resume(runner, pipeline, "r", store=store, recover=True)
        with pytest.raises(RunConflictError, match=r"not by the dead_owner .someone-else. named"):
            resume(runner, pipeline, "r", store=store, recover=True, dead_owner="someone-else")
        assert store.get("r") == record
        assert calls == []

    def test_recover_takes_over_an_owner_named_dead(self, runner, store):
        """recover=True, dead_owner=<its owner token> takes over at once."""
        calls: list[str] = []
        pipeline = crashed(runner, store, calls)
        dead = store.get("r").owner
        result = resume(runner, pipeline, "r", store=store, recover=True, dead_owner=dead)
        assert dict(result) == {"a": True, "b": True, "c": True}
        assert calls == ["b", "c"]

    def test_recover_takes_over_an_expired_lease(self, runner, store):
        """Once the lease has expired (store clock), recover=True needs no owner name."""
        calls: list[str] = []
        pipeline = crashed(runner, store, calls)
        store.test_clock.advance(31)
        assert resume(runner, pipeline, "r", store=store, recover=True).status == "completed"
        assert calls == ["b", "c"]

    def test_dead_owner_needs_recover(self, runner, store):
        """dead_owner= without recover=True, or not a token, is refused."""
        calls: list[str] = []
        pipeline = crashed(runner, store, calls)
        with pytest.raises(InvalidArgumentError, match="recover=True"):
            resume(runner, pipeline, "r", store=store, dead_owner="dead")
        with pytest.raises(InvalidArgumentError, match="owner token"):
            resume(runner, pipeline, "r", store=store, recover=True, dead_owner=3)

    @pytest.mark.parametrize("how", ["expired", "named"])
    def test_eight_threads_recover_a_crashed_run_once(self, store, how):
        """Eight threads run recovery on one crashed run: the next step runs exactly once."""
        calls: list[str] = []
        lock = threading.Lock()

        def count(name: str) -> None:
            with lock:
                calls.append(name)

        pipeline = Pipeline("three").step("a", lambda ctx: {"a": 1})
        pipeline = pipeline.step("b", lambda ctx: count("b") or {"b": 1})
        pipeline.run({}, store=store, run_id="r", on_step_complete=Recorder("a"))
        store.claim("r", owner="dead", lease=30)
        extra: dict[str, Any] = {"dead_owner": "dead"} if how == "named" else {}
        if how == "expired":
            store.test_clock.advance(31)
        barrier = threading.Barrier(8, timeout=WAIT)
        outcomes: list[str] = []

        def recover() -> None:
            barrier.wait()
            try:
                result = pipeline.resume("r", store=store, recover=True, **extra)
                outcomes.append("ran" if result.steps else "stored")
            except RunConflictError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=recover) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT)
        assert len(outcomes) == 8
        assert Counter(outcomes)["ran"] == 1, outcomes
        assert calls == ["b"]


class WatchedStore(MemoryStore):
    """A MemoryStore that signals each heartbeat renewal (and each refused one)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.renewed = threading.Event()
        self.refused = threading.Event()
        self.leases: list[float | None] = []

    def renew(self, run_id: str, *, owner: str, lease: float) -> Any:
        try:
            record = super().renew(run_id, owner=owner, lease=lease)
        except RunConflictError:
            self.refused.set()
            raise
        self.leases.append(record.lease_until)
        self.renewed.set()
        return record


def long_step(runner, body: Any) -> Any:
    """A step running ``body(wait)``: sync under run(), async (off the loop) under arun()."""

    def wait(event: threading.Event) -> bool:
        return event.wait(WAIT)

    if runner.mode == "sync":
        return lambda ctx: body(wait)

    async def step(ctx: Any) -> Any:
        return await asyncio.to_thread(body, wait)

    return step


class TestHeartbeat:
    def test_a_heartbeat_renews_the_lease_during_a_long_step(self, runner):
        """While a step runs, the lease is renewed every lease/3 s, with the store's clock."""
        clock = FakeClock(1000.0)
        store = WatchedStore(clock)

        def body(wait: Any) -> dict[str, Any]:
            clock.advance(100)  # only a renewal can move the lease this far
            store.renewed.clear()
            assert wait(store.renewed)
            return {"done": True}

        pipeline = Pipeline("p").step("long", long_step(runner, body))
        result = runner.run(pipeline, {}, store=store, run_id="r", lease=0.03)
        assert result["done"] is True
        assert store.leases[-1] == pytest.approx(1100.03)
        assert store.get("r").status == "completed"

    def test_the_heartbeat_stops_when_the_run_ends(self, runner):
        """No heartbeat outlives its run: the keeper holds nothing more, no task is left."""
        store = MemoryStore()
        pipeline = Pipeline("p").step("a", lambda ctx: {"a": 1})

        async def arun_and_list() -> list[str]:
            await pipeline.arun({}, store=store)
            return [
                repr(t.get_coro()) for t in asyncio.all_tasks() if t is not asyncio.current_task()
            ]

        if runner.mode == "sync":
            pipeline.run({}, store=store)
        else:
            assert asyncio.run(arun_and_list()) == []
        assert KEEPER.held() == 0

    def test_a_lost_claim_stops_the_heartbeat_and_the_run_persists_nothing_more(self, runner):
        """Taken over mid-step: the renewal is refused, and the step's result is not saved."""
        clock = FakeClock(1000.0)
        store = WatchedStore(clock)

        def body(wait: Any) -> dict[str, Any]:
            dead = store.get("r").owner
            store.claim("r", owner="thief", lease=30, recover=True, dead_owner=dead)
            assert wait(store.refused)
            return {"late": True}

        pipeline = Pipeline("p").step("a", lambda ctx: {"a": 1}).step("b", long_step(runner, body))
        with pytest.raises(RunConflictError):
            runner.run(pipeline, {}, store=store, run_id="r", lease=0.03)
        record = store.get("r")
        assert (record.status, record.owner, record.version) == ("running", "thief", 2)
        assert KEEPER.held() == 0
        assert [v.step_name for v in store.history("r")] == [None, "a"]


class TestExpectVersion:
    def two_gates(self, sent: list[str]) -> Pipeline:
        return (
            Pipeline("gates")
            .step("draft", lambda ctx: {"draft": ctx["body"]})
            .step("gate1", lambda ctx: None)
            .step("legal", lambda ctx: {"legal": ctx.get("ok1")})
            .step("gate2", lambda ctx: None)
            .step("send", lambda ctx: sent.append(ctx["draft"]) or {"sent": ctx.get("ok2")})
        )

    def test_a_late_duplicate_click_cannot_answer_the_next_pause(self, runner, store):
        """Link 1 (expect_version of pause 1), clicked twice: the second click is refused."""
        sent: list[str] = []
        pipeline = self.two_gates(sent)

        def stop_at_gates(event: Any) -> None:
            if event.step_name in ("gate1", "gate2"):
                event.stop_pipeline()

        runner.run(
            pipeline, {"body": "hi"}, store=store, run_id="r", on_step_complete=stop_at_gates
        )
        link1 = store.get("r").version
        second = resume(
            runner,
            pipeline,
            "r",
            store=store,
            override_data={"ok1": True},
            expect_version=link1,
            on_step_complete=stop_at_gates,
        )
        assert (second.status, second.stopped_at) == ("stopped", "gate2")
        record, history = store.get("r"), store.history("r")
        with pytest.raises(RunConflictError, match="expect_version"):
            resume(
                runner,
                pipeline,
                "r",
                store=store,
                override_data={"ok1": True},
                expect_version=link1,
            )
        assert store.get("r") == record
        assert store.history("r") == history
        assert sent == []
        done = resume(
            runner,
            pipeline,
            "r",
            store=store,
            override_data={"ok2": True},
            expect_version=record.version,
        )
        assert (done["legal"], done["sent"]) == (True, True)
        assert sent == ["hi"]
        with pytest.raises(RunConflictError):  # link 2 again, after completion: refused too
            resume(runner, pipeline, "r", store=store, expect_version=record.version)
        final = store.get("r").version
        assert resume(runner, pipeline, "r", store=store, expect_version=final)["sent"] is True

    def test_expect_version_guards_time_travel_and_forks_too(self, runner, store):
        """With version= or fork=True, expect_version= is compared with the run's version now."""
        sent: list[str] = []
        pipeline = self.two_gates(sent)
        runner.run(
            pipeline, {"body": "hi"}, store=store, run_id="r", on_step_complete=Recorder("gate1")
        )
        now = store.get("r").version
        for extra in ({"version": 2}, {"version": 2, "fork": True}):
            with pytest.raises(RunConflictError, match="expect_version"):
                resume(runner, pipeline, "r", store=store, expect_version=now - 1, **extra)
        assert sent == []
        forked = resume(
            runner, pipeline, "r", store=store, expect_version=now, version=2, fork=True
        )
        assert forked.run_id != "r"
        assert sent == ["hi"]

    @pytest.mark.parametrize("bad", [0, -1, "2", True, 2.0])
    def test_a_bad_expect_version_is_refused(self, runner, store, bad):
        """expect_version= must be an int >= 1."""
        sent: list[str] = []
        pipeline = self.two_gates(sent)
        runner.run(
            pipeline, {"body": "hi"}, store=store, run_id="r", on_step_complete=Recorder("gate1")
        )
        with pytest.raises(InvalidArgumentError, match="expect_version="):
            resume(runner, pipeline, "r", store=store, expect_version=bad)
        assert store.get("r").status == "paused"


# -- many processes -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("how", ["clock-ahead", "dead-owner"])
@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_four_processes_recover_a_killed_run_exactly_once(
    kind: str, how: str, tmp_path: Path
) -> None:
    """SIGKILL a run in step 4; four processes run recovery at once: step 4 runs once more, once.

    The recoverers either run their store clock an hour ahead (the killed owner's
    lease has expired for them) or name the killed owner with dead_owner=.
    """
    path = str(tmp_path / ("runs" if kind == "file" else "runs.db"))
    log = str(tmp_path / "steps.log")
    args = ["run", kind, path, log, "crashed", "--mark", "4:logged", "--hold"]
    with Child(*args) as child:
        assert child.line() == "mark"
        assert child.kill() == -9
    dead = owner_of(kind, path, "crashed")
    assert dead is not None
    extra = ["--ahead", "3600"] if how == "clock-ahead" else ["--dead-owner", dead]
    with contextlib.ExitStack() as stack:
        recover = ("recover", kind, path, log, "crashed", "--go", *extra)
        children = [stack.enter_context(Child(*recover)) for _ in range(4)]
        for child in children:  # every child is ready, blocked on its stdin
            assert child.line() == "ready"
        for child in children:
            child.send("go\n")
        answers = [child.finish() for child in children]
    ran = [a for a in answers if a["status"] == "completed" and a["steps"]]
    assert len(ran) == 1, answers
    assert all(a["status"] in ("conflict", "completed") for a in answers), answers
    # s04 was in flight at the kill: it ran once then, and exactly once more
    assert log_lines(log, "crashed") == [*STEPS[:4], *STEPS[3:]]
    store = open_kind(kind, path)
    try:
        record = store.get("crashed")
        assert record is not None
        assert (record.status, record.owner) == ("completed", None)
        assert store.snapshot("crashed") == reference_context()
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_an_override_survives_a_crash_of_the_next_step(kind: str, tmp_path: Path) -> None:
    """Resume with an approval in a process killed in the next step; recovery still has it."""
    path = str(tmp_path / ("runs" if kind == "file" else "runs.db"))
    log = str(tmp_path / "steps.log")
    args = ["run", kind, path, log, "ok", "--mark", "3:start", "--hold"]
    with Child(*args) as child:  # persisted s01, s02; killed before s03
        assert child.line() == "mark"
        assert child.kill() == -9
    dead = owner_of(kind, path, "ok")
    assert dead is not None
    args = ["recover", kind, path, log, "ok", "--dead-owner", dead, "--mark", "3:logged"]
    args += ["--hold", "--override", '{"approved": "alice"}']
    with Child(*args) as child:  # persists the override, then killed inside s03
        assert child.line() == "mark"
        assert child.kill() == -9
    store = open_kind(kind, path)
    try:
        history = store.history("ok")
        assert [v.step_name for v in history] == [None, "s01", "s02", "s02"]
        record = store.get("ok")
        assert record is not None
        result = crash_pipeline(log, "ok").resume(
            "ok", store=store, recover=True, dead_owner=record.owner
        )
        assert result["approved"] == "alice"
        assert store.snapshot("ok") == {**reference_context(), "approved": "alice"}
    finally:
        store.close()
