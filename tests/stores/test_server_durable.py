"""Durable runs on real PostgreSQL and Redis servers: kills, races, many workers, lost writes.

Skipped (saying why) unless ``STEPKIT_TEST_POSTGRES_URL`` / ``STEPKIT_TEST_REDIS_URL``
name servers (``eval "$(.ci/servers start)"``). Every wait is bounded and
synchronised through pipes or by polling the store, never by a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from durable_worker import (
    RACE_RESULT,
    Child,
    calibrate,
    crash_and_recover,
    default_plans,
    log_lines,
    race_pipeline,
    reference_context,
    stop_after_s1,
)

from stepkit import Pipeline, RunConflictError
from stepkit.stores import BaseStore, open_store

from . import servers
from .server_worker import SHAPES, expected, pause_after_s0, pipeline

WORKER = Path(__file__).with_name("server_worker.py")
KILLS = int(os.environ.get("STEPKIT_SERVER_CRASH_KILLS", "12"))
WAIT = 60.0


@pytest.fixture(params=servers.SERVER_KINDS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A store URL on a real server, in a namespace of its own (dropped afterwards)."""
    kind = str(request.param)
    servers.skip_unless_available(kind)
    space = servers.namespace()
    base = servers.URLS[kind]
    option = f"schema={space}" if kind == "postgres" else f"prefix={space}:"
    yield base + ("&" if "?" in base else "?") + option
    if kind == "postgres":
        servers.drop_schema(space)
    else:
        servers.drop_prefix(space + ":")


@pytest.fixture
def store(url: str) -> Iterator[BaseStore]:
    opened = open_store(url)
    assert isinstance(opened, BaseStore)
    with opened:
        yield opened


def _seed() -> int:
    return int(os.environ.get("STEPKIT_CRASH_SEED") or random.randrange(2**32))


# -- crashes ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigkilled_runs_recover_to_the_uninterrupted_result(url: str, tmp_path: Path) -> None:
    """SIGKILL a persisting child at many points; recover=True always finishes the run exactly."""
    seed = _seed()
    rng = random.Random(seed)
    log = str(tmp_path / "steps.log")
    reference = reference_context()
    run_seconds = calibrate("url", url, log, "calibration")
    plans = default_plans(rng, KILLS, run_seconds)
    for i, plan in enumerate(plans):
        try:
            crash_and_recover("url", url, log, f"kill-{i}", plan, reference)
        except AssertionError as exc:
            raise AssertionError(f"{exc} (STEPKIT_CRASH_SEED={seed})") from exc
    with open_store(url) as store:
        assert store.list(status="running", limit=None) == []
        assert len(store.list(status="completed", limit=None)) == len(plans) + 1


# -- concurrent resumes of one pause -------------------------------------------------------


def _paused(store: Any, run_id: str, effect: Any) -> Pipeline:
    pipeline = race_pipeline(effect)
    paused = pipeline.run({}, store=store, run_id=run_id, on_step_complete=stop_after_s1)
    assert paused.status == "stopped"
    return pipeline


def _race_threads(store: BaseStore, pipeline: Pipeline, run_id: str, api: str) -> list[str]:
    """Eight threads resume ``run_id`` at the same moment; what each got."""
    barrier = threading.Barrier(8, timeout=WAIT)
    outcomes: list[str] = []

    def contend() -> None:
        barrier.wait()
        try:
            if api == "aresume":
                result = asyncio.run(pipeline.aresume(run_id, store=store))
            else:
                result = pipeline.resume(run_id, store=store)
            assert dict(result) == RACE_RESULT
            outcomes.append("ran" if result.steps else "stored")
        except RunConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    return outcomes


@pytest.mark.parametrize("api", ["resume", "aresume"])
def test_eight_threads_resume_a_pause_exactly_once(store: BaseStore, api: str) -> None:
    """Eight threads resume one pause at once: one runs it, the rest conflict or get its result."""
    for round_ in range(3):
        run_id, sent = f"pause-{round_}", []
        pipeline = _paused(store, run_id, partial(sent.append, "sent"))
        outcomes = _race_threads(store, pipeline, run_id, api)
        assert len(outcomes) == 8
        assert Counter(outcomes)["ran"] == 1, outcomes
        assert sent == ["sent"]
        assert [v.step_name for v in store.history(run_id)] == [None, "s1", "s2", "s3"]


@pytest.mark.parametrize("api", ["resume", "aresume"])
def test_four_processes_resume_a_pause_exactly_once(
    url: str, store: BaseStore, api: str, tmp_path: Path
) -> None:
    """Four processes resume one pause at once: its side effect happens exactly once."""
    side = str(tmp_path / "sent.log")
    _paused(store, "pause", lambda: None)
    with contextlib.ExitStack() as stack:
        children = [
            stack.enter_context(Child("race", "url", url, side, "pause", "--api", api))
            for _ in range(4)
        ]
        for child in children:
            assert child.line() == "ready"
        for child in children:
            child.send("go\n")
        answers = [child.finish() for child in children]
    outcomes = Counter(a["outcome"] for a in answers)
    assert outcomes["ran"] == 1, answers
    assert outcomes["ran"] + outcomes["stored"] + outcomes["conflict"] == 4
    assert log_lines(side, "pause") == ["sent"]


# -- many workers ------------------------------------------------------------------------------


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_four_processes_writing_500_runs_each_lose_none(url: str, store: BaseStore) -> None:
    """Four processes each write 500 runs (create, 3 appends, finish): all 2000 are there."""
    workers = [_spawn("write", url, f"w{i}", "500") for i in range(4)]
    results = [w.communicate(timeout=240) for w in workers]
    assert [w.returncode for w in workers] == [0] * 4, [err for _, err in results]
    records = store.list(limit=None)
    assert len(records) == 2000
    assert {(r.status, r.version, r.owner) for r in records} == {("completed", 4, None)}
    assert {r.run_id for r in records} == {f"w{p}-{i}" for p in range(4) for i in range(500)}
    assert [v.version for v in store.versions("w3-499")] == [1, 2, 3, 4]


@pytest.mark.slow
def test_four_workers_finish_200_mixed_runs_through_20_kills(
    url: str, store: BaseStore, tmp_path: Path
) -> None:
    """4 recovery-loop workers, 200 runs of 3 pipelines, 20 SIGKILLs: every run completes,
    every step ran, and a step ran twice only for a kill (at most once more per kill)."""
    log = str(tmp_path / "steps.log")
    rng = random.Random(_seed())
    shapes = [rng.choice(sorted(SHAPES)) for _ in range(200)]
    for i, shape in enumerate(shapes):
        result = pipeline(shape, None).run(
            {"run_id": f"r{i}"}, store=store, run_id=f"r{i}", on_step_complete=pause_after_s0
        )
        assert result.status == "stopped"
    steps_total = sum(SHAPES[s] for s in shapes)
    workers = [_spawn("work", url, log, "--lease", "0.5") for _ in range(4)]
    kills = 0
    try:
        deadline = time.monotonic() + 120
        while kills < 20 and time.monotonic() < deadline:
            # kill as the work goes: every ~4% of the steps logged
            done = len(log_lines_all(log))
            if done >= (kills + 1) * steps_total // 25 or all(
                w.poll() is not None for w in workers
            ):
                victim = rng.randrange(len(workers))
                if workers[victim].poll() is None:
                    workers[victim].send_signal(signal.SIGKILL)
                    workers[victim].wait(WAIT)
                    kills += 1
                workers[victim] = _spawn("work", url, log, "--lease", "0.5")
            else:
                time.sleep(0.005)  # polling the log, not timing anything
        for w in workers:
            w.communicate(timeout=120)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(WAIT)
    assert kills == 20
    records = {r.run_id: r for r in store.list(limit=None)}
    assert len(records) == 200
    assert Counter(r.status for r in records.values()) == {"completed": 200}
    for i, shape in enumerate(shapes):
        assert store.snapshot(f"r{i}")["n"] == expected(shape)
    counts = Counter(log_lines_all(log))
    wanted = {f"r{i} s{k}" for i, shape in enumerate(shapes) for k in range(1, SHAPES[shape] + 1)}
    assert set(counts) == wanted
    duplicates = sum(c - 1 for c in counts.values())
    assert duplicates <= kills, counts.most_common(5)


def log_lines_all(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return [line for line in f.read().splitlines() if line]
    except FileNotFoundError:
        return []
