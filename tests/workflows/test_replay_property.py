"""Crash-then-replay is indistinguishable from one uninterrupted run (SPEC §4, exactly once).

Hypothesis generates small workflows — ``step.run`` ops, loops that repeat ids,
sleeps, signal waits (answered or timing out) and, in ``async def`` workflows,
``asyncio.gather`` of runs. Each is run once without interruption, counting
every *boundary*: a store write of the run (``create``, an op's ``append``,
``finish``) and the side effect of a step body. Then, for every boundary and
both sides of it, the same workflow runs again and the process "dies" there: a
``Crash`` (a ``BaseException``, which nothing in stepkit catches) leaves the
store as a killed process would, and a fresh client — no memory of the old one
— recovers the run once the dead worker's lease has expired on the fake clock.
The result must be the same, and each step body must have run exactly once,
plus once more for a body whose effect happened but whose record did not reach
the store before the crash (the op in flight).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepkit.stores import MemoryStore
from stepkit.testing import FakeClock
from stepkit.workflows import Client

LEASE = 5.0
RUN_ID = "prop"


class Crash(BaseException):
    """The process dies here."""


@dataclass
class World:
    """Everything outside the workflow: side effects, and where the process dies."""

    effects: Counter[str] = field(default_factory=Counter)
    boundaries: int = 0
    crash_at: int | None = None  # the boundary where the process dies
    after: bool = False  # die after that write (True) or before it (False)
    memo: dict[str, Any] = field(default_factory=dict)  # now/uuid values seen per key
    drift: list[str] = field(default_factory=list)
    dead: bool = False  # the process died: nothing it still had going may happen
    in_flight: Counter[str] = field(default_factory=Counter)  # bodies done, not recorded

    def boundary(self, write: Any) -> Any:
        """One boundary: maybe die before it, do it, maybe die after it."""
        if self.dead:
            raise Crash("dead")
        here = self.boundaries
        self.boundaries += 1
        if here == self.crash_at and not self.after:
            self.dead = True
            raise Crash(here)
        out = write()
        if here == self.crash_at and self.after:
            self.dead = True
            raise Crash(here)
        return out

    def see(self, key: str, value: Any) -> None:
        if self.memo.setdefault(key, value) != value:
            self.drift.append(key)


class CrashingStore(MemoryStore):
    """A MemoryStore whose writes of a run are boundaries of the world."""

    def __init__(self, world: World, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.world = world

    def create(self, *args: Any, **kwargs: Any) -> None:
        self.world.boundary(lambda: super(CrashingStore, self).create(*args, **kwargs))

    def append(self, *args: Any, **kwargs: Any) -> None:
        self.world.boundary(lambda: super(CrashingStore, self).append(*args, **kwargs))

    def save_step(self, *args: Any, **kwargs: Any) -> None:
        self.world.boundary(lambda: super(CrashingStore, self).save_step(*args, **kwargs))

    def finish(self, *args: Any, **kwargs: Any) -> Any:
        return self.world.boundary(lambda: super(CrashingStore, self).finish(*args, **kwargs))


# -- generated workflows ------------------------------------------------------------------

ids = st.sampled_from(["a", "b", "c"])
runs = st.tuples(st.just("run"), ids)
sleeps = st.tuples(st.just("sleep"), ids, st.sampled_from([1, 60, 3600]))
#: a wait that is answered has no timeout the recovery's clock jump could reach
waits = st.one_of(
    st.tuples(st.just("wait"), ids, st.sampled_from(["go", "ok"]), st.just(True), st.none()),
    st.tuples(st.just("wait"), ids, st.just("never"), st.just(False), st.sampled_from([10, 99])),
)
memos = st.tuples(st.sampled_from(["now", "uuid"]), ids)
gathers = st.tuples(st.just("gather"), st.lists(ids, min_size=2, max_size=3))
simple = st.one_of(runs, runs, sleeps, waits, memos, gathers)
loops = st.tuples(st.just("loop"), st.integers(2, 3), st.lists(st.one_of(runs, sleeps), max_size=2))
programs = st.lists(st.one_of(simple, simple, loops), min_size=1, max_size=6)


def body_of(world: World, key: str) -> Any:
    def body() -> str:
        world.boundary(lambda: world.effects.update([key]))
        return f"value of {key}"

    return body


class Keys:
    """The identities the workflow's calls take: the same numbering as the replay core's."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, step_id: str) -> str:
        n = self.counts[step_id]
        self.counts[step_id] += 1
        return f"{step_id}#{n}"


def sync_workflow(world: World, program: list[Any]) -> Any:
    def flow(ctx: Any, step: Any) -> Any:
        key, out = Keys(), []

        def do(op: Any) -> None:
            kind = op[0]
            if kind == "run":
                out.append(step.run(op[1], body_of(world, key(op[1]))))
            elif kind == "sleep":
                key(op[1])
                step.sleep(op[1], op[2])
            elif kind == "wait":
                key(op[1])
                out.append(step.wait_for_signal(op[1], signal=op[2], timeout=op[4]))
            elif kind in ("now", "uuid"):
                k = key(op[1])
                world.see(k, getattr(step, kind)(op[1]))
            elif kind == "gather":  # a def workflow runs them one after the other
                out.append([step.run(i, body_of(world, key(i))) for i in op[1]])
            else:
                for _ in range(op[1]):
                    for inner in op[2]:
                        do(inner)

        for op in program:
            do(op)
        return out

    return flow


def async_workflow(world: World, program: list[Any]) -> Any:
    async def flow(ctx: Any, step: Any) -> Any:
        key, out = Keys(), []

        async def do(op: Any) -> None:
            kind = op[0]
            if kind == "run":
                out.append(await step.run(op[1], body_of(world, key(op[1]))))
            elif kind == "sleep":
                key(op[1])
                await step.sleep(op[1], op[2])
            elif kind == "wait":
                key(op[1])
                out.append(await step.wait_for_signal(op[1], signal=op[2], timeout=op[4]))
            elif kind in ("now", "uuid"):
                k = key(op[1])
                world.see(k, await getattr(step, kind)(op[1]))
            elif kind == "gather":
                calls = [step.run(i, body_of(world, key(i))) for i in op[1]]
                out.append(list(await asyncio.gather(*calls)))
            else:
                for _ in range(op[1]):
                    for inner in op[2]:
                        await do(inner)

        for op in program:
            await do(op)
        return out

    return flow


# -- one execution: start, then drive the run to its end, recovering after a crash -------


def execute(program: list[Any], flavor: str, api: str, world: World) -> tuple[str, Any, int]:
    """Run ``program`` to its end; return (status, result, crashes)."""
    clock = FakeClock()
    store = CrashingStore(world, clock)
    crashes = 0

    def client() -> Client:  # a new process: nothing of the old client survives
        c = Client(driver=store, clock=clock, owner=f"worker-{crashes}", lease=LEASE)
        make = async_workflow if flavor == "async" else sync_workflow
        c.workflow(id="prop")(make(world, program))
        return c

    def call(c: Client, method: str, *args: Any, **kwargs: Any) -> Any:
        if api == "async":
            return asyncio.run(getattr(c, "a" + method)(*args, **kwargs))
        return getattr(c, method)(*args, **kwargs)

    def died() -> Client:
        """After a crash: note the bodies whose effect happened but whose record is lost."""
        nonlocal crashes
        crashes += 1
        recorded = set()
        if store.get(RUN_ID) is not None:
            recorded = {v.step_name for v in store.history(RUN_ID) if v.kind == "op"}
        for key, n in world.effects.items():
            if key not in recorded:
                world.in_flight[key] += n - world.in_flight[key]
        world.dead = False
        return client()

    current = client()
    try:
        call(current, "start_workflow", "prop", run_id=RUN_ID)
    except Crash:
        current = died()
    for _ in range(200):
        record = store.get(RUN_ID)
        if record is None:  # died before the run was stored: the caller starts it again
            try:
                call(current, "start_workflow", "prop", run_id=RUN_ID)
            except Crash:
                current = died()
            continue
        if record.status in ("completed", "failed"):
            handle = current.get_handle(RUN_ID)
            result = handle.result() if record.status == "completed" else None
            return record.status, result, crashes
        if record.status == "running":  # its worker died: wait out the lease
            assert record.lease_until is not None
            clock.now = max(clock.now, record.lease_until)
        elif record.waiting_for and "never" not in record.waiting_for:
            for name in record.waiting_for.split("\n"):
                sent = sum(1 for m in store.signals(RUN_ID) if m.signal == name)
                current.send_signal(name, f"{name}-{sent}", run_id=RUN_ID)
        else:
            assert record.wake_at is not None, record
            clock.now = max(clock.now, record.wake_at)
        try:
            call(current, "run_due")
        except Crash:
            current = died()
    raise AssertionError("the run did not finish")


@pytest.mark.parametrize(
    ("flavor", "api"), [("def", "sync"), ("async", "sync"), ("async", "async")]
)
@settings(max_examples=25)
@given(program=programs, after=st.booleans())
def test_a_crash_at_every_boundary_replays_to_the_same_outcome(
    flavor: str, api: str, program: list[Any], after: bool
) -> None:
    """Crash at any op boundary, recover: same result, each body once (+ the op in flight)."""
    reference = World()
    status, result, crashes = execute(program, flavor, api, reference)
    assert (status, crashes, reference.drift) == ("completed", 0, [])
    assert all(n == 1 for n in reference.effects.values()), reference.effects
    for point in range(reference.boundaries):
        world = World(crash_at=point, after=after)
        got = execute(program, flavor, api, world)
        assert got == (status, result, 1), (point, after)
        assert world.drift == []
        # a body runs once; a second time only if it was in flight: its effect happened
        # (the crash came at or after it) but its record never reached the store
        assert world.effects == reference.effects + world.in_flight, (point, after)
        assert sum(world.in_flight.values()) <= in_flight(program, flavor), (point, after)


def in_flight(program: list[Any], flavor: str) -> int:
    """How many ops may be in flight at once: one, or a whole gather in an async workflow."""
    widest = 1
    for op in program:
        if op[0] == "gather" and flavor == "async":
            widest = max(widest, len(op[1]))
    return widest
