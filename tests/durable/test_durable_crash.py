"""Durable runs under real crashes and races: SIGKILLed processes, concurrent resumes, leases.

The crash tests run the pipeline of ``durable_worker.crash_pipeline`` in child
processes (``python tests/durable_worker.py``) and kill them with SIGKILL;
every wait is bounded and synchronised through pipes, never by sleeping.
``STEPKIT_CRASH_KILLS`` (default 28 per store) and ``STEPKIT_CRASH_SEED``
tune and reproduce the kill points; ``benchmarks/soak_crash.py`` runs many more.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from durable_worker import (
    INPUT,
    RACE_RESULT,
    STEPS,
    Child,
    N,
    calibrate,
    crash_and_recover,
    crash_pipeline,
    default_plans,
    log_lines,
    open_kind,
    race_pipeline,
    reference_context,
    stop_after_s1,
)

from stepkit import Pipeline, RunConflictError, RunExpiredError
from stepkit.durable import _hold
from stepkit.stores import FileStore, MemoryStore, SQLiteStore

KILLS = int(os.environ.get("STEPKIT_CRASH_KILLS", "28"))
WAIT = 30.0  # bound of every wait on a thread or an event


class Clock:
    """An injectable clock: time moves only when the test says so."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _seed() -> int:
    return int(os.environ.get("STEPKIT_CRASH_SEED") or random.randrange(2**32))


def _store(kind: str, tmp_path: Path, **options: Any) -> Any:
    if kind == "memory":
        return MemoryStore(**options)
    if kind == "file":
        return FileStore(tmp_path / "runs", **options)
    return SQLiteStore(tmp_path / "runs.db", **options)


def _store_path(kind: str, tmp_path: Path) -> str:
    return str(tmp_path / ("runs" if kind == "file" else "runs.db"))


# -- 1. crash recovery ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_sigkilled_runs_recover_to_the_uninterrupted_result(kind: str, tmp_path: Path) -> None:
    """SIGKILL a persisting child at many points; recover=True always finishes the run exactly."""
    seed = _seed()
    rng = random.Random(seed)
    path, log = _store_path(kind, tmp_path), str(tmp_path / "steps.log")
    reference = reference_context()
    run_seconds = calibrate(kind, path, log, "calibration")
    plans = default_plans(rng, KILLS, run_seconds)
    outcomes = []
    for i, plan in enumerate(plans):
        try:
            outcomes.append(crash_and_recover(kind, path, log, f"kill-{i}", plan, reference))
        except AssertionError as exc:
            raise AssertionError(f"{exc} (STEPKIT_CRASH_SEED={seed})") from exc
    killed = sum(s.exit_code == -9 for o in outcomes for s in o.segments)
    # hold kills always land; race and timer kills may find the child already gone
    assert killed >= (20 if KILLS >= 28 else sum(p.how == "hold" for p in plans)), killed
    # the hold kills at "logged" leave the step in flight: it must have run twice
    held = [o for o in outcomes if o.plan.how == "hold" and o.plan.phase == "logged"]
    assert all(o.duplicates == [STEPS[o.plan.step - 1]] for o in held)
    store = open_kind(kind, path)
    try:
        assert store.list(status="running", limit=None) == []
        assert len(store.list(status="completed", limit=None)) == len(plans) + 1
    finally:
        store.close()


# -- 2. concurrent resumes --------------------------------------------------------------


def _paused(store: Any, run_id: str, effect: Any) -> Pipeline:
    pipeline = race_pipeline(effect)
    paused = pipeline.run({}, store=store, run_id=run_id, on_step_complete=stop_after_s1)
    assert paused.status == "stopped"
    record = store.get(run_id)
    assert record is not None
    assert (record.status, record.version) == ("paused", 2)
    return pipeline


def _race_threads(store: Any, pipeline: Pipeline, run_id: str, api: str) -> list[str]:
    """Eight threads resume ``run_id`` at the same moment; what each got."""
    barrier = threading.Barrier(8, timeout=WAIT)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def contend() -> None:
        try:
            barrier.wait()
            if api == "aresume":
                result = asyncio.run(pipeline.aresume(run_id, store=store))
            else:
                result = pipeline.resume(run_id, store=store)
            assert dict(result) == RACE_RESULT
            outcomes.append("ran" if result.steps else "stored")
        except RunConflictError:
            outcomes.append("conflict")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    return outcomes


@pytest.mark.parametrize("api", ["resume", "aresume"])
@pytest.mark.parametrize("kind", ["memory", "file", "sqlite"])
def test_eight_threads_resume_a_pause_exactly_once(kind: str, api: str, tmp_path: Path) -> None:
    """Eight threads resume one pause at once: one runs it, the rest conflict or get its result."""
    store = _store(kind, tmp_path)
    try:
        for round_ in range(5):
            run_id = f"pause-{round_}"
            sent: list[str] = []
            pipeline = _paused(store, run_id, partial(sent.append, "sent"))
            outcomes = _race_threads(store, pipeline, run_id, api)
            assert len(outcomes) == 8
            assert Counter(outcomes)["ran"] == 1, outcomes
            assert sent == ["sent"]
            record = store.get(run_id)
            assert record is not None
            assert record.status == "completed"
            assert [v.step_name for v in store.history(run_id)] == [None, "s1", "s2", "s3"]
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("api", ["resume", "aresume"])
@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_four_processes_resume_a_pause_exactly_once(kind: str, api: str, tmp_path: Path) -> None:
    """Four processes resume one pause at once: its side effect happens exactly once."""
    path, side = _store_path(kind, tmp_path), str(tmp_path / "sent.log")
    store = open_kind(kind, path)
    try:
        _paused(store, "pause", lambda: None)
    finally:
        store.close()
    with contextlib.ExitStack() as stack:
        args = ("race", kind, path, side, "pause", "--api", api)
        children = [stack.enter_context(Child(*args)) for _ in range(4)]
        for child in children:  # a barrier: every child is ready and blocked on its stdin
            assert child.line() == "ready"
        for child in children:
            child.send("go\n")
        answers = [child.finish() for child in children]
    outcomes = Counter(a["outcome"] for a in answers)
    assert outcomes["ran"] == 1, answers
    assert outcomes["ran"] + outcomes["stored"] + outcomes["conflict"] == 4
    assert all(a["context"] == RACE_RESULT for a in answers if a["outcome"] != "conflict")
    assert log_lines(side, "pause") == ["sent"]
    store = open_kind(kind, path)
    try:
        record = store.get("pause")
        assert record is not None
        assert record.status == "completed"
        assert dict(race_pipeline(lambda: None).resume("pause", store=store)) == RACE_RESULT
    finally:
        store.close()
    assert log_lines(side, "pause") == ["sent"]


# -- 3. leases --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "file", "sqlite"])
def test_an_expired_lease_lets_resume_take_over_a_live_run(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run stuck in step s02 with lease=0.2: resume conflicts until the clock passes the lease.

    Its heartbeat is stalled (as in a process that hangs), so nothing renews the lease.
    """
    monkeypatch.setattr(_hold, "heartbeat_interval", lambda lease: 3600.0)
    clock = Clock()
    store = _store(kind, tmp_path, clock=clock)
    entered, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def blocking(ctx: Any) -> dict[str, Any]:
        calls.append("s02")
        if len(calls) == 1:  # the first owner's attempt: stuck until the test releases it
            entered.set()
            assert release.wait(WAIT)
        return {"s02": True}

    pipeline = (
        Pipeline("lease")
        .step("s01", lambda ctx: {"s01": True})
        .step("s02", blocking)
        .step("s03", lambda ctx: {"s03": True})
    )
    first: dict[str, Any] = {}

    def original() -> None:
        try:  # clock= for the run too: see test_a_new_run_is_stamped_by_the_store_clock
            first["result"] = pipeline.run({}, store=store, run_id="r", lease=0.2, clock=clock)
        except BaseException as exc:
            first["error"] = exc

    thread = threading.Thread(target=original)
    thread.start()
    try:
        assert entered.wait(WAIT)
        record = store.get("r")
        assert record is not None
        assert (record.status, record.version) == ("running", 2)
        assert record.lease_until == pytest.approx(clock.now + 0.2)
        clock.now = record.lease_until - 0.1  # the lease still holds
        with pytest.raises(RunConflictError, match="already running"):
            pipeline.resume("r", store=store)
        assert store.get("r") == record  # a refused claim changes nothing
        clock.now = record.lease_until + 0.001  # the lease has expired
        result = pipeline.resume("r", store=store)
        assert dict(result) == {"s01": True, "s02": True, "s03": True}
        assert calls == ["s02", "s02"]  # the take-over reran the step in flight
    finally:
        release.set()
        thread.join(WAIT)
    assert not thread.is_alive()
    # the first owner lost its claim: its version of s02 is refused, nothing is doubled
    assert isinstance(first.get("error"), RunConflictError), first
    record = store.get("r")
    assert record is not None
    assert (record.status, record.version) == ("completed", 4)
    assert [v.step_name for v in store.history("r")] == [None, "s01", "s02", "s03"]
    store.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_an_expired_lease_lets_resume_take_over_a_killed_run(kind: str, tmp_path: Path) -> None:
    """A run SIGKILLed with lease=0.2 is resumable without recover=True only past its lease."""
    path, log = _store_path(kind, tmp_path), str(tmp_path / "steps.log")
    args = ["run", kind, path, log, "leased", "--mark", "4:logged", "--hold", "--lease", "0.2"]
    with Child(*args) as child:
        assert child.line() == "mark"
        assert child.kill() == -9
    clock = Clock()
    store = open_kind(kind, path, clock=clock)
    try:
        record = store.get("leased")
        assert record is not None
        assert (record.status, record.version) == ("running", 4)
        assert record.lease_until is not None
        clock.now = record.lease_until - 0.1
        with pytest.raises(RunConflictError, match="already running"):
            crash_pipeline(log, "leased").resume("leased", store=store)
        clock.now = record.lease_until + 0.001
        result = crash_pipeline(log, "leased").resume("leased", store=store)
        assert dict(result) == reference_context()
    finally:
        store.close()
    assert log_lines(log, "leased") == [*STEPS[:4], *STEPS[3:]]  # s04 was in flight


def stop_after_s01(event: Any) -> None:
    if event.step_name == STEPS[0]:
        event.stop_pipeline()


def test_a_new_run_is_stamped_by_the_store_clock() -> None:
    """A store with clock= decides expiry: ttl=10 has expired once its clock moved 11 s on."""
    clock = Clock(1000.0)
    store = MemoryStore(clock=clock)
    pipeline = crash_pipeline(None, "t")
    pipeline.run(INPUT, store=store, run_id="t", ttl=10, lease=5, on_step_complete=stop_after_s01)
    record = store.get("t")
    assert record is not None
    assert (record.created_at, record.expires_at) == (1000.0, 1010.0)
    clock.now = 1011.0
    with pytest.raises(RunExpiredError):
        pipeline.resume("t", store=store)
    assert store.purge() == 1


def test_worker_pipeline_matches_its_reference() -> None:
    """The crash pipeline is deterministic: same result with or without a store."""
    store = MemoryStore()
    result = crash_pipeline(None, "x", spin=3).run(INPUT, store=store, run_id="x")
    assert dict(result) == reference_context()
    assert len(store.history("x")) == N + 1
